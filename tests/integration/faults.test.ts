/**
 * Faults a site meets (issue 17), on the real stack: the image's Orthanc 1.13.0 with the rendered configuration,
 * PostgreSQL, Pgpool-II as the Bitnami engine runs it, DCMTK as the modality, the gateway stand-in. Each fault ends
 * with the outcome a modality and a viewer expect: what the archive acknowledged is stored, byte for byte; what it did
 * not acknowledge the modality still holds and sends again; nothing is half stored (the index and the storage area
 * agree, row for row); the archive serves again without a restart once the fault is gone.
 */
import assert from "assert";
import { readFileSync } from "fs";
import { join } from "path";
import { IncomingHttpHeaders, request as httpRequest } from "http";
import { TenantConfig } from "../../components/config/schema";
import { dicomGatewaySpec } from "../../components/tenant/ingress";
import { dicomWebRoot } from "../../components/tenant/orthancConfig";
import { DicomTarget, store } from "./support/dcmtk";
import { assertSamePart10, generateInstances, TestInstance } from "./support/dicom";
import { parseMultipart } from "./support/dicomWeb";
import { freeBytes, freeze, holderQuery, holdPgpoolChildren, keepSending, partialRows, smallVolume, startAgain, startForwarder } from "./support/faults";
import { gatewayServerTls, startLocalTenantBehindGateway, startTerminator } from "./support/gatewayTerminator";
import { generatePassword, productionConfig, Replica, startReplica, lookupInstance } from "./support/orthanc";
import { Postgres, startPostgres } from "./support/postgres";
import { Resources, runOk, sleep, waitUntil } from "./support/processes";
import { startReplicatedPostgres } from "./support/replication";
import { startTenantStack, testDomain, testStackConfig } from "./support/stack";

const pixelBytes = 16 * 1024;

/** A WADO-RS download: what arrived, and how the HTTP exchange ended. */
interface Download {
    status: number;
    headers: IncomingHttpHeaders;
    contentType?: string;
    body: Buffer;
    /** Node's reading of the HTTP message: the whole message arrived (by length, chunking or close). */
    complete: boolean;
    /** The error the response or the request emitted (a reset connection, an aborted message). */
    error?: string;
}

/**
 * GETs `path` from a replica as a viewer does (all instances of a study, multipart/related), reading the body as it
 * comes; `onData` may act mid-download (kill the replica) and return true once it has.
 */
function download(port: number, credentials: { user: string; password: string }, path: string, onData?: (received: number) => Promise<boolean>): Promise<Download> {
    return new Promise((resolve) => {
        const chunks: Buffer[] = [];
        let received = 0;
        let acted = false;
        let settled = false;
        const headers = {
            Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*',
            Authorization: `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString("base64")}`,
        };
        const request = httpRequest({ host: "127.0.0.1", port, path, headers, agent: false }, (response) => {
            const finish = (error?: string) => {
                if (settled) return;
                settled = true;
                resolve({
                    status: response.statusCode ?? 0,
                    headers: response.headers,
                    contentType: response.headers["content-type"],
                    body: Buffer.concat(chunks),
                    complete: response.complete,
                    error,
                });
            };
            response.on("data", (chunk: Buffer) => {
                chunks.push(chunk);
                received += chunk.length;
                if (onData && !acted) {
                    response.pause();
                    void onData(received).then((done) => {
                        acted = done;
                        response.resume();
                    });
                }
            });
            response.on("end", () => finish());
            response.on("error", (error) => finish(`${(error as NodeJS.ErrnoException).code ?? ""} ${error.message}`.trim()));
            response.on("close", () => finish(response.complete ? undefined : "closed before the message was complete"));
        });
        request.on("error", (error) => {
            if (!settled) {
                settled = true;
                resolve({ status: 0, headers: {}, body: Buffer.concat(chunks), complete: false, error: error.message });
            }
        });
        request.setTimeout(60_000, () => request.destroy(new Error("no answer within 60 s")));
        request.end();
    });
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
        const id = await lookupInstance(replica, instance.sopInstanceUid);
        assert.ok(id, `${where}: ${instance.file} was acknowledged and is gone`);
        assertSamePart10(await replica.getBytes(`/instances/${id}/file`), readFileSync(instance.file), `${where}: ${instance.file}`);
    }
    for (const instance of unacknowledged) {
        const id = await lookupInstance(replica, instance.sopInstanceUid);
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
        // Seen: under a second (the connections Orthanc holds simply resume). The bound leaves room for a loaded machine.
        const first = await modality.firstAcknowledgedSince(thawedAt, 3 * recoveryBoundSeconds * 1000);
        const attempts = await modality.stop();
        const during = attempts.filter((a) => a.ended > frozenAt && a.started < thawedAt);
        const acknowledged = attempts.filter((a) => a.acknowledged).map((a) => a.instance);
        const unacknowledged = attempts.filter((a) => !a.acknowledged).map((a) => a.instance);
        const recoveredAfter = first ? (first.ended - thawedAt) / 1000 : Infinity;
        console.log(
            `      ${attempts.length} associations; during the ${outageSeconds} s outage ${during.length}, ${during.filter((a) => a.acknowledged).length} acknowledged ` +
                `(${during.map((a) => `${a.acknowledged ? "acknowledged" : "failed"} after ${((a.ended - a.started) / 1000).toFixed(1)} s`).join(", ")}); first acknowledged C-STORE ${recoveredAfter.toFixed(1)} s after PostgreSQL came back`,
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
        const again = startAgain(resources, postgres.child, join(volume, "postgres-again.log"), { stopSignal: "SIGINT", emergencySignal: "SIGQUIT" });
        await waitUntil("PostgreSQL accepts connections again", again, () => postgres.asSuperuser("SELECT 1").then(() => true, () => false));
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

    it("Pgpool out of children: a C-STORE that needs a new connection is refused clearly before the modality's DIMSE timeout, and stores once children are free", async function () {
        const base = testStackConfig().tenants[0];
        // One PostgreSQL node behind Pgpool: its children are what this is about, not replication.
        const tenant: TenantConfig = { ...base, postgres: { ...base.postgres, replicas: 1, replication: "asynchronous" } };
        const db = await startReplicatedPostgres(resources, tenant);
        const [primary] = db.nodes;
        const config = productionConfig(tenant, testDomain, generatePassword(), db.endpoint.password);
        const replica = await startReplica(resources, { name: "faults-pgpool", config, postgres: db.endpoint, tenant });
        const target: DicomTarget = { port: replica.dicomPort, calledAeTitle: replica.aeTitle };
        const capacity = Number(db.values.pgpool.numInitChildren) - Number(db.values.pgpool.reservedConnections);
        const sessions = async (where: string) => Number(await primary.sql(`SELECT count(*) FROM pg_stat_activity WHERE ${where}`));
        const held = () => sessions(`query = '${holderQuery}'`);
        const orthancSessions = () => sessions(`usename = '${db.endpoint.user}'`);
        const waitFor = async (what: string, ready: () => Promise<boolean>) => {
            const deadline = Date.now() + 30_000;
            while (!(await ready())) {
                assert.ok(Date.now() < deadline, `${what}: not within 30 s (held ${await held()}, Orthanc ${await orthancSessions()}, capacity ${capacity})`);
                await sleep(250);
            }
        };
        // Other clients take every child Orthanc does not hold, and keep asking for more.
        const holders = holdPgpoolChildren(resources, db.endpoint.port, capacity);
        await waitFor("the other clients hold every free child", async () => (await held()) + (await orthancSessions()) === capacity);
        // Pgpool restarted (its pod rolled, or OOM-killed): every client connects again, and the others take every child
        // before Orthanc's next request needs one. Orthanc is paused (SIGSTOP) across the restart so that it loses that
        // race every time; unpaused, it won 5 of the 46 children here, and a C-STORE went through. (pg_terminate_backend
        // of Orthanc's sessions would not do: with failover_on_backend_shutdown, the image's default, Pgpool takes the
        // node for shut down and detaches it.)
        const thawOrthanc = freeze(resources, replica.child.process.pid!);
        await db.pgpool.stop("SIGINT");
        // The sessions Pgpool held end with it (PostgreSQL notices a vanished client only when it next writes to it).
        await primary.sql(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query = '${holderQuery}'`);
        const pgpool = startAgain(resources, db.pgpool, join(primary.dataDir, "..", "pgpool-again.log"), { stopSignal: "SIGINT" });
        await waitFor("the other clients hold every child", async () => (await held()) === capacity);
        thawOrthanc();
        const logBefore = replica.child.readLog().length;
        const attempts: { seconds: number; acknowledged: boolean; response?: string }[] = [];
        const instances = await generateInstances(resources.tempDir("pgpool"), 14, pixelBytes, "pgpool");
        // The modality's DIMSE timeout (store's -td 30): the refusal must come before it, and before DicomScpTimeout.
        const modalityTimeout = 30;
        const bound = Math.min(modalityTimeout, config.DicomScpTimeout as number);
        // The first C-STOREs fail at once on the connections Orthanc held before (five for the index, one for the
        // storage area); one of the next needs a new connection.
        for (const instance of instances.slice(0, 10)) {
            const result = await store(target, [instance]);
            const response = /Received Store Response \(([^)]*)\)/.exec(result.output)?.[1];
            attempts.push({ seconds: result.seconds, acknowledged: result.acknowledged.length === 1, response });
            assert.ok(response !== undefined, `no C-STORE response within the modality's ${modalityTimeout} s (after ${result.seconds.toFixed(1)} s):\n${result.output.split("\n").slice(-4).join("\n")}\n${replica.child.logTail(6)}\n${pgpool.logTail(4)}`);
            assert.ok(result.seconds < bound, `answered after ${result.seconds.toFixed(1)} s, past ${bound} s`);
            assert.equal(result.acknowledged.length, 0, "stored through a Pgpool with no free child?");
            if (/too many clients/.test(replica.child.readLog().slice(logBefore)) && result.seconds > 5) break;
        }
        const retried = /Database is currently unavailable, retrying/.test(replica.child.readLog().slice(logBefore));
        const tooMany = /too many clients/.test(replica.child.readLog().slice(logBefore));
        assert.ok(retried && tooMany, `Orthanc never had to connect through the full Pgpool (${attempts.map((a) => `${a.response} after ${a.seconds.toFixed(1)} s`).join(", ")}):\n${replica.child.logTail(10)}`);
        await holders.release();
        const freedAt = Date.now();
        const { left, refused } = await sendUntilAcknowledged(target, instances.slice(10), 3);
        const storedAfter = (Date.now() - freedAt) / 1000;
        assert.deepEqual(left, [], replica.child.logTail(10));
        // Seen: under a second. The bound leaves room for one more reconnection window on a loaded machine.
        assert.ok(storedAfter < 30, `stored only ${storedAfter.toFixed(1)} s after Pgpool had children again`);
        assert.ok(replica.child.running, "the replica exited");
        await assertKept(replica, db.endpoint, instances.slice(10), instances.slice(0, 10), "after Pgpool had children again");
        console.log(
            `      ${capacity} clients admitted by Pgpool (num_init_children ${db.values.pgpool.numInitChildren}, reserved ${db.values.pgpool.reservedConnections}); ` +
                `C-STOREs while full: ${attempts.map((a) => `${a.response} after ${a.seconds.toFixed(1)} s`).join(", ")}; ` +
                `stored ${storedAfter.toFixed(1)} s after children were freed (${refused} refused on the way)`,
        );
    });

    it("a replica restarted (SIGKILL, then started) during a WADO-RS download: the client sees the download fail, and the retry on the other replica gets every byte", async function () {
        const stack = await startTenantStack(resources);
        const [a, b] = await Promise.all(["faults-wado-a", "faults-wado-b"].map((name) => stack.startReplica(resources, name)));
        const instances = await generateInstances(resources.tempDir("wado"), 24, 1024 * 1024, "wado", { oneStudy: true });
        const sent = await store({ port: b.dicomPort, calledAeTitle: b.aeTitle }, instances);
        assert.equal(sent.acknowledged.length, instances.length);
        const path = `${dicomWebRoot}studies/${instances[0].studyInstanceUid}`;
        const killed = await download(a.httpPort, stack.admin, path, async (received) => {
            if (received >= 2 * 1024 * 1024) {
                await a.child.kill();
                return true;
            }
            return false;
        });
        const restarted = await stack.startReplica(resources, "faults-wado-a");
        let partsBeforeKill = 0;
        let parseError = "";
        try {
            partsBeforeKill = parseMultipart(killed.contentType, killed.body).length;
        } catch (error) {
            parseError = (error as Error).message;
        }
        console.log(
            `      download from the killed replica: HTTP ${killed.status}, ${killed.body.length} bytes, ` +
                `transfer ${killed.headers["transfer-encoding"] ?? (killed.headers["content-length"] ? `Content-Length ${killed.headers["content-length"]}` : "until close")}, ` +
                `HTTP-level: ${killed.error ?? (killed.complete ? "complete" : "incomplete")}, multipart: ${parseError || `${partsBeforeKill} parts`}`,
        );
        // Failed or truncated, never a complete-looking answer: the HTTP message is cut (reset or incomplete), or the
        // multipart body lacks its closing delimiter. Orthanc sends every multipart answer with "Connection: close" and
        // neither a length nor chunks (OrthancFramework/Sources/HttpServer/HttpOutput.cpp, StartStreamInternal): the
        // end of the connection is the end of the body, so a killed replica's answer ends cleanly at the HTTP level,
        // and only the missing closing delimiter (and the last part's Content-Length) tell the client it is short.
        assert.ok(killed.error !== undefined || !killed.complete || parseError !== "", "the killed download looks complete");
        assert.ok(partsBeforeKill < instances.length, "every instance arrived although the replica was killed");
        for (const replica of [b, restarted]) {
            const whole = await download(replica.httpPort, stack.admin, path);
            assert.equal(whole.status, 200);
            assert.ok(whole.error === undefined && whole.complete, `retry on ${replica.name}: ${whole.error}`);
            const parts = parseMultipart(whole.contentType, whole.body);
            assert.equal(parts.length, instances.length);
            const bySop = new Map(instances.map((instance) => [instance.sopInstanceUid, instance]));
            for (const part of parts) {
                const uid = [...bySop.keys()].find((key) => part.content.includes(Buffer.from(key)));
                assert.ok(uid, `a part of ${replica.name}'s answer is none of the instances sent`);
                assertSamePart10(part.content, readFileSync(bySop.get(uid)!.file), `WADO-RS from ${replica.name}`);
                bySop.delete(uid);
            }
        }
        assert.deepStrictEqual(await partialRows(stack.postgres.asOrthancRole), { filesWithoutAttachment: 0, attachmentsWithoutFile: 0 });
    });

    it("the gateway stand-in restarted during a DICOM TLS association: storescu fails cleanly, a rerun stores everything, nothing partial", async function () {
        const local = await startLocalTenantBehindGateway(resources);
        const [replica] = local.replicas;
        // The Service in front of the gateway pods: its address stays while the pod behind it is replaced.
        const service = await startForwarder(resources, local.dicomGateway.port);
        const modality = Object.values(local.modalities)[0];
        const target: DicomTarget = {
            port: service.port,
            calledAeTitle: local.tenant.orthanc.aeTitle,
            tls: { keyFile: modality.keyFile, certFile: modality.certFile, trustFiles: [local.pki.root.certFile] },
        };
        const instances = await generateInstances(resources.tempDir("gateway"), 80, pixelBytes, "gateway");
        let restarted: Promise<void> | undefined;
        const first = await store(target, instances, (count) => {
            if (count === 30) {
                restarted = (async () => {
                    await local.dicomGateway.close();
                    const tenantPki = local.pki.tenants[local.tenant.name];
                    const gateway = await startTerminator(
                        resources,
                        gatewayServerTls(dicomGatewaySpec(local.names, Object.values(local.modalities).map((m) => m.fingerprint))),
                        {
                            keyPem: readFileSync(tenantPki.server.keyFile, "utf8"),
                            certificateChainPem: readFileSync(tenantPki.serverChainFile, "utf8"),
                            clientCaPem: readFileSync(tenantPki.trustAnchor.certFile, "utf8"),
                        },
                        replica.dicomPort,
                    );
                    service.retarget(gateway.port);
                })();
            }
        });
        assert.ok(restarted, `the gateway was never restarted: ${first.acknowledged.length} acknowledged`);
        await restarted;
        assert.notEqual(first.exitCode, 0, "storescu reported success although its association was cut");
        assert.ok(first.unacknowledged.length > 0, "nothing was left unacknowledged: the restart came too late");
        const failure = first.output.split("\n").filter((line) => /^E: /.test(line)).slice(0, 2).join(" | ");
        await assertKept(replica, local.stack.postgres, first.acknowledged, first.unacknowledged, "after the cut association");
        const rerun = await store(target, first.unacknowledged);
        assert.equal(rerun.exitCode, 0, rerun.output.split("\n").slice(-4).join("\n"));
        assert.equal(rerun.unacknowledged.length, 0);
        await assertKept(replica, local.stack.postgres, instances, [], "after the rerun");
        console.log(
            `      storescu over TLS: ${first.acknowledged.length} acknowledged before the gateway restart, then exit code ${first.exitCode} ("${failure}"); ` +
                `the rerun of ${first.unacknowledged.length} stored all`,
        );
    });
});
