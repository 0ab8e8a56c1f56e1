/**
 * The Debian packages the suite boots. A missing one fails the suite loudly, naming the package: a skipped
 * integration suite would pass CI while proving nothing.
 */
import { accessSync, constants, readdirSync, readFileSync } from "fs";
import { delimiter, join } from "path";

/** Where Debian's orthanc-postgresql installs its plugins (the image keeps the same files in another directory). */
export const debianPluginDirectory = "/usr/share/orthanc/plugins";

interface Requirement {
    /** Debian package that provides it. */
    debianPackage: string;
    /** A program looked up on PATH, or an absolute file. */
    program?: string;
    file?: string;
}

const requirements: Requirement[] = [
    { debianPackage: "orthanc", program: "Orthanc" },
    { debianPackage: "orthanc-postgresql", file: `${debianPluginDirectory}/libOrthancPostgreSQLIndex.so` },
    { debianPackage: "orthanc-postgresql", file: `${debianPluginDirectory}/libOrthancPostgreSQLStorage.so` },
    { debianPackage: "postgresql", program: "psql" },
    { debianPackage: "dcmtk", program: "echoscu" },
    { debianPackage: "dcmtk", program: "storescu" },
    { debianPackage: "dcmtk", program: "dump2dcm" },
    { debianPackage: "openssl", program: "openssl" },
    // PostgreSQL must not run as root; these switch to the `postgres` account the postgresql package creates.
    { debianPackage: "util-linux", program: "setpriv" },
];

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

/** Throws one error listing every missing requirement and the packages to install. */
export function assertPrerequisites(): void {
    const missing: string[] = [];
    const packages = new Set<string>();
    for (const requirement of requirements) {
        const present = requirement.program ? onPath(requirement.program) : exists(requirement.file!);
        if (!present) {
            missing.push(`${requirement.program ?? requirement.file} (Debian package ${requirement.debianPackage})`);
            packages.add(requirement.debianPackage);
        }
    }
    if (postgresBinDirectory() === undefined) {
        missing.push("/usr/lib/postgresql/<major>/bin/initdb (Debian package postgresql)");
        packages.add("postgresql");
    }
    if (missing.length > 0) {
        throw new Error(
            `The integration suite needs a real Orthanc/PostgreSQL/DCMTK stack. Missing:\n  - ${missing.join("\n  - ")}\n` +
                `Install with: apt-get install ${[...packages].join(" ")}  (scripts/run test does this)`,
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
