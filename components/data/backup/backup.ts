/**
 * Scheduled logical backups of the Bitnami postgresql-ha engine, as pure builders: a CronJob in the tenant namespace
 * whose pod dumps Orthanc's database through Pgpool with `pg_dump` (custom format), uploads the dump to
 * `s3://<bucket>/<prefix>/<timestamp>.dump` with the tenant's own key pair (SSE-KMS with the tenant's key when it has
 * one), then stops its Istio sidecar; the extra walls that pod needs; and the shell commands of the backup and of the
 * restore. The job deletes nothing: its key pair has no delete power (components/data/backup/backupPolicy.ts) and the
 * bucket's lifecycle rules expire old dumps.
 *
 * The shell commands are produced here and nowhere else (`backupCommands`, `restoreCommands`): the integration suite
 * runs exactly these strings against a real PostgreSQL and an S3 server on loopback.
 *
 * The pod has two containers, because no single pinned image carries both pg_dump 17 and an S3 client:
 *  - `dump` (the chart's own PostgreSQL image) runs pg_dump into a shared emptyDir, checks the archive's table of
 *    contents with `pg_restore --list`, and leaves `dump.done` (or `dump.failed`) next to it;
 *  - `upload` (the AWS CLI image) waits for either marker, uploads and, whatever happened, asks the
 *    sidecar to quit (POST localhost:15020/quitquitquit). With a classic sidecar the Job would otherwise never
 *    complete (Istio injects native sidecars only when every node runs Kubernetes >= 1.33).
 * Both are regular containers, not init containers: with classic sidecars an init container runs before the proxy,
 * and the mesh (STRICT mTLS at Pgpool) would refuse or black-hole its traffic.
 */
import type * as k8s from "@pulumi/kubernetes";
import { eksRoleArnAnnotation } from "../../k8s/serviceAccount";
import { BackupConfig, BackupIdentity, clusterDns, DnsConfig, isIpv4Address, requireTenantBackupTarget, tenantBackupTarget } from "../../config/schema";
import { tenantNames, TenantNames } from "../../naming/tenantNames";
import { orthancDatabase, postgresPodLabels, postgresSecrets, pgpoolHost, postgresService } from "../engines/bitnamiHaValues";
import { awsCliImage, ImagePin, imageReference, postgresqlHaImages } from "../../versions";
import { CniPolicy, podsLabelled, principal, tcp } from "../../k8s/walls";
import type { DatabaseWalls } from "../endpoint";

/**
 * The images of the backup and restore pods, pinned in versions.ts.
 *
 * - `postgresql`: pg_dump and pg_restore must be at least the server's major (a pg_dump 16 refuses a 17 server) and a
 *   custom-format archive is read by a pg_restore of the same major or newer. The image the chart already runs
 *   (bitnamilegacy/postgresql-repmgr 17.6.0) is exactly the server's version, is already on the nodes, and its tag is
 *   pinned and known to pull. Its PATH has /opt/bitnami/postgresql/bin and its user is 1001 (bitnami/containers,
 *   bitnami/postgresql-repmgr/17/debian-12/Dockerfile); the entrypoint is bypassed by `command`.
 * - `awsCli`: the AWS CLI v2 (Amazon Linux 2023 based since aws/aws-cli#7891: bash, GNU date, curl-minimal), whose
 *   `aws s3`/`aws s3api` talk to any S3-compatible endpoint with `--endpoint-url`.
 */
export const backupImages = {
    postgresql: postgresqlHaImages.postgresqlRepmgr,
    awsCli: awsCliImage,
} satisfies Record<string, ImagePin>;

/** Object names of the backup, in the tenant namespace. */
export const backupNames = {
    cronJob: "database-backup",
    /** The backup pod's own identity: the mesh admits it at Pgpool by it. It has no API token. */
    serviceAccount: "database-backup",
    /** The tenant's own S3 credentials (keys in `backupS3SecretKeys`). */
    s3Secret: "database-backup-s3",
    networkPolicy: "allow-database-backup",
    pgpoolIngress: "allow-database-backup-to-pgpool",
    authorizationPolicy: "allow-database-backup-to-pgpool",
    serviceEntry: "backup-object-storage",
    /** STS, where a tenant with an IAM role exchanges its ServiceAccount token for credentials. */
    stsServiceEntry: "backup-sts",
} as const;

/** The annotations that give a ServiceAccount the tenant's role; none with a key pair. */
export function roleAnnotations(identity: BackupIdentity): Record<string, string> {
    return identity.kind === "role" ? { [eksRoleArnAnnotation]: identity.roleArn } : {};
}

/**
 * The regional STS endpoint the tenant's pods assume its role at. The AWS CLI v2 never uses the global endpoint
 * (aws/aws-cli 2.36.7 awscli/botocore/args.py sets AWS::STS::UseGlobalEndpoint false) and creates its STS client in the
 * region of the first client, the one `--region` names (awscli/botocore/session.py `_last_client_region_used`);
 * Barman's boto3 gets the same region from the plugin sidecar's environment (components/data/engines/cloudnativePg.ts).
 */
export function stsHost(region: string, roleArn: string): string {
    return `sts.${region}.amazonaws.com${roleArn.startsWith("arn:aws-cn:") ? ".cn" : ""}`;
}

/** The tenant whose namespace `names` are, as `backup.tenants` names it; undefined when it has no entry. */
function backupTenantOf(names: TenantNames, backup: BackupConfig): string | undefined {
    return Object.keys(backup.tenants).find((tenant) => tenantNames(tenant, "").namespace === names.namespace);
}

/** The STS host the tenant of `names` needs, when it assumes a role. */
export function tenantStsHost(names: TenantNames, backup: BackupConfig): string | undefined {
    const tenant = backupTenantOf(names, backup);
    const target = tenant === undefined ? undefined : tenantBackupTarget(backup, tenant);
    return target?.identity.kind === "role" ? stsHost(backup.s3.region, target.identity.roleArn) : undefined;
}

/** Keys of the S3 credentials Secret, named as the AWS CLI's environment variables. */
export const backupS3SecretKeys = { accessKeyId: "AWS_ACCESS_KEY_ID", secretAccessKey: "AWS_SECRET_ACCESS_KEY" } as const;

/** Labels of the backup (and restore) pods, which the walls select. */
export const backupPodLabels = { "app.kubernetes.io/name": "database-backup", "app.kubernetes.io/component": "backup" } as const;

/**
 * The role that dumps: Orthanc's own (`orthanc`), not the superuser. It owns the database, every table Orthanc created
 * and every large object the storage plugin wrote, which is all pg_dump reads; the superuser's password would let a
 * backup job alter or drop anything in the cluster. Its password is the `password` key of the chart's Secret.
 */
export const backupRole = { user: orthancDatabase.user, secret: postgresSecrets.postgresql, secretKey: "password" } as const;

/** Where the backup pod's containers share the dump: an emptyDir. */
export const backupScratchDirectory = "/backup";
/** The Istio agent's endpoint that stops the proxy (pilot-agent, status port 15020). */
export const sidecarQuitUrl = "http://localhost:15020/quitquitquit";
/** The non-root user of both containers: the Bitnami image's own. */
export const backupUid = 1001;

/** Where the dump goes and comes from: `s3://<bucket>/<prefix><YYYYMMDDTHHMMSSZ>.dump`. */
export interface ObjectStorage {
    endpoint: string;
    bucket: string;
    region: string;
    /** The tenant's key prefix, ending with '/'. */
    prefix: string;
    /** The tenant's KMS key (ARN): every upload asks for SSE-KMS with it. */
    kmsKeyId?: string;
}

export interface DatabaseTarget {
    host: string;
    port: number;
    name: string;
    user: string;
}

export interface BackupCommandsInput {
    database: DatabaseTarget;
    s3: ObjectStorage;
    /** Directory both containers share. */
    scratchDirectory: string;
    /** POSTed to when the upload container ends, however it ends. */
    quitUrl: string;
}

/** One shell script per container, run with `sh -c`. Secrets come from the environment only (see `backupEnvironment`). */
export interface BackupCommands {
    dump: string;
    upload: string;
}

/**
 * The environment the commands read, and nothing else secret: PGPASSWORD (the dump and restore), AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY (upload, download). Everything else is in the scripts.
 */
export const backupEnvironment = { databasePassword: "PGPASSWORD", ...backupS3SecretKeys } as const;

/** Single-quotes a value for sh. */
export function shellQuote(value: string): string {
    return `'${value.replace(/'/g, `'"'"'`)}'`;
}

/** The tenant's key prefix, validated: it is part of every script and of a `case` pattern, so only plain segments. */
function keyPrefix(s3: ObjectStorage): string {
    if (!/^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*\/$/.test(s3.prefix)) {
        throw new Error(`key prefix ${JSON.stringify(s3.prefix)} is not '/'-separated segments of a-z, 0-9, '.', '_', '-' ending with '/'`);
    }
    return s3.prefix;
}

/** `aws s3 cp` options that encrypt the upload with the tenant's KMS key (SSE-KMS), when it has one. */
function encryptionOptions(s3: ObjectStorage): string {
    return s3.kmsKeyId === undefined ? "" : ` --sse aws:kms --sse-kms-key-id ${shellQuote(s3.kmsKeyId)}`;
}

function positiveInteger(value: number, what: string): number {
    if (!Number.isInteger(value) || value < 1) {
        throw new Error(`${what} must be a positive integer, not ${value}`);
    }
    return value;
}

/** Shell lines that point the AWS CLI at a path-style configuration (so the Host is the endpoint's, as the mesh knows it). */
function awsSetup(dir: string): string[] {
    return [
        // Path-style addressing: the request goes to the endpoint's own host name, the one the ServiceEntry lists,
        // never to <bucket>.<host>, which REGISTRY_ONLY egress would refuse.
        `export AWS_CONFIG_FILE="${dir}/aws-config"`,
        `printf '[default]\\ns3 =\\n    addressing_style = path\\n' > "$AWS_CONFIG_FILE"`,
    ];
}

/** `aws` with the endpoint and region; the rest of the command follows. */
function aws(s3: ObjectStorage): string {
    return `aws --endpoint-url ${shellQuote(s3.endpoint)} --region ${shellQuote(s3.region)}`;
}

/**
 * Shell lines that list the tenant's dump keys into "$dir/keys", one per line, keeping only the names the job writes
 * (`<tenant>/YYYYMMDDTHHMMSSZ.dump`): retention and "latest" never touch another object.
 */
function listDumps(s3: ObjectStorage, prefix: string): string[] {
    return [
        `${aws(s3)} s3api list-objects-v2 --bucket ${shellQuote(s3.bucket)} --prefix ${shellQuote(prefix)} --query 'Contents[].[Key]' --output text > "$dir/listing"`,
        `: > "$dir/keys"`,
        `while IFS= read -r key; do`,
        `    case "$key" in`,
        `        ${shellQuote(prefix)}[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z.dump) printf '%s\\n' "$key" >> "$dir/keys" ;;`,
        `    esac`,
        `done < "$dir/listing"`,
    ];
}

/** Shell: the 14 digits (YYYYMMDDHHMMSS) of a dump key held in $key, into $stamp. */
const stampOfKey = (prefix: string) => `name="\${key#${shellQuote(prefix)}}"; stamp=$(printf '%s' "\${name%.dump}" | tr -d TZ)`;

export function backupCommands(input: BackupCommandsInput): BackupCommands {
    const { database, s3 } = input;
    const prefix = keyPrefix(s3);
    const dir = `dir=${shellQuote(input.scratchDirectory)}`;
    const connection = [
        `--host=${shellQuote(database.host)}`,
        `--port=${positiveInteger(database.port, "port")}`,
        `--username=${shellQuote(database.user)}`,
    ].join(" ");
    const dump = [
        "set -eu",
        dir,
        // Whatever ends this script without success, the upload container hears of it and stops the sidecar.
        `trap 'if [ ! -e "$dir/dump.done" ]; then touch "$dir/dump.failed"; fi' EXIT`,
        // Pgpool may be failing over or the proxy still starting: wait for it, for a minute at most.
        "tries=0",
        `until pg_isready ${connection} --dbname=${shellQuote(database.name)} --timeout=5 > /dev/null; do`,
        "    tries=$((tries + 1))",
        `    if [ "$tries" -ge 30 ]; then echo "backup: ${database.host}:${database.port} does not accept connections" >&2; exit 1; fi`,
        "    sleep 2",
        "done",
        `pg_dump ${connection} --dbname=${shellQuote(database.name)} --no-password --format=custom --file="$dir/backup.dump.partial"`,
        // A truncated or corrupt archive has no readable table of contents: refuse it before anything is uploaded.
        `pg_restore --list "$dir/backup.dump.partial" > /dev/null`,
        `mv "$dir/backup.dump.partial" "$dir/backup.dump"`,
        `echo "backup: pg_dump wrote $(wc -c < "$dir/backup.dump") bytes"`,
        `touch "$dir/dump.done"`,
    ].join("\n");
    const upload = [
        "set -eu",
        dir,
        // The sidecar stops whatever happens below; with a classic sidecar the Job would never complete otherwise.
        `stop_sidecar() { curl -fsS -X POST ${shellQuote(input.quitUrl)} > /dev/null || echo "backup: could not stop the sidecar" >&2; }`,
        "trap stop_sidecar EXIT",
        `while [ ! -e "$dir/dump.done" ] && [ ! -e "$dir/dump.failed" ]; do sleep 2; done`,
        `if [ -e "$dir/dump.failed" ]; then echo "backup: pg_dump failed, nothing uploaded" >&2; exit 1; fi`,
        ...awsSetup("$dir"),
        `key=${shellQuote(prefix)}"$(date -u +%Y%m%dT%H%M%SZ).dump"`,
        `${aws(s3)} s3 cp "$dir/backup.dump" "s3://"${shellQuote(s3.bucket)}"/$key" --only-show-errors${encryptionOptions(s3)}`,
        `echo "backup: uploaded s3://"${shellQuote(s3.bucket)}"/$key"`,
        // No retention here: the key pair cannot delete, the bucket's lifecycle rules expire old dumps.
    ].join("\n");
    return { dump, upload };
}

export interface RestoreCommandsInput {
    /** The (empty) database to restore into, owned by `user`. */
    database: DatabaseTarget;
    s3: ObjectStorage;
    scratchDirectory: string;
    /** The object to restore, `<prefix><timestamp>.dump`; the newest of the tenant's dumps when absent. */
    key?: string;
}

/** `download` runs with the S3 client, `restore` with pg_restore; both in `scratchDirectory`. */
export interface RestoreCommands {
    download: string;
    restore: string;
}

export function restoreCommands(input: RestoreCommandsInput): RestoreCommands {
    const { database, s3 } = input;
    const prefix = keyPrefix(s3);
    if (input.key !== undefined && !(input.key.startsWith(prefix) && /^[0-9]{8}T[0-9]{6}Z\.dump$/.test(input.key.slice(prefix.length)))) {
        throw new Error(`${input.key} is not one of the tenant's dumps (${prefix}YYYYMMDDTHHMMSSZ.dump)`);
    }
    const dir = `dir=${shellQuote(input.scratchDirectory)}`;
    const download = [
        "set -eu",
        dir,
        ...awsSetup("$dir"),
        ...(input.key !== undefined
            ? [`key=${shellQuote(input.key)}`]
            : [
                  ...listDumps(s3, prefix),
                  `key=""; newest=0`,
                  `while IFS= read -r candidate; do`,
                  `    key="$candidate"; ${stampOfKey(prefix)}`,
                  `    if [ "$stamp" -gt "$newest" ]; then newest="$stamp"; latest="$candidate"; fi`,
                  `done < "$dir/keys"`,
                  `key="\${latest:-}"`,
                  `if [ -z "$key" ]; then echo "restore: no dump under s3://"${shellQuote(s3.bucket)}"/${prefix}" >&2; exit 1; fi`,
              ]),
        `${aws(s3)} s3 cp "s3://"${shellQuote(s3.bucket)}"/$key" "$dir/restore.dump" --only-show-errors`,
        `printf '%s\\n' "$key" > "$dir/restore.key"`,
        `echo "restore: downloaded s3://"${shellQuote(s3.bucket)}"/$key ($(wc -c < "$dir/restore.dump") bytes)"`,
    ].join("\n");
    const restore = [
        "set -eu",
        dir,
        `pg_restore --list "$dir/restore.dump" > /dev/null`,
        // One transaction: into an empty database, all or nothing; a database that already holds Orthanc's tables
        // fails on the first CREATE and is left as it was. Objects are owned by the restoring role (Orthanc's).
        [
            "pg_restore",
            `--host=${shellQuote(database.host)}`,
            `--port=${positiveInteger(database.port, "port")}`,
            `--username=${shellQuote(database.user)}`,
            `--dbname=${shellQuote(database.name)}`,
            "--no-password --no-owner --no-privileges --exit-on-error --single-transaction",
            `"$dir/restore.dump"`,
        ].join(" "),
        `echo "restore: $(cat "$dir/restore.key" 2>/dev/null || echo "$dir/restore.dump") restored into ${database.name}"`,
    ].join("\n");
    return { download, restore };
}

/** The Pgpool Service of the tenant's release, as the backup pod reaches it. */
export function pgpoolTarget(names: TenantNames): DatabaseTarget {
    return {
        host: pgpoolHost(names.namespace),
        port: postgresService.port,
        name: orthancDatabase.name,
        user: backupRole.user,
    };
}

/** Where `tenant`'s backups go: the stack's endpoint and region, the tenant's bucket, prefix and KMS key. */
export function objectStorage(backup: BackupConfig, tenant: string): ObjectStorage {
    const target = requireTenantBackupTarget(backup, tenant);
    return { endpoint: backup.s3.endpoint, bucket: target.bucket, region: backup.s3.region, prefix: target.prefix, kmsKeyId: target.kmsKeyId };
}

/** Host and port of the S3 endpoint, from its https URL. */
export function endpointAddress(endpoint: string): { host: string; port: number } {
    const url = new URL(endpoint);
    if (url.protocol !== "https:") {
        throw new Error(`the backup endpoint must be https, not ${endpoint}`);
    }
    return { host: url.hostname, port: url.port === "" ? 443 : Number(url.port) };
}

/** The S3 credentials Secret (values as given: pass Pulumi secrets). */
export function backupS3Secret<T>(
    names: TenantNames,
    credentials: { accessKeyId: T; secretAccessKey: T },
): { namespace: string; name: string; stringData: Record<string, T> } {
    return {
        namespace: names.namespace,
        name: backupNames.s3Secret,
        stringData: {
            [backupS3SecretKeys.accessKeyId]: credentials.accessKeyId,
            [backupS3SecretKeys.secretAccessKey]: credentials.secretAccessKey,
        },
    };
}

/**
 * The backup pod's service account: an identity for the mesh, no API token; with a role, the role's annotation (the
 * webhook projects a token of its own for STS, whatever `automountServiceAccountToken` says).
 */
export function backupServiceAccount(
    names: TenantNames,
    identity?: BackupIdentity,
): { namespace: string; name: string; automountServiceAccountToken: false; annotations?: Record<string, string> } {
    const annotations = identity ? roleAnnotations(identity) : {};
    return {
        namespace: names.namespace,
        name: backupNames.serviceAccount,
        automountServiceAccountToken: false,
        ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    };
}

export interface BackupCronJobInput {
    tenant: string;
    names: TenantNames;
    backup: BackupConfig;
    /**
     * Size of the volume holding the dump. A custom-format dump is at most about the database's size (DICOM in large
     * objects hardly compresses): the tenant's PostgreSQL volume size is the natural bound (`backup.scratchSize` sets
     * another). It is a volume claimed for the run from `scratchStorageClass` and deleted with its pod (a generic
     * ephemeral volume), not the node's disk: a dump the size of a database there would put the node under disk
     * pressure, and the kubelet would evict other tenants' pods to reclaim it.
     */
    scratchSize: string;
    /** Storage class of that volume; the cluster default when unset. */
    scratchStorageClass?: string;
    /** How long one run may take before Kubernetes kills it (default 6 hours). */
    activeDeadlineSeconds?: number;
}

const hardened = {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
};
/** The backup containers' security context, which the audit database's jobs share (engines/bitnamiHaAudit.ts). */
export const hardenedContainerSecurity = hardened;

/** An environment variable from a Secret's key (the backup's and the audit database's pods). */
export const secretEnv = (name: string, secret: string, key: string) => ({ name, valueFrom: { secretKeyRef: { name: secret, key } } });

export const defaultBackupDeadlineSeconds = 6 * 3600;

/**
 * When the AWS CLI adds a checksum to an upload (`AWS_REQUEST_CHECKSUM_CALCULATION`). AWS S3 refuses PutObject and
 * UploadPart without Content-MD5 or an x-amz-checksum-* header in a bucket with object lock's default retention, which
 * the tenant's bucket protection asks for; with `when_required` the CLI sends neither, as neither operation requires a
 * checksum (aws/aws-cli 2.36.7, the pinned image: awscli/botocore/data/s3/2006-03-01/service-2.json
 * `requestChecksumRequired: false`, awscli/botocore/httpchecksum.py `resolve_request_checksum_algorithm`). So AWS
 * endpoints get `when_supported` (CRC32 on every upload). Other S3-compatible servers keep `when_required`: many refuse
 * the aws-chunked uploads that carry the checksum.
 */
export function requestChecksumCalculation(endpoint: string): "when_supported" | "when_required" {
    return /(^|\.)amazonaws\.com(\.cn)?$/.test(new URL(endpoint).hostname) ? "when_supported" : "when_required";
}

/** How the program's CronJobs run (the backup's, the audit retention's). */
export const cronJobRunPolicy = {
    // The schema says the schedule is UTC; without a time zone the controller's would apply.
    timeZone: "Etc/UTC",
    // A run still going when the next is due (a large database) is left alone: no two at once.
    concurrencyPolicy: "Forbid",
    // A run missed by more than an hour (controller down) is skipped rather than started at a random time.
    startingDeadlineSeconds: 3600,
    successfulJobsHistoryLimit: 3,
    failedJobsHistoryLimit: 3,
} as const;

export function backupCronJobSpec(input: BackupCronJobInput): k8s.types.input.batch.v1.CronJobSpec {
    const target = tenantBackupTarget(input.backup, input.tenant);
    // With a role, no key in the pod: the webhook's AWS_ROLE_ARN and token file are what the CLI finds (its
    // environment provider, first in the chain, finds no key).
    const credentials =
        target?.identity.kind === "role"
            ? []
            : [
                  secretEnv(backupS3SecretKeys.accessKeyId, backupNames.s3Secret, backupS3SecretKeys.accessKeyId),
                  secretEnv(backupS3SecretKeys.secretAccessKey, backupNames.s3Secret, backupS3SecretKeys.secretAccessKey),
              ];
    const commands = backupCommands({
        database: pgpoolTarget(input.names),
        s3: objectStorage(input.backup, input.tenant),
        scratchDirectory: backupScratchDirectory,
        quitUrl: sidecarQuitUrl,
    });
    const mounts = [
        { name: "scratch", mountPath: backupScratchDirectory },
        { name: "tmp", mountPath: "/tmp" },
    ];
    const common = [{ name: "HOME", value: "/tmp" }];
    return {
        schedule: input.backup.schedule,
        ...cronJobRunPolicy,
        jobTemplate: {
            metadata: { labels: { ...backupPodLabels } },
            spec: {
                backoffLimit: 2,
                activeDeadlineSeconds: input.activeDeadlineSeconds ?? defaultBackupDeadlineSeconds,
                template: {
                    metadata: {
                        labels: { ...backupPodLabels },
                        // The proxy is up before pg_dump connects (classic sidecars; native ones are anyway).
                        annotations: { "proxy.istio.io/config": JSON.stringify({ holdApplicationUntilProxyStarts: true }) },
                    },
                    spec: {
                        serviceAccountName: backupNames.serviceAccount,
                        automountServiceAccountToken: false,
                        enableServiceLinks: false,
                        restartPolicy: "Never",
                        securityContext: {
                            runAsNonRoot: true,
                            runAsUser: backupUid,
                            runAsGroup: backupUid,
                            fsGroup: backupUid,
                            seccompProfile: { type: "RuntimeDefault" },
                        },
                        containers: [
                            {
                                name: "dump",
                                image: imageReference(backupImages.postgresql),
                                command: ["/bin/sh", "-c", commands.dump],
                                env: [...common, secretEnv(backupEnvironment.databasePassword, backupRole.secret, backupRole.secretKey)],
                                resources: { requests: { cpu: "250m", memory: "256Mi" }, limits: { memory: "1Gi" } },
                                securityContext: hardened,
                                volumeMounts: mounts,
                            },
                            {
                                name: "upload",
                                image: imageReference(backupImages.awsCli),
                                command: ["/bin/sh", "-c", commands.upload],
                                env: [
                                    ...common,
                                    ...credentials,
                                    // No instance metadata service to ask for credentials (nor a way to it).
                                    { name: "AWS_EC2_METADATA_DISABLED", value: "true" },
                                    { name: "AWS_REQUEST_CHECKSUM_CALCULATION", value: requestChecksumCalculation(input.backup.s3.endpoint) },
                                    { name: "AWS_RESPONSE_CHECKSUM_VALIDATION", value: "when_required" },
                                ],
                                resources: { requests: { cpu: "100m", memory: "256Mi" }, limits: { memory: "1Gi" } },
                                securityContext: hardened,
                                volumeMounts: mounts,
                            },
                        ],
                        volumes: [
                            {
                                name: "scratch",
                                ephemeral: {
                                    volumeClaimTemplate: {
                                        metadata: { labels: { ...backupPodLabels } },
                                        spec: {
                                            accessModes: ["ReadWriteOnce"],
                                            resources: { requests: { storage: input.scratchSize } },
                                            ...(input.scratchStorageClass ? { storageClassName: input.scratchStorageClass } : {}),
                                        },
                                    },
                                },
                            },
                            { name: "tmp", emptyDir: { sizeLimit: "256Mi" } },
                        ],
                    },
                },
            },
        },
    };
}

/** What the walls know of the cluster's network: its CNI (when korthweb may use its policies) and where DNS is. */
export interface ClusterNetwork {
    cni?: "cilium";
    dns: DnsConfig;
}

/** The kube-system DNS and no CNI of korthweb's choosing: what a stack without `kubernetes.dns` and `cni` gets. */
export const defaultClusterNetwork: ClusterNetwork = { dns: clusterDns({}) };

/** How some pods reach the object storage: NetworkPolicy egress rules, and a CNI policy where the egress is by name. */
export interface ObjectStorageEgress {
    networkPolicy: k8s.types.input.networking.v1.NetworkPolicyEgressRule[];
    cniPolicies: CniPolicy[];
}

/**
 * The way out to the S3 endpoint for `pods`, which a NetworkPolicy can only name by address:
 * - an endpoint given by IPv4 address, or `backup.s3.addresses` (a store whose addresses are stable): exactly those;
 * - `backup.s3.anyAddress`: any address on the endpoint's port, these pods only;
 * - `kubernetes.cni: cilium`: a CiliumNetworkPolicy allowing the endpoint's name (and its virtual-hosted bucket
 *   names, `*.<host>`) on the endpoint's port, to whatever addresses the pods' own lookups returned. Cilium learns
 *   them from its DNS proxy, so the same policy sends the pods' DNS through it (a `dns` rule on the DNS peers that
 *   admits every name: lookups of in-cluster names must still work). Cilium adds what its policies allow to what the
 *   NetworkPolicies allow (docs.cilium.io, "Policy Enforcement Modes" and "DNS Based" policies).
 * The schema refuses a backup configuration with none of these.
 */
export function objectStorageEgress(
    names: TenantNames,
    backup: BackupConfig,
    pods: Record<string, string>,
    policyName: string,
    network: ClusterNetwork,
): ObjectStorageEgress {
    const { host, port } = endpointAddress(backup.s3.endpoint);
    const byAddress = (cidrs: string[], ports = [port]) => ({ to: cidrs.map((cidr) => ({ ipBlock: { cidr } })), ports: ports.map(tcp) });
    if (isIpv4Address(host)) {
        return { networkPolicy: [byAddress([`${host}/32`, ...(backup.s3.addresses ?? [])])], cniPolicies: [] };
    }
    // A tenant with a role also reaches STS on 443 (the schema asks for anyAddress or Cilium then).
    const sts = tenantStsHost(names, backup);
    const anyPorts = sts !== undefined && port !== stsPort ? [port, stsPort] : [port];
    const networkPolicy = backup.s3.anyAddress ? [byAddress(["0.0.0.0/0"], anyPorts)] : backup.s3.addresses ? [byAddress(backup.s3.addresses)] : [];
    const also = sts !== undefined ? [{ host: sts, port: stsPort }] : [];
    const cniPolicies = network.cni === "cilium" ? [ciliumFqdnPolicy(names.namespace, policyName, pods, host, port, network.dns, also)] : [];
    return { networkPolicy, cniPolicies };
}

/** Cilium's form of a label of another namespace's pods (pkg/k8s/apis/cilium.io, `k8s:` source prefix). */
const ciliumNamespaceLabel = "k8s:io.kubernetes.pod.namespace";

/** STS's port. */
const stsPort = 443;

/**
 * A CiliumNetworkPolicy (cilium.io/v2) letting `pods` reach `host` on `port` by name (and each of `also` on its port),
 * their DNS going through Cilium's proxy.
 */
export function ciliumFqdnPolicy(
    namespace: string,
    name: string,
    pods: Record<string, string>,
    host: string,
    port: number,
    dns: DnsConfig,
    also: { host: string; port: number }[] = [],
): CniPolicy {
    const dnsPorts = [{ ports: dns.ports.map((p) => ({ port: String(p), protocol: "ANY" })), rules: { dns: [{ matchPattern: "*" }] } }];
    const dnsPeers = [
        ...(dns.namespace !== undefined
            ? [{ toEndpoints: [{ matchLabels: { [ciliumNamespaceLabel]: dns.namespace, ...prefixed(dns.podLabels ?? {}) } }], toPorts: dnsPorts }]
            : []),
        ...(dns.addresses !== undefined ? [{ toCIDR: [...dns.addresses], toPorts: dnsPorts }] : []),
    ];
    return {
        apiVersion: "cilium.io/v2",
        kind: "CiliumNetworkPolicy",
        namespace,
        name,
        // The Cilium operator's policy validator (on by default) sets `Valid`; a policy the agent would refuse then
        // fails the deployment instead of leaving backups without a way out.
        annotations: { "pulumi.com/waitFor": "condition=Valid" },
        spec: {
            endpointSelector: { matchLabels: { ...pods } },
            egress: [
                ...dnsPeers,
                {
                    toFQDNs: [{ matchName: host }, { matchPattern: `*.${host}` }],
                    toPorts: [{ ports: [{ port: String(port), protocol: "TCP" }] }],
                },
                ...also.map((other) => ({ toFQDNs: [{ matchName: other.host }], toPorts: [{ ports: [{ port: String(other.port), protocol: "TCP" }] }] })),
            ],
        },
    };
}

const prefixed = (labels: Record<string, string>) => Object.fromEntries(Object.entries(labels).map(([k, v]) => [`k8s:${k}`, v]));

/**
 * The backup's part of the tenant's walls, to add to the engine's: the backup pods reach Pgpool on 5432 and the S3
 * endpoint (`objectStorageEgress`; DNS is already allowed to every pod); Pgpool admits them (NetworkPolicy, and the
 * mesh by their service account); the mesh knows the endpoint by name (REGISTRY_ONLY), as TLS it passes through
 * after matching the SNI, whatever address the name resolves to.
 */
export function backupWalls(names: TenantNames, backup: BackupConfig, network: ClusterNetwork = defaultClusterNetwork): DatabaseWalls {
    const ns = names.namespace;
    const { host, port } = endpointAddress(backup.s3.endpoint);
    const postgresPort = [tcp(postgresService.port)];
    const isAddress = isIpv4Address(host);
    const egress = objectStorageEgress(names, backup, backupPodLabels, backupNames.networkPolicy, network);
    const sts = tenantStsHost(names, backup);
    return {
        orthancEgress: [],
        network: [
            {
                namespace: ns,
                name: backupNames.networkPolicy,
                spec: {
                    podSelector: { matchLabels: { ...backupPodLabels } },
                    policyTypes: ["Egress"],
                    egress: [{ to: [podsLabelled(postgresPodLabels.pgpool)], ports: postgresPort }, ...egress.networkPolicy],
                },
            },
            {
                namespace: ns,
                name: backupNames.pgpoolIngress,
                spec: {
                    podSelector: { matchLabels: postgresPodLabels.pgpool },
                    policyTypes: ["Ingress"],
                    ingress: [{ from: [podsLabelled(backupPodLabels)], ports: postgresPort }],
                },
            },
        ],
        authorization: [
            {
                namespace: ns,
                name: backupNames.authorizationPolicy,
                spec: {
                    selector: { matchLabels: postgresPodLabels.pgpool },
                    action: "ALLOW",
                    rules: [
                        {
                            from: [{ source: { principals: [principal(ns, backupNames.serviceAccount)] } }],
                            to: [{ operation: { ports: [String(postgresService.port)] } }],
                        },
                    ],
                },
            },
        ],
        serviceEntries: [
            {
                namespace: ns,
                name: backupNames.serviceEntry,
                spec: isAddress
                    ? {
                          // An endpoint given by address: the mesh needs a name, and routes by the address.
                          hosts: [`object-storage.backup.${ns}.internal`],
                          addresses: [`${host}/32`],
                          ports: [{ number: port, name: `tls-s3-${port}`, protocol: "TLS" }],
                          location: "MESH_EXTERNAL",
                          resolution: "STATIC",
                          endpoints: [{ address: host }],
                          exportTo: ["."],
                      }
                    : {
                          // By name, no addresses: the sidecar matches the TLS session's SNI and connects to what
                          // the name resolves to, wherever that is today.
                          hosts: [host],
                          ports: [{ number: port, name: `tls-s3-${port}`, protocol: "TLS" }],
                          location: "MESH_EXTERNAL",
                          resolution: "DNS",
                          exportTo: ["."],
                      },
            },
            // A tenant with a role: STS, where the CLI exchanges the pod's token, by name as well.
            ...(sts === undefined
                ? []
                : [
                      {
                          namespace: ns,
                          name: backupNames.stsServiceEntry,
                          spec: {
                              hosts: [sts],
                              ports: [{ number: stsPort, name: `tls-sts-${stsPort}`, protocol: "TLS" }],
                              location: "MESH_EXTERNAL",
                              resolution: "DNS",
                              exportTo: ["."],
                          },
                      },
                  ]),
        ],
        cniPolicies: egress.cniPolicies,
    };
}

/** Two engines' (or an engine's and the backup's) parts of the walls, together. */
export function combineWalls(...parts: DatabaseWalls[]): DatabaseWalls {
    return {
        orthancEgress: parts.flatMap((part) => part.orthancEgress),
        network: parts.flatMap((part) => part.network),
        authorization: parts.flatMap((part) => part.authorization),
        serviceEntries: parts.flatMap((part) => part.serviceEntries),
        cniPolicies: parts.flatMap((part) => part.cniPolicies ?? []),
    };
}
