import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { pinnedRelease } from "../k8s/helm";
import { monitoringNamespaceLabels, namespace } from "../k8s/namespace";
import { AlertingConfig, DnsConfig, apiServerPorts, clusterDns, isIpv4Address } from "../config/schema";
import { ciliumFqdnPolicy, endpointAddress } from "../data/backup/backup";
import { cnpgPodLabels, cnpgPodMonitorSpec, instanceMetricsPort } from "../data/engines/cloudnativePg";
import { charts, kialiImage, kialiImageValues } from "../versions";
import { alertRulesSpec, cnpgMetricsJob, kubeStateMetricsValues } from "./alerts";
import { alertmanagerConfig, alertmanagerCredentials, alertmanagerCredentialsSecret } from "./alertmanager";
import { dnsEgress, namespaceNamed, podsLabelled, tcp } from "../k8s/walls";

export interface ObservabilityArgs {
    namespace?: string;
    /** Namespace of the Istio control plane, which Kiali inspects. */
    istioNamespace: string;
    /**
     * The tenants' namespaces (Orthanc's and the gateway's), the only ones besides the Istio control plane and its own
     * that Kiali may see. Kiali's Roles there are created by `grantKialiTenantView`, once the namespaces exist.
     */
    tenantNamespaces?: string[];
    /** Istio custom resources and the Prometheus Operator's CRDs must exist before the monitors are created. */
    dependsOn?: pulumi.Input<pulumi.Resource>[];
    /** Namespace of cert-manager, whose controller's metrics are scraped; "cert-manager" (CertManager's default). */
    certManagerNamespace?: string;
    /** The stack's `backup.schedule`: BackupTooOld's threshold follows it. The configuration's default when unset. */
    backupSchedule?: string;
    /** cert-manager's renewBefore of the server certificates, in hours: where the expiry alert sits. */
    certificateRenewBeforeHours?: number;
    /** The stack's `observability.alerting`: Alertmanager's receivers and routes. */
    alerting: AlertingConfig;
    /** The stack's `kubernetes.apiServerAddresses`: the monitoring pods' way to the API server (any address on its ports when unset). */
    apiServerAddresses?: string[];
    /** The cluster's DNS and CNI (Cilium: Alertmanager's receivers by name). */
    network?: { dns: DnsConfig; cni?: "cilium" };
}

/** The kube-prometheus-stack release name; its `fullnameOverride` fixes the names of the Services it creates. */
const prometheusRelease = "kube-prometheus-stack";
const prometheusFullname = "monitoring";

/**
 * Prometheus (a slim kube-prometheus-stack, as Korthweb runs it), Kiali reading from it, and the monitors that scrape
 * the Envoy proxies of every meshed pod and the istiod control plane. The namespace is `restricted` and walled: every
 * pod in it reaches and is reached by what it needs only (`monitoringWalls`).
 */
export class Observability extends pulumi.ComponentResource {
    readonly namespace: string;
    readonly prometheusUrl: string;
    private readonly kialiNamespaces: string[];
    private readonly kialiReady: pulumi.Resource[];
    private readonly istioNamespace: string;
    private readonly resourceName: string;

    constructor(name: string, args: ObservabilityArgs, opts?: pulumi.ComponentResourceOptions) {
        super("korthweb:platform:Observability", name, {}, opts);
        this.namespace = args.namespace ?? "monitoring";
        this.prometheusUrl = prometheusServiceUrl(this.namespace);
        this.kialiNamespaces = args.tenantNamespaces ?? [];

        // Every chart pod here runs non-root, RuntimeDefault seccomp, no privilege escalation, every capability dropped
        // (the charts' defaults, and Kiali's container security context set in kialiValues): "restricted" admits them.
        const ns = namespace(
            `${name}-namespace`,
            { name: this.namespace, enforce: "restricted", istioInjection: false, labels: { ...monitoringNamespaceLabels } },
            { parent: this },
        );
        const network = args.network ?? { dns: clusterDns({}) };
        const walls = monitoringWalls({
            namespace: this.namespace,
            istioNamespace: args.istioNamespace,
            certManagerNamespace: args.certManagerNamespace ?? "cert-manager",
            alerting: args.alerting,
            apiServerAddresses: args.apiServerAddresses,
            network,
        });
        const wallResources = [
            ...walls.network.map(
                (policy) =>
                    new k8s.networking.v1.NetworkPolicy(
                        `${name}-${policy.name}`,
                        { metadata: { name: policy.name, namespace: this.namespace }, spec: policy.spec },
                        { parent: this, dependsOn: [ns] },
                    ),
            ),
            ...walls.cniPolicies.map(
                (policy) =>
                    new k8s.apiextensions.CustomResource(
                        `${name}-cni-${policy.name}`,
                        { apiVersion: policy.apiVersion, kind: policy.kind, metadata: { name: policy.name, namespace: policy.namespace, annotations: policy.annotations }, spec: policy.spec },
                        { parent: this, dependsOn: [ns] },
                    ),
            ),
        ];
        // The operator's and Prometheus' rights, in place of the chart's ClusterRoles (global.rbac.create: false).
        const rbac = monitoringRbac(this.namespace).map((object) => rbacResource(`${name}-${object.kind.toLowerCase()}-${object.name}`, object, { parent: this, dependsOn: [ns] }));
        // The receivers' credentials, which Alertmanager reads from files (see components/platform/alertmanager.ts).
        const credentials = args.alerting.enabled
            ? [
                  new k8s.core.v1.Secret(
                      `${name}-alertmanager-credentials`,
                      {
                          metadata: { name: alertmanagerCredentialsSecret, namespace: this.namespace },
                          stringData: pulumi.secret(alertmanagerCredentials(args.alerting)),
                      },
                      { parent: this, dependsOn: [ns] },
                  ),
              ]
            : [];
        const prometheus = pinnedRelease(
            `${name}-prometheus`,
            {
                pin: charts.kubePrometheusStack,
                releaseName: prometheusRelease,
                namespace: this.namespace,
                values: prometheusValues({ alerting: args.alerting }),
            },
            { parent: this, dependsOn: [ns, ...credentials, ...rbac, ...wallResources] },
        );
        this.kialiReady = [ns, prometheus, ...wallResources];
        this.istioNamespace = args.istioNamespace;
        this.resourceName = name;

        const monitorOpts = { parent: this, dependsOn: [prometheus, ...(args.dependsOn ?? [])] };
        new k8s.apiextensions.CustomResource(
            `${name}-envoy-pod-monitor`,
            {
                apiVersion: "monitoring.coreos.com/v1",
                kind: "PodMonitor",
                metadata: { name: "envoy-stats", namespace: this.namespace, labels: monitorLabels },
                spec: envoyPodMonitorSpec(),
            },
            monitorOpts,
        );
        new k8s.apiextensions.CustomResource(
            `${name}-istiod-service-monitor`,
            {
                apiVersion: "monitoring.coreos.com/v1",
                kind: "ServiceMonitor",
                metadata: { name: "istiod", namespace: this.namespace, labels: monitorLabels },
                spec: istiodServiceMonitorSpec(args.istioNamespace),
            },
            monitorOpts,
        );
        new k8s.apiextensions.CustomResource(
            `${name}-cert-manager-service-monitor`,
            {
                apiVersion: "monitoring.coreos.com/v1",
                kind: "ServiceMonitor",
                metadata: { name: "cert-manager", namespace: this.namespace, labels: monitorLabels },
                spec: certManagerServiceMonitorSpec(args.certManagerNamespace ?? "cert-manager"),
            },
            monitorOpts,
        );
        new k8s.apiextensions.CustomResource(
            `${name}-cnpg-pod-monitor`,
            {
                apiVersion: "monitoring.coreos.com/v1",
                kind: "PodMonitor",
                metadata: { name: "cloudnative-pg-instances", namespace: this.namespace, labels: monitorLabels },
                spec: cnpgPodMonitorSpec(cnpgMetricsJob),
            },
            monitorOpts,
        );
        new k8s.apiextensions.CustomResource(
            `${name}-alert-rules`,
            {
                apiVersion: "monitoring.coreos.com/v1",
                kind: "PrometheusRule",
                // Prometheus selects rules by the same label and namespace as the monitors (prometheusValues).
                metadata: { name: "korthweb-alerts", namespace: this.namespace, labels: monitorLabels },
                spec: alertRulesSpec({ backupSchedule: args.backupSchedule, certificateRenewBeforeHours: args.certificateRenewBeforeHours }),
            },
            monitorOpts,
        );
        this.registerOutputs({ namespace: this.namespace, prometheusUrl: this.prometheusUrl });
    }

    /**
     * Kiali, with read access to the tenants' namespaces (`tenantNamespaces`), the Istio control plane's and its own.
     * Installed once the tenants exist (`dependsOn`): its Roles there would fail in a namespace not yet created, and
     * the chart reads the namespaces its discovery selectors name when it installs (kiali-server 2.20.0
     * templates/_helpers.tpl `accessible-namespaces`, a Helm `lookup`), so a namespace created later stays unseen
     * until the next upgrade, which a new tenant brings (its namespaces join the values).
     */
    installKiali(dependsOn: pulumi.Input<pulumi.Resource>[]): void {
        const namespaces = [this.istioNamespace, this.namespace, ...this.kialiNamespaces];
        const roles = kialiViewerRoles(this.namespace, namespaces).map((object) =>
            // Named after the namespace, so a tenant's are recognisably its own.
            rbacResource(`${object.namespace}-kiali-viewer-${object.kind === "Role" ? "role" : "binding"}`, object, { parent: this, dependsOn: [...this.kialiReady, ...dependsOn] }),
        );
        pinnedRelease(
            `${this.resourceName}-kiali`,
            {
                pin: charts.kiali,
                releaseName: "kiali",
                namespace: this.namespace,
                values: kialiValues(this.istioNamespace, this.prometheusUrl, namespaces),
            },
            { parent: this, dependsOn: [...this.kialiReady, ...roles, ...dependsOn] },
        );
    }
}

/**
 * Selects the program's monitors and rules: the chart labels its own (kube-state-metrics' ServiceMonitor) with the
 * release, and the program labels its monitors the same. Prometheus takes them from the monitoring namespace only.
 */
export const monitorLabels = { release: prometheusRelease, "app.kubernetes.io/part-of": "korthweb" };
const monitorSelector = { matchLabels: { release: prometheusRelease } };

export function prometheusServiceUrl(monitoringNamespace: string): string {
    return `http://${prometheusFullname}-prometheus.${monitoringNamespace}:9090`;
}

export interface PrometheusValuesInput {
    alerting: AlertingConfig;
}

/**
 * Alertmanager with korthweb's receivers and routes. kube-prometheus-stack 88.5.3 gives Prometheus an `alerting:`
 * block only when Alertmanager is enabled (or `alertingEndpoints` is set: templates/prometheus/prometheus.yaml):
 * without it every rule evaluates and nobody is told. The credentials Secret is mounted, not copied into values.
 */
export function alertmanagerValues(input: PrometheusValuesInput): Record<string, unknown> {
    if (!input.alerting.enabled) return { enabled: false };
    return {
        enabled: true,
        config: alertmanagerConfig({ alerting: input.alerting }),
        // Nothing reads Alertmanager's own metrics; its port stays walled to Prometheus' alerts.
        serviceMonitor: { selfMonitor: false },
        alertmanagerSpec: {
            secrets: [alertmanagerCredentialsSecret],
            resources: { requests: { cpu: "10m", memory: "64Mi" }, limits: { memory: "256Mi" } },
        },
    };
}

/**
 * Prometheus, its operator, kube-state-metrics (which the alerts read) and Alertmanager (which delivers them): the
 * rest of the stack is off, as in Korthweb, and Grafana (default password) too.
 *
 * Prometheus' and the operator's powers (kube-prometheus-stack 88.5.3, prometheus-operator v0.93):
 * - Prometheus takes monitors, rules, probes and scrape configurations labelled `release: kube-prometheus-stack` from
 *   the namespace the program labelled as monitoring only, and the operator watches that namespace only
 *   (`prometheusOperator.namespaces`: its `--namespaces`): a ServiceMonitor in a tenant namespace is not read at all.
 *   `arbitraryFSAccessThroughSMs.deny` refuses a ServiceMonitor that names a file in Prometheus' pod (its own
 *   service-account token as a bearer token file, for one), so no monitor makes Prometheus send its token.
 *   `ignoreNamespaceSelectors` is left off: the program's monitors live in the monitoring namespace and select the
 *   tenants' pods across namespaces, and nobody else's monitors are read.
 * - `global.rbac.create: false`: the chart's operator ClusterRole grants every verb on every Secret and ConfigMap of
 *   the cluster (templates/prometheus-operator/clusterrole.yaml); the program grants the operator a Role in the
 *   monitoring namespace instead, and Prometheus a ClusterRole for service discovery without Secrets (`monitoringRbac`).
 * - No kubelet Service (the operator would write Endpoints in kube-system), no admission webhook (its certificate job
 *   holds a ClusterRole that patches webhook configurations, and the API server would need a way in), no TLS on the
 *   operator's port (the webhook's certificate made it): nobody but the kubelet's probes talks to the operator.
 */
export function prometheusValues(input: PrometheusValuesInput): Record<string, unknown> {
    const off = { enabled: false };
    const inMonitoringNamespace = { matchLabels: { ...monitoringNamespaceLabels } };
    return {
        fullnameOverride: prometheusFullname,
        global: { rbac: { create: false, createAggregateClusterRoles: false } },
        defaultRules: { create: false },
        alertmanager: alertmanagerValues(input),
        grafana: off,
        coreDns: off,
        kubeApiServer: off,
        kubeControllerManager: off,
        kubeEtcd: off,
        kubeProxy: off,
        kubeScheduler: off,
        // Deployment, StatefulSet and CronJob state for the alerts (components/platform/alerts.ts).
        kubeStateMetrics: { enabled: true },
        "kube-state-metrics": kubeStateMetricsValues(),
        kubelet: off,
        nodeExporter: off,
        prometheusOperator: {
            namespaces: { releaseNamespace: true, additional: [] },
            kubeletService: { enabled: false },
            admissionWebhooks: { enabled: false, patch: { enabled: false } },
            tls: { enabled: false },
            serviceMonitor: { selfMonitor: false },
            resources: { requests: { cpu: "50m", memory: "128Mi" }, limits: { memory: "512Mi" } },
        },
        prometheus: {
            serviceMonitor: { selfMonitor: false },
            prometheusSpec: {
                scrapeInterval: "15s",
                retention: "10d",
                serviceMonitorSelector: monitorSelector,
                serviceMonitorNamespaceSelector: inMonitoringNamespace,
                podMonitorSelector: monitorSelector,
                podMonitorNamespaceSelector: inMonitoringNamespace,
                ruleSelector: monitorSelector,
                ruleNamespaceSelector: inMonitoringNamespace,
                probeSelector: monitorSelector,
                probeNamespaceSelector: inMonitoringNamespace,
                scrapeConfigSelector: monitorSelector,
                scrapeConfigNamespaceSelector: inMonitoringNamespace,
                arbitraryFSAccessThroughSMs: { deny: true },
                resources: { requests: { cpu: "200m", memory: "1Gi" }, limits: { memory: "4Gi" } },
            },
        },
    };
}

/** The pods of the monitoring namespace, by the labels their charts and operators give them. */
export const monitoringPods = {
    /** prometheus-operator v0.93.0 (pkg/operator/kubernetes.go ApplicationNameLabelKey): `app.kubernetes.io/name`. */
    prometheus: { "app.kubernetes.io/name": "prometheus" },
    alertmanager: { "app.kubernetes.io/name": "alertmanager" },
    /** kube-state-metrics chart 8.4.0 templates/_helpers.tpl `selectorLabels`. */
    kubeStateMetrics: { "app.kubernetes.io/name": "kube-state-metrics" },
    /** kube-prometheus-stack 88.5.3 `prometheus-operator.labels`: `app: <chart name>-operator`. */
    operator: { app: "kube-prometheus-stack-operator" },
    /** kiali-server 2.20.0 templates/_helpers.tpl `selectorLabels`. */
    kiali: { "app.kubernetes.io/name": "kiali" },
} as const;

/** The ports the walls open: Prometheus' web port, Alertmanager's, kube-state-metrics' (chart 8.4.0 `service.port`). */
export const monitoringPorts = { prometheus: 9090, alertmanager: 9093, kubeStateMetrics: 8080, envoyMerged: 15020, istiod: 15014, certManager: 9402 } as const;

export interface MonitoringWallsInput {
    namespace: string;
    istioNamespace: string;
    certManagerNamespace: string;
    alerting: AlertingConfig;
    apiServerAddresses?: string[];
    network: { dns: DnsConfig; cni?: "cilium" };
}

type NetworkPolicySpec = k8s.types.input.networking.v1.NetworkPolicySpec;

/** Where each receiver of the alerting configuration is: host and port (Alertmanager's defaults for PagerDuty and Opsgenie). */
export function receiverEndpoints(alerting: AlertingConfig): { host: string; port: number }[] {
    if (!alerting.enabled) return [];
    const endpoints: { host: string; port: number }[] = [];
    if (alerting.smtp && alerting.receivers.some((r) => r.email)) {
        const [host, port] = alerting.smtp.smarthost.split(":");
        endpoints.push({ host, port: Number(port) });
    }
    for (const receiver of alerting.receivers) {
        if (receiver.webhook) endpoints.push(endpointAddress(receiver.webhook.url));
        if (receiver.slack) endpoints.push(endpointAddress(receiver.slack.webhookUrl));
        // prometheus/alertmanager v0.33 config/notifiers.go: DefaultPagerdutyConfig's URL, the global opsgenie_api_url.
        if (receiver.pagerduty) endpoints.push({ host: "events.pagerduty.com", port: 443 });
        if (receiver.opsgenie) endpoints.push(endpointAddress(receiver.opsgenie.apiUrl ?? "https://api.opsgenie.com/"));
    }
    const seen = new Set<string>();
    return endpoints.filter((e) => !seen.has(`${e.host}:${e.port}`) && seen.add(`${e.host}:${e.port}`) !== undefined);
}

/**
 * The monitoring namespace's walls. Everything is refused but:
 * - DNS for every pod; the API server (its addresses, or any address on its ports when the stack does not name them)
 *   for the operator, Prometheus (service discovery), kube-state-metrics and Kiali;
 * - Prometheus out to what its monitors scrape: Envoy's merged metrics (15020) of meshed pods and the CloudNativePG
 *   instances' 9187 in any namespace, istiod's 15014, cert-manager's 9402, kube-state-metrics, and Alertmanager;
 * - Prometheus' 9090 in from Kiali only (and from nobody outside the namespace: it has no authentication);
 *   Alertmanager's 9093 and kube-state-metrics' 8080 from Prometheus only; Kiali from nobody (operators port-forward,
 *   which the kubelet carries into the pod past every NetworkPolicy, and which takes `pods/portforward` here);
 * - Alertmanager out to its receivers' ports only. A NetworkPolicy cannot name hosts: any address on those ports,
 *   or, with Cilium, the receivers' host names only (a CiliumNetworkPolicy, whose FQDN rule replaces the address rule).
 */
export function monitoringWalls(input: MonitoringWallsInput): { network: { name: string; spec: NetworkPolicySpec }[]; cniPolicies: ReturnType<typeof ciliumFqdnPolicy>[] } {
    const ns = input.namespace;
    const pods = monitoringPods;
    const apiServer = {
        to: (input.apiServerAddresses ?? ["0.0.0.0/0"]).map((cidr) => ({ ipBlock: { cidr } })),
        ports: apiServerPorts.map(tcp),
    };
    const anyNamespace = (matchLabels: Record<string, string>) => ({ namespaceSelector: {}, podSelector: { matchLabels } });
    const prometheus = podsLabelled({ ...pods.prometheus });
    const receivers = receiverEndpoints(input.alerting);
    const byName = input.network.cni === "cilium";
    const receiverPorts = [...new Set(receivers.map((r) => r.port))];
    const receiverAddresses = receivers.filter((r) => isIpv4Address(r.host));
    const alertmanagerEgress = byName
        ? receiverAddresses.map((r) => ({ to: [{ ipBlock: { cidr: `${r.host}/32` } }], ports: [tcp(r.port)] }))
        : receiverPorts.length > 0
          ? [{ to: [{ ipBlock: { cidr: "0.0.0.0/0" } }], ports: receiverPorts.map(tcp) }]
          : [];
    const network: { name: string; spec: NetworkPolicySpec }[] = [
        { name: "default-deny", spec: { podSelector: {}, policyTypes: ["Ingress", "Egress"] } },
        { name: "allow-dns", spec: { podSelector: {}, policyTypes: ["Egress"], egress: [dnsEgress(input.network.dns)] } },
        ...[pods.operator, pods.prometheus, pods.kubeStateMetrics, pods.kiali].map((labels) => ({
            name: `allow-${Object.values(labels)[0]}-to-api-server`,
            spec: { podSelector: { matchLabels: { ...labels } }, policyTypes: ["Egress"], egress: [apiServer] } as NetworkPolicySpec,
        })),
        {
            name: "allow-prometheus",
            spec: {
                podSelector: { matchLabels: { ...pods.prometheus } },
                policyTypes: ["Ingress", "Egress"],
                ingress: [{ from: [podsLabelled({ ...pods.kiali })], ports: [tcp(monitoringPorts.prometheus)] }],
                egress: [
                    // Every meshed pod serves Envoy's and the application's merged metrics on the agent's port.
                    { to: [{ namespaceSelector: {} }], ports: [tcp(monitoringPorts.envoyMerged)] },
                    { to: [anyNamespace({ ...cnpgPodLabels.database, "cnpg.io/podRole": "instance" })], ports: [tcp(instanceMetricsPort.number)] },
                    { to: [{ ...namespaceNamed(input.istioNamespace), podSelector: { matchLabels: { istio: "pilot" } } }], ports: [tcp(monitoringPorts.istiod)] },
                    { to: [namespaceNamed(input.certManagerNamespace)], ports: [tcp(monitoringPorts.certManager)] },
                    { to: [podsLabelled({ ...pods.kubeStateMetrics })], ports: [tcp(monitoringPorts.kubeStateMetrics)] },
                    { to: [podsLabelled({ ...pods.alertmanager })], ports: [tcp(monitoringPorts.alertmanager)] },
                ],
            },
        },
        {
            name: "allow-kube-state-metrics",
            spec: { podSelector: { matchLabels: { ...pods.kubeStateMetrics } }, policyTypes: ["Ingress"], ingress: [{ from: [prometheus], ports: [tcp(monitoringPorts.kubeStateMetrics)] }] },
        },
        {
            name: "allow-kiali",
            spec: { podSelector: { matchLabels: { ...pods.kiali } }, policyTypes: ["Egress"], egress: [{ to: [prometheus], ports: [tcp(monitoringPorts.prometheus)] }] },
        },
        {
            name: "allow-alertmanager",
            spec: {
                podSelector: { matchLabels: { ...pods.alertmanager } },
                policyTypes: ["Ingress", "Egress"],
                ingress: [{ from: [prometheus], ports: [tcp(monitoringPorts.alertmanager)] }],
                egress: alertmanagerEgress,
            },
        },
    ];
    const cniPolicies = byName
        ? receivers
              .filter((r) => !isIpv4Address(r.host))
              .map((r, index) => ciliumFqdnPolicy(ns, `allow-alertmanager-to-receiver-${index + 1}`, { ...pods.alertmanager }, r.host, r.port, input.network.dns))
        : [];
    return { network, cniPolicies };
}

export interface RbacObject {
    kind: "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding";
    name: string;
    namespace?: string;
    rules?: { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }[];
    roleRef?: { kind: "Role" | "ClusterRole"; name: string };
    subjects?: { kind: "ServiceAccount"; name: string; namespace: string }[];
}

/** The service accounts kube-prometheus-stack 88.5.3 creates (templates/_helpers.tpl `*.serviceAccountName`). */
export const monitoringServiceAccounts = { operator: `${prometheusFullname}-operator`, prometheus: `${prometheusFullname}-prometheus`, kiali: "kiali" } as const;

const read = ["get", "list", "watch"];

/**
 * The operator's rights: those of the chart's ClusterRole (templates/prometheus-operator/clusterrole.yaml) in the
 * monitoring namespace only, where it manages Prometheus and Alertmanager and reads their Secrets; nothing
 * cluster-wide (with `--namespaces` it reads namespaces one by one, prometheus-operator v0.93.0
 * pkg/listwatch/listwatch.go: `get` on its own, by name). Prometheus' rights: service discovery of pods,
 * Services and endpoints in every namespace, as the chart's ClusterRole grants them (templates/prometheus/clusterrole.yaml)
 * without nodes or ingresses, and no Secret.
 */
export function monitoringRbac(ns: string): RbacObject[] {
    const operatorAccount = { kind: "ServiceAccount" as const, name: monitoringServiceAccounts.operator, namespace: ns };
    const prometheusAccount = { kind: "ServiceAccount" as const, name: monitoringServiceAccounts.prometheus, namespace: ns };
    return [
        {
            kind: "Role",
            name: "korthweb-prometheus-operator",
            namespace: ns,
            rules: [
                {
                    apiGroups: ["monitoring.coreos.com"],
                    resources: [
                        "alertmanagers", "alertmanagers/finalizers", "alertmanagers/status", "alertmanagerconfigs",
                        "prometheuses", "prometheuses/finalizers", "prometheuses/status", "prometheusagents", "prometheusagents/finalizers", "prometheusagents/status",
                        "thanosrulers", "thanosrulers/finalizers", "thanosrulers/status", "scrapeconfigs", "scrapeconfigs/status",
                        "servicemonitors", "servicemonitors/status", "podmonitors", "podmonitors/status", "probes", "probes/status", "prometheusrules", "prometheusrules/status",
                    ],
                    verbs: ["*"],
                },
                { apiGroups: ["apps"], resources: ["statefulsets"], verbs: ["*"] },
                { apiGroups: [""], resources: ["configmaps", "secrets"], verbs: ["*"] },
                { apiGroups: [""], resources: ["pods"], verbs: ["list", "delete"] },
                { apiGroups: [""], resources: ["services", "services/finalizers", "endpoints"], verbs: ["get", "create", "update", "delete"] },
                { apiGroups: [""], resources: ["namespaces"], verbs: read },
                { apiGroups: ["", "events.k8s.io"], resources: ["events"], verbs: ["patch", "create"] },
                { apiGroups: ["networking.k8s.io"], resources: ["ingresses"], verbs: read },
                { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["get", "create", "list", "watch", "update", "delete"] },
            ],
        },
        { kind: "RoleBinding", name: "korthweb-prometheus-operator", namespace: ns, roleRef: { kind: "Role", name: "korthweb-prometheus-operator" }, subjects: [operatorAccount] },
        // Its own namespace by name: the operator asks (SelfSubjectAccessReview, without a namespace) before it polls
        // it, and only warns when refused (listwatch.go `NewNamespaceListWatchFromClient`).
        { kind: "ClusterRole", name: "korthweb-prometheus-operator-namespace", rules: [{ apiGroups: [""], resources: ["namespaces"], verbs: ["get"], resourceNames: [ns] }] },
        {
            kind: "ClusterRoleBinding",
            name: "korthweb-prometheus-operator-namespace",
            roleRef: { kind: "ClusterRole", name: "korthweb-prometheus-operator-namespace" },
            subjects: [operatorAccount],
        },
        {
            kind: "ClusterRole",
            name: "korthweb-prometheus-discovery",
            rules: [
                { apiGroups: [""], resources: ["services", "endpoints", "pods"], verbs: read },
                { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: read },
            ],
        },
        { kind: "ClusterRoleBinding", name: "korthweb-prometheus-discovery", roleRef: { kind: "ClusterRole", name: "korthweb-prometheus-discovery" }, subjects: [prometheusAccount] },
    ];
}

/**
 * What Kiali may read in each namespace it shows: the rules of kiali-server 2.20.0's viewer role
 * (templates/role-viewer.yaml) that a namespace can hold, without `pods/log` (every container's output, PHI
 * included) and `pods/portforward` (every pod's loopback: PostgreSQL, Orthanc, Envoy's admin port, past every wall).
 */
export const kialiViewerRules = [
    { apiGroups: [""], resources: ["configmaps", "endpoints", "namespaces", "pods", "replicationcontrollers", "services"], verbs: read },
    { apiGroups: ["extensions", "apps"], resources: ["daemonsets", "deployments", "replicasets", "statefulsets"], verbs: read },
    { apiGroups: ["batch"], resources: ["cronjobs", "jobs"], verbs: read },
    {
        apiGroups: ["networking.istio.io", "security.istio.io", "extensions.istio.io", "telemetry.istio.io", "gateway.networking.k8s.io", "inference.networking.k8s.io"],
        resources: ["*"],
        verbs: read,
    },
];

/** A Role and RoleBinding per namespace for Kiali's service account. */
export function kialiViewerRoles(kialiNamespace: string, namespaces: string[]): RbacObject[] {
    return namespaces.flatMap((ns) => [
        { kind: "Role" as const, name: "kiali-viewer", namespace: ns, rules: kialiViewerRules },
        {
            kind: "RoleBinding" as const,
            name: "kiali-viewer",
            namespace: ns,
            roleRef: { kind: "Role" as const, name: "kiali-viewer" },
            subjects: [{ kind: "ServiceAccount" as const, name: monitoringServiceAccounts.kiali, namespace: kialiNamespace }],
        },
    ]);
}

function rbacResource(resourceName: string, object: RbacObject, opts: pulumi.CustomResourceOptions): pulumi.CustomResource {
    const metadata = { name: object.name, ...(object.namespace ? { namespace: object.namespace } : {}) };
    const binding = { roleRef: { apiGroup: "rbac.authorization.k8s.io", ...object.roleRef! }, subjects: object.subjects! };
    switch (object.kind) {
        case "Role":
            return new k8s.rbac.v1.Role(resourceName, { metadata, rules: object.rules }, opts);
        case "ClusterRole":
            return new k8s.rbac.v1.ClusterRole(resourceName, { metadata, rules: object.rules }, opts);
        case "RoleBinding":
            return new k8s.rbac.v1.RoleBinding(resourceName, { metadata, ...binding }, opts);
        case "ClusterRoleBinding":
            return new k8s.rbac.v1.ClusterRoleBinding(resourceName, { metadata, ...binding }, opts);
    }
}

/**
 * Kiali (kiali-server 2.20.0) without cluster-wide access: the chart's own viewer role would hold `pods/portforward`
 * and `pods/log` in every namespace it covers (templates/role-viewer.yaml grants port-forward unconditionally), so the
 * chart's roles are skipped (`skipResources`) and the program grants `kialiViewerRules` in `namespaces` and its own.
 * Kiali derives the namespaces it may read from the discovery selectors naming them (kiali v2.20.0 config/config.go
 * `extractAccessibleNamespaceList`). Its Istio API features (proxy status, the Envoy config dump) port-forward to
 * istiod and the proxies: off (`istio_api_enabled: false`); the logs tab is off.
 */
export function kialiValues(istioNamespace: string, prometheusUrl: string, namespaces: string[] = [istioNamespace]): Record<string, unknown> {
    return {
        // Korthweb let anyone in ("anonymous"); a token bound to a Kubernetes identity is required here.
        auth: { strategy: "token" },
        skipResources: ["clusterrole", "clusterrolebinding"],
        kiali_feature_flags: { disabled_features: ["logs-tab"] },
        deployment: {
            ...kialiImageValues(kialiImage),
            cluster_wide_access: false,
            discovery_selectors: { default: [{ matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "In", values: [...new Set(namespaces)] }] }] },
            view_only_mode: true,
            // The chart's default container context lacks a seccomp profile, which "restricted" requires.
            security_context: {
                allowPrivilegeEscalation: false,
                privileged: false,
                readOnlyRootFilesystem: true,
                runAsNonRoot: true,
                capabilities: { drop: ["ALL"] },
                seccompProfile: { type: "RuntimeDefault" },
            },
            resources: { requests: { cpu: "10m", memory: "128Mi" }, limits: { memory: "1Gi" } },
        },
        external_services: {
            // The chart dropped `istio_namespace`; the root namespace is where istiod and the mesh config live.
            istio: { root_namespace: istioNamespace, istio_api_enabled: false },
            prometheus: { url: prometheusUrl },
            grafana: { enabled: false },
            tracing: { enabled: false },
        },
    };
}

/** Scrapes the merged (application + Envoy) metrics every injected pod exposes on its prometheus.io annotations. */
export function envoyPodMonitorSpec(): Record<string, unknown> {
    return {
        selector: { matchExpressions: [{ key: "istio-prometheus-ignore", operator: "DoesNotExist" }] },
        namespaceSelector: { any: true },
        jobLabel: "envoy-stats",
        podMetricsEndpoints: [
            {
                path: "/stats/prometheus",
                interval: "15s",
                relabelings: [
                    { action: "keep", sourceLabels: ["__meta_kubernetes_pod_container_name"], regex: "istio-proxy" },
                    { action: "keep", sourceLabels: ["__meta_kubernetes_pod_annotationpresent_prometheus_io_scrape"] },
                    {
                        action: "replace",
                        sourceLabels: ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
                        regex: "([^:]+)(?::\\d+)?;(\\d+)",
                        replacement: "$1:$2",
                        targetLabel: "__address__",
                    },
                    { action: "labeldrop", regex: "__meta_kubernetes_pod_label_(.+)" },
                    { action: "replace", sourceLabels: ["__meta_kubernetes_namespace"], targetLabel: "namespace" },
                    { action: "replace", sourceLabels: ["__meta_kubernetes_pod_name"], targetLabel: "pod_name" },
                ],
            },
        ],
    };
}

export function istiodServiceMonitorSpec(istioNamespace: string): Record<string, unknown> {
    return {
        jobLabel: "istio",
        targetLabels: ["app"],
        selector: { matchExpressions: [{ key: "istio", operator: "In", values: ["pilot"] }] },
        namespaceSelector: { matchNames: [istioNamespace] },
        endpoints: [{ port: "http-monitoring", interval: "15s" }],
    };
}

/**
 * cert-manager's controller metrics (certificate expiry), from the Service its chart creates with `prometheus.enabled`
 * (v1.21.1 templates/service.yaml: port `http-metrics` 9402, labels name/instance/component). Created here rather than
 * with the chart's `prometheus.servicemonitor.enabled`: that ServiceMonitor needs the Prometheus Operator's CRDs before
 * cert-manager's release installs, which stacks without observability never have. `honorLabels` keeps the metrics'
 * own `namespace` (the Certificate's) instead of renaming it `exported_namespace`.
 */
export function certManagerServiceMonitorSpec(certManagerNamespace: string): Record<string, unknown> {
    return {
        jobLabel: "app.kubernetes.io/name",
        selector: {
            matchLabels: { "app.kubernetes.io/name": "cert-manager", "app.kubernetes.io/instance": "cert-manager", "app.kubernetes.io/component": "controller" },
        },
        namespaceSelector: { matchNames: [certManagerNamespace] },
        endpoints: [{ port: "http-metrics", path: "/metrics", interval: "60s", honorLabels: true }],
    };
}
