/**
 * The settings of a tenant's storage that cannot change once files exist, and the guard that stops a change.
 *
 * Orthanc's index names each file by UUID only; where the bytes are (bucket, key prefix, key layout, volume) and how
 * they are encrypted is configuration. Changing one of these on a running archive leaves every stored instance
 * unreadable (and a new ReadWriteMany claim starts empty). So the program exports each tenant's storage identity as
 * the stack output `storageIdentity`, reads its own previous outputs through a StackReference to this very stack, and
 * refuses a changed identity, naming the settings, unless the stack acknowledges the previous identity it moves away
 * from (`storage.replacesIdentity`, after migrating the files). Modelled in tests/upstream/stackReference.ts.
 */
import { createHash } from "crypto";
import { inClusterObjectStoreEndpoint, StorageConfig } from "../../config/schema";
import { objectRootPath, storageClaimName } from "./orthancStorage";

/** The stack output that records every tenant's storage identity, by tenant name. */
export const storageIdentityOutput = "storageIdentity";

export interface StorageIdentity {
    type: StorageConfig["type"];
    /** Where the bytes are: bucket or container (with a non-AWS endpoint), or the claim and its storage class. */
    location?: string;
    rootPath?: string;
    structure?: string;
    /** sha256 of the client-side encryption master key (not the key), or "none". */
    encryptionKey?: string;
}

/** Setting names, as the stack file spells them, per identity field. */
const settingOf: Record<keyof StorageIdentity, string> = {
    type: "storage.type",
    location: "the bucket, container or volume (storage.s3.bucket/endpoint, storage.azureBlob.account/container, storage.googleCloudStorage.bucket, storage.filesystem.storageClass)",
    rootPath: "storage.rootPath",
    structure: "storage.structure",
    encryptionKey: "storage.clientSideEncryption (its master key)",
};

/** The identity of a storage choice; `encryptionKeyDigest` is the master key's sha256 when client-side encryption is on. */
export function storageIdentity(storage: StorageConfig, tenant: { name: string }, encryptionKeyDigest?: string): StorageIdentity {
    switch (storage.type) {
        case "postgresql":
            return { type: storage.type };
        case "filesystem":
            return { type: storage.type, location: `pvc/${storageClaimName} (${storage.filesystem!.storageClass})` };
        default: {
            const location =
                storage.type === "s3"
                    ? `s3://${storage.s3!.bucket}${storage.s3!.inCluster ? ` at ${new URL(inClusterObjectStoreEndpoint()).host}` : storage.s3!.endpoint ? ` at ${new URL(storage.s3!.endpoint).host}` : ` in ${storage.s3!.region}`}`
                    : storage.type === "azure-blob"
                      ? `azure://${storage.azureBlob!.account}/${storage.azureBlob!.container}`
                      : `gs://${storage.googleCloudStorage!.bucket}`;
            return {
                type: storage.type,
                location,
                rootPath: objectRootPath(storage, tenant),
                structure: storage.structure,
                encryptionKey: storage.clientSideEncryption ? (encryptionKeyDigest ?? "generated on the first update") : "none",
            };
        }
    }
}

/** A short digest that names an identity in messages and in `storage.replacesIdentity`. */
export function identityDigest(identity: StorageIdentity): string {
    const ordered = Object.fromEntries(Object.keys(settingOf).map((key) => [key, identity[key as keyof StorageIdentity] ?? null]));
    return createHash("sha256").update(JSON.stringify(ordered)).digest("hex").slice(0, 16);
}

/** The tenant's identity in the stack's previous outputs; a stack deployed before the output existed stored in PostgreSQL. */
export function previousIdentity(previousOutputs: Record<string, unknown> | undefined, tenant: string): StorageIdentity | undefined {
    if (!previousOutputs || Object.keys(previousOutputs).length === 0) return undefined; // never deployed
    const recorded = (previousOutputs[storageIdentityOutput] as Record<string, StorageIdentity> | undefined)?.[tenant];
    if (recorded) return recorded;
    const endpoints = previousOutputs.tenantEndpoints as Record<string, unknown> | undefined;
    // The tenant existed before storage was a choice: its files are PostgreSQL large objects.
    return endpoints && tenant in endpoints ? { type: "postgresql" } : undefined;
}

/**
 * Why the stack must stop, or undefined: the settings that changed between the previous identity and the new one,
 * unless `acknowledged` is the previous identity's digest (the operator migrated the files and says from where).
 */
export function storageChangeProblem(tenant: string, previous: StorageIdentity | undefined, next: StorageIdentity, acknowledged?: string): string | undefined {
    if (!previous) return undefined;
    const changed = (Object.keys(settingOf) as (keyof StorageIdentity)[]).filter((key) => (previous[key] ?? null) !== (next[key] ?? null));
    // A key generated on this very update has no digest yet in a preview; it is new either way when encryption was off.
    if (changed.length === 0) return undefined;
    const digest = identityDigest(previous);
    if (acknowledged === digest) return undefined;
    const what = changed.map((key) => `${settingOf[key]}: ${JSON.stringify(previous[key] ?? null)} -> ${JSON.stringify(next[key] ?? null)}`).join("; ");
    return (
        `tenants[${tenant}].storage: settings that cannot change once files are stored changed (${what}). ` +
        `Orthanc would no longer find the files it has. Revert them, or migrate the files first (the storage migration runbook under docs/) and then set ` +
        `storage.replacesIdentity: "${digest}" to acknowledge the storage being left.`
    );
}
