/**
 * Debian's Chromium, headless, driven by puppeteer-core, as a site's workstation would run it against a tenant: it
 * trusts the stack's root CA (and nothing the test made besides), reaches the tenant's web host on this machine, and
 * nothing else.
 *
 * Trust is real certificate verification: the root CA is added to the NSS database of the browser's own HOME
 * (`$HOME/.pki/nssdb`, where Chromium on Linux reads locally trusted roots), the way an administrator installs a site
 * CA. No `--ignore-certificate-errors` or SPKI allow-list: a server certificate that does not chain to that root, or
 * does not name the host, fails the page.
 */
import { mkdirSync, writeFileSync } from "fs";
import { join } from "path";
import type { Browser } from "puppeteer-core";
import { Resources, runOk } from "./processes";
import { certutilExecutable, chromiumExecutable } from "./viewerApp";

export interface ViewerBrowserOptions {
    /** PEM certificates the browser trusts as CAs for web servers; none: only the system's roots (the profile is empty). */
    trustedCaPems: string[];
    /** Host names the browser resolves to 127.0.0.1; every other name fails to resolve (loopback only). */
    hosts: string[];
    /** Viewport of each page. */
    viewport?: { width: number; height: number };
}

/**
 * The flags Chromium runs with. Headless WebGL2 through SwiftShader (OHIF's cornerstone renders with WebGL); no
 * sandbox (the suite runs as root, which the sandbox refuses); no traffic of Chromium's own (background networking,
 * component updates, sync, first-run pages); every host name but the tenant's mapped to nothing.
 */
export function chromiumArguments(hosts: string[], viewport: { width: number; height: number }): string[] {
    const rules = [...hosts.map((host) => `MAP ${host} 127.0.0.1`), "MAP * ~NOTFOUND"].join(", ");
    return [
        "--no-sandbox",
        "--use-angle=swiftshader",
        "--enable-unsafe-swiftshader",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--no-default-browser-check",
        `--host-resolver-rules=${rules}`,
        `--window-size=${viewport.width},${viewport.height}`,
    ];
}

/** Launches Chromium with a fresh HOME and profile (released with `resources`). */
export async function launchViewerBrowser(resources: Resources, options: ViewerBrowserOptions): Promise<Browser> {
    const viewport = options.viewport ?? { width: 1280, height: 800 };
    const home = resources.tempDir("chromium-home");
    const nssDatabase = `sql:${join(home, ".pki", "nssdb")}`;
    mkdirSync(join(home, ".pki", "nssdb"), { recursive: true });
    await runOk(certutilExecutable, ["-N", "-d", nssDatabase, "--empty-password"]);
    for (const [index, pem] of options.trustedCaPems.entries()) {
        const file = join(home, `trusted-ca-${index}.crt`);
        writeFileSync(file, pem);
        // "C,,": a trusted CA for TLS servers, nothing else.
        await runOk(certutilExecutable, ["-A", "-d", nssDatabase, "-n", `korthweb-it-${index}`, "-t", "C,,", "-i", file]);
    }
    const { default: puppeteer } = await import("puppeteer-core");
    const browser = await puppeteer.launch({
        executablePath: chromiumExecutable,
        headless: true,
        userDataDir: join(home, "profile"),
        env: { ...process.env, HOME: home },
        args: chromiumArguments(options.hosts, viewport),
        defaultViewport: viewport,
    });
    const pid = browser.process()?.pid;
    resources.defer(async () => {
        await browser.close().catch(() => undefined);
        if (pid !== undefined) {
            try {
                process.kill(pid, "SIGKILL");
            } catch {
                // Already gone.
            }
        }
    });
    return browser;
}
