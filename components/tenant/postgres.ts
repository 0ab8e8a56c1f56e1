/**
 * PostgreSQL HA (Bitnami postgresql-ha: repmgr-managed PostgreSQL behind Pgpool-II) for one tenant: names and Helm
 * values as pure functions, shared by the tenant component and the integration suite.
 */
import { ImagePin, postgresqlHaImages } from "../versions";

/** Release name; the chart's fullname is the release name when it contains the chart name. */
export const postgresRelease = "postgresql-ha";

/** Orthanc's own database and role. The role owns its database and is not a superuser. */
export const orthancDatabase = { name: "orthanc", user: "orthanc" } as const;

/** Where applications connect: the chart's Pgpool-II Service. */
export const postgresService = { name: `${postgresRelease}-pgpool`, port: 5432 } as const;

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

export interface PostgresValuesInput {
    replicas: number;
    pgpoolReplicas: number;
    volumeSize: string;
    storageClass?: string;
}

function image(pin: ImagePin) {
    return { registry: pin.registry, repository: pin.repository, tag: pin.tag };
}

export function postgresHaValues(input: PostgresValuesInput): Record<string, unknown> {
    return {
        global: {
            // Required by the chart whenever its images are replaced; ours are the same builds, moved to bitnamilegacy.
            security: { allowInsecureImages: true },
        },
        serviceAccount: { create: true, name: postgresServiceAccount, automountServiceAccountToken: false },
        postgresql: {
            image: image(postgresqlHaImages.postgresqlRepmgr),
            replicaCount: input.replicas,
            username: orthancDatabase.user,
            database: orthancDatabase.name,
            existingSecret: postgresSecrets.postgresql,
            usePasswordFiles: true,
            // Orthanc opens a handful of connections per replica; Pgpool multiplexes the rest.
            maxConnections: "200",
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
            usePasswordFiles: true,
            resourcesPreset: "none",
            resources: { requests: { cpu: "250m", memory: "256Mi" }, limits: { memory: "1Gi" } },
            pdb: { create: true, maxUnavailable: 1 },
            networkPolicy: { enabled: false },
        },
        metrics: { enabled: false, image: image(postgresqlHaImages.postgresExporter) },
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
