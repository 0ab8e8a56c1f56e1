/**
 * A tenant's PostgreSQL as a CloudNativePG `Cluster` behind a PgBouncer `Pooler`, with optional continuous backups
 * to S3 through the Barman Cloud plugin. Pure builders for every object and for the engine's part of the walls; the
 * component only creates what they return.
 *
 * Mesh decision (see docs/cloudnative-pg.md, "The mesh"):
 * - PostgreSQL instances (and the operator's initdb/join Jobs) run OUTSIDE the mesh (`sidecar.istio.io/inject: "false"`
 *   through `spec.inheritedMetadata`, which CloudNativePG copies to instance pods and to its Jobs' pod templates:
 *   internal/controller/cluster_create.go `inheritJobMetadata` in cloudnative-pg v1.30.0). The operator reaches them
 *   by pod IP on 8000 over HTTPS (`--status-port-tls`, pkg/specs/pods.go), instances ping each other there
 *   (the liveness isolation check, on by default: api/v1/cluster_defaults.go `setProbes`, pinger.go), and stream
 *   WAL to each other on 5432 with client certificates (pkg/postgres/configuration.go, FIXED RULES). A sidecar with
 *   STRICT mTLS would refuse the non-meshed operator and break the jobs' start-up (docs/src/troubleshooting.md,
 *   "Bootstrap job hangs"). Their own TLS protects those paths, and a `hostnossl ... reject` rule makes TLS mandatory
 *   for every other connection to them.
 * - The Pooler stays INSIDE the mesh. Orthanc's PostgreSQL plugin connects with `sslmode=disable` when `EnableSsl`
 *   is false (orthanc-databases Framework/PostgreSQL/PostgreSQLParameters.cpp, `Format`), which korthweb's
 *   configuration sets because the mesh encrypts pod-to-pod traffic. With a non-meshed pooler, Orthanc's sidecar would
 *   send that plaintext as is (no peer sidecar, no mutual TLS), so the pooler is meshed: Orthanc -> PgBouncer is
 *   Istio mutual TLS and is authorised by Orthanc's identity, exactly as for the Bitnami engine's Pgpool. PgBouncer
 *   -> PostgreSQL is CloudNativePG's TLS (`server_tls_sslmode`, verified against the cluster CA), which the pooler's
 *   sidecar passes through as opaque TCP to the non-meshed instances.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { BackupConfig, BackupIdentity, ReplicationMode, requireTenantBackupTarget, tenantBackupTarget, TenantConfig } from "../../config/schema";
import { ClusterNetwork, defaultClusterNetwork, objectStorageEgress, roleAnnotations } from "../backup/backup";
import { cnpgPostgresImage, imageReference } from "../../versions";
import { cloudnativePgOperatorPodLabels } from "../../platform/cloudnativePg";
import { orthancServiceAccount, TenantNames } from "../../naming/tenantNames";
import { orthancDatabase, orthancPeakConnections } from "./bitnamiHaValues";
import type { DatabaseEndpoint, DatabaseWalls } from "../endpoint";
import { cnpgNames, cnpgPodLabels, cnpgPoolerHost, poolerPort, postgresPort } from "./cloudnativePgNames";
import { createAuditJobs } from "./auditJobs";
import { auditDatabase, rendersAuditDatabase } from "./auditDatabase";
import {
    cnpgAuditClients,
    cnpgAuditConnection,
    cnpgAuditDatabaseSpec,
    cnpgAuditManagedRoles,
    cnpgAuditNames,
    cnpgAuditPgHba,
    cnpgAuditRetentionCronJobSpec,
    cnpgAuditSetupJobSpec,
    databaseAwait,
} from "./cloudnativePgAudit";
import { monitoringNamespaceSelector, NamedSpec, namespaceNamed, podsLabelled, principal, tcp } from "../../k8s/walls";

type NetworkPolicySpec = k8s.types.input.networking.v1.NetworkPolicySpec;

export { cnpgNames, cnpgPodLabels, poolerPort, postgresPort };

/** The instance manager's status port (pkg/management/url/url.go `StatusPort`). */
export const instanceStatusPort = 8000;

/**
 * The instance manager's metrics port, named "metrics" on every instance pod (pkg/management/url/url.go
 * `PostgresMetricsPort`, pkg/specs/pods.go): the `cnpg_*` metrics and the Barman Cloud plugin's backup timestamps.
 */
export const instanceMetricsPort = { name: "metrics", number: 9187 } as const;

/** The Barman Cloud plugin's name, as Clusters and Backups reference it. */
export const barmanCloudPluginName = "barman-cloud.cloudnative-pg.io";

/** Istio honours this pod label over the namespace's `istio-injection: enabled`. */
const noSidecar = { "sidecar.istio.io/inject": "false" } as const;

/** The PostgreSQL image (components/versions.ts `cnpgPostgresImage`). */
export const postgresImage = imageReference(cnpgPostgresImage);

export interface PoolerBudget {
    /** PgBouncer's `max_client_conn` per pooler pod. */
    maxClientConn: number;
    /** PgBouncer's `default_pool_size`: server connections per (user, database) per pooler pod. */
    defaultPoolSize: number;
    /** `max_connections` of each PostgreSQL instance. */
    maxConnections: number;
}

/** Room in each pooler pod for an operator's psql session. */
const poolerSpareClients = 4;
/**
 * PostgreSQL slots beyond the poolers': superuser_reserved_connections, WAL senders of the standbys and of backups,
 * the instance manager's and the metrics exporter's local connections, the poolers' auth_query user.
 */
const postgresSpareConnections = 20;

/**
 * Like the Bitnami engine's `connectionBudget`: sized for the most Orthanc replicas the autoscaler may run plus one
 * surging. In session mode each client holds a server connection for its whole life, so each pooler pod may have to
 * carry every Orthanc connection alone (the Service spreads connections unevenly), and PostgreSQL must hold every
 * pooler pod's full pool.
 */
export function poolerBudget(orthancMaxReplicas: number, poolerInstances: number, audit: { pooled: number; direct: number } = { pooled: 0, direct: 0 }): PoolerBudget {
    const orthancConnections = orthancPeakConnections(orthancMaxReplicas);
    // The audit trail's clients (cloudnativePgAudit.ts `cnpgAuditClients`): the gatekeepers through any one pooler
    // pod, each holding a server connection of its own there; its jobs directly.
    return {
        maxClientConn: orthancConnections + audit.pooled + poolerSpareClients,
        defaultPoolSize: orthancConnections,
        maxConnections: poolerInstances * (orthancConnections + audit.pooled) + audit.direct + postgresSpareConnections,
    };
}

export interface ClusterSpecInput {
    instances: number;
    replication: ReplicationMode;
    volumeSize: string;
    storageClass?: string;
    maxConnections: number;
    /** With backups: the ObjectStore the Cluster archives WAL to. */
    objectStore?: string;
    /**
     * With backups as an IAM role: the instances' ServiceAccount (the operator names it after the Cluster and merges
     * `serviceAccountTemplate`'s metadata into it: cloudnative-pg v1.30.0 internal/controller/cluster_create.go
     * `createOrPatchServiceAccount`) carries the role, so the pods, the plugin's sidecar included, get its token.
     */
    backupIdentity?: BackupIdentity;
    /** The database initdb creates and its owner's basic-auth Secret: Orthanc's unless given (the in-cluster Keycloak's). */
    database?: { name: string; owner: string; secret: string };
    /** The instances' requests and limits: sized for Orthanc's index unless given. */
    resources?: Record<string, unknown>;
    /** The gatekeeper's audit database (cloudnativePgAudit.ts): its managed roles and pg_hba lines. */
    audit?: boolean;
}

/**
 * Synchronous replication (`postgresql.synchronous`, api/v1/cluster_types.go `SynchronousReplicaConfiguration`):
 * every commit waits for one standby (quorum, `any`), and `required` durability never lets the primary commit alone
 * (`preferred` would, whenever no standby is up, and a failover could then lose what it acknowledged). The schema
 * asks for three instances, so one standby may be lost without stopping writes. Asynchronous: no `synchronous` block.
 */
export function synchronousReplication(replication: ReplicationMode): Record<string, unknown> | undefined {
    return replication === "synchronous" ? { method: "any", number: 1, dataDurability: "required" } : undefined;
}

export function clusterSpec(input: ClusterSpecInput): Record<string, unknown> {
    const synchronous = synchronousReplication(input.replication);
    return {
        instances: input.instances,
        imageName: postgresImage,
        // No `postgres` superuser password anywhere: the operator administers through the local socket.
        enableSuperuserAccess: false,
        bootstrap: {
            initdb: {
                database: input.database?.name ?? orthancDatabase.name,
                // Created by initdb as an ordinary login role that owns the database (docs/src/bootstrap.md): not a
                // superuser, no CREATEROLE, no replication.
                owner: input.database?.owner ?? orthancDatabase.user,
                secret: { name: input.database?.secret ?? cnpgNames.ownerSecret },
            },
        },
        inheritedMetadata: { labels: { ...noSidecar } },
        postgresql: {
            parameters: { max_connections: String(input.maxConnections) },
            ...(synchronous ? { synchronous } : {}),
            // Instances are outside the mesh: refuse any connection that is not TLS. The operator's fixed rules
            // (replication, the pooler's auth user) come first and are hostssl already.
            pg_hba: ["hostnossl all all all reject", ...(input.audit ? cnpgAuditPgHba() : [])],
        },
        ...(input.audit ? { managed: { roles: cnpgAuditManagedRoles() } } : {}),
        storage: { size: input.volumeSize, ...(input.storageClass ? { storageClass: input.storageClass } : {}) },
        resources: input.resources ?? { requests: { cpu: "500m", memory: "1Gi" }, limits: { memory: "2Gi" } },
        // One instance per node where the cluster has nodes enough (preferred, so a small cluster still schedules).
        affinity: { enablePodAntiAffinity: true, topologyKey: "kubernetes.io/hostname", podAntiAffinityType: "preferred" },
        ...(input.backupIdentity?.kind === "role" ? { serviceAccountTemplate: { metadata: { annotations: roleAnnotations(input.backupIdentity) } } } : {}),
        ...(input.objectStore
            ? { plugins: [{ name: barmanCloudPluginName, isWALArchiver: true, parameters: { barmanObjectName: input.objectStore } }] }
            : {}),
    };
}

export interface PoolerSpecInput {
    instances: number;
    budget: PoolerBudget;
}

export function poolerSpec(input: PoolerSpecInput): Record<string, unknown> {
    return {
        cluster: { name: cnpgNames.cluster },
        instances: input.instances,
        type: "rw",
        pgbouncer: {
            // Orthanc's PostgreSQL plugin uses prepared statements; transaction pooling breaks them.
            poolMode: "session",
            parameters: {
                max_client_conn: String(input.budget.maxClientConn),
                default_pool_size: String(input.budget.defaultPoolSize),
                // The default, stated so a change of default cannot weaken the hop to the non-meshed instances.
                server_tls_sslmode: "verify-ca",
            },
        },
        template: {
            // In the mesh, whatever the namespace default: Orthanc reaches it with mutual TLS (see the file comment).
            metadata: { labels: { "sidecar.istio.io/inject": "true" } },
            spec: {
                containers: [{ name: "pgbouncer", resources: { requests: { cpu: "100m", memory: "64Mi" }, limits: { memory: "256Mi" } } }],
            },
        },
        // Istio would sniff a port named "pgbouncer"; appProtocol says TCP. The operator keeps a port of that name
        // (pkg/servicespec/builder.go `WithServicePortNoOverwrite`).
        serviceTemplate: { spec: { ports: [{ name: "pgbouncer", port: poolerPort, targetPort: "pgbouncer", protocol: "TCP", appProtocol: "tcp" }] } },
    };
}

/** Host and port of the S3 endpoint (an https URL, port 443 unless it names one). */
export function objectStorageEndpoint(backup: BackupConfig): { host: string; port: number } {
    const url = new URL(backup.s3.endpoint);
    return { host: url.hostname, port: url.port ? Number(url.port) : 443 };
}

/**
 * The tenant's Barman Cloud object store: its own bucket and prefix, its own key pair (the Secret `cnpgNames.s3Secret`)
 * or IAM role (`inheritFromIAMRole`: boto3 finds the EKS webhook's AWS_ROLE_ARN and token file in the sidecar), and its
 * own KMS key for base backups and WAL alike.
 *
 * - Encryption: `encryption: aws:kms` (the CRD's enum is AES256 or aws:kms, plugin-barman-cloud 0.13.0) makes Barman
 *   pass `--encryption aws:kms` (cloudnative-pg/barman-cloud pkg/backup/backup.go, pkg/archiver/command.go); the key
 *   goes in `--sse-kms-key-id=<arn>` through `additionalCommandArgs` / `archiveAdditionalCommandArgs`, which the
 *   library appends unless an option of that name is already there (pkg/api/config.go `appendAdditionalCommandArgs`),
 *   and which barman-cloud-backup and barman-cloud-wal-archive accept with aws:kms (EnterpriseDB/barman
 *   barman/clients/cloud_backup.py, cloud_walarchive.py; the plugin's sidecar pins barman 3.19.1). Without a KMS key
 *   the bucket's default encryption applies. The sidecar's boto3 1.43.26 (containers/sidecar-requirements.txt) checksums
 *   uploads by default, which a bucket with object lock requires.
 * - No `retentionPolicy`: applying one runs barman-cloud-backup-delete, which needs DeleteObject, and a key that can
 *   delete can erase the archive a point-in-time restore needs. With none the plugin skips deletion and still prunes
 *   the Backup objects whose backups left the catalog (plugin-barman-cloud v0.13.0 internal/cnpgi/instance/retention.go
 *   `maintenance`). The bucket's lifecycle rules expire old base backups and WAL (components/data/backup/backupPolicy.ts).
 */
export function objectStoreSpec(tenant: string, backup: BackupConfig): Record<string, unknown> {
    const key = (k: string) => ({ name: cnpgNames.s3Secret, key: k });
    const target = requireTenantBackupTarget(backup, tenant);
    const kms = target.kmsKeyId === undefined ? undefined : [`--sse-kms-key-id=${target.kmsKeyId}`];
    const role = target.identity.kind === "role";
    return {
        configuration: {
            // The plugin appends the server name (the Cluster's name) below this path.
            destinationPath: `s3://${target.bucket}/${target.prefix.replace(/\/$/, "")}`,
            endpointURL: backup.s3.endpoint,
            s3Credentials: role
                ? { inheritFromIAMRole: true }
                : { accessKeyId: key("ACCESS_KEY_ID"), secretAccessKey: key("ACCESS_SECRET_KEY"), region: key("REGION") },
            wal: { compression: "gzip", ...(kms ? { encryption: "aws:kms", archiveAdditionalCommandArgs: kms } : {}) },
            data: { compression: "gzip", ...(kms ? { encryption: "aws:kms", additionalCommandArgs: kms } : {}) },
        },
        // With a role the plugin reads no region from a Secret (cloudnative-pg/barman-cloud pkg/credentials/env.go
        // `envSetAWSCredentials` returns before it): the sidecar gets it here, and STS's regional endpoint, whatever
        // the cluster's webhook would inject (it adds neither when a container has one: handler.go `addEnvToContainer`).
        ...(role
            ? {
                  instanceSidecarConfiguration: {
                      env: [
                          { name: "AWS_REGION", value: backup.s3.region },
                          { name: "AWS_DEFAULT_REGION", value: backup.s3.region },
                          { name: "AWS_STS_REGIONAL_ENDPOINTS", value: "regional" },
                      ],
                  },
              }
            : {}),
    };
}

/**
 * CloudNativePG parses schedules with robfig/cron v1 `Parse` (go.mod, internal/controller/scheduledbackup_controller.go
 * at v1.30.0), whose first field is seconds; the stack's schedule is a five-field cron. A five-field string would be
 * read with its minute as seconds, so a zero seconds field is prepended.
 */
export function operatorSchedule(cron: string): string {
    return `0 ${cron.trim().split(/\s+/).join(" ")}`;
}

export function scheduledBackupSpec(backup: BackupConfig): Record<string, unknown> {
    return {
        schedule: operatorSchedule(backup.schedule),
        cluster: { name: cnpgNames.cluster },
        method: "plugin",
        pluginConfiguration: { name: barmanCloudPluginName },
        // A first base backup right away: WAL archived before any base backup cannot be restored.
        immediate: true,
        // Backups belong to the ScheduledBackup; the bucket's lifecycle rules expire the data itself.
        backupOwnerReference: "self",
    };
}

/**
 * What Prometheus scrapes of every tenant's CloudNativePG instances: port "metrics" of the pods labelled as instances
 * (`cnpg.io/podRole: instance`, which the initdb and join jobs lack), in any namespace. Created by the platform's
 * Observability (CloudNativePG 1.30's own `spec.monitoring.enablePodMonitor` is deprecated, api/v1/cluster_types.go).
 * Plain HTTP: the instances are outside the mesh. The series get `namespace` and `pod_name` as the Envoy ones do, and
 * one `job`, which the alerts select (components/platform/alerts.ts `cnpgMetricsJob`).
 */
export function cnpgPodMonitorSpec(job: string): Record<string, unknown> {
    return {
        selector: { matchLabels: { ...cnpgPodLabels.database, "cnpg.io/podRole": "instance" } },
        namespaceSelector: { any: true },
        podMetricsEndpoints: [
            {
                port: instanceMetricsPort.name,
                path: "/metrics",
                interval: "30s",
                relabelings: [
                    { action: "replace", targetLabel: "job", replacement: job },
                    { action: "replace", sourceLabels: ["__meta_kubernetes_namespace"], targetLabel: "namespace" },
                    { action: "replace", sourceLabels: ["__meta_kubernetes_pod_name"], targetLabel: "pod_name" },
                ],
            },
        ],
    };
}

/** Who may reach the Kubernetes API server from the engine's pods (instance managers, the pooler, the jobs). */
export interface ApiServerAccess {
    cidrs: string[];
    ports: number[];
}


/**
 * The engine's part of the walls. NetworkPolicies for every path, AuthorizationPolicies only where a sidecar enforces
 * them (the pooler), no ServiceEntry: the instances, which talk to object storage, have no sidecar, so the mesh's
 * REGISTRY_ONLY egress does not apply to them; their way to object storage rests on the NetworkPolicy (fixed
 * addresses, or any address with `backup.s3.anyAddress`) or on the CNI's FQDN policy alone (`objectStorageEgress`).
 */
export function cloudnativePgWalls(
    names: TenantNames,
    orthancPods: Record<string, string>,
    operatorNamespace: string,
    backup: BackupConfig | undefined,
    /** The API server's addresses and ports (korthweb:kubernetes.apiServerAddresses): the pods' instance managers talk to it. */
    apiServer: ApiServerAccess,
    /** The cluster's CNI and DNS, for egress to object storage by name. */
    clusterNetwork: ClusterNetwork = defaultClusterNetwork,
    /**
     * Where Prometheus runs, when the program created it: it scrapes the instances' metrics port. Undefined with
     * observability off: then nobody is admitted there (a namespace someone names `monitoring` included).
     */
    monitoringNamespace?: string,
): DatabaseWalls {
    const ns = names.namespace;
    const database = podsLabelled(cnpgPodLabels.database);
    const pooler = podsLabelled(cnpgPodLabels.pooler);
    const operator = { ...namespaceNamed(operatorNamespace), podSelector: { matchLabels: { ...cloudnativePgOperatorPodLabels } } };
    const toApiServer = { to: apiServer.cidrs.map((cidr) => ({ ipBlock: { cidr } })), ports: apiServer.ports.map(tcp) };
    const backupEgress = backup ? objectStorageEgress(names, backup, { ...cnpgPodLabels.database }, "allow-cnpg-instances-to-object-storage", clusterNetwork) : undefined;
    const network: NamedSpec<NetworkPolicySpec>[] = [
        {
            namespace: ns,
            name: "allow-cnpg-pooler",
            spec: {
                podSelector: { matchLabels: { ...cnpgPodLabels.pooler } },
                policyTypes: ["Ingress", "Egress"],
                ingress: [{ from: [podsLabelled(orthancPods)], ports: [tcp(poolerPort)] }],
                egress: [{ to: [database], ports: [tcp(postgresPort)] }, toApiServer],
            },
        },
        {
            namespace: ns,
            name: "allow-cnpg-instances",
            spec: {
                podSelector: { matchLabels: { ...cnpgPodLabels.database } },
                policyTypes: ["Ingress", "Egress"],
                ingress: [
                    // Pooler connections; streaming replication and join jobs' base backups from each other.
                    { from: [pooler, database], ports: [tcp(postgresPort)] },
                    // The isolation check between instances, and the operator's status, backup and upgrade calls.
                    { from: [database, operator], ports: [tcp(instanceStatusPort)] },
                    // Prometheus (no sidecar, like the instances) scrapes the instance manager's metrics; admitted by
                    // the label the program puts on the namespace it creates, not by the name alone.
                    ...(monitoringNamespace === undefined
                        ? []
                        : [{ from: [monitoringNamespaceSelector(monitoringNamespace)], ports: [tcp(instanceMetricsPort.number)] }]),
                ],
                egress: [
                    { to: [database], ports: [tcp(postgresPort), tcp(instanceStatusPort)] },
                    toApiServer,
                    // The instances have no sidecar: this NetworkPolicy (or the CNI's FQDN policy) alone bounds
                    // their way to object storage.
                    ...(backupEgress?.networkPolicy ?? []),
                ],
            },
        },
    ];
    return {
        orthancEgress: [{ to: [pooler], ports: [tcp(poolerPort)] }],
        network,
        authorization: [
            {
                namespace: ns,
                name: "allow-orthanc-to-cnpg-pooler",
                spec: {
                    selector: { matchLabels: { ...cnpgPodLabels.pooler } },
                    action: "ALLOW",
                    rules: [{ from: [{ source: { principals: [principal(ns, orthancServiceAccount)] } }], to: [{ operation: { ports: [String(poolerPort)] } }] }],
                },
            },
        ],
        serviceEntries: [],
        cniPolicies: backupEgress?.cniPolicies ?? [],
    };
}

/**
 * What Pulumi waits for before Orthanc starts. The Kubernetes provider counts a custom resource as created as soon
 * as the API server stores it unless it carries `pulumi.com/waitFor` (pulumi-kubernetes provider/pkg/metadata/
 * overrides.go `ReadyCondition`; tests/upstream/customResourceReadiness.ts): Orthanc would start during initdb and
 * crash-loop until its own Deployment's await gives up.
 * - The Cluster: its `Ready` condition, True only in the phase "Cluster in healthy state" (every instance up, the
 *   standbys joined: cloudnative-pg v1.30.0 pkg/resources/status/transactions.go). initdb, then one join after the
 *   other, each with a volume to provision and an image to pull, outlasts the provider's 10-minute default: 30.
 */
export const clusterReadyTimeoutSeconds = 30 * 60;
export const clusterAwait = {
    "pulumi.com/waitFor": "condition=Ready",
    "pulumi.com/timeoutSeconds": String(clusterReadyTimeoutSeconds),
} as const;

/**
 * - The Pooler: its status has no condition and no ready count (api/v1/pooler_types.go `PoolerStatus`; `instances`
 *   is its Deployment's `status.replicas`, pods created). `phase` active and `instances` at the configured count say
 *   the operator reconciled it and its Deployment runs at full size; PgBouncer's own start (seconds, the Cluster being
 *   ready) is left to Orthanc's Deployment await, during which Orthanc retries.
 */
export function poolerAwait(instances: number): Record<string, string> {
    return { "pulumi.com/waitFor": JSON.stringify(["jsonpath={.status.phase}=active", `jsonpath={.status.instances}=${instances}`]) };
}

export interface CloudNativePgDatabaseArgs {
    tenant: TenantConfig;
    /** The tenant namespace, created by the tenant. */
    namespace: string;
    /** What the database waits for: the namespace, the tenant's walls, the sidecar injector. */
    dependsOn: pulumi.Input<pulumi.Resource>[];
    operator: { namespace: string; ready: pulumi.Input<pulumi.Resource>[] };
    backup?: BackupConfig;
}

/**
 * The tenant's PostgreSQL on CloudNativePG. Orthanc connects to the Pooler's Service as the database's owner role,
 * whose password is generated here and handed to initdb in a basic-auth Secret. What holds data (the Cluster, the
 * credentials, the backup configuration) is protected when the tenant's `protectData` says so.
 */
export class CloudNativePgDatabase extends pulumi.ComponentResource {
    readonly endpoint: DatabaseEndpoint;
    readonly ready: pulumi.Resource[];

    constructor(name: string, args: CloudNativePgDatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
        super("korthweb:database:CloudNativePgDatabase", name, {}, opts);
        const { tenant, backup } = args;
        const protect = tenant.protectData;
        const ns = args.namespace;
        const generatedPassword = (purpose: string) =>
            pulumi.secret(new random.RandomPassword(`${name}-${purpose}-password`, { length: 32, special: false }, { parent: this, protect }).result);
        const password = generatedPassword("orthanc");
        const ownerSecret = new k8s.core.v1.Secret(
            `${name}-owner-credentials`,
            {
                metadata: { name: cnpgNames.ownerSecret, namespace: ns },
                type: "kubernetes.io/basic-auth",
                stringData: { username: orthancDatabase.user, password },
            },
            { parent: this, protect, dependsOn: args.dependsOn },
        );
        const crdOpts = { parent: this, dependsOn: [...args.dependsOn, ...args.operator.ready] };
        const backupObjects: pulumi.Resource[] = [];
        const identity = backup ? tenantBackupTarget(backup, tenant.name)?.identity : undefined;
        if (backup) {
            // The tenant's own key pair (the schema refuses a stack without one, or with one another tenant has); none
            // with a role.
            const s3Secret =
                identity?.kind === "keyPair"
                    ? [
                          new k8s.core.v1.Secret(
                              `${name}-backup-s3`,
                              {
                                  metadata: { name: cnpgNames.s3Secret, namespace: ns },
                                  stringData: {
                                      ACCESS_KEY_ID: pulumi.secret(identity.accessKeyId),
                                      ACCESS_SECRET_KEY: pulumi.secret(identity.secretAccessKey),
                                      REGION: backup.s3.region,
                                  },
                              },
                              { parent: this, protect, dependsOn: args.dependsOn },
                          ),
                      ]
                    : [];
            backupObjects.push(
                ...s3Secret,
                new k8s.apiextensions.CustomResource(
                    `${name}-object-store`,
                    {
                        apiVersion: "barmancloud.cnpg.io/v1",
                        kind: "ObjectStore",
                        metadata: { name: cnpgNames.objectStore, namespace: ns },
                        spec: objectStoreSpec(tenant.name, backup),
                    },
                    { ...crdOpts, protect, dependsOn: [...crdOpts.dependsOn, ...s3Secret] },
                ),
            );
        }
        // The gatekeeper's audit database (cloudnativePgAudit.ts), for a tenant whose users sign in through it: the
        // managed roles' password Secrets exist before the Cluster names them.
        const audited = rendersAuditDatabase(tenant);
        const auditPasswords = audited ? { owner: generatedPassword("audit-owner"), writer: generatedPassword("audit-gatekeeper") } : undefined;
        const auditSecrets = auditPasswords
            ? [
                  [cnpgAuditNames.ownerSecret, "audit-owner-credentials", auditDatabase.owner, auditPasswords.owner] as const,
                  [cnpgAuditNames.writerSecret, "audit-gatekeeper-credentials", auditDatabase.writer, auditPasswords.writer] as const,
              ].map(
                  ([secretName, suffix, username, secret]) =>
                      new k8s.core.v1.Secret(
                          `${name}-${suffix}`,
                          { metadata: { name: secretName, namespace: ns }, type: "kubernetes.io/basic-auth", stringData: { username, password: secret } },
                          { parent: this, protect, dependsOn: args.dependsOn },
                      ),
              )
            : [];
        const budget = poolerBudget(tenant.orthanc.maxReplicas, tenant.postgres.pgpoolReplicas, audited ? cnpgAuditClients : undefined);
        const cluster = new k8s.apiextensions.CustomResource(
            `${name}-cluster`,
            {
                apiVersion: "postgresql.cnpg.io/v1",
                kind: "Cluster",
                metadata: { name: cnpgNames.cluster, namespace: ns, annotations: { ...clusterAwait } },
                spec: clusterSpec({
                    instances: tenant.postgres.replicas,
                    replication: tenant.postgres.replication,
                    volumeSize: tenant.postgres.volumeSize,
                    storageClass: tenant.postgres.storageClass,
                    maxConnections: budget.maxConnections,
                    objectStore: backup ? cnpgNames.objectStore : undefined,
                    backupIdentity: identity,
                    audit: audited,
                }),
            },
            { ...crdOpts, protect, dependsOn: [...crdOpts.dependsOn, ownerSecret, ...backupObjects, ...auditSecrets] },
        );
        const pooler = new k8s.apiextensions.CustomResource(
            `${name}-pooler`,
            {
                apiVersion: "postgresql.cnpg.io/v1",
                kind: "Pooler",
                metadata: { name: cnpgNames.pooler, namespace: ns, annotations: poolerAwait(tenant.postgres.pgpoolReplicas) },
                spec: poolerSpec({ instances: tenant.postgres.pgpoolReplicas, budget }),
            },
            { ...crdOpts, dependsOn: [...crdOpts.dependsOn, cluster] },
        );
        if (backup) {
            new k8s.apiextensions.CustomResource(
                `${name}-scheduled-backup`,
                {
                    apiVersion: "postgresql.cnpg.io/v1",
                    kind: "ScheduledBackup",
                    metadata: { name: cnpgNames.scheduledBackup, namespace: ns },
                    spec: scheduledBackupSpec(backup),
                },
                { ...crdOpts, dependsOn: [...crdOpts.dependsOn, cluster] },
            );
        }
        this.ready = [cluster, pooler];
        const audit = auditPasswords && tenant.identity ? this.renderAudit(name, args, tenant.identity.audit.retentionDays, auditPasswords.writer, crdOpts, [cluster, ...auditSecrets], pooler) : undefined;
        this.endpoint = {
            host: cnpgPoolerHost(ns),
            port: poolerPort,
            database: orthancDatabase.name,
            user: orthancDatabase.user,
            password,
            ready: this.ready,
            ...(audit ? { audit } : {}),
        };
        this.registerOutputs({ host: this.endpoint.host });
    }

    /**
     * The audit database (the `Database`, awaited until applied), its setup Job (awaited by Pulumi: a setup that fails
     * fails the update) and its retention CronJob, each job with its own service account and no API token.
     */
    private renderAudit(
        name: string,
        args: CloudNativePgDatabaseArgs,
        retentionDays: number,
        writerPassword: pulumi.Output<string>,
        crdOpts: { parent: pulumi.Resource; dependsOn: pulumi.Input<pulumi.Resource>[] },
        dependsOn: pulumi.Resource[],
        pooler: pulumi.Resource,
    ): NonNullable<DatabaseEndpoint["audit"]> {
        const ns = args.namespace;
        const database = new k8s.apiextensions.CustomResource(
            `${name}-audit-database`,
            {
                apiVersion: "postgresql.cnpg.io/v1",
                kind: "Database",
                metadata: { name: cnpgAuditNames.database, namespace: ns, annotations: { ...databaseAwait } },
                spec: cnpgAuditDatabaseSpec(),
            },
            { ...crdOpts, protect: args.tenant.protectData, dependsOn: [...crdOpts.dependsOn, ...dependsOn] },
        );
        const setup = createAuditJobs(
            name,
            ns,
            { setupSpec: cnpgAuditSetupJobSpec(ns), setupDependsOn: [database], retentionSpec: cnpgAuditRetentionCronJobSpec(ns, retentionDays) },
            { parent: this, dependsOn: [...args.dependsOn, ...dependsOn] },
        );
        return { connection: cnpgAuditConnection(ns), password: writerPassword, ready: [setup, pooler] };
    }
}