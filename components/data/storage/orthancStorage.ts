/**
 * Where a tenant's DICOM files live, as pure builders: the Orthanc configuration fragment, what the pod needs for it
 * (volumes, variables, identity), the Secret's keys and the image that carries the plugin.
 *
 * Read at the image's versions (tests/upstream/orthancImage.ts models the start-up):
 * - orthanc-server/orthanc-builder 26.8.1 `docker/orthanc/plugins-def.json`: the image enables `AwsS3Storage`,
 *   `AzureBlobStorage` and `GoogleCloudStorage` by their configuration sections; `PostgreSQL` loads both the index
 *   and the storage library, and its `EnableStorage` decides whether the storage one registers. `build-matrix.json`:
 *   the S3 plugin is orthanc-object-storage 2.5.4, Azure and Google 2.5.3; `docker/orthanc/Dockerfile`: the S3 plugin is
 *   in the default image, Azure and Google only in the `-full` one.
 * - orthanc-object-storage (orthanc-mirrors/orthanc-object-storage, commits "2.5.4" 6e24df0 and "2.5.3" 07c1e59):
 *   `Common/BaseStorage.cpp` (`StorageStructure` flat|legacy), `Common/StoragePlugin.cpp` (`HybridMode`,
 *   `RootPath` without a leading '/', `StorageEncryption` inside the plugin's section), `Common/EncryptionConfigurator.cpp`
 *   (`MasterKey: [id, path]`, the file holding the key in base64), `Aws/AwsS3StoragePlugin.cpp` (`BucketName`, `Region`,
 *   `Endpoint`, `VirtualAddressing`; without `AccessKey`/`SecretKey` the SDK's default credential chain, which takes
 *   EKS IRSA's web identity token or AWS_ACCESS_KEY_ID), `Azure/AzureBlobStoragePlugin.cpp` (a `ConnectionString` only:
 *   no workload identity), `Google/GoogleStoragePlugin.cpp` (a `ServiceAccountFile` key only: no workload identity).
 */
import type * as k8s from "@pulumi/kubernetes";
import { inClusterObjectStoreEndpoint, objectStorageTypes, StorageConfig } from "../../config/schema";
import { eksRoleArnAnnotation } from "../../k8s/serviceAccount";
import { ImagePin, orthancFullImage, orthancImage } from "../../versions";

export type OrthancConfigFragment = Record<string, unknown>;

/** Where every replica mounts the tenant's ReadWriteMany claim (filesystem storage). */
export const storageMountPath = "/var/lib/orthanc/storage";
/** Where the storage Secret's files (the encryption master key, a Google key file) are mounted. */
export const storageKeyDirectory = "/run/orthanc-storage";
/** The Secret that carries the storage credentials and keys, in the tenant namespace. */
export const storageSecretName = "orthanc-storage";
/** The ReadWriteMany claim of filesystem storage. */
export const storageClaimName = "orthanc-storage";
/** Keys of the storage Secret. */
export const storageSecretKeys = {
    masterKey: "master-key",
    googleServiceAccount: "service-account.json",
    azureConnectionString: "azure-connection-string",
    awsAccessKeyId: "aws-access-key-id",
    awsSecretAccessKey: "aws-secret-access-key",
} as const;
/** The id the plugin records with each encrypted file: the one master key the program generates. */
export const masterKeyId = 1;

/** The image's section (and so plugin) per object store. */
export const objectStorageSections = { s3: "AwsS3Storage", "azure-blob": "AzureBlobStorage", "google-cloud-storage": "GoogleCloudStorage" } as const;

/**
 * Reading files from an object store waits on the network: the Orthanc Book (faq/scalability, Orthanc 1.13.0) advises
 * raising `StorageLoaderThreadsCount` from its 4 to about 20 for a distributed object storage.
 */
export const objectStorageLoaderThreads = 20;

/** The key prefix a tenant's objects are written under. */
export function objectRootPath(storage: StorageConfig, tenant: { name: string }): string {
    return storage.rootPath ?? tenant.name;
}

/**
 * The tenant's storage part of Orthanc's configuration, merged over `orthancConfig` (`mergeOrthancConfig`). It never
 * holds a credential: keys reach the pod as variables and files from the storage Secret (`storagePodAdditions`).
 * Every choice but `postgresql` leaves PostgreSQL the index only.
 */
export function storageOrthancConfig(storage: StorageConfig, tenant: { name: string }): OrthancConfigFragment {
    const indexOnly = { PostgreSQL: { EnableStorage: false } };
    const loaderThreads = (fallback?: number) => {
        const threads = storage.loaderThreads ?? fallback;
        return threads === undefined ? {} : { StorageLoaderThreadsCount: threads };
    };
    switch (storage.type) {
        case "postgresql":
            return { PostgreSQL: { EnableStorage: true }, ...loaderThreads() };
        case "filesystem":
            // Orthanc's own storage area, on the shared volume; SyncStorageArea (default true) said so: a file is on
            // the server's disk before the instance is acknowledged.
            return { ...indexOnly, StorageDirectory: storageMountPath, SyncStorageArea: true, ...loaderThreads() };
        default: {
            const common = {
                RootPath: objectRootPath(storage, tenant),
                StorageStructure: storage.structure,
                // Read and write the object store only (no fallback to a local directory the pods do not share).
                HybridMode: "Disabled",
                ...(storage.clientSideEncryption
                    ? { StorageEncryption: { Enable: true, MasterKey: [masterKeyId, `${storageKeyDirectory}/${storageSecretKeys.masterKey}`] } }
                    : {}),
            };
            return { ...indexOnly, ...loaderThreads(objectStorageLoaderThreads), [objectStorageSections[storage.type]]: { ...objectStoreSettings(storage), ...common } };
        }
    }
}

function objectStoreSettings(storage: StorageConfig): Record<string, unknown> {
    switch (storage.type) {
        case "s3": {
            const s3 = required(storage.s3, "s3");
            if (s3.inCluster) {
                // The SDK keeps an endpoint that names its scheme (aws-sdk-cpp core, BuiltInParameters::OverrideEndpoint:
                // "http://" or "https://" as given, else the configuration's scheme, which the plugin sets to HTTPS):
                // plain HTTP to the Service, which the sidecars carry over mutual TLS. Buckets by path under the
                // Service's name.
                return { BucketName: s3.bucket, Region: s3.region, Endpoint: inClusterObjectStoreEndpoint(), VirtualAddressing: false };
            }
            return {
                BucketName: s3.bucket,
                Region: s3.region,
                // The SDK's endpoint override, host[:port]; the plugin always speaks HTTPS.
                ...(s3.endpoint !== undefined ? { Endpoint: new URL(s3.endpoint).host } : {}),
                VirtualAddressing: s3.addressing === "virtual-host",
            };
        }
        case "azure-blob":
            // ConnectionString arrives as ORTHANC__AZURE_BLOB_STORAGE__CONNECTION_STRING from the storage Secret. The
            // container is provisioned with the account: the plugin needs no right to create one.
            return { ContainerName: required(storage.azureBlob, "azureBlob").container, CreateContainerIfNotExists: false };
        case "google-cloud-storage":
            return {
                BucketName: required(storage.googleCloudStorage, "googleCloudStorage").bucket,
                ServiceAccountFile: `${storageKeyDirectory}/${storageSecretKeys.googleServiceAccount}`,
            };
        default:
            return {};
    }
}

function required<T>(value: T | undefined, key: string): T {
    if (value === undefined) throw new Error(`storage.${key} is required (the schema refuses a stack without it)`);
    return value;
}

/** `orthancConfig`'s result with the storage fragment over it: sections merge key by key, other keys are replaced. */
export function mergeOrthancConfig(config: OrthancConfigFragment, fragment: OrthancConfigFragment): OrthancConfigFragment {
    const merged: OrthancConfigFragment = { ...config };
    for (const [key, value] of Object.entries(fragment)) {
        const base = merged[key];
        const bothObjects = [base, value].every((v) => typeof v === "object" && v !== null && !Array.isArray(v));
        merged[key] = bothObjects ? { ...(base as object), ...(value as object) } : value;
    }
    return merged;
}

/** The Orthanc image a storage choice needs: Azure and Google's plugins are in the `-full` image only. */
export function orthancImageFor(storage: Pick<StorageConfig, "type">): ImagePin {
    return storage.type === "azure-blob" || storage.type === "google-cloud-storage" ? orthancFullImage : orthancImage;
}

/** What Orthanc's pod gets for its storage, besides the configuration. */
export interface StoragePodAdditions {
    volumes: k8s.types.input.core.v1.Volume[];
    volumeMounts: k8s.types.input.core.v1.VolumeMount[];
    env: k8s.types.input.core.v1.EnvVar[];
    /** On Orthanc's ServiceAccount: the cloud identity it is bound to. */
    serviceAccountAnnotations: Record<string, string>;
    /** Keys the storage Secret must carry (none: no Secret). */
    secretKeys: string[];
}

/**
 * Volumes, variables and identity for the storage choice. Workload identity where the plugin can use it (S3 on EKS:
 * IRSA's webhook injects the role and token for a ServiceAccount annotated with the role); a static key, from the
 * storage Secret, where the store or the plugin has nothing else (an S3-compatible store on premises; Azure's and
 * Google's plugins, which read a connection string and a key file only).
 */
export function storagePodAdditions(storage: StorageConfig): StoragePodAdditions {
    const secretKeys: string[] = [];
    const env: k8s.types.input.core.v1.EnvVar[] = [];
    const volumes: k8s.types.input.core.v1.Volume[] = [];
    const volumeMounts: k8s.types.input.core.v1.VolumeMount[] = [];
    const fromSecret = (name: string, key: string) => {
        secretKeys.push(key);
        env.push({ name, valueFrom: { secretKeyRef: { name: storageSecretName, key } } });
    };
    const fileKeys: string[] = [];
    if (storage.type === "filesystem") {
        volumes.push({ name: "storage", persistentVolumeClaim: { claimName: storageClaimName } });
        volumeMounts.push({ name: "storage", mountPath: storageMountPath });
    }
    if (storage.type === "s3" && (storage.s3?.accessKeyId !== undefined || storage.s3?.inCluster)) {
        // The SDK's default credential chain reads these when the section names no key.
        fromSecret("AWS_ACCESS_KEY_ID", storageSecretKeys.awsAccessKeyId);
        fromSecret("AWS_SECRET_ACCESS_KEY", storageSecretKeys.awsSecretAccessKey);
    }
    if (storage.type === "azure-blob") fromSecret("ORTHANC__AZURE_BLOB_STORAGE__CONNECTION_STRING", storageSecretKeys.azureConnectionString);
    if (storage.type === "google-cloud-storage") fileKeys.push(storageSecretKeys.googleServiceAccount);
    if (objectStorageTypes.includes(storage.type) && storage.clientSideEncryption) fileKeys.push(storageSecretKeys.masterKey);
    if (fileKeys.length > 0) {
        secretKeys.push(...fileKeys);
        volumes.push({ name: "storage-keys", secret: { secretName: storageSecretName, defaultMode: 0o440, items: fileKeys.map((key) => ({ key, path: key })) } });
        volumeMounts.push({ name: "storage-keys", mountPath: storageKeyDirectory, readOnly: true });
    }
    const roleArn = storage.type === "s3" ? storage.s3?.roleArn : undefined;
    // EKS's pod identity webhook (aws/amazon-eks-pod-identity-webhook v0.6.17, pkg/handler/handler.go) adds its own
    // projected token volume and AWS_ROLE_ARN / AWS_WEB_IDENTITY_TOKEN_FILE whatever automountServiceAccountToken says
    // (it stays false); AWS_STS_REGIONAL_ENDPOINTS=regional only with the second annotation, so that the token is
    // exchanged at sts.<region>, the one STS host the walls admit (storageWalls.ts).
    const irsa: Record<string, string> = roleArn ? { [eksRoleArnAnnotation]: roleArn, "eks.amazonaws.com/sts-regional-endpoints": "true" } : {};
    return { volumes, volumeMounts, env, serviceAccountAnnotations: irsa, secretKeys };
}
