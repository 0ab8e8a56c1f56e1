/**
 * PostgreSQL HA (Bitnami postgresql-ha: repmgr-managed PostgreSQL behind Pgpool-II) for one tenant: names and Helm
 * values as pure functions, shared by the tenant component and the integration suite.
 */
import type { ReplicationMode } from "../../config/schema";
import { bitnamiImageValues as image, postgresqlHaImages } from "../../versions";

/** Release name; the chart's fullname is the release name when it contains the chart name. */
export const postgresRelease = "postgresql-ha";

/** Orthanc's own database and role. The role owns its database and is not a superuser. */
export const orthancDatabase = { name: "orthanc", user: "orthanc" } as const;

/** Where applications connect: the chart's Pgpool-II Service. */
export const postgresService = { name: `${postgresRelease}-pgpool`, port: 5432 } as const;

/** The Pgpool Service's address inside the cluster, for a tenant namespace. */
export function pgpoolHost(namespace: string): string {
    return `${postgresService.name}.${namespace}.svc.cluster.local`;
}

/** Secrets the chart reads instead of generating (or defaulting) passwords. */
export const postgresSecrets = {
    /** Keys: password (Orthanc's role), postgres-password (superuser), repmgr-password. */
    postgresql: "postgresql-ha-credentials",
    /** Keys: admin-password (Pgpool admin), sr-check-password (streaming replication check). */
    pgpool: "pgpool-credentials",
} as const;

/** Labels the chart puts on its pods, for policies that select them. */
export const postgresPodLabels = {
    postgresql: { "app.kubernetes.io/instance": postgresRelease, "app.kubernetes.io/component": "postgresql" },
    pgpool: { "app.kubernetes.io/instance": postgresRelease, "app.kubernetes.io/component": "pgpool" },
} as const;

/** The chart's service account, whose identity the mesh policies admit between PostgreSQL nodes and Pgpool. */
export const postgresServiceAccount = postgresRelease;

/** Connections each Orthanc replica keeps to the index (its PostgreSQL `IndexConnectionsCount`). */
export const orthancIndexConnections = 5;
/** The PostgreSQL storage plugin keeps one connection of its own besides the index's. */
export const orthancStorageConnections = 1;
/** Every connection one Orthanc replica holds. */
export const orthancConnectionsPerReplica = orthancIndexConnections + orthancStorageConnections;

/**
 * Pgpool's `reserved_connections` (the chart's default, set explicitly so the budget does not depend on it). With it
 * at 1 or more, Pgpool refuses a client ("Sorry, too many clients already") once `num_init_children` minus this many
 * are connected, instead of letting it hang.
 */
export const pgpoolReservedConnections = 1;

export interface ConnectionBudget {
    /** Pgpool-II child processes per Pgpool pod; it accepts this many minus `reservedConnections` clients. */
    numInitChildren: number;
    reservedConnections: number;
    /** Backend connections each child caches; one (user, database) pair is ever used. */
    maxPool: number;
    /** `max_connections` of each PostgreSQL node. */
    maxConnections: number;
}

/**
 * The most connections Orthanc holds at once: every replica the autoscaler may run, plus one surging during a rolling
 * update. Every engine's pooler is sized for it.
 */
export function orthancPeakConnections(orthancMaxReplicas: number): number {
    return (orthancMaxReplicas + 1) * orthancConnectionsPerReplica;
}

/** Room in each Pgpool pod for an operator's psql session and the chart's own health checks. */
const pgpoolSpareChildren = 4;
/** PostgreSQL slots beyond Pgpool's: repmgr, the replication check, standbys' WAL senders, superuser reserve. */
const postgresSpareConnections = 20;

/**
 * Sizes Pgpool and PostgreSQL for the most Orthanc replicas the autoscaler may run, plus one surging during a rolling
 * update. Each Pgpool pod can take every client alone, so losing one Pgpool pod refuses no Orthanc connection.
 * Orthanc's plugin otherwise opens up to 50 connections per replica and Pgpool refuses what it cannot hold.
 */
export function connectionBudget(orthancMaxReplicas: number, pgpoolReplicas: number, otherClients = 0): ConnectionBudget {
    const orthancConnections = orthancPeakConnections(orthancMaxReplicas);
    // `otherClients`: the audit trail's (engines/bitnamiHaAudit.ts), when the tenant has one.
    const numInitChildren = orthancConnections + otherClients + pgpoolSpareChildren + pgpoolReservedConnections;
    const maxPool = 1;
    // Every child of every Pgpool pod may hold a backend.
    return {
        numInitChildren,
        reservedConnections: pgpoolReservedConnections,
        maxPool,
        maxConnections: pgpoolReplicas * numInitChildren * maxPool + postgresSpareConnections,
    };
}

/** The exporter's port (chart default `metrics.containerPorts.http`). */
export const postgresExporterPort = 9187;

/** The pod annotations Istio's injector reads for metrics merging (see `postgresHaValues`). */
export const postgresExporterScrapeAnnotations = {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": String(postgresExporterPort),
    "prometheus.io/path": "/metrics",
} as const;

/** The chart's PostgreSQL pods, `<release>-postgresql-<ordinal>`: repmgr's node names and the standbys' application_name. */
export function postgresNodeNames(replicas: number): string[] {
    return Array.from({ length: replicas }, (_, ordinal) => `${postgresRelease}-postgresql-${ordinal}`);
}

/**
 * The quorum every commit waits for: any one standby of the tenant's nodes has flushed it. With three nodes, one
 * standby may be lost and commits go on; PostgreSQL ignores the primary's own name in the list, so the same setting
 * holds on whichever node repmgr promotes.
 */
export function synchronousStandbyNames(replicas: number): string {
    return `ANY 1 (${postgresNodeNames(replicas).map((name) => `"${name}"`).join(", ")})`;
}

/**
 * What makes the primary synchronous, as SQL for its superuser. ALTER SYSTEM writes postgresql.auto.conf in the data
 * directory: it outlives restarts (the image regenerates postgresql.conf at every start) and `repmgr standby clone`
 * copies it to every standby, so a promoted standby keeps waiting for the others.
 */
export function synchronousReplicationSql(replicas: number): string {
    const names = synchronousStandbyNames(replicas).replace(/'/g, "''");
    return ["ALTER SYSTEM SET synchronous_commit = 'on';", `ALTER SYSTEM SET synchronous_standby_names = '${names}';`, "SELECT pg_reload_conf();"].join("\n");
}

/** Name of the chart's init script that applies `synchronousReplicationSql`; the chart's initdb scripts run in name order. */
export const synchronousReplicationScript = "10-korthweb-synchronous-replication.sh";

/**
 * The script, run once on the first primary's first boot (the image sources it with the server up, before standbys
 * clone). The superuser's password is the one the chart passes to the image; over 127.0.0.1 the image's pg_hba.conf
 * asks for it.
 */
function synchronousReplicationInitScript(replicas: number): string {
    return [
        "# korthweb: synchronous replication (postgres.replication), applied before the standbys clone this data directory.",
        'PGPASSWORD="$POSTGRESQL_POSTGRES_PASSWORD" psql -v ON_ERROR_STOP=1 -X -h 127.0.0.1 -p "$POSTGRESQL_PORT_NUMBER" -U postgres -d postgres <<\'KORTHWEB_SQL\'',
        synchronousReplicationSql(replicas),
        "KORTHWEB_SQL",
        "",
    ].join("\n");
}

export interface PostgresValuesInput {
    replicas: number;
    replication: ReplicationMode;
    pgpoolReplicas: number;
    volumeSize: string;
    storageClass?: string;
    connections: ConnectionBudget;
    /** The chart's `pgpool.customUsersSecret`: more roles Pgpool admits (the audit database's). */
    pgpoolCustomUsersSecret?: string;
}

export function postgresHaValues(input: PostgresValuesInput): Record<string, unknown> {
    return {
        // No `global.security.allowInsecureImages`: the chart's image check (common 2.31.4, `common.errors.insecureImages`)
        // only warns when every replaced image is docker.io/bitnamilegacy/, as ours are; the flag would also let any
        // other image through (tests/upstream/bitnamiImageCheck.ts).
        serviceAccount: { create: true, name: postgresServiceAccount, automountServiceAccountToken: false },
        postgresql: {
            image: image(postgresqlHaImages.postgresqlRepmgr),
            replicaCount: input.replicas,
            username: orthancDatabase.user,
            database: orthancDatabase.name,
            existingSecret: postgresSecrets.postgresql,
            usePasswordFiles: true,
            maxConnections: String(input.connections.maxConnections),
            // The chart's own switch stays off: it waits for every standby (`replicaCount - 1`, so losing one stops
            // writes) and the image writes it into postgresql.conf on the first primary's first boot only, so it is gone
            // after the first restart or failover (tests/upstream/bitnamiSynchronousReplication.ts). The init script
            // below sets a quorum of one that every node keeps.
            syncReplication: false,
            ...(input.replication === "synchronous"
                ? { initdbScripts: { [synchronousReplicationScript]: synchronousReplicationInitScript(input.replicas) } }
                : {}),
            resourcesPreset: "none",
            resources: { requests: { cpu: "500m", memory: "1Gi" }, limits: { memory: "2Gi" } },
            pdb: { create: true, maxUnavailable: 1 },
            // The tenant's NetworkPolicies are the only ones: the chart's default lets any pod in.
            networkPolicy: { enabled: false },
        },
        pgpool: {
            image: image(postgresqlHaImages.pgpool),
            replicaCount: input.pgpoolReplicas,
            existingSecret: postgresSecrets.pgpool,
            ...(input.pgpoolCustomUsersSecret ? { customUsersSecret: input.pgpoolCustomUsersSecret } : {}),
            usePasswordFiles: true,
            numInitChildren: String(input.connections.numInitChildren),
            reservedConnections: input.connections.reservedConnections,
            maxPool: String(input.connections.maxPool),
            // Every query goes to the primary. Load-balanced reads could hit an asynchronous standby, and an instance
            // just stored through one Orthanc replica would then be missing through another.
            useLoadBalancing: false,
            resourcesPreset: "none",
            resources: { requests: { cpu: "250m", memory: "256Mi" }, limits: { memory: "1Gi" } },
            pdb: { create: true, maxUnavailable: 1 },
            networkPolicy: { enabled: false },
        },
        metrics: {
            // postgres_exporter beside each PostgreSQL node, connecting to it over 127.0.0.1 as Orthanc's role.
            enabled: true,
            image: image(postgresqlHaImages.postgresExporter),
            resourcesPreset: "none",
            resources: { requests: { cpu: "10m", memory: "32Mi" }, limits: { memory: "128Mi" } },
            // Scraped through Istio's metrics merging: the injector moves these pod annotations into the sidecar and
            // points them at its agent (15020), which serves Envoy's metrics and the exporter's (fetched over
            // localhost) together. Prometheus, which has no sidecar, never connects to 9187 itself: under STRICT
            // mutual TLS it could not, and the walls stay closed to it.
            annotations: { ...postgresExporterScrapeAnnotations },
            // Nothing scrapes a Service: no Service, and no chart ServiceMonitor (its CRD may not exist).
            service: { enabled: false },
            serviceMonitor: { enabled: false },
        },
        volumePermissions: { enabled: false, image: image(postgresqlHaImages.osShell) },
        persistence: {
            enabled: true,
            size: input.volumeSize,
            ...(input.storageClass ? { storageClass: input.storageClass } : {}),
        },
        // Deleting or scaling down the StatefulSet keeps the data volumes (see README: deleting a tenant).
        persistentVolumeClaimRetentionPolicy: { enabled: true, whenDeleted: "Retain", whenScaled: "Retain" },
        // Istio picks the protocol from the port name.
        service: { portName: "tcp-postgresql" },
    };
}
