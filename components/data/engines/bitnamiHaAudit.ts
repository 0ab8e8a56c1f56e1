/**
 * The gatekeepers' audit database in a tenant's Bitnami postgresql-ha (README, "Who signs in"), as pure builders: a
 * database `audit` of its own, owned by a role of its own (`audit_owner`), in which the gatekeeper's role
 * (`gatekeeper_audit`) may INSERT and SELECT and nothing else (the gatekeeper's `auditDatabaseStatements`), and which
 * Orthanc's role cannot even CONNECT to; the Job that sets it up; the daily CronJob that deletes what is older than
 * `identity.audit.retentionDays`; the Pgpool users they need; and their walls.
 *
 * Why a Job of the program's own rather than the chart's initdb scripts: those run on the first primary's first boot
 * only, so a tenant deployed before this module (or a cluster restored from a backup) would never get the database.
 * The Job runs at every `pulumi up` that changes it, and its SQL is idempotent (roles, database and table are created
 * when missing, passwords and grants set again). It connects to the PostgreSQL primary directly, as the superuser:
 * Pgpool admits only the users of its pool_passwd (the chart's `pgpool.customUsersSecret`), and the superuser is not
 * one of them (the chart adds Orthanc's role and the custom users only); the superuser's password never leaves this
 * Job. The gatekeeper and the retention job connect through Pgpool, as Orthanc does.
 *
 * Both pods end their Istio sidecar themselves (POST to the agent's /quitquitquit over bash's /dev/tcp: the image has
 * no curl), as the backup pod does, so that a Job completes with a classic sidecar too.
 */
import type * as k8s from "@pulumi/kubernetes";
import type { TenantConfig } from "../../config/schema";
import type { TenantNames } from "../../naming/tenantNames";
import { podsLabelled, principal, tcp } from "../../k8s/walls";
import { auditDatabaseStatements, auditTable } from "../../identity/gatekeeper/server";
import { gatekeeperName, gatekeeperSelector } from "../../identity/names";
import { imageReference, postgresqlHaImages } from "../../versions";
import { backupUid, cronJobRunPolicy, hardenedContainerSecurity, shellQuote, sidecarQuitUrl } from "../backup/backup";
import type { DatabaseWalls } from "../endpoint";
import { orthancDatabase, postgresNodeNames, postgresPodLabels, postgresRelease, postgresSecrets, postgresService, pgpoolHost } from "./bitnamiHaValues";

/** The audit database and its two roles. Neither is Orthanc's (`orthanc`), and neither is a superuser. */
export const auditDatabase = { name: "audit", owner: "audit_owner", writer: "gatekeeper_audit" } as const;

/**
 * Whether the tenant's engine renders the audit database: its users sign in through the gatekeeper (`identity.oidc` or `identity.keycloak`),
 * its engine is this one, and its stack did not choose the gatekeeper's stdout alone (`identity.audit.stdoutOnly`).
 */
export function rendersAuditDatabase(tenant: TenantConfig): boolean {
    const identity = tenant.identity;
    return tenant.database.engine === "bitnami-ha" && identity !== undefined && !identity.disabled && !identity.audit.stdoutOnly;
}

/** Object names in the tenant namespace. */
export const auditNames = {
    /** Keys `auditCredentialKeys`: the two roles' generated passwords. */
    credentials: "audit-database-credentials",
    /** The chart's `pgpool.customUsersSecret` (keys `usernames`, `passwords`): Pgpool admits the two roles. */
    pgpoolUsers: "pgpool-custom-users",
    setupJob: "audit-database-setup",
    setupServiceAccount: "audit-database-setup",
    retentionCronJob: "audit-retention",
    retentionServiceAccount: "audit-retention",
    jobsNetworkPolicy: "allow-audit-database-jobs",
    postgresqlIngress: "allow-audit-setup-to-postgresql",
    pgpoolIngress: "allow-audit-to-pgpool",
    postgresqlAuthorization: "allow-audit-setup-to-postgresql",
    pgpoolAuthorization: "allow-audit-to-pgpool",
} as const;

export const auditCredentialKeys = { owner: "owner-password", writer: "gatekeeper-password" } as const;

/** Labels of the two pods, which the walls select. */
export const auditPodLabels = {
    setup: { "app.kubernetes.io/name": "audit-database", "app.kubernetes.io/component": "setup" },
    retention: { "app.kubernetes.io/name": "audit-database", "app.kubernetes.io/component": "retention" },
} as const;

/** The environment the scripts read their passwords from (nothing secret is in a script or the Job's spec). */
export const auditEnvironment = { password: "PGPASSWORD", ownerPassword: "AUDIT_OWNER_PASSWORD", writerPassword: "AUDIT_WRITER_PASSWORD" } as const;

/** The gatekeeper's connection (`GatekeeperConfig.audit.database`): through Pgpool, in the mesh's mutual TLS. */
export function auditDatabaseConnection(namespace: string): { host: string; port: number; database: string; user: string; sslmode: "disable" } {
    // Pgpool serves no TLS here (the chart's pgpool.tls stays off); the sidecars encrypt and authenticate the hop.
    return { host: pgpoolHost(namespace), port: postgresService.port, database: auditDatabase.name, user: auditDatabase.writer, sslmode: "disable" };
}

/** Connections the audit trail holds at Pgpool: one per gatekeeper pod (two and one surging) and the retention job's. */
export const auditPgpoolClients = 3 + 1;

const identifier = (name: string) => {
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`${JSON.stringify(name)} is not a plain SQL identifier`);
    return name;
};

/**
 * The setup, as a psql script for the superuser, connected to the `postgres` database. psql variables carry the
 * passwords (`-v owner_password=... -v writer_password=...`, from the environment): `:'name'` quotes them as literals.
 * Idempotent: `\gexec` runs a CREATE only when the object is missing; ALTERs and grants are set every time.
 */
export function auditSetupSql(): string {
    const { name, owner, writer } = auditDatabase;
    const missingRole = (role: string) => `SELECT 'CREATE ROLE ${identifier(role)}' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${role}')\\gexec`;
    return [
        missingRole(owner),
        missingRole(writer),
        `ALTER ROLE ${owner} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'owner_password';`,
        `ALTER ROLE ${writer} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'writer_password';`,
        `SELECT 'CREATE DATABASE ${identifier(name)} OWNER ${owner}' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '${name}')\\gexec`,
        `ALTER DATABASE ${name} OWNER TO ${owner};`,
        // And the other way: the audit roles get no way into Orthanc's database (its owner, Orthanc's role, keeps
        // CONNECT as every owner does).
        `REVOKE CONNECT ON DATABASE ${identifier(orthancDatabase.name)} FROM PUBLIC;`,
        // In the audit database, as its owner: the gatekeeper's own statements (the table, INSERT and SELECT only,
        // CONNECT taken from PUBLIC, so from Orthanc's role).
        `\\connect ${name}`,
        `SET ROLE ${owner};`,
        ...auditDatabaseStatements({ database: name, user: writer }).map((statement) => `${statement};`),
        "RESET ROLE;",
        "",
    ].join("\n");
}

/** The retention, run by the owner in the audit database: what is older than `retentionDays` goes. */
export function auditRetentionSql(retentionDays: number): string {
    if (!Number.isInteger(retentionDays) || retentionDays < 1) throw new Error(`retentionDays must be a positive integer, not ${retentionDays}`);
    return `DELETE FROM ${auditTable} WHERE time < now() - interval '${retentionDays} days'`;
}

/** bash: stop the Istio proxy when the script exits, however it exits (no curl in the image: bash's /dev/tcp). */
function quitSidecar(): string[] {
    const url = new URL(sidecarQuitUrl);
    return [
        "stop_sidecar() {",
        `    { exec 3<>/dev/tcp/127.0.0.1/${url.port} && printf 'POST ${url.pathname} HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3 > /dev/null; } 2> /dev/null || echo "audit: could not stop the sidecar" >&2`,
        "}",
        "trap stop_sidecar EXIT",
    ];
}

/** The PostgreSQL nodes' own addresses (the chart's headless Service), where the setup looks for the primary. */
export function postgresNodeHosts(namespace: string, replicas: number): string[] {
    return postgresNodeNames(replicas).map((node) => `${node}.${postgresRelease}-postgresql-headless.${namespace}.svc.cluster.local`);
}

/**
 * The setup Job's bash script: find the primary (not in recovery) among `hosts`, for five minutes at most, and run the
 * setup there. `hosts` and `port` are the chart's nodes in the cluster (`postgresNodeHosts`); the integration suite
 * runs the same script against its own PostgreSQL.
 */
export function auditSetupScript(hosts: string[], port: number = postgresService.port): string {
    return [
        "set -eu",
        ...quitSidecar(),
        "primary=''",
        "for try in $(seq 1 60); do",
        `    for host in ${hosts.map(shellQuote).join(" ")}; do`,
        `        if [ "$(psql -X -A -t -q -h "$host" -p ${port} -U postgres -d postgres -c 'SELECT pg_is_in_recovery()' 2> /dev/null)" = f ]; then primary="$host"; break 2; fi`,
        "    done",
        "    sleep 5",
        "done",
        `if [ -z "$primary" ]; then echo "audit setup: no primary among ${hosts.join(", ")}" >&2; exit 1; fi`,
        `psql -X -q -v ON_ERROR_STOP=1 -h "$primary" -p ${port} -U postgres -d postgres -v owner_password="$${auditEnvironment.ownerPassword}" -v writer_password="$${auditEnvironment.writerPassword}" <<'KORTHWEB_SQL'`,
        auditSetupSql().trimEnd(),
        "KORTHWEB_SQL",
        `echo "audit setup: database ${auditDatabase.name} ready on $primary"`,
    ].join("\n");
}

/**
 * The retention CronJob's bash script: wait for the database (a minute at most), then delete as the owner. In the
 * cluster `host` is Pgpool's (`pgpoolHost`); the integration suite runs the same script against its own PostgreSQL.
 */
export function auditRetentionScript(host: string, retentionDays: number, port: number = postgresService.port): string {
    const connection = `-h ${shellQuote(host)} -p ${port} -U ${auditDatabase.owner} -d ${auditDatabase.name}`;
    return [
        "set -eu",
        ...quitSidecar(),
        "tries=0",
        `until pg_isready ${connection} -t 5 > /dev/null; do`,
        "    tries=$((tries + 1))",
        `    if [ "$tries" -ge 30 ]; then echo "audit retention: Pgpool does not accept connections" >&2; exit 1; fi`,
        "    sleep 2",
        "done",
        `psql -X -v ON_ERROR_STOP=1 ${connection} -c ${shellQuote(auditRetentionSql(retentionDays))}`,
    ].join("\n");
}

const secretEnv = (name: string, secret: string, key: string) => ({ name, valueFrom: { secretKeyRef: { name: secret, key } } });

/** A pod of one container running `script` with bash in the chart's PostgreSQL image, hardened as the backup's. */
function auditPodTemplate(labels: Record<string, string>, serviceAccount: string, script: string, env: k8s.types.input.core.v1.EnvVar[], annotations: Record<string, string> = {}) {
    return {
        metadata: {
            labels: { ...labels },
            annotations: { ...annotations, "proxy.istio.io/config": JSON.stringify({ holdApplicationUntilProxyStarts: true }) },
        },
        spec: {
            serviceAccountName: serviceAccount,
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            restartPolicy: "Never",
            securityContext: { runAsNonRoot: true, runAsUser: backupUid, runAsGroup: backupUid, seccompProfile: { type: "RuntimeDefault" } },
            containers: [
                {
                    name: "psql",
                    image: imageReference(postgresqlHaImages.postgresqlRepmgr),
                    command: ["/bin/bash", "-c", script],
                    // A node that does not answer (a standby being rebuilt, the proxy not up) costs five seconds, not forever.
                    env: [{ name: "HOME", value: "/tmp" }, { name: "PGCONNECT_TIMEOUT", value: "5" }, ...env],
                    resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } },
                    securityContext: hardenedContainerSecurity,
                    volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
                },
            ],
            volumes: [{ name: "tmp", emptyDir: { sizeLimit: "64Mi" } }],
        },
    };
}

/**
 * The setup Job. `checksum` (of the script and the passwords) goes into the pod's annotations, so that a change of
 * either replaces the Job and runs it again: pulumi-kubernetes replaces a Job whose `.spec.template` changes, deleting
 * the old one first as its name is fixed (v4.32.0 provider/pkg/provider/diff.go `job`, provider.go
 * `deleteBeforeReplace`).
 */
export function auditSetupJobSpec(namespace: string, replicas: number, checksum: string): k8s.types.input.batch.v1.JobSpec {
    return {
        backoffLimit: 4,
        activeDeadlineSeconds: 900,
        template: auditPodTemplate(
            auditPodLabels.setup,
            auditNames.setupServiceAccount,
            auditSetupScript(postgresNodeHosts(namespace, replicas)),
            [
                secretEnv(auditEnvironment.password, postgresSecrets.postgresql, "postgres-password"),
                secretEnv(auditEnvironment.ownerPassword, auditNames.credentials, auditCredentialKeys.owner),
                secretEnv(auditEnvironment.writerPassword, auditNames.credentials, auditCredentialKeys.writer),
            ],
            { "korthweb.io/setup-checksum": checksum },
        ),
    };
}

/** When the retention runs: daily, UTC (the AuditRetentionFailed alert allows a day and its slack). */
export const auditRetentionSchedule = "30 2 * * *";

/** The daily retention CronJob (UTC), as the owner; the gatekeeper's role could not delete. */
export function auditRetentionCronJobSpec(namespace: string, retentionDays: number): k8s.types.input.batch.v1.CronJobSpec {
    return {
        schedule: auditRetentionSchedule,
        ...cronJobRunPolicy,
        jobTemplate: {
            metadata: { labels: { ...auditPodLabels.retention } },
            spec: {
                backoffLimit: 2,
                activeDeadlineSeconds: 3600,
                template: auditPodTemplate(auditPodLabels.retention, auditNames.retentionServiceAccount, auditRetentionScript(pgpoolHost(namespace), retentionDays), [
                    secretEnv(auditEnvironment.password, auditNames.credentials, auditCredentialKeys.owner),
                ]),
            },
        },
    };
}

/** The chart's `pgpool.customUsersSecret` data: the two roles, in the same order as their passwords. */
export function auditPgpoolUsers<T>(passwords: { owner: T; writer: T }): { usernames: string; passwords: [T, T] } {
    return { usernames: `${auditDatabase.owner};${auditDatabase.writer}`, passwords: [passwords.owner, passwords.writer] };
}

/**
 * The audit trail's part of the tenant's walls: the gatekeeper and the retention pods reach Pgpool, the setup pod the
 * PostgreSQL nodes, on 5432 (NetworkPolicies of both ends; the mesh admits each by its service account).
 */
export function bitnamiHaAuditWalls(tenant: string, names: TenantNames): DatabaseWalls {
    const ns = names.namespace;
    const gatekeeperPods = gatekeeperSelector(tenant);
    const port = [tcp(postgresService.port)];
    const admit = (name: string, selector: Record<string, string>, accounts: string[]) => ({
        namespace: ns,
        name,
        spec: {
            selector: { matchLabels: { ...selector } },
            action: "ALLOW",
            rules: [{ from: [{ source: { principals: accounts.map((account) => principal(ns, account)) } }], to: [{ operation: { ports: [String(postgresService.port)] } }] }],
        },
    });
    return {
        orthancEgress: [],
        network: [
            {
                namespace: ns,
                name: auditNames.jobsNetworkPolicy,
                spec: {
                    podSelector: { matchLabels: { "app.kubernetes.io/name": auditPodLabels.setup["app.kubernetes.io/name"] } },
                    policyTypes: ["Ingress", "Egress"],
                    ingress: [],
                    egress: [
                        { to: [podsLabelled(postgresPodLabels.postgresql)], ports: port },
                        { to: [podsLabelled(postgresPodLabels.pgpool)], ports: port },
                    ],
                },
            },
            {
                namespace: ns,
                name: `${auditNames.jobsNetworkPolicy}-gatekeeper`,
                spec: { podSelector: { matchLabels: { ...gatekeeperPods } }, policyTypes: ["Egress"], egress: [{ to: [podsLabelled(postgresPodLabels.pgpool)], ports: port }] },
            },
            {
                namespace: ns,
                name: auditNames.postgresqlIngress,
                spec: { podSelector: { matchLabels: postgresPodLabels.postgresql }, policyTypes: ["Ingress"], ingress: [{ from: [podsLabelled(auditPodLabels.setup)], ports: port }] },
            },
            {
                namespace: ns,
                name: auditNames.pgpoolIngress,
                spec: {
                    podSelector: { matchLabels: postgresPodLabels.pgpool },
                    policyTypes: ["Ingress"],
                    ingress: [{ from: [podsLabelled(gatekeeperPods), podsLabelled(auditPodLabels.retention)], ports: port }],
                },
            },
        ],
        authorization: [
            admit(auditNames.postgresqlAuthorization, postgresPodLabels.postgresql, [auditNames.setupServiceAccount]),
            admit(auditNames.pgpoolAuthorization, postgresPodLabels.pgpool, [gatekeeperName, auditNames.retentionServiceAccount]),
        ],
        serviceEntries: [],
    };
}
