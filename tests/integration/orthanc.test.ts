/**
 * The rendered Orthanc configuration on a real stack on this machine: the image's Orthanc 1.13.0 with the PostgreSQL
 * plugins 10.3 and DICOMweb 1.24 (chrooted in the sid root scripts/install-orthanc-root builds), with the environment
 * of the rendered pod, and the host's PostgreSQL and DCMTK.
 *
 * Two replicas share one throwaway PostgreSQL, as two pods share the tenant's database. The tests run in order and
 * build on each other's data (what test 2 stores, test 5 must still find), but each starts what it needs to be
 * meaningful on its own.
 */
import assert from "assert";
import { readdirSync, readFileSync, statSync, writeFileSync } from "fs";
import { join } from "path";
import { OrthancConfig } from "../../components/tenant/orthancConfig";
import { echo, store, StoreResult, storeRate } from "./support/dcmtk";
import { assertSamePart10, generateInstances, TestInstance } from "./support/dicom";
import { changedKeys, describeVersions, podEnvironment, Replica, instanceIdOf } from "./support/orthanc";
import { buildTestPki, issueModalityCertificate, opensslVerify, TestPki } from "./support/pki";
import { certificateRequestProblems } from "../../components/pki/certificateRequest";
import { assertPrerequisites, laptopPluginFiles } from "./support/prerequisites";
import { Resources, waitForLog } from "./support/processes";
import { dcmtkDisablesNagle } from "../upstream/dcmtk";
import { startTenantStack, TenantStack, testDomain, testStackConfig } from "./support/stack";

/** Pixel data per test instance: "a few KB" keeps the suite fast while every C-STORE still spans several PDUs. */
const smallPixelBytes = 4 * 1024;

/**
 * The keys adaptForLaptop may change or add; test 1 fails if it changes anything else. Two are added: `Plugins` (the
 * rendered configuration leaves plugins to the image's start-up, which picks them by environment variables) and
 * `DatabaseServerIdentifier` (each pod sets it by variable, which the image's start-up writes into the configuration).
 */
const laptopKeys = [
    "DatabaseServerIdentifier",
    "DicomPort",
    "HttpPort",
    "IndexDirectory",
    "LuaScripts",
    "Plugins",
    "PostgreSQL.Host",
    "PostgreSQL.Port",
    "StorageDirectory",
];

describe("Orthanc with the rendered tenant configuration (real Orthanc, PostgreSQL, DCMTK)", function () {
    const suite = new Resources();
    let perTest = new Resources();
    let stack: TenantStack;
    let replicas: Replica[] = [];
    let dataDir: string;
    /** Every instance a replica acknowledged (or that was re-sent and acknowledged): what must never be lost. */
    const acknowledged: TestInstance[] = [];
    /** Per-replica totals for the summary. */
    const totals = new Map<string, { instances: number; seconds: number }>();

    /** Sends `instances` to `replica` in one association, records and logs what was acknowledged and the rate. */
    async function storeTo(replica: Replica, instances: TestInstance[], onAcknowledged?: (count: number) => void): Promise<StoreResult> {
        const result = await store({ port: replica.dicomPort, calledAeTitle: replica.aeTitle }, instances, onAcknowledged);
        acknowledged.push(...result.acknowledged);
        const total = totals.get(replica.name) ?? { instances: 0, seconds: 0 };
        totals.set(replica.name, { instances: total.instances + result.acknowledged.length, seconds: total.seconds + result.seconds });
        const rate = storeRate(result);
        console.log(
            `      replica ${replica.name}: ${result.acknowledged.length}/${instances.length} instances acknowledged in ` +
                `${result.seconds.toFixed(2)} s (${rate.instancesPerSecond.toFixed(0)} instances/s, ${rate.mebibytesPerSecond.toFixed(2)} MiB/s)`,
        );
        return result;
    }

    async function storeAll(replica: Replica, instances: TestInstance[]): Promise<void> {
        const result = await storeTo(replica, instances);
        assert.strictEqual(result.unacknowledged.length, 0, `storescu to replica ${replica.name} failed:\n${result.output}`);
    }

    /** Orthanc's ID of the instance with this SOP Instance UID, as `replica` resolves it. */
    /** Every SOP Instance UID `replica` can list. */
    async function sopInstanceUids(replica: Replica): Promise<Set<string>> {
        const found = await replica.postJson<{ MainDicomTags: { SOPInstanceUID: string } }[]>("/tools/find", {
            Level: "Instance",
            Query: {},
            Expand: true,
        });
        return new Set(found.map((instance) => instance.MainDicomTags.SOPInstanceUID));
    }

    async function statistics(replica: Replica): Promise<{ CountStudies: number; CountInstances: number }> {
        return replica.getJson("/statistics");
    }

    /**
     * Downloads `instance` through `replica` and checks it is the file that was sent: the preamble and the data set
     * byte for byte, and every file meta element except the ones naming the implementation that wrote the file
     * (assertSamePart10 says why).
     */
    async function assertByteIdentical(replica: Replica, instance: TestInstance): Promise<void> {
        const downloaded = await replica.getBytes(`/instances/${await instanceIdOf(replica, instance.sopInstanceUid)}/file`);
        assertSamePart10(downloaded, readFileSync(instance.file), `${instance.file} downloaded through replica ${replica.name}`);
    }

    let pkiBuilt: Promise<TestPki> | undefined;
    /** The certificate hierarchy of both tenants, built once (RSA 4096 CA keys take seconds) by the first test needing it. */
    function testPki(): Promise<TestPki> {
        if (!pkiBuilt) {
            const config = testStackConfig();
            pkiBuilt = buildTestPki(suite.tempDir("pki"), config.pki, testDomain, config.tenants);
        }
        return pkiBuilt;
    }

    /** Files under a directory, recursively (none when it does not exist). */
    function filesUnder(dir: string): string[] {
        let entries: string[];
        try {
            entries = readdirSync(dir);
        } catch {
            return [];
        }
        return entries.flatMap((entry) => {
            const path = join(dir, entry);
            return statSync(path).isDirectory() ? filesUnder(path) : [path];
        });
    }

    before(async function () {
        // Never skip: a suite that skips when Orthanc is missing passes CI while proving nothing.
        assertPrerequisites();
        stack = await startTenantStack(suite);
        replicas = await Promise.all([stack.startReplica(suite, "a"), stack.startReplica(suite, "b")]);
        console.log(`      running on ${await describeVersions(replicas[0])}`);
        dataDir = suite.tempDir("data");
    });

    afterEach(async function () {
        if (this.currentTest?.state === "failed") {
            for (const replica of replicas) {
                console.log(`--- log of replica ${replica.name}:\n${replica.child.logTail(40)}`);
            }
        }
        const resources = perTest;
        perTest = new Resources();
        await resources.release();
    });

    after(async function () {
        for (const [name, total] of totals) {
            console.log(
                `      total through replica ${name}: ${total.instances} instances, ` +
                    `${(total.instances / total.seconds).toFixed(0)} instances/s over ${total.seconds.toFixed(2)} s of C-STORE`,
            );
        }
        await perTest.release();
        await suite.release();
    });

    it("both replicas start with the PostgreSQL index and storage plugins active", async function () {
        // The suite departs from the rendered configuration only where a laptop must.
        for (const replica of replicas) {
            assert.deepStrictEqual(changedKeys(stack.config, replica.config), laptopKeys);
            assert.deepStrictEqual(replica.config.Plugins, laptopPluginFiles());
        }
        assert.notStrictEqual(replicas[0].config.DatabaseServerIdentifier, replicas[1].config.DatabaseServerIdentifier);
        for (const replica of replicas) {
            // The identifier the image's start-up would write from the pod's variable (the pod name).
            const pod = podEnvironment(stack.tenant, `orthanc-${replica.name}`);
            assert.strictEqual(replica.config.DatabaseServerIdentifier, pod.ORTHANC__DATABASE_SERVER_IDENTIFIER);
        }

        // The chart's role: a login role that owns its database, not a superuser and unable to create roles.
        const [superuser, createrole, replication] = (
            await stack.postgres.asOrthancRole("SELECT rolsuper, rolcreaterole, rolreplication FROM pg_roles WHERE rolname = current_user")
        ).split("|");
        assert.deepStrictEqual({ superuser, createrole, replication }, { superuser: "f", createrole: "f", replication: "f" });
        assert.strictEqual(
            await stack.postgres.asOrthancRole("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"),
            stack.postgres.user,
        );

        for (const replica of replicas) {
            const plugins = await replica.getJson<string[]>("/plugins");
            assert.ok(plugins.includes("postgresql-index") && plugins.includes("postgresql-storage"), `replica ${replica.name}: ${plugins}`);
            const system = await replica.getJson<Record<string, unknown>>("/system");
            assert.match(String(system.DatabaseBackendPlugin), /PostgreSQLIndex/, `replica ${replica.name}: ${JSON.stringify(system)}`);
            assert.match(String(system.StorageAreaPlugin), /PostgreSQLStorage/, `replica ${replica.name}: ${JSON.stringify(system)}`);
            assert.strictEqual(system.Name, stack.tenant.displayName);
        }

        // Each replica opens the index connections the configuration asks for (what Pgpool is sized for), and no
        // more: the connection budget of the tenant's chart values rests on this number.
        const perReplica = (stack.config.PostgreSQL as { IndexConnectionsCount: number }).IndexConnectionsCount;
        const connections = Number(
            await stack.postgres.asSuperuser(`SELECT count(*) FROM pg_stat_activity WHERE usename = '${stack.postgres.user}'`),
        );
        console.log(`      ${connections} connections from 2 replicas with IndexConnectionsCount ${perReplica}`);
        assert.ok(connections >= 2 * perReplica, `${connections} connections for 2 x ${perReplica} index connections`);
        assert.ok(connections <= 2 * (perReplica + 2), `${connections} connections: more than the index and storage need`);

        // Instances go to PostgreSQL: rows appear in the plugin's storage table, and no replica writes files.
        const countStored = async () => Number(await stack.postgres.asOrthancRole("SELECT count(*) FROM storagearea"));
        const before = await countStored();
        const instances = await generateInstances(dataDir, 3, smallPixelBytes, "plugins");
        await storeAll(replicas[0], instances);
        assert.strictEqual(await countStored(), before + instances.length);
        for (const replica of replicas) {
            assert.deepStrictEqual(filesUnder(replica.workDirectory).filter((file) => !/orthanc\.(json|log)$/.test(file)), []);
        }
    });

    it("C-ECHO and C-STORE succeed on each replica; an instance is served by the other replica; bad credentials get 401", async function () {
        const [a, b] = replicas;
        for (const replica of replicas) {
            const result = await echo({ port: replica.dicomPort, calledAeTitle: replica.aeTitle });
            assert.ok(result.ok, `C-ECHO to replica ${replica.name} failed:\n${result.output}`);
        }
        const throughA = await generateInstances(dataDir, 50, smallPixelBytes, "through-a");
        const throughB = await generateInstances(dataDir, 50, smallPixelBytes, "through-b");
        await storeAll(a, throughA);
        await storeAll(b, throughB);

        // Stored through one replica, found and downloaded unchanged through the other: all state is in the database.
        await assertByteIdentical(b, throughA[0]);
        await assertByteIdentical(a, throughB[0]);

        const id = await instanceIdOf(b, throughA[0].sopInstanceUid);
        const wrongPassword = { user: stack.admin.user, password: `${stack.admin.password}x` };
        const wrongUser = { user: "orthanc", password: stack.admin.password };
        for (const replica of replicas) {
            for (const path of ["/system", `/instances/${id}/file`]) {
                for (const credentials of [wrongPassword, wrongUser, null]) {
                    const response = await replica.request(path, { credentials });
                    await response.arrayBuffer();
                    assert.strictEqual(response.status, 401, `${path} on replica ${replica.name} with ${credentials ? `user ${credentials.user}` : "no credentials"}`);
                }
            }
        }
    });

    it("Orthanc's DICOM server turns Nagle's algorithm off on an association, because the rendered pod sets TCP_NODELAY", async function () {
        // What the pod sets, read from the rendered Deployment: the suite passes exactly that to Orthanc's process.
        const podValue = podEnvironment(stack.tenant, "orthanc-a").TCP_NODELAY;
        assert.ok(dcmtkDisablesNagle(podValue), `the rendered pod's TCP_NODELAY=${podValue} leaves Nagle's algorithm on in DCMTK`);
        // And the server really does: DCMTK logs its decision per accepted association at debug level (the "dicom"
        // log category at "trace" in Orthanc), naming the variable's value it read.
        const replica = replicas.find((candidate) => candidate.child.running)!;
        const setLevel = (level: string) => replica.request("/tools/log-level-dicom", { method: "PUT", body: level }).then(async (response) => {
            assert.strictEqual(response.status, 200, `log-level-dicom ${level}: ${await response.text()}`);
        });
        await setLevel("trace");
        try {
            const logLength = replica.child.readLog().length;
            const result = await echo({ port: replica.dicomPort, calledAeTitle: replica.aeTitle });
            assert.ok(result.ok, result.output);
            await waitForLog(replica.child, logLength, /disabling Nagle algorithm as requested at runtime \(TCP_NODELAY=1\)/);
        } finally {
            await setLevel("default");
        }
    });

    it("certificates made from the shared profiles are accepted by OpenSSL in the role they were issued for, and only in it", async function () {
        const pki = await testPki();
        const bhs = pki.tenants.bhs;
        const mhr = pki.tenants.mhr;
        const expectations: [string, string, Parameters<typeof opensslVerify>[1], boolean][] = [
            ["server leaf as a server, root-anchored", bhs.server.certFile, { purpose: "sslserver", trustedFile: pki.root.certFile, untrustedFile: bhs.ca.certFile }, true],
            ["server leaf as a client", bhs.server.certFile, { purpose: "sslclient", trustedFile: pki.root.certFile, untrustedFile: bhs.ca.certFile }, false],
            ["client leaf as a client, root-anchored", bhs.client.certFile, { purpose: "sslclient", trustedFile: pki.root.certFile, untrustedFile: bhs.ca.certFile }, true],
            ["client leaf as a server", bhs.client.certFile, { purpose: "sslserver", trustedFile: pki.root.certFile, untrustedFile: bhs.ca.certFile }, false],
            ["client leaf against its tenant's trust anchor alone", bhs.client.certFile, { purpose: "sslclient", trustedFile: bhs.trustAnchor.certFile }, true],
            ["server leaf against its tenant's trust anchor alone", bhs.server.certFile, { purpose: "sslserver", trustedFile: bhs.trustAnchor.certFile }, true],
            ["client leaf against another tenant's trust anchor", mhr.client.certFile, { purpose: "sslclient", trustedFile: bhs.trustAnchor.certFile }, false],
            ["client leaf against the intermediate alone (no partial chains)", bhs.client.certFile, { purpose: "sslclient", trustedFile: bhs.ca.certFile }, false],
            ["self-signed client", pki.selfSignedClient.certFile, { purpose: "sslclient", trustedFile: bhs.trustAnchor.certFile }, false],
        ];
        for (const [what, certFile, options, accepted] of expectations) {
            const result = await opensslVerify(certFile, options);
            assert.strictEqual(result.ok, accepted, `${what}: expected ${accepted ? "accepted" : "refused"}, openssl said:\n${result.output}`);
        }
    });

    it("Orthanc's own DICOM TLS with those certificates admits the tenant's modalities only", async function () {
        const pki = await testPki();
        const bhs = pki.tenants.bhs;
        // TEST-ONLY: production Orthanc speaks plain DICOM inside the mesh; the tenant's Istio gateway terminates TLS
        // with the same server chain and the same trust anchor. Orthanc's DICOM TLS is added here so the chain and
        // the anchor are proven against a real DCMTK/OpenSSL peer; it is not part of orthancConfig().
        const withDicomTls = (config: OrthancConfig): OrthancConfig => ({
            ...config,
            DicomTlsEnabled: true,
            DicomTlsCertificate: bhs.serverChainFile,
            DicomTlsPrivateKey: bhs.server.keyFile,
            DicomTlsTrustedCertificates: bhs.trustAnchor.certFile,
            DicomTlsRemoteCertificateRequired: true,
        });
        const server = await stack.startReplica(perTest, "tls", withDicomTls);
        const target = (tls?: Parameters<typeof echo>[0]["tls"]) => ({ port: server.dicomPort, calledAeTitle: server.aeTitle, tls });
        // Modalities trust their tenant's anchor only (what `scripts/run modality-cert` writes as server-ca.crt).
        const trustFiles = [bhs.trustAnchor.certFile];
        const client = (issued: { keyFile: string; certFile: string }) => ({ keyFile: issued.keyFile, certFile: issued.certFile, trustFiles });

        const accepted = await echo(target(client(bhs.client)));
        assert.ok(accepted.ok, `bhs modality refused:\n${accepted.output}\n--- server:\n${server.child.logTail()}`);
        const instances = await generateInstances(dataDir, 1, smallPixelBytes, "tls");
        const stored = await store(target(client(bhs.client)), instances);
        assert.strictEqual(stored.acknowledged.length, 1, `C-STORE over TLS failed:\n${stored.output}`);
        acknowledged.push(...stored.acknowledged);

        // Each refusal must come from the server's TLS layer, for the reason expected (as Orthanc logs it).
        const refused: [string, Parameters<typeof echo>[0]["tls"], RegExp][] = [
            ["another tenant's modality (mhr)", client(pki.tenants.mhr.client), /TLS error: certificate verify failed/],
            ["a self-signed client certificate", client(pki.selfSignedClient), /TLS error: certificate verify failed/],
            ["TLS without a client certificate", { anonymous: true, trustFiles }, /TLS error: peer did not return a certificate/],
            ["plain DICOM", undefined, /TLS error: wrong version number/],
        ];
        for (const [what, tls, serverReason] of refused) {
            const logLength = server.child.readLog().length;
            const result = await echo(target(tls));
            assert.ok(!result.ok, `${what} was accepted:\n${result.output}`);
            await waitForLog(server.child, logLength, serverReason);
        }
        // Refused at the TLS layer, not by a crash: the server still serves its tenant.
        assert.ok((await echo(target(client(bhs.client)))).ok);
    });

    it("a modality given its tenant's anchor (server-ca.crt) refuses another tenant's DICOM server and reaches its own; the root would not refuse it", async function () {
        const pki = await testPki();
        const { bhs, mhr } = pki.tenants;
        // TEST-ONLY: both servers admit both tenants' client certificates, so that any refusal below is the modality's
        // own verification of the server certificate (in production each port admits its tenant's fingerprints only).
        const bothAnchors = join(suite.tempDir("anchors"), "both-anchors.crt");
        writeFileSync(bothAnchors, readFileSync(bhs.trustAnchor.certFile, "utf8") + readFileSync(mhr.trustAnchor.certFile, "utf8"));
        const serving = (tenant: typeof bhs) => (config: OrthancConfig): OrthancConfig => ({
            ...config,
            DicomTlsEnabled: true,
            DicomTlsCertificate: tenant.serverChainFile,
            DicomTlsPrivateKey: tenant.server.keyFile,
            DicomTlsTrustedCertificates: bothAnchors,
            DicomTlsRemoteCertificateRequired: true,
        });
        const [bhsServer, mhrServer] = await Promise.all([
            stack.startReplica(perTest, "tls-bhs", serving(bhs)),
            stack.startReplica(perTest, "tls-mhr", serving(mhr)),
        ]);
        const mhrModality = (trustFile: string) => ({ keyFile: mhr.client.keyFile, certFile: mhr.client.certFile, trustFiles: [trustFile] });
        const to = (server: Replica, trustFile: string) => echo({ port: server.dicomPort, calledAeTitle: server.aeTitle, tls: mhrModality(trustFile) });

        const own = await to(mhrServer, mhr.trustAnchor.certFile);
        assert.ok(own.ok, `mhr's modality with mhr's anchor could not reach mhr's server:\n${own.output}\n--- server:\n${mhrServer.child.logTail()}`);
        const other = await to(bhsServer, mhr.trustAnchor.certFile);
        assert.ok(!other.ok, `mhr's modality with mhr's anchor accepted bhs's server certificate:\n${other.output}`);
        // DCMTK's client reports OpenSSL's verdict on the server's chain: the issuer is unknown to its anchor.
        assert.match(other.output, /certificate verify failed|unable to get local issuer certificate/i, other.output);
        // The root, which modalities were given before, chains every tenant's server certificate: it must not be the anchor.
        const rooted = await to(bhsServer, pki.root.certFile);
        assert.ok(rooted.ok, `a root-anchored modality should reach any tenant's server (the reason it is not the anchor):\n${rooted.output}`);
    });

    it("a modality that brings its own OpenSSL request: the program's check accepts it, and the certificate signed from it is admitted", async function () {
        const pki = await testPki();
        const { bhs } = pki.tenants;
        const config = testStackConfig();
        const modality = { name: "own-key", aeTitle: "OWNKEY" };
        // The modality's side: its key and request, made with OpenSSL (`issue` leaves <name>.csr beside the key); the
        // CA's signature stands for @pulumi/tls' LocallySignedCert with the client profile, which copies the subject.
        const dir = perTest.tempDir("own-key");
        const issued = await issueModalityCertificate(dir, config.pki, bhs.ca, modality.name, modality);
        const request = readFileSync(join(dir, `${modality.name}.csr`), "utf8");
        assert.deepEqual(certificateRequestProblems(request, { aeTitle: modality.aeTitle, modalityName: modality.name, organization: config.pki.organization }), []);
        assert.notDeepEqual(certificateRequestProblems(request, { aeTitle: "OTHER", modalityName: modality.name, organization: config.pki.organization }), []);

        const server = await stack.startReplica(perTest, "tls-own-key", (orthanc: OrthancConfig): OrthancConfig => ({
            ...orthanc,
            DicomTlsEnabled: true,
            DicomTlsCertificate: bhs.serverChainFile,
            DicomTlsPrivateKey: bhs.server.keyFile,
            DicomTlsTrustedCertificates: bhs.trustAnchor.certFile,
            DicomTlsRemoteCertificateRequired: true,
        }));
        const result = await echo({
            port: server.dicomPort,
            calledAeTitle: server.aeTitle,
            tls: { keyFile: issued.keyFile, certFile: issued.certFile, trustFiles: [bhs.trustAnchor.certFile] },
        });
        assert.ok(result.ok, `the modality's own key was refused:\n${result.output}\n--- server:\n${server.child.logTail()}`);
    });

    it("killing one replica in the middle of a batch of C-STOREs loses nothing acknowledged", async function () {
        const [victim, survivor] = replicas;
        const batch = await generateInstances(dataDir, 200, smallPixelBytes, "batch");
        const killAfter = 40;
        let killed: Promise<unknown> | undefined;
        const interrupted = await storeTo(victim, batch, (count) => {
            if (count === killAfter) {
                killed = victim.child.kill();
            }
        });
        await killed;
        assert.ok(!victim.child.running, "the victim replica should be dead");
        assert.ok(
            interrupted.acknowledged.length >= killAfter && interrupted.unacknowledged.length > 0,
            `the kill should land in the middle of the batch (acknowledged ${interrupted.acknowledged.length} of ${batch.length})`,
        );

        // The other replica keeps accepting while its peer is gone...
        const meanwhile = await generateInstances(dataDir, 20, smallPixelBytes, "meanwhile");
        await storeAll(survivor, meanwhile);
        // ...and takes what the modality must re-send: everything without a Success response.
        await storeAll(survivor, interrupted.unacknowledged);

        const present = await sopInstanceUids(survivor);
        const missing = [...batch, ...meanwhile].filter((instance) => !present.has(instance.sopInstanceUid));
        assert.deepStrictEqual(missing.map((instance) => instance.file), []);
        const lost = acknowledged.filter((instance) => !present.has(instance.sopInstanceUid));
        assert.deepStrictEqual(lost.map((instance) => instance.file), [], "acknowledged instances lost");
        assert.strictEqual((await statistics(survivor)).CountInstances, present.size);
        await assertByteIdentical(survivor, interrupted.acknowledged[interrupted.acknowledged.length - 1]);

        // A replacement pod comes up on the same database and sees the same instances.
        const replacement = await stack.startReplica(suite, "a-replacement");
        replicas = [replacement, survivor];
        assert.strictEqual((await sopInstanceUids(replacement)).size, present.size);
    });

    it("stopping and restarting both replicas keeps every study (all state in PostgreSQL)", async function () {
        const observer = replicas.find((replica) => replica.child.running);
        assert.ok(observer, "no replica running");
        // Something of this test's own, so it proves something even when run alone (mocha --grep).
        await storeAll(observer, await generateInstances(dataDir, 10, smallPixelBytes, "before-restart"));
        const before = await statistics(observer);
        const uidsBefore = await sopInstanceUids(observer);
        assert.ok(before.CountInstances >= acknowledged.length && before.CountStudies > 0);

        // SIGTERM, as Kubernetes stops a pod; both at once, as in a rollout of the whole Deployment.
        const exits = await Promise.all(replicas.map((replica) => replica.child.stop()));
        assert.ok(replicas.every((replica) => !replica.child.running), `replicas did not stop: ${JSON.stringify(exits)}`);
        // New processes with new, empty work directories: whatever they serve came from PostgreSQL.
        const oldWorkDirectories = replicas.map((replica) => replica.workDirectory);
        replicas = await Promise.all([stack.startReplica(suite, "a-restarted"), stack.startReplica(suite, "b-restarted")]);
        for (const replica of replicas) {
            assert.ok(!oldWorkDirectories.includes(replica.workDirectory));
            const after = await statistics(replica);
            assert.deepStrictEqual(
                { studies: after.CountStudies, instances: after.CountInstances },
                { studies: before.CountStudies, instances: before.CountInstances },
                `replica ${replica.name}`,
            );
            const uidsAfter = await sopInstanceUids(replica);
            assert.deepStrictEqual([...uidsAfter].sort(), [...uidsBefore].sort());
            const lost = acknowledged.filter((instance) => !uidsAfter.has(instance.sopInstanceUid));
            assert.deepStrictEqual(lost.map((instance) => instance.file), [], `acknowledged instances lost on replica ${replica.name}`);
            await assertByteIdentical(replica, acknowledged[0]);
            await assertByteIdentical(replica, acknowledged[acknowledged.length - 1]);
        }
        console.log(`      after restart: ${before.CountStudies} studies, ${before.CountInstances} instances on both replicas`);
    });
});
