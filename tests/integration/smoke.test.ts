/**
 * `scripts/run smoke <stack>` (scripts/tools/smoke.ts) against a tenant on this machine behind its gateway: real
 * Orthanc on PostgreSQL, the DICOM and web TLS terminators set up from the program's Gateway builders, and the stack
 * outputs a deployment would export (support/gatewayTerminator.ts). The command gets them exactly as scripts/run
 * hands them over, on standard input. A tenant that signs users in has a second web terminator in front of a gatekeeper
 * stand-in (support/gatekeeperStandIn.ts: one known token, everything else refused as the gatekeeper refuses it).
 */
import assert from "assert";
import { readFileSync } from "fs";
import { join } from "path";
import { webGatewaySpec } from "../../components/tenant/ingress";
import { GatekeeperStandIn, startGatekeeperStandIn } from "./support/gatekeeperStandIn";
import { gatewayCredentials, gatewayServerTls, LocalTenant, startLocalTenantBehindGateway, startTerminator, StackOutputs, Terminator } from "./support/gatewayTerminator";
import { issueModalityCertificate } from "./support/pki";
import { assertPrerequisites } from "./support/prerequisites";
import { Resources, run } from "./support/processes";

const repoRoot = join(__dirname, "..", "..");

/** Runs the smoke command on `outputs`, as scripts/run does after `pulumi stack output --json --show-secrets`. */
function smoke(local: LocalTenant, outputs: unknown, options: { targets?: Record<string, Record<string, string>>; env?: NodeJS.ProcessEnv } = {}) {
    const env: NodeJS.ProcessEnv = { ...process.env, KORTHWEB_SMOKE_TARGETS: options.targets ? JSON.stringify(options.targets) : local.env.KORTHWEB_SMOKE_TARGETS, ...options.env };
    delete env.KORTHWEB_STACK_OUTPUTS;
    for (const name of Object.keys(env)) if (name.startsWith("KORTHWEB_SMOKE_TOKEN_") && !options.env?.[name]) delete env[name];
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

    describe("a tenant that signs users in (tenantEndpoints.<tenant>.signIn)", function () {
        const token = "smoke-client.access-token_1";
        let gatekeeper: GatekeeperStandIn;
        let signInGateway: Terminator;
        let signingIn: StackOutputs;
        const tenant = () => local.tenant.name;
        const tokenEnv = () => ({ [`KORTHWEB_SMOKE_TOKEN_${tenant().toUpperCase()}`]: token });
        const line = (status: string, check: string) => new RegExp(`^${status} ${tenant()}\\s+${check}\\s`, "m");

        before(async function () {
            const signIn = { issuer: "https://login.example.org/realms/bhs", clientId: `korthweb-${tenant()}`, redirectUri: `https://${local.names.webHost}/oauth2/callback` };
            gatekeeper = await startGatekeeperStandIn(suite, { tenant: tenant(), orthancPort: local.replicas[0].httpPort, orthancUser: local.stack.admin, token, signIn });
            // The gateway's web server as the program builds it, its route now ending at the gatekeeper.
            signInGateway = await startTerminator(suite, gatewayServerTls(webGatewaySpec(local.names)), gatewayCredentials(local.pki, tenant()), gatekeeper.port);
            signingIn = structuredClone(local.outputs);
            signingIn.tenantEndpoints[tenant()].signIn = signIn;
        });

        const throughGatekeeper = (): Record<string, Record<string, string>> => ({ [tenant()]: { ...local.targets[tenant()], web: `127.0.0.1:${signInGateway.port}` } });

        it("with an API client's token: the gatekeeper refuses anonymous requests and the admin, lookup and QIDO-RS pass through it with the token", async function () {
            const seen = gatekeeper.requests.length;
            const result = await smoke(local, signingIn, { targets: throughGatekeeper(), env: tokenEnv() });
            const report = result.stdout + result.stderr;
            assert.strictEqual(result.code, 0, report);
            for (const check of ["web", "echo", "store", "lookup", "qido"]) assert.match(report, line("PASS", check), `${check} in:\n${report}`);
            assert.match(report, /refuses an anonymous request \(401 Bearer\) and the admin password \(HTTP 401\), and sends a browser to sign in at https:\/\/login\.example\.org/);
            assert.match(report, /through the gateway as the API client token of KORTHWEB_SMOKE_TOKEN_/);
            const requests = gatekeeper.requests.slice(seen).map((request) => `${request.who} ${request.method} ${request.path} ${request.status}`);
            assert.deepEqual(requests, [
                "refused GET /system 401",
                "anonymous GET /system 401",
                "anonymous GET / 302",
                "token POST /tools/lookup 200",
                "token GET /dicom-web/studies 200",
            ]);
        });

        it("without a token: lookup and QIDO-RS as the break-glass admin on Orthanc's own port (where a port-forward ends), saying the route is not checked", async function () {
            const seen = gatekeeper.requests.length;
            const targets = throughGatekeeper();
            targets[tenant()].orthanc = `127.0.0.1:${local.replicas[0].httpPort}`;
            const result = await smoke(local, signingIn, { targets });
            const report = result.stdout + result.stderr;
            assert.strictEqual(result.code, 0, report);
            for (const check of ["web", "lookup", "qido"]) assert.match(report, line("PASS", check), `${check} in:\n${report}`);
            assert.match(report, /as the break-glass admin on Orthanc's own web port \(127\.0\.0\.1:\d+\); the gateway's route for signed-in clients is not checked/);
            assert.ok(gatekeeper.requests.slice(seen).every((request) => request.who !== "token"), "nothing passed the gatekeeper");
        });

        it("FAILS when the gateway admits the admin password (its route reaches Orthanc, not the gatekeeper): break-glass on the internet", async function () {
            // The route of a tenant without sign-in, under outputs that say the tenant signs users in.
            const result = await smoke(local, signingIn, { env: tokenEnv() });
            const report = result.stdout + result.stderr;
            assert.strictEqual(result.code, 1, report);
            assert.match(report, line("FAIL", "web"), report);
            assert.match(report, /the admin password is admitted through the gateway \(GET \/system: HTTP 200\): break-glass access reaches the internet/);
            assert.match(report, /anonymous GET \/system: HTTP 401 \(WWW-Authenticate: Basic realm=/, "Orthanc's own challenge is not the gatekeeper's");
        });
    });
});
