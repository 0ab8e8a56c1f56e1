import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { pinnedRelease } from "../k8s/helm";
import { monitoringNamespaceLabels, namespace } from "../k8s/namespace";
import { AlertingConfig } from "../config/schema";
import { cnpgPodMonitorSpec } from "../database/cloudnativePg";
import { charts, kialiImage, kialiImageValues } from "../versions";
import { alertRulesSpec, cnpgMetricsJob, kubeStateMetricsValues } from "./alerts";
import { alertmanagerConfig, alertmanagerCredentials, alertmanagerCredentialsSecret } from "./alertmanager";

export interface ObservabilityArgs {
    namespace?: string;
    /** Namespace of the Istio control plane, which Kiali inspects. */
    istioNamespace: string;
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
}

/** The kube-prometheus-stack release name; its `fullnameOverride` fixes the names of the Services it creates. */
const prometheusRelease = "kube-prometheus-stack";
const prometheusFullname = "monitoring";

/**
 * Prometheus (a slim kube-prometheus-stack, as Korthweb runs it), Kiali reading from it, and the monitors that scrape
 * the Envoy proxies of every meshed pod and the istiod control plane.
 */
export class Observability extends pulumi.ComponentResource {
    readonly namespace: string;
    readonly prometheusUrl: string;

    constructor(name: string, args: ObservabilityArgs, opts?: pulumi.ComponentResourceOptions) {
        super("korthweb:platform:Observability", name, {}, opts);
        this.namespace = args.namespace ?? "monitoring";
        this.prometheusUrl = prometheusServiceUrl(this.namespace);

        const ns = namespace(
            `${name}-namespace`,
            { name: this.namespace, enforce: "baseline", istioInjection: false, labels: { ...monitoringNamespaceLabels } },
            { parent: this },
        );
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
            { parent: this, dependsOn: [ns, ...credentials] },
        );
        pinnedRelease(
            `${name}-kiali`,
            {
                pin: charts.kiali,
                releaseName: "kiali",
                namespace: this.namespace,
                values: kialiValues(args.istioNamespace, this.prometheusUrl),
            },
            { parent: this, dependsOn: [ns, prometheus] },
        );

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
                // The chart's Prometheus selects rules labelled with its release (ruleSelectorNilUsesHelmValues).
                metadata: { name: "korthweb-alerts", namespace: this.namespace, labels: monitorLabels },
                spec: alertRulesSpec({ backupSchedule: args.backupSchedule, certificateRenewBeforeHours: args.certificateRenewBeforeHours }),
            },
            monitorOpts,
        );
        this.registerOutputs({ namespace: this.namespace, prometheusUrl: this.prometheusUrl });
    }
}

const monitorLabels = { release: prometheusRelease, "app.kubernetes.io/part-of": "korthweb" };

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
        alertmanagerSpec: {
            secrets: [alertmanagerCredentialsSecret],
            resources: { requests: { cpu: "10m", memory: "64Mi" }, limits: { memory: "256Mi" } },
        },
    };
}

/**
 * Prometheus, its operator, kube-state-metrics (which the alerts read) and Alertmanager (which delivers them): the
 * rest of the stack is off, as in Korthweb, and Grafana (default password) too.
 */
export function prometheusValues(input: PrometheusValuesInput): Record<string, unknown> {
    const off = { enabled: false };
    return {
        fullnameOverride: prometheusFullname,
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
            resources: { requests: { cpu: "50m", memory: "128Mi" }, limits: { memory: "512Mi" } },
        },
        prometheus: {
            prometheusSpec: {
                scrapeInterval: "15s",
                retention: "10d",
                // Select every monitor, not only those labelled with this release, so tenants can add their own.
                podMonitorSelectorNilUsesHelmValues: false,
                serviceMonitorSelectorNilUsesHelmValues: false,
                resources: { requests: { cpu: "200m", memory: "1Gi" }, limits: { memory: "4Gi" } },
            },
        },
    };
}

export function kialiValues(istioNamespace: string, prometheusUrl: string): Record<string, unknown> {
    return {
        // Korthweb let anyone in ("anonymous"); a token bound to a Kubernetes identity is required here.
        auth: { strategy: "token" },
        deployment: {
            ...kialiImageValues(kialiImage),
            cluster_wide_access: true,
            view_only_mode: true,
            resources: { requests: { cpu: "10m", memory: "128Mi" }, limits: { memory: "1Gi" } },
        },
        external_services: {
            // The chart dropped `istio_namespace`; the root namespace is where istiod and the mesh config live.
            istio: { root_namespace: istioNamespace },
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
