/**
 * Each tenant's gatekeeper as the program renders it: the pure builders (configuration, source files, workload, walls)
 * against a fixture source folder of the suite's own, and the prerendered stacks (tests/support/stacks.ts).
 */
import { strict as assert } from "assert";
import { mkdtempSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import * as path from "path";
import { parseStackConfig } from "../components/config/load";
import { defaultRoles, gatekeeperSecretEnv } from "../components/identity/contract";
import {
    gatekeeperConfig,
    gatekeeperConfigMapData,
    gatekeeperDeploymentSpec,
    gatekeeperPort,
    gatekeeperSourceFiles,
    identityWalls,
    identityWallNames,
} from "../components/identity/identity";
import { defaultClusterNetwork } from "../components/data/backup/backup";
import { crossSiteWriteRules } from "../components/tenant/security";
import { tenantNames, tenantWebUrl } from "../components/naming/tenantNames";
import { imageReference, nodeImage } from "../components/versions";
import { isSecretValue, plain } from "./support/mocks";
import { gatekeeperFixture, kubernetesObjects, parsedStackFile, renderStack, RenderedStack, shippedStacks } from "./support/stacks";
import { validateServiceEntry } from "./upstream/istioValidation";
import { realmPathPrefixes, realmDiscoveryUrl } from "../components/identity/keycloak/names";
import { realmIssuer } from "../components/identity/keycloak/realm";

const names = tenantNames("bhs", "orthweb.example.org");
const problemsOfIdentity = (identity: Record<string, unknown>): string => {
    try {
        parseStackConfig({ domain: "orthweb.example.org", ingress: { serviceType: "LoadBalancer" }, tenants: [{ name: "bhs", displayName: "B", identity }] });
        return "";
    } catch (error) {
        return (error as Error).message;
    }
};
const identity = (extra: Record<string, unknown> = {}) =>
    parseStackConfig({
        domain: "orthweb.example.org",
        ingress: { serviceType: "LoadBalancer" },
        tenants: [{ name: "bhs", displayName: "B", identity: { oidc: { issuer: "https://login.example.org/realms/bhs", clientId: "orthanc", clientSecret: "x", anyAddress: true }, ...extra } }],
    }).tenants[0].identity!;

describe("the gatekeeper's builders", () => {
    it("renders the contract's configuration: public URL, Orthanc's in-namespace root, the provider, default roles, limits; no secret", () => {
        const config = gatekeeperConfig("bhs", names, identity({ apiClients: [{ clientId: "ris", role: "technologist" }] }));
        assert.equal(config.publicUrl, "https://web.bhs.orthweb.example.org");
        assert.equal(config.orthancUrl, "http://orthanc.bhs-orthweb.svc.cluster.local:8042");
        assert.equal(config.port, gatekeeperPort);
        assert.equal(config.orthancUsername, "gatekeeper");
        assert.deepEqual(config.oidc, {
            issuer: "https://login.example.org/realms/bhs",
            clientId: "orthanc",
            audiences: ["orthanc"],
            scopes: ["openid", "profile", "email"],
            groupsClaim: "groups",
            nameClaim: "name",
        });
        assert.deepEqual(config.roles, defaultRoles);
        assert.deepEqual(config.apiClients, [{ clientId: "ris", role: "technologist" }]);
        assert.deepEqual([config.session.ttlSeconds, config.shareLinks.maxTtlSeconds, config.audit.retentionDays], [28800, 604800, 2190]);
        assert.doesNotMatch(JSON.stringify(config), /"x"|clientSecret/);
    });

    it("carries every *.ts of the source folder (and nothing else), and stops when server.ts is missing", () => {
        assert.deepEqual(Object.keys(gatekeeperSourceFiles(gatekeeperFixture)), ["audit.ts", "server.ts"]);
        const empty = mkdtempSync(path.join(tmpdir(), "gatekeeper-"));
        try {
            writeFileSync(path.join(empty, "audit.ts"), "export {};\n");
            assert.throws(() => gatekeeperSourceFiles(empty), /the gatekeeper's source is missing: .*server\.ts does not exist/);
        } finally {
            rmSync(empty, { recursive: true });
        }
    });

    it("trusts the provider's own CA when the stack gives one (NODE_EXTRA_CA_CERTS from the ConfigMap), and none otherwise", () => {
        const ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        const config = gatekeeperConfig("bhs", names, identity());
        assert.equal(gatekeeperConfigMapData(config, { "server.ts": "x" }, ca)["identity-provider-ca.crt"], ca);
        const container = (providerCa: boolean) => (gatekeeperDeploymentSpec("bhs", ["server.ts"], "sum", providerCa).template as any).spec.containers[0];
        assert.deepEqual(container(true).env.at(-1), { name: "NODE_EXTRA_CA_CERTS", value: "/etc/gatekeeper/identity-provider-ca.crt" });
        assert.ok(!container(false).env.some((e: any) => e.name === "NODE_EXTRA_CA_CERTS"));
        const volume = (providerCa: boolean) => (gatekeeperDeploymentSpec("bhs", ["server.ts"], "sum", providerCa).template as any).spec.volumes.find((v: any) => v.name === "config");
        assert.deepEqual(volume(true).configMap.items.map((i: any) => i.path), ["config.json", "identity-provider-ca.crt"]);
        assert.match(problemsOfIdentity({ oidc: { issuer: "https://adfs.example.org/adfs", clientId: "o", clientSecret: "x", anyAddress: true, caCertificate: "not a pem" } }), /identity\.oidc\.caCertificate/);
    });

    it("refuses a source and configuration larger than a ConfigMap holds", () => {
        const config = gatekeeperConfig("bhs", names, identity());
        assert.ok(gatekeeperConfigMapData(config, { "server.ts": "x" })["config.json"].includes('"tenant": "bhs"'));
        assert.throws(() => gatekeeperConfigMapData(config, { "server.ts": "x".repeat(1024 * 1024) }), /a ConfigMap holds at most 1048576/);
    });

    it("walls: the gateway alone reaches the gatekeeper; it reaches Orthanc's web port and the issuer's host, which istiod admits", () => {
        const walls = identityWalls("bhs", names, identity().oidc!, defaultClusterNetwork);
        const policy = walls.network[0].spec as any;
        assert.deepEqual(policy.ingress, [
            {
                from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "bhs-gateway" } }, podSelector: { matchLabels: { istio: "bhs-ingressgateway" } } }],
                ports: [{ protocol: "TCP", port: gatekeeperPort }],
            },
        ]);
        assert.deepEqual(policy.egress[0].ports, [{ protocol: "TCP", port: 8042 }]);
        assert.deepEqual(policy.egress[1], { to: [{ ipBlock: { cidr: "0.0.0.0/0" } }], ports: [{ protocol: "TCP", port: 443 }] });
        assert.deepEqual(walls.authorization[0].spec, {
            selector: { matchLabels: { "app.kubernetes.io/name": "gatekeeper", "app.kubernetes.io/instance": "bhs" } },
            action: "ALLOW",
            rules: [{ from: [{ source: { principals: ["cluster.local/ns/bhs-gateway/sa/bhs-ingressgateway"] } }], to: [{ operation: { ports: ["8080"] } }] }],
        });
        assert.deepEqual(walls.serviceEntries.map((e) => e.spec.hosts), [["login.example.org"]]);
        const admitted = (entry: { namespace: string; name: string; spec: Record<string, unknown> }) =>
            validateServiceEntry({ apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: entry.name, namespace: entry.namespace }, spec: entry.spec }).errors;
        for (const entry of walls.serviceEntries) assert.deepEqual(admitted(entry), [], entry.name);
        // An issuer given by address: a STATIC entry, which istiod's validation requires for an address with a prefix.
        const byAddress = identityWalls("bhs", names, identity({ oidc: { issuer: "https://10.60.0.5:8443/realms/bhs", clientId: "o", clientSecret: "x" } }).oidc!, defaultClusterNetwork);
        assert.deepEqual(byAddress.serviceEntries.map((e) => [e.spec.addresses, e.spec.resolution]), [[["10.60.0.5/32"], "STATIC"]]);
        for (const entry of byAddress.serviceEntries) assert.deepEqual(admitted(entry), [], entry.name);
        assert.deepEqual((byAddress.network[0].spec as any).egress[1], { to: [{ ipBlock: { cidr: "10.60.0.5/32" } }], ports: [{ protocol: "TCP", port: 8443 }] });
        // Cilium: by name.
        const cilium = identityWalls("bhs", names, identity().oidc!, { ...defaultClusterNetwork, cni: "cilium" });
        assert.deepEqual((cilium.cniPolicies![0].spec as any).egress.at(-1), { toFQDNs: [{ matchName: "login.example.org" }, { matchPattern: "*.login.example.org" }], toPorts: [{ ports: [{ port: "443", protocol: "TCP" }] }] });
    });
});

describe("the gatekeeper in the shipped stacks", () => {
    const rendered: Record<string, RenderedStack> = {};
    before(async () => {
        for (const stack of shippedStacks) rendered[stack] = await renderStack(stack);
    });
    const object = (stack: string, kind: string, namespace: string, name: string) =>
        kubernetesObjects(rendered[stack]).find((r) => r.type.endsWith(`:${kind}`) && r.inputs.metadata?.namespace === namespace && r.inputs.metadata?.name === name);

    for (const stack of shippedStacks) {
        it(`${stack}: every tenant runs two hardened gatekeepers on the pinned node image, from the ConfigMap's source and configuration`, () => {
            for (const tenant of parsedStackFile(stack).tenants) {
                const ns = tenantNames(tenant.name, "x").namespace;
                const deployment = object(stack, "Deployment", ns, "gatekeeper");
                assert.ok(deployment, `${stack}/${tenant.name}: no gatekeeper`);
                const spec = plain(deployment.inputs.spec);
                assert.ok(spec.replicas >= 2);
                const pod = spec.template.spec;
                assert.equal(pod.automountServiceAccountToken, false);
                assert.equal(pod.securityContext.runAsNonRoot, true);
                const [container] = pod.containers;
                assert.equal(container.image, imageReference(nodeImage));
                assert.deepEqual(container.command, ["node", "/opt/gatekeeper/server.ts", "/etc/gatekeeper/config.json"]);
                assert.equal(container.securityContext.readOnlyRootFilesystem, true);
                assert.equal(container.securityContext.allowPrivilegeEscalation, false);
                assert.deepEqual(container.securityContext.capabilities.drop, ["ALL"]);
                assert.ok(container.resources.requests.cpu && container.resources.limits.memory);
                assert.equal(container.readinessProbe.httpGet.path, "/healthz");
                assert.equal(container.livenessProbe.httpGet.path, "/healthz");
                assert.deepEqual(
                    container.env.map((e: any) => [e.name, e.valueFrom.secretKeyRef.name]),
                    [gatekeeperSecretEnv.oidcClientSecret, gatekeeperSecretEnv.sessionKey, gatekeeperSecretEnv.orthancPassword, gatekeeperSecretEnv.auditDatabasePassword].map((name) => [name, "gatekeeper"]),
                );
                const configMap = object(stack, "ConfigMap", ns, "gatekeeper")!;
                assert.deepEqual(Object.keys(configMap.inputs.data).sort(), ["audit.ts", "config.json", "server.ts"]);
                const config = JSON.parse(configMap.inputs.data["config.json"]);
                assert.equal(config.tenant, tenant.name);
                const names = tenantNames(tenant.name, parsedStackFile(stack).domain);
                // The site's provider, or the tenant's realm under its own host, read by the gatekeeper inside the mesh.
                const webUrl = tenantWebUrl(names, parsedStackFile(stack).ingress.serviceType, tenant.nodePorts);
                const issuer = tenant.identity!.oidc?.issuer ?? realmIssuer(tenant.name, webUrl);
                // The address people type, the node port included on a NodePort stack (the local one).
                assert.equal(config.publicUrl, webUrl);
                if (stack === "local") assert.match(config.publicUrl, /:30443$|:30444$/);
                assert.equal(config.oidc.issuer, issuer);
                assert.equal(config.oidc.discoveryUrl, tenant.identity!.keycloak ? realmDiscoveryUrl(tenant.name) : undefined);
                // The shipped stacks run bitnami-ha: the trail goes to the tenant's audit database too, through Pgpool.
                assert.deepEqual(config.audit, {
                    database: { host: `postgresql-ha-pgpool.${ns}.svc.cluster.local`, port: 5432, database: "audit", user: "gatekeeper_audit", sslmode: "disable" },
                    retentionDays: tenant.identity!.audit.retentionDays,
                });
                const mounted = pod.volumes.find((v: any) => v.name === "source").configMap.items.map((i: any) => i.path);
                assert.deepEqual(mounted.sort(), ["audit.ts", "server.ts"]);
                assert.equal(object(stack, "PodDisruptionBudget", ns, "gatekeeper")!.inputs.spec.minAvailable, 1);
                assert.equal(object(stack, "Service", ns, "gatekeeper")!.inputs.spec.ports[0].name, "http-gatekeeper");
                // What the operator registers at the provider.
                assert.deepEqual(rendered[stack].outputs.tenantEndpoints[tenant.name].signIn, {
                    issuer,
                    clientId: tenant.identity!.oidc?.clientId ?? "orthanc",
                    redirectUri: `${webUrl}/oauth2/callback`,
                });
            }
        });

        it(`${stack}: the gatekeeper's secrets are generated or from the stack's secrets, and held only as Pulumi secrets`, () => {
            for (const tenant of parsedStackFile(stack).tenants) {
                const ns = tenantNames(tenant.name, "x").namespace;
                const secret = object(stack, "Secret", ns, "gatekeeper")!;
                const data = secret.inputs.stringData;
                for (const key of [gatekeeperSecretEnv.oidcClientSecret, gatekeeperSecretEnv.sessionKey, gatekeeperSecretEnv.orthancPassword, gatekeeperSecretEnv.auditDatabasePassword]) {
                    assert.ok(isSecretValue(data) || isSecretValue(data[key]), `${key} is not a secret`);
                }
                const values = plain(data);
                // The site's client secret from the stack's secrets, or the one generated for the realm's web client,
                // which the realm file Keycloak imports holds too.
                if (tenant.identity!.keycloak) {
                    const realms = plain(object(stack, "Secret", "keycloak", "keycloak-realms")!.inputs.stringData);
                    const realm = JSON.parse(realms[`${tenant.name}-realm.json`]);
                    assert.equal(values[gatekeeperSecretEnv.oidcClientSecret], realm.clients.find((c: any) => c.clientId === "orthanc").secret);
                    assert.ok(values[gatekeeperSecretEnv.oidcClientSecret].length >= 32);
                } else {
                    assert.equal(values[gatekeeperSecretEnv.oidcClientSecret], `test-oidc-client-secret-${tenant.name}`);
                }
                assert.equal(Buffer.from(values[gatekeeperSecretEnv.sessionKey], "base64").length, 32);
                // Orthanc knows the gatekeeper by the same password.
                const orthanc = JSON.parse(plain(object(stack, "Secret", ns, "orthanc-config")!.inputs.stringData)["orthanc.json"]);
                assert.equal(orthanc.RegisteredUsers.gatekeeper, values[gatekeeperSecretEnv.orthancPassword]);
                // The audit database knows the gatekeeper's role by the same password the setup Job sets.
                const auditData = object(stack, "Secret", ns, "audit-database-credentials")!.inputs.stringData;
                for (const key of ["owner-password", "gatekeeper-password"]) assert.ok(isSecretValue(auditData) || isSecretValue(auditData[key]), `${key} is not a secret`);
                const audit = plain(auditData);
                assert.equal(values[gatekeeperSecretEnv.auditDatabasePassword], audit["gatekeeper-password"]);
                assert.notEqual(audit["gatekeeper-password"], audit["owner-password"]);
            }
        });

        it(`${stack}: the gateway's cross-site write rules still cover the web route, which now ends at the gatekeeper`, () => {
            for (const tenant of parsedStackFile(stack).tenants) {
                const tenantNamesOf = tenantNames(tenant.name, parsedStackFile(stack).domain);
                const route = object(stack, "VirtualService", tenantNamesOf.gatewayNamespace, "web")!.inputs.spec;
                const rest = route.http.find((entry: any) => entry.match === undefined);
                assert.equal(rest.route[0].destination.host, `gatekeeper.${tenantNamesOf.namespace}.svc.cluster.local`);
                // A tenant of the in-cluster Keycloak: its own realm's paths, and only those, go to Keycloak first.
                const realm = route.http.find((entry: any) => entry.match !== undefined);
                assert.deepEqual(realm?.match.map((m: any) => m.uri.prefix), tenant.identity?.keycloak ? realmPathPrefixes(tenant.name) : undefined);
                if (realm) assert.equal(route.http.indexOf(realm), 0, "the realm's paths are matched before the catch-all");
                const deny = object(stack, "AuthorizationPolicy", tenantNamesOf.gatewayNamespace, "deny-cross-site-writes")!.inputs.spec;
                assert.deepEqual(deny.rules, crossSiteWriteRules(tenantNamesOf.webHost));
                // The provider's ServiceEntry is visible in the tenant namespace alone.
                const entry = object(stack, "ServiceEntry", tenantNamesOf.namespace, identityWallNames.serviceEntry);
                if (entry) assert.deepEqual(entry.inputs.spec.exportTo, ["."]);
            }
        });
    }
});
