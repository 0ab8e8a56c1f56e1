/**
 * What CloudNativePG makes of a Cluster's managed roles, its `postgresql.pg_hba` and a `Database` object, as far as
 * the audit database relies on it. Read at cloudnative-pg/cloudnative-pg tag v1.30.0 (the operator the platform pins):
 * - api/v1/cluster_types.go `RoleConfiguration`: every attribute defaults to false except `inherit` (default true);
 *   `ensure` defaults to present; `connectionLimit` to -1.
 * - internal/management/controller/roles/runnable.go `getPassword`: a role with `passwordSecret` takes `username` and
 *   `password` from that Secret (kubernetes.io/basic-auth), trimmed; a missing Secret, or a `username` other than the
 *   role's name, leaves the role unreconciled (reported in the Cluster's status, nothing created).
 * - internal/management/controller/roles/postgres.go (`Create`, `appendRoleOptions`, `appendPasswordOption`):
 *   `CREATE ROLE <name> WITH [NO]BYPASSRLS [NO]CREATEDB [NO]CREATEROLE [NO]INHERIT [NO]LOGIN [NO]REPLICATION
 *   [NO]SUPERUSER CONNECTION LIMIT <n> PASSWORD <scram verifier of the Secret's password>`, run on the primary by
 *   its instance manager as the superuser over the local socket.
 * - internal/management/controller/database_controller_sql.go `createDatabase`: `CREATE DATABASE <name> OWNER <owner>`
 *   (plus the options set); PostgreSQL refuses it while the owner role does not exist, and the object's
 *   `status.applied` stays false until a later reconcile succeeds.
 * - pkg/postgres/configuration.go `hbaTemplateString`: the operator's fixed rules (local connections by peer through
 *   its ident map, `streaming_replica` and `cnpg_pooler_pgbouncer` by client certificate), then the Cluster's
 *   `postgresql.pg_hba` lines in order, then `host all all all scram-sha-256`; PostgreSQL uses the first line whose
 *   connection type, database and user match.
 * - pkg/management/postgres/utils/roles.go `DisableSuperuserPassword`: with `enableSuperuserAccess: false` the
 *   `postgres` role's password is set to NULL, so it cannot log in over the network at all.
 * Modelled here, not run: no operator or Kubernetes runs in the suites. The SQL the model writes is what
 * tests/integration/auditDatabase.test.ts runs on a real PostgreSQL in the operator's place.
 */

export interface ManagedRole {
    name: string;
    ensure?: "present" | "absent";
    login?: boolean;
    superuser?: boolean;
    createdb?: boolean;
    createrole?: boolean;
    replication?: boolean;
    bypassrls?: boolean;
    inherit?: boolean;
    connectionLimit?: number;
    passwordSecret?: { name: string };
}

/** A Secret as the program renders it (name, type, stringData). */
export interface SecretObject {
    name: string;
    type?: string;
    stringData: Record<string, string>;
}

/** The roles the operator creates, or why it does not. */
export function reconcileManagedRoles(roles: ManagedRole[], secrets: SecretObject[]): { created: { role: Required<Omit<ManagedRole, "passwordSecret">>; password?: string }[]; refused: string[] } {
    const created: { role: Required<Omit<ManagedRole, "passwordSecret">>; password?: string }[] = [];
    const refused: string[] = [];
    for (const declared of roles) {
        const role = {
            name: declared.name,
            ensure: declared.ensure ?? "present",
            login: declared.login ?? false,
            superuser: declared.superuser ?? false,
            createdb: declared.createdb ?? false,
            createrole: declared.createrole ?? false,
            replication: declared.replication ?? false,
            bypassrls: declared.bypassrls ?? false,
            inherit: declared.inherit ?? true,
            connectionLimit: declared.connectionLimit ?? -1,
        };
        if (role.ensure === "absent") continue;
        if (!declared.passwordSecret) {
            created.push({ role });
            continue;
        }
        const secret = secrets.find((s) => s.name === declared.passwordSecret!.name);
        if (!secret) {
            refused.push(`${role.name}: failed to get password secret ${declared.passwordSecret.name}`);
            continue;
        }
        if (secret.type !== undefined && secret.type !== "kubernetes.io/basic-auth") refused.push(`${role.name}: ${secret.name} is not kubernetes.io/basic-auth`);
        else if ((secret.stringData.username ?? "").trim() !== role.name.trim()) refused.push(`${role.name}: the username in secret ${secret.name} does not match role ${role.name}`);
        else created.push({ role, password: (secret.stringData.password ?? "").trim() });
    }
    return { created, refused };
}

const word = (on: boolean, name: string) => `${on ? "" : "NO"}${name}`;
const quoteIdentifier = (name: string) => `"${name.replace(/"/g, '""')}"`;
const quoteLiteral = (value: string) => `'${value.replace(/'/g, "''")}'`;

/** The operator's CREATE ROLE for a reconciled role (the password in clear: PostgreSQL stores its SCRAM verifier). */
export function createRoleSql(role: Required<Omit<ManagedRole, "passwordSecret">>, password?: string): string {
    return (
        `CREATE ROLE ${quoteIdentifier(role.name)} WITH ${word(role.bypassrls, "BYPASSRLS")} ${word(role.createdb, "CREATEDB")} ${word(role.createrole, "CREATEROLE")} ` +
        `${word(role.inherit, "INHERIT")} ${word(role.login, "LOGIN")} ${word(role.replication, "REPLICATION")} ${word(role.superuser, "SUPERUSER")} ` +
        `CONNECTION LIMIT ${role.connectionLimit} PASSWORD ${password === undefined ? "NULL" : quoteLiteral(password)}`
    );
}

/** The Database object's CREATE DATABASE, or why it cannot apply yet (its owner is not among the roles). */
export function createDatabaseSql(spec: { name: string; owner: string; ensure?: string }, roles: string[]): { sql?: string; notApplied?: string } {
    if ((spec.ensure ?? "present") === "absent") return {};
    if (!roles.includes(spec.owner)) return { notApplied: `role "${spec.owner}" does not exist` };
    return { sql: `CREATE DATABASE ${quoteIdentifier(spec.name)} OWNER ${quoteIdentifier(spec.owner)}` };
}

export type HbaConnection = { type: "local" | "hostssl" | "hostnossl"; database: string; user: string };

/** The operator's fixed rules, the Cluster's lines, its default: the method of the first matching line. */
export function hbaMethod(userRules: string[], connection: HbaConnection): string {
    const lines = [
        "local all cnpg_metrics_exporter peer",
        "local all all peer",
        "hostssl postgres streaming_replica all cert",
        "hostssl replication streaming_replica all cert",
        "hostssl all cnpg_pooler_pgbouncer all cert",
        ...userRules,
        "host all all all scram-sha-256",
    ];
    for (const line of lines) {
        const fields = line.trim().split(/\s+/);
        const [type, databases, users] = fields;
        const typeMatches = type === connection.type || (type === "host" && connection.type !== "local");
        const listMatches = (list: string, value: string) => list.split(",").some((item) => item === "all" || item === value);
        if (typeMatches && listMatches(databases, connection.database) && listMatches(users, connection.user)) {
            return fields[type === "local" ? 3 : 4];
        }
    }
    return "no line (refused)";
}
