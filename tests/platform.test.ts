import { strict as assert } from "assert";
import { CertManager, certManagerValues } from "../components/platform/certManager";
import { IstioMesh, accessLogProvider, cniValues, istiodValues } from "../components/platform/istio";
import { effectiveAccessLogFormats, pathWithQueryOperators } from "./upstream/istioAccessLog";
import { Observability, kialiValues, prometheusServiceUrl, prometheusValues } from "../components/platform/observability";
import { alertmanagerSecretsDirectory, alertmanagerCredentialsSecret } from "../components/platform/alertmanager";
import { CertificateAuthority } from "../components/pki/certificateAuthority";
import { rootCaProfile, tenantCaProfile } from "../components/pki/profile";
import { parseStackConfig } from "../components/config/load";
import { charts } from "../components/versions";
import { isSecretValue, reveal } from "./support/mocks";
import { only, registeredUnder, useMocks } from "./support/inProcess";

const releaseType = "kubernetes:helm.sh/v3:Release";
const pki = parseStackConfig({ domain: "orthweb.example.org", ingress: { serviceType: "ClusterIP" }, tenants: [{ name: "bhs", displayName: "B" }] }).pki;

/** Every kind of receiver, each credential a value no other part of the configuration contains. */
const credentials = ["smtp-pass-7f3a", "https://hooks.slack.example/T0/B0/slack-9c1d", "pd-key-44e2", "og-key-a81b", "bearer-0d9e"];
const alerting = parseStackConfig({
    domain: "orthweb.example.org",
    ingress: { serviceType: "ClusterIP" },
    tenants: [{ name: "bhs", displayName: "B" }],
    observability: {
        alerting: {
            smtp: { smarthost: "smtp.example.org:587", from: "alerts@example.org", username: "alerts", password: credentials[0] },
            receivers: [
                { name: "oncall", severities: ["critical"], email: { to: ["oncall@example.org"] }, slack: { webhookUrl: credentials[1] }, pagerduty: { routingKey: credentials[2] } },
                { name: "ops", opsgenie: { apiKey: credentials[3] }, webhook: { url: "https://alerts.example.org/korthweb", bearerToken: credentials[4] } },
            ],
        },
    },
}).observability.alerting;
const observabilityArgs = { istioNamespace: "istio-system", alerting };
const valuesInput = { alerting };

describe("platform components", () => {
    before(useMocks);

    describe("IstioMesh", () => {
        it("installs base, cni and istiod with pinned versions and fixed release names in istio-system", async () => {
            new IstioMesh("mesh1");
            const releases = (await registeredUnder("mesh1")).filter((r) => r.type === releaseType);
            assert.deepEqual(
                releases.map((r) => [r.inputs.name, r.inputs.chart, r.inputs.version, r.inputs.namespace]).sort(),
                [
                    ["istio-base", "base", charts.istioBase.version, "istio-system"],
                    ["istio-cni", "cni", charts.istioCni.version, "istio-system"],
                    ["istiod", "istiod", charts.istiod.version, "istio-system"],
                ],
            );
            for (const release of releases) {
                assert.equal(release.inputs.repositoryOpts.repo, "https://istio-release.storage.googleapis.com/charts");
            }
        });

        it("logs every proxy's requests without query strings (QIDO-RS searches carry patient names), through a mesh-wide Telemetry", async () => {
            new IstioMesh("mesh-log");
            const resources = await registeredUnder("mesh-log");
            const telemetries = resources.filter((r) => r.type === "kubernetes:telemetry.istio.io/v1:Telemetry");
            assert.deepEqual(telemetries.map((t) => t.inputs.metadata.namespace), ["istio-system"]);
            // Its schema (@kubernetes-models/istio, telemetry.istio.io/v1) is checked with every object in tests/schema.test.ts.
            const istiod = resources.find((r) => r.type === releaseType && r.inputs.name === "istiod")!;
            const formats = effectiveAccessLogFormats(istiod.inputs.values.meshConfig, telemetries.map((t) => t.inputs.spec));
            assert.ok(formats.length > 0, "the mesh logs requests");
            for (const format of formats) {
                for (const operator of pathWithQueryOperators) assert.doesNotMatch(format.text, operator, format.source);
                assert.match(format.text, /%REQ_WITHOUT_QUERY\(X-ENVOY-ORIGINAL-PATH\?:PATH\)%/, format.source);
            }
        });

        it("configures the mesh at least as strictly as Korthweb: access log to stdout, registry-only egress", () => {
            const values = istiodValues() as any;
            assert.deepEqual(values.meshConfig.defaultProviders.accessLogging, [accessLogProvider]);
            assert.equal(values.meshConfig.extensionProviders.find((p: any) => p.name === accessLogProvider).envoyFileAccessLog.path, "/dev/stdout");
            assert.equal(values.meshConfig.outboundTrafficPolicy.mode, "REGISTRY_ONLY");
            // Orthanc 1.13.0 routes `//tools/shutdown` and `/tools%2Fshutdown` as `/tools/shutdown` (seen on sid's
            // Orthanc); Istio 1.30.3's default normalization (listener_builder.go) merges no slashes and decodes no %2F.
            assert.equal(values.meshConfig.pathNormalization.normalization, "DECODE_AND_MERGE_SLASHES");
        });

        it("scopes Gateway selectors to their own namespace and relies on the CNI agent, not privileged init containers", () => {
            const values = istiodValues() as any;
            // Top level: the 1.24+ chart no longer reads a `pilot:` block as such.
            assert.equal(values.pilot, undefined);
            assert.equal(values.env.PILOT_SCOPE_GATEWAY_TO_NAMESPACE, "true");
            assert.equal(values.cni.enabled, true);
        });

        it("tells the CNI agent and the injector the cluster's platform when the stack names one (k3d keeps its CNI elsewhere)", () => {
            assert.equal((cniValues() as any).global, undefined, "default paths for kind, minikube and clouds");
            assert.equal((cniValues("k3d") as any).global.platform, "k3d");
            assert.equal((istiodValues("k3d") as any).global.platform, "k3d");
            assert.equal((istiodValues() as any).global.platform, undefined);
        });

        it("enforces STRICT mutual TLS mesh-wide, after the CRDs and webhook exist", async () => {
            const mesh = new IstioMesh("mesh2");
            const children = await registeredUnder("mesh2");
            const peer = only(children.filter((r) => r.type === "kubernetes:security.istio.io/v1:PeerAuthentication"), "PeerAuthentication");
            assert.equal(peer.inputs.metadata.namespace, "istio-system");
            assert.equal(peer.inputs.metadata.name, "default");
            assert.equal(peer.inputs.spec.mtls.mode, "STRICT");
            assert.deepEqual(mesh.crdsReady, [mesh.base, mesh.istiod]);
        });

        it("creates istio-system with the privileged level the CNI DaemonSet needs and no injection", async () => {
            new IstioMesh("mesh3");
            const ns = only((await registeredUnder("mesh3")).filter((r) => r.type === "kubernetes:core/v1:Namespace"), "Namespace");
            assert.equal(ns.inputs.metadata.name, "istio-system");
            assert.equal(ns.inputs.metadata.labels["pod-security.kubernetes.io/enforce"], "privileged");
            assert.equal(ns.inputs.metadata.labels["istio-injection"], "disabled");
        });
    });

    describe("CertManager", () => {
        it("installs cert-manager with its CRDs (not the deprecated installCRDs) in cert-manager", async () => {
            new CertManager("cm1");
            const release = only((await registeredUnder("cm1")).filter((r) => r.type === releaseType && r.inputs.name === "cert-manager"), "release");
            assert.equal(release.inputs.name, "cert-manager");
            assert.equal(release.inputs.namespace, "cert-manager");
            assert.equal(release.inputs.version, charts.certManager.version);
            assert.equal(release.inputs.values.crds.enabled, true);
            assert.equal(release.inputs.values.installCRDs, undefined);
        });
    });

    describe("Observability", () => {
        it("installs a slim Prometheus and Kiali wired to it in monitoring", async () => {
            new Observability("obs1", observabilityArgs).installKiali([]);
            const children = await registeredUnder("obs1");
            const releases = children.filter((r) => r.type === releaseType);
            assert.deepEqual(releases.map((r) => r.inputs.name).sort(), ["kiali", "kube-prometheus-stack"]);
            for (const release of releases) {
                assert.equal(release.inputs.namespace, "monitoring");
            }
            const kiali = releases.find((r) => r.inputs.name === "kiali")!;
            assert.equal(kiali.inputs.values.external_services.prometheus.url, prometheusServiceUrl("monitoring"));
            assert.equal(kiali.inputs.values.external_services.istio.root_namespace, "istio-system");
        });

        it("turns off everything Korthweb turned off, and Grafana with its default password", () => {
            const values = prometheusValues(valuesInput) as any;
            for (const part of ["grafana", "nodeExporter", "kubelet", "kubeApiServer"]) {
                assert.equal(values[part].enabled, false, part);
            }
            assert.equal(values.defaultRules.create, false);
        });

        it("runs kube-state-metrics for the alerts, exporting the backup label of CronJobs", () => {
            const values = prometheusValues(valuesInput) as any;
            // kube-prometheus-stack 88.5.3 Chart.yaml: the kube-state-metrics dependency's condition is kubeStateMetrics.enabled.
            assert.equal(values.kubeStateMetrics.enabled, true);
            assert.deepEqual(values["kube-state-metrics"].metricLabelsAllowlist, ["cronjobs=[korthweb.io/backup]"]);
        });

        it("scrapes cert-manager's controller with its own ServiceMonitor, keeping the Certificates' namespace label", async () => {
            new Observability("obs3", observabilityArgs);
            const children = await registeredUnder("obs3");
            const monitor = only(children.filter((r) => r.type === "kubernetes:monitoring.coreos.com/v1:ServiceMonitor" && r.inputs.metadata.name === "cert-manager"), "ServiceMonitor");
            assert.deepEqual(monitor.inputs.spec.namespaceSelector.matchNames, ["cert-manager"]);
            assert.equal(monitor.inputs.spec.selector.matchLabels["app.kubernetes.io/component"], "controller");
            assert.deepEqual(monitor.inputs.spec.endpoints, [{ port: "http-metrics", path: "/metrics", interval: "60s", honorLabels: true }]);
            assert.equal(monitor.inputs.metadata.namespace, "monitoring");
            // The chart's own ServiceMonitor stays off: it would need the Prometheus Operator's CRDs before cert-manager.
            assert.equal((certManagerValues() as any).prometheus.servicemonitor.enabled, false);
            assert.equal((certManagerValues() as any).prometheus.enabled, true);
        });

        it("creates the alert rules where the chart's Prometheus selects them, with the backup threshold of the schedule given", async () => {
            new Observability("obs4", { ...observabilityArgs, backupSchedule: "0 3 * * 0" });
            const children = await registeredUnder("obs4");
            const rule = only(children.filter((r) => r.type === "kubernetes:monitoring.coreos.com/v1:PrometheusRule"), "PrometheusRule");
            assert.equal(rule.inputs.metadata.namespace, "monitoring");
            // Prometheus reads rules labelled release=<release name> from the monitoring namespace (what it reads:
            // tests/alerts.test.ts, through the chart's rendering and the operator's selection).
            assert.equal(rule.inputs.metadata.labels.release, "kube-prometheus-stack");
            assert.deepEqual((prometheusValues(valuesInput) as any).prometheus.prometheusSpec.ruleSelector, { matchLabels: { release: "kube-prometheus-stack" } });
            const alerts = rule.inputs.spec.groups.flatMap((g: any) => g.rules.map((r: any) => r.alert));
            for (const alert of ["OrthancReplicasUnavailable", "OrthancDown", "PostgresNotReady", "PostgresReplicationBroken", "BackupTooOld", "CertificateExpiresSoon"]) {
                assert.ok(alerts.includes(alert), alert);
            }
            const backup = rule.inputs.spec.groups.find((g: any) => g.name === "korthweb.backups");
            assert.ok(
                backup.rules.every((r: any) => r.expr.includes(String(7 * 86400 + 7200)) || r.for === "170h"),
                "the threshold follows the schedule passed in",
            );
        });

        it("turns Alertmanager on with the stack's receivers, its credentials in a Secret and none in the Helm values", async () => {
            new Observability("obs5", observabilityArgs);
            const children = await registeredUnder("obs5");
            const release = only(children.filter((r) => r.type === releaseType && r.inputs.name === "kube-prometheus-stack"), "release");
            const values = release.inputs.values;
            assert.equal(values.alertmanager.enabled, true);
            assert.deepEqual(values.alertmanager.alertmanagerSpec.secrets, [alertmanagerCredentialsSecret]);
            const valuesText = JSON.stringify(values);
            for (const credential of credentials) assert.ok(!valuesText.includes(credential), `${credential} stays out of the values`);
            const secret = only(children.filter((r) => r.type === "kubernetes:core/v1:Secret"), "Secret");
            assert.equal(secret.inputs.metadata.name, alertmanagerCredentialsSecret);
            assert.equal(secret.inputs.metadata.namespace, "monitoring");
            assert.ok(isSecretValue(secret.inputs.stringData), "the credentials reach the Secret only as a Pulumi secret");
            const stringData = JSON.parse(JSON.stringify(reveal(secret.inputs.stringData)));
            assert.deepEqual(Object.values(stringData).sort(), [...credentials].sort());
            // Every *_file the configuration names is a key of the mounted Secret, and every key is named.
            const files = [...valuesText.matchAll(/"\w+_file":"([^"]+)"/g)].map((m) => m[1]);
            assert.deepEqual(files.map((f) => f.replace(`${alertmanagerSecretsDirectory}/`, "")).sort(), Object.keys(stringData).sort());
        });

        it("runs without Alertmanager and without a credentials Secret only when the stack opts out", async () => {
            const optedOut = { ...alerting, enabled: false, receivers: [] };
            new Observability("obs6", { ...observabilityArgs, alerting: optedOut });
            const children = await registeredUnder("obs6");
            const release = only(children.filter((r) => r.type === releaseType && r.inputs.name === "kube-prometheus-stack"), "release");
            assert.equal(release.inputs.values.alertmanager.enabled, false);
            assert.equal(children.filter((r) => r.type === "kubernetes:core/v1:Secret").length, 0);
        });

        it("scrapes the CloudNativePG instances' metrics port with the job the alerts select", async () => {
            new Observability("obs7", observabilityArgs);
            const children = await registeredUnder("obs7");
            const pod = only(children.filter((r) => r.type === "kubernetes:monitoring.coreos.com/v1:PodMonitor" && r.inputs.metadata.name === "cloudnative-pg-instances"), "PodMonitor");
            assert.equal(pod.inputs.spec.podMetricsEndpoints[0].port, "metrics");
            assert.equal(pod.inputs.spec.selector.matchLabels["cnpg.io/podRole"], "instance");
            assert.ok(pod.inputs.spec.podMetricsEndpoints[0].relabelings.some((r: any) => r.targetLabel === "job" && r.replacement === "cloudnative-pg"));
        });

        it("walls the monitoring namespace and lets Alertmanager out by its receivers' names where Cilium runs", async () => {
            new Observability("obs8", { ...observabilityArgs, network: { cni: "cilium", dns: { namespace: "kube-system", podLabels: { "k8s-app": "kube-dns" }, ports: [53] } } });
            const children = await registeredUnder("obs8");
            const names = children.filter((r) => r.type === "kubernetes:networking.k8s.io/v1:NetworkPolicy").map((r) => r.inputs.metadata.name);
            assert.ok(names.includes("default-deny"));
            const fqdn = children.filter((r) => r.type === "kubernetes:cilium.io/v2:CiliumNetworkPolicy").flatMap((r) => r.inputs.spec.egress.flatMap((e: any) => (e.toFQDNs ?? []).map((f: any) => f.matchName)));
            assert.deepEqual(fqdn.filter(Boolean).sort(), ["alerts.example.org", "api.opsgenie.com", "events.pagerduty.com", "hooks.slack.example", "smtp.example.org"]);
        });

        it("does not let Kiali in anonymously", () => {
            const values = kialiValues("istio-system", "http://p:9090") as any;
            assert.notEqual(values.auth.strategy, "anonymous");
            assert.equal(values.deployment.view_only_mode, true);
        });

        it("scrapes Envoy proxies in every namespace and istiod", async () => {
            new Observability("obs2", observabilityArgs);
            const children = await registeredUnder("obs2");
            const pod = only(children.filter((r) => r.type === "kubernetes:monitoring.coreos.com/v1:PodMonitor" && r.inputs.metadata.name === "envoy-stats"), "PodMonitor");
            assert.equal(pod.inputs.spec.namespaceSelector.any, true);
            assert.equal(pod.inputs.spec.podMetricsEndpoints[0].path, "/stats/prometheus");
            const service = only(children.filter((r) => r.type === "kubernetes:monitoring.coreos.com/v1:ServiceMonitor" && r.inputs.metadata.name === "istiod"), "ServiceMonitor");
            assert.deepEqual(service.inputs.spec.namespaceSelector.matchNames, ["istio-system"]);
            assert.equal(service.inputs.spec.endpoints[0].port, "http-monitoring");
        });
    });

    describe("CertificateAuthority", () => {
        it("makes a root CA: RSA key, self-signed CA certificate with CA usages and the configured validity", async () => {
            new CertificateAuthority("ca1", { commonName: "Root", organization: "Org", profile: rootCaProfile(pki) });
            const children = await registeredUnder("ca1");
            const key = only(children.filter((r) => r.type === "tls:index/privateKey:PrivateKey"), "key");
            assert.equal(key.inputs.algorithm, "RSA");
            assert.equal(key.inputs.rsaBits, 4096);
            const cert = only(children.filter((r) => r.type === "tls:index/selfSignedCert:SelfSignedCert"), "certificate");
            assert.equal(cert.inputs.isCaCertificate, true);
            assert.deepEqual(cert.inputs.allowedUses, ["cert_signing", "crl_signing", "digital_signature"]);
            assert.equal(cert.inputs.validityPeriodHours, pki.rootCaValidityHours);
            assert.equal(cert.inputs.subject.commonName, "Root");
            assert.ok(isSecretValue(cert.inputs.privateKeyPem), "the CA key reaches the certificate only as a secret");
        });

        it("signs an intermediate with its issuer's key, with no path-length constraint of its own (the root's pathlen 1 limits it)", async () => {
            const root = new CertificateAuthority("ca2", { commonName: "Root", organization: "Org", profile: rootCaProfile(pki) });
            new CertificateAuthority("ca2-tenant", { commonName: "Tenant", organization: "Org", profile: tenantCaProfile(pki), issuer: root });
            const children = await registeredUnder("ca2-tenant");
            const cert = only(children.filter((r) => r.type === "tls:index/locallySignedCert:LocallySignedCert"), "certificate");
            assert.equal(cert.inputs.isCaCertificate, true);
            // 0 would write no constraint at all (terraform-provider-tls never sets Go's MaxPathLenZero): none is asked.
            assert.equal(cert.inputs.maxPathLength, undefined);
            // Renewed while everything it issued before is still valid: when the longest-lived certificate it issues
            // would still fit (pki validation keeps that at most half its life).
            assert.equal(cert.inputs.earlyRenewalHours, Math.max(pki.serverCertificateDurationHours, pki.modalityCertificateValidityHours));
            assert.ok(isSecretValue(cert.inputs.caPrivateKeyPem));
            assert.match(reveal(cert.inputs.caPrivateKeyPem), /MOCKca2-key/);
            assert.match(cert.inputs.caCertPem, /MOCKca2-certificate/);
        });
    });
});
