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
import type { TenantNames } from "../../naming/tenantNames";
import { podsLabelled, principal, tcp } from "../../k8s/walls";
import { gatekeeperName, gatekeeperSelector } from "../../identity/names";
import { postgresqlHaImages } from "../../versions";
import { backupUid, shellQuote } from "../backup/backup";
import type { DatabaseWalls } from "../endpoint";
import {
    AuditPodImage,
    auditCredentialKeys,
    auditDatabase,
    auditEnvironment,
    auditJobNames,
    auditOwnerSql,
    auditPodLabels,
    auditPodTemplate,
    auditRetentionCronJobTemplate,
    identifier,
    ownerRetentionScript,
    quitSidecar,
    secretEnv,
} from "./auditDatabase";
import { orthancDatabase, postgresNodeNames, postgresPodLabels, postgresRelease, postgresSecrets, postgresService, pgpoolHost } from "./bitnamiHaValues";

export { auditCredentialKeys, auditDatabase, auditEnvironment, auditRetentionSchedule, auditRetentionSql, rendersAuditDatabase } from "./auditDatabase";

/** Object names in the tenant namespace. */
export const auditNames = {
    /** Keys `auditCredentialKeys`: the two roles' generated passwords. */
    credentials: "audit-database-credentials",
    /** The chart's `pgpool.customUsersSecret` (keys `usernames`, `passwords`): Pgpool admits the two roles. */
    pgpoolUsers: "pgpool-custom-users",
    ...auditJobNames,
    postgresqlIngress: "allow-audit-setup-to-postgresql",
    pgpoolIngress: "allow-audit-to-pgpool",
    postgresqlAuthorization: "allow-audit-setup-to-postgresql",
    pgpoolAuthorization: "allow-audit-to-pgpool",
} as const;

/** The gatekeeper's connection (`GatekeeperConfig.audit.database`): through Pgpool, in the mesh's mutual TLS. */
export function auditDatabaseConnection(namespace: string): { host: string; port: number; database: string; user: string; sslmode: "disable" } {
    // Pgpool serves no TLS here (the chart's pgpool.tls stays off); the sidecars encrypt and authenticate the hop.
    return { host: pgpoolHost(namespace), port: postgresService.port, database: auditDatabase.name, user: auditDatabase.writer, sslmode: "disable" };
}

/** Connections the audit trail holds at Pgpool: one per gatekeeper pod (two and one surging) and the retention job's. */
export const auditPgpoolClients = 3 + 1;

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
        // In the audit database, as its owner: what every engine's owner runs (auditDatabase.ts).
        `\\connect ${name}`,
        `SET ROLE ${owner};`,
        ...auditOwnerSql(),
        "RESET ROLE;",
        "",
    ].join("\n");
}

/** The chart's PostgreSQL image, in the mesh (its Pgpool is), as the backup's user. */
const bitnamiAuditPod: AuditPodImage = { image: postgresqlHaImages.postgresqlRepmgr, uid: backupUid, meshed: true };

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
 * The retention CronJob's bash script (auditDatabase.ts `ownerRetentionScript`) through Pgpool, in the mesh. In the
 * cluster `host` is Pgpool's (`pgpoolHost`); the integration suite runs the same script against its own PostgreSQL.
 */
export function auditRetentionScript(host: string, retentionDays: number, port: number = postgresService.port): string {
    return ownerRetentionScript({ host, port, describedAs: "Pgpool", meshed: true }, retentionDays);
}

/**
 * The setup Job. `checksum` (of the script and the passwords) goes into the pod's annotations, so that a change of
 * either replaces the Job and runs it again: pulumi-kubernetes replaces a Job whose `.spec.template` changes, deleting
 * the old one first as its name is fixed (v4.32.0 provider/pkg/provider/diff.go `job`, provider.go
 * `deleteBeforeReplace`).
 */
/** The setup script for the tenant's chart nodes: what the Job runs, and what its checksum covers. */
export function tenantAuditSetupScript(namespace: string, replicas: number): string {
    return auditSetupScript(postgresNodeHosts(namespace, replicas));
}

export function auditSetupJobSpec(namespace: string, replicas: number, checksum: string): k8s.types.input.batch.v1.JobSpec {
    return {
        backoffLimit: 4,
        activeDeadlineSeconds: 900,
        template: auditPodTemplate(
            bitnamiAuditPod,
            auditPodLabels.setup,
            auditNames.setupServiceAccount,
            tenantAuditSetupScript(namespace, replicas),
            [
                secretEnv(auditEnvironment.password, postgresSecrets.postgresql, "postgres-password"),
                secretEnv(auditEnvironment.ownerPassword, auditNames.credentials, auditCredentialKeys.owner),
                secretEnv(auditEnvironment.writerPassword, auditNames.credentials, auditCredentialKeys.writer),
            ],
            { "korthweb.io/setup-checksum": checksum },
        ),
    };
}

/** The daily retention CronJob (UTC), as the owner through Pgpool; the gatekeeper's role could not delete. */
export function auditRetentionCronJobSpec(namespace: string, retentionDays: number): k8s.types.input.batch.v1.CronJobSpec {
    return auditRetentionCronJobTemplate(
        auditPodTemplate(bitnamiAuditPod, auditPodLabels.retention, auditNames.retentionServiceAccount, auditRetentionScript(pgpoolHost(namespace), retentionDays), [
            secretEnv(auditEnvironment.password, auditNames.credentials, auditCredentialKeys.owner),
        ]),
    );
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
