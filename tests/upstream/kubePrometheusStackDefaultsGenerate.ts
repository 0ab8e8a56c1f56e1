/**
 * Writes kubePrometheusStackDefaults.json: the defaults of kube-prometheus-stack 88.5.3 that decide where alerts go
 * (alertmanager.enabled, alertmanager.config, alertmanager.alertmanagerSpec.portName, prometheus.agentMode,
 * prometheus.prometheusSpec.alertingEndpoints and disableAlerting), which monitors Prometheus reads and what RBAC
 * the chart renders (global.rbac, prometheusOperator.namespaces, admissionWebhooks, the *Selector* values), and the
 * pods' security contexts (the chart's, its kube-state-metrics 8.4.0 subchart's), taken from the charts' values.yaml
 * in ../shared/reference/charts; and kialiServerDefaults.json, the kiali-server chart's defaults that decide its
 * RBAC and its container's security context. kube-state-metrics' values.yaml is not in the reference directory:
 * pass it (prometheus-community/helm-charts, tag kube-state-metrics-8.4.0, charts/kube-state-metrics/values.yaml).
 * Run after changing a chart's pin:
 *
 *     node -r ts-node/register/transpile-only tests/upstream/kubePrometheusStackDefaultsGenerate.ts ../shared/reference/charts <kube-state-metrics values.yaml>
 */
import { readFileSync, writeFileSync } from "fs";
import * as path from "path";
import { parse } from "yaml";
import { charts } from "../../components/versions";

const directory = process.argv[2] ?? path.join(__dirname, "..", "..", "..", "shared", "reference", "charts");
const source = `kube-prometheus-stack-values-${charts.kubePrometheusStack.version}.yaml`;
const values = parse(readFileSync(path.join(directory, source), "utf8"));
const kubeStateMetrics = parse(readFileSync(process.argv[3], "utf8"));
const pick = (object: any, keys: string[]) => Object.fromEntries(keys.map((key) => [key, object[key]]));
const selectorKinds = ["serviceMonitor", "podMonitor", "rule", "probe", "scrapeConfig"];
const defaults = {
    source,
    kubeStateMetricsSource: "prometheus-community/helm-charts kube-state-metrics-8.4.0 charts/kube-state-metrics/values.yaml",
    values: {
        global: { rbac: values.global.rbac },
        alertmanager: {
            enabled: values.alertmanager.enabled,
            config: values.alertmanager.config,
            alertmanagerSpec: { portName: values.alertmanager.alertmanagerSpec.portName, securityContext: values.alertmanager.alertmanagerSpec.securityContext },
        },
        prometheusOperator: {
            enabled: values.prometheusOperator.enabled,
            namespaces: values.prometheusOperator.namespaces,
            kubeletService: { enabled: values.prometheusOperator.kubeletService.enabled },
            admissionWebhooks: {
                enabled: values.prometheusOperator.admissionWebhooks.enabled,
                patch: { enabled: values.prometheusOperator.admissionWebhooks.patch.enabled },
                certManager: { enabled: values.prometheusOperator.admissionWebhooks.certManager.enabled },
            },
            securityContext: values.prometheusOperator.securityContext,
            containerSecurityContext: values.prometheusOperator.containerSecurityContext,
        },
        prometheus: {
            enabled: values.prometheus.enabled,
            agentMode: values.prometheus.agentMode,
            prometheusSpec: {
                alertingEndpoints: values.prometheus.prometheusSpec.alertingEndpoints,
                disableAlerting: values.prometheus.prometheusSpec.disableAlerting,
                securityContext: values.prometheus.prometheusSpec.securityContext,
                arbitraryFSAccessThroughSMs: values.prometheus.prometheusSpec.arbitraryFSAccessThroughSMs,
                ignoreNamespaceSelectors: values.prometheus.prometheusSpec.ignoreNamespaceSelectors,
                ...pick(
                    values.prometheus.prometheusSpec,
                    selectorKinds.flatMap((kind) => [`${kind}Selector`, `${kind}SelectorNilUsesHelmValues`, `${kind}NamespaceSelector`]),
                ),
            },
        },
        "kube-state-metrics": {
            releaseLabel: values["kube-state-metrics"].releaseLabel,
            securityContext: kubeStateMetrics.securityContext,
            containerSecurityContext: kubeStateMetrics.containerSecurityContext,
        },
    },
};
writeFileSync(path.join(__dirname, "kubePrometheusStackDefaults.json"), JSON.stringify(defaults, null, 2) + "\n");

const kialiSource = `kiali-server-values-${charts.kiali.version.startsWith("v") ? charts.kiali.version : `v${charts.kiali.version}`}.yaml`;
const kiali = parse(readFileSync(path.join(directory, kialiSource), "utf8"));
const kialiDefaults = {
    source: kialiSource,
    values: {
        auth: { strategy: kiali.auth.strategy },
        skipResources: kiali.skipResources,
        kiali_feature_flags: { disabled_features: kiali.kiali_feature_flags.disabled_features },
        deployment: pick(kiali.deployment, ["cluster_wide_access", "discovery_selectors", "view_only_mode", "security_context"]),
    },
};
writeFileSync(path.join(__dirname, "kialiServerDefaults.json"), JSON.stringify(kialiDefaults, null, 2) + "\n");
