/**
 * The `filesystem` storage on this machine: one directory stands for the tenant's ReadWriteMany volume, mounted by
 * every replica at the same path; PostgreSQL keeps the index only.
 *
 * The settings are the program's for a tenant with `storage.type: filesystem` (storageOrthancConfig, merged over the
 * rendered configuration as the tenant merges it): StorageDirectory on the claim's mount path, PostgreSQL.EnableStorage
 * false (the PostgreSQL storage plugin then leaves the storage area to Orthanc's own filesystem storage),
 * SyncStorageArea. Only the mount path is replaced, by the laptop's directory, as adaptForLaptop replaces the pod's.
 */
import { join } from "path";
import { TenantConfig } from "../../../components/config/schema";
import { mergeOrthancConfig, storageMountPath, storageOrthancConfig } from "../../../components/data/storage/orthancStorage";
import { OrthancConfig } from "../../../components/tenant/orthancConfig";
import { attachmentFile, checkAttachments, CheckReport, filesUnder, OrthancReader } from "../../../scripts/tools/storageFiles";
import { Replica } from "./orthanc";
import { Postgres } from "./postgres";
import { run } from "./processes";
import { testStackConfig } from "./stack";

/** The tenant as it is with `storage.type: filesystem` (the claim's class and size do not reach Orthanc). */
export function withFilesystemStorage(tenant: TenantConfig): TenantConfig {
    return { ...tenant, storage: { ...tenant.storage, type: "filesystem", filesystem: { storageClass: "efs-sc", size: "100Gi" } } };
}

/**
 * `extend` for startReplica: the laptop configuration with the tenant's `filesystem` storage settings merged over it,
 * the claim's mount path being `directory`.
 */
export function onSharedDirectory(directory: string, tenant: TenantConfig = testStackConfig().tenants[0]): (config: OrthancConfig) => OrthancConfig {
    return (config) => {
        const merged = mergeOrthancConfig(config, storageOrthancConfig(withFilesystemStorage(tenant).storage, tenant)) as OrthancConfig;
        if (merged.StorageDirectory !== storageMountPath) {
            throw new Error(`filesystem storage renders StorageDirectory ${String(merged.StorageDirectory)}, the suite maps ${storageMountPath}`);
        }
        return { ...merged, StorageDirectory: directory };
    };
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
