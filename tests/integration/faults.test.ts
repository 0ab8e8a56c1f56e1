/**
 * Faults a site meets (issue 17), on the real stack: the image's Orthanc 1.13.0 with the rendered configuration,
 * PostgreSQL, Pgpool-II as the Bitnami engine runs it, DCMTK as the modality, the gateway stand-in. Each fault ends
 * with the outcome a modality and a viewer expect: what the archive acknowledged is stored, byte for byte; what it did
 * not acknowledge the modality still holds and sends again; nothing is half stored (the index and the storage area
 * agree, row for row); the archive serves again without a restart once the fault is gone.
 */
import assert from "assert";
import { readFileSync, writeFileSync } from "fs";
import { join } from "path";
import { request as httpRequest } from "http";
import { TenantConfig } from "../../components/config/schema";
import { dicomGatewaySpec } from "../../components/tenant/ingress";
import { dicomWebRoot } from "../../components/tenant/orthancConfig";
import { DicomTarget, store } from "./support/dcmtk";
import { assertSamePart10, generateInstances, TestInstance } from "./support/dicom";
import { parseMultipart } from "./support/dicomWeb";
import { freeBytes, freeze, holdPgpoolChildren, keepSending, partialRows, restartPostgres, smallVolume, startForwarder } from "./support/faults";
import { gatewayServerTls, startLocalTenantBehindGateway, startTerminator } from "./support/gatewayTerminator";
import { generatePassword, productionConfig, Replica, startReplica } from "./support/orthanc";
import { Postgres, startPostgres } from "./support/postgres";
import { Resources, runOk, sleep } from "./support/processes";
import { startReplicatedPostgres } from "./support/replication";
import { startTenantStack, testDomain, testStackConfig } from "./support/stack";

const pixelBytes = 16 * 1024;

async function instanceId(replica: Replica, sopInstanceUid: string): Promise<string | undefined> {
    const response = await replica.request("/tools/lookup", { method: "POST", body: sopInstanceUid });
    assert.strictEqual(response.status, 200, `lookup on replica ${replica.name}: HTTP ${response.status}`);
    return ((await response.json()) as { ID: string; Type: string }[]).find((entry) => entry.Type === "Instance")?.ID;
}

/**
 * Polls a request that reads the index until `streak` in a row succeed: after PostgreSQL comes back, the first
 * request on each connection Orthanc still holds from before fails (HTTP 503, "the database is currently not
 * available") and that connection is opened again. Returns how many failed, or throws after `timeoutMs`.
 */
async function untilServing(replica: Replica, timeoutMs: number, streak = 10): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let failed = 0;
    let inRow = 0;
    while (inRow < streak) {
        const status = (await replica.request("/statistics")).status;
        inRow = status === 200 ? inRow + 1 : 0;
        failed += status === 200 ? 0 : 1;
        assert.ok(Date.now() < deadline, `replica ${replica.name} does not serve ${timeoutMs / 1000} s after PostgreSQL came back:\n${replica.child.logTail(10)}`);
        if (status !== 200) await sleep(200);
    }
    return failed;
}

/** A modality's retry queue: sends what is not acknowledged yet again, up to `rounds` times; what stays unacknowledged. */
async function sendUntilAcknowledged(target: DicomTarget, instances: TestInstance[], rounds: number): Promise<{ left: TestInstance[]; refused: number }> {
    let left = instances;
    let refused = 0;
    for (let round = 0; round < rounds && left.length > 0; round++) {
        const result = await store(target, left);
        refused += result.unacknowledged.length;
        left = result.unacknowledged;
    }
    return { left, refused };
}

/**
 * The archive's promise after a fault: every acknowledged instance is served byte for byte; every other one is absent
 * or whole (Orthanc may finish a store whose acknowledgement never reached the modality); nothing is half stored.
 */
async function assertKept(replica: Replica, postgres: Pick<Postgres, "asOrthancRole">, acknowledged: TestInstance[], unacknowledged: TestInstance[], where: string) {
    for (const instance of acknowledged) {
        const id = await instanceId(replica, instance.sopInstanceUid);
        assert.ok(id, `${where}: ${instance.file} was acknowledged and is gone`);
        assertSamePart10(await replica.getBytes(`/instances/${id}/file`), readFileSync(instance.file), `${where}: ${instance.file}`);
    }
    for (const instance of unacknowledged) {
        const id = await instanceId(replica, instance.sopInstanceUid);
        if (id) {
            assertSamePart10(await replica.getBytes(`/instances/${id}/file`), readFileSync(instance.file), `${where}: ${instance.file}, stored unacknowledged`);
        }
    }
    assert.deepStrictEqual(await partialRows(postgres.asOrthancRole), { filesWithoutAttachment: 0, attachmentsWithoutFile: 0 }, `${where}: half-stored instances`);
}

describe("faults a site meets, on the real stack (issue 17)", function () {
    this.timeout(180_000);
    let resources = new Resources();
    afterEach(async () => {
        await resources.release();
        resources = new Resources();
    });

    it("PostgreSQL unreachable for a minute while a modality sends: no acknowledged instance lost, Orthanc stores again without a restart", async function () {
        const outageSeconds = 60;
        const recoveryBoundSeconds = 30;
        const stack = await startTenantStack(resources);
        const replica = await stack.startReplica(resources, "faults-outage");
        const pid = replica.child.process.pid;
        const instances = await generateInstances(resources.tempDir("outage"), 40, pixelBytes, "outage");
        const target: DicomTarget = { port: replica.dicomPort, calledAeTitle: replica.aeTitle };
        const modality = keepSending(target, instances, 500);
        await sleep(3000);
        const thaw = freeze(resources, stack.postgres.child.process.pid!);
        const frozenAt = Date.now();
        await sleep(outageSeconds * 1000);
        thaw();
        const thawedAt = Date.now();
        const first = await modality.firstAcknowledgedSince(thawedAt, 3 * recoveryBoundSeconds * 1000);
        const attempts = await modality.stop();
        const during = attempts.filter((a) => a.ended > frozenAt && a.started < thawedAt);
        const acknowledged = attempts.filter((a) => a.acknowledged).map((a) => a.instance);
        const unacknowledged = attempts.filter((a) => !a.acknowledged).map((a) => a.instance);
        const recoveredAfter = first ? (first.ended - thawedAt) / 1000 : Infinity;
        console.log(
            `      ${attempts.length} associations; during the ${outageSeconds} s outage ${during.length}, ${during.filter((a) => a.acknowledged).length} acknowledged ` +
                `(longest ${Math.max(...during.map((a) => a.ended - a.started)) / 1000} s); first acknowledged C-STORE ${recoveredAfter.toFixed(1)} s after PostgreSQL came back`,
        );
        assert.ok(during.length > 0, "the modality sent nothing while PostgreSQL was unreachable");
        assert.ok(recoveredAfter < recoveryBoundSeconds, `Orthanc stored nothing within ${recoveryBoundSeconds} s of PostgreSQL's return:\n${replica.child.logTail(15)}`);
        assert.ok(replica.child.running && replica.child.process.pid === pid, "the replica was restarted");
        await assertKept(replica, stack.postgres, acknowledged, unacknowledged, "after the outage");
        // The modality still holds what was not acknowledged and sends it again: now every instance is stored.
        const resent = await store(target, unacknowledged);
        assert.equal(resent.unacknowledged.length, 0, resent.output.split("\n").slice(-5).join("\n"));
        await assertKept(replica, stack.postgres, [...acknowledged, ...unacknowledged], [], "after the modality sent again");
    });

    it("storage full: C-STOREs beyond the full volume are refused, nothing is half stored, and the archive stores again once space is freed and PostgreSQL restarted", async function () {
        const volume = await smallVolume(resources, "pgdata", 128);
        const cluster = join(volume, "cluster");
        const postgres = await startPostgres(resources, { directory: cluster });
        const tenant = testStackConfig().tenants[0];
        const config = productionConfig(tenant, testDomain, generatePassword(), postgres.password);
        const replica = await startReplica(resources, { name: "faults-full", config, postgres, tenant });
        const pid = replica.child.process.pid;
        // The volume almost full (a ballast file), as after months of studies; what is left holds a few dozen instances.
        const ballast = join(volume, "ballast");
        await runOk("fallocate", ["-l", String(freeBytes(volume) - 24 * 1024 * 1024), ballast]);
        const instances = await generateInstances(resources.tempDir("full"), 100, 256 * 1024, "full");
        const target: DicomTarget = { port: replica.dicomPort, calledAeTitle: replica.aeTitle };
        const result = await store(target, instances);
        const refusals = [...new Set(result.output.match(/Received Store Response \((?!Success)[^)]*\)/g) ?? [])];
        assert.ok(result.acknowledged.length > 0 && result.unacknowledged.length > 0, `the volume should fill during the ingest: ${result.acknowledged.length} acknowledged`);
        assert.ok(refusals.length > 0, `the C-STOREs after the volume filled got no failure status:\n${result.output.split("\n").slice(-5).join("\n")}`);
        // PostgreSQL cannot write WAL: the backend PANICs, crash recovery needs WAL space too, and the server shuts down.
        await postgres.child.exited;
        const panic = /PANIC: .*No space left on device/.exec(postgres.child.readLog())?.[0];
        assert.ok(panic, postgres.child.logTail(10));

        // Space freed (the volume grown, old data removed), and the container started again, as kubelet does.
        await runOk("rm", [ballast]);
        const restartedAt = Date.now();
        await restartPostgres(resources, postgres, join(cluster, "data"));
        const recoveredIn = (Date.now() - restartedAt) / 1000;
        const failedRequests = await untilServing(replica, 30_000);
        await assertKept(replica, postgres, result.acknowledged, result.unacknowledged, "after the volume filled");
        // Orthanc, never restarted, stores what the modality still holds.
        const resentAt = Date.now();
        const resent = await sendUntilAcknowledged(target, result.unacknowledged, 3);
        const resentIn = (Date.now() - resentAt) / 1000;
        assert.deepEqual(resent.left, [], `not stored after three rounds:\n${replica.child.logTail(10)}`);
        assert.ok(replica.child.running && replica.child.process.pid === pid, "the replica was restarted");
        await assertKept(replica, postgres, instances, [], "after space was freed");
        console.log(
            `      ${result.acknowledged.length} acknowledged, ${result.unacknowledged.length} refused (${refusals.join(", ")}); PostgreSQL: "${panic}", then shut down; ` +
                `restarted with space in ${recoveredIn.toFixed(1)} s; ${failedRequests} REST requests failed (503) on Orthanc's stale connections before it served again; ` +
                `the ${result.unacknowledged.length} refused instances sent again and stored in ${resentIn.toFixed(1)} s (${resent.refused} refused once more on the way)`,
        );
    });
});
