/**
 * The gatekeepers' audit database in a tenant's CloudNativePG Cluster (README, "Who signs in"), as pure builders. The
 * same database as in the Bitnami engine (auditDatabase.ts: `audit`, owned by `audit_owner`, in which
 * `gatekeeper_audit` may INSERT and SELECT only, which Orthanc's role cannot connect to), made the operator's way:
 * - The two roles are the Cluster's managed roles (`spec.managed.roles`), each with its password in a basic-auth
 *   Secret whose `username` is the role's name (cloudnative-pg v1.30.0 internal/management/controller/roles/
 *   runnable.go `getPassword` refuses any other). The operator creates and alters them on the primary.
 * - The database is a `Database` object with its owner (internal/management/controller/database_controller_sql.go:
 *   CREATE DATABASE ... OWNER), kept when the object goes (`databaseReclaimPolicy: retain`).
 * - What CloudNativePG 1.30 cannot declare (the table, grants on it, CONNECT taken from PUBLIC) is the owner's SQL,
 *   auditDatabase.ts `auditOwnerSql`, run by a Job as the owner. No superuser runs anything: the Cluster has none
 *   reachable (`enableSuperuserAccess: false`; its pg_hba admits `postgres` on the local socket only, by peer), and the
 *   owner needs none. The Job waits (retries, five minutes at most) until the owner can log in to the database and the
 *   gatekeeper's role exists: Pulumi waits for the `Database` (`databaseAwait`), not for the managed roles, whose
 *   state only the Cluster's status shows.
 * - pg_hba refuses Orthanc's role in the audit database and the audit roles in Orthanc's, before any grant is
 *   looked at (and before the Job has taken CONNECT from PUBLIC).
 *
 * Paths: the gatekeeper connects through the Pooler, as Orthanc does (in the mesh: mutual TLS, admitted by its
 * identity; PgBouncer's wildcard database and auth_query serve any role: pkg/management/pgbouncer/config/config.go).
 * The setup and retention pods run outside the mesh, as the operator's own jobs do, and connect to the Cluster's rw
 * Service directly with TLS, verifying the server against the Cluster's CA (`<cluster>-ca`, `ca.crt` only): the
 * instances have no sidecar, so a meshed pod would gain nothing there, and a Job needs no sidecar to end.
 */
import type * as k8s from "@pulumi/kubernetes";
import type { TenantNames } from "../../naming/tenantNames";
import { gatekeeperName, gatekeeperSelector } from "../../identity/names";
import { podsLabelled, principal, tcp } from "../../k8s/walls";
import { cnpgPostgresImage } from "../../versions";
import { shellQuote } from "../backup/backup";
import type { DatabaseWalls } from "../endpoint";
import { AuditPodImage, auditDatabase, auditEnvironment, auditJobNames, auditOwnerSql, auditPodLabels, auditPodTemplate, auditRetentionCronJobTemplate, ownerRetentionScript, secretEnv } from "./auditDatabase";
import { orthancDatabase } from "./bitnamiHaValues";
import { cnpgNames, cnpgPodLabels, cnpgPoolerHost, poolerPort, postgresPort } from "./cloudnativePgNames";

/** Object names in the tenant namespace. */
export const cnpgAuditNames = {
    /** basic-auth Secrets (`username`, `password`) of the two managed roles. */
    ownerSecret: "audit-owner-credentials",
    writerSecret: "audit-gatekeeper-credentials",
    /** The `Database` object. */
    database: "audit",
    ...auditJobNames,
    instancesIngress: "allow-audit-jobs-to-cnpg-instances",
    gatekeeperEgress: "allow-gatekeeper-to-audit-database",
    poolerIngress: "allow-gatekeeper-to-cnpg-pooler",
    poolerAuthorization: "allow-gatekeeper-to-cnpg-pooler",
} as const;

/** The Cluster's rw Service: the primary, whichever instance it is. Its name is in the server certificate. */
export function cnpgRwHost(namespace: string): string {
    return `${cnpgNames.cluster}-rw.${namespace}.svc.cluster.local`;
}

/** Where the jobs find the Cluster's CA (the operator's `<cluster>-ca` Secret; its key `ca.key` is not mounted). */
export const cnpgAuditCa = { secret: `${cnpgNames.cluster}-ca`, key: "ca.crt", directory: "/etc/audit-database-ca" } as const;

/** The Cluster's managed roles for the audit trail: login, nothing else, passwords from their Secrets. */
export function cnpgAuditManagedRoles(): Record<string, unknown>[] {
    const role = (name: string, secret: string, comment: string, inherit: boolean) => ({
        name,
        ensure: "present",
        comment,
        login: true,
        superuser: false,
        createdb: false,
        createrole: false,
        replication: false,
        bypassrls: false,
        inherit,
        passwordSecret: { name: secret },
    });
    return [
        // The owner acts on the schema `public` through its implicit membership of pg_database_owner, which owns it
        // since PostgreSQL 15: a NOINHERIT owner could neither create the table nor take the schema from PUBLIC.
        role(auditDatabase.owner, cnpgAuditNames.ownerSecret, "owns the gatekeeper's audit database; the setup and retention jobs", true),
        role(auditDatabase.writer, cnpgAuditNames.writerSecret, "the gatekeeper: INSERT and SELECT on its audit table", false),
    ];
}

/**
 * pg_hba lines (after the operator's fixed rules, before its default): Orthanc's role never reaches the audit
 * database, nor the audit roles Orthanc's. `reject` ends the lookup whatever the grants say.
 */
export function cnpgAuditPgHba(): string[] {
    return [`host ${auditDatabase.name} ${orthancDatabase.user} all reject`, `host ${orthancDatabase.name} ${auditDatabase.owner},${auditDatabase.writer} all reject`];
}

/** The `Database` object's spec. */
export function cnpgAuditDatabaseSpec(): Record<string, unknown> {
    return { cluster: { name: cnpgNames.cluster }, name: auditDatabase.name, owner: auditDatabase.owner, ensure: "present", databaseReclaimPolicy: "retain" };
}

/**
 * What Pulumi waits for: the `Database`'s `status.applied` (api/v1/database_types.go `DatabaseStatus`), true once the
 * primary's instance manager created it with its owner; it cannot before the managed owner role exists.
 */
export const databaseAwait = { "pulumi.com/waitFor": "jsonpath={.status.applied}=true" } as const;

/** The gatekeeper's connection: the Pooler's Service, in the mesh's mutual TLS, as Orthanc's. */
export function cnpgAuditConnection(namespace: string): { host: string; port: number; database: string; user: string; sslmode: "disable" } {
    return { host: cnpgPoolerHost(namespace), port: poolerPort, database: auditDatabase.name, user: auditDatabase.writer, sslmode: "disable" };
}

/** Clients of the audit trail: through each pooler pod, the gatekeepers (two and one surging); directly, the two jobs. */
export const cnpgAuditClients = { pooled: 3, direct: 2 } as const;

/**
 * The setup Job's bash script, as the owner: wait until it can log in to the audit database and the gatekeeper's role
 * exists (the operator's managed roles and `Database`, five minutes at most), then run the owner's SQL. Its password
 * is libpq's PGPASSWORD; TLS comes from the pod's PGSSLMODE and PGSSLROOTCERT. The integration suite runs the same
 * script against its own PostgreSQL.
 */
export function cnpgAuditSetupScript(host: string, port: number = postgresPort): string {
    const connection = `-h ${shellQuote(host)} -p ${port} -U ${auditDatabase.owner} -d ${auditDatabase.name}`;
    return [
        "set -eu",
        "tries=0",
        `until last=$(psql -X -A -t -q ${connection} -c "SELECT count(*) FROM pg_roles WHERE rolname = '${auditDatabase.writer}'" 2>&1) && [ "$last" = 1 ]; do`,
        "    tries=$((tries + 1))",
        `    if [ "$tries" -ge 60 ]; then echo "audit setup: the operator has not made ${auditDatabase.owner}, ${auditDatabase.writer} and ${auditDatabase.name} yet: $last" >&2; exit 1; fi`,
        "    sleep 5",
        "done",
        `psql -X -q -v ON_ERROR_STOP=1 ${connection} <<'KORTHWEB_SQL'`,
        ...auditOwnerSql(),
        "KORTHWEB_SQL",
        `echo "audit setup: database ${auditDatabase.name} ready on ${host}"`,
    ].join("\n");
}

/** CloudNativePG's PostgreSQL image (psql, bash) as its `postgres` user (uid 26), out of the mesh, TLS verified. */
const cnpgAuditPod: AuditPodImage = {
    image: cnpgPostgresImage,
    uid: 26,
    meshed: false,
    env: [
        { name: "PGSSLMODE", value: "verify-full" },
        { name: "PGSSLROOTCERT", value: `${cnpgAuditCa.directory}/${cnpgAuditCa.key}` },
    ],
    volumes: [{ volume: { name: "cluster-ca", secret: { secretName: cnpgAuditCa.secret, items: [{ key: cnpgAuditCa.key, path: cnpgAuditCa.key }] } }, mountPath: cnpgAuditCa.directory }],
};

const ownerPassword = () => secretEnv(auditEnvironment.password, cnpgAuditNames.ownerSecret, "password");

/**
 * The setup Job. No password passes through it (the operator sets them), so a new script is the only reason to run it
 * again: pulumi-kubernetes replaces a Job whose `.spec.template` changes.
 */
export function cnpgAuditSetupJobSpec(namespace: string): k8s.types.input.batch.v1.JobSpec {
    return {
        backoffLimit: 4,
        activeDeadlineSeconds: 900,
        template: auditPodTemplate(cnpgAuditPod, auditPodLabels.setup, cnpgAuditNames.setupServiceAccount, cnpgAuditSetupScript(cnpgRwHost(namespace)), [ownerPassword()]),
    };
}

/**
 * The retention CronJob's script (auditDatabase.ts `ownerRetentionScript`), outside the mesh. In the cluster `host` is
 * the rw Service's (`cnpgRwHost`); the integration suite runs the same script against its own PostgreSQL.
 */
export function cnpgAuditRetentionScript(host: string, retentionDays: number, port: number = postgresPort): string {
    return ownerRetentionScript({ host, port, describedAs: "PostgreSQL", meshed: false }, retentionDays);
}

/** The daily retention CronJob (UTC), as the owner on the rw Service; the gatekeeper's role could not delete. */
export function cnpgAuditRetentionCronJobSpec(namespace: string, retentionDays: number): k8s.types.input.batch.v1.CronJobSpec {
    const script = cnpgAuditRetentionScript(cnpgRwHost(namespace), retentionDays);
    return auditRetentionCronJobTemplate(auditPodTemplate(cnpgAuditPod, auditPodLabels.retention, cnpgAuditNames.retentionServiceAccount, script, [ownerPassword()]));
}

/**
 * The audit trail's part of the tenant's walls: the gatekeeper reaches the Pooler (NetworkPolicies of both ends, the
 * mesh admits it by its service account), the two jobs the instances on 5432 (NetworkPolicies only: the instances
 * have no sidecar to enforce an AuthorizationPolicy; TLS and the owner's password stand there, as for the operator).
 */
export function cloudnativePgAuditWalls(tenant: string, names: TenantNames): DatabaseWalls {
    const ns = names.namespace;
    const gatekeeperPods = gatekeeperSelector(tenant);
    const jobPods = { "app.kubernetes.io/name": auditPodLabels.setup["app.kubernetes.io/name"] };
    const postgres = [tcp(postgresPort)];
    const pooler = [tcp(poolerPort)];
    return {
        orthancEgress: [],
        network: [
            {
                namespace: ns,
                name: cnpgAuditNames.jobsNetworkPolicy,
                spec: { podSelector: { matchLabels: { ...jobPods } }, policyTypes: ["Ingress", "Egress"], ingress: [], egress: [{ to: [podsLabelled(cnpgPodLabels.database)], ports: postgres }] },
            },
            {
                namespace: ns,
                name: cnpgAuditNames.instancesIngress,
                spec: { podSelector: { matchLabels: { ...cnpgPodLabels.database } }, policyTypes: ["Ingress"], ingress: [{ from: [podsLabelled(jobPods)], ports: postgres }] },
            },
            {
                namespace: ns,
                name: cnpgAuditNames.gatekeeperEgress,
                spec: { podSelector: { matchLabels: { ...gatekeeperPods } }, policyTypes: ["Egress"], egress: [{ to: [podsLabelled(cnpgPodLabels.pooler)], ports: pooler }] },
            },
            {
                namespace: ns,
                name: cnpgAuditNames.poolerIngress,
                spec: { podSelector: { matchLabels: { ...cnpgPodLabels.pooler } }, policyTypes: ["Ingress"], ingress: [{ from: [podsLabelled(gatekeeperPods)], ports: pooler }] },
            },
        ],
        authorization: [
            {
                namespace: ns,
                name: cnpgAuditNames.poolerAuthorization,
                spec: {
                    selector: { matchLabels: { ...cnpgPodLabels.pooler } },
                    action: "ALLOW",
                    rules: [{ from: [{ source: { principals: [principal(ns, gatekeeperName)] } }], to: [{ operation: { ports: [String(poolerPort)] } }] }],
                },
            },
        ],
        serviceEntries: [],
    };
}
