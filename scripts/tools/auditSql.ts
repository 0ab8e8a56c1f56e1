/**
 * `scripts/run audit-sql <stack> <tenant>`: prints what the site's DBA runs on the managed server for a tenant's
 * `database.external.audit` (components/data/engines/external.ts `externalAuditDbaSql`), read from the stack file.
 * Nothing secret is read or printed: the passwords are psql variables the DBA gives on the command line.
 *
 *   node -r ts-node/register/transpile-only scripts/tools/auditSql.ts <stack> <tenant>
 */
import { readStackFile } from "../../components/config/load";
import { defaultAuditRetentionDays } from "../../components/config/schema";
import { externalAuditDbaSql } from "../../components/data/engines/external";

/** The DBA's instructions for one tenant of a stack file's `config:` map, or an error naming what is missing. */
export function auditSqlInstructions(config: Record<string, unknown>, stack: string, tenantName: string): string {
    const tenants = (config["korthweb:tenants"] ?? []) as Record<string, any>[];
    const tenant = tenants.find((t) => t?.name === tenantName);
    if (!tenant) throw new Error(`unknown tenant '${tenantName}': the stack's tenants are ${tenants.map((t) => t?.name).join(", ") || "none"}`);
    const external = tenant.database?.external;
    const audit = external?.audit;
    if (tenant.database?.engine !== "external" || !audit?.database || !audit?.user) {
        throw new Error(`tenant '${tenantName}' names no audit database on a managed server (tenants[].database.external.audit with database and user)`);
    }
    const retentionDays = Number(tenant.identity?.audit?.retentionDays ?? defaultAuditRetentionDays);
    const sql = externalAuditDbaSql(audit, external.database, retentionDays);
    const host = audit.host ?? external.host;
    const port = audit.port ?? external.port ?? 5432;
    const psql = (user: string, database: string, variables = "") => `psql "host=${host} port=${port} dbname=${database} user=${user} sslmode=verify-full sslrootcert=<the server's CA>"${variables}`;
    return [
        `-- The audit database of tenant ${tenantName} (stack ${stack}) on ${host}:${port}. Passwords: the gatekeeper's is the one`,
        `-- set with scripts/run config ${stack} set --secret --path 'tenants[${tenants.indexOf(tenant)}].database.external.audit.password';`,
        `-- the owner's is yours to keep (the program never sees it).`,
        "",
        `-- 1. As the server's administrator (CREATEROLE and CREATEDB; no superuser needed):`,
        `--    ${psql("<administrator>", "postgres", " -v owner_password=... -v gatekeeper_password=...")}`,
        sql.admin,
        `-- 2. As ${sql.owner}, in ${audit.database}:`,
        `--    ${psql(sql.owner, audit.database)}`,
        sql.ownerSql,
        `-- 3. As Orthanc's role (${external.user}), in ${external.database}:`,
        sql.orthanc,
        `-- 4. Daily, as ${sql.owner} in ${audit.database} (pg_cron where the provider offers it): identity.audit.retentionDays ${retentionDays}.`,
        sql.retention,
    ].join("\n");
}

if (require.main === module) {
    const [stack, tenant] = process.argv.slice(2);
    try {
        if (!stack || !tenant) throw new Error("usage: scripts/run audit-sql <stack> <tenant>");
        const config = readStackFile(stack);
        if (!config) throw new Error(`no stack file for ${stack} (Pulumi.${stack}.yaml)`);
        process.stdout.write(auditSqlInstructions(config, stack, tenant));
    } catch (error) {
        process.stderr.write(`${(error as Error).message}\n`);
        process.exit(2);
    }
}
