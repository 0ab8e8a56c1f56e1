/**
 * What Prometheus scrapes and where alerts go, modelled from the upstream sources at the pinned versions:
 *
 * Where alerts go
 * - helm/helm v3 pkg/chartutil/coalesce.go (`coalesceTablesFullKey`): user values are merged into the chart's
 *   defaults map by map; a list or a scalar replaces the default whole; a null deletes the default key.
 * - prometheus-community/helm-charts, tag kube-prometheus-stack-88.5.3, charts/kube-prometheus-stack/templates/
 *   prometheus/prometheus.yaml: the Prometheus object gets `alerting.alertmanagers` only when not in agent mode,
 *   `prometheusSpec.disableAlerting` is false, and `prometheusSpec.alertingEndpoints` is set or `alertmanager.enabled`
 *   (then the chart's own Alertmanager Service `<fullname>-alertmanager`, port `alertmanagerSpec.portName`).
 *   templates/alertmanager/secret.yaml renders `alertmanager.config` whole (toYaml) as alertmanager.yaml.
 * - prometheus/alertmanager dispatch/route.go (`Route.Match`): an alert enters the root route, descends into the
 *   first child whose matchers all match (each further child too while the matched one has `continue: true`), and
 *   ends at the deepest matching routes; a route none of whose children match takes the alert itself. A child without
 *   `receiver` inherits its parent's. pkg/labels/matcher.go: `=~` and `!~` are anchored regular expressions.
 * - prometheus/alertmanager v0.33.1 inhibit/inhibit.go (`Inhibitor.Mutes`, `InhibitRule.hasEqual`): an alert that
 *   matches a rule's `target_matchers` is muted while an alert that matches its `source_matchers` fires with the same
 *   values of every `equal` label (a missing label counts as empty); a source that also matches the target matchers
 *   does not mute an alert that also matches the source matchers.
 *
 * What Prometheus scrapes
 * - prometheus-operator (the 88.5.3 chart's operator) pkg/prometheus/promcfg.go, PodMonitor: Kubernetes service
 *   discovery of role `pod` in the namespaces of `namespaceSelector` (the monitor's own when empty), one target per
 *   declared container port; relabelling keeps the pods matching `selector` and, when the endpoint names a `port`, the
 *   container port of that name; the endpoint's `relabelings` come after the operator's.
 * - prometheus/prometheus model/relabel/relabel.go: `keep`, `replace` (default regex `(.*)`, separator `;`, anchored),
 *   `labeldrop`.
 * - kubernetes/kubernetes pkg/apis/networking (NetworkPolicy semantics): a pod selected by no Ingress policy admits
 *   everything; otherwise a connection is admitted when one rule of one selecting policy admits both its source (pod
 *   and namespace selectors ANDed within a peer) and its port.
 * - istio/istio 1.30.3 (as components/data/engines/bitnamiHaValues.ts reads it): with metrics merging, the injector points a meshed
 *   pod's `prometheus.io/*` annotations at the agent's 15020 and keeps the application's in the sidecar, which
 *   fetches them over localhost; under mesh-wide STRICT mutual TLS a client without a sidecar (Prometheus) reaches a
 *   meshed pod only on the ports the sidecar does not capture: 15020 and 15090.
 * - istio/istio 1.30.3 pkg/kube/inject/webhook.go (`applyPrometheusMerge`, `getPrometheusScrapeConfiguration`): the
 *   application's part of the merge is the pod's own prometheus.io/{scrape,port,path} annotations, handed to the
 *   sidecar as ISTIO_PROMETHEUS_ANNOTATIONS only when the pod declares at least one of them (an empty configuration is
 *   dropped); pilot/cmd/pilot-agent/status/server.go (`NewServer`, `handleStats`): unless scrape is "false", the agent
 *   fetches `http://localhost:<port><path>` (port 80, path /metrics when unset) and appends it to Envoy's metrics on
 *   15020, so an application listening on the pod's loopback alone is scraped and reachable from nowhere else.
 * - kube-state-metrics and cert-manager's controller are scraped through ServiceMonitors; their selection is taken as
 *   given, the walls between Prometheus and them (both ends) are modelled (`connectionAdmitted`).
 */
import { ruleAllows } from "./kubernetes";

export type Labels = Record<string, string>;

// ---- Helm ----

const isMap = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

export function helmCoalesce(defaults: unknown, values: unknown): unknown {
    if (!isMap(defaults) || !isMap(values)) return values === undefined ? defaults : values;
    const merged: Record<string, unknown> = { ...defaults };
    for (const [key, value] of Object.entries(values)) {
        if (value === null) delete merged[key];
        else merged[key] = key in defaults ? helmCoalesce(defaults[key], value) : value;
    }
    return merged;
}

// ---- kube-prometheus-stack ----

export interface AlertmanagerEndpoint {
    namespace?: string;
    name: string;
    port: unknown;
}

/** The Alertmanagers the chart's Prometheus object is told to send to (none: rules evaluate and notify nobody). */
export function prometheusAlertmanagers(merged: any, fullname: string, namespace: string): AlertmanagerEndpoint[] {
    const spec = merged.prometheus?.prometheusSpec ?? {};
    if (merged.prometheus?.agentMode || spec.disableAlerting) return [];
    if (Array.isArray(spec.alertingEndpoints) && spec.alertingEndpoints.length > 0) return spec.alertingEndpoints;
    if (merged.alertmanager?.enabled) return [{ namespace, name: `${fullname}-alertmanager`, port: merged.alertmanager.alertmanagerSpec?.portName }];
    return [];
}

// ---- Alertmanager routing ----

export interface Route {
    receiver?: string;
    matchers?: string[];
    continue?: boolean;
    routes?: Route[];
}

export interface Matcher {
    name: string;
    op: "=" | "!=" | "=~" | "!~";
    value: string;
}

export function parseMatcher(text: string): Matcher {
    const match = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|(\S*))\s*$/.exec(text);
    if (!match) throw new Error(`cannot read matcher ${JSON.stringify(text)}`);
    const value = match[3] !== undefined ? match[3].replace(/\\(.)/g, "$1") : match[4];
    return { name: match[1], op: match[2] as Matcher["op"], value };
}

function matches(matcher: Matcher, labels: Labels): boolean {
    const value = labels[matcher.name] ?? "";
    switch (matcher.op) {
        case "=":
            return value === matcher.value;
        case "!=":
            return value !== matcher.value;
        case "=~":
            return new RegExp(`^(?:${matcher.value})$`).test(value);
        case "!~":
            return !new RegExp(`^(?:${matcher.value})$`).test(value);
    }
}

/** The receivers an alert with these labels reaches. */
export function routeReceivers(route: Route, labels: Labels, inherited?: string): string[] {
    const receiver = route.receiver ?? inherited;
    const found: string[] = [];
    for (const child of route.routes ?? []) {
        if (!(child.matchers ?? []).map(parseMatcher).every((m) => matches(m, labels))) continue;
        found.push(...routeReceivers(child, labels, receiver));
        if (!child.continue) break;
    }
    if (found.length > 0) return found;
    if (receiver === undefined) throw new Error("a route without receiver");
    return [receiver];
}

/** Whether Alertmanager mutes `target` while the `firing` alerts fire, by the configuration's inhibit rules. */
export function inhibited(config: any, firing: Labels[], target: Labels): boolean {
    return (config.inhibit_rules ?? []).some((rule: any) => {
        const all = (texts: string[] | undefined, labels: Labels) => (texts ?? []).map(parseMatcher).every((m) => matches(m, labels));
        if (!all(rule.target_matchers, target)) return false;
        const targetIsSource = all(rule.source_matchers, target);
        return firing.some(
            (source) =>
                all(rule.source_matchers, source) &&
                !(targetIsSource && all(rule.target_matchers, source)) &&
                (rule.equal ?? []).every((name: string) => (source[name] ?? "") === (target[name] ?? "")),
        );
    });
}

/** Whether a receiver of Alertmanager's configuration would notify anyone (it has at least one *_configs entry). */
export function receiverNotifies(config: any, name: string): boolean {
    const receiver = (config.receivers ?? []).find((r: any) => r.name === name);
    return receiver !== undefined && Object.entries(receiver).some(([key, value]) => key.endsWith("_configs") && Array.isArray(value) && value.length > 0);
}

// ---- Bitnami postgresql-ha ----

/** bitnami/charts bitnami/postgresql-ha templates/_helpers.tpl `postgresql-ha.postgresql`: the StatefulSet's name. */
export function bitnamiPostgresStatefulSet(releaseName: string, values: { fullnameOverride?: string; nameOverride?: string }, chartName = "postgresql-ha"): string {
    if (values.fullnameOverride) return `${values.fullnameOverride}-postgresql`.slice(0, 63).replace(/-+$/, "");
    const name = values.nameOverride || chartName;
    return (releaseName.includes(name) ? `${releaseName}-postgresql` : `${releaseName}-${name}-postgresql`).slice(0, 63).replace(/-+$/, "");
}

// ---- scraping ----

export interface LabelSelector {
    matchLabels?: Labels;
    matchExpressions?: { key: string; operator: "In" | "NotIn" | "Exists" | "DoesNotExist"; values?: string[] }[];
}

export function selects(selector: LabelSelector | undefined, labels: Labels): boolean {
    if (selector === undefined) return false;
    for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (labels[key] !== value) return false;
    for (const expression of selector.matchExpressions ?? []) {
        const has = expression.key in labels;
        const value = labels[expression.key];
        const ok =
            expression.operator === "Exists" ? has
            : expression.operator === "DoesNotExist" ? !has
            : expression.operator === "In" ? has && (expression.values ?? []).includes(value)
            : !has || !(expression.values ?? []).includes(value);
        if (!ok) return false;
    }
    return true;
}

export interface PodModel {
    namespace: string;
    namespaceLabels: Labels;
    name: string;
    labels: Labels;
    /** As the API server stores them (after Istio's injector, for a meshed pod). */
    annotations: Labels;
    containers: { name: string; ports: { name?: string; containerPort: number }[] }[];
    meshed: boolean;
    /** Where the sidecar's agent fetches the application's metrics for the merged endpoint (localhost), if anywhere. */
    applicationMetrics?: { port: number; path: string };
}

/** Istio's metrics-merging annotations on an injected pod (see the file comment): the agent on 15020 serves all. */
export const istioMergedMetrics = { port: 15020, path: "/stats/prometheus", envoyPort: { name: "http-envoy-prom", containerPort: 15090 } } as const;

/** A pod as it runs: with a sidecar and rewritten scrape annotations when its namespace injects and it does not opt out. */
export function asRunning(pod: Omit<PodModel, "meshed" | "applicationMetrics">, namespaceInjects: boolean): PodModel {
    const meshed = namespaceInjects && pod.labels["sidecar.istio.io/inject"] !== "false";
    if (!meshed) return { ...pod, meshed };
    const own = (name: string): string | undefined => pod.annotations[`prometheus.io/${name}`];
    const declared = ["scrape", "port", "path"].some((name) => own(name) !== undefined);
    const applicationMetrics = declared && own("scrape") !== "false" ? { port: Number(own("port") ?? "80"), path: own("path") ?? "/metrics" } : undefined;
    return {
        ...pod,
        meshed,
        ...(applicationMetrics ? { applicationMetrics } : {}),
        annotations: {
            ...pod.annotations,
            "prometheus.io/scrape": "true",
            "prometheus.io/port": String(istioMergedMetrics.port),
            "prometheus.io/path": istioMergedMetrics.path,
        },
        containers: [...pod.containers, { name: "istio-proxy", ports: [istioMergedMetrics.envoyPort] }],
    };
}

export interface Relabeling {
    action?: string;
    sourceLabels?: string[];
    separator?: string;
    regex?: string;
    replacement?: string;
    targetLabel?: string;
}

/** Applies relabelings; undefined when a `keep` drops the target. */
export function relabel(labels: Labels, rules: Relabeling[]): Labels | undefined {
    let current = { ...labels };
    for (const rule of rules) {
        const action = rule.action ?? "replace";
        const regex = new RegExp(`^(?:${rule.regex ?? "(.*)"})$`);
        const source = (rule.sourceLabels ?? []).map((name) => current[name] ?? "").join(rule.separator ?? ";");
        if (action === "keep") {
            if (!regex.test(source)) return undefined;
        } else if (action === "replace") {
            const match = regex.exec(source);
            if (match && rule.targetLabel) {
                const value = (rule.replacement ?? "$1").replace(/\$\{?(\d+)\}?/g, (_, n) => match[Number(n)] ?? "");
                if (value === "") delete current[rule.targetLabel];
                else current[rule.targetLabel] = value;
            }
        } else if (action === "labeldrop") {
            current = Object.fromEntries(Object.entries(current).filter(([name]) => !regex.test(name)));
        } else {
            throw new Error(`relabel action ${action} is not modelled`);
        }
    }
    return current;
}

const metaName = (text: string) => text.replace(/[^a-zA-Z0-9_]/g, "_");

function podMeta(pod: PodModel, container: string, port: { name?: string; containerPort: number }): Labels {
    const meta: Labels = {
        __address__: `${pod.name}:${port.containerPort}`,
        __meta_kubernetes_namespace: pod.namespace,
        __meta_kubernetes_pod_name: pod.name,
        __meta_kubernetes_pod_container_name: container,
        __meta_kubernetes_pod_container_port_name: port.name ?? "",
        __meta_kubernetes_pod_container_port_number: String(port.containerPort),
    };
    for (const [key, value] of Object.entries(pod.labels)) {
        meta[`__meta_kubernetes_pod_label_${metaName(key)}`] = value;
        meta[`__meta_kubernetes_pod_labelpresent_${metaName(key)}`] = "true";
    }
    for (const [key, value] of Object.entries(pod.annotations)) {
        meta[`__meta_kubernetes_pod_annotation_${metaName(key)}`] = value;
        meta[`__meta_kubernetes_pod_annotationpresent_${metaName(key)}`] = "true";
    }
    return meta;
}

export interface PodMonitorModel {
    namespace: string;
    name: string;
    spec: any;
}

export interface Target {
    monitor: string;
    port: number;
    labels: Labels;
}

/** The targets a PodMonitor makes of a pod: after the operator's selection and the endpoint's relabelings. */
export function podMonitorTargets(monitor: PodMonitorModel, pod: PodModel): Target[] {
    const namespaces = monitor.spec.namespaceSelector ?? {};
    const inNamespace = namespaces.any === true || (namespaces.matchNames ?? [monitor.namespace]).includes(pod.namespace);
    if (!inNamespace || !selects(monitor.spec.selector ?? {}, pod.labels)) return [];
    const targets: Target[] = [];
    for (const endpoint of monitor.spec.podMetricsEndpoints ?? []) {
        for (const container of pod.containers) {
            for (const port of container.ports) {
                if (endpoint.port !== undefined && port.name !== endpoint.port) continue;
                const labels = relabel(podMeta(pod, container.name, port), endpoint.relabelings ?? []);
                if (!labels) continue;
                const address = /:(\d+)$/.exec(labels.__address__);
                targets.push({ monitor: `${monitor.namespace}/${monitor.name}`, port: Number(address?.[1]), labels });
            }
        }
    }
    return targets;
}

export interface NetworkPolicyModel {
    namespace: string;
    spec: any;
}

export interface Client {
    namespace: string;
    namespaceLabels: Labels;
    labels: Labels;
}

function peerAdmits(peer: any, policyNamespace: string, client: Client): boolean {
    if (peer.ipBlock) return false;
    const namespaceOk = peer.namespaceSelector ? selects(peer.namespaceSelector, client.namespaceLabels) : client.namespace === policyNamespace;
    const podOk = peer.podSelector ? selects(peer.podSelector, client.labels) : true;
    return namespaceOk && podOk;
}

/**
 * One direction of the walls: the policies of `own`'s namespace that select it for `direction` (a policy without
 * policyTypes is an Ingress one); none, everything passes; else one rule of one of them must admit the peer and port.
 */
function wallsAdmit(policies: NetworkPolicyModel[], direction: "Ingress" | "Egress", own: { namespace: string; labels: Labels }, peerOk: (peer: any, policyNamespace: string) => boolean, port: number): boolean {
    const selecting = policies.filter(
        (p) => p.namespace === own.namespace && selects(p.spec.podSelector ?? {}, own.labels) && (p.spec.policyTypes ?? ["Ingress"]).includes(direction),
    );
    if (selecting.length === 0) return true;
    const [rulesKey, peersKey] = direction === "Ingress" ? ["ingress", "from"] : ["egress", "to"];
    return selecting.some((policy) =>
        (policy.spec[rulesKey] ?? []).some((rule: any) => {
            const peers = rule[peersKey];
            const peerAdmitted = peers === undefined || peers.length === 0 || peers.some((peer: any) => peerOk(peer, policy.namespace));
            const portOk = rule.ports === undefined || rule.ports.length === 0 || rule.ports.some((p: any) => p.port === port && (p.protocol ?? "TCP") === "TCP");
            return peerAdmitted && portOk;
        }),
    );
}

export function networkPoliciesAdmit(policies: NetworkPolicyModel[], pod: PodModel, client: Client, port: number): boolean {
    return wallsAdmit(policies, "Ingress", pod, (peer, ns) => peerAdmits(peer, ns, client), port);
}

/** Under STRICT mutual TLS, a client without a sidecar reaches a meshed pod only on the agent's and Envoy's metrics ports. */
export function meshAdmitsPlaintext(pod: PodModel, port: number): boolean {
    return !pod.meshed || port === istioMergedMetrics.port || port === istioMergedMetrics.envoyPort.containerPort;
}

/** Whether Prometheus scrapes the pod: a monitor makes a target of it AND the walls (Prometheus' way out, the pod's way in) and the mesh let it through. */
export function scrapedBy(monitors: PodMonitorModel[], policies: NetworkPolicyModel[], prometheus: Client, pod: PodModel): Target[] {
    return monitors
        .flatMap((monitor) => podMonitorTargets(monitor, pod))
        .filter(
            (target) =>
                networkPoliciesAdmit(policies, pod, prometheus, target.port) &&
                networkPoliciesAdmitEgress(policies, prometheus, pod, target.port) &&
                meshAdmitsPlaintext(pod, target.port),
        );
}

/** The metric names a PromQL expression reads (selectors and `__name__=~` alternatives). */
export function metricsRead(expr: string): string[] {
    const names = new Set<string>();
    for (const match of expr.matchAll(/__name__=~"([^"]+)"/g)) match[1].split("|").forEach((name) => names.add(name));
    const functions = new Set(["label_replace", "max", "min", "count", "sum", "time", "delta", "rate", "increase", "by", "on", "and", "or", "unless"]);
    for (const match of expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{/g)) if (!functions.has(match[1])) names.add(match[1]);
    return [...names];
}

// ---- walls both ways ----

/** A pod at either end of a connection, by namespace and labels. */
export type Endpoint = Client;

function egressPeerAdmits(peer: any, policyNamespace: string, server: Endpoint): boolean {
    // An ipBlock matches pod addresses too with the common CNIs (Calico, Cilium); only "any address" is taken to reach a pod here.
    if (peer.ipBlock) return peer.ipBlock.cidr === "0.0.0.0/0";
    return peerAdmits(peer, policyNamespace, server);
}

/** Whether the client's namespace's NetworkPolicies let it out to the server on the port (no Egress policy: everything). */
export function networkPoliciesAdmitEgress(policies: NetworkPolicyModel[], client: Endpoint, server: Endpoint, port: number): boolean {
    return wallsAdmit(policies, "Egress", client, (peer, ns) => egressPeerAdmits(peer, ns, server), port);
}

/** Whether a TCP connection from client to server:port passes both ends' walls. */
export function connectionAdmitted(policies: NetworkPolicyModel[], client: Endpoint, server: Endpoint, port: number): boolean {
    const serverPod: PodModel = { ...server, name: "server", annotations: {}, containers: [], meshed: false };
    return networkPoliciesAdmitEgress(policies, client, server, port) && networkPoliciesAdmit(policies, serverPod, client, port);
}

// ---- which monitors Prometheus reads (kube-prometheus-stack 88.5.3, prometheus-operator v0.93.0) ----

/**
 * - templates/prometheus/prometheus.yaml: `<kind>Selector` is the value when non-empty, else `{matchLabels: {release:
 *   <release>}}` when `<kind>SelectorNilUsesHelmValues`, else `{}` (everything); `<kind>NamespaceSelector` the value
 *   when non-empty, else `{}` (every namespace). `arbitraryFSAccessThroughSMs` rendered when truthy.
 * - templates/prometheus-operator/deployment.yaml: `--namespaces` from `prometheusOperator.namespaces`
 *   (`releaseNamespace` and `additional`), none (every namespace) when empty.
 * - prometheus-operator pkg/prometheus/resource_selector.go (`selectObjects`): the monitors of the namespaces the
 *   namespace selector picks among those the operator watches (pkg/operator/operator.go `SelectNamespacesFromCache`,
 *   over the operator's namespace informer), then the label selector; `testForArbitraryFSAccess`: with `deny`, a
 *   ServiceMonitor endpoint with `bearerTokenFile` or a TLS `caFile`/`certFile`/`keyFile` is refused.
 */
export interface MonitorSelection {
    operatorNamespaces: string[] | "all";
    selector: LabelSelector;
    namespaceSelector: LabelSelector;
    arbitraryFSDeny: boolean;
}

const nonEmpty = (value: unknown) => isMap(value) && Object.keys(value).length > 0;

export function monitorSelection(merged: any, releaseName: string, releaseNamespace: string, kind: "serviceMonitor" | "podMonitor" | "rule" | "probe" | "scrapeConfig"): MonitorSelection {
    const spec = merged.prometheus.prometheusSpec;
    const selector = nonEmpty(spec[`${kind}Selector`]) ? spec[`${kind}Selector`] : spec[`${kind}SelectorNilUsesHelmValues`] ? { matchLabels: { release: releaseName } } : {};
    const namespaceSelector = nonEmpty(spec[`${kind}NamespaceSelector`]) ? spec[`${kind}NamespaceSelector`] : {};
    const namespaces = merged.prometheusOperator?.namespaces ?? {};
    const listed = [...(namespaces.releaseNamespace ? [releaseNamespace] : []), ...(namespaces.additional ?? [])];
    const fs = spec.arbitraryFSAccessThroughSMs;
    return { operatorNamespaces: nonEmpty(namespaces) ? listed : "all", selector, namespaceSelector, arbitraryFSDeny: isMap(fs) && fs.deny === true };
}

export interface MonitorObject {
    kind: "ServiceMonitor" | "PodMonitor" | "PrometheusRule";
    namespace: string;
    namespaceLabels: Labels;
    labels: Labels;
    spec: any;
}

/** Whether Prometheus reads the monitor, and why not. */
export function monitorRead(selection: MonitorSelection, monitor: MonitorObject): { read: true } | { read: false; why: string } {
    if (selection.operatorNamespaces !== "all" && !selection.operatorNamespaces.includes(monitor.namespace)) return { read: false, why: "namespace not watched by the operator" };
    if (!selects(selection.namespaceSelector, monitor.namespaceLabels)) return { read: false, why: "namespace not selected" };
    if (!selects(selection.selector, monitor.labels)) return { read: false, why: "labels not selected" };
    if (selection.arbitraryFSDeny && monitor.kind === "ServiceMonitor") {
        for (const endpoint of monitor.spec.endpoints ?? []) {
            const tls = endpoint.tlsConfig ?? {};
            if (endpoint.bearerTokenFile || tls.caFile || tls.certFile || tls.keyFile) return { read: false, why: "reads Prometheus' file system" };
        }
    }
    return { read: true };
}

// ---- RBAC the charts render, and what a service account may do ----

export interface RbacGrant {
    /** A ClusterRole bound by a ClusterRoleBinding: every namespace (undefined); else the Role's namespace. */
    namespace?: string;
    serviceAccount: { namespace: string; name: string };
    rules: { apiGroups?: string[]; resources?: string[]; verbs?: string[]; resourceNames?: string[] }[];
}

/**
 * kube-prometheus-stack 88.5.3 templates/prometheus-operator/clusterrole.yaml (+ binding, to `<fullname>-operator`):
 * rendered when `prometheusOperator.enabled` and `global.rbac.create`, with every verb on Secrets and ConfigMaps;
 * templates/prometheus/clusterrole.yaml (to `<fullname>-prometheus`) when `prometheus.enabled` and
 * `global.rbac.create`: get/list/watch of nodes, services, endpoints, pods; admission-webhooks/job-patch/clusterrole.yaml
 * when the webhooks, their patch job and `global.rbac.create` are on and cert-manager does not issue: get/update of
 * webhook configurations. Only the rules that matter here are modelled (Secrets, pods, webhook configurations).
 */
export function kubePrometheusStackGrants(merged: any, fullname: string, namespace: string): RbacGrant[] {
    if (!merged.global?.rbac?.create) return [];
    const grants: RbacGrant[] = [];
    if (merged.prometheusOperator?.enabled) {
        grants.push({ serviceAccount: { namespace, name: `${fullname}-operator` }, rules: [{ apiGroups: [""], resources: ["configmaps", "secrets"], verbs: ["*"] }, { apiGroups: [""], resources: ["pods"], verbs: ["list", "delete"] }] });
    }
    if (merged.prometheus?.enabled) {
        grants.push({ serviceAccount: { namespace, name: `${fullname}-prometheus` }, rules: [{ apiGroups: [""], resources: ["nodes", "nodes/metrics", "services", "endpoints", "pods"], verbs: ["get", "list", "watch"] }] });
    }
    const webhooks = merged.prometheusOperator?.admissionWebhooks;
    if (merged.prometheusOperator?.enabled && webhooks?.enabled && webhooks.patch?.enabled && !webhooks.certManager?.enabled) {
        grants.push({
            serviceAccount: { namespace, name: `${fullname}-admission` },
            rules: [{ apiGroups: ["admissionregistration.k8s.io"], resources: ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"], verbs: ["get", "update"] }],
        });
    }
    return grants;
}

/**
 * kiali-server 2.20.0 templates/role-viewer.yaml and role.yaml (+ rolebinding.yaml), unless `skipResources` lists
 * "clusterrole": with `cluster_wide_access` a ClusterRole, else a Role in each accessible namespace (the release's
 * and those the discovery selectors find at install, `accessible-namespaces`); the viewer role (view-only mode or
 * an authenticating strategy) holds `pods/portforward` always and `pods/log` unless `logs-tab` is a disabled feature.
 */
export function kialiChartGrants(merged: any, releaseNamespace: string, accessibleNamespaces: string[]): RbacGrant[] {
    if ((merged.skipResources ?? []).includes("clusterrole")) return [];
    const logs = (merged.kiali_feature_flags?.disabled_features ?? []).includes("logs-tab") ? [] : ["pods/log"];
    const rules = [
        { apiGroups: [""], resources: ["configmaps", "endpoints", ...logs], verbs: ["get", "list", "watch"] },
        { apiGroups: [""], resources: ["namespaces", "pods", "replicationcontrollers", "services"], verbs: ["get", "list", "watch"] },
        { apiGroups: [""], resources: ["pods/portforward"], verbs: ["create", "post"] },
    ];
    const serviceAccount = { namespace: releaseNamespace, name: "kiali" };
    if (merged.deployment?.cluster_wide_access) return [{ serviceAccount, rules }];
    return [...new Set([releaseNamespace, ...accessibleNamespaces])].map((namespace) => ({ namespace, serviceAccount, rules }));
}

/** Grants of the program's own Roles/ClusterRoles and their bindings (rendered objects). */
export function programGrants(objects: { kind: string; name: string; namespace?: string; rules?: any[]; roleRef?: any; subjects?: any[] }[]): RbacGrant[] {
    const roles = new Map(objects.filter((o) => o.kind === "Role" || o.kind === "ClusterRole").map((o) => [`${o.kind}/${o.namespace ?? ""}/${o.name}`, o]));
    return objects
        .filter((o) => o.kind === "RoleBinding" || o.kind === "ClusterRoleBinding")
        .flatMap((binding) => {
            const role = roles.get(`${binding.roleRef.kind}/${binding.roleRef.kind === "Role" ? binding.namespace : ""}/${binding.roleRef.name}`);
            if (!role) throw new Error(`${binding.kind} ${binding.name} refers to no rendered ${binding.roleRef.kind} ${binding.roleRef.name}`);
            return (binding.subjects ?? [])
                .filter((s: any) => s.kind === "ServiceAccount")
                .map((s: any) => ({ namespace: binding.kind === "RoleBinding" ? binding.namespace : undefined, serviceAccount: { namespace: s.namespace, name: s.name }, rules: role.rules ?? [] }));
        });
}

/**
 * Whether a service account may do `verb` on any object of `group/resource` in `namespace` (kubernetes
 * pkg/apis/rbac/v1/evaluation_helpers.go); a rule limited to resource names allows no such request.
 */
export function serviceAccountMay(grants: RbacGrant[], account: { namespace: string; name: string }, verb: string, group: string, resource: string, namespace: string): boolean {
    return grants.some(
        (grant) =>
            grant.serviceAccount.namespace === account.namespace &&
            grant.serviceAccount.name === account.name &&
            (grant.namespace === undefined || grant.namespace === namespace) &&
            grant.rules.some((rule) => ruleAllows(rule, { verb, apiGroup: group, resource })),
    );
}
