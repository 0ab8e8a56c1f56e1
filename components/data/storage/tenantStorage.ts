import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { createHash } from "crypto";
import { objectStorageTypes, TenantConfig } from "../../config/schema";
import { OrthancConfigFragment, storageClaimName, storageOrthancConfig, storagePodAdditions, StoragePodAdditions, storageSecretKeys, storageSecretName } from "./orthancStorage";
import { previousIdentity, storageChangeProblem, storageIdentity, StorageIdentity } from "./storageIdentity";

export interface TenantStorageArgs {
    tenant: TenantConfig;
    /** The tenant namespace. */
    namespace: string;
    /** This stack's outputs as its last update left them (a StackReference to itself); empty for a new stack. */
    previousOutputs: pulumi.Input<Record<string, unknown>>;
    dependsOn: pulumi.Input<pulumi.Resource>[];
    /** `storage.s3.inCluster`: the stack's S3 server's key pair for this tenant, and what makes its bucket. */
    inCluster?: InClusterStore;
}

/** The stack's in-cluster S3 server as a tenant sees it (components/platform/objectStore.ts). */
export interface InClusterStore {
    key: { accessKeyId: pulumi.Input<string>; secretAccessKey: pulumi.Input<string> };
    /** The bucket exists once these are. */
    ready: pulumi.Resource[];
}

/** The annotation that carries the checked identity onto every object that stores or reads the tenant's files. */
export const storageIdentityAnnotation = "korthweb.io/storage-identity";

/**
 * A tenant's file store: the ReadWriteMany claim (filesystem), the Secret of its keys, the generated client-side
 * encryption key, and the guard of its immutable settings. `checked` resolves only when the identity is unchanged (or
 * the change acknowledged); everything that writes files takes it as an input, so a refused change stops before any of
 * them is registered.
 */
export class TenantStorage extends pulumi.ComponentResource {
    readonly identity: pulumi.Output<StorageIdentity>;
    /** The identity digest after the guard passed; fails the program with the guard's message otherwise. */
    readonly checked: pulumi.Output<string>;
    readonly orthancConfig: OrthancConfigFragment;
    readonly pod: StoragePodAdditions;
    /** What Orthanc's pods wait for: the claim and the Secret. */
    readonly ready: pulumi.Resource[] = [];

    constructor(name: string, args: TenantStorageArgs, opts?: pulumi.ComponentResourceOptions) {
        super("korthweb:storage:TenantStorage", name, {}, opts);
        const { tenant } = args;
        const storage = tenant.storage;
        this.orthancConfig = storageOrthancConfig(storage, tenant);
        this.pod = storagePodAdditions(storage);

        // The master key the plugin encrypts every file with (AES-256, read as base64 from a file). Protected with the
        // tenant's data: losing it loses every file (README, "Where the images are stored").
        const masterKey =
            objectStorageTypes.includes(storage.type) && storage.clientSideEncryption
                ? new random.RandomBytes(`${name}-master-key`, { length: 32 }, { parent: this, protect: tenant.protectData, additionalSecretOutputs: ["base64", "hex"] })
                : undefined;
        const keyDigest: pulumi.Output<string | undefined> = masterKey
            ? pulumi.unsecret(masterKey.base64.apply((key) => createHash("sha256").update(key).digest("hex")))
            : pulumi.output(undefined);
        this.identity = keyDigest.apply((digest) => storageIdentity(storage, tenant, digest));
        this.checked = pulumi.all([args.previousOutputs, this.identity]).apply(([previous, identity]) => {
            const problem = storageChangeProblem(tenant.name, previousIdentity(previous, tenant.name), identity, storage.replacesIdentity);
            if (problem) throw new Error(problem);
            return createHash("sha256").update(JSON.stringify(identity)).digest("hex").slice(0, 16);
        });
        const annotations = this.checked.apply((digest) => ({ [storageIdentityAnnotation]: digest }));
        const inNamespace = { parent: this, dependsOn: args.dependsOn };

        const inCluster = storage.type === "s3" && storage.s3?.inCluster ? args.inCluster : undefined;
        if (storage.type === "s3" && storage.s3?.inCluster && !inCluster) {
            throw new Error(`tenant ${tenant.name}: storage.s3.inCluster without the stack's object store (korthweb:objectStore)`);
        }
        const secretData = secretValues(tenant, masterKey, inCluster?.key);
        if (inCluster) this.ready.push(...inCluster.ready);
        if (Object.keys(secretData).length > 0) {
            this.ready.push(
                new k8s.core.v1.Secret(
                    `${name}-secret`,
                    { metadata: { name: storageSecretName, namespace: args.namespace, annotations }, stringData: secretData },
                    inNamespace,
                ),
            );
        }
        if (storage.type === "filesystem") {
            const filesystem = storage.filesystem!;
            this.ready.push(
                new k8s.core.v1.PersistentVolumeClaim(
                    `${name}-claim`,
                    {
                        metadata: { name: storageClaimName, namespace: args.namespace, annotations },
                        spec: {
                            // Every replica mounts it, on whichever node it runs.
                            accessModes: ["ReadWriteMany"],
                            storageClassName: filesystem.storageClass,
                            resources: { requests: { storage: filesystem.size } },
                        },
                    },
                    // Deleting it deletes the archive (with the storage class's usual Delete reclaim policy).
                    { ...inNamespace, protect: tenant.protectData },
                ),
            );
        }
        this.registerOutputs({ identity: this.identity });
    }
}

/** The storage Secret's values: static keys where the store has no workload identity, key files, the master key. */
function secretValues(tenant: TenantConfig, masterKey?: random.RandomBytes, generated?: InClusterStore["key"]): Record<string, pulumi.Input<string>> {
    const storage = tenant.storage;
    const data: Record<string, pulumi.Input<string>> = {};
    const secret = (value: string) => pulumi.secret(value);
    if (storage.type === "s3" && storage.s3?.accessKeyId !== undefined && storage.s3.secretAccessKey !== undefined) {
        data[storageSecretKeys.awsAccessKeyId] = secret(storage.s3.accessKeyId);
        data[storageSecretKeys.awsSecretAccessKey] = secret(storage.s3.secretAccessKey);
    }
    if (generated) {
        data[storageSecretKeys.awsAccessKeyId] = pulumi.secret(generated.accessKeyId);
        data[storageSecretKeys.awsSecretAccessKey] = pulumi.secret(generated.secretAccessKey);
    }
    if (storage.type === "azure-blob") data[storageSecretKeys.azureConnectionString] = secret(storage.azureBlob!.connectionString);
    if (storage.type === "google-cloud-storage") data[storageSecretKeys.googleServiceAccount] = secret(storage.googleCloudStorage!.serviceAccountKey);
    if (masterKey) data[storageSecretKeys.masterKey] = pulumi.secret(masterKey.base64);
    return data;
}
