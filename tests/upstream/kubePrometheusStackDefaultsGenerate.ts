/**
 * Writes kubePrometheusStackDefaults.json: the defaults of kube-prometheus-stack 88.5.3 that decide where alerts go
 * (alertmanager.enabled, alertmanager.config, alertmanager.alertmanagerSpec.portName, prometheus.agentMode,
 * prometheus.prometheusSpec.alertingEndpoints and disableAlerting), taken from the chart's values.yaml in
 * ../shared/reference/charts. Run after changing the chart's pin:
 *
 *     node -r ts-node/register/transpile-only tests/upstream/kubePrometheusStackDefaultsGenerate.ts ../shared/reference/charts
 */
import { readFileSync, writeFileSync } from "fs";
import * as path from "path";
import { parse } from "yaml";
import { charts } from "../../components/versions";

const directory = process.argv[2] ?? path.join(__dirname, "..", "..", "..", "shared", "reference", "charts");
const source = `kube-prometheus-stack-values-${charts.kubePrometheusStack.version}.yaml`;
const values = parse(readFileSync(path.join(directory, source), "utf8"));
const defaults = {
    source,
    values: {
        alertmanager: {
            enabled: values.alertmanager.enabled,
            config: values.alertmanager.config,
            alertmanagerSpec: { portName: values.alertmanager.alertmanagerSpec.portName },
        },
        prometheus: {
            agentMode: values.prometheus.agentMode,
            prometheusSpec: {
                alertingEndpoints: values.prometheus.prometheusSpec.alertingEndpoints,
                disableAlerting: values.prometheus.prometheusSpec.disableAlerting,
            },
        },
    },
};
writeFileSync(path.join(__dirname, "kubePrometheusStackDefaults.json"), JSON.stringify(defaults, null, 2) + "\n");
