/**
 * The `filesystem` storage on this machine: one directory stands for the tenant's ReadWriteMany volume, mounted by
 * every replica at the same path; PostgreSQL keeps the index only.
 *
 * The settings are what that storage asks of Orthanc: StorageDirectory on the shared directory and
 * PostgreSQL.EnableStorage false (the PostgreSQL storage plugin then leaves the storage area to Orthanc's own
 * filesystem storage). The tenant's configuration is otherwise the rendered one (adaptForLaptop), so the replicas run
 * what the pods run, with the volume's mount path replaced by the laptop's directory.
 */
import { join } from "path";
import { OrthancConfig } from "../../../components/tenant/orthancConfig";
import { attachmentFile, checkAttachments, CheckReport, filesUnder, OrthancReader } from "../../../scripts/tools/storageFiles";
import { Replica } from "./orthanc";
import { Postgres } from "./postgres";
import { run } from "./processes";

/** `extend` for startReplica: the laptop configuration with its files on `directory` and PostgreSQL keeping the index only. */
export function onSharedDirectory(directory: string): (config: OrthancConfig) => OrthancConfig {
    return (config) => ({
        ...config,
        StorageDirectory: directory,
        PostgreSQL: { ...(config.PostgreSQL as Record<string, unknown>), EnableStorage: false },
    });
}

/** The uuids of the files under `directory` in Orthanc's layout (xx/yy/uuid), and anything else found there. */
export function storedFiles(directory: string): { uuids: string[]; others: string[] } {
    const uuids: string[] = [];
    const others: string[] = [];
    for (const relative of filesUnder(directory)) {
        const uuid = relative.split("/").pop()!;
        let inLayout = false;
        try {
            inLayout = attachmentFile(directory, uuid) === join(directory, relative);
        } catch {
            inLayout = false;
        }
        (inLayout ? uuids : others).push(inLayout ? uuid : relative);
    }
    return { uuids: uuids.sort(), others };
}

/** The attachment uuids the index holds, read from PostgreSQL itself (plugin 10.3's AttachedFiles table). */
export async function indexedUuids(postgres: Postgres): Promise<string[]> {
    const rows = await postgres.asOrthancRole("SELECT uuid FROM attachedfiles ORDER BY uuid");
    return rows === "" ? [] : rows.split("\n").sort();
}

/** The large objects of Orthanc's database: where the PostgreSQL storage plugin keeps the files. */
export async function largeObjectCount(postgres: Postgres): Promise<number> {
    return Number(await postgres.asOrthancRole("SELECT count(*) FROM pg_largeobject_metadata"));
}

/** The storage tool's `check` through a replica's REST API, in process. */
export function checkStore(replica: Replica, directory: string, content = true): Promise<CheckReport> {
    const admin = Object.entries(replica.config.RegisteredUsers as Record<string, string>)[0];
    return checkAttachments(new OrthancReader(`http://127.0.0.1:${replica.httpPort}`, admin[0], admin[1]), directory, { content, page: 50 });
}

/** Runs the storage tool as its own process, as `scripts/run migrate-storage` does. */
export const storageToolArgs = (command: "copy" | "check", replica: Replica, directory: string, more: string[] = []): string[] => [
    "-r",
    "ts-node/register/transpile-only",
    join(__dirname, "../../../scripts/tools/storageFiles.ts"),
    command,
    "--url",
    `http://127.0.0.1:${replica.httpPort}`,
    "--directory",
    directory,
    ...more,
];

export function storageToolEnv(replica: Replica): NodeJS.ProcessEnv {
    const [user, password] = Object.entries(replica.config.RegisteredUsers as Record<string, string>)[0];
    return { PATH: process.env.PATH, ORTHANC_USER: user, ORTHANC_PASSWORD: password };
}

/** `check` as a separate process: its exit code and output. */
export function runStorageCheck(replica: Replica, directory: string) {
    return run(process.execPath, storageToolArgs("check", replica, directory, ["--content"]), { env: storageToolEnv(replica) });
}
