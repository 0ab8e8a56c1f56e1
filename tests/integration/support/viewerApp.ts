/**
 * The built OHIF viewer, from npm's `@ohif/app` (its `dist/` is the whole web application), at the version the image's
 * OHIF plugin embeds; and Debian's Chromium to show it.
 *
 * The package is fetched with `npm pack` rather than installed: its package.json lists the sources' dependencies
 * (React, cornerstone, webpack loaders, several hundred packages) that the built `dist/` already bundles, and some of
 * them are not published at the same version (npm install of @ohif/app 3.12.0 fails on @ohif/core 3.12.0). The
 * tarball's integrity is pinned here as a lockfile would pin it.
 *
 * `npm run viewer:install` fetches it (package.json runs it before the integration suite); the test fails naming the
 * package and that command when it is missing.
 */
import { createHash } from "crypto";
import { accessSync, constants, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "fs";
import { join } from "path";
import { runOk } from "./processes";
import { korthwebCacheDirectory } from "./prerequisites";

/**
 * OHIF 3.12.0: the plugin 1.8 builds `Viewers-3.12.0` (orthanc-ohif, branch OrthancOHIF-1.8,
 * Resources/CreateOHIFDist.sh `PACKAGE=`), and orthancteam/orthanc 26.8.1 carries plugin 1.8 (orthanc-builder tag
 * 26.8.1, build-matrix.json, `Orthanc-ohif` stable `OrthancOHIF-1.8`).
 */
export const ohifApp = {
    name: "@ohif/app",
    version: "3.12.0",
    /** `npm view @ohif/app@3.12.0 dist.integrity`. */
    integrity: "sha512-D+SyPEOhW7E+P+ZfzFO1C3n8qwTfKSXExNEt2DPB5QHoLjSnUVTqEE+xaWX2B9p53boJfKWEM4b4SIVmz0qmOA==",
} as const;

export const ohifAppInstallCommand = "npm run viewer:install";

/** `ohif-app-<version>` in the suite's cache outside the clone, like the Orthanc roots (kept between runs and clones). */
function cacheDirectory(): string {
    return join(korthwebCacheDirectory(), `ohif-app-${ohifApp.version}`);
}

/** The unpacked `dist/` of the pinned @ohif/app. */
export function ohifDistDirectory(): string {
    return join(cacheDirectory(), "package", "dist");
}

/** Fetches and unpacks the pinned @ohif/app unless it is there already; throws when the tarball is not the pinned one. */
export async function installOhifApp(): Promise<string> {
    const dist = ohifDistDirectory();
    if (existsSync(join(dist, "index.html"))) {
        return dist;
    }
    const cache = cacheDirectory();
    const staging = `${cache}.partial`;
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { recursive: true });
    const packed = await runOk("npm", ["pack", "--silent", `${ohifApp.name}@${ohifApp.version}`, "--pack-destination", staging]);
    const tarball = join(staging, packed.stdout.trim().split("\n").pop()!.trim());
    const integrity = `sha512-${createHash("sha512").update(readFileSync(tarball)).digest("base64")}`;
    if (integrity !== ohifApp.integrity) {
        throw new Error(`${ohifApp.name}@${ohifApp.version}: tarball integrity ${integrity}, pinned ${ohifApp.integrity}`);
    }
    await runOk("tar", ["-xzf", tarball, "-C", staging]);
    rmSync(tarball);
    rmSync(cache, { recursive: true, force: true });
    renameSync(staging, cache);
    return dist;
}

/** Debian's Chromium; puppeteer-core drives it and downloads no browser of its own. */
export const chromiumExecutable = "/usr/bin/chromium";

/** NSS's certificate tool, which writes the browser's trust store. */
export const certutilExecutable = "/usr/bin/certutil";

/** Throws one error naming every missing piece of the viewer test and what installs it. */
export function assertViewerPrerequisites(): void {
    const missing: string[] = [];
    const programs = [
        { file: chromiumExecutable, debianPackage: "chromium" },
        // The test root CA goes into the browser's own NSS database: trusted as a site's CA would be, not ignored.
        { file: certutilExecutable, debianPackage: "libnss3-tools" },
    ];
    for (const program of programs) {
        try {
            accessSync(program.file, constants.X_OK);
        } catch {
            missing.push(`${program.file} (Debian package ${program.debianPackage}: apt-get install ${program.debianPackage})`);
        }
    }
    if (!existsSync(join(ohifDistDirectory(), "index.html"))) {
        missing.push(`${ohifApp.name}@${ohifApp.version} in ${ohifDistDirectory()} (npm package ${ohifApp.name}: ${ohifAppInstallCommand})`);
    }
    try {
        require.resolve("puppeteer-core");
    } catch {
        missing.push("puppeteer-core (npm devDependency: npm ci)");
    }
    if (missing.length > 0) {
        throw new Error(`The viewer test needs a browser and the OHIF viewer. Missing:\n  - ${missing.join("\n  - ")}\n(scripts/run test installs all of them)`);
    }
}

if (require.main === module) {
    installOhifApp().then(
        (dist) => console.log(`${ohifApp.name}@${ohifApp.version}: ${dist}`),
        (error: unknown) => {
            console.error(error instanceof Error ? error.message : error);
            process.exit(1);
        },
    );
}
