/**
 * korthweb's alerts, as pure builders of a PrometheusRule spec (monitoring.coreos.com/v1): Orthanc replicas
 * unavailable or down, the tenant database not ready or its replication broken, the last successful backup older than
 * its schedule allows, a cert-manager certificate close to expiry. Observability creates the rule when it is enabled.
 *
 * Where each metric comes from, at the versions pinned in components/versions.ts:
 * - kube_deployment_*, kube_statefulset_*, kube_cronjob_*: kube-state-metrics v2.20.0 (chart kube-state-metrics 8.4.0,
 *   a dependency of kube-prometheus-stack 88.5.3; internal/store/{deployment,statefulset,cronjob}.go). Scraped through
 *   the subchart's ServiceMonitor with honorLabels, so `namespace` is the object's namespace.
 * - pg_up, pg_replication_is_replica, pg_replication_lag_seconds: postgres_exporter v0.17.1 (the Bitnami image
 *   postgres-exporter:0.17.1-debian-12-r16; cmd/postgres_exporter/postgres_exporter.go, collector/pg_replication.go,
 *   enabled by default), the sidecar of every PostgreSQL pod of postgresql-ha 16.3.2, scraped through Istio's metrics
 *   merging by the envoy-stats PodMonitor (labels `namespace` and `pod_name`).
 * - certmanager_certificate_expiration_timestamp_seconds: cert-manager v1.21.1 (internal/collectors/
 *   certificate_collector.go), labels name, namespace (the Certificate's), issuer_*.
 * - barman_cloud_cloudnative_pg_io_last_available_backup_timestamp: plugin-barman-cloud v0.13.0
 *   (internal/cnpgi/instance/metrics.go), exposed by the CloudNativePG instance pods; cnpg_collector_last_available_
 *   backup_timestamp (CloudNativePG 1.30.0) is deprecated since 1.26 and stays 0 with plugin backups.
 *
 * - korthweb_gatekeeper_identity_provider_up: each tenant's gatekeeper (components/identity/gatekeeper/server.ts), on its
 *   loopback, merged by its sidecar into the page the envoy-stats PodMonitor scrapes (labels `namespace`, `pod_name`).
 * - korthweb_volumesnapshot_*: kube-state-metrics' custom resource metrics (v2.20.0 pkg/customresourcestate: the
 *   prefix and name joined by `_`, an RFC3339 string read as its Unix time, a boolean as 1/0), configured by
 *   `kubeStateMetricsValues` from each VolumeSnapshot (snapshot.storage.k8s.io/v1) of a tenant's `filesystem` claim;
 *   kube_persistentvolumeclaim_created: internal/store/persistentvolumeclaim.go.
 *
 * Files in object storage have no alert here: their protection is the provider's (versioning, replication, lifecycle,
 * README "Where the images are stored"), applied by the bucket's owner and not visible from the cluster.
 *
 * Not covered: the root, tenant and modality certificates korthweb makes with @pulumi/tls. No exporter sees them (they
 * are Pulumi state, not cert-manager Certificates); `pulumi up` renews modality certificates in their last tenth, and
 * the CAs' expiry is the operator's calendar (README).
 */
import { storageClaimName } from "../data/storage/orthancStorage";
import { gatewayNamespaceSuffix, tenantNamespaceSuffix } from "../naming/tenantNames";
import { orthancDeploymentName } from "../tenant/orthancWorkload";
import { postgresRelease } from "../data/engines/bitnamiHaValues";
import { gatekeeperName } from "../identity/names";
import { identityProviderUpMetric } from "../identity/gatekeeper/server";
import { auditJobNames, auditRetentionSchedule } from "../data/engines/auditDatabase";

/** The label the backup CronJobs carry; kube-state-metrics is told to export it (see `kubeStateMetricsValues`). */
export const backupCronJobLabel = { key: "korthweb.io/backup", value: "true" } as const;
/** The same label as kube-state-metrics names it on kube_cronjob_labels (non-alphanumerics become `_`). */
export const backupCronJobMetricLabel = `label_${backupCronJobLabel.key.replace(/[^a-zA-Z0-9_]/g, "_")}`;

/** The schedule the stack configuration defaults to (components/config/schema.ts, backup.schedule). */
export const defaultBackupSchedule = "0 1 * * *";
/** Time a backup may take to run and to be recorded as successful, on top of its schedule's interval. */
export const backupSlackSeconds = 2 * 3600;
/** A certificate that expires within this many days while cert-manager should have renewed it long before. */
export const certificateExpiryDays = 14;
/** Seconds a standby may lag behind the primary's last transaction before it counts as broken replication. */
export const replicationLagSeconds = 300;

/**
 * The Bitnami engine's PostgreSQL StatefulSet: postgresql-ha names it `<release>-postgresql` when the release name
 * contains the chart's (templates/_helpers.tpl `postgresql-ha.postgresql`; checked against the rendered release in
 * tests/upstream/monitoring.ts). kube-state-metrics labels its series `statefulset="<that name>"`.
 */
export const postgresStatefulSet = `${postgresRelease}-postgresql`;

/**
 * The `job` label of the CloudNativePG instances' metrics (set by `cnpgPodMonitorSpec`'s relabelling), so that the
 * rules can tell a target that stopped answering from one that never existed.
 */
export const cnpgMetricsJob = "cloudnative-pg";
/** The `job` label of Orthanc's own metrics (`/tools/metrics-prometheus`), where a site scrapes them. */
export const orthancMetricsJob = "orthanc";

const tenantNamespaces = `.+${tenantNamespaceSuffix}`;
/** Adds a `tenant` label taken from a tenant's namespace (`<tenant>-orthweb` or `<tenant>-gateway`). */
const withTenant = (expr: string) =>
    `label_replace(${expr}, "tenant", "$1", "namespace", "(.+)(${tenantNamespaceSuffix}|${gatewayNamespaceSuffix})")`;

// ---- cron ----

const monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

interface CronField {
    values: Set<number>;
    /** The field starts with `*` or `?` (as Kubernetes' robfig/cron reads it: day-of-month/day-of-week are ANDed then). */
    star: boolean;
}

function parseField(text: string, min: number, max: number, names: string[] = [], nameBase = 0): CronField {
    const values = new Set<number>();
    const value = (token: string) => {
        const index = names.indexOf(token.toLowerCase());
        const number = index >= 0 ? index + nameBase : /^\d+$/.test(token) ? Number(token) : NaN;
        if (!Number.isInteger(number) || number < min || number > max) {
            throw new Error(`cron field "${text}": "${token}" is not in ${min}-${max}`);
        }
        return number;
    };
    for (const part of text.split(",")) {
        const [range, stepText, extra] = part.split("/");
        if (extra !== undefined || range === "") throw new Error(`cron field "${text}": cannot read "${part}"`);
        const step = stepText === undefined ? 1 : Number(stepText);
        if (!Number.isInteger(step) || step < 1) throw new Error(`cron field "${text}": bad step "${stepText}"`);
        let low: number;
        let high: number;
        if (range === "*" || range === "?") {
            [low, high] = [min, max];
        } else if (range.includes("-")) {
            const [a, b] = range.split("-");
            [low, high] = [value(a), value(b)];
            if (low > high) throw new Error(`cron field "${text}": range ${range} is reversed`);
        } else {
            low = value(range);
            high = stepText === undefined ? low : max;
        }
        for (let v = low; v <= high; v += step) values.add(v);
    }
    return { values, star: text.startsWith("*") || text.startsWith("?") };
}

const dayMs = 86_400_000;
/** The Gregorian calendar, weekdays included, repeats every 400 years: 146097 days. */
const cycleDays = 146_097;

/**
 * The longest time, in seconds, between two consecutive runs of a five-field cron schedule (UTC, as Kubernetes runs
 * CronJobs without a time zone): `0 1 * * *` gives 86400, `0 3 * * 0` 604800, `0 1 1 * *` 31 days. Throws on a
 * schedule it cannot read or that never runs.
 */
export function cronMaxIntervalSeconds(schedule: string): number {
    // Walking the 400-year cycle takes tens of milliseconds; a program (and the suite) asks for the same few schedules
    // once per tenant and per rule, so each is walked once.
    let seconds = longestIntervals.get(schedule);
    if (seconds === undefined) {
        seconds = walkCronCycle(schedule);
        longestIntervals.set(schedule, seconds);
    }
    return seconds;
}
const longestIntervals = new Map<string, number>();

function walkCronCycle(schedule: string): number {
    const fields = schedule.trim().split(/\s+/);
    if (fields.length !== 5) throw new Error(`cron schedule "${schedule}": five fields expected`);
    const minute = parseField(fields[0], 0, 59);
    const hour = parseField(fields[1], 0, 23);
    const dayOfMonth = parseField(fields[2], 1, 31);
    const month = parseField(fields[3], 1, 12, monthNames, 1);
    const dayOfWeek = parseField(fields[4], 0, 7, dayNames, 0);
    if (dayOfWeek.values.has(7)) dayOfWeek.values.add(0);

    // Minutes of the day at which it runs, on a day it runs at all.
    const times = [...hour.values].flatMap((h) => [...minute.values].map((m) => h * 60 + m)).sort((a, b) => a - b);
    let longest = 0;
    for (let i = 1; i < times.length; i++) longest = Math.max(longest, times[i] - times[i - 1]);

    const runsOn = (date: Date) => {
        if (!month.values.has(date.getUTCMonth() + 1)) return false;
        const domMatch = dayOfMonth.values.has(date.getUTCDate());
        const dowMatch = dayOfWeek.values.has(date.getUTCDay());
        return dayOfMonth.star || dayOfWeek.star ? domMatch && dowMatch : domMatch || dowMatch;
    };
    const start = Date.UTC(2000, 0, 1);
    let first: number | undefined;
    let previous: number | undefined;
    for (let day = 0; day < cycleDays; day++) {
        if (!runsOn(new Date(start + day * dayMs))) continue;
        if (previous !== undefined) longest = Math.max(longest, (day - previous) * 1440 + times[0] - times[times.length - 1]);
        first ??= day;
        previous = day;
    }
    if (first === undefined || previous === undefined) throw new Error(`cron schedule "${schedule}" never runs`);
    // From the cycle's last run day to the first of the next cycle.
    longest = Math.max(longest, (first + cycleDays - previous) * 1440 + times[0] - times[times.length - 1]);
    return longest * 60;
}

/** How old the last successful backup may be before it is missing: the schedule's longest interval plus slack. */
export function backupMaxAgeSeconds(schedule: string): number {
    return cronMaxIntervalSeconds(schedule) + backupSlackSeconds;
}

/** A Prometheus duration for whole seconds, in the largest unit that divides it: 93600 -> "26h". */
export function promDuration(seconds: number): string {
    for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]] as const) {
        if (seconds % size === 0 && seconds >= size) return `${seconds / size}${unit}`;
    }
    return `${seconds}s`;
}

// ---- rules ----

export type Severity = "critical" | "warning";

export interface AlertRule {
    alert: string;
    expr: string;
    for: string;
    labels: { severity: Severity };
    annotations: { summary: string; description: string };
}

export interface PrometheusRuleSpec {
    groups: { name: string; rules: AlertRule[] }[];
}

export interface AlertRulesInput {
    /** The Orthanc Deployment's name (`orthancDeploymentName()` of the pinned image when unset). */
    orthancDeployment?: string;
    /** Adds the rules on Orthanc's own metrics, for a Prometheus that scrapes them (see `orthancMetricsRules`). */
    orthancMetrics?: boolean;
    /** The stack's `backup.schedule` (cron, UTC); the configuration's default when the stack has none. */
    backupSchedule?: string;
    /**
     * How long before expiry cert-manager renews the server certificates (their `renewBefore`, in hours). A certificate
     * still unrenewed halfway through that window has a failing renewal; a shorter window than 14 days moves the alert
     * with it, so that short-lived certificates do not alert all their life.
     */
    certificateRenewBeforeHours?: number;
}

/** Seconds before expiry at which a certificate that cert-manager should have renewed counts as failing. */
export function certificateAlertSeconds(renewBeforeHours?: number): number {
    const cap = certificateExpiryDays * 86400;
    return renewBeforeHours === undefined ? cap : Math.min(cap, Math.floor((renewBeforeHours * 3600) / 2));
}

const rule = (alert: string, severity: Severity, forDuration: string, expr: string, summary: string, description: string): AlertRule => ({
    alert,
    expr,
    for: forDuration,
    labels: { severity },
    annotations: { summary, description },
});

/**
 * kube-state-metrics labels a Deployment's series with its name (v2.20.0 internal/store/deployment.go,
 * `deployment`), and the Deployment is named after its image (`orthancDeploymentName`): the rules select the name the
 * program gives it now. An image upgrade renames the Deployment and re-renders this rule in the same `pulumi up`.
 */
export function orthancRules(deployment: string = orthancDeploymentName()): AlertRule[] {
    return deploymentRules(deployment, "Orthanc", { summary: "Orthanc is down", consequence: "its web and DICOM ports refuse every client" });
}

/** `<alertName>ReplicasUnavailable` (warning) and `<alertName>Down` (critical) for a tenant Deployment, by its name. */
function deploymentRules(deployment: string, alertName: string, down: { summary: string; consequence: string }, what: string = alertName): AlertRule[] {
    const selector = `{deployment="${deployment}", namespace=~"${tenantNamespaces}"}`;
    return [
        rule(
            `${alertName}ReplicasUnavailable`,
            "warning",
            "10m",
            withTenant(`(kube_deployment_spec_replicas${selector} - kube_deployment_status_replicas_available${selector}) > 0`),
            `Tenant {{ $labels.tenant }}: ${what} replicas unavailable`,
            "{{ $value }} of the replicas of Deployment {{ $labels.namespace }}/{{ $labels.deployment }} (tenant {{ $labels.tenant }}) have not been available for 10 minutes.",
        ),
        rule(
            `${alertName}Down`,
            "critical",
            "2m",
            withTenant(
                `(kube_deployment_status_replicas_available${selector} == 0) and on(namespace, deployment) (kube_deployment_spec_replicas${selector} > 0)`,
            ),
            `Tenant {{ $labels.tenant }}: ${down.summary}`,
            `No replica of Deployment {{ $labels.namespace }}/{{ $labels.deployment }} (tenant {{ $labels.tenant }}) is available: ${down.consequence}.`,
        ),
    ];
}

/**
 * A tenant's gatekeeper (components/identity/identity.ts): its Deployment, by the name kube-state-metrics labels it
 * with, and whether it reaches its identity provider. Each replica asks the issuer for its discovery document every
 * 30 seconds and reports the answer as a gauge on its loopback metrics port (components/identity/gatekeeper/server.ts
 * `identityProviderUpMetric`), which its sidecar merges into the page the envoy-stats PodMonitor scrapes (labels
 * `namespace`, `pod_name`). Asked on a timer because the gatekeeper otherwise talks to the provider only when someone
 * signs in (discovery and keys are cached): the sidecar's failed-connection counters it once read stay silent through
 * an outage nobody tries to sign in during, and count a replica's first failure as no increase at all.
 */
export function gatekeeperRules(): AlertRule[] {
    const replicas = `${identityProviderUpMetric}{namespace=~"${tenantNamespaces}"}`;
    return [
        ...deploymentRules(
            gatekeeperName,
            "Gatekeeper",
            { summary: "the gatekeeper is down", consequence: "nobody can sign in, and the web UIs, viewers, REST and DICOMweb refuse every client" },
            "gatekeeper",
        ),
        rule(
            "IdentityProviderUnreachable",
            "critical",
            "5m",
            withTenant(`count by (namespace) (${replicas} == 0)`),
            "Tenant {{ $labels.tenant }}: the identity provider is unreachable",
            `{{ $value }} replica(s) of the gatekeeper {{ $labels.namespace }}/${gatekeeperName} (tenant {{ $labels.tenant }}) have not had an answer from the identity provider's discovery document for 5 minutes: sign-in and token checks fail.`,
        ),
        // The rule above can only fire on a gauge Prometheus has: a gatekeeper that runs while no replica's gauge
        // arrives (the sidecar's merge, the PodMonitor or a wall broken) would leave an outage of its provider silent.
        rule(
            "IdentityProviderCheckMissing",
            "warning",
            "15m",
            withTenant(
                `count by (namespace) (kube_deployment_status_replicas_available{deployment="${gatekeeperName}", namespace=~"${tenantNamespaces}"} > 0) unless on(namespace) count by (namespace) (${replicas})`,
            ),
            "Tenant {{ $labels.tenant }}: nobody sees whether the identity provider answers",
            `The gatekeeper {{ $labels.namespace }}/${gatekeeperName} (tenant {{ $labels.tenant }}) runs, but Prometheus has had no report from any of its replicas on the identity provider for 15 minutes: IdentityProviderUnreachable cannot fire.`,
        ),
    ];
}

/**
 * The audit trail's retention CronJob (components/data/engines/bitnamiHaAudit.ts), by name in every tenant namespace,
 * as the backup CronJobs are watched: no successful run for a day and the slack means records past their retention
 * are kept (or the job cannot reach the audit database at all).
 */
export function auditRetentionRules(): AlertRule[] {
    const cronJob = `{cronjob="${auditJobNames.retentionCronJob}", namespace=~"${tenantNamespaces}"}`;
    const maxAge = backupMaxAgeSeconds(auditRetentionSchedule);
    const age = promDuration(maxAge);
    const consequence = "audit records older than identity.audit.retentionDays are not being deleted";
    return [
        rule(
            "AuditRetentionFailed",
            "warning",
            "15m",
            withTenant(`(time() - kube_cronjob_status_last_successful_time${cronJob}) > ${maxAge}`),
            "Audit retention {{ $labels.namespace }}/{{ $labels.cronjob }} has not succeeded",
            `The last successful run of the audit retention CronJob {{ $labels.namespace }}/{{ $labels.cronjob }} (tenant {{ $labels.tenant }}) was {{ $value | humanizeDuration }} ago; its schedule "${auditRetentionSchedule}" allows ${age}: ${consequence}.`,
        ),
        rule(
            "AuditRetentionFailed",
            "warning",
            "15m",
            withTenant(`((time() - kube_cronjob_created${cronJob}) > ${maxAge}) unless on(namespace, cronjob) kube_cronjob_status_last_successful_time`),
            "Audit retention {{ $labels.namespace }}/{{ $labels.cronjob }} never succeeded",
            `The audit retention CronJob {{ $labels.namespace }}/{{ $labels.cronjob }} (tenant {{ $labels.tenant }}) has existed for {{ $value | humanizeDuration }} without one successful run; its schedule "${auditRetentionSchedule}" allows ${age}: ${consequence}.`,
        ),
    ];
}

export function postgresRules(): AlertRule[] {
    const statefulSet = `{statefulset="${postgresStatefulSet}", namespace=~"${tenantNamespaces}"}`;
    const exporter = `{namespace=~"${tenantNamespaces}", pod_name=~"${postgresStatefulSet}-[0-9]+"}`;
    const desiredNodes = `max by (namespace) (kube_statefulset_replicas${statefulSet})`;
    const desiredStandbys = `${desiredNodes} - 1`;
    // Nodes whose exporter reaches them, by role (pg_is_in_recovery()).
    const standbys = `(pg_replication_is_replica${exporter} == 1) and on(namespace, pod_name) (pg_up${exporter} == 1)`;
    const primaries = `(pg_replication_is_replica${exporter} == 0) and on(namespace, pod_name) (pg_up${exporter} == 1)`;
    const count = (expr: string) => `count by (namespace) (${expr})`;
    return [
        rule(
            "PostgresNotReady",
            "critical",
            "5m",
            withTenant(`(kube_statefulset_replicas${statefulSet} - kube_statefulset_status_replicas_ready${statefulSet}) > 0`),
            "Tenant {{ $labels.tenant }}: PostgreSQL nodes not ready",
            "{{ $value }} of the nodes of StatefulSet {{ $labels.namespace }}/{{ $labels.statefulset }} (tenant {{ $labels.tenant }}) have not been ready for 5 minutes.",
        ),
        rule(
            "PostgresNotReady",
            "critical",
            "5m",
            withTenant(`pg_up${exporter} == 0`),
            "Tenant {{ $labels.tenant }}: PostgreSQL node refuses its exporter",
            "The exporter beside PostgreSQL pod {{ $labels.namespace }}/{{ $labels.pod_name }} (tenant {{ $labels.tenant }}) has not been able to connect to it for 5 minutes.",
        ),
        rule(
            "PostgresReplicationBroken",
            "warning",
            "5m",
            withTenant(`pg_replication_lag_seconds${exporter} > ${replicationLagSeconds}`),
            "Tenant {{ $labels.tenant }}: PostgreSQL standby lagging",
            `Standby {{ $labels.namespace }}/{{ $labels.pod_name }} (tenant {{ $labels.tenant }}) has replayed nothing for {{ $value | humanizeDuration }} although WAL it received is waiting (more than ${promDuration(replicationLagSeconds)}).`,
        ),
        rule(
            "PostgresReplicationBroken",
            "critical",
            "10m",
            // A count over no series is no series: the `or` supplies 0 so that losing every standby still fires.
            withTenant(`(${desiredStandbys}) - ((${count(standbys)}) or on(namespace) ((${desiredStandbys}) * 0)) > 0`),
            "Tenant {{ $labels.tenant }}: PostgreSQL standby missing",
            `{{ $value }} standby of StatefulSet {{ $labels.namespace }}/${postgresStatefulSet} (tenant {{ $labels.tenant }}) is not up in recovery: the replicas minus the primary should be.`,
        ),
        rule(
            "PostgresReplicationBroken",
            "critical",
            "5m",
            withTenant(`((${count(primaries)}) or on(namespace) ((${desiredNodes} > 0) * 0)) != 1`),
            "Tenant {{ $labels.tenant }}: PostgreSQL has no single primary",
            `{{ $value }} nodes of StatefulSet {{ $labels.namespace }}/${postgresStatefulSet} (tenant {{ $labels.tenant }}) act as primary; exactly one should (none reachable, split brain, or a failover that did not complete).`,
        ),
    ];
}

/**
 * The CloudNativePG engine, from what its instance manager serves on port 9187 (cloudnative-pg v1.30.0):
 * `cnpg_collector_up` (pkg/management/postgres/webserver/metricserver/pg_collector.go: 1 while PostgreSQL answers)
 * and the operator's default `pg_replication` query (config/manager/default-monitoring.yaml, installed by the chart as
 * the `cnpg-default-monitoring` ConfigMap): `cnpg_pg_replication_lag` (seconds since the last replayed transaction,
 * 0 when caught up), `_in_recovery`, `_is_wal_receiver_up`, `_streaming_replicas` (WAL senders of the instance).
 * Scraped by `cnpgPodMonitorSpec`, whose `up` tells an instance that stopped answering at all.
 */
export function cloudnativePgRules(): AlertRule[] {
    const instance = `{job="${cnpgMetricsJob}", namespace=~"${tenantNamespaces}"}`;
    const reachable = `(cnpg_collector_up${instance} == 1)`;
    const primaries = `(cnpg_pg_replication_in_recovery${instance} == 0) and on(namespace, pod_name) ${reachable}`;
    return [
        rule(
            "PostgresNotReady",
            "critical",
            "5m",
            withTenant(`up${instance} == 0`),
            "Tenant {{ $labels.tenant }}: CloudNativePG instance unreachable",
            "Prometheus has not reached the instance manager of pod {{ $labels.namespace }}/{{ $labels.pod_name }} (tenant {{ $labels.tenant }}) for 5 minutes.",
        ),
        rule(
            "PostgresNotReady",
            "critical",
            "5m",
            withTenant(`cnpg_collector_up${instance} == 0`),
            "Tenant {{ $labels.tenant }}: PostgreSQL down on a CloudNativePG instance",
            "The instance manager of pod {{ $labels.namespace }}/{{ $labels.pod_name }} (tenant {{ $labels.tenant }}) has not reached its PostgreSQL for 5 minutes.",
        ),
        rule(
            "PostgresReplicationBroken",
            "warning",
            "5m",
            withTenant(`(cnpg_pg_replication_lag${instance} > ${replicationLagSeconds}) and on(namespace, pod_name) (cnpg_pg_replication_in_recovery${instance} == 1)`),
            "Tenant {{ $labels.tenant }}: PostgreSQL standby lagging",
            `Standby {{ $labels.namespace }}/{{ $labels.pod_name }} (tenant {{ $labels.tenant }}) has replayed nothing for {{ $value | humanizeDuration }} although WAL it received is waiting (more than ${promDuration(replicationLagSeconds)}).`,
        ),
        rule(
            "PostgresReplicationBroken",
            "critical",
            "5m",
            withTenant(`(cnpg_pg_replication_in_recovery${instance} == 1) and on(namespace, pod_name) (cnpg_pg_replication_is_wal_receiver_up${instance} == 0)`),
            "Tenant {{ $labels.tenant }}: PostgreSQL standby not streaming",
            "Standby {{ $labels.namespace }}/{{ $labels.pod_name }} (tenant {{ $labels.tenant }}) has had no WAL receiver for 5 minutes: it is not streaming from the primary.",
        ),
        rule(
            "PostgresReplicationBroken",
            "critical",
            "10m",
            withTenant(
                `(count by (namespace) ${reachable} - 1) - max by (namespace) (cnpg_pg_replication_streaming_replicas${instance} and on(namespace, pod_name) (${primaries})) > 0`,
            ),
            "Tenant {{ $labels.tenant }}: PostgreSQL standby missing",
            "{{ $value }} of the reachable standbys of the CloudNativePG cluster in {{ $labels.namespace }} (tenant {{ $labels.tenant }}) do not stream from its primary.",
        ),
        rule(
            "PostgresReplicationBroken",
            "critical",
            "5m",
            withTenant(`((count by (namespace) (${primaries})) or on(namespace) (count by (namespace) (up${instance}) * 0)) != 1`),
            "Tenant {{ $labels.tenant }}: PostgreSQL has no single primary",
            "{{ $value }} instances of the CloudNativePG cluster in {{ $labels.namespace }} (tenant {{ $labels.tenant }}) act as primary; exactly one should (none reachable, split brain, or a failover that did not complete).",
        ),
    ];
}

/** Orthanc 1.13.0 counts failed jobs as orthanc_jobs_total_failed; 1.12 reported orthanc_jobs_failed (read from both builds). */
const orthancFailedJobs = "orthanc_jobs_total_failed|orthanc_jobs_failed";

/**
 * Orthanc's own metrics (`/tools/metrics-prometheus`: orthanc_up_time_s, orthanc_jobs_total_failed,
 * orthanc_count_instances, orthanc_storage_*, ...), where a site scrapes them as `job="orthanc"` with the tenant's
 * namespace and pod_name. Nothing in the cluster does yet (README, "Alerts and where they go"): the endpoint needs
 * Orthanc's credentials and sits behind STRICT mutual TLS, which Istio's metrics merging does not authenticate to.
 */
export function orthancMetricsRules(): AlertRule[] {
    const replica = `{job="${orthancMetricsJob}", namespace=~"${tenantNamespaces}"}`;
    return [
        rule(
            "OrthancReplicaUnreachable",
            "warning",
            "2m",
            withTenant(`up${replica} == 0`),
            "Tenant {{ $labels.tenant }}: an Orthanc replica does not answer",
            "Orthanc replica {{ $labels.namespace }}/{{ $labels.pod_name }} (tenant {{ $labels.tenant }}) has not served its metrics for 2 minutes: it is down or hung.",
        ),
        rule(
            "OrthancJobsFailing",
            "warning",
            "1m",
            // Grows by one per failed job (1.12's gauge of remembered failures shrinks as history is pruned, which
            // increase() reads as a restart: it can only over-count).
            withTenant(`increase({__name__=~"${orthancFailedJobs}", job="${orthancMetricsJob}", namespace=~"${tenantNamespaces}"}[15m]) > 0`),
            "Tenant {{ $labels.tenant }}: Orthanc jobs failing",
            "Jobs (transfers, retrievals, modifications) failed on Orthanc replica {{ $labels.namespace }}/{{ $labels.pod_name }} (tenant {{ $labels.tenant }}) in the last 15 minutes: see its /jobs.",
        ),
    ];
}

export function backupRules(input: AlertRulesInput = {}): AlertRule[] {
    const schedule = input.backupSchedule ?? defaultBackupSchedule;
    const maxAge = backupMaxAgeSeconds(schedule);
    const age = promDuration(maxAge);
    const labelled = `on(namespace, cronjob) kube_cronjob_labels{${backupCronJobMetricLabel}="${backupCronJobLabel.value}"}`;
    const cnpgBackup = `{__name__=~"barman_cloud_cloudnative_pg_io_last_available_backup_timestamp|cnpg_collector_last_available_backup_timestamp", namespace=~"${tenantNamespaces}"}`;
    return [
        rule(
            "BackupTooOld",
            "critical",
            "15m",
            withTenant(`((time() - kube_cronjob_status_last_successful_time) > ${maxAge}) and ${labelled}`),
            "Backup {{ $labels.namespace }}/{{ $labels.cronjob }} is too old",
            `The last successful run of backup CronJob {{ $labels.namespace }}/{{ $labels.cronjob }} (tenant {{ $labels.tenant }}) was {{ $value | humanizeDuration }} ago; its schedule "${schedule}" allows ${age}.`,
        ),
        rule(
            "BackupTooOld",
            "critical",
            "15m",
            withTenant(`((time() - kube_cronjob_created) > ${maxAge}) unless on(namespace, cronjob) kube_cronjob_status_last_successful_time and ${labelled}`),
            "Backup {{ $labels.namespace }}/{{ $labels.cronjob }} never succeeded",
            `Backup CronJob {{ $labels.namespace }}/{{ $labels.cronjob }} (tenant {{ $labels.tenant }}) has existed for {{ $value | humanizeDuration }} without one successful run; its schedule "${schedule}" allows ${age}.`,
        ),
        rule(
            "BackupTooOld",
            "critical",
            "15m",
            withTenant(`(time() - max by (namespace) (${cnpgBackup} > 0)) > ${maxAge}`),
            "Tenant {{ $labels.tenant }}: CloudNativePG backup too old",
            `The last backup of the CloudNativePG cluster in {{ $labels.namespace }} (tenant {{ $labels.tenant }}) is {{ $value | humanizeDuration }} old; the schedule "${schedule}" allows ${age}.`,
        ),
        rule(
            "BackupTooOld",
            "critical",
            // 0 means "no successful backup": the plugin reports 0 until its object store lists one
            // (plugin-barman-cloud v0.13.0 internal/cnpgi/instance/metrics.go). Held for as long as the schedule allows,
            // so that a new cluster's first backup has its chance.
            age,
            withTenant(`max by (namespace) (${cnpgBackup}) == 0`),
            "Tenant {{ $labels.tenant }}: CloudNativePG backup never succeeded",
            `The CloudNativePG cluster in {{ $labels.namespace }} (tenant {{ $labels.tenant }}) has reported no successful backup for ${age}, as long as its schedule "${schedule}" allows.`,
        ),
    ];
}

/** The prefix of the VolumeSnapshot metrics kube-state-metrics is configured to serve (`kubeStateMetricsValues`). */
export const volumeSnapshotMetricPrefix = "korthweb_volumesnapshot";

/**
 * kube-state-metrics' custom resource configuration (CustomResourceStateMetrics, v2.20.0
 * docs/metrics/extend/customresourcestate-metrics.md): per VolumeSnapshot, when it was taken and whether it is ready,
 * labelled with its namespace, name and source claim. Whatever takes the snapshots (a CronJob of the site's, the
 * provider's backup, a snapshot scheduler), the cluster sees them as these objects.
 */
export function volumeSnapshotMetricsConfig(): Record<string, unknown> {
    const gauge = (name: string, help: string, field: string) => ({ name, help, each: { type: "Gauge", gauge: { path: ["status"], valueFrom: [field] } } });
    return {
        kind: "CustomResourceStateMetrics",
        spec: {
            resources: [
                {
                    groupVersionKind: { group: "snapshot.storage.k8s.io", version: "v1", kind: "VolumeSnapshot" },
                    metricNamePrefix: volumeSnapshotMetricPrefix,
                    labelsFromPath: { namespace: ["metadata", "namespace"], volumesnapshot: ["metadata", "name"], persistentvolumeclaim: ["spec", "source", "persistentVolumeClaimName"] },
                    metrics: [
                        gauge("creation_time", "When the snapshot was taken (Unix time, status.creationTime).", "creationTime"),
                        gauge("ready_to_use", "1 when the snapshot can be restored from (status.readyToUse).", "readyToUse"),
                    ],
                },
            ],
        },
    };
}

/**
 * Backups of the files of `filesystem` storage: the snapshots of the tenant's ReadWriteMany claim. They are expected
 * as often as the database backups (README: take the snapshot after the dump), so the same schedule's allowance applies.
 */
export function fileBackupRules(input: AlertRulesInput = {}): AlertRule[] {
    const schedule = input.backupSchedule ?? defaultBackupSchedule;
    const maxAge = backupMaxAgeSeconds(schedule);
    const age = promDuration(maxAge);
    const claim = `persistentvolumeclaim="${storageClaimName}", namespace=~"${tenantNamespaces}"`;
    const ready = `(${volumeSnapshotMetricPrefix}_ready_to_use{${claim}} == 1)`;
    return [
        rule(
            "FilesBackupTooOld",
            "critical",
            "15m",
            withTenant(`(time() - max by (namespace, persistentvolumeclaim) (${volumeSnapshotMetricPrefix}_creation_time{${claim}} and on(namespace, volumesnapshot) ${ready})) > ${maxAge}`),
            "Tenant {{ $labels.tenant }}: snapshot of the image volume too old",
            `The newest ready VolumeSnapshot of claim {{ $labels.namespace }}/{{ $labels.persistentvolumeclaim }} (tenant {{ $labels.tenant }}, its DICOM files) was taken {{ $value | humanizeDuration }} ago; the schedule "${schedule}" allows ${age}.`,
        ),
        rule(
            "FilesBackupTooOld",
            "critical",
            "15m",
            withTenant(`((time() - kube_persistentvolumeclaim_created{${claim}}) > ${maxAge}) unless on(namespace, persistentvolumeclaim) ${ready}`),
            "Tenant {{ $labels.tenant }}: image volume never snapshotted",
            `Claim {{ $labels.namespace }}/{{ $labels.persistentvolumeclaim }} (tenant {{ $labels.tenant }}, its DICOM files) has existed for {{ $value | humanizeDuration }} without a ready VolumeSnapshot; the schedule "${schedule}" allows ${age}.`,
        ),
    ];
}

export function certificateRules(renewBeforeHours?: number): AlertRule[] {
    const seconds = certificateAlertSeconds(renewBeforeHours);
    return [
        rule(
            "CertificateExpiresSoon",
            "warning",
            "1h",
            withTenant(`(certmanager_certificate_expiration_timestamp_seconds - time()) < ${seconds}`),
            "Certificate {{ $labels.namespace }}/{{ $labels.name }} expires soon",
            `cert-manager Certificate {{ $labels.namespace }}/{{ $labels.name }} (tenant {{ $labels.tenant }}, issuer {{ $labels.issuer_kind }} {{ $labels.issuer_name }}) expires in {{ $value | humanizeDuration }}, well past the time cert-manager should have renewed it: its renewal is failing.`,
        ),
    ];
}

/** Every korthweb alert, one group per concern. */
export function alertRulesSpec(input: AlertRulesInput = {}): PrometheusRuleSpec {
    return {
        groups: [
            { name: "korthweb.orthanc", rules: orthancRules(input.orthancDeployment) },
            ...(input.orthancMetrics ? [{ name: "korthweb.orthanc-metrics", rules: orthancMetricsRules() }] : []),
            { name: "korthweb.identity", rules: gatekeeperRules() },
            { name: "korthweb.audit", rules: auditRetentionRules() },
            { name: "korthweb.postgres", rules: postgresRules() },
            { name: "korthweb.cloudnative-pg", rules: cloudnativePgRules() },
            { name: "korthweb.backups", rules: backupRules(input) },
            { name: "korthweb.file-backups", rules: fileBackupRules(input) },
            { name: "korthweb.certificates", rules: certificateRules(input.certificateRenewBeforeHours) },
        ],
    };
}

/**
 * kube-state-metrics as the alerts need it (values of the kube-state-metrics 8.4.0 subchart): only the collectors
 * they read, the backup label exported on kube_cronjob_labels (by default it carries no object label at all), and the
 * VolumeSnapshot metrics with the right to list and watch them (charts/kube-state-metrics 8.4.0
 * templates/crs-configmap.yaml renders `customResourceState.config` into the file the Deployment passes with
 * --custom-resource-state-config-file; templates/role.yaml adds `rbac.extraRules` and the CRD list/watch it needs).
 * Where the VolumeSnapshot CRD is not installed, kube-state-metrics' discovery serves none of these series.
 */
export function kubeStateMetricsValues(): Record<string, unknown> {
    return {
        collectors: ["cronjobs", "deployments", "jobs", "persistentvolumeclaims", "statefulsets"],
        customResourceState: { enabled: true, config: volumeSnapshotMetricsConfig() },
        rbac: { extraRules: [{ apiGroups: ["snapshot.storage.k8s.io"], resources: ["volumesnapshots"], verbs: ["list", "watch"] }] },
        metricLabelsAllowlist: [`cronjobs=[${backupCronJobLabel.key}]`],
        resources: { requests: { cpu: "10m", memory: "64Mi" }, limits: { memory: "256Mi" } },
    };
}
