/**
 * The operator tools' pure parts (scripts/tools/): reading the stack outputs, a modality's files, and the smoke run's
 * target resolution, check sequence, report and exit status. The tools' runs through scripts/run are in
 * tests/integration/cli.test.ts; the smoke run against a real Orthanc is in the integration suite.
 */
import { strict as assert } from "assert";
import { findModality, modalityCertFiles } from "../scripts/tools/modalityCert";
import {
    CheckResult,
    exitStatus,
    formatReport,
    openPortForwards,
    parseArguments,
    PlanEntry,
    Probes,
    resolveTargets,
    restRequest,
    runSmoke,
    TenantPlan,
    tokenVariable,
} from "../scripts/tools/smoke";
import { parseStackOutputs, shellQuote, StackOutputs } from "../scripts/tools/stackOutputs";
import { stackOutputsFixture } from "./support/stackOutputsFixture";

const outputs = (): StackOutputs => parseStackOutputs(JSON.stringify(stackOutputsFixture()));

describe("scripts/tools: stack outputs", () => {
    it("reads what `pulumi stack output --json --show-secrets` prints", () => {
        const parsed = outputs();
        assert.deepEqual(Object.keys(parsed.tenantEndpoints), ["bhs", "mhr"]);
        assert.equal(parsed.modalityCertificates.bhs.tester.aeTitle, "TESTER");
    });

    it("says so when the secrets were left hidden, or an output is missing", () => {
        assert.throws(() => parseStackOutputs(JSON.stringify({ ...stackOutputsFixture(), modalityCertificates: "[secret]" })), /--show-secrets/);
        const { rootCaCertificate: _, ...withoutRoot } = stackOutputsFixture();
        assert.throws(() => parseStackOutputs(JSON.stringify(withoutRoot)), /rootCaCertificate/);
        assert.throws(() => parseStackOutputs(""), /not JSON/);
    });

    it("quotes for the shell only what needs it", () => {
        assert.equal(shellQuote("/tmp/certs/ct-1.key"), "/tmp/certs/ct-1.key");
        assert.equal(shellQuote("CT 2"), "'CT 2'");
        assert.equal(shellQuote("it's"), `'it'\\''s'`);
    });
});

describe("scripts/tools/modalityCert", () => {
    it("gives the key (600), certificate and server CA, and lines that quote an AE title with a space", () => {
        const { files, instructions } = modalityCertFiles(outputs(), "bhs", "ct-2", "/certs");
        assert.deepEqual(
            files.map((file) => [file.name, file.mode]),
            [
                ["ct-2.key", 0o600],
                ["ct-2.crt", 0o644],
                ["server-ca.crt", 0o644],
            ],
        );
        assert.equal(files[0].content, stackOutputsFixture().modalityCertificates.bhs["ct-2"].privateKey);
        assert.match(
            instructions,
            /^echoscu -aet 'CT 2' -aec ORTHANC \+tls \/certs\/ct-2\.key \/certs\/ct-2\.crt \+cf \/certs\/server-ca\.crt dicom\.bhs\.local\.orthweb\.example 11112$/m,
        );
    });

    it("prints the curl line with the admin's password only for a tenant without sign-in, else with an API client's token", () => {
        const url = "https://web.bhs.local.orthweb.example/system";
        assert.match(modalityCertFiles(outputs(), "bhs", "tester", "/certs").instructions, new RegExp(`^curl --cacert /certs/server-ca\\.crt -u admin ${url}$`, "m"));
        const signingIn = outputs();
        signingIn.tenantEndpoints.bhs.signIn = { issuer: "https://login.example.org/bhs", clientId: "korthweb-bhs", redirectUri: `https://web.bhs.local.orthweb.example/oauth2/callback` };
        const { instructions } = modalityCertFiles(signingIn, "bhs", "tester", "/certs");
        assert.doesNotMatch(instructions, /-u admin/);
        assert.match(instructions, /^curl --cacert \/certs\/server-ca\.crt -H "Authorization: Bearer \$TOKEN" https:\/\/web\.bhs\.local\.orthweb\.example\/system {3}# TOKEN: an access token of one of bhs's API clients$/m);
    });

    it("for a modality that brought its own certificate request, writes no key and says the key is its own", () => {
        const fixture = stackOutputsFixture();
        delete (fixture.modalityCertificates.bhs["ct-2"] as { privateKey?: string }).privateKey;
        const { files, instructions } = modalityCertFiles(parseStackOutputs(JSON.stringify(fixture)), "bhs", "ct-2", "/certs");
        assert.deepEqual(
            files.map((file) => [file.name, file.mode]),
            [
                ["ct-2.crt", 0o644],
                ["server-ca.crt", 0o644],
            ],
        );
        assert.match(instructions, /its key is its own \(it brought a certificate request\), never in the stack/);
        assert.match(instructions, /^echoscu -aet 'CT 2' -aec ORTHANC \+tls <the private key of ct-2's certificate request> \/certs\/ct-2\.crt \+cf \/certs\/server-ca\.crt /m);
    });

    it("names the tenants, or the tenant's modalities, when asked for one that does not exist", () => {
        assert.throws(() => findModality(outputs(), "xyz", "tester"), { message: "unknown tenant 'xyz': the stack's tenants are bhs, mhr" });
        assert.throws(() => findModality(outputs(), "bhs", "mri"), { message: "tenant 'bhs' has no modality 'mri': its modalities are tester, ct-2" });
        assert.throws(() => findModality(outputs(), "mhr", "tester"), /tenant 'mhr' has no modality 'tester': it has none/);
    });
});

describe("scripts/tools/smoke: where each tenant is reached", () => {
    const plans = (entries: PlanEntry[]) => Object.fromEntries(entries.map((entry) => [entry.tenant, entry]));

    it("node ports on KORTHWEB_NODE_ADDRESS (127.0.0.1 by default), with the first modality; a tenant without one is skipped", () => {
        const entries = plans(resolveTargets(outputs(), {}));
        assert.ok("plan" in entries.bhs);
        const plan = (entries.bhs as { plan: TenantPlan }).plan;
        assert.deepEqual([plan.web, plan.dicom], [
            { host: "127.0.0.1", port: 30443 },
            { host: "127.0.0.1", port: 31112 },
        ]);
        assert.equal(plan.webHost, "web.bhs.local.orthweb.example");
        assert.equal(plan.modality, "tester");
        assert.equal(plan.adminPassword, "bhs-password");
        assert.match((entries.mhr as { skipped: string }).skipped, /no modality certificate/);

        const onNode = plans(resolveTargets(outputs(), { KORTHWEB_NODE_ADDRESS: "192.168.49.2" }));
        assert.equal((onNode.bhs as { plan: TenantPlan }).plan.dicom.host, "192.168.49.2");
    });

    it("checks with the first modality whose key is in the outputs, skipping those that brought their own request", () => {
        const fixture = stackOutputsFixture();
        delete (fixture.modalityCertificates.bhs.tester as { privateKey?: string }).privateKey;
        const entries = plans(resolveTargets(parseStackOutputs(JSON.stringify(fixture)), {}));
        assert.equal((entries.bhs as { plan: TenantPlan }).plan.modality, "ct-2");
        delete (fixture.modalityCertificates.bhs["ct-2"] as { privateKey?: string }).privateKey;
        const none = plans(resolveTargets(parseStackOutputs(JSON.stringify(fixture)), {}));
        assert.match((none.bhs as { skipped: string }).skipped, /each modality brought its own certificateRequest/);
    });

    it("without node ports: the ingress address on 443 and the DICOM port; none yet is an error for that tenant", () => {
        const fixture = stackOutputsFixture();
        fixture.modalityCertificates.mhr = { us: { ...fixture.modalityCertificates.bhs.tester, aeTitle: "US" } } as never;
        const entries = plans(resolveTargets(parseStackOutputs(JSON.stringify(fixture)), {}));
        const plan = (entries.mhr as { plan: TenantPlan }).plan;
        assert.deepEqual([plan.web, plan.dicom], [
            { host: "203.0.113.7", port: 443 },
            { host: "203.0.113.7", port: 11112 },
        ]);
        fixture.tenantEndpoints.mhr.ingressAddress = "pending";
        const pending = plans(resolveTargets(parseStackOutputs(JSON.stringify(fixture)), {}));
        assert.match((pending.mhr as { error: string }).error, /no ingress address yet \('pending'\)/);
    });

    it("KORTHWEB_SMOKE_TARGETS overrides the web and DICOM targets per tenant, keeping the web host name", () => {
        const entries = plans(resolveTargets(outputs(), { KORTHWEB_SMOKE_TARGETS: '{"bhs":{"web":"127.0.0.1:18443","dicom":"[::1]:18112"}}' }));
        const plan = (entries.bhs as { plan: TenantPlan }).plan;
        assert.deepEqual([plan.web, plan.dicom, plan.webHost], [{ host: "127.0.0.1", port: 18443 }, { host: "::1", port: 18112 }, "web.bhs.local.orthweb.example"]);
        const webOnly = plans(resolveTargets(outputs(), { KORTHWEB_SMOKE_TARGETS: '{"bhs":{"web":"127.0.0.1:18443"}}' }));
        assert.deepEqual((webOnly.bhs as { plan: TenantPlan }).plan.dicom, { host: "127.0.0.1", port: 31112 });
    });

    it("refuses a malformed KORTHWEB_SMOKE_TARGETS, naming what is wrong", () => {
        const targets = (value: string) => () => resolveTargets(outputs(), { KORTHWEB_SMOKE_TARGETS: value });
        assert.throws(targets("{"), /KORTHWEB_SMOKE_TARGETS is not JSON/);
        assert.throws(targets('{"xyz":{"web":"a:1"}}'), /tenant 'xyz', which the stack does not have \(tenants: bhs, mhr\)/);
        assert.throws(targets('{"bhs":{"web":"127.0.0.1"}}'), /KORTHWEB_SMOKE_TARGETS\.bhs\.web: '127\.0\.0\.1' is not host:port/);
        assert.throws(targets('{"bhs":{"http":"a:1"}}'), /only "web", "dicom" and "orthanc"/);
    });
});

describe("scripts/tools/smoke: tenants that sign users in", () => {
    const signIn = { issuer: "https://login.example.org/bhs", clientId: "korthweb-bhs", redirectUri: "https://web.bhs.local.orthweb.example/oauth2/callback" };
    const signingIn = (): StackOutputs => {
        const parsed = outputs();
        parsed.tenantEndpoints.bhs.signIn = { ...signIn };
        return parsed;
    };
    const planOf = (entries: PlanEntry[], tenant = "bhs") => (entries.find((entry) => entry.tenant === tenant) as { plan: TenantPlan }).plan;

    it("reads signIn from the outputs; without it, lookup and qido go through the gateway as the admin, whatever token is set", () => {
        assert.deepEqual(parseStackOutputs(JSON.stringify({ ...stackOutputsFixture(), tenantEndpoints: signingIn().tenantEndpoints })).tenantEndpoints.bhs.signIn, signIn);
        const plan = planOf(resolveTargets(outputs(), { KORTHWEB_SMOKE_TOKEN_BHS: "a.b.c" }));
        assert.equal(plan.signIn, undefined);
        assert.deepEqual(plan.rest, { via: "gateway", authorization: `Basic ${Buffer.from("admin:bhs-password").toString("base64")}`, as: "the admin user" });
    });

    it("with sign-in: the tenant's API client token through the gateway first, then the break-glass admin only when asked for", () => {
        assert.equal(tokenVariable("bhs"), "KORTHWEB_SMOKE_TOKEN_BHS");
        assert.equal(tokenVariable("st-olav"), "KORTHWEB_SMOKE_TOKEN_ST_OLAV");
        const withToken = planOf(resolveTargets(signingIn(), { KORTHWEB_SMOKE_TOKEN_BHS: " a.b.c\n" }, { portForward: true }));
        assert.deepEqual(withToken.signIn, signIn);
        assert.deepEqual(withToken.rest, { via: "gateway", authorization: "Bearer a.b.c", as: "the API client token of KORTHWEB_SMOKE_TOKEN_BHS" });
        const target = planOf(resolveTargets(signingIn(), { KORTHWEB_SMOKE_TARGETS: '{"bhs":{"orthanc":"127.0.0.1:18042"}}' }));
        assert.deepEqual(target.rest, { via: "break-glass", endpoint: { host: "127.0.0.1", port: 18042 } });
        const forwarded = planOf(resolveTargets(signingIn(), {}, { portForward: true }));
        assert.deepEqual(forwarded.rest, { via: "port-forward", namespace: "bhs-orthweb" });
    });

    it("with sign-in and neither a token nor --port-forward, lookup and qido fail naming both ways in, without a request", async () => {
        const plan = planOf(resolveTargets(signingIn(), {}));
        assert.equal(plan.rest.via, "none");
        await assert.rejects(restRequest(plan, "POST", "/tools/lookup"), {
            message:
                "bhs signs users in, so the gateway admits no admin password: set KORTHWEB_SMOKE_TOKEN_BHS to an access token of one of its API clients " +
                "(a role with search), or run with --port-forward (the break-glass admin on Orthanc's own port, from inside the cluster)",
        });
        assert.deepEqual(parseArguments([]), { portForward: false });
        assert.deepEqual(parseArguments(["--port-forward"]), { portForward: true });
        assert.throws(() => parseArguments(["--port-foward"]), /unknown argument --port-foward: the only one is --port-forward/);
    });

    it("--port-forward: one kubectl per tenant that needs it, in its namespace and the stack's context; one that fails says why", async () => {
        const fixture = signingIn();
        fixture.tenantEndpoints.mhr.signIn = { ...signIn, clientId: "korthweb-mhr" };
        fixture.modalityCertificates.mhr = { us: { ...fixture.modalityCertificates.bhs.tester, aeTitle: "US" } };
        const entries = resolveTargets(fixture, { KORTHWEB_SMOKE_TOKEN_MHR: "x.y.z" }, { portForward: true });
        const started: string[] = [];
        const stopped: string[] = [];
        const stoppers = await openPortForwards(entries, "kind-kind", async (namespace, context) => {
            started.push(`${context} ${namespace}`);
            return { endpoint: { host: "127.0.0.1", port: 41234 }, command: `kubectl -n ${namespace} port-forward`, stop: () => stopped.push(namespace) };
        });
        assert.deepEqual(started, ["kind-kind bhs-orthweb"], "mhr has a token: no port-forward");
        assert.deepEqual(planOf(entries).rest, { via: "break-glass", endpoint: { host: "127.0.0.1", port: 41234 }, portForward: "kubectl -n bhs-orthweb port-forward" });
        stoppers.forEach((stop) => stop());
        assert.deepEqual(stopped, ["bhs-orthweb"]);

        const failing = resolveTargets(signingIn(), {}, { portForward: true });
        await openPortForwards(failing, undefined, async () => Promise.reject(new Error("kubectl not found: install it")));
        assert.deepEqual(planOf(failing).rest, { via: "none", why: "kubectl not found: install it" });
    });

    it("the web check of a tenant that signs users in is the gatekeeper's, never GET /system as the admin", async () => {
        const calls: string[] = [];
        const probes: Probes = {
            system: async () => (calls.push("system"), "Orthanc"),
            gate: async () => (calls.push("gate"), "gatekeeper refuses"),
            echo: async () => "echo",
            newInstance: async () => ({ file: "/tmp/x.dcm", studyInstanceUid: "1", seriesInstanceUid: "2", sopInstanceUid: "3" }),
            store: async () => "store",
            lookup: async () => "lookup",
            qido: async () => "qido",
        };
        const [bhs] = await runSmoke(resolveTargets(signingIn(), {}), probes);
        assert.deepEqual([bhs.check, bhs.detail], ["web", "gatekeeper refuses"]);
        assert.deepEqual(calls, ["gate"]);
        await runSmoke(resolveTargets(outputs(), {}), probes);
        assert.deepEqual(calls, ["gate", "system"]);
    });
});

describe("scripts/tools/smoke: checks, report and exit status", () => {
    const instance = { file: "/tmp/smoke.dcm", studyInstanceUid: "2.25.1", seriesInstanceUid: "2.25.2", sopInstanceUid: "2.25.3" };
    const passing = (): Probes => ({
        system: async () => "Orthanc 1.12.7",
        gate: async () => Promise.reject(new Error("no tenant of the fixture signs users in")),
        echo: async () => "C-ECHO Success",
        newInstance: async () => instance,
        store: async () => "C-STORE Success",
        lookup: async () => "instance abc",
        qido: async () => "study found",
    });
    const entries = (): PlanEntry[] => resolveTargets(outputs(), {});

    it("all passing: one line per check of the tenant with a modality, the other skipped, exit status 0", async () => {
        const results = await runSmoke(entries(), passing());
        assert.deepEqual(
            results.map((result) => `${result.tenant} ${result.check} ${result.status}`),
            ["bhs web PASS", "bhs echo PASS", "bhs store PASS", "bhs lookup PASS", "bhs qido PASS", "mhr plan SKIP"],
        );
        assert.equal(exitStatus(results), 0);
        const report = formatReport(results).split("\n");
        assert.equal(report[0], "PASS bhs      web    Orthanc 1.12.7");
        assert.equal(report[5], "SKIP mhr      plan   no modality certificate (list a modality under the tenant's `modalities`)");
        assert.equal(report[6], "smoke PASS: 5 passed, 0 failed, 1 skipped; tenants checked: bhs");
    });

    it("a failed C-STORE fails the lookups as not run, with the reason on its line, and exit status 1", async () => {
        const probes = { ...passing(), store: async () => Promise.reject(new Error("storescu exited 1: Association Rejected")) };
        const results = await runSmoke(entries(), probes);
        const byCheck = Object.fromEntries(results.map((result) => [`${result.tenant} ${result.check}`, result]));
        assert.equal(byCheck["bhs store"].detail, "storescu exited 1: Association Rejected");
        assert.deepEqual(
            [byCheck["bhs store"].status, byCheck["bhs lookup"].status, byCheck["bhs qido"].status, byCheck["bhs echo"].status],
            ["FAIL", "FAIL", "FAIL", "PASS"],
        );
        assert.equal(byCheck["bhs qido"].detail, "not run: no instance was stored");
        assert.equal(exitStatus(results), 1);
        assert.match(formatReport(results), /^FAIL bhs {6}store {2}storescu exited 1: Association Rejected$/m);
        assert.match(formatReport(results), /smoke FAIL: 2 passed, 3 failed, 1 skipped; tenants checked: bhs\n$/);
    });

    it("nothing checked (every tenant skipped or unreachable) is a failure", () => {
        const skipped: CheckResult[] = [{ tenant: "mhr", check: "plan", status: "SKIP", detail: "no modality certificate" }];
        assert.equal(exitStatus(skipped), 1);
        assert.equal(exitStatus([]), 1);
        assert.match(formatReport(skipped), /smoke FAIL: 0 passed, 0 failed, 1 skipped; tenants checked: none; no tenant could be checked/);
    });
});

describe("scripts/tools/modalityCert: certificate renewal", () => {
    /** The fixture's outputs with bhs's tester inside its overlap (a new certificate, the previous still admitted). */
    const renewing = (): StackOutputs => {
        const parsed = outputs();
        parsed.modalityCertificates.bhs.tester.renewal = {
            expires: "2028-11-05T10:00:00Z",
            nextCertificateFrom: "2028-10-06T00:00:00Z",
            previous: { fingerprint: "ef", expires: "2026-12-20T00:00:00Z", admittedUntil: "2026-12-06T00:00:00Z" },
            notice: "install the new certificate (scripts/run modality-cert) before 2026-12-06T00:00:00Z: the previous one is refused from then on",
        };
        parsed.modalityCertificates.bhs["ct-2"].renewal = { expires: "2028-01-01T00:00:00Z", nextCertificateFrom: "2027-12-01T00:00:00Z" };
        return parsed;
    };

    it("prints when this certificate expires, and until when the previous one is still admitted", () => {
        const { instructions } = modalityCertFiles(renewing(), "bhs", "tester", "/certs");
        assert.match(instructions, /^This certificate expires 2028-11-05T10:00:00Z; the first `pulumi up` from 2028-10-06T00:00:00Z issues the next one\.$/m);
        assert.match(instructions, /^It is new: the previous certificate of tester stays admitted until 2026-12-06T00:00:00Z, not after\.$/m);
    });

    it("lists every modality of the stack that needs its new certificate, whichever modality is written", () => {
        const { instructions } = modalityCertFiles(renewing(), "bhs", "ct-2", "/certs");
        assert.doesNotMatch(instructions, /It is new/);
        assert.match(instructions, /^Modalities whose certificate needs you:\n {2}bhs\/tester: install the new certificate \(scripts\/run modality-cert\) before 2026-12-06T00:00:00Z/m);
        assert.doesNotMatch(instructions, /bhs\/ct-2:/);
    });

    it("says so when no modality needs anything, and reads stacks that predate renewal periods", () => {
        assert.match(modalityCertFiles(outputs(), "bhs", "tester", "/certs").instructions, /^No modality of the stack needs a new certificate installed\.$/m);
        assert.equal(outputs().modalityCertificates.bhs.tester.renewal, undefined);
    });
});
