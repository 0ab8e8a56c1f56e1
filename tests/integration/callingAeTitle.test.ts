/**
 * What ties a modality's certificate to its modality entry, on the suite's tenant behind its gateway stand-in (real
 * Orthanc, real DCMTK, the gateway's mutual TLS with the rendered fingerprint allow-list).
 *
 * The gateway terminates TLS and hands Orthanc a plain TCP stream: the client certificate ends there. Orthanc then
 * knows the caller only by the calling AE title of the A-ASSOCIATE request, which it checks against DicomModalities
 * (its host check cannot help: every association comes from the gateway). So what holds is: a certificate of one of
 * the tenant's listed modalities admits the caller to the DICOM port, and the caller may then use any listed
 * modality's AE title, with that modality's permissions (e.g. its C-MOVE destination), and Orthanc records that AE
 * title as the sender.
 */
import assert from "assert";
import { callingAeTitle, DicomTarget, echo, store } from "./support/dcmtk";
import { generateInstances } from "./support/dicom";
import { LocalTenant, startLocalTenantBehindGateway } from "./support/gatewayTerminator";
import { assertPrerequisites } from "./support/prerequisites";
import { Resources } from "./support/processes";
import { testStackConfig } from "./support/stack";

/** A second listed modality, whose AE title the first one's certificate will claim. */
const otherModality = { name: "ct-room-2", aeTitle: "CTROOM2" };

describe("calling AE titles behind the DICOM gateway (real Orthanc, DCMTK, the gateway's mutual TLS)", function () {
    const resources = new Resources();
    let local: LocalTenant;

    before(async function () {
        assertPrerequisites();
        local = await startLocalTenantBehindGateway(resources, { stackConfig: testStackConfig([otherModality]) });
    });
    after(() => resources.release());

    const through = (callingAe: string, modality: string): DicomTarget => {
        const issued = local.modalities[modality];
        return {
            port: local.dicomGateway.port,
            calledAeTitle: local.replicas[0].aeTitle,
            callingAeTitle: callingAe,
            tls: { keyFile: issued.keyFile, certFile: issued.certFile, trustFiles: [local.pki.root.certFile] },
        };
    };

    it("admits one listed modality's certificate under another listed modality's AE title, and Orthanc records that AE title", async () => {
        assert.notEqual(local.modalities["test-modality"].fingerprint, local.modalities[otherModality.name].fingerprint);
        // test-modality's certificate, CTROOM2's AE title.
        const impostor = through(otherModality.aeTitle, "test-modality");
        const echoed = await echo(impostor);
        assert.ok(echoed.ok, echoed.output);
        const [instance] = await generateInstances(resources.tempDir("calling-ae"), 1, 4 * 1024, "calling-ae");
        const stored = await store(impostor, [instance]);
        assert.equal(stored.acknowledged.length, 1, stored.output);
        const lookup = await local.replicas[0].request("/tools/lookup", { method: "POST", body: instance.sopInstanceUid });
        const [found] = (await lookup.json()) as { ID: string; Type: string }[];
        assert.equal(found.Type, "Instance");
        const remoteAet = await local.replicas[0].request(`/instances/${found.ID}/metadata/RemoteAET`);
        assert.equal((await remoteAet.text()).trim(), otherModality.aeTitle, "Orthanc believes the AE title the caller claimed");
    });

    it("still refuses storage from an AE title no modality entry lists, whatever certificate admitted the caller", async () => {
        const [instance] = await generateInstances(resources.tempDir("calling-ae-unlisted"), 1, 4 * 1024, "calling-ae-unlisted");
        const refused = await store(through("NOT-LISTED", "test-modality"), [instance]);
        assert.equal(refused.acknowledged.length, 0, refused.output);
        // The same certificate under its own modality's AE title stores.
        const stored = await store(through(callingAeTitle, "test-modality"), [instance]);
        assert.equal(stored.acknowledged.length, 1, stored.output);
    });
});
