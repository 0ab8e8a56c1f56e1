import { strict as assert } from "assert";
import { keycloakNamespace, keycloakPodLabels, keycloakPorts } from "../components/identity/keycloak/names";
import { storageClaimName, storageMountPath } from "../components/data/storage/orthancStorage";
import { storageWallNames } from "../components/data/storage/storageWalls";
import { ingressPorts, orthancPorts, webResponseHeaders } from "../components/tenant/ingress";
import { gatekeeperPort, identityWallNames } from "../components/identity/identity";
import { tenantNames } from "../components/naming/tenantNames";
import { orthancConfig } from "../components/tenant/orthancConfig";
import { postgresSecrets } from "../components/data/engines/bitnamiHaValues";
import { orthancDeploymentName } from "../components/tenant/orthancWorkload";
import { chartReference, charts, orthancImage } from "../components/versions";
import { certificateFingerprint, RenewalState, renewalNotice, TenantPki } from "../components/tenant/pki";
import { parseStackConfig } from "../components/config/load";
import { CertificateAuthority } from "../components/pki/certificateAuthority";
import { rootCaProfile } from "../components/pki/profile";
import { registeredUnder, useMocks } from "./support/inProcess";
import { replacedOnUp } from "./upstream/tlsProvider";
import { PkiConfig } from "../components/config/schema";
import { certificatePeriods } from "../components/pki/renewal";
import { noClientFingerprint } from "../components/tenant/ingress";
import { okRequest } from "./support/modalityRequests";
import { isSecret } from "@pulumi/pulumi";
import { RecordedResource, isSecretValue, plain, secretAt } from "./support/mocks";
import { RenderedStack, devVariants, modalityAddress, parsedStackFile, renderStack, allStacks, thirdTenant } from "./support/stacks";
import { authorizationAllows } from "./upstream/authorizationPolicy";

/**
 * The name prefixes of a modality's certificates as the program declares them at `now`: the current renewal period's,
 * then the previous period's while it is still admitted (components/pki/renewal.ts).
 */
function modalityCertificateIds(tenant: string, pki: PkiConfig, modality: { name: string; certificateGeneration: number }, now = new Date()): string[] {
    const periods = certificatePeriods({ validityHours: pki.modalityCertificateValidityHours, overlapHours: pki.modalityCertificateOverlapHours }, now);
    const id = `${tenant}-pki-modality-${modality.name}-g${modality.certificateGeneration}`;
    return [periods.current, ...(periods.previous ? [periods.previous.period] : [])].map((period) => `${id}-p${period}`);
}

/** A tenant's view of a rendered stack: its resources (named `<tenant>-...`) and lookups by kind and name. */
class TenantView {
    readonly resources: RecordedResource[];
    constructor(
        readonly stack: RenderedStack,
        readonly tenant: string,
        readonly domain: string,
    ) {
        this.resources = stack.resources.filter((r) => r.name.startsWith(`${tenant}-`));
    }
    get names() {
        return tenantNames(this.tenant, this.domain);
    }
    all(kind: string): RecordedResource[] {
        return this.resources.filter((r) => r.type.endsWith(`:${kind}`));
    }
    one(kind: string, objectName: string): RecordedResource {
        const found = this.all(kind).filter((r) => (r.inputs.metadata?.name ?? r.inputs.name ?? r.name) === objectName);
        assert.equal(found.length, 1, `${this.tenant}: expected one ${kind} ${objectName}, found ${found.length}`);
        return found[0];
    }
    release(releaseName: string): RecordedResource {
        return this.one("Release", releaseName);
    }
}

for (const stack of allStacks) {
    describe(`tenants on stack ${stack}`, () => {
        const config = parsedStackFile(stack);
        let rendered: RenderedStack;
        let views: TenantView[];
        before(async () => {
            rendered = await renderStack(stack);
            assert.equal(rendered.error, undefined);
            views = config.tenants.map((t) => new TenantView(rendered, t.name, config.domain));
        });
        const engineOf = (view: TenantView) => config.tenants.find((t) => t.name === view.tenant)!.database.engine;
        /** Whether the tenant's users sign in through its gatekeeper (tenants[].identity, not disabled). */
        const signsInOf = (view: TenantView) => {
            const identity = config.tenants.find((t) => t.name === view.tenant)!.identity;
            return identity !== undefined && !identity.disabled;
        };
        /** Whether the tenant's engine renders the gatekeeper's audit database (bitnami-ha or cloudnative-pg, and no identity.audit.stdoutOnly). */
        const auditedOf = (view: TenantView) =>
            signsInOf(view) && ["bitnami-ha", "cloudnative-pg"].includes(engineOf(view)) && !config.tenants.find((t) => t.name === view.tenant)!.identity!.audit.stdoutOnly;
        /** The tenants on Bitnami postgresql-ha; its tests are registered only where a tenant uses it. */
        const bitnami = () => views.filter((view) => engineOf(view) === "bitnami-ha");
        const itForBitnami = config.tenants.some((t) => t.database.engine === "bitnami-ha") ? it : () => undefined;

        it("gives every tenant its own namespace <tenant>-orthweb with injection, Pod Security and tenant labels", () => {
            for (const view of views) {
                const labels = view.one("Namespace", `${view.tenant}-orthweb`).inputs.metadata.labels;
                assert.equal(labels["istio-injection"], "enabled");
                assert.equal(labels["pod-security.kubernetes.io/enforce"], "baseline");
                assert.equal(labels["pod-security.kubernetes.io/warn"], "restricted");
                assert.equal(labels["korthweb.io/tenant"], view.tenant);
            }
        });

        it("places every namespaced object of a tenant in one of its two namespaces, but for its CA in cert-manager's", () => {
            for (const view of views) {
                for (const resource of view.resources.filter((r) => r.type.startsWith("kubernetes:") && r.type !== "kubernetes:core/v1:Namespace")) {
                    const ns = resource.inputs.metadata?.namespace ?? resource.inputs.namespace;
                    if (resource.name === `${view.tenant}-pki-ca-secret`) {
                        assert.equal(ns, "cert-manager");
                    } else if (resource.type.endsWith(":ClusterIssuer") || resource.type.endsWith(":CertificateRequestPolicy")) {
                        assert.equal(ns, undefined, "cluster-scoped");
                    } else {
                        assert.ok([view.names.namespace, view.names.gatewayNamespace].includes(ns), `${resource.type} ${resource.name} in ${ns}`);
                    }
                }
            }
        });

        it("signs each tenant CA with the root and keeps its key in cert-manager's namespace only, behind a ClusterIssuer", () => {
            for (const view of views) {
                const certificate = view.one("LocallySignedCert", `${view.tenant}-pki-ca-certificate`);
                assert.equal(certificate.inputs.isCaCertificate, true);
                assert.match(certificate.inputs.caCertPem, /MOCKroot-ca-certificate/);
                const secret = view.one("Secret", `korthweb-${view.tenant}-ca`);
                assert.equal(secret.inputs.metadata.namespace, "cert-manager");
                assert.equal(secret.inputs.type, "kubernetes.io/tls");
                assert.ok(secretAt(secret.inputs.stringData, "tls.key"));
                const data = plain(secret.inputs.stringData);
                assert.match(data["tls.key"], new RegExp(`MOCK${view.tenant}-pki-ca-key`));
                assert.match(data["tls.crt"], new RegExp(`MOCK${view.tenant}-pki-ca-certificate[\\s\\S]*MOCKroot-ca-certificate`));
                const issuer = view.one("ClusterIssuer", `korthweb-${view.tenant}-ca`);
                assert.equal(issuer.inputs.spec.ca.secretName, `korthweb-${view.tenant}-ca`);
                // No Secret in the tenant's namespaces holds the CA key.
                for (const other of view.all("Secret").filter((r) => r !== secret)) {
                    assert.doesNotMatch(JSON.stringify(plain(other.inputs.stringData)), /MOCK\w+-pki-ca-key/, other.name);
                }
            }
        });

        it("has cert-manager issue and renew the server certificate for web.<tenant> and dicom.<tenant>", () => {
            for (const view of views) {
                const certificate = view.one("Certificate", "orthanc-server").inputs;
                assert.equal(certificate.metadata.namespace, view.names.gatewayNamespace, "issued where the gateway reads it");
                const spec = certificate.spec;
                assert.deepEqual(spec.dnsNames, [view.names.webHost, view.names.dicomHost]);
                assert.deepEqual(spec.issuerRef, { group: "cert-manager.io", kind: "ClusterIssuer", name: `korthweb-${view.tenant}-ca` });
                assert.ok(spec.usages.includes("server auth"));
                assert.equal(spec.duration, `${config.pki.serverCertificateDurationHours}h`);
                assert.ok(parseInt(spec.renewBefore, 10) > 0 && parseInt(spec.renewBefore, 10) < parseInt(spec.duration, 10), "renewed before expiry");
            }
        });

        it("trusts only the tenant's own CA on its DICOM port: no root, no other tenant", () => {
            for (const view of views) {
                const dicom = view.one("Gateway", "dicom").inputs.spec.servers[0];
                const data = plain(view.one("Secret", dicom.tls.caCertCredentialName).inputs.stringData);
                assert.deepEqual(Object.keys(data), ["cacert"]);
                assert.equal(data.cacert.trim(), `-----BEGIN CERTIFICATE-----\nMOCK${view.tenant}-pki-ca-trust-anchor\n-----END CERTIFICATE-----`);
                // The trust anchor is the tenant CA itself: same key, same subject, self-signed.
                const anchor = view.one("SelfSignedCert", `${view.tenant}-pki-ca-trust-anchor`).inputs;
                const request = view.one("CertRequest", `${view.tenant}-pki-ca-request`).inputs;
                assert.deepEqual(anchor.subject, request.subject);
                assert.equal(plain(anchor.privateKeyPem), plain(request.privateKeyPem));
                assert.equal(anchor.isCaCertificate, true);
                // @pulumi/tls cannot write pathlen:0 (components/pki/profile.ts): none is asked for.
                assert.equal(anchor.maxPathLength, undefined);
            }
        });

        it("gives every tenant its own ingress gateway release whose labels no other tenant's Gateway selects", () => {
            const selectors = new Set<string>();
            for (const view of views) {
                const release = view.release(view.names.gatewayRelease);
                assert.equal(release.inputs.chart, charts.istioGateway.chart);
                assert.equal(release.inputs.version, charts.istioGateway.version);
                assert.equal(release.inputs.namespace, view.names.gatewayNamespace);
                for (const gateway of view.all("Gateway")) {
                    assert.deepEqual(gateway.inputs.spec.selector, { istio: view.names.gatewayIstioLabel });
                    selectors.add(JSON.stringify(gateway.inputs.spec.selector));
                }
            }
            assert.equal(selectors.size, views.length, "each tenant's Gateways select a different label");
        });

        it("exposes the gateway through its own Service with the configured type and annotations, and only the TLS ports", () => {
            for (const [index, view] of views.entries()) {
                assert.equal(view.release(view.names.gatewayRelease).inputs.values.service.type, "None", "the chart makes no Service");
                const service = view.one("Service", view.names.gatewayRelease).inputs;
                assert.equal(service.metadata.namespace, view.names.gatewayNamespace);
                assert.equal(service.spec.type, config.ingress.serviceType);
                assert.deepEqual(service.metadata.annotations, config.ingress.annotations);
                assert.deepEqual(service.spec.ports.map((p: any) => p.port).sort((a: number, b: number) => a - b), [443, 11112]);
                const nodePorts = config.tenants[index].nodePorts;
                assert.deepEqual(
                    service.spec.ports.map((p: any) => p.nodePort),
                    nodePorts ? [nodePorts.https, nodePorts.dicom] : [undefined, undefined],
                );
            }
        });

        it("has Envoy listen where the Service sends traffic: every Gateway server port is a Service targetPort", () => {
            for (const view of views) {
                const targetPorts = view.one("Service", view.names.gatewayRelease).inputs.spec.ports.map((p: any) => p.targetPort);
                for (const gateway of view.all("Gateway")) {
                    for (const server of gateway.inputs.spec.servers) {
                        assert.ok(targetPorts.includes(server.port.number), `${view.tenant} ${gateway.name} port ${server.port.number}`);
                    }
                }
            }
        });

        it("serves HTTPS on 443 for web.<tenant> to the tenant's gatekeeper (Orthanc's HTTP port when sign-in is disabled), TLS 1.2 or newer, with the security headers", () => {
            for (const view of views) {
                const server = view.one("Gateway", "web").inputs.spec.servers[0];
                assert.equal(server.port.number, ingressPorts.https);
                assert.equal(server.port.protocol, "HTTPS");
                assert.deepEqual(server.hosts, [view.names.webHost]);
                assert.equal(server.tls.mode, "SIMPLE");
                assert.equal(server.tls.minProtocolVersion, "TLSV1_2");
                const route = view.one("VirtualService", "web").inputs.spec;
                assert.deepEqual(route.gateways, ["web"]);
                const signsIn = signsInOf(view);
                const rest = route.http.find((entry: any) => entry.match === undefined);
                assert.equal(rest.route[0].destination.host, `${signsIn ? "gatekeeper" : "orthanc"}.${view.names.namespace}.svc.cluster.local`);
                assert.equal(rest.route[0].destination.port.number, signsIn ? gatekeeperPort : orthancPorts.http);
                // The gateway sets the headers on every route, whichever backend answers (the in-cluster Keycloak's too).
                for (const entry of route.http) assert.deepEqual(entry.headers.response.set, webResponseHeaders);
            }
        });

        it("serves DICOM over TLS on 11112 with client certificates required, routed as TCP to Orthanc's DICOM port", () => {
            for (const view of views) {
                const server = view.one("Gateway", "dicom").inputs.spec.servers[0];
                assert.equal(server.port.number, ingressPorts.dicomTls);
                assert.equal(server.port.protocol, "TLS");
                assert.deepEqual(server.hosts, ["*"], "modalities send no SNI");
                assert.equal(server.tls.mode, "MUTUAL");
                assert.equal(server.tls.minProtocolVersion, "TLSV1_2");
                const route = view.one("VirtualService", "dicom").inputs.spec;
                assert.equal(route.http, undefined);
                assert.equal(route.tcp[0].route[0].destination.host, `orthanc.${view.names.namespace}.svc.cluster.local`);
                assert.equal(route.tcp[0].route[0].destination.port.number, orthancPorts.dicom);
            }
        });

        it("enforces STRICT mutual TLS in both of the tenant's namespaces", () => {
            for (const view of views) {
                const modes = view.all("PeerAuthentication").map((p) => [p.inputs.metadata.namespace, p.inputs.spec.mtls.mode]);
                assert.deepEqual(modes.sort(), [
                    [view.names.gatewayNamespace, "STRICT"],
                    [view.names.namespace, "STRICT"],
                ]);
            }
        });

        it("admits scrapes to the proxies only from the monitoring namespace the program creates, by its name and the program's label; none without observability", () => {
            // What a namespaceSelector admits: the API server adds kubernetes.io/metadata.name to every namespace.
            const selected = (selector: Record<string, string>, namespace: RecordedResource) => {
                const labels = { ...namespace.inputs.metadata.labels, "kubernetes.io/metadata.name": namespace.inputs.metadata.name };
                return Object.entries(selector).every(([key, value]) => labels[key] === value);
            };
            const created = rendered.resources.filter((r) => r.type === "kubernetes:core/v1:Namespace");
            // One anybody could create: the name alone, none of the program's labels.
            const impostor = { inputs: { metadata: { name: "monitoring", labels: {} } } } as unknown as RecordedResource;
            for (const view of views) {
                for (const ns of [view.names.namespace, view.names.gatewayNamespace]) {
                    const rules = view
                        .all("NetworkPolicy")
                        .filter((p) => p.inputs.metadata.namespace === ns)
                        .flatMap((p) => p.inputs.spec.ingress ?? [])
                        .filter((rule: any) => (rule.ports ?? []).some((port: any) => port.port === 15020 || port.port === 15090));
                    const sources = rules.flatMap((rule: any) => rule.from ?? []);
                    if (!config.observability.enabled) {
                        assert.deepEqual(rules, [], `${ns}: a scrape rule without observability`);
                        continue;
                    }
                    assert.ok(sources.length > 0, ns);
                    for (const source of sources) {
                        assert.equal(source.podSelector, undefined);
                        assert.equal(selected(source.namespaceSelector.matchLabels, impostor), false, `${ns}: a namespace named monitoring without the label`);
                        const admitted = created.filter((namespace) => selected(source.namespaceSelector.matchLabels, namespace)).map((n) => n.inputs.metadata.name);
                        assert.deepEqual(admitted, ["monitoring"], ns);
                    }
                }
            }
        });

        it("refuses, through the gateway, Orthanc's configuration-changing, shutdown, log-level, Lua and WebDAV paths, and admits ordinary use (Istio's evaluation and the mesh's path normalization, modelled)", () => {
            const release = rendered.resources.find((r) => r.type.endsWith(":Release") && r.inputs.name === "istiod")!;
            const normalization = release.inputs.values.meshConfig.pathNormalization?.normalization ?? "DEFAULT";
            for (const view of views) {
                const ns = view.names.namespace;
                const policies = view.all("AuthorizationPolicy").filter((p) => p.inputs.metadata.namespace === ns).map((p) => p.inputs.spec);
                const gateway = { principal: `cluster.local/ns/${view.names.gatewayNamespace}/sa/${view.names.gatewayRelease}`, namespace: view.names.gatewayNamespace };
                // What faces the internet on the web port: the gatekeeper (a workload of the tenant namespace) when
                // users sign in, else the gateway itself.
                const fromGateway = signsInOf(view) ? { principal: `cluster.local/ns/${ns}/sa/gatekeeper`, namespace: ns } : gateway;
                const orthancPods = view.one("Deployment", orthancDeploymentName()).inputs.spec.template.metadata.labels;
                const decide = (method: string, path: string, from = fromGateway) =>
                    authorizationAllows(policies, orthancPods, { method, path, port: orthancPorts.http, ...from }, normalization);
                const refused: [string, string][] = [
                    ["PUT", "/modalities/evil"],
                    ["DELETE", "/modalities/ct-room"],
                    ["PUT", "/peers/evil"],
                    ["DELETE", "/peers/evil"],
                    ["POST", "/tools/shutdown"],
                    ["POST", "/tools/shutdown/"],
                    ["POST", "//tools/shutdown"],
                    ["POST", "/tools%2Fshutdown"],
                    ["POST", "/tools/./reset"],
                    ["POST", "/dicom-web/../tools/reset"],
                    ["PUT", "/tools/log-level"],
                    ["PUT", "/tools/log-level-dicom?x=1"],
                    ["GET", "/tools/log-level"],
                    ["POST", "/tools/execute-script"],
                    ["PROPFIND", "/webdav/"],
                    ["GET", "/webdav"],
                ];
                for (const [method, path] of refused) assert.equal(decide(method, path), false, `${view.tenant}: ${method} ${path}`);
                const admitted: [string, string][] = [
                    ["GET", "/studies"],
                    ["GET", "/modalities"],
                    // An operation on a configured modality (OE2's "send to modality"), not a configuration change.
                    ["POST", "/modalities/ct-room/store"],
                    ["POST", "/tools/find"],
                    ["POST", "/dicom-web/studies"],
                    ["GET", "/dicom-web/studies?PatientName=DOE*"],
                    ["GET", "/ui/app/"],
                    ["GET", "/ohif/viewer?StudyInstanceUIDs=1.2.3"],
                    ["GET", "/system"],
                ];
                for (const [method, path] of admitted) assert.equal(decide(method, path), true, `${view.tenant}: ${method} ${path}`);
                // The administrator's path: a workload of the tenant's own namespace, not internet-facing.
                assert.equal(decide("POST", "/tools/shutdown", { principal: `cluster.local/ns/${ns}/sa/admin`, namespace: ns }), true);
                // Another namespace gets nothing at all.
                assert.equal(decide("GET", "/studies", { principal: "cluster.local/ns/other/sa/default", namespace: "other" }), false);
                // With sign-in, the gateway no longer reaches the REST API: the break-glass admin is not internet-facing.
                if (signsInOf(view)) assert.equal(decide("GET", "/studies", gateway), false, `${view.tenant}: the gateway reaches Orthanc's web port`);
            }
        });

        it("admits Orthanc traffic only from the tenant's gateway and namespace, PostgreSQL traffic only from Orthanc", () => {
            for (const view of views) {
                const ns = view.names.namespace;
                const denyAll = view.all("AuthorizationPolicy").filter((p) => p.inputs.metadata.name === "deny-by-default");
                assert.deepEqual(denyAll.map((p) => [p.inputs.metadata.namespace, p.inputs.spec]).sort(), [
                    [view.names.gatewayNamespace, {}],
                    [ns, {}],
                ]);
                const orthanc = view.one("AuthorizationPolicy", "allow-gateway-to-orthanc").inputs.spec;
                const gatewayRule = orthanc.rules[0];
                assert.deepEqual(gatewayRule.from[0].source.principals, [`cluster.local/ns/${view.names.gatewayNamespace}/sa/${view.names.gatewayRelease}`]);
                if (signsInOf(view)) {
                    // The gateway on the DICOM port only; the gatekeeper on the web port.
                    assert.deepEqual(gatewayRule.to[0].operation.ports, [String(orthancPorts.dicom)]);
                    assert.deepEqual(orthanc.rules[1].from[0].source.principals, [`cluster.local/ns/${ns}/sa/gatekeeper`]);
                    assert.deepEqual(orthanc.rules[1].to[0].operation.ports, [String(orthancPorts.http)]);
                    const gatekeeper = view.one("AuthorizationPolicy", "allow-gateway-to-gatekeeper").inputs.spec;
                    assert.deepEqual(gatekeeper.rules, [{ from: [{ source: { principals: gatewayRule.from[0].source.principals } }], to: [{ operation: { ports: [String(gatekeeperPort)] } }] }]);
                }
                assert.deepEqual(orthanc.rules.at(-1).from[0].source.namespaces, [ns]);
                // The database engine's policies admit Orthanc, and the engine's own pods where they talk to each other.
                const databaseSide = view
                    .all("AuthorizationPolicy")
                    .filter((p) => !["deny-by-default", "allow-clients-to-gateway", "allow-gateway-to-orthanc", "allow-gateway-to-gatekeeper", "deny-gateway-admin-paths", "deny-cross-site-writes"].includes(p.inputs.metadata.name));
                const principals = new Set(databaseSide.flatMap((p) => p.inputs.spec.rules.flatMap((r: any) => r.from.flatMap((f: any) => f.source.principals ?? []))));
                const expected: Record<string, string[]> = {
                    "bitnami-ha": [
                        `cluster.local/ns/${ns}/sa/orthanc`,
                        `cluster.local/ns/${ns}/sa/postgresql-ha`,
                        ...(config.backup ? [`cluster.local/ns/${ns}/sa/database-backup`] : []),
                        // The audit database's clients: the gatekeeper and the retention job at Pgpool, the setup at the nodes.
                        ...(auditedOf(view) ? ["gatekeeper", "audit-database-setup", "audit-retention"].map((sa) => `cluster.local/ns/${ns}/sa/${sa}`) : []),
                    ],
                    // The audit database's client at the pooler: the gatekeeper (its jobs reach the instances, which have no sidecar).
                    "cloudnative-pg": [`cluster.local/ns/${ns}/sa/orthanc`, ...(auditedOf(view) ? [`cluster.local/ns/${ns}/sa/gatekeeper`] : [])],
                    // A managed database has no sidecar to enforce anything: its wall is the NetworkPolicy.
                    external: [],
                };
                assert.deepEqual([...principals].sort(), expected[engineOf(view)].sort(), view.tenant);
                // No rule of any policy names another namespace, and none allows by namespace without naming it.
                for (const policy of view.all("AuthorizationPolicy")) {
                    for (const rule of policy.inputs.spec.rules ?? []) {
                        for (const from of rule.from ?? []) {
                            for (const principal of from.source.principals ?? []) {
                                const own = [ns, view.names.gatewayNamespace].some((n) => principal.startsWith(`cluster.local/ns/${n}/`));
                                assert.ok(own, `${policy.name}: ${principal}`);
                            }
                            for (const namespace of from.source.namespaces ?? []) {
                                assert.equal(namespace, ns, policy.name);
                            }
                        }
                    }
                }
            }
        });

        it("backs the mesh policies with default-deny NetworkPolicies that admit no other tenant", () => {
            for (const view of views) {
                const policies = view.all("NetworkPolicy");
                for (const ns of [view.names.namespace, view.names.gatewayNamespace]) {
                    const deny = policies.find((p) => p.inputs.metadata.namespace === ns && p.inputs.metadata.name === "default-deny");
                    assert.deepEqual(deny?.inputs.spec, { podSelector: {}, policyTypes: ["Ingress", "Egress"] }, ns);
                }
                const tenant = config.tenants.find((t) => t.name === view.tenant)!;
                const allowed = new Set(["kube-system", "istio-system", "monitoring", view.names.namespace, view.names.gatewayNamespace]);
                if (tenant.database.engine === "cloudnative-pg") allowed.add("cnpg-system");
                // The stack's own S3 server, for a tenant storing there (storage.s3.inCluster).
                if (tenant.storage.type === "s3" && tenant.storage.s3?.inCluster) allowed.add("object-store");
                // The in-cluster Keycloak, for a tenant whose realm is there: its gateway and gatekeeper reach it.
                if (tenant.identity?.keycloak) allowed.add("keycloak");
                // Addresses outside the cluster the stack names: modalities Orthanc sends to, a managed database, the
                // object storage backups go to, the API server (for the engines whose pods talk to it).
                const configuredCidrs = new Set([
                    ...tenant.modalities.flatMap((m) => (m.host ? [`${m.host}/32`] : [])),
                    ...(tenant.database.external?.addresses ?? []),
                    ...(tenant.database.external?.audit?.addresses ?? []),
                    ...(config.backup?.s3.addresses ?? []),
                    // Where pods' DNS goes, when the stack gives it by address (NodeLocal DNSCache).
                    ...(config.kubernetes.dns?.addresses ?? []),
                    ...(tenant.database.engine === "cloudnative-pg" ? (config.kubernetes.apiServerAddresses ?? []) : []),
                    // The tenant's object store, by address, or any address where the stack says so (storage.anyAddress).
                    ...(tenant.storage.addresses ?? []),
                    ...(tenant.storage.anyAddress ? ["0.0.0.0/0"] : []),
                    // The tenant's identity provider, likewise (identity.oidc).
                    ...(tenant.identity?.oidc?.addresses ?? []),
                    ...(tenant.identity?.oidc?.anyAddress ? ["0.0.0.0/0"] : []),
                ]);
                for (const policy of policies) {
                    for (const rule of [...(policy.inputs.spec.ingress ?? []), ...(policy.inputs.spec.egress ?? [])]) {
                        for (const peer of [...(rule.from ?? []), ...(rule.to ?? [])]) {
                            if (peer.namespaceSelector) {
                                const name = peer.namespaceSelector.matchLabels?.["kubernetes.io/metadata.name"];
                                assert.ok(allowed.has(name), `${policy.name} admits namespace ${JSON.stringify(peer.namespaceSelector)}`);
                            }
                            if (peer.ipBlock) {
                                assert.ok(configuredCidrs.has(peer.ipBlock.cidr), `${policy.name} opens ${peer.ipBlock.cidr}, which the stack does not name`);
                                assert.equal(peer.ipBlock.except, undefined);
                            }
                        }
                        assert.ok(rule.ports?.length, `${policy.name} opens every port`);
                    }
                }
                const names = policies.map((p) => `${p.inputs.metadata.namespace}/${p.inputs.metadata.name}`).sort();
                const floor = ["allow-dns-and-istiod", ...(config.observability.enabled ? ["allow-monitoring-scrapes"] : []), "default-deny"];
                const engine: Record<string, string[]> = {
                    "bitnami-ha": [
                        "allow-pgpool",
                        "allow-postgresql-replication",
                        ...(config.backup ? ["allow-database-backup", "allow-database-backup-to-pgpool"] : []),
                        ...(auditedOf(view) ? ["allow-audit-database-jobs", "allow-audit-database-jobs-gatekeeper", "allow-audit-setup-to-postgresql", "allow-audit-to-pgpool"] : []),
                    ],
                    "cloudnative-pg": [
                        "allow-cnpg-instances",
                        "allow-cnpg-pooler",
                        ...(auditedOf(view) ? ["allow-audit-database-jobs", "allow-audit-jobs-to-cnpg-instances", "allow-gatekeeper-to-audit-database", "allow-gatekeeper-to-cnpg-pooler"] : []),
                    ],
                    // The gatekeeper's way to the audit database the site's DBA made (database.external.audit).
                    external: tenant.database.external?.audit && signsInOf(view) && !tenant.identity!.audit.stdoutOnly ? ["allow-gatekeeper-to-audit-database"] : [],
                };
                if (signsInOf(view)) {
                    // The gateway's pods reach Orthanc's DICOM port only, and the gatekeeper on its port; Orthanc admits
                    // them on the DICOM port only (its web port: the namespace's own pods, the gatekeeper among them).
                    const gatewayPods = { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": view.names.gatewayNamespace } }, podSelector: { matchLabels: { istio: view.names.gatewayIstioLabel } } };
                    const orthancIngress = view.one("NetworkPolicy", "allow-orthanc").inputs.spec.ingress;
                    const portsFor = (rules: any[], peer: unknown) => rules.filter((r) => r.from.some((f: unknown) => JSON.stringify(f) === JSON.stringify(peer))).flatMap((r) => r.ports.map((p: any) => p.port));
                    assert.deepEqual(portsFor(orthancIngress, gatewayPods), [orthancPorts.dicom]);
                    const gatewayEgress = view.one("NetworkPolicy", "allow-clients-to-gateway").inputs.spec.egress;
                    // And, for a tenant of the in-cluster Keycloak, Keycloak's pods (its realm's paths), in their namespace only.
                    const toKeycloak = tenant.identity?.keycloak ? [keycloakPorts.container] : [];
                    assert.deepEqual(gatewayEgress.flatMap((r: any) => r.ports.map((p: any) => p.port)).sort(), [orthancPorts.dicom, gatekeeperPort, ...toKeycloak].sort());
                    const keycloakRules = gatewayEgress.filter((r: any) => r.to.some((peer: any) => peer.namespaceSelector.matchLabels["kubernetes.io/metadata.name"] === keycloakNamespace));
                    assert.deepEqual(
                        keycloakRules,
                        toKeycloak.map((port) => ({ to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": keycloakNamespace } }, podSelector: { matchLabels: { ...keycloakPodLabels } } }], ports: [{ protocol: "TCP", port }] })),
                    );
                }
                const modalities = tenant.modalities.some((m) => m.host) ? ["allow-orthanc-to-modalities"] : [];
                assert.deepEqual(
                    names,
                    [
                        ...[...floor, "allow-clients-to-gateway"].map((n) => `${view.names.gatewayNamespace}/${n}`),
                        ...[...floor, "allow-orthanc", ...modalities, ...engine[tenant.database.engine], ...(signsInOf(view) ? ["allow-gatekeeper"] : [])].map((n) => `${view.names.namespace}/${n}`),
                    ].sort(),
                );
            }
        });

        itForBitnami("installs PostgreSQL HA per tenant from the pinned OCI chart with images that can be pulled today", () => {
            for (const view of bitnami()) {
                const release = view.release("postgresql-ha");
                assert.equal(release.inputs.chart, chartReference(charts.postgresqlHa)); // @sha256:<digest> once locked
                assert.equal(release.inputs.version, charts.postgresqlHa.version);
                const values = release.inputs.values;
                for (const image of [values.postgresql.image, values.pgpool.image, values.metrics.image, values.volumePermissions.image]) {
                    assert.match(image.repository, /^bitnamilegacy\//);
                    assert.match(image.tag, /^\d/);
                }
                assert.equal(values.global?.security?.allowInsecureImages, undefined, "the chart only warns on bitnamilegacy images (tests/imagePins.test.ts)");
                assert.equal(values.service.portName, "tcp-postgresql");
            }
        });

        itForBitnami("runs the PostgreSQL exporter, scraped through Istio's metrics merging: no port beyond the proxies' is opened to Prometheus", () => {
            for (const view of bitnami()) {
                const metrics = view.release("postgresql-ha").inputs.values.metrics;
                assert.equal(metrics.enabled, true);
                // postgresql-ha 16.3.2 templates/postgresql/statefulset.yaml puts metrics.annotations on the PostgreSQL pods;
                // Istio 1.30.3 pkg/kube/inject/webhook.go (applyPrometheusMerge) moves them into the sidecar and points
                // prometheus.io/port at 15020, where pilot/cmd/pilot-agent/status/server.go (handleStats) serves Envoy's
                // metrics and the application's, fetched from http://localhost:<port><path>.
                assert.deepEqual(metrics.annotations, { "prometheus.io/scrape": "true", "prometheus.io/port": "9187", "prometheus.io/path": "/metrics" });
                assert.equal(metrics.serviceMonitor.enabled, false);
                assert.equal(metrics.service.enabled, false);
                for (const ns of config.observability.enabled ? [view.names.namespace, view.names.gatewayNamespace] : []) {
                    const scrapes = view.all("NetworkPolicy").find((p) => p.inputs.metadata.namespace === ns && p.inputs.metadata.name === "allow-monitoring-scrapes")!;
                    assert.deepEqual(scrapes.inputs.spec.ingress, [
                        {
                            from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring", "korthweb.io/monitoring": "prometheus" } } }],
                            ports: [{ protocol: "TCP", port: 15020 }, { protocol: "TCP", port: 15090 }],
                        },
                    ]);
                }
                const opened = view.all("NetworkPolicy").flatMap((p) => (p.inputs.spec.ingress ?? []).flatMap((rule: any) => (rule.ports ?? []).map((port: any) => port.port)));
                assert.ok(!opened.includes(9187), "the exporter's port stays closed");
            }
        });

        itForBitnami("hands PostgreSQL generated passwords in existing Secrets, for a database role that is not postgres", () => {
            for (const view of bitnami()) {
                const values = view.release("postgresql-ha").inputs.values;
                assert.equal(values.postgresql.existingSecret, postgresSecrets.postgresql);
                assert.equal(values.pgpool.existingSecret, postgresSecrets.pgpool);
                assert.notEqual(values.postgresql.username, "postgres");
                assert.equal(values.postgresql.password, undefined);
                assert.equal(values.pgpool.adminPassword, undefined);
                const expectations: [string, string[]][] = [
                    [postgresSecrets.postgresql, ["password", "postgres-password", "repmgr-password"]],
                    [postgresSecrets.pgpool, ["admin-password", "sr-check-password"]],
                ];
                for (const [secretName, keys] of expectations) {
                    const stringData = view.one("Secret", secretName).inputs.stringData;
                    const data = plain(stringData);
                    assert.deepEqual(Object.keys(data).sort(), keys);
                    for (const key of keys) {
                        assert.ok(secretAt(stringData, key), `${secretName}/${key} is a secret`);
                        assert.match(data[key], new RegExp(`^mockpassword${view.tenant}`));
                    }
                }
            }
        });

        itForBitnami("sizes PostgreSQL from the configuration with explicit resources, and keeps volumes when the StatefulSet goes", () => {
            for (const view of bitnami()) {
                const values = view.release("postgresql-ha").inputs.values;
                const settings = config.tenants.find((t) => t.name === view.tenant)!.postgres;
                assert.equal(values.postgresql.replicaCount, settings.replicas);
                assert.equal(values.pgpool.replicaCount, settings.pgpoolReplicas);
                assert.equal(values.persistence.size, settings.volumeSize);
                for (const part of [values.postgresql, values.pgpool]) {
                    assert.ok(part.resources.requests.memory && part.resources.limits.memory);
                    assert.equal(part.networkPolicy.enabled, false, "the chart's allow-all NetworkPolicy would open the wall");
                }
                assert.deepEqual(values.persistentVolumeClaimRetentionPolicy, { enabled: true, whenDeleted: "Retain", whenScaled: "Retain" });
            }
        });

        itForBitnami("sizes Pgpool so that every Orthanc connection fits even with one Pgpool pod left, and PostgreSQL for all Pgpool", () => {
            for (const view of bitnami()) {
                const values = view.release("postgresql-ha").inputs.values;
                const settings = config.tenants.find((t) => t.name === view.tenant)!;
                const orthanc = JSON.parse(plain(view.one("Secret", "orthanc-config").inputs.stringData)["orthanc.json"]);
                const perReplica = orthanc.PostgreSQL.IndexConnectionsCount;
                assert.ok(Number.isInteger(perReplica) && perReplica > 0, "Orthanc's index connections are set, not the plugin's default");
                // maxReplicas, plus one pod surging in a rolling update, against one Pgpool pod minus its reserved slot.
                const needed = (settings.orthanc.maxReplicas + 1) * perReplica;
                const onePgpool = Number(values.pgpool.numInitChildren) - (values.pgpool.reservedConnections ?? 1);
                assert.ok(needed <= onePgpool, `${needed} Orthanc connections, one Pgpool takes ${onePgpool}`);
                const backends = settings.postgres.pgpoolReplicas * Number(values.pgpool.numInitChildren) * Number(values.pgpool.maxPool);
                assert.ok(backends < Number(values.postgresql.maxConnections), `${backends} backends, max_connections ${values.postgresql.maxConnections}`);
            }
        });

        itForBitnami("sends every query to the primary, so a replica reads what another just stored", () => {
            for (const view of bitnami()) {
                assert.equal(view.release("postgresql-ha").inputs.values.pgpool.useLoadBalancing, false);
            }
        });

        it("upgrades the Orthanc image as the Orthanc Book asks: every old pod stopped, then one new pod migrates alone", () => {
            for (const view of views) {
                const deployment = view.one("Deployment", orthancDeploymentName());
                // The name carries the image: a new image is a replacement, deleted before it is created.
                assert.equal(deployment.inputs.metadata.name, `orthanc-${orthancImage.tag.replace(/\./g, "-")}`);
                assert.equal(deployment.options?.deleteBeforeReplace, true);
                // Within one image, configuration changes roll one pod at a time, never below the count.
                assert.deepEqual(deployment.inputs.spec.strategy, { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
                // One pod at first; the autoscaler, created only once that pod is ready, scales out.
                assert.equal(deployment.inputs.spec.replicas, 1);
                const hpa = view.one("HorizontalPodAutoscaler", "orthanc");
                assert.ok(hpa.options?.dependsOn.includes(deployment.name), "the autoscaler waits for the Deployment");
            }
        });

        it("leaves the replica count to the autoscaler after the Deployment is created", () => {
            for (const view of views) {
                assert.deepEqual(view.one("Deployment", orthancDeploymentName()).options?.ignoreChanges, ["spec.replicas"]);
            }
        });

        it("protects what holds a tenant's data, so removing a tenant from the configuration cannot delete it", () => {
            for (const [index, view] of views.entries()) {
                const protect = config.tenants[index].protectData;
                assert.equal(protect, stack !== "local", "only the local stack's data is throwaway");
                assert.equal(view.one("Namespace", view.names.namespace).options?.protect, protect);
                const dataBearing: Record<string, () => RecordedResource[]> = {
                    "bitnami-ha": () => [view.release("postgresql-ha"), view.one("Secret", postgresSecrets.postgresql)],
                    "cloudnative-pg": () => [...view.all("Cluster"), ...view.all("ObjectStore")],
                    // The data is the provider's; the program holds only a CA and the configured password.
                    external: () => [],
                };
                for (const resource of dataBearing[engineOf(view)]()) {
                    assert.equal(resource.options?.protect, protect, resource.name);
                }
                const generated = view.resources.find((r) => r.name === `${view.tenant}-database-orthanc-password`);
                if (engineOf(view) !== "external") {
                    assert.equal(generated?.options?.protect, protect, "the database password");
                }
                assert.equal(view.one("Deployment", orthancDeploymentName()).options?.protect, false, "stateless parts stay replaceable");
            }
        });

        it("runs Orthanc pinned, with at least two replicas, an autoscaler with the configured bounds and a disruption budget", () => {
            for (const [index, view] of views.entries()) {
                const settings = config.tenants[index].orthanc;
                const deployment = view.one("Deployment", orthancDeploymentName()).inputs.spec;
                // The -full build where the tenant's storage plugin is only there (Azure Blob, Google Cloud Storage).
                const full = ["azure-blob", "google-cloud-storage"].includes(config.tenants[index].storage.type) ? "-full" : "";
                assert.match(deployment.template.spec.containers[0].image, new RegExp(`^docker\\.io/orthancteam/orthanc:\\d+\\.\\d+\\.\\d+${full}$`));
                const hpa = view.one("HorizontalPodAutoscaler", "orthanc").inputs.spec;
                assert.deepEqual([hpa.minReplicas, hpa.maxReplicas], [settings.minReplicas, settings.maxReplicas]);
                assert.ok(hpa.minReplicas >= 2);
                assert.equal(hpa.scaleTargetRef.name, orthancDeploymentName());
                const pdb = view.one("PodDisruptionBudget", "orthanc").inputs.spec;
                assert.deepEqual(pdb.selector.matchLabels, deployment.selector.matchLabels);
                assert.equal(pdb.maxUnavailable, 1);
                const spread = deployment.template.spec.topologySpreadConstraints.map((c: any) => c.topologyKey);
                assert.ok(spread.includes("kubernetes.io/hostname"));
            }
        });

        it("hardens Orthanc's pods: non-root, no escalation, no capabilities, RuntimeDefault seccomp, read-only root", () => {
            for (const view of views) {
                const pod = view.one("Deployment", orthancDeploymentName()).inputs.spec.template.spec;
                assert.equal(pod.securityContext.runAsNonRoot, true);
                assert.equal(pod.securityContext.seccompProfile.type, "RuntimeDefault");
                assert.equal(pod.automountServiceAccountToken, false);
                const container = pod.containers[0];
                assert.deepEqual(container.securityContext.capabilities, { drop: ["ALL"] });
                assert.equal(container.securityContext.allowPrivilegeEscalation, false);
                assert.equal(container.securityContext.readOnlyRootFilesystem, true);
                // Where the image writes, an emptyDir is mounted.
                const volumes = new Map(pod.volumes.map((v: any) => [v.name, v]));
                const writable = container.volumeMounts.filter((m: any) => !m.readOnly).map((m: any) => m.mountPath);
                assert.ok(writable.includes("/tmp"));
                for (const mount of container.volumeMounts.filter((m: any) => !m.readOnly)) {
                    // Scratch space, or the shared volume of filesystem storage (the tenant's files).
                    const shared = mount.mountPath === storageMountPath && (volumes.get(mount.name) as any).persistentVolumeClaim?.claimName === storageClaimName;
                    assert.ok((volumes.get(mount.name) as any).emptyDir || shared, `${mount.mountPath} is scratch space`);
                }
            }
        });

        it("gives each Orthanc pod its own /etc/hostid (DCMTK's UIDs carry it), written by a hardened init container", () => {
            for (const view of views) {
                const pod = view.one("Deployment", orthancDeploymentName()).inputs.spec.template.spec;
                const mount = pod.containers[0].volumeMounts.find((m: any) => m.mountPath === "/etc/hostid");
                assert.deepEqual(mount, { name: "hostid", mountPath: "/etc/hostid", subPath: "hostid", readOnly: true });
                assert.ok(pod.volumes.find((v: any) => v.name === "hostid").emptyDir, "a new one per pod");
                const [init] = pod.initContainers;
                const written = init.volumeMounts.find((m: any) => m.name === "hostid");
                // Four random bytes: glibc's gethostid() reads exactly four.
                assert.deepEqual(init.command, ["/bin/sh", "-c", `head -c 4 /dev/urandom > ${written.mountPath}/hostid`]);
                assert.equal(init.image, pod.containers[0].image, "no image beyond Orthanc's");
                assert.deepEqual(init.securityContext, pod.containers[0].securityContext);
                assert.equal(init.securityContext.readOnlyRootFilesystem, true);
            }
        });

        it("sizes Orthanc for real studies, not Korthweb's 128Mi", () => {
            for (const [index, view] of views.entries()) {
                const resources = view.one("Deployment", orthancDeploymentName()).inputs.spec.template.spec.containers[0].resources;
                assert.equal(resources.limits.memory, config.tenants[index].orthanc.memoryLimit);
                assert.equal(resources.requests.memory, config.tenants[index].orthanc.memoryRequest);
                assert.ok(mebibytes(resources.limits.memory) >= 2048);
                assert.ok(mebibytes(resources.requests.memory) >= 512);
            }
        });

        it("gives each Orthanc replica its own database server identifier, the pod's name", () => {
            for (const view of views) {
                const env = view.one("Deployment", orthancDeploymentName()).inputs.spec.template.spec.containers[0].env;
                const identifier = env.find((e: any) => e.name === "ORTHANC__DATABASE_SERVER_IDENTIFIER");
                assert.deepEqual(identifier.valueFrom, { fieldRef: { fieldPath: "metadata.name" } });
            }
        });

        it("starts Orthanc at its default log level: no VERBOSE_ENABLED or TRACE_ENABLED, which the DICOMweb plugin answers by logging QIDO-RS arguments (tests/integration/logs.test.ts)", () => {
            // orthanc-builder 26.8.1 docker/orthanc/docker-entrypoint.sh turns either variable into --verbose/--trace.
            for (const view of views) {
                const containers = view.one("Deployment", orthancDeploymentName()).inputs.spec.template.spec.containers;
                for (const container of containers) {
                    const names = (container.env ?? []).map((e: any) => e.name);
                    assert.deepEqual(names.filter((name: string) => /^(VERBOSE|TRACE)_ENABLED$/.test(name)), [], container.name);
                    assert.doesNotMatch(JSON.stringify([container.args ?? [], container.command ?? []]), /--(verbose|trace)/, container.name);
                }
            }
        });

        it("probes Orthanc without credentials in the pod spec", () => {
            for (const view of views) {
                const container = view.one("Deployment", orthancDeploymentName()).inputs.spec.template.spec.containers[0];
                for (const probe of [container.livenessProbe, container.readinessProbe, container.startupProbe]) {
                    assert.ok(probe, "probe defined");
                    assert.equal(probe.httpGet?.httpHeaders, undefined);
                    assert.doesNotMatch(JSON.stringify(probe), /Authorization: Basic [A-Za-z0-9+/=]{8,}|mockpassword/);
                }
            }
        });

        it("names Orthanc's Service ports for Istio: http- for the REST API, tcp- for DICOM", () => {
            for (const view of views) {
                const ports = view.one("Service", "orthanc").inputs.spec.ports;
                assert.deepEqual(ports.map((p: any) => [p.name.split("-")[0], p.port]), [["http", orthancPorts.http], ["tcp", orthancPorts.dicom]]);
            }
        });

        it("delivers Orthanc's configuration as a Secret with the PostgreSQL index, the files where the tenant's storage says, and the generated credentials", () => {
            for (const view of views) {
                const secret = view.one("Secret", "orthanc-config");
                assert.ok(secretAt(secret.inputs.stringData, "orthanc.json"));
                const orthanc = JSON.parse(plain(secret.inputs.stringData)["orthanc.json"]);
                assert.equal(orthanc.PostgreSQL.EnableIndex, true);
                const storageType = config.tenants.find((t) => t.name === view.tenant)!.storage.type;
                assert.equal(orthanc.PostgreSQL.EnableStorage, storageType === "postgresql", storageType);
                const external = config.tenants.find((t) => t.name === view.tenant)!.database.external;
                if (external) {
                    // Verified TLS to the managed server, its password from the configuration.
                    assert.match(orthanc.PostgreSQL.ConnectionUri, new RegExp(`^postgresql://orthanc:test-database-password-${view.tenant}@${external.host}:5432/`));
                    assert.match(orthanc.PostgreSQL.ConnectionUri, /sslmode=verify-full/);
                } else {
                    const host = { "bitnami-ha": "postgresql-ha-pgpool", "cloudnative-pg": "postgresql-pooler-rw" }[engineOf(view) as "bitnami-ha"];
                    assert.equal(orthanc.PostgreSQL.Host, `${host}.${view.names.namespace}.svc.cluster.local`);
                    assert.equal(orthanc.PostgreSQL.Password, `mockpassword${view.tenant}databaseorthancpassword`);
                }
                assert.deepEqual(orthanc.RegisteredUsers, {
                    admin: `mockpassword${view.tenant}orthancadminpassword`,
                    ...(signsInOf(view) ? { gatekeeper: `mockpassword${view.tenant}identityorthancpassword` } : {}),
                });
                const pod = view.one("Deployment", orthancDeploymentName()).inputs.spec.template.spec;
                assert.ok(pod.volumes.some((v: any) => v.secret?.secretName === "orthanc-config"));
                // A ConfigMap holds public material only: the managed database's CA at most, and the gatekeeper's
                // source and configuration (tests/identity.test.ts).
                for (const configMap of view.all("ConfigMap").filter((c) => c.inputs.metadata.name !== "gatekeeper")) {
                    for (const value of Object.values(configMap.inputs.data ?? {})) {
                        assert.match(String(value), /^-----BEGIN CERTIFICATE-----[\s\S]*-----END CERTIFICATE-----\s*$/, configMap.name);
                    }
                }
            }
        });

        it("exports per tenant the web URL, DICOM host and port, namespace, ingress address, admin user, secret password, CA", () => {
            for (const view of views) {
                const outputs = rendered.outputs.tenantEndpoints[view.tenant];
                // With a NodePort gateway, the port people type (README "Local cluster": https://web.bhs...:30443/).
                const nodePort = config.ingress.serviceType === "NodePort" ? config.tenants.find((t) => t.name === view.tenant)!.nodePorts?.https : undefined;
                assert.equal(outputs.webUrl, `https://${view.names.webHost}${nodePort ? `:${nodePort}` : ""}`);
                assert.equal(outputs.dicomHost, view.names.dicomHost);
                assert.equal(outputs.dicomPort, 11112);
                assert.equal(outputs.namespace, view.names.namespace);
                assert.equal(outputs.gatewayNamespace, view.names.gatewayNamespace);
                assert.equal(outputs.ingressAddress, "203.0.113.10");
                assert.equal(outputs.adminUser, "admin");
                assert.deepEqual(outputs.adminPassword, { secret: true, value: `mockpassword${view.tenant}orthancadminpassword` });
                assert.match(JSON.stringify(outputs.caCertificate), new RegExp(`MOCK${view.tenant}-pki-ca-certificate`));
            }
        });

        it("keeps every password and private key secret, and out of ConfigMaps, env literals, probes and annotations", () => {
            const generated = rendered.resources
                .filter((r) => r.type === "random:index/randomPassword:RandomPassword")
                .map((r) => `mockpassword${r.name.replace(/[^a-zA-Z0-9]/g, "")}`);
            const keys = rendered.resources.filter((r) => r.type === "tls:index/privateKey:PrivateKey").map((r) => `MOCK${r.name}`);
            const modalityKeys = config.tenants.reduce((n, t) => n + t.modalities.flatMap((m) => modalityCertificateIds(t.name, config.pki, m)).length, 0);
            assert.ok(generated.length >= views.length && keys.length === 1 + views.length + modalityKeys);
            // Credentials the configuration holds (as secrets) are material too.
            const configured = [
                ...config.tenants.flatMap((t) => (t.database.external ? [t.database.external.password] : [])),
                ...Object.values(config.backup?.tenants ?? {}).flatMap((own) => (own.secretAccessKey !== undefined ? [own.secretAccessKey] : [])),
            ];
            const material = [...generated, ...keys, ...configured];
            for (const resource of rendered.resources) {
                for (const leak of exposedOutsideSecrets(resource.inputs, material)) {
                    assert.fail(`${resource.type} ${resource.name} holds secret material outside a secret at ${leak}`);
                }
                // Even wrapped as a secret, these places must never carry it: they are shown, logged or listed.
                const exposedPlaces = [
                    ...(resource.type.endsWith(":ConfigMap") ? [resource.inputs.data, resource.inputs.binaryData] : []),
                    ...containersOf(resource).flatMap((c: any) => [c.env, c.livenessProbe, c.readinessProbe, c.startupProbe, c.args, c.command]),
                    resource.inputs.metadata?.annotations,
                    resource.inputs.spec?.template?.metadata?.annotations,
                ];
                const text = JSON.stringify(plain(exposedPlaces));
                for (const value of material) {
                    assert.ok(!text.includes(value), `${resource.type} ${resource.name} shows ${value}`);
                }
            }
        });

        it("shares nothing between tenants: namespaces, secrets, gateway selectors and trust", () => {
            const [first, second] = views;
            // Objects the program reads (`.get`) are identified by their id, `namespace/name`.
            const objectKey = (r: RecordedResource) =>
                `${r.type}/${r.id || `${r.inputs.metadata?.namespace ?? r.inputs.namespace}/${r.inputs.metadata?.name ?? r.inputs.name}`}`;
            const firstKeys = new Set(first.resources.filter((r) => r.type.startsWith("kubernetes:")).map(objectKey));
            for (const resource of second.resources.filter((r) => r.type.startsWith("kubernetes:"))) {
                assert.ok(!firstKeys.has(objectKey(resource)), `${objectKey(resource)} is shared`);
            }
            const text = (view: TenantView) => JSON.stringify(plain(view.resources.map((r) => r.inputs)));
            assert.ok(!text(first).includes(`MOCK${second.tenant}-pki-ca`), `${first.tenant} holds ${second.tenant}'s CA`);
            assert.ok(!text(second).includes(`MOCK${first.tenant}-pki-ca`), `${second.tenant} holds ${first.tenant}'s CA`);
            for (const ns of [second.names.namespace, second.names.gatewayNamespace]) {
                assert.ok(!text(first).includes(ns));
            }
            for (const ns of [first.names.namespace, first.names.gatewayNamespace]) {
                assert.ok(!text(second).includes(ns));
            }
        });

        it("issues every configured modality a client certificate from its tenant CA, its key a secret", () => {
            for (const [index, view] of views.entries()) {
                for (const modality of config.tenants[index].modalities) {
                    const [id] = modalityCertificateIds(view.tenant, config.pki, modality);
                    const resource = view.one("LocallySignedCert", `${id}-certificate`);
                    const certificate = resource.inputs;
                    assert.match(plain(certificate.caPrivateKeyPem), new RegExp(`MOCK${view.tenant}-pki-ca-key`));
                    assert.deepEqual(certificate.allowedUses, ["digital_signature", "key_encipherment", "client_auth"]);
                    assert.equal(certificate.isCaCertificate, undefined);
                    // Never re-issued under its name (the next period's comes under its own), not even when the tenant
                    // CA's certificate is renewed.
                    assert.equal(certificate.earlyRenewalHours, 0);
                    assert.deepEqual(resource.options?.ignoreChanges, ["caCertPem"]);
                    assert.equal(view.one("CertRequest", `${id}-request`).inputs.subject.commonName, modality.aeTitle);
                    const secret = rendered.outputs.modalityCertificates;
                    assert.equal(secret.secret, true, "the whole output is secret");
                    const issued = secret.value[view.tenant][modality.name];
                    assert.match(issued.privateKey, new RegExp(`MOCK${id}-key`));
                    assert.match(issued.certificate, new RegExp(`MOCK${id}-certificate`));
                    assert.equal(issued.aeTitle, modality.aeTitle);
                    // The tenant's own anchor, under which no other tenant's server certificate chains; never the root.
                    assert.match(issued.serverCa, new RegExp(`MOCK${view.tenant}-pki-ca-trust-anchor`));
                    assert.doesNotMatch(issued.serverCa, /MOCKroot-ca/);
                    assert.deepEqual([issued.dicomHost, issued.dicomPort], [view.names.dicomHost, 11112]);
                    const status = rendered.outputs.tenantEndpoints[view.tenant].modalities[modality.name];
                    assert.deepEqual(issued.renewal, status);
                    const periods = certificatePeriods(
                        { validityHours: config.pki.modalityCertificateValidityHours, overlapHours: config.pki.modalityCertificateOverlapHours },
                        new Date(),
                    );
                    assert.equal(status.nextCertificateFrom, periods.nextStart.toISOString());
                    assert.equal(status.previous?.admittedUntil, periods.previous?.admittedUntil.toISOString());
                }
            }
        });

        it("accepts on the DICOM port only the configured modalities' certificates still admitted, and none when there is none", () => {
            for (const [index, view] of views.entries()) {
                const tls = view.one("Gateway", "dicom").inputs.spec.servers[0].tls;
                const expected = config.tenants[index].modalities.flatMap((m) =>
                    modalityCertificateIds(view.tenant, config.pki, m).map((id) =>
                        certificateFingerprint(`-----BEGIN CERTIFICATE-----\nMOCK${id}-certificate\n-----END CERTIFICATE-----\n`),
                    ),
                );
                assert.deepEqual(tls.verifyCertificateHash, expected.length ? expected.sort() : [noClientFingerprint]);
                const registered = JSON.parse(plain(view.one("Secret", "orthanc-config").inputs.stringData)["orthanc.json"]).DicomModalities;
                assert.deepEqual(Object.keys(registered).sort(), config.tenants[index].modalities.map((m) => m.name).sort());
            }
        });

        it("backs up every database the program runs, on the configured schedule, to the configured storage", () => {
            for (const view of views) {
                const engine = engineOf(view);
                // The audit database's retention CronJob is not a backup (tests/audit.test.ts).
                const cronJobs = view.all("CronJob").filter((c) => c.inputs.metadata.name !== "audit-retention");
                const scheduled = view.all("ScheduledBackup");
                if (!config.backup || engine === "external") {
                    // No storage configured, or the provider's database: the program schedules nothing.
                    assert.deepEqual([cronJobs.length, scheduled.length], [0, 0], view.tenant);
                    continue;
                }
                if (engine === "bitnami-ha") {
                    const cronJob = view.one("CronJob", "database-backup").inputs;
                    assert.equal(cronJob.spec.schedule, config.backup.schedule);
                    assert.equal(cronJob.metadata.labels["korthweb.io/backup"], "true", "what the BackupTooOld alert selects");
                    const s3 = view.one("Secret", "database-backup-s3").inputs.stringData;
                    assert.ok(secretAt(s3, "AWS_SECRET_ACCESS_KEY"));
                } else {
                    assert.equal(scheduled.length, 1);
                    assert.equal(view.all("ObjectStore").length, 1);
                }
            }
        });

        it("creates workloads only after the mesh policies, NetworkPolicies and sidecar injector exist", () => {
            for (const view of views) {
                const databaseWorkloads: Record<string, () => RecordedResource[]> = {
                    "bitnami-ha": () => [view.release("postgresql-ha")],
                    "cloudnative-pg": () => [...view.all("Cluster"), ...view.all("Pooler")],
                    external: () => [],
                };
                for (const workload of [view.one("Deployment", orthancDeploymentName()), view.release(view.names.gatewayRelease), ...databaseWorkloads[engineOf(view)]()]) {
                    const dependsOn = workload.options?.dependsOn ?? [];
                    const walls = [view.names.namespace, view.names.gatewayNamespace].flatMap((ns) => [
                        `${view.tenant}-walls-strict-mtls-${ns}`,
                        `${view.tenant}-walls-authz-${ns}-deny-by-default`,
                        `${view.tenant}-walls-netpol-${ns}-default-deny`,
                    ]);
                    for (const required of [...walls, "istio-istiod", "istio-cni"]) {
                        assert.ok(dependsOn.includes(required), `${workload.name} does not wait for ${required}`);
                    }
                }
            }
        });
    });
}

/** Paths where a known secret value appears without a secret wrapper around it. */
function exposedOutsideSecrets(value: unknown, material: string[], path = "inputs"): string[] {
    if (isSecretValue(value)) {
        return [];
    }
    if (typeof value === "string") {
        return material.some((m) => value.includes(m)) ? [path] : [];
    }
    if (value !== null && typeof value === "object") {
        return Object.entries(value).flatMap(([k, v]) => exposedOutsideSecrets(v, material, `${path}.${k}`));
    }
    return [];
}

function containersOf(resource: RecordedResource): any[] {
    const pod = plain(resource.inputs.spec)?.template?.spec;
    return pod ? [...(pod.containers ?? []), ...(pod.initContainers ?? [])] : [];
}

function mebibytes(quantity: string): number {
    const match = /^(\d+)(Mi|Gi)$/.exec(quantity);
    assert.ok(match, quantity);
    return Number(match[1]) * (match[2] === "Gi" ? 1024 : 1);
}

describe("adding a tenant", () => {
    it("adds only that tenant's resources and changes nothing else", async () => {
        const [before, after] = await Promise.all([renderStack("dev"), renderStack("dev", devVariants.withThirdTenant())]);
        assert.equal(after.error, undefined);
        const key = (r: RecordedResource) => `${r.type}::${r.name}`;
        const beforeByKey = new Map(before.resources.map((r) => [key(r), r]));
        const added = after.resources.filter((r) => !beforeByKey.has(key(r)));
        assert.ok(added.length > 40, `only ${added.length} resources added`);
        for (const resource of added) {
            assert.ok(resource.name === thirdTenant.name || resource.name.startsWith(`${thirdTenant.name}-`), `${key(resource)} is not the new tenant's`);
        }
        assert.equal(after.resources.length, before.resources.length + added.length, "nothing removed");
        for (const resource of after.resources.filter((r) => beforeByKey.has(key(r)))) {
            // Kiali's release names the namespaces it may see (observability.ts kialiValues): the new tenant's join, nothing else moves.
            const withoutKialiNamespaces = (inputs: any) =>
                resource.name === "observability-kiali" ? { ...inputs, values: { ...inputs.values, deployment: { ...inputs.values.deployment, discovery_selectors: undefined } } } : inputs;
            assert.deepEqual(withoutKialiNamespaces(resource.inputs), withoutKialiNamespaces(beforeByKey.get(key(resource))!.inputs), `${key(resource)} changed`);
        }
        assert.ok(added.some((r) => r.type === "kubernetes:core/v1:Namespace" && r.inputs.metadata.name === `${thirdTenant.name}-orthweb`));
    });
});

describe("modalities", () => {
    it("rotating one modality's certificate replaces its key and certificate alone, and updates the allow-list", async () => {
        const [before, after] = await Promise.all([renderStack("dev"), renderStack("dev", devVariants.withRotatedCertificate())]);
        assert.equal(after.error, undefined);
        const key = (r: RecordedResource) => `${r.type}::${r.name}`;
        const beforeByKey = new Map(before.resources.map((r) => [key(r), r]));
        const afterKeys = new Set(after.resources.map(key));
        const removed = before.resources.filter((r) => !afterKeys.has(key(r))).map((r) => r.name);
        const added = after.resources.filter((r) => !beforeByKey.has(key(r))).map((r) => r.name);
        const pki = parsedStackFile("dev").pki;
        const names = (generation: number) =>
            modalityCertificateIds("bhs", pki, { name: "tester", certificateGeneration: generation }).flatMap((id) => ["certificate", "key", "request"].map((r) => `${id}-${r}`));
        assert.deepEqual(removed.sort(), names(1).sort());
        assert.deepEqual(added.sort(), names(2).sort());
        const changed = after.resources
            .filter((r) => beforeByKey.has(key(r)) && JSON.stringify(r.inputs) !== JSON.stringify(beforeByKey.get(key(r))!.inputs))
            .map((r) => r.name);
        assert.deepEqual(changed, ["bhs-gateway-dicom-gateway"], "only bhs's DICOM allow-list changes");
    });

    it("opens the mesh and the NetworkPolicy to exactly the address a modality retrieves to with C-MOVE", async () => {
        const rendered = await renderStack("dev", devVariants.withModalityAddress());
        assert.equal(rendered.error, undefined);
        // The modality's entries (dev's object storage and identity provider have their own, by name: tests/storage.test.ts,
        // tests/identity.test.ts).
        const entries = rendered.resources.filter(
            (r) => r.type.endsWith(":ServiceEntry") && ![storageWallNames.serviceEntry, identityWallNames.serviceEntry].some((name) => r.inputs.metadata.name.startsWith(name)),
        );
        assert.deepEqual(
            entries.map((e) => [e.inputs.metadata.namespace, e.inputs.spec.addresses, e.inputs.spec.ports[0].number, e.inputs.spec.exportTo]),
            [["bhs-orthweb", [`${modalityAddress.host}/32`], modalityAddress.port, ["."]]],
        );
        const policy = rendered.resources.find((r) => r.type.endsWith(":NetworkPolicy") && r.inputs.metadata.name === "allow-orthanc-to-modalities")!;
        assert.deepEqual(policy.inputs.spec.egress, [{ to: [{ ipBlock: { cidr: `${modalityAddress.host}/32` } }], ports: [{ protocol: "TCP", port: modalityAddress.port }] }]);
        const orthanc = JSON.parse(
            plain(rendered.resources.find((r) => r.type.endsWith(":Secret") && r.inputs.metadata.name === "orthanc-config" && r.inputs.metadata.namespace === "bhs-orthweb")!.inputs.stringData)["orthanc.json"],
        );
        assert.equal(orthanc.DicomModalities.tester.Host, modalityAddress.host);
        assert.equal(orthanc.DicomModalities.tester.AllowMove, true);
    });
});

describe("the Orthanc configuration builder", () => {
    const base = {
        displayName: "Beaverdale Health Services",
        aeTitle: "ORTHANC",
        httpPort: 8042,
        dicomPort: 4242,
        adminUser: "admin",
        adminPassword: "generated",
        database: { host: "db", port: 5432, name: "orthanc", user: "orthanc", password: "dbpass", connections: 5 },
        workDirectory: "/work",
        configDirectory: "/run/secrets",
        modalities: [
            { name: "ct-1", aeTitle: "CT1", host: "10.1.2.3", port: 104 },
            { name: "tester", aeTitle: "TESTER" },
        ],
    };

    it("stores index and DICOM files in PostgreSQL, without locking the database, for several replicas", () => {
        const config = orthancConfig(base) as any;
        assert.equal(config.PostgreSQL.EnableIndex, true);
        assert.equal(config.PostgreSQL.EnableStorage, true);
        assert.equal(config.PostgreSQL.Lock, false);
        // orthanc-databases OrthancPostgreSQL-10.3 Framework/PostgreSQL/PostgreSQLParameters.cpp reads "TransactionMode":
        // "ReadCommitted" or "Serializable"; anything else stops the plugin.
        assert.ok(["ReadCommitted", "Serializable"].includes(config.PostgreSQL.TransactionMode));
        assert.equal(config.PostgreSQL.TransactionMode, "ReadCommitted");
        assert.equal(config.SaveJobs, false);
        assert.equal(config.Plugins, undefined, "the image's start-up chooses the plugins");
    });

    it("requires authentication with the generated admin password and no other user", () => {
        const config = orthancConfig(base) as any;
        assert.equal(config.AuthenticationEnabled, true);
        assert.deepEqual(config.RegisteredUsers, { admin: "generated" });
        assert.ok(!JSON.stringify(config).includes('"orthanc"}'), "no default orthanc password");
    });

    it("keeps patient identifiers out of the logs", () => {
        assert.equal((orthancConfig(base) as any).DeidentifyLogs, true);
    });

    it("answers only registered modalities, and sends C-MOVE only to those with an address", () => {
        const config = orthancConfig(base) as any;
        for (const key of ["DicomAlwaysAllowStore", "DicomAlwaysAllowFind", "DicomAlwaysAllowGet", "DicomAlwaysAllowMove", "DicomModalitiesInDatabase"]) {
            assert.equal(config[key], false, key);
        }
        assert.deepEqual(config.DicomModalities["ct-1"], { AET: "CT1", Host: "10.1.2.3", Port: 104, AllowEcho: true, AllowStore: true, AllowFind: true, AllowGet: true, AllowMove: true });
        assert.equal(config.DicomModalities.tester.AET, "TESTER");
        assert.equal(config.DicomModalities.tester.AllowMove, false, "no address to send to");
        assert.equal(config.DicomCheckModalityHost, false, "the caller's address is the gateway's");
    });

    it("serves DICOMweb under /dicom-web/ with https URLs, and Orthanc Explorer 2 as the UI", () => {
        const config = orthancConfig(base) as any;
        assert.equal(config.DicomWeb.Enable, true);
        assert.equal(config.DicomWeb.Root, "/dicom-web/");
        assert.equal(config.DicomWeb.Ssl, true);
        assert.equal(config.OrthancExplorer2.IsDefaultOrthancUI, true);
        assert.equal(config.OHIF.DataSource, "dicom-web");
    });
});

describe("modality certificate renewal", () => {
    const hour = 3_600_000;
    const at = (hours: number) => new Date(hours * hour);
    // 100 h certificates overlapping by 10 h: periods of 90 h from the epoch.
    const schedule = { validityHours: 100, overlapHours: 10 };

    const periods: [string, number, { current: number; nextStart: number; previous?: [number, number] }][] = [
        ["the epoch itself: period 0, period -1 still in its overlap", 0, { current: 0, nextStart: 90, previous: [-1, 10] }],
        ["inside period 3's overlap: period 2's certificate admitted until 3's start + overlap", 275, { current: 3, nextStart: 360, previous: [2, 280] }],
        ["the hour the overlap ends: the previous certificate is no longer declared", 280, { current: 3, nextStart: 360 }],
        ["late in a period", 359.5, { current: 3, nextStart: 360 }],
        ["the hour a period starts: its certificate is new, the previous one admitted", 360, { current: 4, nextStart: 450, previous: [3, 370] }],
    ];
    for (const [what, hours, expected] of periods) {
        it(`periods: ${what}`, () => {
            const found = certificatePeriods(schedule, at(hours));
            assert.equal(found.current, expected.current);
            assert.equal(found.currentStart.getTime(), expected.current * 90 * hour);
            assert.equal(found.nextStart.getTime(), expected.nextStart * hour);
            assert.deepEqual(found.previous && [found.previous.period, found.previous.admittedUntil.getTime() / hour], expected.previous);
        });
    }

    it("periods: every certificate issued in a period lives until the previous one is no longer admitted in the next", () => {
        // Issued at any hour of period k, a certificate is valid until at least start(k+1) + overlap, the moment it is
        // dropped; so a declared certificate is never expired and the provider never re-issues one under its name.
        for (let issued = 0; issued < 1000; issued += 7) {
            const { current } = certificatePeriods(schedule, at(issued));
            const next = certificatePeriods(schedule, at((current + 1) * 90));
            assert.ok(next.previous && next.previous.period === current);
            assert.ok(issued + schedule.validityHours >= next.previous.admittedUntil.getTime() / hour);
        }
    });

    it("periods: refuses an overlap that would need more than one previous certificate", () => {
        assert.throws(() => certificatePeriods({ validityHours: 100, overlapHours: 60 }, at(0)), /at most half the validity/);
        assert.throws(() => certificatePeriods({ validityHours: 100, overlapHours: 0 }, at(0)), /positive/);
    });

    const notices: [string, RenewalState, RegExp | undefined][] = [
        ["a full-length certificate with no previous one: nothing to do", { expires: "2027-06-01T00:00:00Z", nextCertificateFrom: "2027-01-01T00:00:00Z" }, undefined],
        [
            "a new certificate while the previous is admitted: install it before then",
            { expires: "2028-06-01T00:00:00Z", nextCertificateFrom: "2028-01-01T00:00:00Z", previous: { admittedUntil: "2026-01-31T00:00:00Z" } },
            /install the new certificate \(scripts\/run modality-cert\) before 2026-01-31T00:00:00Z/,
        ],
        [
            "a certificate issued before renewal periods, expiring before its successor has had its overlap",
            { expires: "2027-01-05T00:00:00Z", nextCertificateFrom: "2027-01-01T00:00:00Z" },
            /expires 2027-01-05T00:00:00Z, before its successor .* bump the modality's certificateGeneration/,
        ],
    ];
    for (const [what, state, expected] of notices) {
        it(`notice: ${what}`, () => {
            const notice = renewalNotice(state, 10 * 24);
            if (expected === undefined) {
                assert.equal(notice, undefined);
            } else {
                assert.match(notice ?? "", expected);
            }
        });
    }

    describe("TenantPki at a given time", () => {
        before(useMocks);
        const pki = parseStackConfig({ domain: "orthweb.example.org", ingress: { serviceType: "ClusterIP" }, tenants: [{ name: "bhs", displayName: "B" }] }).pki;
        const period = pki.modalityCertificateValidityHours - pki.modalityCertificateOverlapHours;
        const modality = (certificateGeneration: number, certificateRequest?: string) => ({ name: "ct", aeTitle: "CT1", certificateGeneration, certificateRequest });
        let built = 0;
        /** Builds a tenant PKI with one modality at `now`; returns its registered certificates and its allow-list. */
        async function buildAt(now: Date, generation = 1, certificateRequest?: string) {
            const name = `renewal${built++}`;
            const rootCa = new CertificateAuthority(`${name}-root`, { commonName: "Root", organization: "O", profile: rootCaProfile(pki) });
            const tenantPki = new TenantPki(
                name,
                {
                    tenant: "bhs",
                    displayName: "B",
                    pki,
                    rootCa,
                    certManagerNamespace: "cert-manager",
                    certManagerReady: [],
                    names: tenantNames("bhs", "orthweb.example.org"),
                    gatewayNamespaceReady: [],
                    certManagerServiceAccount: { name: "cert-manager", namespace: "cert-manager" },
                    modalities: [modality(generation, certificateRequest)],
                    now,
                },
            );
            const fingerprints = await new Promise<string[]>((done) => tenantPki.allowedClientFingerprints.apply(done));
            const certificates = (await registeredUnder(name)).filter((r) => r.type === "tls:index/locallySignedCert:LocallySignedCert" && r.name.includes("-modality-"));
            const status = tenantPki.modalityCertificates.ct;
            const modalityResources = (await registeredUnder(name)).filter((r) => r.name.includes("-modality-"));
            return { name, certificates, fingerprints, status, modalityResources };
        }
        const fingerprintOf = (resourceName: string) => certificateFingerprint(`-----BEGIN CERTIFICATE-----\nMOCK${resourceName}\n-----END CERTIFICATE-----\n`);

        // Built together: each build waits for its registrations to settle.
        let midPeriod: Built, afterStart: Built, newGeneration: Built, ownRequest: Built;
        type Built = Awaited<ReturnType<typeof buildAt>>;
        /** The aliases each resource was registered with, by name (the mocks do not see resource options). */
        const aliasesByName = new Map<string, unknown[]>();
        const runtimeResource = require("@pulumi/pulumi/runtime/resource");
        const register = runtimeResource.registerResource;
        after(() => {
            runtimeResource.registerResource = register;
        });
        before(async () => {
            runtimeResource.registerResource = function (res: unknown, parent: unknown, type: string, name: string, ...rest: any[]) {
                aliasesByName.set(name, rest[4]?.aliases ?? []);
                return register.call(this, res, parent, type, name, ...rest);
            };
            [midPeriod, afterStart, newGeneration, ownRequest] = await Promise.all([
                buildAt(at(29 * period + 1000)),
                buildAt(at(30 * period + 5)),
                buildAt(at(30 * period + 5), 2),
                buildAt(at(30 * period + 5), 1, okRequest),
            ]);
        });

        it("mid-period: the current period's certificate alone, admitted alone", () => {
            const { name, certificates, fingerprints, status } = midPeriod;
            assert.deepEqual(certificates.map((c) => c.name), [`${name}-modality-ct-g1-p29-certificate`]);
            assert.deepEqual(fingerprints, [fingerprintOf(`${name}-modality-ct-g1-p29-certificate`)]);
            assert.equal(status.previous, undefined);
            assert.equal(status.nextCertificateFrom, at(30 * period).toISOString());
        });

        it("just after a period starts: the new certificate, and the previous one admitted until the overlap ends", () => {
            const { name, certificates, fingerprints, status } = afterStart;
            const current = `${name}-modality-ct-g1-p30-certificate`;
            const previous = `${name}-modality-ct-g1-p29-certificate`;
            assert.deepEqual(certificates.map((c) => c.name).sort(), [previous, current].sort());
            assert.deepEqual(certificates.map((c) => c.inputs.earlyRenewalHours), [0, 0]);
            assert.deepEqual(fingerprints.sort(), [fingerprintOf(current), fingerprintOf(previous)].sort());
            assert.equal(status.previous?.admittedUntil, at(30 * period + pki.modalityCertificateOverlapHours).toISOString());
        });

        it("takes over the certificates named before renewal periods as the current period's, and only those", async () => {
            const { name } = afterStart;
            const aliasNames = (resource: string) => (aliasesByName.get(resource) ?? []).map((alias: any) => alias.name);
            for (const part of ["key", "request", "certificate"]) {
                assert.deepEqual(aliasNames(`${name}-modality-ct-g1-p30-${part}`), [`${name}-modality-ct-g1-${part}`]);
                assert.deepEqual(aliasNames(`${name}-modality-ct-g1-p29-${part}`), []);
            }
        });

        it("never declares a certificate the provider would replace under its name (terraform-provider-tls' renewal)", () => {
            // A period's certificate is issued by the first `up` in its period, at the earliest at the period's start;
            // the run just after the next period starts still declares it, as the previous one.
            const [previous] = afterStart.certificates.filter((c) => c.name.includes("-p29-"));
            const earliest = { issuedAt: at(29 * period), validityPeriodHours: previous.inputs.validityPeriodHours, earlyRenewalHours: previous.inputs.earlyRenewalHours };
            assert.equal(replacedOnUp(earliest, at(30 * period + 5)), false);
            // The last run that declares it, an hour before its overlap ends.
            assert.equal(replacedOnUp(earliest, at(30 * period + pki.modalityCertificateOverlapHours - 1)), false);
            // What the program did before renewal periods: one name, early renewal in the last tenth, replaced (and its
            // new fingerprint alone admitted) by the first `up` in that tenth.
            const unperiodic = { ...earliest, earlyRenewalHours: Math.floor(earliest.validityPeriodHours / 10) };
            assert.equal(replacedOnUp(unperiodic, at(29 * period + 0.9 * earliest.validityPeriodHours)), true);
        });

        it("a modality that brings its own request: the tenant CA signs it each period, and the program makes and holds no key", async () => {
            const { name, certificates, fingerprints, status, modalityResources } = ownRequest;
            assert.deepEqual(certificates.map((c) => c.name).sort(), [`${name}-modality-ct-g1-p29-certificate`, `${name}-modality-ct-g1-p30-certificate`]);
            for (const certificate of certificates) {
                assert.equal(certificate.inputs.certRequestPem, okRequest);
                assert.match(plain(certificate.inputs.caPrivateKeyPem), new RegExp(`MOCK${name}-ca-key`));
            }
            assert.deepEqual(modalityResources.filter((r) => /PrivateKey|CertRequest/.test(r.type)).map((r) => r.name), []);
            assert.equal(status.privateKey, undefined);
            assert.equal(fingerprints.length, 2, "renewal periods and the overlap as for a program-made key");
            // A program-made key, by contrast, exists and is a secret output.
            assert.ok(afterStart.status.privateKey);
            assert.equal(await isSecret(afterStart.status.privateKey), true);
        });

        it("a new generation inside the overlap admits no certificate of the generation before", () => {
            const { name, certificates, fingerprints } = newGeneration;
            assert.deepEqual(certificates.map((c) => c.name).sort(), [`${name}-modality-ct-g2-p29-certificate`, `${name}-modality-ct-g2-p30-certificate`]);
            assert.ok(fingerprints.every((f) => ![29, 30].some((p) => f === fingerprintOf(`${name}-modality-ct-g1-p${p}-certificate`))));
            assert.equal(fingerprints.length, 2);
        });
    });
});
