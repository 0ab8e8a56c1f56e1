/**
 * Patient attributes in logs (issue 18, item 5), on the real stack: a replica with the rendered configuration and its
 * PostgreSQL. A site searches by patient name and birth date (QIDO-RS, C-FIND, the REST API), stores, reads and
 * deletes; none of it may leave a patient's name, ID or birth date in a line that Orthanc or PostgreSQL logs, since
 * pod logs leave the tenant's boundary (log shipping). The gateway's and the sidecars' Envoy access log cannot run
 * here: its format (no query string) is modelled (tests/upstream/istioAccessLog.ts).
 *
 * The control makes the test able to fail, and shows what the protection rests on: the same requests on a replica of
 * the same rendered configuration (DeidentifyLogs on) whose log level is raised to `verbose` log the patient, since
 * the DICOMweb plugin 1.24 logs every QIDO-RS argument at info level (QidoRs.cpp) whatever DeidentifyLogs says. The
 * level stays at the default because the pods never set the image's VERBOSE_ENABLED or TRACE_ENABLED
 * (orthanc-builder 26.8.1 docker/orthanc/docker-entrypoint.sh; tests/tenant.test.ts) and the gateway denies
 * `/tools/log-level` (tests/integration/adminPaths.test.ts).
 */
import assert from "assert";
import { randomBytes } from "crypto";
import { readFileSync } from "fs";
import { generateInstances } from "./support/dicom";
import { find, store } from "./support/dcmtk";
import { stow, webRequest, WebTarget } from "./support/dicomWeb";
import { Replica } from "./support/orthanc";
import { assertPrerequisites } from "./support/prerequisites";
import { Resources } from "./support/processes";
import { startTenantStack, TenantStack } from "./support/stack";
import { dicomWebRoot } from "../../components/tenant/orthancConfig";

/** A patient nobody else in the suite has: each value is searched for in every log line. */
function probePatient() {
    const tag = randomBytes(4).toString("hex").toUpperCase();
    return { patientName: `LOGPROBE${tag}^ALICE`, patientId: `PHI-${tag}`, patientBirthDate: "19710203" };
}

type Patient = ReturnType<typeof probePatient>;

/** The lines of `log` that carry any of the patient's attributes (the name's family part alone is enough). */
export function linesWithPatient(log: string, patient: Patient): string[] {
    const needles = [patient.patientName.split("^")[0], patient.patientId, patient.patientBirthDate];
    return log.split("\n").filter((line) => needles.some((needle) => line.includes(needle)));
}

/** What a site does with a patient's images, over every path in; each request must succeed. */
async function exercise(stack: TenantStack, replica: Replica, suite: Resources, patient: Patient): Promise<void> {
    const dir = suite.tempDir("logs-data");
    const [dimse, web] = [
        await generateInstances(dir, 2, 4096, "dimse", { ...patient, oneStudy: true }),
        await generateInstances(dir, 1, 4096, "web", patient),
    ];
    const stored = await store({ port: replica.dicomPort, calledAeTitle: replica.aeTitle }, dimse);
    assert.equal(stored.acknowledged.length, dimse.length, "C-STORE");
    const target: WebTarget = { port: replica.httpPort, credentials: stack.admin };
    const stowed = await stow(target, dicomWebRoot, web.map((instance) => readFileSync(instance.file)));
    assert.equal(stowed.status, 200, `STOW-RS: ${stowed.body}`);

    const family = patient.patientName.split("^")[0];
    for (const query of [
        `studies?PatientName=${family}*&PatientBirthDate=${patient.patientBirthDate}`,
        `studies?PatientID=${patient.patientId}&includefield=all`,
        `series?PatientName=${encodeURIComponent(patient.patientName)}`,
        `instances?PatientBirthDate=19700101-19721231&PatientName=${family}*`,
    ]) {
        const response = await webRequest(target, `${dicomWebRoot}${query}`, { headers: { Accept: "application/dicom+json" } });
        assert.equal(response.status, 200, `QIDO-RS ${query}`);
        assert.ok(response.body.toString().includes(patient.patientId), `QIDO-RS ${query} finds the patient`);
    }
    const cFind = await find({ port: replica.dicomPort, calledAeTitle: replica.aeTitle }, {
        QueryRetrieveLevel: "STUDY",
        PatientName: `${family}*`,
        PatientBirthDate: patient.patientBirthDate,
        PatientID: "",
    });
    assert.ok(cFind.ok && cFind.matches.length === 2, `C-FIND: ${cFind.output}`);

    const found = await replica.postJson<string[]>("/tools/find", { Level: "Study", Query: { PatientName: `${family}*`, PatientBirthDate: patient.patientBirthDate } });
    assert.equal(found.length, 2, "/tools/find");
    for (const study of found) {
        await replica.getJson(`/studies/${study}/shared-tags?simplify`);
        await replica.getBytes(`/studies/${study}/archive`);
        const deleted = await replica.request(`/studies/${study}`, { method: "DELETE" });
        assert.equal(deleted.status, 200, "DELETE study");
    }
    // Requests Orthanc refuses take the error paths, which log what they refuse.
    const unknownKey = await webRequest(target, `${dicomWebRoot}studies?PatientNam=${family}&PatientID=${patient.patientId}`, {
        headers: { Accept: "application/dicom+json" },
    });
    assert.notEqual(unknownKey.status, 500, "QIDO-RS with an unknown key");
    const badLevel = await replica.request("/tools/find", {
        method: "POST",
        body: JSON.stringify({ Level: "Ward", Query: { PatientName: patient.patientName, PatientBirthDate: patient.patientBirthDate } }),
    });
    assert.ok(badLevel.status >= 400, `/tools/find with an unknown level is refused (${badLevel.status})`);
}

describe("patient attributes in the logs of the real stack (issue 18, item 5)", function () {
    this.timeout(240_000);
    const suite = new Resources();
    let stack: TenantStack;

    before(async function () {
        assertPrerequisites();
        stack = await startTenantStack(suite);
    });
    after(() => suite.release());

    it("leaves no patient name, ID or birth date in any line Orthanc or PostgreSQL logs, with the rendered configuration", async () => {
        assert.equal(stack.config.DeidentifyLogs, true);
        const replica = await stack.startReplica(suite, "logs");
        const patient = probePatient();
        await exercise(stack, replica, suite, patient);
        const orthancLines = linesWithPatient(replica.child.readLog(), patient);
        const postgresLines = linesWithPatient(stack.postgres.child.readLog(), patient);
        assert.deepEqual(orthancLines, [], "Orthanc's log");
        assert.deepEqual(postgresLines, [], "PostgreSQL's log");
        // The scan is only as good as the log is long: the replica did log while serving.
        assert.ok(replica.child.readLog().split("\n").length > 5, "Orthanc logged nothing at all");
    });

    it("control: the same configuration at the `verbose` level that /tools/log-level sets logs the patient, DeidentifyLogs notwithstanding", async () => {
        const replica = await stack.startReplica(suite, "logs-verbose");
        const raised = await replica.request("/tools/log-level", { method: "PUT", body: "verbose" });
        assert.equal(raised.status, 200);
        const patient = probePatient();
        await exercise(stack, replica, suite, patient);
        assert.notDeepEqual(linesWithPatient(replica.child.readLog(), patient), []);
    });
});
