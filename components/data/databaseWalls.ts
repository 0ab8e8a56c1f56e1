/**
 * Each database engine's part of the tenant's walls (see `DatabaseWalls`), as pure builders.
 */
import { BackupConfig, DatabaseConfig } from "../config/schema";
import { cloudnativePgWalls } from "./engines/cloudnativePg";
import { apiServerPorts } from "../config/schema";
import { backupWalls, ClusterNetwork, combineWalls, defaultClusterNetwork } from "./backup/backup";
import { externalWalls } from "./engines/external";
import { postgresPodLabels, postgresService, postgresServiceAccount } from "./engines/bitnamiHaValues";
import { orthancServiceAccount, TenantNames } from "../naming/tenantNames";
import type { DatabaseWalls } from "./endpoint";
import { podsLabelled, principal, tcp } from "../k8s/walls";

/** What some engines' walls need from the platform: where the CloudNativePG operator runs, where backups go. */
export interface PlatformForWalls {
    cnpgOperatorNamespace?: string;
    /** The API server's addresses, for engines whose pods talk to it. */
    apiServerAddresses?: string[];
    backup?: BackupConfig;
    /** The cluster's CNI and DNS (korthweb:kubernetes.cni, kubernetes.dns): backups reach object storage by name with Cilium. */
    network?: ClusterNetwork;
    /** Where Prometheus runs, for engines whose metrics it scrapes directly. */
    monitoringNamespace?: string;
}

export function databaseWalls(
    names: TenantNames,
    orthancPods: Record<string, string>,
    database: DatabaseConfig,
    platform: PlatformForWalls = {},
): DatabaseWalls {
    switch (database.engine) {
        case "bitnami-ha":
            // Its backup is a job of the program's own, with walls of its own (CloudNativePG backs up from its instances).
            return platform.backup
                ? combineWalls(bitnamiHaWalls(names, orthancPods), backupWalls(names, platform.backup, platform.network ?? defaultClusterNetwork))
                : bitnamiHaWalls(names, orthancPods);
        case "cloudnative-pg":
            if (platform.apiServerAddresses === undefined) {
                throw new Error("the cloudnative-pg engine needs korthweb:kubernetes.apiServerAddresses");
            }
            return cloudnativePgWalls(names, orthancPods, platform.cnpgOperatorNamespace ?? "cnpg-system", platform.backup, {
                cidrs: platform.apiServerAddresses,
                ports: apiServerPorts,
            }, platform.network ?? defaultClusterNetwork, platform.monitoringNamespace);
        case "external":
            if (database.external === undefined) {
                throw new Error('database engine "external" needs database.external');
            }
            return externalWalls(names, orthancPods, database.external);
    }
}

/**
 * Bitnami postgresql-ha: Orthanc reaches Pgpool only, Pgpool and the PostgreSQL nodes reach each other (health checks
 * and replication share the chart's one service account).
 */
export function bitnamiHaWalls(names: TenantNames, orthancPods: Record<string, string>): DatabaseWalls {
    const ns = names.namespace;
    const postgresPort = [tcp(postgresService.port)];
    const allowFrom = (name: string, selector: Record<string, string>, serviceAccount: string) => ({
        namespace: ns,
        name,
        spec: {
            selector: { matchLabels: selector },
            action: "ALLOW",
            rules: [{ from: [{ source: { principals: [principal(ns, serviceAccount)] } }], to: [{ operation: { ports: [String(postgresService.port)] } }] }],
        },
    });
    return {
        orthancEgress: [{ to: [podsLabelled(postgresPodLabels.pgpool)], ports: postgresPort }],
        authorization: [
            allowFrom("allow-orthanc-to-pgpool", postgresPodLabels.pgpool, orthancServiceAccount),
            allowFrom("allow-replication-to-postgresql", postgresPodLabels.postgresql, postgresServiceAccount),
        ],
        network: [
            {
                namespace: ns,
                name: "allow-pgpool",
                spec: {
                    podSelector: { matchLabels: postgresPodLabels.pgpool },
                    policyTypes: ["Ingress", "Egress"],
                    ingress: [{ from: [podsLabelled(orthancPods)], ports: postgresPort }],
                    egress: [{ to: [podsLabelled(postgresPodLabels.postgresql)], ports: postgresPort }],
                },
            },
            {
                namespace: ns,
                name: "allow-postgresql-replication",
                spec: {
                    podSelector: { matchLabels: postgresPodLabels.postgresql },
                    policyTypes: ["Ingress", "Egress"],
                    ingress: [{ from: [podsLabelled(postgresPodLabels.pgpool), podsLabelled(postgresPodLabels.postgresql)], ports: postgresPort }],
                    egress: [{ to: [podsLabelled(postgresPodLabels.postgresql)], ports: postgresPort }],
                },
            },
        ],
        serviceEntries: [],
    };
}
