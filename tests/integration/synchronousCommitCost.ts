/**
 * What synchronous replication costs, measured on the failover test's database tier (support/replication.ts: three
 * PostgreSQL nodes under repmgr behind Pgpool-II, configured from the rendered values), once with the tenant's
 * default (synchronous) and once with `postgres.replication: asynchronous`:
 * - commit latency: pgbench, one client, single-row INSERT commits through Pgpool as Orthanc's role;
 * - what Orthanc feels: one storescu association of small instances through one replica of the rendered configuration.
 *
 * A command, not a test (nothing is asserted on time):
 *   npx ts-node --transpile-only tests/integration/synchronousCommitCost.ts [seconds per pgbench run, default 10]
 * Loopback only: a cluster's network adds its round trip to every synchronous commit on top of these figures.
 */
import { writeFileSync } from "fs";
import { join } from "path";
import { ReplicationMode, TenantConfig } from "../../components/config/schema";
import { store, storeRate } from "./support/dcmtk";
import { generateInstances } from "./support/dicom";
import { generatePassword, productionConfig, startReplica } from "./support/orthanc";
import { assertPrerequisites, postgresBinDirectory } from "./support/prerequisites";
import { Resources, runOk } from "./support/processes";
import { startReplicatedPostgres } from "./support/replication";
import { testDomain, testStackConfig } from "./support/stack";

const seconds = Number(process.argv[2] ?? 10);
const instanceCount = 200;
const pixelBytes = 4 * 1024;

async function measure(replication: ReplicationMode): Promise<string> {
    const base = testStackConfig().tenants[0];
    const tenant: TenantConfig = { ...base, postgres: { ...base.postgres, replication } };
    const resources = new Resources();
    try {
        const db = await startReplicatedPostgres(resources, tenant);
        const dir = resources.tempDir("commit-cost");
        await db.endpoint.asOrthancRole("CREATE TABLE commit_cost (id bigserial PRIMARY KEY, payload text)");
        const script = join(dir, "insert.sql");
        writeFileSync(script, "INSERT INTO commit_cost (payload) VALUES (repeat('x', 200));\n");
        const pgbench = await runOk(join(postgresBinDirectory()!, "pgbench"), [
            "-n", "-c", "1", "-T", String(seconds), "-f", script,
            "-h", db.endpoint.host, "-p", String(db.endpoint.port), "-U", db.endpoint.user, db.endpoint.database,
        ]);
        const latency = /latency average = ([0-9.]+) ms/.exec(pgbench.stdout)?.[1] ?? "?";
        const tps = /tps = ([0-9.]+)/.exec(pgbench.stdout)?.[1] ?? "?";

        const config = productionConfig(tenant, testDomain, generatePassword(), db.endpoint.password);
        const replica = await startReplica(resources, { name: `commit-cost-${replication}`, config, postgres: db.endpoint, tenant });
        const instances = await generateInstances(dir, instanceCount, pixelBytes, "cost");
        const result = await store({ port: replica.dicomPort, calledAeTitle: replica.aeTitle }, instances);
        if (result.unacknowledged.length > 0) {
            throw new Error(`storescu: ${result.unacknowledged.length} not acknowledged\n${result.output}`);
        }
        const rate = storeRate(result);
        const standbyNames = (await db.nodes[0].sql("SHOW synchronous_standby_names")) || "(empty)";
        return (
            `${replication.padEnd(12)} synchronous_standby_names ${standbyNames}\n` +
            `             commit latency ${latency} ms (${tps} commits/s, pgbench 1 client ${seconds} s); ` +
            `C-STORE ${rate.instancesPerSecond.toFixed(0)} instances/s (${((1000 * result.seconds) / instanceCount).toFixed(1)} ms each, ${instanceCount} x ${pixelBytes / 1024} KiB, one association)`
        );
    } finally {
        await resources.release();
    }
}

async function main(): Promise<void> {
    assertPrerequisites();
    for (const replication of ["synchronous", "asynchronous"] as const) {
        console.log(await measure(replication));
    }
}

main().catch((error) => {
    console.error(error);
    process.exit(1);
});
