/**
 * The names, labels and ports of a tenant's CloudNativePG objects, which the engine (cloudnativePg.ts) and the audit
 * database in its Cluster (cloudnativePgAudit.ts) both use.
 */
/** Names of the objects in the tenant namespace. */
export const cnpgNames = {
    cluster: "postgresql",
    /** The Pooler; its Service and Deployment carry the same name (pkg/specs/pgbouncer/services.go, deployments.go). */
    pooler: "postgresql-pooler-rw",
    /** basic-auth Secret of the owner role (bootstrap.initdb.secret). */
    ownerSecret: "postgresql-orthanc-credentials",
    objectStore: "postgresql-backups",
    s3Secret: "postgresql-backup-s3",
    scheduledBackup: "postgresql-scheduled",
} as const;

/** The Pooler's Service in the tenant namespace: where Orthanc and the gatekeeper connect. */
export function cnpgPoolerHost(namespace: string): string {
    return `${cnpgNames.pooler}.${namespace}.svc.cluster.local`;
}

/** PgBouncer listens on 5432, its port is named "pgbouncer" (pkg/management/pgbouncer/config/config.go). */
export const poolerPort = 5432;
export const postgresPort = 5432;

/**
 * The labels CloudNativePG puts on the pods of a Cluster that run PostgreSQL's data directory: its instances and the
 * operator's initdb/join Jobs (pkg/utils/labels_annotations.go, pkg/specs/pods.go, jobs.go).
 */
export function cnpgDatabasePodLabels(cluster: string) {
    return { "cnpg.io/cluster": cluster, "app.kubernetes.io/component": "database" } as const;
}

/** Labels CloudNativePG puts on a tenant's pods (and pgbouncer/ on the Pooler's). */
export const cnpgPodLabels = {
    database: cnpgDatabasePodLabels(cnpgNames.cluster),
    pooler: { "cnpg.io/poolerName": cnpgNames.pooler },
} as const;
