/**
 * The CrossGuard pack in policy/: every policy against one resource that passes and one that violates it, the whole
 * pack over both shipped stacks (zero violations), and the pack loading the way `pulumi preview --policy-pack policy`
 * loads it.
 */
import { strict as assert } from "assert";
import { execFile } from "child_process";
import { readFileSync } from "fs";
import * as path from "path";
import { parse } from "yaml";
import { policies } from "../policy/policies";
import { PolicyInput } from "../policy/rules";
import { secretSignature, secretSignatureKey } from "./support/mocks";
import { policyInput, runPack } from "./support/policyHarness";
import { renderStack, allStacks } from "./support/stacks";

const repoRoot = path.resolve(__dirname, "..");
const secret = (value: unknown) => ({ [secretSignatureKey]: secretSignature, value });

function resource(type: string, props: Record<string, any>, name = "subject"): PolicyInput {
    return { type, name, urn: `urn:pulumi:test::korthweb::${type}::${name}`, props };
}

/** A fresh copy of `subject` with `change` applied. */
function edit(subject: PolicyInput, change: (props: any) => void): PolicyInput {
    const copy = structuredClone(subject);
    change(copy.props);
    return copy;
}

const hardenedContainer = () => ({
    name: "app",
    image: "docker.io/example/app:1.2.3",
    env: [{ name: "MODE", value: "production" }, { name: "DB_PASSWORD", valueFrom: { secretKeyRef: { name: "db", key: "password" } } }],
    resources: { requests: { cpu: "100m", memory: "64Mi" }, limits: { memory: "128Mi" } },
    securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ["ALL"] } },
});

const deployment = (replicas = 2) =>
    resource(
        "kubernetes:apps/v1:Deployment",
        {
            apiVersion: "apps/v1",
            kind: "Deployment",
            metadata: { name: "app", namespace: "site-orthweb" },
            spec: {
                replicas,
                selector: { matchLabels: { app: "app" } },
                template: {
                    metadata: { labels: { app: "app", version: "1.2.3" } },
                    spec: { securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } }, containers: [hardenedContainer()] },
                },
            },
        },
        "app",
    );

const release = (values: Record<string, unknown> = {}) =>
    resource("kubernetes:helm.sh/v3:Release", { name: "gateway", chart: "gateway", version: "1.30.3", namespace: "site-orthweb", values }, "gateway");

const tenantNamespace = () =>
    resource("kubernetes:core/v1:Namespace", { metadata: { name: "site-orthweb", labels: { "istio-injection": "enabled", "korthweb.io/tenant": "site" } } }, "ns");
const strictPeerAuthentication = () =>
    resource("kubernetes:security.istio.io/v1:PeerAuthentication", { metadata: { name: "default", namespace: "site-orthweb" }, spec: { mtls: { mode: "STRICT" } } }, "pa");
const defaultDeny = () =>
    resource(
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        { metadata: { name: "default-deny", namespace: "site-orthweb" }, spec: { podSelector: {}, policyTypes: ["Ingress", "Egress"] } },
        "deny",
    );
const budget = (matchLabels: Record<string, string> = { app: "app" }) =>
    resource("kubernetes:policy/v1:PodDisruptionBudget", { metadata: { name: "app", namespace: "site-orthweb" }, spec: { maxUnavailable: 1, selector: { matchLabels } } }, "pdb");
const dicomGateway = () =>
    resource(
        "kubernetes:networking.istio.io/v1:Gateway",
        {
            metadata: { name: "dicom", namespace: "site-orthweb" },
            spec: {
                selector: { istio: "site-ingressgateway" },
                servers: [
                    {
                        port: { number: 11112, name: "tls-dicom", protocol: "TLS" },
                        hosts: ["*"],
                        tls: { mode: "MUTUAL", credentialName: "server", caCertCredentialName: "client-ca", minProtocolVersion: "TLSV1_2" },
                    },
                ],
            },
        },
        "dicom",
    );

async function violationsOf(policy: string, ...resources: PolicyInput[]): Promise<string[]> {
    return (await runPack(resources, policy)).map((v) => v.message);
}

async function assertPasses(policy: string, ...resources: PolicyInput[]) {
    assert.deepEqual(await violationsOf(policy, ...resources), []);
}

async function assertViolates(policy: string, pattern: RegExp, ...resources: PolicyInput[]) {
    const violations = await violationsOf(policy, ...resources);
    assert.ok(violations.length > 0, `${policy} reported nothing`);
    assert.ok(violations.some((v) => pattern.test(v)), `${policy}: ${JSON.stringify(violations)} does not match ${pattern}`);
}

describe("policy pack: each policy", () => {
    it("has a test below", () => {
        const tested = ["images-pinned", "container-resources", "container-security-context", "no-secret-material-in-configmaps-or-env", "peer-authentication-strict",
            "tenant-namespace-strict-mtls", "tenant-namespace-network-policy", "dicom-gateway-mutual-tls", "pdb-for-replicated-deployments", "helm-release-pinned-and-named"];
        assert.deepEqual(policies.map((p) => p.name).sort(), [...tested].sort());
    });

    describe("images-pinned", () => {
        it("passes tagged and digest-pinned images", async () => {
            await assertPasses("images-pinned", deployment());
            await assertPasses("images-pinned", edit(deployment(), (p) => (p.spec.template.spec.containers[0].image = `registry:5000/app@sha256:${"a".repeat(64)}`)));
            await assertPasses("images-pinned", release({ image: { registry: "docker.io", repository: "bitnamilegacy/pgpool", tag: "4.6.3-debian-12-r0" } }));
        });
        it("rejects latest, untagged and empty images in workloads", async () => {
            await assertViolates("images-pinned", /not pinned/, edit(deployment(), (p) => (p.spec.template.spec.containers[0].image = "docker.io/example/app:latest")));
            await assertViolates("images-pinned", /not pinned/, edit(deployment(), (p) => (p.spec.template.spec.containers[0].image = "registry:5000/app")));
            await assertViolates("images-pinned", /initContainers\[0\]/, edit(deployment(), (p) => (p.spec.template.spec.initContainers = [{ name: "init", image: "" }])));
        });
        it("rejects latest or missing tags in Helm values", async () => {
            await assertViolates("images-pinned", /values\.deployment\.image_version/, release({ deployment: { image_version: "latest" } }));
            await assertViolates("images-pinned", /without a tag/, release({ postgresql: { image: { registry: "docker.io", repository: "bitnamilegacy/pgpool" } } }));
            await assertViolates("images-pinned", /values\.image\.tag/, release({ image: { repository: "x/y", tag: "" } }));
        });
    });

    describe("container-resources", () => {
        it("passes containers and chart resources with requests and a memory limit", async () => {
            await assertPasses("container-resources", deployment(), release({ resources: { requests: { cpu: "1", memory: "1Gi" }, limits: { memory: "2Gi" } } }));
        });
        it("rejects a container without a memory limit or requests", async () => {
            await assertViolates("container-resources", /limits\.memory/, edit(deployment(), (p) => delete p.spec.template.spec.containers[0].resources.limits));
            await assertViolates("container-resources", /requests\.cpu/, edit(deployment(), (p) => delete p.spec.template.spec.containers[0].resources.requests.cpu));
        });
        it("rejects an incomplete resources block in Helm values", async () => {
            await assertViolates("container-resources", /values\.pgpool\.resources lacks limits\.memory/, release({ pgpool: { resources: { requests: { cpu: "1", memory: "1Gi" } } } }));
        });
    });

    describe("container-security-context", () => {
        it("passes a hardened pod", async () => {
            await assertPasses("container-security-context", deployment());
        });
        for (const [what, change, pattern] of [
            ["runAsNonRoot off", (c: any) => (c.securityContext.runAsNonRoot = false), /runAsNonRoot/],
            ["privilege escalation", (c: any) => delete c.securityContext.allowPrivilegeEscalation, /allowPrivilegeEscalation/],
            ["a writable root filesystem", (c: any) => (c.securityContext.readOnlyRootFilesystem = false), /readOnlyRootFilesystem/],
            ["capabilities kept", (c: any) => (c.securityContext.capabilities = { drop: ["NET_RAW"] }), /drop/],
            ["capabilities added", (c: any) => (c.securityContext.capabilities.add = ["SYS_ADMIN"]), /SYS_ADMIN/],
            ["privileged", (c: any) => (c.securityContext.privileged = true), /privileged/],
            ["root user", (c: any) => (c.securityContext.runAsUser = 0), /runAsUser/],
        ] as [string, (c: any) => void, RegExp][]) {
            it(`rejects ${what}`, async () => {
                await assertViolates("container-security-context", pattern, edit(deployment(), (p) => change(p.spec.template.spec.containers[0])));
            });
        }
        it("rejects a pod without seccomp or sharing the host network", async () => {
            await assertViolates("container-security-context", /seccompProfile/, edit(deployment(), (p) => delete p.spec.template.spec.securityContext.seccompProfile));
            await assertViolates("container-security-context", /hostNetwork/, edit(deployment(), (p) => (p.spec.template.spec.hostNetwork = true)));
        });
        it("rejects Helm values that loosen a chart's security context", async () => {
            await assertPasses("container-security-context", release({ containerSecurityContext: { runAsNonRoot: true } }));
            await assertViolates("container-security-context", /runAsNonRoot is false/, release({ postgresql: { containerSecurityContext: { runAsNonRoot: false } } }));
        });
    });

    describe("no-secret-material-in-configmaps-or-env", () => {
        const configMap = (data: Record<string, unknown>) => resource("kubernetes:core/v1:ConfigMap", { metadata: { name: "cfg", namespace: "site-orthweb" }, data }, "cfg");
        it("passes plain configuration and secret references", async () => {
            await assertPasses("no-secret-material-in-configmaps-or-env", configMap({ "orthanc.json": "{}", LOG_LEVEL: "info" }), deployment());
        });
        it("rejects credentials, private keys and Pulumi secrets in a ConfigMap", async () => {
            await assertViolates("no-secret-material-in-configmaps-or-env", /data\.password/, configMap({ password: "hunter2" }));
            await assertViolates("no-secret-material-in-configmaps-or-env", /PEM private key/, configMap({ "tls.crt": "-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----" }));
            await assertViolates("no-secret-material-in-configmaps-or-env", /Pulumi secret/, configMap({ "orthanc.json": secret("{\"RegisteredUsers\":{}}") }));
            await assertViolates("no-secret-material-in-configmaps-or-env", /Pulumi secret/, resource("kubernetes:core/v1:ConfigMap", { data: secret({ a: "b" }) }));
        });
        it("rejects literal credentials and Pulumi secrets in container env", async () => {
            await assertViolates("no-secret-material-in-configmaps-or-env", /env API_TOKEN/, edit(deployment(), (p) => p.spec.template.spec.containers[0].env.push({ name: "API_TOKEN", value: "abc" })));
            await assertViolates("no-secret-material-in-configmaps-or-env", /Pulumi secret/, edit(deployment(), (p) => p.spec.template.spec.containers[0].env.push({ name: "CONFIG", value: secret("x") })));
            await assertViolates("no-secret-material-in-configmaps-or-env", /Pulumi secret/, edit(deployment(), (p) => (p.spec = secret(p.spec))));
        });
    });

    describe("peer-authentication-strict", () => {
        it("passes STRICT", async () => {
            await assertPasses("peer-authentication-strict", strictPeerAuthentication());
        });
        it("rejects PERMISSIVE and DISABLE, namespace-wide or per port", async () => {
            await assertViolates("peer-authentication-strict", /PERMISSIVE/, edit(strictPeerAuthentication(), (p) => (p.spec.mtls.mode = "PERMISSIVE")));
            await assertViolates("peer-authentication-strict", /portLevelMtls\[8042\]/, edit(strictPeerAuthentication(), (p) => (p.spec.portLevelMtls = { 8042: { mode: "DISABLE" } })));
        });
    });

    describe("tenant-namespace-strict-mtls", () => {
        it("passes a tenant namespace with injection and a STRICT PeerAuthentication", async () => {
            await assertPasses("tenant-namespace-strict-mtls", tenantNamespace(), strictPeerAuthentication());
        });
        it("rejects a tenant namespace without STRICT mutual TLS", async () => {
            await assertViolates("tenant-namespace-strict-mtls", /no namespace-wide PeerAuthentication/, tenantNamespace());
            await assertViolates("tenant-namespace-strict-mtls", /no namespace-wide/, tenantNamespace(), edit(strictPeerAuthentication(), (p) => (p.spec.mtls.mode = "PERMISSIVE")));
            await assertViolates("tenant-namespace-strict-mtls", /no namespace-wide/, tenantNamespace(), edit(strictPeerAuthentication(), (p) => (p.spec.selector = { matchLabels: { app: "x" } })));
        });
        it("rejects a tenant namespace without sidecar injection", async () => {
            await assertViolates("tenant-namespace-strict-mtls", /istio-injection/, edit(tenantNamespace(), (p) => (p.metadata.labels["istio-injection"] = "disabled")), strictPeerAuthentication());
        });
        it("ignores namespaces outside the mesh", async () => {
            await assertPasses("tenant-namespace-strict-mtls", resource("kubernetes:core/v1:Namespace", { metadata: { name: "cert-manager", labels: { "istio-injection": "disabled" } } }));
        });
    });

    describe("tenant-namespace-network-policy", () => {
        it("passes a tenant namespace with a default-deny policy", async () => {
            await assertPasses("tenant-namespace-network-policy", tenantNamespace(), defaultDeny());
        });
        it("rejects a tenant namespace without NetworkPolicy or without default deny", async () => {
            await assertViolates("tenant-namespace-network-policy", /has no NetworkPolicy/, tenantNamespace());
            await assertViolates("tenant-namespace-network-policy", /default-deny/, tenantNamespace(), edit(defaultDeny(), (p) => (p.spec.policyTypes = ["Ingress"])));
            await assertViolates("tenant-namespace-network-policy", /default-deny/, tenantNamespace(), edit(defaultDeny(), (p) => (p.spec.ingress = [{}])));
        });
    });

    describe("dicom-gateway-mutual-tls", () => {
        it("passes MUTUAL TLS with TLS 1.2 or 1.3", async () => {
            await assertPasses("dicom-gateway-mutual-tls", dicomGateway(), edit(dicomGateway(), (p) => (p.spec.servers[0].tls.minProtocolVersion = "TLSV1_3")));
        });
        it("rejects SIMPLE, PASSTHROUGH and old or missing minimum versions", async () => {
            await assertViolates("dicom-gateway-mutual-tls", /not MUTUAL/, edit(dicomGateway(), (p) => (p.spec.servers[0].tls.mode = "SIMPLE")));
            await assertViolates("dicom-gateway-mutual-tls", /not MUTUAL/, edit(dicomGateway(), (p) => (p.spec.servers[0].tls = { mode: "PASSTHROUGH" })));
            await assertViolates("dicom-gateway-mutual-tls", /minProtocolVersion is TLSV1_1/, edit(dicomGateway(), (p) => (p.spec.servers[0].tls.minProtocolVersion = "TLSV1_1")));
            await assertViolates("dicom-gateway-mutual-tls", /minProtocolVersion is unset/, edit(dicomGateway(), (p) => delete p.spec.servers[0].tls.minProtocolVersion));
        });
        it("finds DICOM servers by port number or name as well as protocol", async () => {
            await assertViolates("dicom-gateway-mutual-tls", /DICOM server/, edit(dicomGateway(), (p) => (p.spec.servers[0] = { port: { number: 11112, name: "tcp", protocol: "TCP" }, hosts: ["*"] })));
            await assertPasses("dicom-gateway-mutual-tls", edit(dicomGateway(), (p) => (p.spec.servers[0] = { port: { number: 443, name: "https", protocol: "HTTPS" }, hosts: ["*"], tls: { mode: "SIMPLE" } })));
        });
    });

    describe("pdb-for-replicated-deployments", () => {
        it("passes a replicated Deployment with a matching budget, and a single replica without one", async () => {
            await assertPasses("pdb-for-replicated-deployments", deployment(), budget());
            await assertPasses("pdb-for-replicated-deployments", deployment(1));
        });
        it("rejects a replicated Deployment without a budget selecting its pods", async () => {
            await assertViolates("pdb-for-replicated-deployments", /runs 2 replicas/, deployment());
            await assertViolates("pdb-for-replicated-deployments", /runs 2 replicas/, deployment(), budget({ app: "other" }));
            await assertViolates("pdb-for-replicated-deployments", /runs 2 replicas/, deployment(), edit(budget(), (p) => (p.metadata.namespace = "elsewhere")));
        });
        it("counts an autoscaler's minimum as replicas", async () => {
            const hpa = resource("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", {
                metadata: { name: "app", namespace: "site-orthweb" },
                spec: { scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "app" }, minReplicas: 3, maxReplicas: 5 },
            });
            await assertViolates("pdb-for-replicated-deployments", /runs 3 replicas/, deployment(1), hpa);
        });
    });

    describe("helm-release-pinned-and-named", () => {
        it("passes an exact version and a fixed name", async () => {
            await assertPasses("helm-release-pinned-and-named", release(), edit(release(), (p) => (p.version = "v1.21.1")));
        });
        it("rejects ranges, empty versions and missing names", async () => {
            for (const version of ["", "^1.30.0", "1.30.x", "~1.30", ">=1.0.0", undefined]) {
                await assertViolates("helm-release-pinned-and-named", /not an exact version/, edit(release(), (p) => (p.version = version)));
            }
            await assertViolates("helm-release-pinned-and-named", /no fixed, valid name/, edit(release(), (p) => delete p.name));
        });
    });
});

for (const stack of allStacks) {
    describe(`policy pack over the whole program on stack ${stack}`, () => {
        it("reports no violation", async () => {
            const rendered = await renderStack(stack);
            assert.equal(rendered.error, undefined);
            const violations = await runPack(rendered.resources.map(policyInput));
            assert.deepEqual(violations.map((v) => `${v.policy}: ${v.message}`), []);
        });

        it("has something to check for every policy", async () => {
            // A policy that never meets a resource it applies to would pass vacuously.
            const types = new Set((await renderStack(stack)).resources.map((r) => r.type));
            for (const type of [
                "kubernetes:apps/v1:Deployment",
                "kubernetes:helm.sh/v3:Release",
                "kubernetes:core/v1:Namespace",
                "kubernetes:security.istio.io/v1:PeerAuthentication",
                "kubernetes:networking.k8s.io/v1:NetworkPolicy",
                "kubernetes:networking.istio.io/v1:Gateway",
                "kubernetes:policy/v1:PodDisruptionBudget",
            ]) {
                assert.ok(types.has(type), `the ${stack} stack has no ${type}`);
            }
        });
    });
}

describe("policy pack as the Pulumi CLI loads it", () => {
    it("is a nodejs pack whose entry point is index.ts", () => {
        const manifest = parse(readFileSync(path.join(repoRoot, "policy", "PulumiPolicy.yaml"), "utf8")) as { runtime: string; description: string };
        assert.equal(manifest.runtime, "nodejs");
        assert.ok(manifest.description);
        const pkg = JSON.parse(readFileSync(path.join(repoRoot, "policy", "package.json"), "utf8"));
        assert.equal(pkg.main, "index.ts");
        assert.match(pkg.version, /^\d+\.\d+\.\d+$/, "PolicyPack reads its version from the pack's package.json");
    });

    it("declares the pack korthweb with every policy mandatory", async () => {
        // Loaded in its own process, from the pack directory like the policy host does, with the gRPC server replaced.
        const script = [
            "const server = require('@pulumi/policy/server');",
            "server.serve = (name, version, level, args) => process.stdout.write(JSON.stringify({ name, version, level,",
            "  policies: args.policies.map((p) => ({ name: p.name, level: p.enforcementLevel, kind: p.validateStack ? 'stack' : 'resource' })) }));",
            "require('./index.ts');",
        ].join("\n");
        const stdout = await new Promise<string>((resolve, reject) =>
            execFile(process.execPath, ["-r", "ts-node/register/transpile-only", "-e", script], { cwd: path.join(repoRoot, "policy") }, (error, out, err) =>
                error ? reject(new Error(err || error.message)) : resolve(out),
            ),
        );
        const pack = JSON.parse(stdout) as { name: string; level: string; policies: { name: string; level: string }[] };
        assert.equal(pack.name, "korthweb");
        assert.equal(pack.level, "mandatory");
        assert.deepEqual(pack.policies.map((p) => p.name), policies.map((p) => p.name));
        for (const policy of pack.policies) {
            assert.equal(policy.level, "mandatory", `${policy.name} is not mandatory`);
        }
    });
});
