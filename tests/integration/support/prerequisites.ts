/**
 * What the suite boots. Orthanc and its plugins come from Debian roots of the project's own (built by
 * scripts/install-orthanc-root, started with chroot): `sid`, the orthancteam/orthanc image's versions, for every test
 * and the benchmark; `trixie`, the previous Orthanc and PostgreSQL plugin, for the upgrade test only. PostgreSQL, DCMTK
 * and OpenSSL are the host's Debian packages. A missing piece fails the suite loudly, naming what installs it: a
 * skipped integration suite would pass CI while proving nothing.
 */
import { execFileSync } from "child_process";
import { accessSync, constants, readdirSync, readFileSync } from "fs";
import { homedir } from "os";
import { delimiter, join, resolve } from "path";

/**
 * Where the suite keeps what it downloads or builds, outside the clone so that a fresh clone (CI's) on the same
 * machine reuses it: `${XDG_CACHE_HOME:-~/.cache}/korthweb`, as scripts/install-orthanc-root and
 * scripts/install-monitoring-tools use.
 */
export function korthwebCacheDirectory(): string {
    return join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "korthweb");
}

/** The command that builds the Orthanc roots. */
export const orthancRootInstallCommand = "scripts/install-orthanc-root";

export type OrthancRootName = "sid" | "trixie";

/** What each root holds, for messages (scripts/install-orthanc-root builds them). */
export const orthancRootContents: Record<OrthancRootName, string> = {
    sid: "Debian sid's Orthanc 1.13.0 and DICOMweb 1.24, the PostgreSQL plugins 10.3 built from their upstream archive",
    trixie: "Debian trixie's Orthanc 1.12.7 with its PostgreSQL plugins 5.0 and DICOMweb 1.20",
};

const rootPaths = new Map<OrthancRootName, string>();

/**
 * Where root `name` is: the install script says (its cache folder is keyed by what the root is built from, so only
 * the script knows the name). `sid` unless said otherwise: every test runs the image's versions.
 */
export function orthancRoot(name: OrthancRootName = "sid"): string {
    let path = rootPaths.get(name);
    if (path === undefined) {
        const script = join(resolve(__dirname, "../../.."), orthancRootInstallCommand);
        path = execFileSync("bash", [script, "--print-root", name], { encoding: "utf8" }).trim();
        rootPaths.set(name, path);
    }
    return path;
}

/** Paths inside the Orthanc roots (as the chrooted process sees them), the same in both. */
export const orthancRootLayout = {
    binary: "/usr/sbin/Orthanc",
    /**
     * Where Debian's orthanc-dicomweb (and orthanc-postgresql in trixie) install their plugins, and where the sid root's
     * build puts the PostgreSQL plugins 10.3 (the image uses another directory).
     */
    pluginDirectory: "/usr/share/orthanc/plugins",
} as const;

/**
 * The plugins the suite's replicas load, by library name: of what the tenant's pods enable, the PostgreSQL index and
 * storage and DICOMweb (the viewers and Orthanc Explorer 2 are not in the Orthanc roots). The rendered configuration
 * does not list plugins (the image picks them from environment variables), so the suite names them here and
 * adaptForLaptop turns them into the `Plugins` setting.
 */
export const laptopPlugins: readonly string[] = ["libOrthancPostgreSQLIndex.so", "libOrthancPostgreSQLStorage.so", "libOrthancDicomWeb.so"];

/** The laptop plugins' paths inside the Orthanc root. */
export function laptopPluginFiles(plugins: readonly string[] = laptopPlugins): string[] {
    return plugins.map((plugin) => `${orthancRootLayout.pluginDirectory}/${plugin}`);
}

/**
 * What the pinned image (orthancteam/orthanc 26.8.1) runs, as Orthanc reports it (`/system` Version, `/plugins/<id>`
 * Version): orthanc-builder 26.8.1 build-matrix.json (Orthanc-1.13.0, OrthancPostgreSQL-10.3, OrthancDicomWeb-1.24).
 * The suite refuses to run on anything else: the sid root follows Debian sid, which may move on.
 */
export const imageVersions = {
    imageTag: "26.8.1",
    orthanc: "1.13.0",
    plugins: { "postgresql-index": "10.3", "postgresql-storage": "10.3", "dicom-web": "1.24" } as Record<string, string>,
} as const;

interface Requirement {
    /** Debian package that provides it. */
    debianPackage: string;
    /** A program looked up on PATH, or an absolute file. */
    program?: string;
    file?: string;
}

const requirements: Requirement[] = [
    { debianPackage: "postgresql", program: "psql" },
    { debianPackage: "dcmtk", program: "echoscu" },
    { debianPackage: "dcmtk", program: "storescu" },
    { debianPackage: "dcmtk", program: "dump2dcm" },
    { debianPackage: "openssl", program: "openssl" },
    // The S3 client of the backup and restore commands (restore.test.ts), the one the backup pod's image carries.
    { debianPackage: "awscli", program: "aws" },
    // PostgreSQL must not run as root; these switch to the `postgres` account the postgresql package creates.
    { debianPackage: "util-linux", program: "setpriv" },
    // Orthanc runs chrooted in a private mount namespace that shows it the suite's temp directory.
    { debianPackage: "util-linux", program: "unshare" },
    { debianPackage: "coreutils", program: "chroot" },
    // The failover test's database tier (failover.test.ts): the Bitnami engine's repmgr and Pgpool-II.
    { debianPackage: "pgpool2", file: "/usr/sbin/pgpool" },
];

/** Files the suite needs inside the Orthanc root (paths inside it). */
const rootFiles = [orthancRootLayout.binary, "/bin/sh", "/tmp"];

function executable(path: string): boolean {
    try {
        accessSync(path, constants.X_OK);
        return true;
    } catch {
        return false;
    }
}

function onPath(program: string): boolean {
    return (process.env.PATH ?? "").split(delimiter).some((dir) => dir && executable(join(dir, program)));
}

/** Directory of PostgreSQL's server binaries (initdb, postgres): Debian keeps them out of PATH, one directory per major. */
export function postgresBinDirectory(): string | undefined {
    const root = "/usr/lib/postgresql";
    let majors: string[];
    try {
        majors = readdirSync(root).filter((major) => executable(join(root, major, "bin", "initdb")));
    } catch {
        return undefined;
    }
    majors.sort((a, b) => Number(b) - Number(a));
    return majors.length > 0 ? join(root, majors[0], "bin") : undefined;
}

/** Throws one error listing every missing requirement and what installs it; `roots` are the Orthanc roots needed. */
export function assertPrerequisites(roots: readonly OrthancRootName[] = ["sid"]): void {
    const missing: string[] = [];
    const packages = new Set<string>();
    for (const requirement of requirements) {
        const present = requirement.program ? onPath(requirement.program) : exists(requirement.file!);
        if (!present) {
            missing.push(`${requirement.program ?? requirement.file} (Debian package ${requirement.debianPackage})`);
            packages.add(requirement.debianPackage);
        }
    }
    const postgresBin = postgresBinDirectory();
    if (postgresBin === undefined) {
        missing.push("/usr/lib/postgresql/<major>/bin/initdb (Debian package postgresql)");
        packages.add("postgresql");
    } else if (!executable(join(postgresBin, "repmgrd"))) {
        missing.push(`${postgresBin}/repmgrd (Debian package repmgr)`);
        packages.add("repmgr");
    }
    const problems: string[] = [];
    if (missing.length > 0) {
        problems.push(`Missing on this machine:\n  - ${missing.join("\n  - ")}\nInstall with: apt-get install ${[...packages].join(" ")}`);
    }
    for (const name of roots) {
        const root = orthancRoot(name);
        const missingInRoot = [...rootFiles, ...laptopPluginFiles()].filter((file) => !exists(join(root, file)));
        if (missingInRoot.length > 0) {
            const what = exists(root) ? `Missing in the Orthanc root ${root}:\n  - ${missingInRoot.join("\n  - ")}` : `No Orthanc root ${name} at ${root}.`;
            problems.push(`${what}\nBuild it with: ${orthancRootInstallCommand} ${name}  (${orthancRootContents[name]})`);
        }
    }
    if (problems.length > 0) {
        throw new Error(
            `The integration suite needs a real Orthanc/PostgreSQL/DCMTK stack.\n${problems.join("\n")}\n(scripts/run test does all of this)`,
        );
    }
    if (process.getuid?.() === 0 && !postgresAccount()) {
        throw new Error("PostgreSQL refuses to run as root and there is no `postgres` account (Debian package postgresql creates it)");
    }
}

function exists(path: string): boolean {
    try {
        accessSync(path, constants.R_OK);
        return true;
    } catch {
        return false;
    }
}

/** uid and gid of the `postgres` account the postgresql package creates, if there is one. */
export function postgresAccount(): { uid: number; gid: number } | undefined {
    let passwd: string;
    try {
        passwd = readFileSync("/etc/passwd", "utf8");
    } catch {
        return undefined;
    }
    const entry = passwd.split("\n").find((line) => line.startsWith("postgres:"));
    if (!entry) {
        return undefined;
    }
    const [, , uid, gid] = entry.split(":");
    return { uid: Number(uid), gid: Number(gid) };
}
