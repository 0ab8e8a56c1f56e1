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
import { Resources, run } from "./support/processes";
import { Postgres, startPostgres } from "./support/postgres";

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
    const record = (time: string, subject: string) => ({ time, tenant: "bhs", action: "view", subject, source: "10.0.0.1", method: "GET", path: "/x", resources: [], status: 200, outcome: "allowed" });

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
        const owner = await connect(auditDatabase.owner, passwords.owner);
        try {
            const [table] = await owner.query(`SELECT tableowner FROM pg_tables WHERE tablename = '${auditTable}'`);
            assert.equal(table.tableowner, auditDatabase.owner);
        } finally {
            owner.close();
        }
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
        const writer = await connect(auditDatabase.writer, passwords.writer);
        try {
            await writer.query(auditInsertSql, [JSON.stringify([record(new Date().toISOString(), "writer-check")])]);
            const rows = await writer.query(auditSelectSql, ["1970-01-01T00:00:00Z", "100"]);
            assert.ok(rows.some((row) => JSON.parse(row.record ?? "{}").subject === "writer-check"));
            for (const statement of [`DELETE FROM ${auditTable}`, `UPDATE ${auditTable} SET subject = 'forged'`, `TRUNCATE ${auditTable}`, `DROP TABLE ${auditTable}`, `ALTER TABLE ${auditTable} DISABLE TRIGGER ALL`]) {
                await assert.rejects(writer.query(statement), /permission denied|must be owner/, statement);
            }
        } finally {
            writer.close();
        }
        // Nor does it (or the owner) get into Orthanc's database.
        for (const [user, password] of [[auditDatabase.writer, passwords.writer], [auditDatabase.owner, passwords.owner]]) {
            await assert.rejects(connect(user, password, postgres.database), /permission denied for database "orthanc"/, user);
        }
    });

    it("the retention CronJob's script, as the owner, deletes exactly the records older than retentionDays", async () => {
        const owner = await connect(auditDatabase.owner, passwords.owner);
        try {
            const day = 86_400_000;
            const ages = { old: 31, edge: 29, fresh: 0 };
            await owner.query(auditInsertSql, [JSON.stringify(Object.entries(ages).map(([subject, days]) => record(new Date(Date.now() - days * day).toISOString(), `retention-${subject}`)))]);
            const result = await bash(auditRetentionScript("127.0.0.1", 30, postgres.port), { [auditEnvironment.password]: passwords.owner });
            assert.equal(result.code, 0, result.stderr);
            assert.match(result.stdout, /DELETE 1/);
            assert.match(result.stderr, /could not stop the sidecar/, "no proxy here; the script still ends");
            const left = (await owner.query(`SELECT subject FROM ${auditTable} WHERE subject LIKE 'retention-%' ORDER BY subject`)).map((row) => row.subject);
            assert.deepEqual(left, ["retention-edge", "retention-fresh"]);
        } finally {
            owner.close();
        }
        // The gatekeeper's password does not let the retention run: only the owner deletes.
        const asWriter = await bash(auditRetentionScript("127.0.0.1", 30, postgres.port).replaceAll(`-U ${auditDatabase.owner}`, `-U ${auditDatabase.writer}`), { [auditEnvironment.password]: passwords.writer });
        assert.notEqual(asWriter.code, 0);
        assert.match(asWriter.stderr, /permission denied for table gatekeeper_audit/);
    });
});
