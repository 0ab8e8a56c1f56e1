import { strict as assert } from "assert";
import {
    AlertRule,
    alertRulesSpec,
    cloudnativePgRules,
    cnpgMetricsJob,
    orthancRules,
    backupCronJobMetricLabel,
    backupMaxAgeSeconds,
    certificateAlertSeconds,
    cronMaxIntervalSeconds,
    defaultBackupSchedule,
    kubeStateMetricsValues,
    promDuration,
} from "../components/platform/alerts";
import { parseStackConfig } from "../components/config/load";
import { storageClaimName } from "../components/data/storage/orthancStorage";
import { monitoringNamespaceLabels } from "../components/k8s/namespace";
import { orthancDeploymentName } from "../components/tenant/orthancWorkload";
import { gatekeeperName } from "../components/identity/identity";
import { selectorMatches } from "./upstream/istioStats";
import { identityProviderUpMetric, metricsPath, providerMetricsText } from "../components/identity/gatekeeper/server";
import { postgresPodLabels } from "../components/data/engines/bitnamiHaValues";
import { cloudnativePgWalls, cnpgPodLabels, cnpgPodMonitorSpec } from "../components/data/engines/cloudnativePg";
import { defaultClusterNetwork } from "../components/data/backup/backup";
import { alertmanagerConfig, unroutedReceiver } from "../components/platform/alertmanager";
import { RecordedResource } from "./support/mocks";
import { RenderedStack, allStacks, parsedStackFile, releases, renderStack } from "./support/stacks";
import kubePrometheusStackDefaults from "./upstream/kubePrometheusStackDefaults.json";
import kialiServerDefaults from "./upstream/kialiServerDefaults.json";
import { restrictedViolations } from "./upstream/admissionPolicy";
import { monitoringPods, monitoringPorts, monitoringServiceAccounts, receiverEndpoints } from "../components/platform/observability";
import {
    Client,
    NetworkPolicyModel,
    PodModel,
    PodMonitorModel,
    Target,
    MonitorObject,
    asRunning,
    bitnamiPostgresStatefulSet,
    connectionAdmitted,
    kialiChartGrants,
    kubePrometheusStackGrants,
    monitorRead,
    monitorSelection,
    networkPoliciesAdmitEgress,
    programGrants,
    serviceAccountMay,
    helmCoalesce,
    inhibited,
    metricsRead,
    prometheusAlertmanagers,
    receiverNotifies,
    routeReceivers,
    scrapedBy,
} from "./upstream/monitoring";

const hour = 3600;
const day = 24 * hour;
const rules = (schedule?: string) => alertRulesSpec({ backupSchedule: schedule }).groups.flatMap((g) => g.rules);
const named = (alert: string, schedule?: string): AlertRule[] => {
    const found = rules(schedule).filter((r) => r.alert === alert);
    assert.ok(found.length > 0, `no ${alert}`);
    return found;
};

describe("alerts", () => {
    describe("backup interval from the cron schedule", () => {
        const cases: [string, number][] = [
            ["0 1 * * *", day],
            ["*/15 * * * *", 15 * 60],
            ["0 1,13 * * *", 12 * hour],
            ["0 3 * * 0", 7 * day],
            ["0 3 * * 7", 7 * day],
            ["0 3 * * sun", 7 * day],
            ["30 2 * * mon-fri", 3 * day],
            ["0 1 1 * *", 31 * day],
            ["0 0 1 */3 *", 92 * day],
            // Vixie/robfig semantics: both day fields restricted means either.
            ["0 0 1 * mon", 7 * day],
            // Feb 29: every four years, eight across 2100.
            ["0 0 29 2 *", (8 * 365 + 1) * day],
        ];
        for (const [schedule, seconds] of cases) {
            it(`"${schedule}" runs at most ${promDuration(seconds)} apart`, () => {
                assert.equal(cronMaxIntervalSeconds(schedule), seconds);
            });
        }

        it("allows a daily backup 26 hours, and the configuration's default schedule is daily", () => {
            assert.equal(backupMaxAgeSeconds("0 1 * * *"), 26 * hour);
            assert.equal(promDuration(backupMaxAgeSeconds("0 1 * * *")), "26h");
            const config = parseStackConfig({
                domain: "orthweb.example.org",
                ingress: { serviceType: "ClusterIP" },
                tenants: [{ name: "bhs", displayName: "B" }],
                backup: {
                    s3: { endpoint: "https://s3.example.org", bucket: "backups", addresses: ["10.0.0.0/24"] },
                    tenants: { bhs: { accessKeyId: "a", secretAccessKey: "b" } },
                },
            });
            assert.equal(config.backup?.schedule, defaultBackupSchedule);
        });

        it("refuses a schedule it cannot read or that never runs", () => {
            for (const schedule of ["0 1 * *", "61 * * * *", "0 1 * * funday", "0 5-1 * * *", "*/0 * * * *", "0 0 31 2 *", "@daily"]) {
                assert.throws(() => cronMaxIntervalSeconds(schedule), Error, schedule);
            }
        });
    });

    describe("rules", () => {
        it("has every alert, each with a severity, a for duration and a summary and description naming tenant and object", () => {
            const all = rules();
            assert.deepEqual(
                [...new Set(all.map((r) => r.alert))].sort(),
                [
                    "AuditRetentionFailed",
                    "BackupTooOld",
                    "CertificateExpiresSoon",
                    "FilesBackupTooOld",
                    "GatekeeperDown",
                    "GatekeeperReplicasUnavailable",
                    "IdentityProviderCheckMissing",
                    "IdentityProviderUnreachable",
                    "OrthancDown",
                    "OrthancReplicasUnavailable",
                    "PostgresNotReady",
                    "PostgresReplicationBroken",
                ],
            );
            assert.deepEqual(
                [...new Set(alertRulesSpec({ orthancMetrics: true }).groups.flatMap((g) => g.rules).map((r) => r.alert))].filter((a) => !all.some((r) => r.alert === a)).sort(),
                ["OrthancJobsFailing", "OrthancReplicaUnreachable"],
            );
            for (const rule of all) {
                assert.match(rule.labels.severity, /^(critical|warning)$/, rule.alert);
                assert.match(rule.for, /^\d+[smhd]$/, rule.alert);
                assert.match(rule.annotations.summary, /\{\{ \$labels\.(tenant|namespace) \}\}/, rule.alert);
                assert.match(rule.annotations.description, /\{\{ \$labels\.tenant \}\}/, rule.alert);
                // The object: namespace/name, or the one CloudNativePG cluster of a tenant namespace.
                assert.match(rule.annotations.description, /\{\{ \$labels\.namespace \}\}\/\S+|CloudNativePG cluster in \{\{ \$labels\.namespace \}\}/, `${rule.alert} names the object`);
                // The tenant label is derived from the tenant's namespaces.
                assert.match(rule.expr, /^label_replace\(.*, "tenant", "\$1", "namespace", "\(\.\+\)\(-orthweb\|-gateway\)"\)$/s, rule.alert);
                assert.equal(count(rule.expr, "("), count(rule.expr, ")"), `${rule.alert}: balanced parentheses`);
            }
        });

        it("watches the tenants' Orthanc Deployment: fewer available than desired, and none at all", () => {
            const [unavailable] = named("OrthancReplicasUnavailable");
            assert.match(unavailable.expr, /kube_deployment_spec_replicas\{deployment="orthanc-26-8-1", namespace=~"\.\+-orthweb"\} - kube_deployment_status_replicas_available\{deployment="orthanc-26-8-1"/);
            assert.equal(unavailable.labels.severity, "warning");
            const [down] = named("OrthancDown");
            assert.match(down.expr, /kube_deployment_status_replicas_available\{[^}]*\} == 0/);
            assert.equal(down.labels.severity, "critical");
        });

        it("watches each tenant's gatekeeper: its Deployment by the name the program gives it, and its own report of whether the identity provider answers", () => {
            for (const rule of named("GatekeeperReplicasUnavailable").concat(named("GatekeeperDown"))) {
                assert.deepEqual([...new Set([...rule.expr.matchAll(/deployment="([^"]+)"/g)].map((m) => m[1]))], [gatekeeperName], rule.alert);
            }
            assert.equal(named("GatekeeperDown")[0].labels.severity, "critical");
            const [missing] = named("IdentityProviderCheckMissing");
            // The running gatekeeper, by its Deployment's name, without any replica's gauge.
            assert.deepEqual(metricsRead(missing.expr).sort(), ["kube_deployment_status_replicas_available", identityProviderUpMetric].sort());
            assert.match(missing.expr, new RegExp(`deployment="${gatekeeperName}".*unless on\\(namespace\\)`));
            const [unreachable] = named("IdentityProviderUnreachable");
            // The gatekeeper's own gauge (components/identity/gatekeeper/server.ts), served on its loopback metrics port and
            // scraped through the sidecar's merged endpoint by the envoy-stats PodMonitor, which adds namespace and pod_name.
            assert.deepEqual(metricsRead(unreachable.expr), [identityProviderUpMetric]);
            const served = (up: boolean, namespace = "bhs-orthweb") => {
                const [sample] = providerMetricsText(up).split("\n").filter((line) => line !== "" && !line.startsWith("#"));
                const [name, value] = sample.split(" ");
                return { labels: { __name__: name, namespace, pod_name: `${gatekeeperName}-0` }, value: Number(value) };
            };
            const matches = (labels: Record<string, string>) => selectorMatches(unreachable.expr, identityProviderUpMetric, labels);
            assert.equal(matches(served(false).labels), true);
            assert.equal(matches(served(false, "monitoring").labels), false, "not a tenant namespace");
            assert.deepEqual([served(true).value, served(false).value], [1, 0]);
            assert.match(unreachable.expr, new RegExp(`count by \\(namespace\\) \\(${identityProviderUpMetric}\\{[^}]*\\} == 0\\)`));
            assert.equal(providerMetricsText(undefined), "", "no sample before the first check has ended");
        });

        it("selects the Orthanc Deployment by the name the Deployment gets, which follows the image tag", () => {
            // kube-state-metrics v2.20.0 internal/store/deployment.go: the `deployment` label is the object's name.
            for (const rule of named("OrthancReplicasUnavailable").concat(named("OrthancDown"))) {
                const names = [...rule.expr.matchAll(/deployment="([^"]+)"/g)].map((m) => m[1]);
                assert.ok(names.length > 0);
                assert.deepEqual([...new Set(names)], [orthancDeploymentName()], rule.alert);
            }
            const upgraded = orthancRules(orthancDeploymentName({ tag: "27.1.0" }));
            assert.ok(upgraded.every((r) => r.expr.includes('deployment="orthanc-27-1-0"') && !r.expr.includes("26-8-1")));
            assert.ok(alertRulesSpec({ orthancDeployment: "orthanc-x" }).groups[0].rules.every((r) => r.expr.includes('deployment="orthanc-x"')));
            assert.ok(orthancRules().every((r) => !r.expr.includes(`deployment="${gatekeeperName}"`)));
        });

        it("watches the CloudNativePG engine with what its instance manager serves: up, cnpg_collector_up, replication", () => {
            const rules = cloudnativePgRules();
            const scraped = `job="${cnpgMetricsJob}", namespace=~".+-orthweb"`;
            for (const rule of rules) assert.ok(rule.expr.includes(scraped), `${rule.alert} selects the PodMonitor's series`);
            const notReady = rules.filter((r) => r.alert === "PostgresNotReady");
            assert.ok(notReady.some((r) => r.expr.includes(`up{${scraped}} == 0`)), "an instance that stopped answering");
            assert.ok(notReady.some((r) => r.expr.includes(`cnpg_collector_up{${scraped}} == 0`)), "PostgreSQL down under its instance manager");
            const broken = rules.filter((r) => r.alert === "PostgresReplicationBroken");
            assert.ok(broken.some((r) => /cnpg_pg_replication_lag\{[^}]*\} > 300\) and on\(namespace, pod_name\) \(cnpg_pg_replication_in_recovery\{[^}]*\} == 1/.test(r.expr)));
            assert.ok(broken.some((r) => /cnpg_pg_replication_is_wal_receiver_up\{[^}]*\} == 0/.test(r.expr)), "a standby without WAL receiver");
            assert.ok(broken.some((r) => r.expr.includes("cnpg_pg_replication_streaming_replicas")), "a standby missing from the primary's senders");
            assert.ok(broken.some((r) => /\) != 1, "tenant"/.test(r.expr)), "no single primary");
            assert.ok(alertRulesSpec().groups.some((g) => g.name === "korthweb.cloudnative-pg"));
        });

        it("watches PostgreSQL: StatefulSet readiness and the exporter's pg_up", () => {
            const notReady = named("PostgresNotReady");
            assert.ok(notReady.some((r) => /kube_statefulset_replicas\{statefulset="postgresql-ha-postgresql".*kube_statefulset_status_replicas_ready/.test(r.expr)));
            assert.ok(notReady.some((r) => /pg_up\{namespace=~"\.\+-orthweb", pod_name=~"postgresql-ha-postgresql-\[0-9\]\+"\} == 0/.test(r.expr)));
        });

        it("watches replication with metrics postgres_exporter 0.17.1 has by default: lag, missing standby, no single primary", () => {
            const broken = named("PostgresReplicationBroken").filter((r) => r.expr.includes("pg_replication_is_replica") || r.expr.includes("pg_replication_lag_seconds"));
            assert.equal(broken.length, 3);
            assert.ok(broken.some((r) => /pg_replication_lag_seconds\{[^}]*\} > \d+/.test(r.expr)));
            const missing = broken.find((r) => r.annotations.summary.includes("standby missing"))!;
            assert.match(missing.expr, /pg_replication_is_replica\{[^}]*\} == 1/);
            assert.match(missing.expr, /kube_statefulset_replicas\{[^}]*\}\) - 1/);
            assert.match(missing.expr, / or on\(namespace\) /, "fires when no standby reports at all");
            const primary = broken.find((r) => r.annotations.summary.includes("no single primary"))!;
            assert.match(primary.expr, /pg_replication_is_replica\{[^}]*\} == 0/);
            assert.match(primary.expr, /\) != 1, "tenant"/, "zero primaries count too");
        });

        it("alerts on backups older than the schedule allows: labelled CronJobs, never-successful ones, CloudNativePG", () => {
            const daily = named("BackupTooOld");
            const maxAge = String(26 * hour);
            const cronjob = daily.find((r) => r.expr.includes("kube_cronjob_status_last_successful_time) >"))!;
            assert.match(cronjob.expr, new RegExp(`\\(time\\(\\) - kube_cronjob_status_last_successful_time\\) > ${maxAge}\\)`));
            assert.match(cronjob.expr, /and on\(namespace, cronjob\) kube_cronjob_labels\{label_korthweb_io_backup="true"\}/);
            assert.equal(backupCronJobMetricLabel, "label_korthweb_io_backup");
            const never = daily.find((r) => r.expr.includes("kube_cronjob_created"))!;
            assert.match(never.expr, /unless on\(namespace, cronjob\) kube_cronjob_status_last_successful_time and on\(namespace, cronjob\) kube_cronjob_labels/);
            const cnpg = daily.find((r) => r.expr.includes("cnpg") && r.expr.includes("time()"))!;
            assert.match(cnpg.expr, /barman_cloud_cloudnative_pg_io_last_available_backup_timestamp\|cnpg_collector_last_available_backup_timestamp/);
            assert.match(cnpg.expr, new RegExp(`> ${maxAge}, "tenant"`));
            for (const rule of daily) assert.match(rule.annotations.description, /"0 1 \* \* \*" allows|allows 26h|26h, as long as its schedule "0 1 \* \* \*"/);

            const weekly = named("BackupTooOld", "0 3 * * 0");
            for (const rule of weekly.filter((r) => r.expr.includes("time()"))) {
                assert.ok(rule.expr.includes(`> ${7 * day + 2 * hour}`), rule.expr);
                assert.match(rule.annotations.description, /allows 170h/);
            }
        });

        it("alerts on a CloudNativePG cluster whose backup never succeeded (the plugin reports 0), after the schedule's allowance", () => {
            // plugin-barman-cloud v0.13.0 internal/cnpgi/instance/metrics.go: 0 until the object store lists a backup.
            for (const [schedule, allowance] of [["0 1 * * *", "26h"], ["0 3 * * 0", "170h"]] as const) {
                const never = named("BackupTooOld", schedule).filter((r) => r.expr.includes("barman_cloud_cloudnative_pg_io_last_available_backup_timestamp") && !r.expr.includes("> 0"));
                assert.equal(never.length, 1, "a rule that does not filter out 0");
                assert.match(never[0].expr, /max by \(namespace\) \(\{__name__=~"[^"]+", namespace=~"\.\+-orthweb"\}\) == 0/);
                assert.equal(never[0].for, allowance);
            }
        });

        it("alerts on the files of filesystem storage: no ready snapshot of the claim newer than the schedule allows, or none ever", () => {
            const [old, never] = named("FilesBackupTooOld");
            const claim = `persistentvolumeclaim="${storageClaimName}", namespace=~".+-orthweb"`;
            assert.ok(old.expr.includes(`(time() - max by (namespace, persistentvolumeclaim) (korthweb_volumesnapshot_creation_time{${claim}} and on(namespace, volumesnapshot) (korthweb_volumesnapshot_ready_to_use{${claim}} == 1))) > ${26 * hour}`), old.expr);
            assert.ok(never.expr.includes(`((time() - kube_persistentvolumeclaim_created{${claim}}) > ${26 * hour}) unless on(namespace, persistentvolumeclaim) (korthweb_volumesnapshot_ready_to_use{${claim}} == 1)`), never.expr);
            for (const rule of [old, never]) assert.match(rule.annotations.description, /\{\{ \$labels\.namespace \}\}\/\{\{ \$labels\.persistentvolumeclaim \}\}.*"0 1 \* \* \*" allows 26h/);
            const weekly = named("FilesBackupTooOld", "0 3 * * 0");
            for (const rule of weekly) assert.ok(rule.expr.includes(`> ${7 * day + 2 * hour}`), rule.expr);
        });

        it("moves the certificate alert to half of cert-manager's renewal window when that is shorter than 14 days", () => {
            assert.equal(certificateAlertSeconds(), 14 * day);
            assert.equal(certificateAlertSeconds(720), 14 * day, "90-day certificates renewed 30 days before: 14 days");
            assert.equal(certificateAlertSeconds(168), 3.5 * day, "21-day certificates renewed 7 days before: 3.5 days, not always");
        });

        it("alerts on cert-manager certificates expiring within 14 days", () => {
            const [expiry] = named("CertificateExpiresSoon");
            assert.match(expiry.expr, new RegExp(`\\(certmanager_certificate_expiration_timestamp_seconds - time\\(\\)\\) < ${14 * day}`));
            assert.match(expiry.annotations.description, /\{\{ \$labels\.namespace \}\}\/\{\{ \$labels\.name \}\}/);
        });
    });

    it("has kube-state-metrics export the backup label on kube_cronjob_labels, with the collectors the rules read", () => {
        const values = kubeStateMetricsValues() as any;
        assert.deepEqual(values.metricLabelsAllowlist, ["cronjobs=[korthweb.io/backup]"]);
        for (const collector of ["cronjobs", "deployments", "statefulsets", "persistentvolumeclaims"]) assert.ok(values.collectors.includes(collector), collector);
    });

    it("has kube-state-metrics serve each VolumeSnapshot's time and readiness by namespace, name and claim, and lets it list them", () => {
        const values = kubeStateMetricsValues() as any;
        assert.equal(values.customResourceState.enabled, true);
        const [resource] = values.customResourceState.config.spec.resources;
        assert.deepEqual(resource.groupVersionKind, { group: "snapshot.storage.k8s.io", version: "v1", kind: "VolumeSnapshot" });
        assert.deepEqual(resource.labelsFromPath, { namespace: ["metadata", "namespace"], volumesnapshot: ["metadata", "name"], persistentvolumeclaim: ["spec", "source", "persistentVolumeClaimName"] });
        assert.deepEqual(
            resource.metrics.map((m: any) => [`${resource.metricNamePrefix}_${m.name}`, m.each.gauge.path, m.each.gauge.valueFrom]),
            [
                ["korthweb_volumesnapshot_creation_time", ["status"], ["creationTime"]],
                ["korthweb_volumesnapshot_ready_to_use", ["status"], ["readyToUse"]],
            ],
        );
        assert.deepEqual(values.rbac.extraRules, [{ apiGroups: ["snapshot.storage.k8s.io"], resources: ["volumesnapshots"], verbs: ["list", "watch"] }]);
    });
});

// ---- the rendered stacks against the models of tests/upstream/monitoring.ts ----

const objects = (stack: RenderedStack, kind: string) => stack.resources.filter((r) => r.type.startsWith("kubernetes:") && r.type.endsWith(`:${kind}`));
const nsOf = (r: RecordedResource) => r.inputs.metadata?.namespace ?? r.inputs.namespace;

/** The pods each tenant runs, as the cluster would run them (see PodModel); those of operators and charts modelled. */
function tenantPods(stack: RenderedStack, stackName: string): { tenant: string; role: "orthanc" | "bitnami-postgresql" | "cnpg-instance" | "gatekeeper"; pod: PodModel }[] {
    const config = parsedStackFile(stackName);
    const namespaceLabels = (name: string): Record<string, string> => {
        const ns = objects(stack, "Namespace").find((r) => r.inputs.metadata.name === name);
        return { ...(ns?.inputs.metadata.labels ?? {}), "kubernetes.io/metadata.name": name };
    };
    const injects = (name: string) => namespaceLabels(name)["istio-injection"] === "enabled";
    const pods: ReturnType<typeof tenantPods> = [];
    for (const tenant of config.tenants) {
        const ns = `${tenant.name}-orthweb`;
        const base = { namespace: ns, namespaceLabels: namespaceLabels(ns) };
        const deployment = objects(stack, "Deployment").find((r) => nsOf(r) === ns && r.inputs.metadata.name.startsWith("orthanc"))!;
        const template = deployment.inputs.spec.template;
        pods.push({
            tenant: tenant.name,
            role: "orthanc",
            pod: asRunning(
                { ...base, name: `${deployment.inputs.metadata.name}-0`, labels: template.metadata.labels, annotations: template.metadata.annotations ?? {}, containers: template.spec.containers },
                injects(ns),
            ),
        });
        const gatekeeper = objects(stack, "Deployment").find((r) => nsOf(r) === ns && r.inputs.metadata.name === gatekeeperName);
        if (gatekeeper) {
            const pod = gatekeeper.inputs.spec.template;
            pods.push({
                tenant: tenant.name,
                role: "gatekeeper",
                pod: asRunning({ ...base, name: `${gatekeeperName}-0`, labels: pod.metadata.labels, annotations: pod.metadata.annotations ?? {}, containers: pod.spec.containers }, injects(ns)),
            });
        }
        if (tenant.database.engine === "bitnami-ha") {
            // The chart's pod: its labels, the exporter's annotations from the values (metrics.annotations).
            const release = releases(stack).find((r) => nsOf(r) === ns && r.inputs.chart.includes("postgresql-ha"))!;
            const name = `${bitnamiPostgresStatefulSet(release.inputs.name, release.inputs.values)}-0`;
            const containers = [
                { name: "postgresql", ports: [{ name: "postgresql", containerPort: 5432 }] },
                { name: "metrics", ports: [{ name: "http-metrics", containerPort: release.inputs.values.metrics.containerPorts?.http ?? 9187 }] },
            ];
            pods.push({ tenant: tenant.name, role: "bitnami-postgresql", pod: asRunning({ ...base, name, labels: { ...postgresPodLabels.postgresql }, annotations: release.inputs.values.metrics.annotations ?? {}, containers }, injects(ns)) });
        }
        if (tenant.database.engine === "cloudnative-pg") {
            // The operator's instance pod (cloudnative-pg v1.30.0 pkg/specs/pods.go): its labels, ports, inherited metadata.
            const cluster = objects(stack, "Cluster").find((r) => nsOf(r) === ns)!;
            const labels = { ...cnpgPodLabels.database, "cnpg.io/podRole": "instance", "cnpg.io/instanceName": `${cluster.inputs.metadata.name}-1`, ...(cluster.inputs.spec.inheritedMetadata?.labels ?? {}) };
            const containers = [{ name: "postgres", ports: [{ name: "postgresql", containerPort: 5432 }, { name: "metrics", containerPort: 9187 }, { name: "status", containerPort: 8000 }] }];
            pods.push({ tenant: tenant.name, role: "cnpg-instance", pod: asRunning({ ...base, name: `${cluster.inputs.metadata.name}-1`, labels, annotations: {}, containers }, injects(ns)) });
        }
    }
    return pods;
}

/** Which tenant pods serve a metric (for `up`, the scrape job the expression selects). */
/**
 * The metric names kube-state-metrics serves from the custom resource configuration it is given (v2.20.0
 * pkg/customresourcestate/registry_factory.go `fullName`: the resource's metricNamePrefix and the metric's name joined
 * by `_`, `kube_customresource` when no prefix is set).
 */
function customResourceMetrics(kubeStateMetrics: any): string[] {
    if (!kubeStateMetrics?.customResourceState?.enabled) return [];
    return (kubeStateMetrics.customResourceState.config?.spec?.resources ?? []).flatMap((resource: any) =>
        (resource.metrics ?? []).map((metric: any) => [resource.metricNamePrefix ?? "kube_customresource", metric.name].filter((part) => part !== "").join("_")),
    );
}

function servedBy(metric: string, expr: string, kubeStateMetrics?: unknown): "orthanc" | "bitnami-postgresql" | "cnpg-instance" | "gatekeeper" | "cluster-wide" | undefined {
    if (/^(kube_|certmanager_)/.test(metric) || customResourceMetrics(kubeStateMetrics).includes(metric)) return "cluster-wide";
    // The gatekeeper's own metrics, through its sidecar's merged endpoint.
    if (metric.startsWith("korthweb_gatekeeper_")) return "gatekeeper";
    if (/^pg_/.test(metric)) return "bitnami-postgresql";
    if (/^(cnpg_|barman_cloud_)/.test(metric)) return "cnpg-instance";
    if (metric === "up") {
        const job = /up\{job="([^"]+)"/.exec(expr)?.[1];
        return job === cnpgMetricsJob ? "cnpg-instance" : undefined;
    }
    return undefined;
}

for (const stackName of allStacks) {
    const config = parsedStackFile(stackName);
    if (!config.observability.enabled) continue;
    describe(`monitoring on stack ${stackName}`, () => {
        let stack: RenderedStack;
        before(async () => {
            stack = await renderStack(stackName);
            assert.equal(stack.error, undefined);
        });
        const rules = () => objects(stack, "PrometheusRule").flatMap((r) => r.inputs.spec.groups.flatMap((g: any) => g.rules as AlertRule[]));
        const prometheusRelease = () => releases(stack).find((r) => r.inputs.chart === "kube-prometheus-stack")!;
        const prometheus = (): Client => {
            const namespace = nsOf(prometheusRelease());
            const ns = objects(stack, "Namespace").find((r) => r.inputs.metadata.name === namespace);
            return { namespace, namespaceLabels: { ...(ns?.inputs.metadata.labels ?? {}), "kubernetes.io/metadata.name": namespace }, labels: { "app.kubernetes.io/name": "prometheus" } };
        };

        it("scrapes, past the monitors' selection, the walls and the mesh, every metric an alert reads from every tenant pod that serves it", () => {
            const monitors: PodMonitorModel[] = objects(stack, "PodMonitor").map((r) => ({ namespace: nsOf(r), name: r.inputs.metadata.name, spec: r.inputs.spec }));
            const policies: NetworkPolicyModel[] = objects(stack, "NetworkPolicy").map((r) => ({ namespace: nsOf(r), spec: r.inputs.spec }));
            const pods = tenantPods(stack, stackName);
            // Every tenant of the rendered stacks signs in through a gatekeeper, whose metrics the rules read.
            assert.deepEqual(pods.filter((p) => p.role === "gatekeeper").map((p) => p.tenant), config.tenants.map((t) => t.name));
            const unscraped: string[] = [];
            for (const rule of rules()) {
                for (const metric of metricsRead(rule.expr)) {
                    const kubeStateMetrics = prometheusRelease().inputs.values["kube-state-metrics"];
                    const role = servedBy(metric, rule.expr, kubeStateMetrics);
                    assert.ok(role !== undefined, `${rule.alert} reads ${metric}, which nothing in the cluster serves or scrapes`);
                    if (role === "cluster-wide") {
                        // kube-state-metrics in the monitoring namespace, cert-manager's controller in its own: both ends' walls.
                        const fromKubeStateMetrics = /^kube_/.test(metric) || customResourceMetrics(kubeStateMetrics).includes(metric);
                        const server: Client = fromKubeStateMetrics
                            ? { namespace: prometheus().namespace, namespaceLabels: prometheus().namespaceLabels, labels: { ...monitoringPods.kubeStateMetrics } }
                            : { namespace: "cert-manager", namespaceLabels: { "kubernetes.io/metadata.name": "cert-manager" }, labels: { "app.kubernetes.io/component": "controller" } };
                        const port = fromKubeStateMetrics ? monitoringPorts.kubeStateMetrics : monitoringPorts.certManager;
                        if (!connectionAdmitted(policies, prometheus(), server, port)) unscraped.push(`${rule.alert}: ${metric} from ${server.namespace}`);
                        continue;
                    }
                    for (const { tenant, pod } of pods.filter((p) => p.role === role)) {
                        if (role === "gatekeeper") {
                            // The agent fetches the application's page where the pod's own annotations say; the
                            // gatekeeper serves it where its rendered configuration says.
                            const configMap = objects(stack, "ConfigMap").find((r) => nsOf(r) === pod.namespace && r.inputs.metadata.name === gatekeeperName)!;
                            const listens = JSON.parse(configMap.inputs.data["config.json"]).metrics;
                            if (!listens || pod.applicationMetrics?.port !== listens.port || pod.applicationMetrics?.path !== metricsPath) {
                                unscraped.push(`${rule.alert}: ${metric} of ${tenant}'s gatekeeper: the sidecar fetches ${JSON.stringify(pod.applicationMetrics)}, it serves ${JSON.stringify(listens)}`);
                            }
                        }
                        const targets = scrapedBy(monitors, policies, prometheus(), pod);
                        // The rules join and label by namespace and pod_name, and select CloudNativePG's by job.
                        const usable: Target[] = targets.filter((t) => t.labels.namespace === pod.namespace && t.labels.pod_name === pod.name && (role !== "cnpg-instance" || t.labels.job === cnpgMetricsJob));
                        if (usable.length === 0) unscraped.push(`${rule.alert}: ${metric} of ${tenant}'s ${role} pod`);
                        // Bitnami's exporter only through Istio's metrics merging (15020); CloudNativePG's port directly.
                        // The gatekeeper's own metrics through the same merged endpoint.
                        const expectedPort: number | undefined = role === "bitnami-postgresql" || role === "gatekeeper" ? 15020 : role === "cnpg-instance" ? 9187 : undefined;
                        for (const target of usable as Target[]) assert.equal(target.port, expectedPort, `${tenant}'s ${role} scraped on ${target.port}`);
                    }
                }
            }
            assert.deepEqual([...new Set(unscraped)], []);
        });

        const merged = () => helmCoalesce(kubePrometheusStackDefaults.values, prometheusRelease().inputs.values) as any;
        const monitoringNamespace = () => nsOf(prometheusRelease());
        const namespaceLabelsOf = (name: string): Record<string, string> => ({
            ...(objects(stack, "Namespace").find((r) => r.inputs.metadata.name === name)?.inputs.metadata.labels ?? {}),
            "kubernetes.io/metadata.name": name,
        });
        const tenantNamespaces = () => config.tenants.flatMap((t) => [`${t.name}-orthweb`, `${t.name}-gateway`]);
        const policies = (): NetworkPolicyModel[] => objects(stack, "NetworkPolicy").map((r) => ({ namespace: nsOf(r), spec: r.inputs.spec }));
        const inMonitoring = (labels: Record<string, string>): Client => ({ namespace: monitoringNamespace(), namespaceLabels: namespaceLabelsOf(monitoringNamespace()), labels: { ...labels } });
        const grants = () => {
            const rbac = ["Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"].flatMap((kind) =>
                objects(stack, kind).map((r) => ({ kind, name: r.inputs.metadata.name, namespace: r.inputs.metadata.namespace, rules: r.inputs.rules, roleRef: r.inputs.roleRef, subjects: r.inputs.subjects })),
            );
            const kiali = releases(stack).find((r) => r.inputs.chart === "kiali-server")!;
            const kialiMerged = helmCoalesce(kialiServerDefaults.values, kiali.inputs.values) as any;
            // The chart's install-time lookup finds the namespaces its selectors name, all of which exist by then (below).
            const named = (kialiMerged.deployment.discovery_selectors?.default ?? []).flatMap((s: any) => s.matchExpressions?.[0]?.values ?? []);
            return [...kubePrometheusStackGrants(merged(), "monitoring", monitoringNamespace()), ...kialiChartGrants(kialiMerged, nsOf(kiali), named), ...programGrants(rbac)];
        };

        it("lets Kiali read the tenants', Istio's and its own namespace only, with neither port-forward nor logs", () => {
            const kialiAccount = { namespace: monitoringNamespace(), name: monitoringServiceAccounts.kiali };
            const all = grants();
            const everyNamespace = [...tenantNamespaces(), "istio-system", monitoringNamespace(), "cert-manager", "kube-system", "cnpg-system", "default"];
            for (const ns of everyNamespace) {
                assert.ok(!serviceAccountMay(all, kialiAccount, "create", "", "pods/portforward", ns), `Kiali port-forwards in ${ns}`);
                assert.ok(!serviceAccountMay(all, kialiAccount, "get", "", "pods/log", ns), `Kiali reads logs in ${ns}`);
                assert.ok(!serviceAccountMay(all, kialiAccount, "get", "", "secrets", ns), `Kiali reads Secrets in ${ns}`);
            }
            const seen = everyNamespace.filter((ns) => serviceAccountMay(all, kialiAccount, "list", "", "pods", ns));
            assert.deepEqual(seen.sort(), [...tenantNamespaces(), "istio-system", monitoringNamespace()].sort());
            // Its Roles and release wait for the tenants, whose namespaces the chart looks up when it installs.
            const kiali = releases(stack).find((r) => r.inputs.chart === "kiali-server")!;
            for (const tenant of config.tenants) assert.ok(kiali.options?.dependsOn.includes(tenant.name), `Kiali waits for ${tenant.name}`);
        });

        it("lets the Prometheus operator touch Secrets in the monitoring namespace only, and Prometheus none", () => {
            const all = grants();
            const operator = { namespace: monitoringNamespace(), name: monitoringServiceAccounts.operator };
            const prometheusAccount = { namespace: monitoringNamespace(), name: monitoringServiceAccounts.prometheus };
            for (const ns of [...tenantNamespaces(), "istio-system", "cert-manager", "kube-system"]) {
                for (const verb of ["get", "list", "watch"]) assert.ok(!serviceAccountMay(all, operator, verb, "", "secrets", ns), `operator ${verb}s Secrets in ${ns}`);
                assert.ok(!serviceAccountMay(all, prometheusAccount, "get", "", "secrets", ns), `Prometheus reads Secrets in ${ns}`);
                // Service discovery still sees every namespace's pods.
                assert.ok(serviceAccountMay(all, prometheusAccount, "list", "", "pods", ns), `Prometheus discovers pods in ${ns}`);
            }
            assert.ok(serviceAccountMay(all, operator, "get", "", "secrets", monitoringNamespace()), "the operator reads its own Secrets");
            assert.ok(!all.some((g) => g.rules.some((r) => (r.resources ?? []).some((x) => /webhookconfigurations/.test(x)))), "nobody patches webhook configurations");
        });

        it("reads the program's monitors and rules, and no monitor of a tenant namespace, nor one that reads Prometheus' files", () => {
            const selection = (kind: "serviceMonitor" | "podMonitor" | "rule") => monitorSelection(merged(), prometheusRelease().inputs.name, monitoringNamespace(), kind);
            const asMonitor = (r: RecordedResource, kind: MonitorObject["kind"]): MonitorObject => ({ kind, namespace: nsOf(r), namespaceLabels: namespaceLabelsOf(nsOf(r)), labels: r.inputs.metadata.labels ?? {}, spec: r.inputs.spec });
            for (const r of objects(stack, "ServiceMonitor")) assert.deepEqual(monitorRead(selection("serviceMonitor"), asMonitor(r, "ServiceMonitor")), { read: true }, r.name);
            for (const r of objects(stack, "PodMonitor")) assert.deepEqual(monitorRead(selection("podMonitor"), asMonitor(r, "PodMonitor")), { read: true }, r.name);
            for (const r of objects(stack, "PrometheusRule")) assert.deepEqual(monitorRead(selection("rule"), asMonitor(r, "PrometheusRule")), { read: true }, r.name);
            // kube-state-metrics' own ServiceMonitor: the chart labels it with the release (releaseLabel) in the release namespace.
            const ksm = { kind: "ServiceMonitor" as const, namespace: monitoringNamespace(), namespaceLabels: namespaceLabelsOf(monitoringNamespace()), labels: { release: prometheusRelease().inputs.name }, spec: { endpoints: [{ port: "http" }] } };
            assert.equal(merged()["kube-state-metrics"].releaseLabel, true);
            assert.deepEqual(monitorRead(selection("serviceMonitor"), ksm), { read: true });
            // A stray ServiceMonitor in a tenant namespace sending Prometheus' token elsewhere: with another label, or with the program's.
            const tenantNs = `${config.tenants[0].name}-orthweb`;
            const stealToken = { endpoints: [{ port: "http", bearerTokenFile: "/var/run/secrets/kubernetes.io/serviceaccount/token" }] };
            for (const labels of [{ app: "stray" }, { release: prometheusRelease().inputs.name }] as Record<string, string>[]) {
                const stray = { kind: "ServiceMonitor" as const, namespace: tenantNs, namespaceLabels: namespaceLabelsOf(tenantNs), labels, spec: stealToken };
                assert.equal(monitorRead(selection("serviceMonitor"), stray).read, false, JSON.stringify(labels));
            }
            // Even in the monitoring namespace, a monitor naming a file of Prometheus' pod is refused.
            assert.deepEqual(monitorRead(selection("serviceMonitor"), { ...ksm, spec: stealToken }), { read: false, why: "reads Prometheus' file system" });
        });

        it("runs every pod of the monitoring namespace under Pod Security's restricted level", () => {
            const ns = objects(stack, "Namespace").find((r) => r.inputs.metadata.name === monitoringNamespace())!;
            assert.equal(ns.inputs.metadata.labels["pod-security.kubernetes.io/enforce"], "restricted");
            const m = merged();
            // prometheus-operator v0.93.0 (pkg/prometheus/server/statefulset.go, pkg/alertmanager/statefulset.go,
            // pkg/operator/config_reloader.go): the containers it writes, with this context; the pod's from the spec.
            const operatorWritten = { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } };
            const { enabled: _enabled, ...ksmPod } = m["kube-state-metrics"].securityContext;
            const kiali = helmCoalesce(kialiServerDefaults.values, releases(stack).find((r) => r.inputs.chart === "kiali-server")!.inputs.values) as any;
            // kiali-server 2.20.0 templates/deployment.yaml: no pod context; the container's is deployment.security_context or the chart's own.
            const kialiChartDefault = { allowPrivilegeEscalation: false, privileged: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ["ALL"] } };
            const pods = {
                operator: { securityContext: m.prometheusOperator.securityContext, containers: [{ name: "operator", securityContext: m.prometheusOperator.containerSecurityContext }] },
                prometheus: { securityContext: m.prometheus.prometheusSpec.securityContext, containers: ["prometheus", "config-reloader", "init-config-reloader"].map((name) => ({ name, securityContext: operatorWritten })) },
                ...(m.alertmanager.enabled
                    ? { alertmanager: { securityContext: m.alertmanager.alertmanagerSpec.securityContext, containers: ["alertmanager", "config-reloader", "init-config-reloader"].map((name) => ({ name, securityContext: operatorWritten })) } }
                    : {}),
                kubeStateMetrics: { securityContext: ksmPod, containers: [{ name: "kube-state-metrics", securityContext: m["kube-state-metrics"].containerSecurityContext }] },
                kiali: { containers: [{ name: "kiali", securityContext: Object.keys(kiali.deployment.security_context ?? {}).length > 0 ? kiali.deployment.security_context : kialiChartDefault }] },
            };
            for (const [name, pod] of Object.entries(pods)) assert.deepEqual(restrictedViolations(pod), [], name);
            // Nothing else runs there: the admission webhook's certificate jobs are off.
            assert.equal(m.prometheusOperator.admissionWebhooks.enabled, false);
        });

        it("walls the monitoring namespace: Prometheus' and Alertmanager's unauthenticated ports from outside it, and every way out but the needed ones", () => {
            const all = policies();
            const pods = monitoringPods;
            const prometheusPod = inMonitoring(pods.prometheus);
            const tenantPod: Client = { namespace: `${config.tenants[0].name}-orthweb`, namespaceLabels: namespaceLabelsOf(`${config.tenants[0].name}-orthweb`), labels: { app: "orthanc" } };
            const stranger: Client = { namespace: "default", namespaceLabels: namespaceLabelsOf("default"), labels: {} };
            for (const client of [tenantPod, stranger, inMonitoring({ app: "other" }), inMonitoring(pods.alertmanager)]) {
                assert.ok(!connectionAdmitted(all, client, prometheusPod, monitoringPorts.prometheus), `${client.namespace}/${JSON.stringify(client.labels)} reaches Prometheus`);
                assert.ok(!connectionAdmitted(all, client, inMonitoring(pods.alertmanager), monitoringPorts.alertmanager), `${client.namespace} reaches Alertmanager`);
                assert.ok(!connectionAdmitted(all, client, inMonitoring(pods.kubeStateMetrics), monitoringPorts.kubeStateMetrics), `${client.namespace} reaches kube-state-metrics`);
                assert.ok(!connectionAdmitted(all, client, inMonitoring(pods.kiali), 20001), `${client.namespace} reaches Kiali`);
            }
            assert.ok(connectionAdmitted(all, inMonitoring(pods.kiali), prometheusPod, monitoringPorts.prometheus), "Kiali queries Prometheus");
            assert.ok(connectionAdmitted(all, prometheusPod, inMonitoring(pods.kubeStateMetrics), monitoringPorts.kubeStateMetrics), "Prometheus scrapes kube-state-metrics");
            const istiod: Client = { namespace: "istio-system", namespaceLabels: namespaceLabelsOf("istio-system"), labels: { istio: "pilot" } };
            assert.ok(connectionAdmitted(all, prometheusPod, istiod, monitoringPorts.istiod), "Prometheus scrapes istiod");
            const certManager: Client = { namespace: "cert-manager", namespaceLabels: namespaceLabelsOf("cert-manager"), labels: { "app.kubernetes.io/component": "controller" } };
            assert.ok(connectionAdmitted(all, prometheusPod, certManager, monitoringPorts.certManager), "Prometheus scrapes cert-manager");
            // Prometheus out to a tenant pod on anything but the metrics ports: refused (its walls, not only the tenant's).
            for (const port of [5432, 8042, 15000]) assert.ok(!networkPoliciesAdmitEgress(all, prometheusPod, tenantPod, port), `Prometheus out to ${port}`);
            if (config.observability.alerting.enabled) {
                const alertmanager = inMonitoring(pods.alertmanager);
                assert.ok(connectionAdmitted(all, prometheusPod, alertmanager, monitoringPorts.alertmanager), "Prometheus reaches Alertmanager");
                const receiverPorts = new Set(receiverEndpoints(config.observability.alerting).map((e) => e.port));
                const outside: Client = { namespace: "", namespaceLabels: {}, labels: {} };
                for (const port of [22, 80, 5432, 8042, 9090, 443, 587, 25]) {
                    const admitted = networkPoliciesAdmitEgress(all, alertmanager, outside, port);
                    // With Cilium the receivers' names are admitted by its policy instead (monitoringWalls).
                    assert.equal(admitted, config.kubernetes.cni !== "cilium" && receiverPorts.has(port), `Alertmanager out to ${port}`);
                }
            }
        });

        it("gives Prometheus an Alertmanager, and routes every alert of every tenant to a receiver that notifies", () => {
            const release = prometheusRelease();
            const merged = helmCoalesce(kubePrometheusStackDefaults.values, release.inputs.values) as any;
            assert.deepEqual(prometheusAlertmanagers(merged, release.inputs.values.fullnameOverride, nsOf(release)), [
                { namespace: nsOf(release), name: "monitoring-alertmanager", port: "http-web" },
            ]);
            const amConfig = merged.alertmanager.config;
            const receiverNames = amConfig.receivers.map((r: any) => r.name);
            const referenced = [amConfig.route.receiver, ...amConfig.route.routes.map((r: any) => r.receiver)];
            for (const name of referenced) assert.ok(receiverNames.includes(name), `route to ${name}, which the configuration defines`);
            assert.deepEqual(amConfig.inhibit_rules, release.inputs.values.alertmanager.config.inhibit_rules, "no default inhibition survives the merge");
            for (const rule of rules()) {
                for (const tenant of config.tenants) {
                    const labels = { alertname: rule.alert, severity: rule.labels.severity, tenant: tenant.name, namespace: `${tenant.name}-orthweb` };
                    const reached = routeReceivers(amConfig.route, labels);
                    assert.ok(!reached.includes(unroutedReceiver), `${rule.alert} (${rule.labels.severity}) of ${tenant.name} reaches a receiver`);
                    for (const name of reached) assert.ok(receiverNotifies(amConfig, name), `${name} notifies someone`);
                }
            }
        });

        it("holds back an alert's warning while the same alert fires as critical for the same tenant, and only then", () => {
            const amConfig = (helmCoalesce(kubePrometheusStackDefaults.values, prometheusRelease().inputs.values) as any).alertmanager.config;
            const bySeverity = new Map<string, Set<string>>();
            for (const rule of rules()) bySeverity.set(rule.alert, (bySeverity.get(rule.alert) ?? new Set()).add(rule.labels.severity));
            const both = [...bySeverity].filter(([, severities]) => severities.has("critical") && severities.has("warning")).map(([alert]) => alert);
            assert.ok(both.length > 0, "an alert with both severities (PostgresReplicationBroken)");
            const [first, second] = config.tenants.map((t) => t.name);
            for (const alertname of both) {
                const alert = (tenant: string, severity: string) => ({ alertname, severity, tenant, namespace: `${tenant}-orthweb` });
                assert.ok(inhibited(amConfig, [alert(first, "critical")], alert(first, "warning")), `${alertname}: the warning is held back`);
                assert.ok(!inhibited(amConfig, [alert(first, "warning")], alert(first, "critical")), `${alertname}: a warning never holds back the critical`);
                if (second) assert.ok(!inhibited(amConfig, [alert(first, "critical")], alert(second, "warning")), `${alertname}: another tenant's warning still goes out`);
            }
            assert.ok(!inhibited(amConfig, [{ alertname: "OrthancDown", severity: "critical", tenant: first }], { alertname: "OrthancReplicasUnavailable", severity: "warning", tenant: first }));
        });

        it("delivers each alert to every receiver whose severities and tenants take it, and to no other", () => {
            const amConfig = (helmCoalesce(kubePrometheusStackDefaults.values, prometheusRelease().inputs.values) as any).alertmanager.config;
            const receivers = config.observability.alerting.receivers;
            for (const rule of rules()) {
                for (const tenant of config.tenants) {
                    const labels = { alertname: rule.alert, severity: rule.labels.severity, tenant: tenant.name, namespace: `${tenant.name}-orthweb` };
                    // What the stack configuration says (schema: both severities and every tenant when unset).
                    const taking = receivers.filter((r) => (r.severities ?? [labels.severity]).includes(labels.severity as never) && (r.tenants ?? [tenant.name]).includes(tenant.name));
                    assert.deepEqual(routeReceivers(amConfig.route, labels).sort(), taking.map((r) => r.name).sort(), JSON.stringify(labels));
                }
            }
        });

        it("names the Orthanc and gatekeeper Deployments and the PostgreSQL StatefulSet in the rules as the cluster names them", () => {
            const deploymentNames = new Set(
                objects(stack, "Deployment")
                    .filter((r) => r.inputs.metadata.name.startsWith("orthanc") || r.inputs.metadata.name === gatekeeperName)
                    .map((r) => r.inputs.metadata.name),
            );
            const inRules = new Set(rules().flatMap((r) => [...r.expr.matchAll(/deployment="([^"]+)"/g)].map((m) => m[1])));
            assert.deepEqual([...inRules].sort(), [...deploymentNames].sort());
            const statefulSets = new Set(releases(stack).filter((r) => r.inputs.chart.includes("postgresql-ha")).map((r) => bitnamiPostgresStatefulSet(r.inputs.name, r.inputs.values)));
            const statefulSetsInRules = new Set(rules().flatMap((r) => [...r.expr.matchAll(/statefulset="([^"]+)"/g)].map((m) => m[1])));
            for (const name of statefulSets) assert.ok(statefulSetsInRules.has(name), `${name} is what the rules select`);
        });
    });
}

describe("Alertmanager's routes (alertmanagerConfig)", () => {
    it("take a tenant's alerts to the receivers for that tenant and severity and to those for every tenant, never to another tenant's", () => {
        const parsed = parseStackConfig({
            domain: "orthweb.example.org",
            ingress: { serviceType: "ClusterIP" },
            tenants: [{ name: "bhs", displayName: "B" }, { name: "mhr", displayName: "M" }],
            observability: {
                alerting: {
                    receivers: [
                        { name: "bhs-team", tenants: ["bhs"], webhook: { url: "https://alerts.example.org/bhs" } },
                        { name: "mhr-pager", tenants: ["mhr"], severities: ["critical"], webhook: { url: "https://alerts.example.org/mhr" } },
                        { name: "operations", webhook: { url: "https://alerts.example.org/all" } },
                    ],
                },
            },
        });
        const route = (alertmanagerConfig({ alerting: parsed.observability.alerting }) as any).route;
        const reached = (tenant: string, severity: string) => routeReceivers(route, { alertname: "OrthancDown", severity, tenant, namespace: `${tenant}-orthweb` }).sort();
        assert.deepEqual(reached("bhs", "critical"), ["bhs-team", "operations"]);
        assert.deepEqual(reached("bhs", "warning"), ["bhs-team", "operations"]);
        assert.deepEqual(reached("mhr", "critical"), ["mhr-pager", "operations"]);
        assert.deepEqual(reached("mhr", "warning"), ["operations"]);
    });
});

describe("the monitoring models", () => {
    it("say that the chart's Prometheus notifies nobody with Alertmanager off (the program's values before this fix)", () => {
        const merged = helmCoalesce(kubePrometheusStackDefaults.values, { alertmanager: { enabled: false } }) as any;
        assert.deepEqual(prometheusAlertmanagers(merged, "monitoring", "monitoring"), []);
        const endpoints = helmCoalesce(kubePrometheusStackDefaults.values, { alertmanager: { enabled: false }, prometheus: { prometheusSpec: { alertingEndpoints: [{ name: "am", port: "web" }] } } }) as any;
        assert.deepEqual(prometheusAlertmanagers(endpoints, "monitoring", "monitoring"), [{ name: "am", port: "web" }]);
    });

    it("route an alert through the chart's default tree to its `null` receiver, which notifies nobody", () => {
        const config = kubePrometheusStackDefaults.values.alertmanager.config as any;
        assert.deepEqual(routeReceivers(config.route, { alertname: "OrthancDown", severity: "critical" }), ["null"]);
        assert.equal(receiverNotifies(config, "null"), false);
    });

    it("leave a CloudNativePG instance unscraped when its wall admits another namespace than Prometheus' on 9187", () => {
        const names = { namespace: "bhs-orthweb" } as any;
        const pod = asRunning(
            {
                namespace: "bhs-orthweb",
                namespaceLabels: { "kubernetes.io/metadata.name": "bhs-orthweb" },
                name: "postgresql-1",
                labels: { ...cnpgPodLabels.database, "cnpg.io/podRole": "instance" },
                annotations: {},
                containers: [{ name: "postgres", ports: [{ name: "metrics", containerPort: 9187 }] }],
            },
            false,
        );
        const monitors = [{ namespace: "monitoring", name: "cloudnative-pg-instances", spec: cnpgPodMonitorSpec(cnpgMetricsJob) }];
        const prometheus = { namespace: "monitoring", namespaceLabels: { "kubernetes.io/metadata.name": "monitoring", ...monitoringNamespaceLabels }, labels: { "app.kubernetes.io/name": "prometheus" } };
        const policies = (monitoringNamespace: string) =>
            cloudnativePgWalls(names, { app: "orthanc" }, "cnpg-system", undefined, { cidrs: ["10.0.0.1/32"], ports: [443] }, defaultClusterNetwork, monitoringNamespace).network.map((p) => ({
                namespace: "bhs-orthweb",
                spec: p.spec,
            }));
        assert.equal(scrapedBy(monitors, policies("monitoring"), prometheus, pod).length, 1);
        assert.equal(scrapedBy(monitors, policies("elsewhere"), prometheus, pod).length, 0);
        // A namespace someone else named `monitoring`, without the label the program puts on the one it creates.
        assert.equal(scrapedBy(monitors, policies("monitoring"), { ...prometheus, namespaceLabels: { "kubernetes.io/metadata.name": "monitoring" } }, pod).length, 0);
        assert.equal(scrapedBy(monitors, [], prometheus, { ...pod, meshed: true }).length, 0, "a meshed pod refuses Prometheus' plaintext on 9187");
    });

    it("read the metric names of an expression, including a __name__ alternative", () => {
        assert.deepEqual(metricsRead('max by (namespace) ({__name__=~"a_b|c_d", namespace=~"x"}) == 0 and on(x) up{job="j"}').sort(), ["a_b", "c_d", "up"]);
    });
});

function count(text: string, char: string): number {
    return text.split(char).length - 1;
}
