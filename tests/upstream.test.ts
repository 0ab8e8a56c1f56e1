/**
 * The rendered stacks against models of what upstream does with them (tests/upstream/*.ts, each citing the source it
 * follows). Mocks accept anything; these tests ask what Pulumi's engine, Helm, Istio, cert-manager, Kubernetes, the
 * Bitnami chart and the Orthanc image would do with exactly what the program registers.
 */
import { strict as assert } from "assert";
import { readFileSync } from "fs";
import * as path from "path";
import { tenantNames } from "../components/naming/tenantNames";
import { caIssuerSecretKeys, issuedSecretKeys, issuerSecretNamespace } from "./upstream/certManager";
import { ClusterCapabilities, neverReady, readsRunInPreview, replacementOrder } from "./upstream/deployment";
import { stackReferenceType } from "./upstream/stackReference";
import { storageMountPath } from "../components/data/storage/orthancStorage";
import { certificateFingerprint } from "../components/tenant/pki";
import { orthancDeploymentName } from "../components/tenant/orthancWorkload";
import { awsCliImage, orthancImage, pinnedImages, recordedReference } from "../components/versions";
import imagePinFacts from "./upstream/imagePinFacts.json";
import imageFacts from "./upstream/orthancImageFacts.json";
import { GatewayObject, SecretLike, clientAccepted, gatewayChartObjects, gatewayChartRoleRules, gatewaysServedBy, listenerPort, resolveServerTls } from "./upstream/istio";
import { awaitTimeoutSeconds, awaitedOnCreate, parseWaitFor, statusModels, unsatisfiable } from "./upstream/customResourceReadiness";
import { istioAdmission, isIstioApiVersion, validateServiceEntry } from "./upstream/istioValidation";
import { effectiveAccessLogFormats, pathWithQueryOperators } from "./upstream/istioAccessLog";
import { authorizationAllows } from "./upstream/authorizationPolicy";
import { rbacAllows, ruleAllows, serviceLinkVariables } from "./upstream/kubernetes";
import { pluginLinkDirectory, startImage } from "./upstream/orthancImage";
import { dcmtkDisablesNagle } from "./upstream/dcmtk";
import { orthancConnections, pgpoolAcceptedClients, pgpoolBackends, postgresOrdinaryConnections } from "./upstream/postgres";
import { pluginReconnectWindowSeconds } from "./upstream/postgresPlugin";
import { modalityDimseTimeoutSeconds } from "../components/tenant/orthancConfig";
import {
    acknowledgedCommitReachesAStandby,
    bitnamiChartSynchronousStandbyNames,
    cnpgInstanceNames,
    cnpgSynchronousStandbyNames,
    commitsWithStandbysLost,
    parseSynchronousStandbyNames,
} from "./upstream/synchronousReplication";
import { postgresNodeNames, synchronousReplicationScript } from "../components/data/engines/bitnamiHaValues";
import { RecordedResource, plain } from "./support/mocks";
import { RenderedStack, parsedStackFile, renderFirstPreview, renderStack, allStacks } from "./support/stacks";

/** What each shipped stack's cluster provides: dev and tst run on cloud clusters, local on kind, minikube or k3d. */
const clusters: Record<(typeof allStacks)[number], ClusterCapabilities> = {
    dev: { loadBalancer: true },
    tst: { loadBalancer: true },
    local: { loadBalancer: false },
    cnpg: { loadBalancer: true },
    external: { loadBalancer: true },
};

/** Istio 1.30's minimum Kubernetes (istio/istio 1.30.3 istioctl/pkg/install/k8sversion/version.go, MinK8SVersion). */
const istioMinimumKubernetesMinor = 32;

const kind = (r: RecordedResource) => r.type.split(":").pop()!;
/** A custom resource's API group is a domain outside Kubernetes' own (`*.k8s.io`); built-in groups have no dot. */
const isCustomResource = (apiVersion: string) => apiVersion.includes("/") && apiVersion.split("/")[0].includes(".") && !apiVersion.split("/")[0].endsWith(".k8s.io");
/**
 * Dependencies for order only: the dependant needs the object to exist, not to be ready. Istio's gateway pods are
 * ready without their certificate (SDS serves it once cert-manager has issued it: istio 1.30.3 pilot/pkg/xds/sds.go),
 * and cert-manager retries a Certificate until its issuer is ready.
 */
const orderingOnly: Record<string, string> = {
    "cert-manager.io/v1/Certificate": "the gateway's SDS picks the secret up when issued",
    "cert-manager.io/v1/ClusterIssuer": "cert-manager retries the Certificate",
    // cert-manager/approver-policy v0.27.0 pkg/internal/approver/manager/review.go: a request a not-yet-Ready policy
    // selects is left unprocessed, not denied, and reviewed again once the policy is Ready.
    "policy.cert-manager.io/v1alpha1/CertificateRequestPolicy": "approver-policy reviews a pending request again once its policy is Ready",
};
const objectsOf = (stack: RenderedStack, k: string) => stack.resources.filter((r) => r.type.startsWith("kubernetes:") && kind(r) === k);
const nsOf = (r: RecordedResource) => r.inputs.metadata?.namespace ?? r.inputs.namespace;
const releaseNamed = (stack: RenderedStack, name: string) => objectsOf(stack, "Release").find((r) => r.inputs.name === name);

/** Every Secret that will exist in the cluster: those the program creates and those cert-manager issues. */
function clusterSecrets(stack: RenderedStack): SecretLike[] {
    const created = objectsOf(stack, "Secret").map((r) => ({
        namespace: nsOf(r),
        name: r.inputs.metadata.name,
        keys: Object.keys({ ...plain(r.inputs.stringData), ...plain(r.inputs.data) }),
    }));
    const issued = objectsOf(stack, "Certificate").map((r) => ({ namespace: nsOf(r), name: r.inputs.spec.secretName, keys: issuedSecretKeys }));
    return [...created, ...issued];
}

function gatewayPod(stack: RenderedStack, tenant: string, domain: string) {
    const names = tenantNames(tenant, domain);
    const release = releaseNamed(stack, names.gatewayRelease)!;
    const chart = gatewayChartObjects(release.inputs.name, release.inputs.values);
    return { names, release, chart, pod: { namespace: release.inputs.namespace, serviceAccount: chart.serviceAccount, roleRules: gatewayChartRoleRules(release.inputs.values), labels: chart.podLabels } };
}

function gatewayObjects(stack: RenderedStack): (GatewayObject & { resource: RecordedResource })[] {
    return objectsOf(stack, "Gateway").map((r) => ({ namespace: nsOf(r), name: r.inputs.metadata.name, selector: r.inputs.spec.selector, resource: r }));
}

/** The storage area a tenant's storage choice must leave Orthanc with (tests/upstream/orthancImage.ts `storageArea`). */
function storageAreaOf(type: string): string {
    const areas: Record<string, string> = { postgresql: "PostgreSQL", s3: "AwsS3Storage", "azure-blob": "AzureBlobStorage", "google-cloud-storage": "GoogleCloudStorage" };
    return areas[type] ?? `filesystem:${storageMountPath}`;
}

for (const stack of allStacks) {
    describe(`upstream behaviour on stack ${stack}`, () => {
        const config = parsedStackFile(stack);
        let rendered: RenderedStack;
        before(async () => {
            rendered = await renderStack(stack);
            assert.equal(rendered.error, undefined);
        });

        describe("Pulumi's engine in the first preview of an empty stack", () => {
            it("registers the same resources without error when every ID and computed output is unknown", async () => {
                const preview = await renderFirstPreview(stack);
                assert.equal(preview.error, undefined);
                const keys = (s: RenderedStack) => s.resources.map((r) => `${r.type}::${r.name}`).sort();
                assert.deepEqual(keys(preview), keys(rendered));
            });

            it("reads nothing from the cluster, so no read can hit an object the program has yet to create", async () => {
                const preview = await renderFirstPreview(stack);
                // The one read is the StackReference to this stack itself (the storage guard), which the engine answers
                // from the backend's last checkpoint, not from the cluster (tests/upstream/stackReference.ts).
                const clusterReads = (s: RenderedStack) => s.resources.filter((r) => r.id && r.type !== stackReferenceType);
                const reads = clusterReads(preview).map((r) => ({ type: r.type, id: r.id }));
                assert.deepEqual(readsRunInPreview(reads), []);
                assert.deepEqual(clusterReads(rendered), [], "no Resource.get at all");
                assert.deepEqual(
                    rendered.resources.filter((r) => r.type === stackReferenceType).map((r) => r.id),
                    [`organization/korthweb/${stack}`],
                    "one StackReference, to this very stack",
                );
            });
        });

        describe("Helm's and the Kubernetes provider's waits", () => {
            it(`completes on a cluster ${clusters[stack].loadBalancer ? "with" : "without"} a load balancer`, () => {
                const waits = [
                    ...objectsOf(rendered, "Service").map((r) => ({
                        waitedBy: "pulumi" as const,
                        type: r.inputs.spec?.type ?? "ClusterIP",
                        annotations: r.inputs.metadata?.annotations,
                        what: `Service ${nsOf(r)}/${r.inputs.metadata.name}`,
                    })),
                    ...objectsOf(rendered, "Release")
                        .filter((r) => r.inputs.chart === "gateway")
                        .map((r) => ({ waitedBy: "helm" as const, type: gatewayChartObjects(r.inputs.name, r.inputs.values).serviceType ?? "none", what: `release ${r.inputs.name}` })),
                    ...objectsOf(rendered, "Release")
                        .filter((r) => r.inputs.chart.includes("postgresql-ha"))
                        .map((r) => ({ waitedBy: "helm" as const, type: r.inputs.values.service?.type ?? "ClusterIP", what: `release ${r.inputs.name}` })),
                ];
                assert.ok(waits.length > 0);
                for (const wait of waits) {
                    assert.equal(neverReady(wait, clusters[stack]), undefined, wait.what);
                }
                for (const release of objectsOf(rendered, "Release")) {
                    assert.notEqual(release.inputs.skipAwait, true, `${release.inputs.name}: dependants rely on Helm's wait`);
                }
            });
        });

        describe("an Orthanc image upgrade", () => {
            it("stops every pod of the old image before a pod of the new one starts", () => {
                for (const tenant of config.tenants) {
                    const names = tenantNames(tenant.name, config.domain);
                    const deployment = objectsOf(rendered, "Deployment").find((d) => nsOf(d) === names.namespace && d.inputs.metadata.name === orthancDeploymentName())!;
                    const order = replacementOrder({
                        deleteBeforeReplace: deployment.options?.deleteBeforeReplace === true,
                        annotations: deployment.inputs.metadata.annotations,
                    });
                    assert.equal(order, "old pods gone, then new", tenant.name);
                    assert.match(deployment.inputs.metadata.name, new RegExp(orthancImage.tag.replace(/\./g, "-")), "the image is in the name, so a new one replaces");
                }
            });
        });

        describe("Istio's gateways", () => {
            it("gives every Gateway server its certificate, and the DICOM port exactly the tenant's trust anchor as client CA", () => {
                const secrets = clusterSecrets(rendered);
                for (const tenant of config.tenants) {
                    const { pod, names } = gatewayPod(rendered, tenant.name, config.domain);
                    const served = gatewaysServedBy({ namespace: pod.namespace, labels: pod.labels }, gatewayObjects(rendered), true);
                    assert.deepEqual(served.map((g) => g.name).sort(), ["dicom", "web"]);
                    for (const gateway of served) {
                        for (const server of gateway.resource.inputs.spec.servers) {
                            const resolved = resolveServerTls(server.tls, pod, secrets);
                            assert.deepEqual(resolved.errors, [], `${tenant.name} ${gateway.name}`);
                            assert.equal(resolved.certificateSecret, "orthanc-server-tls");
                            if (server.tls.mode === "MUTUAL") {
                                const ca = objectsOf(rendered, "Secret").find((s) => nsOf(s) === pod.namespace && s.inputs.metadata.name === resolved.clientCa!.secret)!;
                                const bundle = plain(ca.inputs.stringData)[resolved.clientCa!.key];
                                assert.equal(bundle.trim(), `-----BEGIN CERTIFICATE-----\nMOCK${tenant.name}-pki-ca-trust-anchor\n-----END CERTIFICATE-----`);
                            }
                        }
                    }
                    assert.equal(pod.namespace, names.gatewayNamespace);
                }
            });

            it("accepts on the DICOM port each configured modality's certificate, and no other tenant's or unlisted one", () => {
                const secrets = clusterSecrets(rendered);
                const modalities = stack === "tst" ? {} : (rendered.outputs.modalityCertificates.value as Record<string, Record<string, any>>);
                for (const tenant of config.tenants) {
                    const { pod } = gatewayPod(rendered, tenant.name, config.domain);
                    const dicom = gatewayObjects(rendered).find((g) => g.namespace === pod.namespace && g.name === "dicom")!;
                    const server = dicom.resource.inputs.spec.servers[0];
                    const resolved = resolveServerTls(server.tls, pod, secrets);
                    const issuedUnder = (t: string) => ({ namespace: tenantNames(t, config.domain).gatewayNamespace, secret: resolved.clientCa!.secret });
                    for (const [name, issued] of Object.entries(modalities[tenant.name] ?? {})) {
                        const fingerprint = certificateFingerprint(issued.certificate);
                        assert.ok(clientAccepted(server, resolved, pod.namespace, { issuedUnder: issuedUnder(tenant.name), fingerprint }), `${tenant.name}/${name}`);
                        for (const other of config.tenants.filter((t) => t.name !== tenant.name)) {
                            assert.ok(!clientAccepted(server, resolved, pod.namespace, { issuedUnder: issuedUnder(other.name), fingerprint }), `${other.name}'s CA`);
                        }
                    }
                    const unlisted = certificateFingerprint("-----BEGIN CERTIFICATE-----\nMOCKremoved-modality\n-----END CERTIFICATE-----\n");
                    assert.ok(!clientAccepted(server, resolved, pod.namespace, { issuedUnder: issuedUnder(tenant.name), fingerprint: unlisted }), "unlisted certificate of the same CA");
                }
            });

            it("lets the gateway's service account read only what it serves: no CA key, password or Orthanc configuration", () => {
                const secrets = clusterSecrets(rendered);
                for (const tenant of config.tenants) {
                    const { pod } = gatewayPod(rendered, tenant.name, config.domain);
                    assert.ok(rbacAllows(pod.roleRules, { verb: "list", resource: "secrets" }), "Istio needs list on secrets to serve a certificate");
                    const readable = secrets.filter((s) => s.namespace === pod.namespace && rbacAllows(pod.roleRules, { verb: "get", resource: "secrets", name: s.name }));
                    assert.deepEqual(readable.map((s) => s.name).sort(), ["dicom-clients-cacert", "orthanc-server-tls"]);
                }
            });

            it("binds each tenant's gateway pods to that tenant's Gateways only, with or without namespace scoping", () => {
                const gateways = gatewayObjects(rendered);
                const istiod = releaseNamed(rendered, "istiod")!;
                assert.equal(istiod.inputs.values.env.PILOT_SCOPE_GATEWAY_TO_NAMESPACE, "true");
                for (const tenant of config.tenants) {
                    const { pod } = gatewayPod(rendered, tenant.name, config.domain);
                    for (const scoped of [true, false]) {
                        const served = gatewaysServedBy({ namespace: pod.namespace, labels: pod.labels }, gateways, scoped);
                        assert.ok(served.every((g) => g.namespace === pod.namespace), `${tenant.name} scoped=${scoped}`);
                        assert.equal(served.length, 2);
                    }
                }
            });

            it("has Envoy listen where the Service sends traffic, and routes match the server port", () => {
                for (const tenant of config.tenants) {
                    const { pod, names } = gatewayPod(rendered, tenant.name, config.domain);
                    const services = objectsOf(rendered, "Service").filter(
                        (s) => nsOf(s) === pod.namespace && Object.entries(s.inputs.spec.selector).every(([k, v]) => pod.labels[k] === v),
                    );
                    assert.equal(services.length, 1, "the gateway's own Service selects its pods");
                    const ports = services[0].inputs.spec.ports;
                    for (const gateway of gatewayObjects(rendered).filter((g) => g.namespace === names.gatewayNamespace)) {
                        for (const server of gateway.resource.inputs.spec.servers) {
                            const entry = ports.find((p: any) => p.port === server.port.number);
                            assert.ok(entry, `${gateway.name}: no Service port ${server.port.number}`);
                            assert.equal(listenerPort(server.port.number, ports), entry.targetPort);
                        }
                    }
                    const dicomRoute = objectsOf(rendered, "VirtualService").find((v) => nsOf(v) === names.gatewayNamespace && v.inputs.metadata.name === "dicom")!;
                    assert.equal(dicomRoute.inputs.spec.tcp[0].match[0].port, 11112);
                }
            });
        });

        describe("the Kubernetes provider's wait for custom resources", () => {
            it("waits, on every custom resource another resource depends on, for a status upstream reaches (or it is configuration)", () => {
                const byName = new Map(rendered.resources.map((r) => [r.name, r]));
                const problems: string[] = [];
                const checked = new Set<string>();
                for (const dependant of rendered.resources) {
                    for (const target of (dependant.options?.dependsOn ?? []).map((n) => byName.get(n)!).filter(Boolean)) {
                        if (!target.type.startsWith("kubernetes:") || !isCustomResource(target.inputs.apiVersion ?? "") || checked.has(target.name)) continue;
                        const { apiVersion, kind: k, metadata } = target.inputs;
                        const model = statusModels[`${apiVersion}/${k}`];
                        if (model === undefined) {
                            if (!orderingOnly[`${apiVersion}/${k}`]) problems.push(`${k} ${metadata.name}: no status model`);
                            continue;
                        }
                        checked.add(target.name);
                        if (model.configuration) continue;
                        const annotations = metadata.annotations ?? {};
                        if (!awaitedOnCreate({ apiVersion, kind: k, annotations })) {
                            problems.push(`${k} ${metadata.name}: ready for Pulumi as soon as it is stored, and ${kind(dependant)} ${dependant.name} waits on it`);
                            continue;
                        }
                        for (const check of parseWaitFor(annotations["pulumi.com/waitFor"])) {
                            const why = unsatisfiable(model, check, target.inputs.spec);
                            if (why) problems.push(`${k} ${metadata.name}: ${why}`);
                        }
                    }
                }
                assert.deepEqual(problems, []);
                const clusters = objectsOf(rendered, "Cluster");
                // One per tenant on the cloudnative-pg engine, and the in-cluster Keycloak's database.
                const keycloakDatabases = config.tenants.some((tenant) => tenant.identity?.keycloak !== undefined) ? 1 : 0;
                assert.equal(clusters.length, config.tenants.filter((tenant) => tenant.database.engine === "cloudnative-pg").length + keycloakDatabases);
                assert.equal(keycloakDatabases, stack === "dev" || stack === "local" ? 1 : 0, "the local and dev stacks run the in-cluster Keycloak");
                for (const cluster of clusters) {
                    assert.ok(awaitTimeoutSeconds(cluster.inputs.metadata.annotations) >= 1800, "initdb and the joins outlast the 10-minute default");
                }
            });

            it("starts Orthanc only after its CloudNativePG Cluster and Pooler are ready", () => {
                for (const tenant of config.tenants.filter((t) => t.database.engine === "cloudnative-pg")) {
                    const names = tenantNames(tenant.name, config.domain);
                    const deployment = objectsOf(rendered, "Deployment").find((d) => nsOf(d) === names.namespace && d.inputs.metadata.name === orthancDeploymentName())!;
                    const waitedOn = new Set((deployment.options?.dependsOn ?? []).map((n) => rendered.resources.find((r) => r.name === n)!).map((r) => `${kind(r)}/${nsOf(r)}`));
                    assert.ok(waitedOn.has(`Cluster/${names.namespace}`) && waitedOn.has(`Pooler/${names.namespace}`), [...waitedOn].join(", "));
                }
            });
        });

        describe("istiod's validating webhook", () => {
            it("admits every Istio object the program registers", () => {
                const istioObjects = rendered.resources.filter((r) => r.type.startsWith("kubernetes:") && isIstioApiVersion(r.inputs.apiVersion ?? ""));
                assert.ok(istioObjects.some((r) => kind(r) === "ServiceEntry") || stack !== "external", "the external stack registers ServiceEntries");
                assert.ok(istioObjects.length > 0);
                const refused = istioObjects.flatMap((r) => {
                    const verdict = istioAdmission({ apiVersion: r.inputs.apiVersion, kind: r.inputs.kind, metadata: r.inputs.metadata, spec: plain(r.inputs.spec) ?? {} });
                    return verdict.errors.map((error) => `${r.inputs.kind} ${nsOf(r)}/${r.inputs.metadata.name}: ${error}`);
                });
                assert.deepEqual(refused, []);
            });
        });

        describe("cert-manager", () => {
            it("finds every ClusterIssuer's CA key and certificate where it reads them", () => {
                const certManager = releaseNamed(rendered, "cert-manager")!;
                const secrets = clusterSecrets(rendered);
                const issuers = objectsOf(rendered, "ClusterIssuer");
                assert.equal(issuers.length, config.tenants.length);
                for (const issuer of issuers) {
                    const namespace = issuerSecretNamespace(
                        { kind: "ClusterIssuer", secretName: issuer.inputs.spec.ca.secretName },
                        { releaseNamespace: certManager.inputs.namespace, values: certManager.inputs.values },
                    );
                    const secret = secrets.find((s) => s.namespace === namespace && s.name === issuer.inputs.spec.ca.secretName);
                    assert.ok(secret, `${issuer.inputs.metadata.name}: no secret in ${namespace}`);
                    assert.ok(caIssuerSecretKeys.every((key) => secret.keys.includes(key)));
                }
            });
        });

        describe("the Orthanc image's start-up", () => {
            for (const tenant of config.tenants) {
                it(`${tenant.name}: starts with PostgreSQL, Orthanc Explorer 2, GDCM, DICOMweb and both viewers loaded, the rendered settings intact, files in its ${tenant.storage.type} storage`, () => {
                    const names = tenantNames(tenant.name, config.domain);
                    const deployment = objectsOf(rendered, "Deployment").find((d) => nsOf(d) === names.namespace && d.inputs.metadata.name === orthancDeploymentName())!;
                    const pod = deployment.inputs.spec.template.spec;
                    const container = pod.containers[0];
                    const configText = plain(objectsOf(rendered, "Secret").find((s) => nsOf(s) === names.namespace && s.inputs.metadata.name === "orthanc-config")!.inputs.stringData)["orthanc.json"];
                    const services = objectsOf(rendered, "Service")
                        .filter((s) => nsOf(s) === names.namespace)
                        .map((s) => ({ name: s.inputs.metadata.name, ports: s.inputs.spec.ports }));
                    const env: Record<string, string> = Object.fromEntries(
                        container.env.map((e: any) => [e.name, e.value ?? (e.valueFrom?.fieldRef ? "orthanc-7d9f-abcde" : e.valueFrom?.secretKeyRef ? `from-secret-${e.valueFrom.secretKeyRef.key}` : "")]),
                    );
                    if (pod.enableServiceLinks !== false) {
                        for (const name of serviceLinkVariables(services)) env[name] = "x";
                    }
                    const mounts = container.volumeMounts.filter((m: any) => !m.readOnly).map((m: any) => m.mountPath);
                    const imageTag = container.image.split("@")[0].split(":").pop();
                    const start = startImage({ configFiles: [configText], env, mountedDirectories: mounts, readOnlyRootFilesystem: container.securityContext.readOnlyRootFilesystem, imageTag });
                    assert.deepEqual(start.reasons, []);
                    assert.equal(start.exitCode, 0);
                    assert.deepEqual(start.redefinedKeys, [], "each setting in one place: the image warns about a key defined twice");
                    assert.ok(dcmtkDisablesNagle(env.TCP_NODELAY), `TCP_NODELAY=${env.TCP_NODELAY}: DCMTK keeps Nagle's algorithm on (~15 instances/s)`);
                    const libs = ["libOrthancPostgreSQLIndex.so", "libOrthancPostgreSQLStorage.so", "libOrthancExplorer2.so", "libOrthancGdcm.so"];
                    for (const lib of [...libs, "libOrthancDicomWeb.so", "libStoneWebViewer.so", "libOrthancOHIF.so"]) {
                        assert.ok(start.loadedLibraries.includes(lib), `${lib} not loaded: ${start.loadedLibraries.join(", ")}`);
                    }
                    assert.ok(mounts.includes(pluginLinkDirectory));
                    const rendered_ = JSON.parse(configText);
                    // The one key the pod adds: Azure's connection string, from the storage Secret by variable.
                    const fromEnv = env.ORTHANC__AZURE_BLOB_STORAGE__CONNECTION_STRING;
                    for (const [key, value] of Object.entries(rendered_)) {
                        const expected = key === "AzureBlobStorage" && fromEnv !== undefined ? { ...(value as object), ConnectionString: fromEnv } : value;
                        assert.deepEqual(start.config[key], expected, `${key} changed by the start-up`);
                    }
                    assert.equal(start.config.DatabaseServerIdentifier, "orthanc-7d9f-abcde", "one identifier per pod");
                    const expectedArea = storageAreaOf(tenant.storage.type);
                    assert.equal(start.storageArea, expectedArea, "who stores the files");
                    assert.equal((start.config.PostgreSQL as any).EnableStorage, tenant.storage.type === "postgresql", "PostgreSQL keeps the files only with postgresql storage");
                    const objectStorageLibs = ["libOrthancAwsS3Storage.so", "libOrthancAzureBlobStorage.so", "libOrthancGoogleCloudStorage.so"];
                    assert.deepEqual(
                        start.loadedLibraries.filter((lib) => objectStorageLibs.includes(lib)),
                        expectedArea.startsWith("filesystem:") || expectedArea === "PostgreSQL" ? [] : [`libOrthanc${expectedArea}.so`],
                        "exactly the chosen object-storage plugin",
                    );
                });
            }
        });

        describe("connections from Orthanc through Pgpool to PostgreSQL", () => {
            const itForBitnami = config.tenants.some((t) => t.database.engine === "bitnami-ha") ? it : () => undefined;
            itForBitnami("fits the autoscaler's maximum plus one surging pod on a single Pgpool pod, and every Pgpool backend in PostgreSQL", () => {
                for (const tenant of config.tenants.filter((t) => t.database.engine === "bitnami-ha")) {
                    const names = tenantNames(tenant.name, config.domain);
                    const values = objectsOf(rendered, "Release").find((r) => nsOf(r) === names.namespace && r.inputs.name === "postgresql-ha")!.inputs.values;
                    const orthanc = JSON.parse(plain(objectsOf(rendered, "Secret").find((s) => nsOf(s) === names.namespace && s.inputs.metadata.name === "orthanc-config")!.inputs.stringData)["orthanc.json"]);
                    const needed = (tenant.orthanc.maxReplicas + 1) * orthancConnections(orthanc.PostgreSQL);
                    const accepted = pgpoolAcceptedClients(values.pgpool);
                    assert.ok(needed <= accepted, `${needed} connections, one Pgpool pod accepts ${accepted}`);
                    assert.ok(accepted - needed >= 4, `${accepted - needed} connections left for an operator's session and health checks`);
                    const backends = pgpoolBackends(values.pgpool);
                    assert.ok(backends <= postgresOrdinaryConnections(values.postgresql.maxConnections), `${backends} backends, max_connections ${values.postgresql.maxConnections}`);
                }
            });
        });

        describe("Orthanc's reconnection to its database against the DICOM timeouts", () => {
            it("answers a request that must open a database connection (Pgpool full, PostgreSQL down) before a modality's DIMSE timeout and DicomScpTimeout", () => {
                for (const tenant of config.tenants) {
                    const names = tenantNames(tenant.name, config.domain);
                    const orthanc = JSON.parse(plain(objectsOf(rendered, "Secret").find((s) => nsOf(s) === names.namespace && s.inputs.metadata.name === "orthanc-config")!.inputs.stringData)["orthanc.json"]);
                    const window = pluginReconnectWindowSeconds(orthanc.PostgreSQL);
                    assert.ok(window < modalityDimseTimeoutSeconds, `${tenant.name}: a request waits up to ${window} s for a connection, a modality gives up after ${modalityDimseTimeoutSeconds} s`);
                    assert.ok(window < orthanc.DicomScpTimeout, `${tenant.name}: ${window} s of retries, DicomScpTimeout ${orthanc.DicomScpTimeout}`);
                    // Long enough to ride out a PostgreSQL or Pgpool restart (seconds) without failing the request.
                    assert.ok(window >= 10, `${tenant.name}: ${window} s of retries`);
                }
            });
        });

        describe("synchronous replication as the engines render it and PostgreSQL reads it", () => {
            it("makes every acknowledged commit reach a standby, survives losing one standby and keeps it after any failover; only opted-out tenants commit alone", () => {
                for (const tenant of config.tenants.filter((t) => t.database.engine !== "external")) {
                    const names = tenantNames(tenant.name, config.domain);
                    // The promise unless the tenant opted out (absent: the default, synchronous).
                    const durable = tenant.postgres.replication !== "asynchronous";
                    // What each node runs with, whichever node is primary (a failover moves it).
                    // `whenStandbysDown`: the setting once no standby is healthy (CloudNativePG recomputes it; Bitnami's is fixed).
                    const settings: { primary: string; standbys: string[]; value: string | undefined; whenStandbysDown: string | undefined }[] = [];
                    if (tenant.database.engine === "bitnami-ha") {
                        const values = objectsOf(rendered, "Release").find((r) => nsOf(r) === names.namespace && r.inputs.name === "postgresql-ha")!.inputs.values;
                        const pods = postgresNodeNames(values.postgresql.replicaCount);
                        // The chart's own switch would be gone after the first restart or failover.
                        assert.equal(bitnamiChartSynchronousStandbyNames(values.postgresql, pods, "any later start, or a promoted standby"), undefined);
                        const script: string | undefined = values.postgresql.initdbScripts?.[synchronousReplicationScript];
                        assert.equal(script !== undefined, durable, `${tenant.name}: the init script exactly when synchronous`);
                        // ALTER SYSTEM lands in postgresql.auto.conf, which repmgr's clone copies to every standby.
                        const value = script ? /synchronous_standby_names = '((?:[^']|'')*)'/.exec(script)![1].replace(/''/g, "'") : undefined;
                        for (const primary of pods) {
                            settings.push({ primary, standbys: pods.filter((pod) => pod !== primary), value, whenStandbysDown: value });
                        }
                    } else {
                        const cluster = objectsOf(rendered, "Cluster").find((r) => nsOf(r) === names.namespace)!.inputs;
                        const instances = cnpgInstanceNames(cluster.metadata.name, cluster.spec.instances);
                        for (const primary of instances) {
                            const value = cnpgSynchronousStandbyNames(cluster.spec.postgresql.synchronous, instances, primary);
                            const whenStandbysDown = cnpgSynchronousStandbyNames(cluster.spec.postgresql.synchronous, instances, primary, [primary]);
                            settings.push({ primary, standbys: instances.filter((name) => name !== primary), value, whenStandbysDown });
                        }
                    }
                    for (const { primary, standbys, value, whenStandbysDown } of settings) {
                        const where = `${tenant.name}, primary ${primary}: ${value}`;
                        assert.equal(acknowledgedCommitReachesAStandby(value), durable, where);
                        if (durable) {
                            assert.ok(commitsWithStandbysLost(value, standbys, 1), `${where}: one standby lost stops writes`);
                            assert.ok(acknowledgedCommitReachesAStandby(whenStandbysDown), `${where}: with every standby down the primary commits alone (${whenStandbysDown})`);
                            assert.equal(commitsWithStandbysLost(whenStandbysDown, standbys, standbys.length), false, `${where}: with every standby gone a commit must wait`);
                        }
                    }
                }
            });
        });
    });
}

describe("the models' own pins", () => {
    it("model the Orthanc image the program pins", () => {
        assert.equal(imageFacts.image, `${orthancImage.repository}:${orthancImage.tag}`, "regenerate tests/upstream/orthancImageFacts.json for the new image");
    });

    it("have upstream evidence that every pinned image tag was released (tests/upstream/imagePinFacts.json)", () => {
        const facts = imagePinFacts.images as Record<string, { image: string; evidence: { repository: string; ref: string; finding: string }[] }>;
        assert.deepEqual(Object.keys(facts).sort(), Object.keys(pinnedImages).sort(), "regenerate tests/upstream/imagePinFacts.json");
        for (const [name, pin] of Object.entries(pinnedImages)) {
            assert.equal(facts[name].image, recordedReference(pin), `${name}: the facts are for another tag; regenerate (the generator refuses a tag without evidence)`);
            assert.ok(facts[name].evidence.some((e) => e.ref.length > 0 && /\//.test(e.repository)), `${name}: no upstream repository evidence`);
        }
        assert.ok(Object.values(pinnedImages).includes(awsCliImage), "the backup job's AWS CLI is among the pins checked");
    });
});

describe("the README against upstream", () => {
    it("asks for a Kubernetes version Istio supports", () => {
        const readme = readFileSync(path.join(__dirname, "..", "README.md"), "utf8");
        const stated = /Kubernetes cluster \(1\.(\d+) or newer/.exec(readme);
        assert.ok(stated, "the README states a minimum Kubernetes version");
        assert.ok(Number(stated[1]) >= istioMinimumKubernetesMinor, `README says 1.${stated[1]}, Istio 1.30 needs 1.${istioMinimumKubernetesMinor}`);
    });
});

// The models must tell the failures they exist for; each case is what an earlier version of the program did.
describe("the upstream models catch what the program once got wrong", () => {
    it("a custom resource without pulumi.com/waitFor is ready as soon as it is stored; the annotation's syntax is the provider's", () => {
        assert.equal(awaitedOnCreate({ apiVersion: "postgresql.cnpg.io/v1", kind: "Cluster" }), false);
        assert.equal(awaitedOnCreate({ apiVersion: "postgresql.cnpg.io/v1", kind: "Cluster" }, { PULUMI_K8S_AWAIT_ALL: "true" }), true);
        assert.equal(awaitedOnCreate({ apiVersion: "apps/v1", kind: "Deployment" }), true);
        assert.deepEqual(parseWaitFor("condition=Ready"), [{ kind: "condition", target: "Ready", value: "True" }]);
        assert.deepEqual(parseWaitFor('["jsonpath={.status.phase}=active"]'), [{ kind: "jsonpath", target: ".status.phase", value: "active" }]);
        assert.throws(() => parseWaitFor("Ready"), /prefix/);
        assert.throws(() => parseWaitFor("jsonpath=.status.phase=active"), /brackets/);
        assert.throws(() => parseWaitFor("jsonpath={.status.phase}="), /requires a value/);
        assert.throws(() => parseWaitFor("jsonpath={.a}=b=c"), /format/);
        assert.equal(awaitTimeoutSeconds(undefined), 600);
        const pooler = statusModels["postgresql.cnpg.io/v1/Pooler"];
        assert.match(unsatisfiable(pooler, { kind: "condition", target: "Ready", value: "True" }) ?? "", /no condition/, "a Pooler has no conditions");
        assert.match(unsatisfiable(pooler, { kind: "jsonpath", target: ".status.readyInstances", value: "2" }) ?? "", /not a status field/);
        assert.match(unsatisfiable(pooler, { kind: "jsonpath", target: ".status.phase", value: "Ready" }) ?? "", /never Ready/);
        // status.instances follows the Deployment the Pooler's spec.instances sizes: no other count is ever reached.
        const instances = { kind: "jsonpath", target: ".status.instances", value: "3" } as const;
        assert.equal(unsatisfiable(pooler, instances, { instances: 3 }), undefined);
        assert.match(unsatisfiable(pooler, instances, { instances: 2 }) ?? "", /settles at spec\.instances \(2\), never 3/);
    });

    it("a Pooler's status.instances settles at its spec.instances, and is absent at 0", () => {
        const pooler = statusModels["postgresql.cnpg.io/v1/Pooler"];
        const instances = (value: string) => ({ kind: "jsonpath" as const, target: ".status.instances", value });
        assert.equal(unsatisfiable(pooler, instances("3"), { instances: 3 }), undefined);
        assert.match(unsatisfiable(pooler, instances("3"), { instances: 2 }) ?? "", /settles at spec.instances \(2\)/);
        assert.match(unsatisfiable(pooler, instances("3"), {}) ?? "", /settles at spec.instances \(1\)/, "the CRD's default");
        assert.match(unsatisfiable(pooler, instances("0"), { instances: 0 }) ?? "", /omitted/);
    });

    it("istiod refuses a ServiceEntry with CIDR addresses and DNS resolution (the external engine's first shape)", () => {
        const metadata = { name: "external-database", namespace: "bhs-orthweb" };
        const spec = {
            hosts: ["orthanc-bhs.postgres.database.azure.com"],
            addresses: ["10.40.0.4/32"],
            ports: [{ number: 5432, name: "tcp-postgresql-5432", protocol: "TCP" }],
            location: "MESH_EXTERNAL",
            exportTo: ["."],
            resolution: "DNS",
        };
        assert.deepEqual(validateServiceEntry({ apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata, spec }).errors, [
            "CIDR addresses are allowed only for NONE/STATIC resolution types",
        ]);
        for (const resolution of ["NONE", "STATIC"]) {
            assert.deepEqual(validateServiceEntry({ apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata, spec: { ...spec, resolution } }).errors, []);
        }
    });

    it("the mesh's first access log (accessLogFile, JSON) logged paths with their query strings; a Telemetry without a provider is refused", () => {
        const [legacy] = effectiveAccessLogFormats({ accessLogFile: "/dev/stdout", accessLogEncoding: "JSON" }, []);
        assert.ok(pathWithQueryOperators.some((operator) => operator.test(legacy.text)));
        const named = effectiveAccessLogFormats({ extensionProviders: [{ name: "p", envoyFileAccessLog: { path: "/dev/stdout", logFormat: { text: "%REQ(:PATH)%\n" } } }] }, [
            { accessLogging: [{ providers: [{ name: "p" }] }] },
        ]);
        assert.ok(pathWithQueryOperators.some((operator) => operator.test(named[0].text)));
        assert.throws(() => effectiveAccessLogFormats({}, [{ accessLogging: [{ providers: [{ name: "undefined-provider" }] }] }]), /does not define/);
        const telemetry = (spec: Record<string, unknown>) => istioAdmission({ apiVersion: "telemetry.istio.io/v1", kind: "Telemetry", metadata: { name: "t", namespace: "istio-system" }, spec });
        assert.deepEqual(telemetry({ accessLogging: [{ providers: [{ name: "" }] }] }).errors, ["providers.name may not be empty"]);
        assert.deepEqual(telemetry({ accessLogging: [{ providers: [{ name: "p" }] }] }).errors, []);
    });

    it("Istio's path matching: exact, prefix*, *suffix, the query string ignored, and slashes merged only when the mesh says so", () => {
        const policies = [
            { action: "DENY", rules: [{ to: [{ operation: { paths: ["/tools/shutdown*", "*.php", "/exact"] } }] }] },
        ];
        const request = (path: string) => ({ method: "GET", path, port: 8042, principal: "cluster.local/ns/a/sa/b", namespace: "a" });
        const allows = (path: string, normalization: "DEFAULT" | "DECODE_AND_MERGE_SLASHES" = "DEFAULT") => authorizationAllows(policies, {}, request(path), normalization);
        assert.equal(allows("/tools/shutdown?x=1"), false);
        assert.equal(allows("/index.php"), false);
        assert.equal(allows("/exact"), false);
        assert.equal(allows("/exact/"), true);
        assert.equal(allows("/a/../tools/shutdown"), false);
        assert.equal(allows("//tools/shutdown"), true, "DEFAULT normalization merges no slashes");
        assert.equal(allows("//tools/shutdown", "DECODE_AND_MERGE_SLASHES"), false);
        assert.equal(allows("/tools%2Fshutdown"), true);
        assert.equal(allows("/tools%2Fshutdown", "DECODE_AND_MERGE_SLASHES"), false);
    });

    it("istiod refuses the other shapes the model knows of", () => {
        const metadata = { name: "x", namespace: "ns" };
        const refused = (kind: string, spec: Record<string, unknown>, apiVersion = "networking.istio.io/v1") => istioAdmission({ apiVersion, kind, metadata, spec }).errors;
        const port = { number: 443, name: "tls-s3", protocol: "TLS" };
        assert.match(refused("ServiceEntry", { hosts: ["*"], ports: [port], resolution: "DNS" }).join(), /invalid host \*/);
        assert.match(refused("ServiceEntry", { hosts: ["a.example"], ports: [{ ...port, name: "TLS_S3" }], resolution: "DNS" }).join(), /invalid port name/);
        assert.match(refused("ServiceEntry", { hosts: ["a.example"], ports: [{ ...port, protocol: "POSTGRES" }], resolution: "DNS" }).join(), /unsupported protocol/);
        assert.match(refused("ServiceEntry", { hosts: ["a.internal"], ports: [port], resolution: "STATIC", endpoints: [{ address: "db.example" }] }).join(), /not a valid IP address/);
        assert.match(refused("ServiceEntry", { hosts: ["a.example", "b.example"], ports: [{ ...port, protocol: "TCP" }], resolution: "DNS" }).join(), /multiple hosts/);
        assert.match(refused("ServiceEntry", { hosts: ["a.example"], ports: [port], resolution: "DNS", exportTo: [".", "ns"] }).join(), /duplicate entries in exportTo/);
        assert.match(refused("Gateway", { servers: [{ port, hosts: ["orthanc"], tls: { mode: "SIMPLE", credentialName: "c" } }] }).join(), /short names/);
        assert.match(refused("Gateway", { servers: [{ port, hosts: ["*"] }] }).join(), /must have TLS settings/);
        assert.match(refused("Gateway", { servers: [{ port, hosts: ["*"], tls: { mode: "MUTUAL" } }] }).join(), /requires a client CA bundle/);
        assert.match(refused("Gateway", { servers: [{ port, hosts: ["*"], tls: { mode: "MUTUAL", credentialName: "c", verifyCertificateHash: ["xyz"] } }] }).join(), /not a hex SHA-256/);
        assert.match(refused("VirtualService", { hosts: ["*"], tcp: [{ match: [{ port: 11112 }], route: [{ destination: { host: "orthanc.ns.svc.cluster.local" } }] }] }).join(), /not allowed for virtual services bound to the mesh/);
        assert.match(refused("VirtualService", { hosts: ["*"], gateways: ["dicom"], tcp: [{ match: [{ port: 11112 }] }] }).join(), /TCP route is required/);
        assert.match(refused("VirtualService", { hosts: ["a.example"], gateways: ["web"], http: [{ route: [{ destination: { host: "o" } }], timeout: "0.5ms" }] }).join(), /1ms/);
        assert.match(refused("AuthorizationPolicy", { action: "DENY" }, "security.istio.io/v1").join(), /DENY action without/);
        assert.match(refused("AuthorizationPolicy", { rules: [{ from: [{ source: { namespaces: ["a"], serviceAccounts: ["a/b"] } }] }] }, "security.istio.io/v1").join(), /cannot set serviceAccounts/);
        assert.match(refused("AuthorizationPolicy", { rules: [{ to: [{ operation: { ports: ["https"] } }] }] }, "security.istio.io/v1").join(), /bad port/);
        assert.match(refused("AuthorizationPolicy", { rules: [{ to: [] }] }, "security.istio.io/v1").join(), /`to` must not be empty/);
        assert.match(refused("PeerAuthentication", { mtls: { mode: "STRICT" }, portLevelMtls: { 4242: { mode: "DISABLE" } } }, "security.istio.io/v1").join(), /cannot have port level mTLS/);
        assert.match(refused("DestinationRule", {}).join(), /not modelled/);
    });

    it("istiod checks a server's CRL only where no credentialName fetches the certificates (validateTLSOptions returns before)", () => {
        const metadata = { name: "x", namespace: "ns" };
        const port = { number: 443, name: "tls-s3", protocol: "TLS" };
        const errors = (tls: Record<string, unknown>) => istioAdmission({ apiVersion: "networking.istio.io/v1", kind: "Gateway", metadata, spec: { servers: [{ port, hosts: ["*"], tls }] } }).errors;
        assert.deepEqual(errors({ mode: "MUTUAL", credentialName: "c", caCrl: "/etc/crl.pem" }), []);
        assert.deepEqual(errors({ mode: "SIMPLE", credentialName: "c", caCrl: "/etc/crl.pem" }), []);
        const files = { serverCertificate: "/c.pem", privateKey: "/k.pem", caCrl: "/etc/crl.pem" };
        assert.deepEqual(errors({ mode: "SIMPLE", ...files }), ["CRL is not supported with SIMPLE TLS"]);
        assert.deepEqual(errors({ mode: "MUTUAL", caCertificates: "/ca.pem", ...files }), []);
    });

    it("a Service read with a literal ID runs in the first preview (and fails there: the Service does not exist yet)", () => {
        assert.equal(readsRunInPreview([{ type: "kubernetes:core/v1:Service", id: "bhs-orthweb/bhs-ingressgateway" }]).length, 1);
        assert.equal(readsRunInPreview([{ type: "kubernetes:core/v1:Service", id: undefined }]).length, 0);
    });

    it("a replacement without deleteBeforeReplace, or with background deletion, runs two images at once", () => {
        assert.equal(replacementOrder({ deleteBeforeReplace: false }), "overlap");
        assert.equal(replacementOrder({ deleteBeforeReplace: true, annotations: { "pulumi.com/deletionPropagationPolicy": "background" } }), "overlap");
        assert.equal(replacementOrder({ deleteBeforeReplace: true }), "old pods gone, then new");
    });

    it("a gateway chart Service of type LoadBalancer never gets ready on a cluster without a load balancer", () => {
        const chart = gatewayChartObjects("bhs-ingressgateway", { service: { type: "LoadBalancer" } });
        assert.match(neverReady({ waitedBy: "helm", type: chart.serviceType! }, { loadBalancer: false }) ?? "", /no address/);
        assert.equal(neverReady({ waitedBy: "helm", type: chart.serviceType! }, { loadBalancer: true }), undefined);
    });

    it("a CA-only secret named without -cacert leaves the DICOM port without a client CA", () => {
        const pod = { namespace: "bhs-orthweb", serviceAccount: "bhs-ingressgateway", roleRules: gatewayChartRoleRules({}) };
        const secrets = [
            { namespace: "bhs-orthweb", name: "orthanc-server-tls", keys: issuedSecretKeys },
            { namespace: "bhs-orthweb", name: "orthanc-dicom-client-ca", keys: ["ca.crt", "cacert"] },
        ];
        const resolved = resolveServerTls({ mode: "MUTUAL", credentialName: "orthanc-server-tls", caCertCredentialName: "orthanc-dicom-client-ca" }, pod, secrets);
        assert.equal(resolved.clientCa, undefined);
        assert.match(resolved.errors.join(), /orthanc-dicom-client-ca: read as a certificate and key/);
    });

    it("with no client CA named, Istio falls back to the issued secret's ca.crt: the root, which trusts every tenant", () => {
        const pod = { namespace: "g", serviceAccount: "sa", roleRules: gatewayChartRoleRules({}) };
        const resolved = resolveServerTls({ mode: "MUTUAL", credentialName: "orthanc-server-tls" }, pod, [{ namespace: "g", name: "orthanc-server-tls", keys: issuedSecretKeys }]);
        assert.deepEqual(resolved.clientCa, { secret: "orthanc-server-tls", key: "ca.crt", crlKey: undefined });
    });

    it("an empty certificate allow-list admits every certificate the tenant CA signed", () => {
        const resolved = { clientCa: { secret: "dicom-clients-cacert", key: "cacert" }, errors: [] };
        const client = { issuedUnder: { namespace: "g", secret: "dicom-clients-cacert" }, fingerprint: "ab".repeat(32) };
        assert.ok(clientAccepted({ tls: { mode: "MUTUAL", verifyCertificateHash: [] } }, resolved, "g", client));
        assert.ok(!clientAccepted({ tls: { mode: "MUTUAL", verifyCertificateHash: ["0".repeat(64)] } }, resolved, "g", client));
    });

    it("a gateway in the tenant namespace could read the CA key, database passwords and Orthanc's configuration", () => {
        const rules = gatewayChartRoleRules({});
        for (const name of ["int-ca-secret", "postgresql-ha-credentials", "orthanc-config"]) {
            assert.ok(rbacAllows(rules, { verb: "get", resource: "secrets", name }));
        }
        assert.ok(!rbacAllows([{ resources: ["secrets"], verbs: ["list"], resourceNames: ["orthanc-server-tls"] }], { verb: "list", resource: "secrets" }), "resourceNames cannot narrow list");
    });

    it("one RBAC rule allows a request when each of verb, group and resource matches or is *, and names match", () => {
        const request = { verb: "get", apiGroup: "cert-manager.io", resource: "certificaterequests", name: "r" };
        const cases: [Record<string, string[]>, boolean][] = [
            [{ verbs: ["get"], apiGroups: ["cert-manager.io"], resources: ["certificaterequests"] }, true],
            [{ verbs: ["*"], apiGroups: ["*"], resources: ["*"] }, true],
            [{ verbs: ["list"], apiGroups: ["cert-manager.io"], resources: ["certificaterequests"] }, false],
            [{ verbs: ["get"], apiGroups: [""], resources: ["certificaterequests"] }, false],
            [{ verbs: ["get"], apiGroups: ["cert-manager.io"], resources: ["certificates"] }, false],
            [{ verbs: ["get"], apiGroups: ["cert-manager.io"], resources: ["certificaterequests"], resourceNames: ["r"] }, true],
            [{ verbs: ["get"], apiGroups: ["cert-manager.io"], resources: ["certificaterequests"], resourceNames: ["other"] }, false],
            [{ resources: ["certificaterequests"], apiGroups: ["cert-manager.io"] }, false],
        ];
        for (const [rule, allowed] of cases) {
            assert.equal(ruleAllows(rule, request), allowed, JSON.stringify(rule));
        }
        assert.ok(!ruleAllows({ verbs: ["list"], apiGroups: [""], resources: ["secrets"], resourceNames: ["a"] }, { verb: "list", apiGroup: "", resource: "secrets" }));
    });

    it("DCMTK turns Nagle's algorithm off only for a TCP_NODELAY that reads as a non-zero number", () => {
        const cases: [string | undefined, boolean][] = [["1", true], [" 2", true], ["1x", true], ["-1", true], ["0", false], ["", false], ["yes", false], [undefined, false]];
        for (const [value, disabled] of cases) {
            assert.equal(dcmtkDisablesNagle(value), disabled, `TCP_NODELAY=${JSON.stringify(value)}`);
        }
    });

    it("the image reports a key defined in a mounted file and again by an environment variable, or by two files", () => {
        const base = { mountedDirectories: ["/tmp", pluginLinkDirectory], readOnlyRootFilesystem: true };
        const file = JSON.stringify({ RegisteredUsers: { admin: "x" }, DatabaseServerIdentifier: "orthanc", PostgreSQL: { Host: "db" } });
        const twice = startImage({
            ...base,
            configFiles: [file, JSON.stringify({ Name: "B", PostgreSQL: { Port: 5433 } }), JSON.stringify({ Name: "C" })],
            env: { GENERATE_HOST_ID_IF_MISSING: "false", ORTHANC__DATABASE_SERVER_IDENTIFIER: "orthanc-7d9f-abcde", ORTHANC__POSTGRESQL__HOST: "pgpool" },
        });
        assert.deepEqual(twice.redefinedKeys, [
            "Name defined in file:1, overwritten by file:2",
            "DatabaseServerIdentifier defined in file:0, overwritten by env-var:ORTHANC__DATABASE_SERVER_IDENTIFIER",
            "PostgreSQL.Host defined in file:0, overwritten by env-var:ORTHANC__POSTGRESQL__HOST",
        ]);
        assert.equal(twice.config.DatabaseServerIdentifier, "orthanc-7d9f-abcde", "the variable wins");
        assert.deepEqual(twice.config.PostgreSQL, { Host: "pgpool", Port: 5433, ...(twice.config.PostgreSQL as object) }, "objects merge");
        const once = startImage({ ...base, configFiles: [file], env: { GENERATE_HOST_ID_IF_MISSING: "false", ORTHANC__POSTGRESQL__PORT: "5433" } });
        assert.deepEqual(once.redefinedKeys, [], "a variable adding a key inside a file's section redefines nothing");
    });

    it("a configuration that lists its own Plugins keeps Orthanc Explorer 2 and GDCM from loading", () => {
        const config = {
            RegisteredUsers: { admin: "x" },
            PostgreSQL: { EnableIndex: true },
            Plugins: ["/usr/share/orthanc/plugins-available/libOrthancPostgreSQLIndex.so", "/usr/share/orthanc/plugins-available/libOrthancPostgreSQLStorage.so"],
        };
        const start = startImage({ configFiles: [JSON.stringify(config)], env: { GENERATE_HOST_ID_IF_MISSING: "false" }, mountedDirectories: ["/tmp", pluginLinkDirectory], readOnlyRootFilesystem: true });
        assert.ok(start.enabledPlugins.includes("OrthancExplorer2") && start.enabledPlugins.includes("Gdcm"));
        assert.ok(!start.loadedLibraries.includes("libOrthancExplorer2.so") && !start.loadedLibraries.includes("libOrthancGdcm.so"));
    });

    it("the image refuses deprecated settings, including those a Service named dicom injects through service links", () => {
        const base = { configFiles: [JSON.stringify({ RegisteredUsers: { admin: "x" } })], mountedDirectories: ["/tmp", pluginLinkDirectory], readOnlyRootFilesystem: true };
        const env = Object.fromEntries(serviceLinkVariables([{ name: "dicom", ports: [{ name: "dicom", port: 4242 }] }]).map((n) => [n, "x"]));
        assert.ok(Object.keys(env).includes("DICOM_PORT"));
        assert.equal(startImage({ ...base, env: { ...env, GENERATE_HOST_ID_IF_MISSING: "false" } }).exitCode, 254);
        assert.equal(startImage({ ...base, configFiles: [JSON.stringify({})], env: { GENERATE_HOST_ID_IF_MISSING: "false" } }).exitCode, 253, "no registered user");
        assert.notEqual(startImage({ ...base, env: {} }).exitCode, 0, "writes /etc/hostid on a read-only root");
    });

    it("envsubst would empty a `$word` in the mounted configuration", () => {
        const start = startImage({
            configFiles: [JSON.stringify({ Name: "Lab $HOME", RegisteredUsers: { admin: "x" } })],
            env: { GENERATE_HOST_ID_IF_MISSING: "false" },
            mountedDirectories: ["/tmp", pluginLinkDirectory],
            readOnlyRootFilesystem: true,
        });
        assert.equal(start.config.Name, "Lab ");
    });

    it("the chart's syncReplication waits for every standby, and only on the first primary's first boot", () => {
        const pods = postgresNodeNames(3);
        const chart = { syncReplication: true, syncReplicationMode: "ANY", replicaCount: 3 };
        const firstBoot = bitnamiChartSynchronousStandbyNames(chart, pods, "first boot of the first primary");
        assert.deepEqual(parseSynchronousStandbyNames(firstBoot), { method: "ANY", num: 2, names: pods });
        assert.equal(commitsWithStandbysLost(firstBoot, pods.slice(1), 1), false, "losing one standby of two stops writes");
        assert.equal(acknowledgedCommitReachesAStandby(bitnamiChartSynchronousStandbyNames(chart, pods, "any later start, or a promoted standby")), false);
        assert.equal(parseSynchronousStandbyNames(bitnamiChartSynchronousStandbyNames({ ...chart, syncReplicationMode: "" }, pods, "first boot of the first primary"))!.method, "FIRST");
    });

    it("the old connection budget left one Pgpool pod short once the storage connection and the reserved slot count", () => {
        const maxReplicas = 6;
        const oldNumInitChildren = (maxReplicas + 1) * 5 + 4;
        const needed = (maxReplicas + 1) * orthancConnections({ IndexConnectionsCount: 5, EnableStorage: true });
        assert.ok(needed > pgpoolAcceptedClients({ numInitChildren: String(oldNumInitChildren) }));
        assert.equal(orthancConnections({}), 50, "the plugin's own default opens 50");
    });
});
