/**
 * How studies leave the tenant, on the rendered configuration: DICOMweb (STOW-RS, QIDO-RS, WADO-RS) with Debian's
 * DICOMweb plugin, DIMSE query/retrieve (C-FIND, C-GET, C-MOVE) for registered modalities only, and the tenant's
 * gateway in front of it all (TLS terminators set up from the program's Gateway builders, support/gatewayTerminator).
 *
 * Two replicas share one PostgreSQL; what goes in through one replica comes out through the other. The tenant is
 * started with startLocalTenantBehindGateway, the function a later test points the CLI at, so its outputs are checked
 * here too.
 */
import assert from "assert";
import { readFileSync, writeFileSync } from "fs";
import { join } from "path";
import { dicomWebRoot } from "../../components/tenant/orthancConfig";
import { certificateFingerprint } from "../../components/tenant/pki";
import { callingAeTitle, ClientTls, DicomTarget, echo, find, get, move, store } from "./support/dcmtk";
import { assertSamePart10, generateInstances, TestInstance } from "./support/dicom";
import { firstValue, parseMultipart, stow, WebTarget, webRequest } from "./support/dicomWeb";
import { LocalTenant, startLocalTenantBehindGateway, TerminatorEvent } from "./support/gatewayTerminator";
import { Credentials, Replica } from "./support/orthanc";
import { issueModalityCertificate } from "./support/pki";
import { assertPrerequisites, laptopPluginFiles, orthancRootLayout } from "./support/prerequisites";
import { freePort, Resources, sleep, waitForLog } from "./support/processes";
import { testStackConfig } from "./support/stack";

const smallPixelBytes = 4 * 1024;
/** A registered modality with an address: Orthanc may C-MOVE to it (the suite's own has none: C-GET only). */
const moveModality = { name: "move-target", aeTitle: "KORTHWEB-MOVE", host: "127.0.0.1" };
/** An AE title no configuration registers. */
const strangerAeTitle = "STRANGER";
const wadoAccept = 'multipart/related; type="application/dicom"';

describe("Distributing studies: DICOMweb, query/retrieve and the tenant's gateway (real Orthanc, PostgreSQL, DCMTK)", function () {
    const suite = new Resources();
    let perTest = new Resources();
    let local: LocalTenant;
    let a: Replica;
    let b: Replica;
    let admin: Credentials;
    let dataDir: string;
    let moveListenPort: number;

    const direct = (replica: Replica, credentials: Credentials | null = admin): WebTarget => ({ port: replica.httpPort, credentials });
    const dicomTo = (replica: Replica, callingAe = callingAeTitle): DicomTarget => ({ port: replica.dicomPort, calledAeTitle: replica.aeTitle, callingAeTitle: callingAe });
    const studyKeys = (instance: TestInstance) => ({ QueryRetrieveLevel: "STUDY", StudyInstanceUID: instance.studyInstanceUid });

    async function knows(replica: Replica, sopInstanceUid: string): Promise<boolean> {
        const response = await replica.request("/tools/lookup", { method: "POST", body: sopInstanceUid });
        assert.strictEqual(response.status, 200);
        return ((await response.json()) as { Type: string }[]).some((entry) => entry.Type === "Instance");
    }

    async function storeAll(replica: Replica, instances: TestInstance[]): Promise<void> {
        const result = await store(dicomTo(replica), instances);
        assert.strictEqual(result.unacknowledged.length, 0, `storescu to replica ${replica.name} failed:\n${result.output}`);
    }

    before(async function () {
        assertPrerequisites();
        moveListenPort = await freePort();
        const started = Date.now();
        local = await startLocalTenantBehindGateway(suite, {
            stackConfig: testStackConfig([{ ...moveModality, port: moveListenPort }]),
            replicas: 2,
        });
        [a, b] = local.replicas;
        admin = local.stack.admin;
        dataDir = suite.tempDir("distribute-data");
        console.log(`      tenant ${local.tenant.name} behind its gateway in ${((Date.now() - started) / 1000).toFixed(1)} s: ${JSON.stringify(local.targets)}`);
    });

    afterEach(async function () {
        if (this.currentTest?.state === "failed") {
            for (const replica of local?.replicas ?? []) {
                console.log(`--- log of replica ${replica.name}:\n${replica.child.logTail(40)}`);
            }
            console.log(`--- gateway events: ${JSON.stringify({ dicom: local?.dicomGateway.events, web: local?.webGateway.events })}`);
        }
        const resources = perTest;
        perTest = new Resources();
        await resources.release();
    });

    after(async function () {
        await perTest.release();
        await suite.release();
    });

    it("STOW-RS through one replica; QIDO-RS and WADO-RS through the other return the same DICOM; no credentials get 401", async function () {
        const dicomWebPlugin = `${orthancRootLayout.pluginDirectory}/libOrthancDicomWeb.so`;
        for (const replica of local.replicas) {
            assert.ok(laptopPluginFiles().includes(dicomWebPlugin) && (replica.config.Plugins as string[]).includes(dicomWebPlugin));
            assert.ok((await replica.getJson<string[]>("/plugins")).includes("dicom-web"), `replica ${replica.name} has no DICOMweb plugin`);
        }
        const instances = await generateInstances(dataDir, 2, smallPixelBytes, "stow");
        const sent = instances.map((instance) => readFileSync(instance.file));

        const stored = await stow(direct(a), dicomWebRoot, sent);
        assert.strictEqual(stored.status, 200, `STOW-RS on replica a: HTTP ${stored.status} ${stored.body.toString()}`);
        const answer = JSON.parse(stored.body.toString()) as Record<string, { Value?: Record<string, { Value?: unknown[] }>[] }>;
        assert.strictEqual(answer["00081198"], undefined, `STOW-RS reported failures: ${stored.body.toString()}`);
        const referenced = (answer["00081199"]?.Value ?? []).map((item) => firstValue(item, "00081155"));
        assert.deepStrictEqual(referenced.sort(), instances.map((instance) => instance.sopInstanceUid).sort());

        for (const [index, instance] of instances.entries()) {
            const query = await webRequest(direct(b), `${dicomWebRoot}studies?StudyInstanceUID=${instance.studyInstanceUid}`, {
                headers: { Accept: "application/dicom+json" },
            });
            assert.strictEqual(query.status, 200, `QIDO-RS on replica b: HTTP ${query.status} ${query.body.toString()}`);
            const studies = JSON.parse(query.body.toString()) as Record<string, { Value?: unknown[] }>[];
            assert.deepStrictEqual(studies.map((study) => firstValue(study, "0020000D")), [instance.studyInstanceUid]);
            assert.strictEqual(firstValue(studies[0], "00100020"), "KORTHWEB-IT");

            const path = `${dicomWebRoot}studies/${instance.studyInstanceUid}/series/${instance.seriesInstanceUid}/instances/${instance.sopInstanceUid}`;
            const retrieved = await webRequest(direct(b), path, { headers: { Accept: wadoAccept } });
            assert.strictEqual(retrieved.status, 200, `WADO-RS on replica b: HTTP ${retrieved.status} ${retrieved.body.toString().slice(0, 500)}`);
            const parts = parseMultipart(retrieved.headers["content-type"], retrieved.body);
            assert.strictEqual(parts.length, 1);
            assert.match(parts[0].headers["content-type"] ?? "", /^application\/dicom\b/);
            assertSamePart10(parts[0].content, sent[index], `${instance.file} stored with STOW-RS on a, retrieved with WADO-RS from b`);
        }

        // Authentication covers DICOMweb as it covers the rest of the REST API.
        const [first] = instances;
        const wrongPassword = { user: admin.user, password: `${admin.password}x` };
        for (const replica of local.replicas) {
            for (const credentials of [null, wrongPassword]) {
                const who = `replica ${replica.name} with ${credentials ? "a wrong password" : "no credentials"}`;
                const query = await webRequest(direct(replica, credentials), `${dicomWebRoot}studies?StudyInstanceUID=${first.studyInstanceUid}`);
                assert.strictEqual(query.status, 401, `QIDO-RS on ${who}`);
                const retrieve = await webRequest(direct(replica, credentials), `${dicomWebRoot}studies/${first.studyInstanceUid}`, {
                    headers: { Accept: wadoAccept },
                });
                assert.strictEqual(retrieve.status, 401, `WADO-RS on ${who}`);
                const [other] = await generateInstances(dataDir, 1, smallPixelBytes, `stow-refused-${replica.name}-${credentials ? "wrong" : "none"}`);
                const refused = await stow(direct(replica, credentials), dicomWebRoot, [readFileSync(other.file)]);
                assert.strictEqual(refused.status, 401, `STOW-RS on ${who}`);
                assert.ok(!(await knows(replica, other.sopInstanceUid)), `STOW-RS on ${who} stored the instance`);
            }
        }
    });

    it("C-FIND, C-GET and C-MOVE answer registered modalities only, and C-MOVE only to a modality with an address", async function () {
        const [instance] = await generateInstances(dataDir, 1, smallPixelBytes, "query-retrieve");
        await storeAll(a, [instance]);
        const sent = readFileSync(instance.file);

        // The registered modality finds the study through the other replica...
        const found = await find(dicomTo(b), { ...studyKeys(instance), PatientID: "" });
        assert.ok(found.ok, `C-FIND from ${callingAeTitle} failed:\n${found.output}`);
        assert.deepStrictEqual(
            found.matches.map((match) => ({ study: match.StudyInstanceUID, patient: match.PatientID })),
            [{ study: instance.studyInstanceUid, patient: "KORTHWEB-IT" }],
        );
        // ...and retrieves it with C-GET, unchanged (getscu writes its own file meta information).
        const getDir = perTest.tempDir("c-get");
        const got = await get(dicomTo(b), studyKeys(instance), getDir);
        assert.ok(got.ok && got.completed === 1 && got.files.length === 1, `C-GET from ${callingAeTitle} failed:\n${got.output}`);
        assertSamePart10(readFileSync(got.files[0]), sent, `${instance.file} retrieved with C-GET from b`);

        // C-MOVE: Orthanc opens an association to the configured address of the destination's entry.
        const moveDir = perTest.tempDir("c-move");
        const moved = await move(dicomTo(b, moveModality.aeTitle), studyKeys(instance), { aeTitle: moveModality.aeTitle, listenPort: moveListenPort }, moveDir);
        assert.ok(moved.ok && moved.files.length === 1, `C-MOVE to ${moveModality.aeTitle} failed:\n${moved.output}`);
        assertSamePart10(readFileSync(moved.files[0]), sent, `${instance.file} delivered by C-MOVE from b`);

        // Refusals, each confirmed by Orthanc's reason in its log: nothing found or sent, whatever the tool's exit code.
        const refused: [string, string, "Find" | "Get" | "Move", RegExp][] = [
            ["C-FIND from an unregistered AE title", strangerAeTitle, "Find", /This AET is not listed in configuration option "DicomModalities"/],
            ["C-GET from an unregistered AE title", strangerAeTitle, "Get", /This AET is not listed in configuration option "DicomModalities"/],
            ["C-MOVE from an unregistered AE title", strangerAeTitle, "Move", /This AET is not listed in configuration option "DicomModalities"/],
            ["C-MOVE from a registered modality without an address", callingAeTitle, "Move", /The DICOM command Move is not allowed for this modality/],
        ];
        for (const [what, callingAe, command, reason] of refused) {
            const logLength = b.child.readLog().length;
            const target = dicomTo(b, callingAe);
            if (command === "Find") {
                const result = await find(target, studyKeys(instance));
                assert.ok(!result.ok && result.matches.length === 0, `${what} was answered:\n${result.output}`);
            } else {
                const outputDirectory = perTest.tempDir(`refused-${command}`);
                const result =
                    command === "Get"
                        ? await get(target, studyKeys(instance), outputDirectory)
                        : await move(target, studyKeys(instance), { aeTitle: moveModality.aeTitle, listenPort: moveListenPort }, outputDirectory);
                assert.ok(!result.ok && !result.completed && result.files.length === 0, `${what} was answered:\n${result.output}`);
            }
            const logged = await waitForLog(b.child, logLength, new RegExp(`Rejected ${command} request from remote DICOM modality with AET "${callingAe}"`));
            assert.match(logged, reason, what);
        }
    });

    it("the DICOM gateway admits the configured modalities' own certificates only", async function () {
        const gateway = local.dicomGateway;
        const fingerprints = Object.values(local.modalities).map((modality) => modality.fingerprint);
        assert.deepStrictEqual(
            { requestCert: gateway.settings.requestCert, rejectUnauthorized: gateway.settings.rejectUnauthorized, hashes: gateway.settings.verifyCertificateHash },
            { requestCert: true, rejectUnauthorized: true, hashes: [...fingerprints].sort() },
        );
        const bhs = local.pki.tenants[local.tenant.name];
        const trustFiles = [local.pki.root.certFile];
        const through = (callingAe: string, tls?: ClientTls): DicomTarget => ({ port: gateway.port, calledAeTitle: a.aeTitle, callingAeTitle: callingAe, tls });
        const withCertificate = (issued: { keyFile: string; certFile: string }): ClientTls => ({ keyFile: issued.keyFile, certFile: issued.certFile, trustFiles });

        /** Runs `attempt` and returns the gateway events it caused (waiting briefly: the server may see the close late). */
        async function eventsOf(attempt: () => Promise<unknown>, expected = 1): Promise<TerminatorEvent[]> {
            const before = gateway.events.length;
            await attempt();
            for (let waited = 0; gateway.events.length < before + expected && waited < 2_000; waited += 50) {
                await sleep(50);
            }
            return gateway.events.slice(before);
        }

        // Every configured modality, with its own certificate and AE title, gets through to Orthanc.
        for (const [name, modality] of Object.entries(local.modalities)) {
            let result: Awaited<ReturnType<typeof echo>> | undefined;
            const events = await eventsOf(async () => (result = await echo(through(modality.aeTitle, withCertificate(modality)))));
            assert.ok(result?.ok, `modality ${name} refused by the gateway:\n${result?.output}\nevents: ${JSON.stringify(events)}`);
            assert.deepStrictEqual(events, [{ outcome: "accepted", fingerprint: modality.fingerprint }]);
        }
        const listed = local.modalities["test-modality"];
        const [instance] = await generateInstances(dataDir, 1, smallPixelBytes, "through-gateway");
        const stored = await store(through(listed.aeTitle, withCertificate(listed)), [instance]);
        assert.strictEqual(stored.acknowledged.length, 1, `C-STORE through the gateway failed:\n${stored.output}`);
        assert.ok(await knows(b, instance.sopInstanceUid), "stored through the gateway in front of a, not found through b");

        // Certificates the tenant CA signed but the configuration no longer lists: a removed modality, and the
        // previous certificate of a modality whose certificate was replaced (certificateGeneration bumped).
        const certificates = perTest.tempDir("gateway-certificates");
        const removed = await issueModalityCertificate(certificates, local.config.pki, bhs.ca, "removed", { name: "removed-modality", aeTitle: "REMOVED" });
        const replaced = await issueModalityCertificate(certificates, local.config.pki, bhs.ca, "replaced", { name: "test-modality", aeTitle: listed.aeTitle });
        const notListed: [string, string, { keyFile: string; certFile: string }][] = [
            ["a removed modality", "REMOVED", removed],
            ["a replaced certificate of a listed modality", listed.aeTitle, replaced],
        ];
        for (const [what, callingAe, issued] of notListed) {
            const fingerprint = certificateFingerprint(readFileSync(issued.certFile, "utf8"));
            assert.ok(!fingerprints.includes(fingerprint));
            let result: Awaited<ReturnType<typeof echo>> | undefined;
            const [instanceRefused] = await generateInstances(dataDir, 1, smallPixelBytes, `refused-${issued === removed ? "removed" : "replaced"}`);
            const events = await eventsOf(async () => {
                result = await echo(through(callingAe, withCertificate(issued)));
                const storedRefused = await store(through(callingAe, withCertificate(issued)), [instanceRefused]);
                assert.strictEqual(storedRefused.acknowledged.length, 0, `${what}: C-STORE acknowledged:\n${storedRefused.output}`);
            }, 2);
            assert.ok(!result?.ok, `${what} was accepted:\n${result?.output}`);
            assert.deepStrictEqual(events, [
                { outcome: "refused", reason: "fingerprint not allowed", fingerprint },
                { outcome: "refused", reason: "fingerprint not allowed", fingerprint },
            ], what);
            assert.ok(!(await knows(a, instanceRefused.sopInstanceUid)), `${what}: the instance reached Orthanc`);
        }

        // Refused in the handshake: not from the tenant CA, or no certificate at all.
        const handshakeRefusals: [string, ClientTls | undefined, RegExp][] = [
            // Its issuer (mhr's CA) is not the trust anchor, and the root is not trusted at all.
            ["another tenant's modality (mhr)", withCertificate(local.pki.tenants.mhr.client), /^UNABLE_TO_VERIFY_LEAF_SIGNATURE$/],
            ["a self-signed client certificate", withCertificate(local.pki.selfSignedClient), /^DEPTH_ZERO_SELF_SIGNED_CERT$/],
            ["TLS without a client certificate", { anonymous: true, trustFiles }, /peer did not return a certificate/],
            ["plain DICOM", undefined, /wrong version number/],
        ];
        for (const [what, tls, reason] of handshakeRefusals) {
            let result: Awaited<ReturnType<typeof echo>> | undefined;
            const events = await eventsOf(async () => (result = await echo(through(callingAeTitle, tls))));
            assert.ok(!result?.ok, `${what} was accepted:\n${result?.output}`);
            assert.strictEqual(events.length, 1, `${what}: ${JSON.stringify(events)}`);
            const [event] = events;
            assert.ok(event.outcome === "refused" && event.reason === "handshake" && reason.test(event.error), `${what}: ${JSON.stringify(event)}`);
        }
        // The gateway still lets the listed modality through.
        assert.ok((await echo(through(listed.aeTitle, withCertificate(listed)))).ok);
    });

    it("the web gateway serves DICOMweb as web.<tenant> with the tenant's certificate; the outputs lead a modality through the DICOM gateway", async function () {
        const rootCa = readFileSync(local.pki.root.certFile, "utf8");
        const web = (credentials: Credentials | null, host = local.names.webHost): WebTarget => ({
            port: local.webGateway.port,
            credentials,
            tls: { ca: rootCa, host },
        });
        const [instance] = await generateInstances(dataDir, 1, smallPixelBytes, "through-web-gateway");
        const stored = await stow(web(admin), dicomWebRoot, [readFileSync(instance.file)]);
        assert.strictEqual(stored.status, 200, `STOW-RS through the web gateway: HTTP ${stored.status} ${stored.body.toString()}`);
        assert.ok(await knows(b, instance.sopInstanceUid));
        const query = await webRequest(web(admin), `${dicomWebRoot}studies?StudyInstanceUID=${instance.studyInstanceUid}`, {
            headers: { Accept: "application/dicom+json" },
        });
        assert.strictEqual(query.status, 200);
        const [study] = JSON.parse(query.body.toString()) as Record<string, { Value?: unknown[] }>[];
        assert.strictEqual(firstValue(study, "0020000D"), instance.studyInstanceUid);
        // DicomWeb.Ssl: the links in the answers point at the gateway's https URL, not at Orthanc's plain HTTP.
        assert.strictEqual(firstValue(study, "00081190"), `https://${local.names.webHost}${dicomWebRoot}studies/${instance.studyInstanceUid}`);
        assert.strictEqual((await webRequest(web(null), `${dicomWebRoot}studies`)).status, 401);
        // The certificate names the tenant's own hosts only.
        await assert.rejects(webRequest(web(admin, `web.mhr.${local.config.domain}`), `${dicomWebRoot}studies`), /altnames|hostname/i);

        // The outputs are what a deployment would export, and enough to reach the tenant through its gateway.
        const outputs = JSON.parse(readFileSync(local.env.KORTHWEB_STACK_OUTPUTS, "utf8")) as typeof local.outputs;
        assert.deepStrictEqual(outputs, local.outputs);
        assert.deepStrictEqual(JSON.parse(local.env.KORTHWEB_SMOKE_TARGETS), {
            [local.tenant.name]: { web: `127.0.0.1:${local.webGateway.port}`, dicom: `127.0.0.1:${local.dicomGateway.port}` },
        });
        const endpoints = outputs.tenantEndpoints[local.tenant.name];
        assert.deepStrictEqual(
            { webUrl: endpoints.webUrl, dicomHost: endpoints.dicomHost, dicomPort: endpoints.dicomPort, adminUser: endpoints.adminUser },
            { webUrl: `https://${local.names.webHost}`, dicomHost: local.names.dicomHost, dicomPort: 11112, adminUser: admin.user },
        );
        assert.deepStrictEqual(
            Object.values(endpoints.modalities).map((modality) => modality.fingerprint).sort(),
            local.dicomGateway.settings.verifyCertificateHash,
        );
        const credentialsDir = perTest.tempDir("outputs");
        for (const [name, issued] of Object.entries(outputs.modalityCertificates[local.tenant.name])) {
            const files = { keyFile: join(credentialsDir, `${name}.key`), certFile: join(credentialsDir, `${name}.crt`), caFile: join(credentialsDir, `${name}-ca.crt`) };
            writeFileSync(files.keyFile, issued.privateKey, { mode: 0o600 });
            writeFileSync(files.certFile, issued.certificate);
            writeFileSync(files.caFile, issued.serverCa);
            assert.strictEqual(certificateFingerprint(issued.certificate), endpoints.modalities[name].fingerprint);
            const result = await echo({
                port: local.dicomGateway.port,
                calledAeTitle: issued.calledAeTitle,
                callingAeTitle: issued.aeTitle,
                tls: { keyFile: files.keyFile, certFile: files.certFile, trustFiles: [files.caFile] },
            });
            assert.ok(result.ok, `modality ${name} from the outputs refused:\n${result.output}`);
        }
        // A WADO-RS answer through the gateway is byte-identical too.
        const retrieved = await webRequest(web(admin), `${dicomWebRoot}studies/${instance.studyInstanceUid}/series/${instance.seriesInstanceUid}/instances/${instance.sopInstanceUid}`, {
            headers: { Accept: wadoAccept },
        });
        assert.strictEqual(retrieved.status, 200);
        const [part] = parseMultipart(retrieved.headers["content-type"], retrieved.body);
        assertSamePart10(part.content, readFileSync(instance.file), `${instance.file} stored and retrieved through the web gateway`);
    });
});
