/**
 * Database failover on the Bitnami engine's own parts: the host's PostgreSQL, repmgr with repmgrd and Pgpool-II
 * (Debian's packages), configured from the values the program renders (support/replication.ts), two replicas of the
 * image's Orthanc 1.13.0 with the rendered configuration ingesting through Pgpool, and the primary SIGKILLed
 * mid-ingest.
 *
 * With the rendered default (synchronous replication, quorum ANY 1), and one of the two standbys cut off from the
 * primary's WAL beforehand, every instance Orthanc acknowledged is still served byte for byte after repmgr promotes
 * the other standby, and Orthanc resumes by itself (once the cut-off standby follows the new primary: the quorum then
 * needs it). With replication asynchronous
 * and the standbys cut off from the primary's WAL (a standby that lags behind, made certain), the same kill loses
 * acknowledged instances: the check has teeth.
 */
import assert from "assert";
import { readFileSync } from "fs";
import { TenantConfig } from "../../components/config/schema";
import { store, StoreResult } from "./support/dcmtk";
import { assertSamePart10, generateInstances, TestInstance } from "./support/dicom";
import { generatePassword, productionConfig, Replica, startReplica, lookupInstance } from "./support/orthanc";
import { Postgres } from "./support/postgres";
import { Resources, sleep } from "./support/processes";
import { PostgresNode, ReplicatedPostgres, startReplicatedPostgres } from "./support/replication";
import { testDomain, testStackConfig } from "./support/stack";

/**
 * How long Orthanc may take to store again after the primary is killed. Pgpool notices the dead primary by its
 * health check (the image's defaults: every 30 s, then 5 retries 5 s apart: at most 55 s), while repmgrd promotes a
 * standby (the chart's 2 reconnection attempts 3 s apart, then an election: about 10 s); Pgpool then finds the new
 * primary within a second and Orthanc's next connection reaches it. 90 s leaves room for a loaded machine.
 */
const resumeBoundSeconds = 90;
const pixelBytes = 4 * 1024;

/** The database of one node itself, bypassing Pgpool (for reading what a promoted node holds). */
function nodeEndpoint(db: ReplicatedPostgres, node: PostgresNode): Postgres {
    return { ...db.endpoint, port: node.port };
}

describe("database failover on real repmgr, Pgpool-II and PostgreSQL (the Bitnami engine's parts)", function () {
    this.timeout(240_000);
    let resources = new Resources();
    afterEach(async () => {
        await resources.release();
        resources = new Resources();
    });

    async function startTenant(tenant: TenantConfig) {
        const db = await startReplicatedPostgres(resources, tenant);
        const config = productionConfig(tenant, testDomain, generatePassword(), db.endpoint.password);
        const replicas = await Promise.all(
            ["failover-a", "failover-b"].map((name) => startReplica(resources, { name, config, postgres: db.endpoint, tenant })),
        );
        return { db, config, replicas };
    }

    /** Two associations at once, one per replica; `onAcknowledged` sees the running total. */
    async function ingest(replicas: Replica[], batches: TestInstance[][], onAcknowledged?: (total: number) => void): Promise<StoreResult[]> {
        let total = 0;
        return Promise.all(
            replicas.map((replica, index) =>
                store({ port: replica.dicomPort, calledAeTitle: replica.aeTitle }, batches[index], () => onAcknowledged?.(++total)),
            ),
        );
    }

    /**
     * Each replica stores one instance before the batch, retrying: under CI's load the first stores after a standby's
     * WAL is cut have stalled for a while (every instance of both batches unacknowledged, in either case), which would
     * leave the test nothing to kill or lose; what it asserts is what happens after the kill, not the start-up.
     * Returns the acknowledged instances, which must survive like the rest.
     */
    async function storeOneEach(db: ReplicatedPostgres, replicas: Replica[], dir: string): Promise<TestInstance[]> {
        const warmUps = await generateInstances(dir, 2 * 30, pixelBytes, "warm-up");
        const acknowledged: TestInstance[] = [];
        for (const replica of replicas) {
            const deadline = Date.now() + 90_000;
            for (;;) {
                const result = await store({ port: replica.dicomPort, calledAeTitle: replica.aeTitle }, [warmUps.shift()!]);
                if (result.acknowledged.length === 1) {
                    acknowledged.push(...result.acknowledged);
                    break;
                }
                assert.ok(Date.now() < deadline, `replica ${replica.name} stores nothing before the ingest:\n${result.output}\n${replica.child.logTail(10)}\n${db.pgpool.logTail(10)}`);
                await sleep(1000);
            }
        }
        return acknowledged;
    }

    it(`synchronous (the rendered default): SIGKILL of the primary mid-ingest loses no acknowledged instance, and Orthanc resumes by itself within ${resumeBoundSeconds} s`, async function () {
        const tenant = testStackConfig().tenants[0];
        assert.equal(tenant.postgres.replication, "synchronous");
        const { db, replicas } = await startTenant(tenant);
        // The first standby: repmgr breaks ties (equal LSN and priority) by the lowest node id, so promoting the other one
        // shows that it compared what each standby received.
        const [primary, lagging] = db.nodes;
        const rendered = await primary.sql("SHOW synchronous_standby_names");
        assert.match(rendered, /^ANY 1 \(/, "the rendered init script made the primary synchronous");
        // One standby cut off from the primary's WAL, as a lost standby: the quorum of one carries on with the other,
        // and repmgr must promote the standby that has every commit, not this one.
        await db.pauseWalReceipt(lagging);
        // The quorum's other standby must be streaming and counted before the ingest starts: otherwise every commit
        // waits, the C-STOREs time out before the kill, and the test says nothing about failover (seen once in CI).
        const deadline = Date.now() + 30_000;
        while (Number(await primary.sql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND sync_state IN ('quorum', 'sync')")) < 1) {
            assert.ok(Date.now() < deadline, `no standby in the quorum: ${await primary.sql("SELECT application_name, state, sync_state FROM pg_stat_replication")}`);
            await sleep(250);
        }

        const dir = resources.tempDir("failover-sync");
        const warmedUp = await storeOneEach(db, replicas, dir);
        const batches = [await generateInstances(dir, 80, pixelBytes, "a"), await generateInstances(dir, 80, pixelBytes, "b")];
        const killAfter = 30;
        let killedAt = 0;
        const results = await ingest(replicas, batches, (total) => {
            if (total === killAfter) {
                killedAt = Date.now();
                primary.kill();
            }
        });
        assert.ok(killedAt > 0, `the kill never happened: ${results.map((r) => r.output.split("\n").slice(-3).join(" | ")).join(" / ")}`);
        const acknowledged = [...warmedUp, ...results.flatMap((result) => result.acknowledged)];
        const refused = results.flatMap((result) => result.unacknowledged);
        assert.ok(refused.length > 0, "the kill should land in the middle of the ingest");

        const promoted = await db.waitForPrimary([primary], 60_000);
        assert.notEqual(promoted.name, lagging.name, "repmgr promoted the standby that lacks acknowledged commits");
        const promotedAfter = (Date.now() - killedAt) / 1000;
        // ALTER SYSTEM's postgresql.auto.conf came with repmgr's clone: the new primary waits for a standby too.
        assert.equal(await promoted.sql("SHOW synchronous_standby_names"), rendered, `${promoted.name} runs without the quorum`);

        // Each replica stores again by itself: one instance at a time, once a second, until one is acknowledged.
        const probes = await generateInstances(dir, 2 * resumeBoundSeconds, pixelBytes, "probe");
        const resumedAfter: number[] = [];
        for (const replica of replicas) {
            for (;;) {
                const probe = probes.shift()!;
                const result = await store({ port: replica.dicomPort, calledAeTitle: replica.aeTitle }, [probe]);
                if (result.acknowledged.length === 1) {
                    acknowledged.push(probe);
                    resumedAfter.push((Date.now() - killedAt) / 1000);
                    break;
                }
                assert.ok((Date.now() - killedAt) / 1000 < resumeBoundSeconds, `replica ${replica.name} stores nothing ${resumeBoundSeconds} s after the kill:\n${replica.child.logTail(10)}\n${db.pgpool.logTail(10)}`);
                await sleep(1000);
            }
        }

        const missing: string[] = [];
        for (const instance of acknowledged) {
            for (const replica of replicas) {
                const id = await lookupInstance(replica, instance.sopInstanceUid);
                if (!id) {
                    missing.push(`${instance.sopInstanceUid} through ${replica.name}`);
                    continue;
                }
                assertSamePart10(await replica.getBytes(`/instances/${id}/file`), readFileSync(instance.file), `${instance.file} through ${replica.name}`);
            }
        }
        console.log(
            `      primary ${primary.name} SIGKILLed after ${killAfter} acknowledged; ${refused.length} refused during the failover; ` +
                `repmgr promoted ${promoted.name} after ${promotedAfter.toFixed(1)} s; Orthanc stored again after ` +
                `${resumedAfter.map((s) => s.toFixed(1)).join(" s and ")} s; ${acknowledged.length} acknowledged, ${missing.length} missing`,
        );
        assert.deepEqual(missing, [], `acknowledged instances lost:\n${db.repmgrLog()}`);
    });

    it("asynchronous, with the standbys cut off from the primary's WAL: the same kill loses acknowledged instances", async function () {
        const synchronous = testStackConfig().tenants[0];
        const tenant: TenantConfig = { ...synchronous, postgres: { ...synchronous.postgres, replication: "asynchronous" } };
        const { db, config, replicas } = await startTenant(tenant);
        const [primary, ...standbys] = db.nodes;
        assert.equal(await primary.sql("SHOW synchronous_standby_names"), "", "asynchronous: no init script, no quorum");
        // A standby that lags (a slow link, a standby catching up): made certain by stopping its WAL receiver. Delaying
        // replay instead (recovery_min_apply_delay) would lose nothing: promotion replays whatever WAL was received.
        for (const standby of standbys) {
            await db.pauseWalReceipt(standby);
        }

        const dir = resources.tempDir("failover-async");
        await storeOneEach(db, replicas, dir);
        const batches = [await generateInstances(dir, 20, pixelBytes, "a"), await generateInstances(dir, 20, pixelBytes, "b")];
        const results = await ingest(replicas, batches);
        const acknowledged = results.flatMap((result) => result.acknowledged);
        assert.equal(
            acknowledged.length,
            40,
            `asynchronous commits wait for nobody: every instance is acknowledged\n${results.map((result) => result.output.split("\n").slice(-5).join("\n")).join("\n")}\n${db.pgpool.logTail(10)}`,
        );
        primary.kill();
        const promoted = await db.waitForPrimary([primary], 60_000);

        // What the promoted node serves: an Orthanc replica on it directly (Pgpool would take up to a minute to notice).
        const reader = await startReplica(resources, { name: "failover-reader", config, postgres: nodeEndpoint(db, promoted), tenant });
        const lost: TestInstance[] = [];
        for (const instance of acknowledged) {
            if (!(await lookupInstance(reader, instance.sopInstanceUid))) {
                lost.push(instance);
            }
        }
        console.log(`      repmgr promoted ${promoted.name}; ${lost.length} of ${acknowledged.length} acknowledged instances are gone`);
        assert.ok(lost.length > 0, "asynchronous replication with lagging standbys lost nothing: the failover test could not fail");
    });
});
