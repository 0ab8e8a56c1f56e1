/**
 * What the store's owner sets up for a tenant outside the cluster, as data (stack output `storageSetup`): the
 * bucket's or container's protection and, for AWS, the IAM policy of the role the pods assume. The program creates no
 * cloud resources; it says exactly what its pods need and no more. No credential in it.
 */
import { TenantConfig } from "../../config/schema";
import { serviceAccountUsername } from "../../k8s/serviceAccount";
import { objectRootPath } from "./orthancStorage";

export interface StorageSetup {
    type: string;
    /** Server-side encryption at rest, which the provider applies to every object (the plugin sends no SSE header). */
    encryptionAtRest: string;
    /** Versioning, retention and replication the archive needs (README, "Where the images are stored"). */
    protection: string[];
    /** AWS: the policy to attach to `roleArn` (its trust policy names the pods' ServiceAccount, see README). */
    rolePolicy?: Record<string, unknown>;
    /** The ServiceAccount the workload identity must trust. */
    serviceAccount?: string;
}

const protection = [
    "versioning on, so that an overwritten or deleted object can be restored",
    "a lifecycle rule that expires noncurrent versions after the retention the site keeps backups for, never current ones",
    "replication to a second region or site for disaster recovery",
];

export function storageSetup(tenant: TenantConfig, namespace: string, serviceAccount: string): StorageSetup | undefined {
    const storage = tenant.storage;
    switch (storage.type) {
        case "s3": {
            const s3 = storage.s3!;
            if (s3.inCluster) {
                return {
                    type: storage.type,
                    encryptionAtRest: "none by the server: the in-cluster gateway writes plain files on its volume; storage.clientSideEncryption encrypts them in Orthanc",
                    protection: ["none: the in-cluster server (korthweb:objectStore) is for a laptop's throwaway data, on one volume, without versioning or replication"],
                };
            }
            const objects = `arn:aws:s3:::${s3.bucket}/${objectRootPath(storage, tenant)}/*`;
            const kms = s3.kmsKeyId
                ? [{ Sid: "UseTheBucketKey", Effect: "Allow", Action: ["kms:GenerateDataKey", "kms:Decrypt"], Resource: s3.kmsKeyId }]
                : [];
            return {
                type: storage.type,
                encryptionAtRest: s3.kmsKeyId
                    ? `the bucket's default encryption SSE-KMS with ${s3.kmsKeyId} (Bucket Key on); the role may use that key only`
                    : s3.endpoint
                      ? "the store's own server-side encryption (enable it: an S3-compatible store may not encrypt by default)"
                      : "SSE-S3, which AWS applies to every new object; set storage.s3.kmsKeyId for a key of the tenant's own",
                protection,
                ...(s3.roleArn
                    ? {
                          serviceAccount: serviceAccountUsername(namespace, serviceAccount),
                          // The plugin reads, writes and deletes objects under the tenant's prefix; it never lists.
                          rolePolicy: {
                              Version: "2012-10-17",
                              Statement: [{ Sid: "TenantObjects", Effect: "Allow", Action: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], Resource: objects }, ...kms],
                          },
                      }
                    : {}),
            };
        }
        case "azure-blob":
            return { type: storage.type, encryptionAtRest: "Azure Storage encryption, always on (Microsoft-managed or the account's customer-managed key)", protection };
        case "google-cloud-storage":
            return { type: storage.type, encryptionAtRest: "Google-managed encryption, always on (or the bucket's default Cloud KMS key)", protection };
        case "filesystem":
            return {
                type: storage.type,
                encryptionAtRest: `whatever the storage class ${storage.filesystem!.storageClass} provides (EFS, Azure Files and Filestore encrypt at rest)`,
                protection: ["snapshots of the volume on a schedule (VolumeSnapshot or the provider's backups), kept like the database backups"],
            };
        default:
            return undefined;
    }
}
