/**
 * The audit database the program renders in a tenant's Bitnami postgresql-ha (components/data/engines/bitnamiHaAudit.ts),
 * on a real PostgreSQL: the setup Job's own bash script (primary discovery, the psql script with the passwords as psql
 * variables from the environment) and the retention CronJob's own script, run with the host's bash and psql exactly
 * as in their pods, as the superuser and as the owner over TCP with their passwords. Then each role does what the
 * gatekeeper, Orthanc and an attacker in either would try.
 *
 * Not run here: Pgpool (the scripts reach this PostgreSQL directly), the chart's pool_passwd, the mesh and the
 * sidecar (its quit endpoint is absent: the scripts say so and go on).
 */
import assert from "assert";
import { randomBytes } from "crypto";
import { auditDatabase, auditEnvironment, auditRetentionScript, auditSetupScript } from "../../components/data/engines/bitnamiHaAudit";
import { auditInsertSql, auditSelectSql, auditTable, PgClient } from "../../components/identity/gatekeeper/server";
import { Resources, run, RunResult } from "./support/processes";
import { Postgres, startPostgres } from "./support/postgres";
import { makeCa, makeServerCertificate } from "./support/externalDatabase";
import { externalAuditDbaSql } from "../../components/data/engines/external";
import { orthancDatabase } from "../../components/data/engines/bitnamiHaValues";
import { cnpgAuditDatabaseSpec, cnpgAuditManagedRoles, cnpgAuditNames, cnpgAuditRetentionScript, cnpgAuditSetupScript } from "../../components/data/engines/cloudnativePgAudit";
import { createDatabaseSql, createRoleSql, ManagedRole, reconcileManagedRoles } from "../upstream/cnpgDeclarative";

const record = (time: string, subject: string) => ({ time, tenant: "bhs", action: "view", subject, source: "10.0.0.1", method: "GET", path: "/x", resources: [], status: 200, outcome: "allowed" });

/** What the gatekeeper does (append, read), then what it must not be able to do: each refused by PostgreSQL. */
async function assertAppendOnly(writer: PgClient, subject: string): Promise<void> {
    try {
        await writer.query(auditInsertSql, [JSON.stringify([record(new Date().toISOString(), subject)])]);
        const rows = await writer.query(auditSelectSql, ["1970-01-01T00:00:00Z", "100"]);
        assert.ok(rows.some((row) => JSON.parse(row.record ?? "{}").subject === subject));
        for (const statement of [`DELETE FROM ${auditTable}`, `UPDATE ${auditTable} SET subject = 'forged'`, `TRUNCATE ${auditTable}`, `DROP TABLE ${auditTable}`, `ALTER TABLE ${auditTable} DISABLE TRIGGER ALL`]) {
            await assert.rejects(writer.query(statement), /permission denied|must be owner/, statement);
        }
    } finally {
        writer.close();
    }
}

/** The audit table belongs to the owner role, which `owner` is connected as (then closed). */
async function assertOwnsTable(owner: PgClient): Promise<void> {
    try {
        const [table] = await owner.query(`SELECT tableowner FROM pg_tables WHERE tablename = '${auditTable}'`);
        assert.equal(table.tableowner, auditDatabase.owner);
    } finally {
        owner.close();
    }
}

/** Records 31, 29 and 0 days old, the retention script run for 30 days: only the first goes. Returns the script's run. */
async function assertRetention(owner: PgClient, prefix: string, retention: () => Promise<RunResult>): Promise<RunResult> {
    try {
        const day = 86_400_000;
        const ages = { old: 31, edge: 29, fresh: 0 };
        await owner.query(auditInsertSql, [JSON.stringify(Object.entries(ages).map(([subject, days]) => record(new Date(Date.now() - days * day).toISOString(), `${prefix}-${subject}`)))]);
        const result = await retention();
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, /DELETE 1/);
        const left = (await owner.query(`SELECT subject FROM ${auditTable} WHERE subject LIKE '${prefix}-%' ORDER BY subject`)).map((row) => row.subject);
        assert.deepEqual(left, [`${prefix}-edge`, `${prefix}-fresh`]);
        return result;
    } finally {
        owner.close();
    }
}

describe("Audit database: the rendered setup and retention on a real PostgreSQL", function () {
    const suite = new Resources();
    let postgres: Postgres;
    const superuserPassword = randomBytes(18).toString("base64url");
    const passwords = { owner: randomBytes(18).toString("hex"), writer: randomBytes(18).toString("hex") };

    const bash = (script: string, env: Record<string, string>) => run("bash", ["-c", script], { env: { ...process.env, PGCONNECT_TIMEOUT: "5", ...env } });
    const setup = (writer = passwords.writer) =>
        bash(auditSetupScript(["127.0.0.1"], postgres.port), {
            [auditEnvironment.password]: superuserPassword,
            [auditEnvironment.ownerPassword]: passwords.owner,
            [auditEnvironment.writerPassword]: writer,
        });
    const connect = (user: string, password: string, database: string = auditDatabase.name) =>
        PgClient.connect({ host: "127.0.0.1", port: postgres.port, database, user, password, sslmode: "disable" });

    before(async function () {
        postgres = await startPostgres(suite);
        // The chart gives the superuser a password; over TCP, the Job uses it.
        await postgres.asSuperuser(`ALTER ROLE postgres PASSWORD '${superuserPassword}'`);
    });
    after(() => suite.release());

    it("the setup Job's script finds the primary and creates the database, its owner and the gatekeeper's role; a second run changes nothing but the passwords", async () => {
        const first = await setup();
        assert.equal(first.code, 0, first.stderr);
        assert.match(first.stdout, /audit setup: database audit ready on 127\.0\.0\.1/);
        const second = await setup();
        assert.equal(second.code, 0, second.stderr);
        assert.equal(await postgres.asSuperuser("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'audit'"), auditDatabase.owner);
        await assertOwnsTable(await connect(auditDatabase.owner, passwords.owner));
        assert.equal(await postgres.asSuperuser("SELECT string_agg(rolname || ':' || rolsuper || rolcreatedb || rolcreaterole, ',' ORDER BY rolname) FROM pg_roles WHERE rolname IN ('audit_owner', 'gatekeeper_audit')"), "audit_owner:falsefalsefalse,gatekeeper_audit:falsefalsefalse");
        // A new password (a replaced Secret) is set by the next run; the old one no longer works.
        const rotated = randomBytes(18).toString("hex");
        assert.equal((await setup(rotated)).code, 0);
        await assert.rejects(connect(auditDatabase.writer, passwords.writer), /password authentication failed/);
        (await connect(auditDatabase.writer, rotated)).close();
        assert.equal((await setup()).code, 0);
    });

    it("Orthanc's role cannot connect to the audit database", async () => {
        await assert.rejects(connect(postgres.user, postgres.password), /permission denied for database "audit"/);
        // It still reaches its own.
        (await connect(postgres.user, postgres.password, postgres.database)).close();
    });

    it("the gatekeeper's role appends and reads, and can neither delete, update, truncate nor drop", async () => {
        await assertAppendOnly(await connect(auditDatabase.writer, passwords.writer), "writer-check");
        // Nor does it (or the owner) get into Orthanc's database.
        for (const [user, password] of [[auditDatabase.writer, passwords.writer], [auditDatabase.owner, passwords.owner]]) {
            await assert.rejects(connect(user, password, postgres.database), /permission denied for database "orthanc"/, user);
        }
    });

    it("the retention CronJob's script, as the owner, deletes exactly the records older than retentionDays", async () => {
        const result = await assertRetention(await connect(auditDatabase.owner, passwords.owner), "retention", () =>
            bash(auditRetentionScript("127.0.0.1", 30, postgres.port), { [auditEnvironment.password]: passwords.owner }),
        );
        assert.match(result.stderr, /could not stop the sidecar/, "no proxy here; the script still ends");
        // The gatekeeper's password does not let the retention run: only the owner deletes.
        const asWriter = await bash(auditRetentionScript("127.0.0.1", 30, postgres.port).replaceAll(`-U ${auditDatabase.owner}`, `-U ${auditDatabase.writer}`), { [auditEnvironment.password]: passwords.writer });
        assert.notEqual(asWriter.code, 0);
        assert.match(asWriter.stderr, /permission denied for table gatekeeper_audit/);
    });
});

/**
 * The audit database the program renders in a tenant's CloudNativePG Cluster (components/data/engines/
 * cloudnativePgAudit.ts), on a real PostgreSQL that, like CloudNativePG's instances, accepts TCP clients over TLS only.
 * The operator's part is modelled (tests/upstream/cnpgDeclarative.ts): the SQL the model says it runs for the
 * rendered managed roles and `Database` is run here as the superuser in its place. Then the setup Job's own script
 * runs as the owner, an ordinary role (no superuser, as in a Cluster with `enableSuperuserAccess: false`), over TLS
 * verified against the server's CA as the Job's PGSSLMODE and PGSSLROOTCERT say; then the retention CronJob's own
 * script. Not run here: the operator, pg_hba's reject lines (modelled in tests/audit.test.ts), PgBouncer, the mesh.
 */
describe("Audit database on CloudNativePG: the rendered setup and retention as the owner on a real PostgreSQL", function () {
    const suite = new Resources();
    let postgres: Postgres;
    let caFile: string;
    const serverName = "localhost";
    const passwords = { owner: randomBytes(18).toString("hex"), writer: randomBytes(18).toString("hex") };
    const secrets = [
        { name: cnpgAuditNames.ownerSecret, type: "kubernetes.io/basic-auth", stringData: { username: auditDatabase.owner, password: passwords.owner } },
        { name: cnpgAuditNames.writerSecret, type: "kubernetes.io/basic-auth", stringData: { username: auditDatabase.writer, password: passwords.writer } },
    ];
    const bash = (script: string) =>
        run("bash", ["-c", script], { env: { ...process.env, PGCONNECT_TIMEOUT: "5", PGSSLMODE: "verify-full", PGSSLROOTCERT: caFile, [auditEnvironment.password]: passwords.owner } });
    const connect = (user: string, password: string, database: string = auditDatabase.name) =>
        PgClient.connect({ host: "127.0.0.1", port: postgres.port, database, user, password, sslmode: "require" });

    before(async function () {
        const pki = suite.tempDir("audit-cnpg-pki");
        const ca = await makeCa(pki, "cluster-ca");
        caFile = ca.certFile;
        postgres = await startPostgres(suite, { tls: await makeServerCertificate(pki, "server", serverName, ca) });
    });
    after(() => suite.release());

    it("the setup Job's script waits for the operator's roles and database, then, as the owner, makes the table and grants; a second run changes nothing", async () => {
        // Started before the operator has made anything: it keeps trying.
        const waiting = bash(cnpgAuditSetupScript(serverName, postgres.port));
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const { created, refused } = reconcileManagedRoles(cnpgAuditManagedRoles() as unknown as ManagedRole[], secrets);
        assert.deepEqual(refused, []);
        for (const { role, password } of created) await postgres.asSuperuser(createRoleSql(role, password));
        const database = createDatabaseSql(cnpgAuditDatabaseSpec() as { name: string; owner: string }, created.map((c) => c.role.name));
        await postgres.asSuperuser(database.sql!);
        const first = await waiting;
        assert.equal(first.code, 0, first.stderr);
        assert.match(first.stdout, /audit setup: database audit ready on localhost/);
        const second = await bash(cnpgAuditSetupScript(serverName, postgres.port));
        assert.equal(second.code, 0, second.stderr);
        assert.equal(
            await postgres.asSuperuser("SELECT string_agg(rolname || ':' || rolsuper || rolcreatedb || rolcreaterole || rolbypassrls, ',' ORDER BY rolname) FROM pg_roles WHERE rolname IN ('audit_owner', 'gatekeeper_audit')"),
            "audit_owner:falsefalsefalsefalse,gatekeeper_audit:falsefalsefalsefalse",
        );
        await assertOwnsTable(await connect(auditDatabase.owner, passwords.owner));
    });

    it("the setup Job refuses a server its CA did not sign (verify-full), and gives up without the owner's password", async () => {
        const otherCa = await makeCa(suite.tempDir("audit-cnpg-other"), "other-ca");
        const wrongCa = await run("bash", ["-c", cnpgAuditSetupScript(serverName, postgres.port).replace("sleep 5", "exit 3")], {
            env: { ...process.env, PGSSLMODE: "verify-full", PGSSLROOTCERT: otherCa.certFile, [auditEnvironment.password]: passwords.owner },
        });
        assert.equal(wrongCa.code, 3, "never connected");
        const wrongPassword = await run("bash", ["-c", cnpgAuditSetupScript(serverName, postgres.port).replace("sleep 5", "exit 3")], {
            env: { ...process.env, PGSSLMODE: "verify-full", PGSSLROOTCERT: caFile, [auditEnvironment.password]: passwords.writer },
        });
        assert.equal(wrongPassword.code, 3, "never connected");
    });

    it("Orthanc's role cannot connect to the audit database", async () => {
        await assert.rejects(connect(postgres.user, postgres.password), /permission denied for database "audit"/);
        (await connect(postgres.user, postgres.password, postgres.database)).close();
    });

    it("the gatekeeper's role appends and reads, and can neither delete, update, truncate nor drop", async () => {
        await assertAppendOnly(await connect(auditDatabase.writer, passwords.writer), "cnpg-writer-check");
    });

    it("the retention CronJob's script, as the owner over TLS, deletes exactly the records older than retentionDays", async () => {
        const result = await assertRetention(await connect(auditDatabase.owner, passwords.owner), "cnpg-retention", () => bash(cnpgAuditRetentionScript(serverName, 30, postgres.port)));
        assert.doesNotMatch(result.stderr, /sidecar/, "outside the mesh: no sidecar to stop");
    });
});

/**
 * The audit database on a managed server (`database.external.audit`): what `scripts/run audit-sql` prints for the
 * site's DBA (components/data/engines/external.ts `externalAuditDbaSql`), run with psql on a real PostgreSQL part by
 * part, each as the role it names: an administrator with CREATEROLE and CREATEDB and no superuser (as a cloud's
 * database administrator is), the owner, Orthanc's role. Then each role does what the gatekeeper, Orthanc and an
 * attacker in either would try. Not run here: a cloud's server, its TLS (the gatekeeper's verify-full against the
 * server's CA is Node's), pg_cron.
 */
describe("Audit database on a managed server: the DBA's printed SQL as a non-superuser administrator on a real PostgreSQL", function () {
    const suite = new Resources();
    let postgres: Postgres;
    const passwords = { admin: randomBytes(18).toString("hex"), owner: randomBytes(18).toString("hex"), writer: randomBytes(18).toString("hex") };
    const audit = { database: "audit", user: "gatekeeper_audit" };
    const sql = externalAuditDbaSql(audit, orthancDatabase.name, 30);
    const psql = (user: string, password: string, database: string, input: string, options: string[] = ["-q"]) =>
        run("psql", ["-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(postgres.port), "-U", user, "-d", database, ...options], { env: { ...process.env, PGPASSWORD: password }, input });
    const connect = (user: string, password: string, database: string = audit.database) => PgClient.connect({ host: "127.0.0.1", port: postgres.port, database, user, password, sslmode: "disable" });

    before(async function () {
        postgres = await startPostgres(suite);
        await postgres.asSuperuser(`CREATE ROLE dba WITH LOGIN CREATEROLE CREATEDB PASSWORD '${passwords.admin}'`);
    });
    after(() => suite.release());

    it("runs as printed: the administrator's part (no superuser), the owner's, Orthanc's role's", async () => {
        const admin = await psql("dba", passwords.admin, "postgres", sql.admin, ["-q", "-v", `owner_password=${passwords.owner}`, "-v", `gatekeeper_password=${passwords.writer}`]);
        assert.equal(admin.code, 0, admin.stderr);
        const owner = await psql(sql.owner, passwords.owner, audit.database, sql.ownerSql);
        assert.equal(owner.code, 0, owner.stderr);
        assert.doesNotMatch(owner.stderr, /WARNING/, "the owner takes the schema public from PUBLIC (PostgreSQL 15 and later)");
        const orthanc = await psql(postgres.user, postgres.password, postgres.database, sql.orthanc);
        assert.equal(orthanc.code, 0, orthanc.stderr);
        assert.equal(await postgres.asSuperuser("SELECT string_agg(rolname || ':' || rolsuper, ',' ORDER BY rolname) FROM pg_roles WHERE rolname IN ('dba', 'audit_owner', 'gatekeeper_audit')"), "audit_owner:false,dba:false,gatekeeper_audit:false");
    });

    it("Orthanc's role cannot connect to the audit database, nor the audit roles to Orthanc's", async () => {
        await assert.rejects(connect(postgres.user, postgres.password), /permission denied for database "audit"/);
        for (const [user, password] of [[audit.user, passwords.writer], [sql.owner, passwords.owner]]) {
            await assert.rejects(connect(user, password, postgres.database), /permission denied for database "orthanc"/, user);
        }
    });

    it("the gatekeeper's role appends and reads, and can neither delete, update, truncate nor drop", async () => {
        await assertAppendOnly(await connect(audit.user, passwords.writer), "dba-writer-check");
    });

    it("the retention statement, as the owner, deletes exactly the records older than retentionDays", async () => {
        await assertRetention(await connect(sql.owner, passwords.owner), "dba-retention", () => psql(sql.owner, passwords.owner, audit.database, sql.retention, []));
    });
});
