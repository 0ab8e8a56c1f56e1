/**
 * `scripts/run smoke <stack>` (scripts/tools/smoke.ts) against a tenant on this machine behind its gateway: real
 * Orthanc on PostgreSQL, the DICOM and web TLS terminators set up from the program's Gateway builders, and the stack
 * outputs a deployment would export (support/gatewayTerminator.ts). The command gets them exactly as scripts/run
 * hands them over, on standard input.
 */
import assert from "assert";
import { readFileSync } from "fs";
import { join } from "path";
import { LocalTenant, startLocalTenantBehindGateway } from "./support/gatewayTerminator";
import { issueModalityCertificate } from "./support/pki";
import { assertPrerequisites } from "./support/prerequisites";
import { Resources, run } from "./support/processes";

const repoRoot = join(__dirname, "..", "..");

/** Runs the smoke command on `outputs`, as scripts/run does after `pulumi stack output --json --show-secrets`. */
function smoke(local: LocalTenant, outputs: unknown) {
    const env: NodeJS.ProcessEnv = { ...process.env, KORTHWEB_SMOKE_TARGETS: local.env.KORTHWEB_SMOKE_TARGETS };
    delete env.KORTHWEB_STACK_OUTPUTS;
    return run(process.execPath, ["-r", "ts-node/register/transpile-only", join(repoRoot, "scripts", "tools", "smoke.ts")], {
        env,
        input: JSON.stringify(outputs),
    });
}

describe("the smoke command against a tenant behind its gateway (real Orthanc, PostgreSQL, DCMTK, OpenSSL)", function () {
    const suite = new Resources();
    let local: LocalTenant;

    before(async function () {
        assertPrerequisites();
        local = await startLocalTenantBehindGateway(suite);
    });

    after(async function () {
        await suite.release();
    });

    it("passes every check with a certificate the program issued: HTTPS, C-ECHO, C-STORE, REST lookup, QIDO-RS", async function () {
        const result = await smoke(local, local.outputs);
        const report = result.stdout + result.stderr;
        assert.strictEqual(result.code, 0, report);
        for (const check of ["web", "echo", "store", "lookup", "qido"]) {
            assert.match(report, new RegExp(`^PASS ${local.tenant.name}\\s+${check}\\s`, "m"), `${check} in:\n${report}`);
        }
        assert.doesNotMatch(report, /FAIL/);
    });

    it("fails, and says where, when the modality's certificate is not one the gateway accepts", async function () {
        const [name, modality] = Object.entries(local.modalities)[0];
        // Signed by the same tenant CA, but not the certificate the configuration lists: a removed or replaced one.
        const stale = await issueModalityCertificate(suite.tempDir("stale"), local.config.pki, local.pki.tenants[local.tenant.name].ca, "stale", {
            name,
            aeTitle: modality.aeTitle,
        });
        const outputs = structuredClone(local.outputs);
        const issued = outputs.modalityCertificates[local.tenant.name][name];
        issued.certificate = readFileSync(stale.certFile, "utf8");
        issued.privateKey = readFileSync(stale.keyFile, "utf8");
        const result = await smoke(local, outputs);
        const report = result.stdout + result.stderr;
        assert.strictEqual(result.code, 1, report);
        assert.match(report, new RegExp(`^PASS ${local.tenant.name}\\s+web\\s`, "m"), report);
        assert.match(report, new RegExp(`^FAIL ${local.tenant.name}\\s+echo\\s`, "m"), report);
        assert.match(report, new RegExp(`^FAIL ${local.tenant.name}\\s+store\\s`, "m"), report);
        assert.ok(local.dicomGateway.events.some((event) => /fingerprint/i.test(JSON.stringify(event))), JSON.stringify(local.dicomGateway.events));
    });
});
