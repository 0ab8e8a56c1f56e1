/**
 * What the bucket owner configures so that each tenant's backups are its own, as pure builders: the IAM policy to
 * attach to the tenant's key pair (its user) or role, the role's trust policy (EKS IAM roles for service accounts),
 * and the bucket's versioning, object lock and lifecycle rules.
 * The program cannot apply them itself (it holds no administrator credentials for the object storage); it renders them
 * per tenant into the stack output `backupStorage` and checks what it can in the schema (a key pair, a place and a KMS
 * key per tenant). README, "Database engines, backups and restore", says who does what.
 *
 * The powers, by writer:
 * - `pg_dump` (the Bitnami engine's CronJob): PutObject and GetObject under its prefix, ListBucket of its prefix only
 *   (the AWS CLI's `list-objects-v2 --prefix`), AbortMultipartUpload of its own uploads. Nothing deletes.
 * - `barman` (CloudNativePG's Barman Cloud plugin): the same, but ListBucket on its whole bucket, which must be its own
 *   (the schema refuses a shared one): barman-cloud-check-wal-archive checks the bucket with HeadBucket
 *   (EnterpriseDB/barman barman/cloud_providers/aws_s3.py `_check_bucket_existence`), which carries no prefix.
 * Both: explicit denies of every delete and of every change to the protections (versioning, object lock, lifecycle,
 * bucket policy), so that no other policy attached to the same user can give them back; and the tenant's KMS key for
 * GenerateDataKey (uploads) and Decrypt (multipart uploads, downloads), nothing else of KMS.
 *
 * What PutObject still allows: overwriting one of its own objects. Versioning keeps the overwritten version, and
 * object lock keeps it from being deleted before its retention ends, so a stolen key can add noise under its own
 * prefix but cannot destroy a backup, nor reach another tenant's.
 */
import { BackupConfig, StackConfig, tenantBackupTarget, TenantBackupTarget } from "../../config/schema";
import { cronMaxIntervalSeconds } from "../../platform/alerts";
import { serviceAccountUsername } from "../../k8s/serviceAccount";
import { tenantNames } from "../../naming/tenantNames";
import { backupNames } from "./backup";
import { cnpgNames } from "../engines/cloudnativePg";

export interface PolicyStatement {
    Sid: string;
    Effect: "Allow" | "Deny";
    Action: string[];
    Resource: string[];
    Condition?: Record<string, Record<string, string[]>>;
}

export interface PolicyDocument {
    Version: "2012-10-17";
    Statement: PolicyStatement[];
}

/** Which program writes the tenant's backups: the Bitnami engine's pg_dump job, or CloudNativePG's Barman Cloud. */
export type BackupWriter = "pg_dump" | "barman";

export function backupWriter(engine: string): BackupWriter | undefined {
    return engine === "bitnami-ha" ? "pg_dump" : engine === "cloudnative-pg" ? "barman" : undefined;
}

/** Every action that deletes an object or weakens what keeps it: denied to every tenant key. */
export const deniedActions = [
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:DeleteBucket",
    "s3:BypassGovernanceRetention",
    "s3:PutObjectRetention",
    "s3:PutObjectLegalHold",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketVersioning",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
] as const;

/** The S3 ARNs of the tenant's bucket and objects (the AWS partition unless the KMS key names another). */
function arns(target: Pick<TenantBackupTarget, "bucket" | "prefix" | "kmsKeyId">) {
    const partition = target.kmsKeyId?.split(":")[1] ?? "aws";
    const bucket = `arn:${partition}:s3:::${target.bucket}`;
    return { bucket, objects: `${bucket}/${target.prefix}*`, allObjects: `${bucket}/*` };
}

/** The identity policy of the tenant's key pair: its prefix (or bucket) only, no delete. */
export function backupAccessPolicy(target: Pick<TenantBackupTarget, "bucket" | "prefix" | "kmsKeyId">, writer: BackupWriter): PolicyDocument {
    if (!target.prefix.endsWith("/") || target.prefix.startsWith("/")) {
        throw new Error(`prefix ${JSON.stringify(target.prefix)} must end with '/' and not start with one`);
    }
    const { bucket, objects, allObjects } = arns(target);
    const list: PolicyStatement =
        writer === "pg_dump"
            ? { Sid: "ListOwnPrefix", Effect: "Allow", Action: ["s3:ListBucket"], Resource: [bucket], Condition: { StringLike: { "s3:prefix": [`${target.prefix}*`] } } }
            : { Sid: "ListOwnBucket", Effect: "Allow", Action: ["s3:ListBucket"], Resource: [bucket] };
    return {
        Version: "2012-10-17",
        Statement: [
            list,
            { Sid: "WriteAndReadOwnObjects", Effect: "Allow", Action: ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"], Resource: [objects] },
            ...(target.kmsKeyId !== undefined
                ? [{ Sid: "UseOwnKmsKey", Effect: "Allow" as const, Action: ["kms:GenerateDataKey", "kms:Decrypt"], Resource: [target.kmsKeyId] }]
                : []),
            { Sid: "NeverDeleteNorUnprotect", Effect: "Deny", Action: [...deniedActions], Resource: [bucket, allObjects] },
        ],
    };
}

/** An S3 lifecycle rule (PutBucketLifecycleConfiguration's `Rules[]`). */
export interface LifecycleRule {
    ID: string;
    Status: "Enabled";
    Filter: { Prefix: string };
    Expiration?: { Days: number } | { ExpiredObjectDeleteMarker: true };
    NoncurrentVersionExpiration?: { NoncurrentDays: number };
    AbortIncompleteMultipartUpload?: { DaysAfterInitiation: number };
}

/** What the bucket owner sets on the tenant's bucket, in the S3 API's own shapes. */
export interface BucketProtection {
    /** PutBucketVersioning. */
    versioning: { Status: "Enabled" };
    /** PutObjectLockConfiguration: every new object version locked for `Days`, deletable by nobody before. */
    objectLock: { ObjectLockEnabled: "Enabled"; Rule: { DefaultRetention: { Mode: "GOVERNANCE" | "COMPLIANCE"; Days: number } } };
    /** The tenant's rules, to put among the bucket's lifecycle rules (PutBucketLifecycleConfiguration). */
    lifecycleRules: LifecycleRule[];
}

const daySeconds = 24 * 3600;

/**
 * Days after which a backup object expires: the retention plus the schedule's longest interval, rounded up. A restore
 * to a point `retentionDays` ago needs the base backup (or dump) before it, which is up to one interval older.
 */
export function expirationDays(retentionDays: number, schedule: string): number {
    return retentionDays + Math.ceil(cronMaxIntervalSeconds(schedule) / daySeconds);
}

/**
 * Versioning, object lock and lifecycle for the tenant's prefix. Objects are locked for `retentionDays` from their
 * creation (GOVERNANCE: only an identity with s3:BypassGovernanceRetention, which no tenant key has, may shorten it;
 * COMPLIANCE: nobody), expire (a delete marker) at `expirationDays`, and their noncurrent versions, overwritten or
 * expired ones, are removed one day later, the lock having ended. Unfinished multipart uploads go after a day.
 */
export function bucketProtection(tenant: string, prefix: string, retentionDays: number, schedule: string, mode: "GOVERNANCE" | "COMPLIANCE" = "GOVERNANCE"): BucketProtection {
    const expire = expirationDays(retentionDays, schedule);
    return {
        versioning: { Status: "Enabled" },
        objectLock: { ObjectLockEnabled: "Enabled", Rule: { DefaultRetention: { Mode: mode, Days: retentionDays } } },
        lifecycleRules: [
            {
                ID: `korthweb-${tenant}-expire`,
                Status: "Enabled",
                Filter: { Prefix: prefix },
                Expiration: { Days: expire },
                NoncurrentVersionExpiration: { NoncurrentDays: 1 },
                AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
            },
            // S3 refuses ExpiredObjectDeleteMarker beside Days in one rule: a rule of its own.
            { ID: `korthweb-${tenant}-delete-markers`, Status: "Enabled", Filter: { Prefix: prefix }, Expiration: { ExpiredObjectDeleteMarker: true } },
        ],
    };
}

/** An IAM role's trust policy (the principals allowed to assume it). */
export interface TrustPolicyDocument {
    Version: "2012-10-17";
    Statement: {
        Sid: string;
        Effect: "Allow";
        Principal: { Federated: string };
        Action: "sts:AssumeRoleWithWebIdentity";
        Condition: { StringEquals: Record<string, string> };
    }[];
}

/** The audience of the token EKS's pod identity webhook projects (its `--token-audience` default). */
export const irsaAudience = "sts.amazonaws.com";

/** The ServiceAccount whose pods write the tenant's backups: the backup job's, or the CloudNativePG instances'. */
export function backupServiceAccountOf(tenant: string, writer: BackupWriter): { namespace: string; name: string } {
    return { namespace: tenantNames(tenant, "").namespace, name: writer === "pg_dump" ? backupNames.serviceAccount : cnpgNames.cluster };
}

/**
 * The trust policy of a tenant's role for EKS IAM roles for service accounts: only tokens the cluster's OIDC provider
 * issued to that one ServiceAccount (`sub`), for STS (`aud`), may assume it. The issuer is the provider ARN's resource
 * part (`oidc.eks.<region>.amazonaws.com/id/<id>`), which is how IAM names the condition keys.
 */
export function irsaTrustPolicy(oidcProviderArn: string, serviceAccount: { namespace: string; name: string }): TrustPolicyDocument {
    const issuer = oidcProviderArn.replace(/^arn:[^:]+:iam::[0-9]{12}:oidc-provider\//, "");
    if (issuer === oidcProviderArn || issuer === "") {
        throw new Error(`${oidcProviderArn} is not an IAM OIDC provider ARN`);
    }
    return {
        Version: "2012-10-17",
        Statement: [
            {
                Sid: "AssumeFromTenantBackupServiceAccount",
                Effect: "Allow",
                Principal: { Federated: oidcProviderArn },
                Action: "sts:AssumeRoleWithWebIdentity",
                Condition: {
                    StringEquals: {
                        [`${issuer}:sub`]: serviceAccountUsername(serviceAccount.namespace, serviceAccount.name),
                        [`${issuer}:aud`]: irsaAudience,
                    },
                },
            },
        ],
    };
}

/** One tenant's entry of the stack output `backupStorage`: where, and what the bucket owner attaches and sets. */
export interface TenantBackupStorage {
    bucket: string;
    prefix: string;
    writer: BackupWriter;
    kmsKeyId?: string;
    /** The identity policy: for the tenant's key pair's user, or its role's permission policy. */
    accessPolicy: PolicyDocument;
    bucketProtection: BucketProtection;
    /** With a role: the role, the ServiceAccount it is for, and its trust policy (EKS IRSA). */
    role?: { roleArn: string; serviceAccount: { namespace: string; name: string }; trustPolicy?: TrustPolicyDocument };
}

function roleEntry(roleArn: string, serviceAccount: { namespace: string; name: string }, backup: BackupConfig): NonNullable<TenantBackupStorage["role"]> {
    const provider = backup.irsa?.oidcProviderArn;
    return { roleArn, serviceAccount, ...(provider !== undefined ? { trustPolicy: irsaTrustPolicy(provider, serviceAccount) } : {}) };
}

/** Every backed-up tenant's storage instructions, by tenant name: the stack output `backupStorage`. No credential in it. */
export function backupStorage(config: Pick<StackConfig, "tenants"> & { backup?: BackupConfig }): Record<string, TenantBackupStorage> {
    const backup = config.backup;
    if (!backup) return {};
    const entries: [string, TenantBackupStorage][] = [];
    for (const tenant of config.tenants) {
        const writer = backupWriter(tenant.database.engine);
        const target = tenantBackupTarget(backup, tenant.name);
        if (!writer || !target) continue;
        entries.push([
            tenant.name,
            {
                bucket: target.bucket,
                prefix: target.prefix,
                writer,
                ...(target.kmsKeyId !== undefined ? { kmsKeyId: target.kmsKeyId } : {}),
                accessPolicy: backupAccessPolicy(target, writer),
                bucketProtection: bucketProtection(tenant.name, target.prefix, backup.retentionDays, backup.schedule),
                ...(target.identity.kind === "role" ? { role: roleEntry(target.identity.roleArn, backupServiceAccountOf(tenant.name, writer), backup) } : {}),
            },
        ]);
    }
    return Object.fromEntries(entries);
}
