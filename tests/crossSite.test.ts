/**
 * Cross-site request forgery at the tenant's gateway (issue 18, item 3): what Istio's AuthorizationPolicies of the
 * rendered stacks decide for browser requests from other sites and for ordinary clients, and the security headers the
 * web route sets. Istio's evaluation is modelled (tests/upstream/authorizationPolicy.ts), not run; the same refusal by
 * Orthanc itself is run on a real Orthanc in tests/integration/crossSite.test.ts.
 */
import { strict as assert } from "assert";
import { gatewayPodLabels, ingressPorts, orthancPorts, webContentSecurityPolicy } from "../components/tenant/ingress";
import { orthancSelector, tenantNames } from "../components/naming/tenantNames";
import { crossSiteFilterFile, crossSiteFilterLua } from "../components/tenant/orthancConfig";
import { orthancConfigFile, orthancConfigSecretName, orthancDeploymentName, orthancImageLayout } from "../components/tenant/orthancWorkload";
import { plain, RecordedResource } from "./support/mocks";
import { allStacks, parsedStackFile, renderStack } from "./support/stacks";
import { authorizationAllows, HttpRequest, PolicySpec } from "./upstream/authorizationPolicy";
import { istioAdmission } from "./upstream/istioValidation";

const kindOf = (r: RecordedResource) => r.inputs?.kind as string | undefined;
const objects = (resources: RecordedResource[], kind: string, namespace: string) =>
    resources.filter((r) => kindOf(r) === kind && r.inputs.metadata?.namespace === namespace);

describe("Istio's authorization model: header conditions and TCP chains (istio 1.30.3, read not run)", () => {
    const client = { principal: "", namespace: "", port: 443, path: "/x" };
    const deny = (rules: Record<string, unknown>[]): PolicySpec[] => [{ action: "DENY", rules }];
    it("`values` needs the header, `notValues` matches when it is absent, `*` is presence; names are case-insensitive", () => {
        const policies = deny([{ when: [{ key: "request.headers[Origin]", values: ["*"], notValues: ["https://a.example"] }] }]);
        const decide = (headers?: Record<string, string>) => authorizationAllows(policies, {}, { ...client, method: "POST", headers }, "DEFAULT");
        assert.equal(decide(undefined), true, "absent header: values do not match");
        assert.equal(decide({ origin: "https://a.example" }), true);
        assert.equal(decide({ origin: "https://b.example" }), false);
        assert.equal(decide({ origin: "null" }), false);
        const absent = deny([{ when: [{ key: "request.headers[sec-fetch-site]", notValues: ["*"] }] }]);
        assert.equal(authorizationAllows(absent, {}, { ...client, method: "POST" }, "DEFAULT"), false, "notValues: an absent header matches");
        assert.equal(authorizationAllows(absent, {}, { ...client, method: "POST", headers: { "sec-fetch-site": "none" } }, "DEFAULT"), true);
    });

    it("on a TCP chain a DENY rule loses its HTTP fields (and refuses every connection without ports), an ALLOW rule with them matches nothing", () => {
        const tcp: HttpRequest = { ...client, method: "", port: 11112, protocol: "TCP" };
        assert.equal(authorizationAllows(deny([{ to: [{ operation: { methods: ["POST"] } }] }]), {}, tcp, "DEFAULT"), false);
        assert.equal(authorizationAllows(deny([{ when: [{ key: "request.headers[origin]", values: ["*"] }] }]), {}, tcp, "DEFAULT"), false);
        assert.equal(authorizationAllows(deny([{ to: [{ operation: { ports: ["443"], methods: ["POST"] } }] }]), {}, tcp, "DEFAULT"), true);
        const allow: PolicySpec[] = [{ action: "ALLOW", rules: [{ to: [{ operation: { ports: ["11112"], methods: ["GET"] } }] }] }];
        assert.equal(authorizationAllows(allow, {}, tcp, "DEFAULT"), false);
    });

    it("istiod's webhook checks `when` keys and warns about a DENY rule of HTTP attributes only", () => {
        const policy = (rules: Record<string, unknown>[]) =>
            istioAdmission({ apiVersion: "security.istio.io/v1", kind: "AuthorizationPolicy", metadata: { name: "p", namespace: "n" }, spec: { action: "DENY", rules } });
        assert.deepEqual(policy([{ to: [{ operation: { ports: ["443"] } }], when: [{ key: "request.headers[origin]", values: ["*"] }] }]), { errors: [], warnings: [] });
        assert.match(policy([{ to: [{ operation: { ports: ["443"] } }], when: [{ key: "request.headers", values: ["x"] }] }]).errors.join(), /should have format a\[b\]/);
        assert.match(policy([{ to: [{ operation: { ports: ["443"] } }], when: [{ key: "request.headers[origin]", notValues: [""] }] }]).errors.join(), /empty value/);
        assert.match(policy([{ to: [{ operation: { methods: ["POST"] } }] }]).warnings.join(), /deny all traffic to TCP ports/);
    });
});

for (const stack of allStacks) {
    describe(`cross-site writes on stack ${stack}`, () => {
        const config = parsedStackFile(stack);
        let resources: RecordedResource[];
        before(async () => {
            const rendered = await renderStack(stack);
            assert.equal(rendered.error, undefined);
            resources = rendered.resources.filter((r) => r.type.startsWith("kubernetes:"));
        });

        it("the gateway refuses writes a browser says come from another site, on the HTTPS port only, and lets same-origin pages, scripts and links through", () => {
            for (const tenant of config.tenants) {
                const names = tenantNames(tenant.name, config.domain);
                const other = tenantNames(config.tenants.find((t) => t.name !== tenant.name)?.name ?? "other", config.domain);
                const policies = objects(resources, "AuthorizationPolicy", names.gatewayNamespace).map((p) => plain(p.inputs.spec) as PolicySpec);
                const own = `https://${names.webHost}`;
                const decide = (method: string, headers: Record<string, string> = {}, path = "/instances") =>
                    authorizationAllows(policies, gatewayPodLabels(names), { method, path, port: ingressPorts.https, principal: "", namespace: "", headers }, "DEFAULT");
                const crossSite = { "sec-fetch-site": "cross-site", origin: "https://evil.example" };
                const refused: [string, Record<string, string>, string][] = [
                    ["POST", { ...crossSite, "content-type": "multipart/form-data; boundary=x" }, "a form upload from another site"],
                    ["POST", { ...crossSite, "content-type": "text/plain" }, "a no-cors fetch of JSON as text/plain"],
                    ["DELETE", crossSite, "a DELETE (only with CORS, which Orthanc does not grant, but refused all the same)"],
                    ["PUT", crossSite, "a PUT"],
                    ["PATCH", crossSite, "a PATCH"],
                    ["POST", { "sec-fetch-site": "same-site", origin: `https://${other.webHost}` }, "another tenant's web host (same site)"],
                    ["POST", { origin: "https://evil.example" }, "a browser without Sec-Fetch-Site, from another origin"],
                    ["POST", { origin: "null" }, "a browser without Sec-Fetch-Site, from an opaque origin"],
                    ["POST", { origin: `http://${names.webHost}` }, "the web host over plain http"],
                ];
                for (const [method, headers, why] of refused) assert.equal(decide(method, headers), false, `${tenant.name}: ${why}`);
                const admitted: [string, Record<string, string>, string][] = [
                    ["POST", { "sec-fetch-site": "same-origin", origin: own }, "Orthanc Explorer 2's own upload"],
                    ["DELETE", { "sec-fetch-site": "same-origin", origin: own }, "a same-origin DELETE"],
                    ["POST", { "sec-fetch-site": "same-origin", origin: "null" }, "a same-origin POST of a page with Referrer-Policy no-referrer"],
                    ["POST", { origin: own }, "an older browser, same origin"],
                    ["POST", { origin: `${own}:30443` }, "an older browser, same host through a node port"],
                    ["POST", {}, "a script or DICOMweb client (STOW-RS) without Origin"],
                    ["DELETE", {}, "a script's DELETE"],
                    ["POST", { "sec-fetch-site": "none" }, "a request the user started (address bar, bookmark)"],
                    ["GET", crossSite, "a link from another site (a RIS opening the viewer)"],
                    ["HEAD", crossSite, "a HEAD"],
                    ["OPTIONS", crossSite, "a CORS preflight"],
                ];
                for (const [method, headers, why] of admitted) assert.equal(decide(method, headers, "/ohif/viewer"), true, `${tenant.name}: ${why}`);
                const dicom: HttpRequest = { method: "", path: "", port: ingressPorts.dicomTls, principal: "", namespace: "", protocol: "TCP" };
                assert.equal(authorizationAllows(policies, gatewayPodLabels(names), dicom, "DEFAULT"), true, `${tenant.name}: DICOM at the gateway`);
            }
        });

        it("Orthanc's sidecar admits the gateway's DICOM associations: its DENY of admin paths holds on the REST port only", () => {
            for (const tenant of config.tenants) {
                const names = tenantNames(tenant.name, config.domain);
                const policies = objects(resources, "AuthorizationPolicy", names.namespace).map((p) => plain(p.inputs.spec) as PolicySpec);
                const fromGateway = { principal: `cluster.local/ns/${names.gatewayNamespace}/sa/${names.gatewayRelease}`, namespace: names.gatewayNamespace };
                const dicom: HttpRequest = { method: "", path: "", port: orthancPorts.dicom, protocol: "TCP", ...fromGateway };
                assert.equal(authorizationAllows(policies, orthancSelector(tenant.name), dicom, "DEFAULT"), true, tenant.name);
                const shutdown: HttpRequest = { method: "POST", path: "/tools/shutdown", port: orthancPorts.http, ...fromGateway };
                assert.equal(authorizationAllows(policies, orthancSelector(tenant.name), shutdown, "DEFAULT"), false, tenant.name);
            }
        });

        it("istiod admits every AuthorizationPolicy without the warning that a DENY refuses all TCP traffic", () => {
            const policies = resources.filter((r) => kindOf(r) === "AuthorizationPolicy");
            assert.ok(policies.some((p) => p.inputs.metadata.name === "deny-cross-site-writes"));
            for (const policy of policies) {
                const verdict = istioAdmission({ apiVersion: policy.inputs.apiVersion, kind: "AuthorizationPolicy", metadata: policy.inputs.metadata, spec: plain(policy.inputs.spec) });
                assert.deepEqual(verdict, { errors: [], warnings: [] }, `${policy.inputs.metadata.namespace}/${policy.inputs.metadata.name}`);
            }
        });

        it("Orthanc's pods get the Lua filter beside their configuration, which names it where the Secret is mounted", () => {
            for (const tenant of config.tenants) {
                const names = tenantNames(tenant.name, config.domain);
                const [secret] = objects(resources, "Secret", names.namespace).filter((r) => r.inputs.metadata.name === orthancConfigSecretName);
                const files = plain(secret.inputs.stringData) as Record<string, string>;
                assert.equal(files[crossSiteFilterFile], crossSiteFilterLua, tenant.name);
                assert.match(crossSiteFilterLua, /^function IncomingHttpRequestFilter\(method, uri, ip, username, httpHeaders\)$/m);
                const orthanc = JSON.parse(files[orthancConfigFile]);
                assert.deepEqual(orthanc.LuaScripts, [`${orthancImageLayout.secretsDirectory}/${crossSiteFilterFile}`], tenant.name);
                // The image's start-up merges /run/secrets/*.json only: the script is no configuration file to it.
                assert.ok(!crossSiteFilterFile.endsWith(".json"));
                const [deployment] = objects(resources, "Deployment", names.namespace).filter((d) => d.inputs.metadata.name === orthancDeploymentName());
                const pod = plain(deployment.inputs.spec).template.spec;
                const volume = pod.volumes.find((v: any) => v.secret?.secretName === orthancConfigSecretName);
                const mount = pod.containers[0].volumeMounts.find((m: any) => m.name === volume.name);
                assert.equal(mount.mountPath, orthancImageLayout.secretsDirectory, tenant.name);
                assert.equal(volume.secret.items, undefined, "every key of the Secret is a file of the mount");
            }
        });

        it("every answer of the web route carries HSTS, a CSP that forbids framing, nosniff and a Referrer-Policy that keeps URLs on the origin", () => {
            for (const tenant of config.tenants) {
                const names = tenantNames(tenant.name, config.domain);
                const [web] = objects(resources, "VirtualService", names.gatewayNamespace).filter((v) => v.inputs.metadata.name === "web");
                const routes = plain(web.inputs.spec).http as Record<string, any>[];
                assert.ok(routes.length > 0);
                for (const route of routes) {
                    const set = route.headers?.response?.set ?? {};
                    assert.match(set["Strict-Transport-Security"] ?? "", /^max-age=\d{7,}/, tenant.name);
                    assert.equal(set["Content-Security-Policy"], webContentSecurityPolicy);
                    assert.equal(set["X-Content-Type-Options"], "nosniff");
                    assert.equal(set["Referrer-Policy"], "same-origin");
                }
                const directives = webContentSecurityPolicy.split("; ");
                for (const directive of ["frame-ancestors 'none'", "form-action 'self'", "object-src 'none'", "default-src 'self'", "base-uri 'self'"]) {
                    assert.ok(directives.includes(directive), directive);
                }
                // No directive admits another origin: nothing but keywords, blob: and data:.
                for (const source of directives.flatMap((d) => d.split(" ").slice(1))) assert.match(source, /^('[a-z-]+'|blob:|data:)$/, source);
            }
        });
    });
}
