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
                        tls: {
                            mode: "MUTUAL",
                            credentialName: "server",
                            caCertCredentialName: "dicom-clients-cacert",
                            minProtocolVersion: "TLSV1_2",
                            verifyCertificateHash: ["a".repeat(64)],
                        },
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
        const tested = ["images-pinned", "container-resources", "container-security-context", "no-secret-material-in-configmaps-or-env", "no-credentials-on-command-lines",
            "peer-authentication-strict", "tenant-namespace-strict-mtls", "tenant-namespace-network-policy", "tenant-namespace-authorization-deny-by-default",
            "no-allow-all-network-policy", "no-allow-all-authorization-policy", "dicom-gateway-mutual-tls", "gateway-tls-minimum-version",
            "pdb-for-replicated-deployments", "helm-release-pinned-and-named"];
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
        it("rejects a bare major version or a word as a tag, and passes release tags and digests", async () => {
            for (const tag of ["17", "v2", "17-alpine", "stable", "bookworm"]) {
                await assertViolates("images-pinned", /not pinned/, edit(deployment(), (p) => (p.spec.template.spec.containers[0].image = `docker.io/library/postgres:${tag}`)));
                await assertViolates("images-pinned", /values\.postgresql\.image\.tag/, release({ postgresql: { image: { registry: "docker.io", repository: "bitnamilegacy/postgresql-repmgr", tag } } }));
            }
            await assertViolates("images-pinned", /values\.postgresql\.image\.tag/, release({ postgresql: { image: { repository: "bitnamilegacy/postgresql-repmgr", tag: 17 } } }));
            for (const tag of ["17.6", "17.6.0-debian-12-r2", "12-debian-12-r51", "18.4-system-trixie", "v2.20.0"]) {
                await assertPasses("images-pinned", edit(deployment(), (p) => (p.spec.template.spec.containers[0].image = `docker.io/library/postgres:${tag}`)));
            }
            // A digest beside a floating tag pins the image: the runtime pulls by the digest.
            await assertPasses("images-pinned", release({ image: { repository: "x/y", tag: "17", digest: `sha256:${"b".repeat(64)}` } }));
            await assertPasses("images-pinned", edit(deployment(), (p) => (p.spec.template.spec.containers[0].image = `docker.io/library/postgres:17@sha256:${"c".repeat(64)}`)));
        });
        it("checks the images CloudNativePG runs: a Cluster's imageName, catalogs and a Pooler's containers", async () => {
            const cluster = (imageName: string) =>
                resource("kubernetes:postgresql.cnpg.io/v1:Cluster", { metadata: { name: "postgresql", namespace: "site-orthweb" }, spec: { instances: 3, imageName } });
            await assertPasses("images-pinned", cluster("ghcr.io/cloudnative-pg/postgresql:18.4-system-trixie"));
            await assertViolates("images-pinned", /spec\.imageName uses image "ghcr\.io\/cloudnative-pg\/postgresql:17"/, cluster("ghcr.io/cloudnative-pg/postgresql:17"));
            await assertViolates("images-pinned", /spec\.images\[0\]\.image/,
                resource("kubernetes:postgresql.cnpg.io/v1:ImageCatalog", { metadata: { name: "c", namespace: "site-orthweb" }, spec: { images: [{ major: 17, image: "ghcr.io/cloudnative-pg/postgresql:17" }] } }));
            const pooler = (image?: string) =>
                resource("kubernetes:postgresql.cnpg.io/v1:Pooler", {
                    metadata: { name: "pooler", namespace: "site-orthweb" },
                    spec: { cluster: { name: "postgresql" }, template: { spec: { containers: [{ name: "pgbouncer", ...(image ? { image } : {}) }] } } },
                });
            await assertPasses("images-pinned", pooler());
            await assertViolates("images-pinned", /containers\[0\] pgbouncer uses image/, pooler("ghcr.io/cloudnative-pg/pgbouncer:1"));
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
        it("rejects Helm values that switch a chart's security context off or enable its root init container", async () => {
            await assertPasses("container-security-context", release({ postgresql: { containerSecurityContext: { enabled: true } }, volumePermissions: { enabled: false } }));
            await assertViolates("container-security-context", /values\.postgresql\.containerSecurityContext\.enabled is false/, release({ postgresql: { containerSecurityContext: { enabled: false } } }));
            await assertViolates("container-security-context", /values\.pgpool\.podSecurityContext\.enabled is false/, release({ pgpool: { podSecurityContext: { enabled: false } } }));
            await assertViolates("container-security-context", /values\.volumePermissions\.enabled is true/, release({ volumePermissions: { enabled: true } }));
            await assertViolates("container-security-context", /readOnlyRootFilesystem is false/, release({ securityContext: { readOnlyRootFilesystem: false } }));
            await assertViolates("container-security-context", /seccompProfile\.type is Unconfined/, release({ securityContext: { seccompProfile: { type: "Unconfined" } } }));
            await assertViolates("container-security-context", /capabilities\.add includes NET_ADMIN/, release({ securityContext: { capabilities: { add: ["NET_ADMIN"] } } }));
            await assertViolates("container-security-context", /values\.hostNetwork is true/, release({ hostNetwork: true }));
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
        it("rejects credentials inside a plain environment value, whatever the variable's name", async () => {
            const withEnv = (value: string) => edit(deployment(), (p) => p.spec.template.spec.containers[0].env.push({ name: "DATABASE", value }));
            await assertViolates("no-secret-material-in-configmaps-or-env", /env DATABASE holds a URL with a password/, withEnv("postgresql://orthanc:hunter2@postgresql:5432/orthanc"));
            await assertViolates("no-secret-material-in-configmaps-or-env", /env DATABASE passes password with a literal value/, withEnv("host=postgresql user=orthanc password=hunter2"));
            await assertPasses("no-secret-material-in-configmaps-or-env", withEnv("host=postgresql user=orthanc password=$(DB_PASSWORD)"), withEnv("postgresql://postgresql:5432/orthanc"));
            await assertViolates("no-secret-material-in-configmaps-or-env", /values\.env ADMIN_PASSWORD/, release({ env: { ADMIN_PASSWORD: "hunter2" } }));
            await assertViolates("no-secret-material-in-configmaps-or-env", /values\.pgpool\.extraEnvVars DSN holds a URL/, release({ pgpool: { extraEnvVars: [{ name: "DSN", value: "postgres://a:b@c/d" }] } }));
            await assertPasses("no-secret-material-in-configmaps-or-env", release({ env: { PILOT_SCOPE_GATEWAY_TO_NAMESPACE: "true" } }));
        });
    });

    describe("no-credentials-on-command-lines", () => {
        const withArgs = (field: "args" | "command", words: string[]) => edit(deployment(), (p) => (p.spec.template.spec.containers[0][field] = words));
        it("passes command lines without credentials, and credentials by reference or file", async () => {
            await assertPasses("no-credentials-on-command-lines", deployment(), withArgs("command", ["/bin/sh", "-c", "head -c 4 /dev/urandom > /run/hostid/hostid"]));
            await assertPasses("no-credentials-on-command-lines", withArgs("args", ["--password-file=/run/secrets/db/password", "--password", "$(DB_PASSWORD)", "--token-path", "/var/run/token"]));
            await assertPasses("no-credentials-on-command-lines", withArgs("command", ["/bin/sh", "-c", "PGPASSWORD=$(cat /run/secrets/pw) pg_dump -h pgpool"]));
        });
        for (const [what, field, words, pattern] of [
            ["--password=value", "args", ["--password=hunter2"], /args passes --password with a literal value/],
            ["--db-password value", "args", ["--db-password", "hunter2"], /args passes --db-password with a literal value/],
            ["a password in a shell script", "command", ["/bin/sh", "-c", "PGPASSWORD=hunter2 pg_dump -h pgpool"], /command passes PGPASSWORD/],
            ["a URL with a password", "args", ["--dsn", "postgresql://orthanc:hunter2@pgpool/orthanc"], /holds a URL with a password/],
            ["an API token", "args", ["--api-key=abc123"], /passes --api-key/],
        ] as [string, "args" | "command", string[], RegExp][]) {
            it(`rejects ${what} in ${field}`, async () => {
                await assertViolates("no-credentials-on-command-lines", pattern, withArgs(field, words));
            });
        }
        it("rejects a credential in a chart's command line or in an init container", async () => {
            await assertViolates("no-credentials-on-command-lines", /values\.pgpool\.extraArgs passes --password/, release({ pgpool: { extraArgs: ["--password=hunter2"] } }));
            await assertViolates("no-credentials-on-command-lines", /initContainers\[0\] init args/,
                edit(deployment(), (p) => (p.spec.template.spec.initContainers = [{ ...p.spec.template.spec.containers[0], name: "init", args: ["-token", "s3cr3t"] }])));
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

    describe("tenant-namespace-authorization-deny-by-default", () => {
        const allowNothing = () =>
            resource("kubernetes:security.istio.io/v1:AuthorizationPolicy", { metadata: { name: "deny-by-default", namespace: "site-orthweb" }, spec: {} }, "allow-nothing");
        it("passes a tenant namespace with an allow-nothing policy", async () => {
            await assertPasses("tenant-namespace-authorization-deny-by-default", tenantNamespace(), allowNothing());
        });
        it("rejects a tenant namespace without one, or with one that selects some workloads only", async () => {
            await assertViolates("tenant-namespace-authorization-deny-by-default", /no allow-nothing AuthorizationPolicy/, tenantNamespace());
            await assertViolates("tenant-namespace-authorization-deny-by-default", /no allow-nothing/, tenantNamespace(), edit(allowNothing(), (p) => (p.spec.selector = { matchLabels: { app: "x" } })));
            await assertViolates("tenant-namespace-authorization-deny-by-default", /no allow-nothing/, tenantNamespace(), edit(allowNothing(), (p) => (p.spec.rules = [{}])));
        });
    });

    describe("no-allow-all-network-policy", () => {
        const allowAll = (direction: "ingress" | "egress", rule: Record<string, unknown>) =>
            edit(defaultDeny(), (p) => {
                p.metadata.name = "allow";
                p.spec.policyTypes = [direction === "ingress" ? "Ingress" : "Egress"];
                p.spec[direction] = [rule];
            });
        it("passes the default deny and rules that name their peers or their ports", async () => {
            await assertPasses("no-allow-all-network-policy", defaultDeny(), allowAll("ingress", { ports: [{ port: 443, protocol: "TCP" }] }));
            await assertPasses("no-allow-all-network-policy", allowAll("ingress", { from: [{ podSelector: {} }] }));
            await assertPasses("no-allow-all-network-policy", allowAll("egress", { to: [{ ipBlock: { cidr: "0.0.0.0/0" } }], ports: [{ port: 443, protocol: "TCP" }] }));
            await assertPasses("no-allow-all-network-policy", allowAll("ingress", { from: [{ namespaceSelector: {}, podSelector: { matchLabels: { app: "prometheus" } } }] }));
        });
        for (const [what, direction, rule] of [
            ["an empty ingress rule", "ingress", {}],
            ["an empty egress rule", "egress", {}],
            ["every namespace on every port", "ingress", { from: [{ namespaceSelector: {} }] }],
            ["every address on every port", "egress", { to: [{ ipBlock: { cidr: "0.0.0.0/0" } }] }],
            ["every address on every TCP port", "egress", { to: [{ ipBlock: { cidr: "::/0" } }], ports: [{ protocol: "TCP" }] }],
            ["a named peer beside every namespace", "ingress", { from: [{ podSelector: { matchLabels: { a: "b" } } }, { namespaceSelector: {} }] }],
        ] as [string, "ingress" | "egress", Record<string, unknown>][]) {
            it(`rejects ${what} beside the default deny`, async () => {
                await assertViolates("no-allow-all-network-policy", new RegExp(`${direction}\\[0\\] admits every`), defaultDeny(), allowAll(direction, rule));
            });
        }
    });

    describe("no-allow-all-authorization-policy", () => {
        const policy = (spec: Record<string, unknown>) =>
            resource("kubernetes:security.istio.io/v1:AuthorizationPolicy", { metadata: { name: "allow", namespace: "site-orthweb" }, spec }, "allow");
        it("passes allow-nothing, DENY rules and rules that name sources or operations", async () => {
            await assertPasses("no-allow-all-authorization-policy", policy({}), policy({ action: "DENY", rules: [{}] }));
            await assertPasses("no-allow-all-authorization-policy", policy({ action: "ALLOW", rules: [{ to: [{ operation: { ports: ["443", "11112"] } }] }] }));
            await assertPasses("no-allow-all-authorization-policy", policy({ rules: [{ from: [{ source: { principals: ["cluster.local/ns/site-gateway/sa/gw"] } }] }] }));
            await assertPasses("no-allow-all-authorization-policy", policy({ rules: [{ when: [{ key: "source.namespace", values: ["site-orthweb"] }] }] }));
        });
        for (const [what, spec] of [
            ["an empty rule", { rules: [{}] }],
            ["an empty rule with ALLOW stated", { action: "ALLOW", rules: [{}] }],
            ["wildcard sources and paths", { rules: [{ from: [{ source: { principals: ["*"] } }], to: [{ operation: { paths: ["*"] } }] }] }],
            ["an unrestricted source beside a named one", { rules: [{ from: [{ source: { namespaces: ["site-orthweb"] } }, { source: {} }] }] }],
        ] as [string, Record<string, unknown>][]) {
            it(`rejects ${what} beside the allow-nothing policy`, async () => {
                await assertViolates("no-allow-all-authorization-policy", /rules\[0\] allows every request/, policy({}), policy(spec));
            });
        }
    });

    describe("dicom-gateway-mutual-tls", () => {
        it("passes MUTUAL TLS with TLS 1.2 or 1.3", async () => {
            await assertPasses("dicom-gateway-mutual-tls", dicomGateway(), edit(dicomGateway(), (p) => (p.spec.servers[0].tls.minProtocolVersion = "TLSV1_3")));
        });
        it("rejects SIMPLE and PASSTHROUGH, and leaves old or missing minimum versions to gateway-tls-minimum-version alone", async () => {
            await assertViolates("dicom-gateway-mutual-tls", /not MUTUAL/, edit(dicomGateway(), (p) => (p.spec.servers[0].tls.mode = "SIMPLE")));
            await assertViolates("dicom-gateway-mutual-tls", /not MUTUAL/, edit(dicomGateway(), (p) => (p.spec.servers[0].tls = { mode: "PASSTHROUGH" })));
            for (const weaken of [(p: any) => (p.spec.servers[0].tls.minProtocolVersion = "TLSV1_1"), (p: any) => delete p.spec.servers[0].tls.minProtocolVersion]) {
                // One report per weakness: the operator reads it once, from the rule that owns it.
                await assertPasses("dicom-gateway-mutual-tls", edit(dicomGateway(), weaken));
                await assertViolates("gateway-tls-minimum-version", /minProtocolVersion is (TLSV1_1|unset)/, edit(dicomGateway(), weaken));
            }
        });
        it("finds DICOM servers by port number or name as well as protocol", async () => {
            await assertViolates("dicom-gateway-mutual-tls", /DICOM server/, edit(dicomGateway(), (p) => (p.spec.servers[0] = { port: { number: 11112, name: "tcp", protocol: "TCP" }, hosts: ["*"] })));
            await assertPasses("dicom-gateway-mutual-tls", edit(dicomGateway(), (p) => (p.spec.servers[0] = { port: { number: 443, name: "https", protocol: "HTTPS" }, hosts: ["*"], tls: { mode: "SIMPLE" } })));
        });
        it("rejects a MUTUAL server without its own client CA", async () => {
            await assertViolates("dicom-gateway-mutual-tls", /caCertCredentialName is unset/, edit(dicomGateway(), (p) => delete p.spec.servers[0].tls.caCertCredentialName));
            await assertViolates("dicom-gateway-mutual-tls", /does not end in -cacert/, edit(dicomGateway(), (p) => (p.spec.servers[0].tls.caCertCredentialName = "dicom-clients")));
            await assertViolates("dicom-gateway-mutual-tls", /the server certificate's own CA/, edit(dicomGateway(), (p) => (p.spec.servers[0].tls.caCertCredentialName = "server-cacert")));
        });
        it("rejects a MUTUAL server that admits every certificate of its CA, and passes a hash, SPKI or name list", async () => {
            await assertViolates("dicom-gateway-mutual-tls", /no verifyCertificateHash/, edit(dicomGateway(), (p) => delete p.spec.servers[0].tls.verifyCertificateHash));
            await assertViolates("dicom-gateway-mutual-tls", /no verifyCertificateHash/, edit(dicomGateway(), (p) => (p.spec.servers[0].tls.verifyCertificateHash = [])));
            await assertViolates("dicom-gateway-mutual-tls", /no verifyCertificateHash/, edit(dicomGateway(), (p) => (p.spec.servers[0].tls.verifyCertificateHash = ["*"])));
            await assertPasses("dicom-gateway-mutual-tls", edit(dicomGateway(), (p) => (delete p.spec.servers[0].tls.verifyCertificateHash, (p.spec.servers[0].tls.subjectAltNames = ["ct1.site.example"]))));
            await assertPasses("dicom-gateway-mutual-tls", edit(dicomGateway(), (p) => (delete p.spec.servers[0].tls.verifyCertificateHash, (p.spec.servers[0].tls.verifyCertificateSpki = ["x"]))));
        });
    });

    describe("gateway-tls-minimum-version", () => {
        const webGateway = () =>
            edit(dicomGateway(), (p) => {
                p.metadata.name = "web";
                p.spec.servers = [{ port: { number: 443, name: "https-web", protocol: "HTTPS" }, hosts: ["web.site.example"], tls: { mode: "SIMPLE", credentialName: "server", minProtocolVersion: "TLSV1_2" } }];
            });
        it("passes web and DICOM servers with TLS 1.2 or 1.3, and servers that terminate no TLS", async () => {
            await assertPasses("gateway-tls-minimum-version", webGateway(), dicomGateway(), edit(webGateway(), (p) => (p.spec.servers[0].tls.minProtocolVersion = "TLSV1_3")));
            await assertPasses("gateway-tls-minimum-version", edit(webGateway(), (p) => (p.spec.servers[0] = { port: { number: 80, name: "http", protocol: "HTTP" }, hosts: ["*"], tls: { httpsRedirect: true } })));
            await assertPasses("gateway-tls-minimum-version", edit(webGateway(), (p) => (p.spec.servers[0] = { port: { number: 443, name: "tls", protocol: "TLS" }, hosts: ["*"], tls: { mode: "PASSTHROUGH" } })));
        });
        it("rejects a web server on TLS 1.0 or 1.1, or one that leaves the minimum to the mesh", async () => {
            await assertViolates("gateway-tls-minimum-version", /server https-web:443: tls\.minProtocolVersion is TLSV1_0/, edit(webGateway(), (p) => (p.spec.servers[0].tls.minProtocolVersion = "TLSV1_0")));
            await assertViolates("gateway-tls-minimum-version", /minProtocolVersion is TLSV1_1/, edit(webGateway(), (p) => (p.spec.servers[0].tls.minProtocolVersion = "TLSV1_1")));
            await assertViolates("gateway-tls-minimum-version", /minProtocolVersion is unset/, edit(webGateway(), (p) => delete p.spec.servers[0].tls.minProtocolVersion));
            await assertViolates("gateway-tls-minimum-version", /maxProtocolVersion is TLSV1_1/, edit(webGateway(), (p) => (p.spec.servers[0].tls.maxProtocolVersion = "TLSV1_1")));
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
                "kubernetes:security.istio.io/v1:AuthorizationPolicy",
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
