/**
 * Who can get a certificate from a tenant's issuer (issue 18 item 2): cert-manager's and approver-policy's decisions
 * (modelled in tests/upstream/certManager.ts at the pinned versions) applied to the rendered stacks' releases,
 * policies and RBAC. Nothing here runs cert-manager: the evaluation is read from upstream and modelled.
 */
import { strict as assert } from "assert";
import { tenantNames } from "../components/naming/tenantNames";
import { charts } from "../components/versions";
import { RecordedResource } from "./support/mocks";
import { parsedStackFile, releases, renderStack, RenderedStack, shippedStacks } from "./support/stacks";
import {
    approverPolicyReview,
    approverPolicyValueKeys,
    CertificateRequestFacts,
    certManagerAutoApproves,
    editorsMayRequestCertificates,
    PolicySpec,
    RbacBinding,
    RbacRole,
    requestForCertificate,
    Review,
    serviceAccountUser,
} from "./upstream/certManager";

/** cert-manager's controller, as the chart names it for the release "cert-manager" in "cert-manager". */
const controller = { name: "cert-manager", namespace: "cert-manager" };

/** What the cluster decides about requests, from a rendered stack. */
function cluster(rendered: RenderedStack) {
    const release = (chart: string) => releases(rendered).find((r) => r.inputs.chart === chart);
    const certManagerValues = release(charts.certManager.chart)!.inputs.values as Record<string, any>;
    const approverPolicy = release(charts.approverPolicy.chart);
    const objects = (kind: string) => rendered.resources.filter((r) => r.type.startsWith("kubernetes:") && r.type.endsWith(`:${kind}`));
    const policies = approverPolicy
        ? objects("CertificateRequestPolicy").map((r) => ({ name: r.inputs.metadata.name as string, spec: r.inputs.spec as PolicySpec }))
        : [];
    const roles: RbacRole[] = [
        ...objects("Role").map((r) => ({ kind: "Role" as const, name: r.inputs.metadata.name, namespace: r.inputs.metadata.namespace, rules: r.inputs.rules })),
        ...objects("ClusterRole").map((r) => ({ kind: "ClusterRole" as const, name: r.inputs.metadata.name, rules: r.inputs.rules ?? [] })),
    ];
    const bindings: RbacBinding[] = [
        ...objects("RoleBinding").map((r) => ({ kind: "RoleBinding" as const, namespace: r.inputs.metadata.namespace, roleRef: r.inputs.roleRef, subjects: r.inputs.subjects })),
        ...objects("ClusterRoleBinding").map((r) => ({ kind: "ClusterRoleBinding" as const, roleRef: r.inputs.roleRef, subjects: r.inputs.subjects })),
    ];
    /** Approved, by cert-manager's own approver or by approver-policy; else what approver-policy said. */
    const decide = (request: CertificateRequestFacts): Review => {
        if (certManagerAutoApproves(certManagerValues, request)) {
            return { result: "approved", policy: "cert-manager's auto-approver" };
        }
        return approverPolicy ? approverPolicyReview(request, policies, { roles, bindings }) : { result: "unprocessed", reason: "no approver" };
    };
    return { certManagerValues, approverPolicy, policies, decide };
}

/** The rendered gateway Certificate of a tenant. */
function gatewayCertificate(rendered: RenderedStack, tenant: string): RecordedResource {
    const names = tenantNames(tenant, parsedStackFile("dev").domain);
    const found = rendered.resources.filter((r) => r.type.endsWith(":Certificate") && r.inputs.metadata.namespace === names.gatewayNamespace);
    assert.equal(found.length, 1, `one Certificate in ${names.gatewayNamespace}`);
    return found[0];
}

/** A request like the gateway's, changed by `change`. */
function like(certificate: RecordedResource, change: Partial<CertificateRequestFacts>): CertificateRequestFacts {
    return { ...requestForCertificate({ namespace: certificate.inputs.metadata.namespace, spec: certificate.inputs.spec }, controller), ...change };
}

for (const stack of shippedStacks) {
    describe(`certificate issuance on stack ${stack}`, () => {
        it("approves each tenant gateway's own Certificate, through its tenant's policy", async () => {
            const rendered = await renderStack(stack);
            const { decide } = cluster(rendered);
            for (const tenant of parsedStackFile(stack).tenants) {
                const certificate = gatewayCertificate(rendered, tenant.name);
                const review = decide(like(certificate, {}));
                assert.deepEqual(review, { result: "approved", policy: `korthweb-${tenant.name}-gateway-server` });
            }
        });

        it("gives namespace editors no cert-manager rights, and approves nothing for naming a cert-manager issuer", async () => {
            const { certManagerValues } = cluster(await renderStack(stack));
            assert.equal(editorsMayRequestCertificates(certManagerValues), false, "edit/admin aggregate cert-manager-edit");
            assert.equal(certManagerAutoApproves(certManagerValues, { issuerRef: { name: "korthweb-bhs-ca", kind: "ClusterIssuer" }, namespace: "other" }), false);
        });

        it("leaves unapproved what anyone else asks of a tenant's issuer: another namespace, another tenant's host, a CA, a user's own request", async () => {
            const rendered = await renderStack(stack);
            const { decide } = cluster(rendered);
            const tenants = parsedStackFile(stack).tenants.map((t) => t.name);
            const domain = parsedStackFile(stack).domain;
            for (const tenant of tenants) {
                const certificate = gatewayCertificate(rendered, tenant);
                const names = tenantNames(tenant, domain);
                const issuerRef = certificate.inputs.spec.issuerRef;
                const attempts: [string, CertificateRequestFacts, Review["result"]][] = [
                    // An editor of another namespace, given cert-manager-edit there: their Certificate becomes the
                    // controller's request in their namespace, which no policy selects.
                    ["a Certificate for the tenant's DICOM host in another namespace", like(certificate, { namespace: "other", commonName: names.dicomHost, dnsNames: [names.dicomHost] }), "unprocessed"],
                    // A user's own CertificateRequest in the gateway namespace: the policy is bound to the controller only.
                    ["a user's CertificateRequest in the gateway namespace", like(certificate, { username: "mallory" }), "unprocessed"],
                    ["a request for a CA certificate", like(certificate, { isCA: true, usages: [...certificate.inputs.spec.usages, "cert sign"] }), "denied"],
                    ["a request for a host outside the tenant", like(certificate, { dnsNames: [names.webHost, `evil.${domain}`] }), "denied"],
                    ["a request for a longer life", like(certificate, { durationHours: 10 * 365 * 24 }), "denied"],
                    ["a request with a weaker key", like(certificate, { key: { algorithm: "RSA", size: 1024 } }), "denied"],
                ];
                for (const other of tenants.filter((t) => t !== tenant)) {
                    // Another tenant's gateway namespace asking this tenant's issuer, for this tenant's or its own hosts.
                    const theirs = tenantNames(other, domain);
                    attempts.push([`${other}'s gateway namespace asking ${tenant}'s issuer`, like(certificate, { namespace: theirs.gatewayNamespace }), "unprocessed"]);
                    attempts.push([
                        `${tenant}'s gateway namespace asking ${other}'s issuer for ${other}'s hosts`,
                        like(certificate, { issuerRef: { ...issuerRef, name: `korthweb-${other}-ca` }, commonName: theirs.webHost, dnsNames: [theirs.webHost, theirs.dicomHost] }),
                        "unprocessed",
                    ]);
                }
                for (const [what, request, expected] of attempts) {
                    const review = decide(request);
                    assert.equal(review.result, expected, `${tenant}: ${what}: ${JSON.stringify(review)}`);
                }
            }
        });

        it("passes approver-policy only values its chart's schema admits", async () => {
            const { approverPolicy } = cluster(await renderStack(stack));
            assert.ok(approverPolicy, "approver-policy is installed");
            assert.equal(approverPolicy.inputs.version, charts.approverPolicy.version);
            assert.equal(approverPolicy.inputs.namespace, controller.namespace);
            const values = approverPolicy.inputs.values as Record<string, any>;
            const unknown = [
                ...Object.keys(values).filter((key) => !approverPolicyValueKeys[""].includes(key)),
                ...Object.entries(approverPolicyValueKeys)
                    .filter(([key]) => key !== "" && typeof values[key] === "object")
                    .flatMap(([key, allowed]) => Object.keys(values[key]).filter((k) => !allowed.includes(k)).map((k) => `${key}.${k}`)),
            ];
            assert.deepEqual(unknown, []);
        });
    });
}

describe("certificate issuance on stack cnpg: the Barman Cloud plugin's own certificates", () => {
    /**
     * The plugin chart's two Certificates (cloudnative-pg/charts at plugin-barman-cloud-v0.7.0,
     * templates/client-certificate.yaml and server-certificate.yaml, default values; cert-manager's default key is
     * RSA 2048): with auto-approval off they are issued only if a policy admits them, and the release waits for the
     * Deployment that mounts them.
     */
    const issuerRef = { group: "cert-manager.io", kind: "Issuer", name: "plugin-barman-cloud-selfsigned-issuer" };
    const common = { namespace: "cnpg-system", username: serviceAccountUser(controller), issuerRef, isCA: false, organizations: [], durationHours: 2160, key: { algorithm: "RSA" as const, size: 2048 } };
    const chartCertificates: [string, CertificateRequestFacts][] = [
        ["barman-cloud-client", { ...common, commonName: "barman-cloud-client", dnsNames: [], usages: ["client auth"] }],
        ["barman-cloud-server", { ...common, commonName: "barman-cloud", dnsNames: ["barman-cloud"], usages: ["server auth"] }],
    ];

    it("approves both, and nothing of that issuer requested elsewhere or as a CA", async () => {
        const { decide } = cluster(await renderStack("cnpg"));
        for (const [name, request] of chartCertificates) {
            assert.equal(decide(request).result, "approved", name);
            assert.equal(decide({ ...request, namespace: "bhs-orthweb" }).result, "unprocessed", `${name} from another namespace`);
            assert.equal(decide({ ...request, isCA: true }).result, "denied", `${name} as a CA`);
        }
    });
});

describe("the issuance model itself", () => {
    it("with cert-manager's defaults, an editor of any namespace gets dicom.bhs from korthweb-bhs-ca (the hole it closes)", () => {
        const request: CertificateRequestFacts = {
            namespace: "other",
            username: serviceAccountUser(controller),
            issuerRef: { name: "korthweb-bhs-ca", kind: "ClusterIssuer", group: "cert-manager.io" },
            isCA: false,
            usages: ["server auth"],
            dnsNames: ["dicom.bhs.example.org"],
            organizations: [],
            key: { algorithm: "RSA", size: 2048 },
        };
        assert.equal(editorsMayRequestCertificates({}), true);
        assert.equal(certManagerAutoApproves({}, request), true);
        // approver-policy with a policy but no binding for the requester: nothing applies.
        const policy = { name: "p", spec: { selector: { issuerRef: { name: "korthweb-bhs-ca" } }, allowed: { dnsNames: { values: ["*"] } } } };
        assert.equal(approverPolicyReview(request, [policy], { roles: [], bindings: [] }).result, "unprocessed");
    });
});
