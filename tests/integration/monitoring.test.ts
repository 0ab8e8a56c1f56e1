/**
 * The program's alerts on real Prometheus and Alertmanager (Debian's packages, loopback only).
 *
 * Run for real: the PrometheusRule groups `alertRulesSpec` builds, in a real Prometheus scraping a real
 * postgres_exporter on the suite's PostgreSQL and the `/tools/metrics-prometheus` of real Orthanc replicas (with the
 * admin's basic auth, which Orthanc requires), alerting a real Alertmanager configured by `alertmanagerConfig` from a
 * stack's `observability.alerting`, whose webhook receiver is served here over HTTPS with a bearer token read from a
 * file, as the cluster's Secret provides it. Then a replica is killed and PostgreSQL stopped, and the alerts arrive.
 *
 * What differs from the cluster, each for a reason:
 * - Scrape and evaluation every second, every rule's `for` set to 1s and Alertmanager's grouping delays to 1s: the
 *   cluster's durations (2m to 26h) keep alerts from flapping; here they would make the test wait for hours. The
 *   durations themselves are checked below with `promtool test rules`, on the rules as rendered.
 * - Static targets with the labels the cluster's monitors give (namespace, pod_name), their values from the rendered
 *   stack (namespaces, the Deployment's and the StatefulSet's names), since there is no Kubernetes discovery here.
 * - Alertmanager trusts the webhook's self-signed certificate through SSL_CERT_FILE; its configuration is untouched.
 *
 * Also run for real: a tenant's gatekeeper with its rendered configuration against npm's oidc-provider, its gauge of
 * whether the provider answers scraped by a real Prometheus, and IdentityProviderUnreachable delivered by a real
 * Alertmanager once the provider stops.
 *
 * Series only a cluster has (kube-state-metrics, cert-manager, CloudNativePG's instance manager) go through
 * `promtool test rules` with input series whose label values come from the rendered dev, cnpg and external stacks.
 */
import assert from "assert";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "fs";
import { join } from "path";
import { stringify } from "yaml";
import { parseStackConfig } from "../../components/config/load";
import { AlertRule, alertRulesSpec, backupCronJobLabel, orthancMetricsJob, PrometheusRuleSpec } from "../../components/platform/alerts";
import { alertmanagerConfig, alertmanagerCredentials, unroutedReceiver } from "../../components/platform/alertmanager";
import type { GatekeeperConfig } from "../../components/identity/contract";
import { identityProviderUpMetric, metricsPath } from "../../components/identity/gatekeeper/server";
import { rootCaProfile, serverProfile } from "../../components/pki/profile";
import { startIdentityProvider, type TestIdentityProvider } from "./support/identityProvider";
import { issue } from "./support/pki";
import { RecordedResource } from "../support/mocks";
import { RenderedStack, allStacks, parsedStackFile, releases, renderStack } from "../support/stacks";
import kubePrometheusStackDefaults from "../upstream/kubePrometheusStackDefaults.json";
import { bitnamiPostgresStatefulSet, helmCoalesce, receiverNotifies, routeReceivers } from "../upstream/monitoring";
import { describeVersions, Replica } from "./support/orthanc";
import { assertPrerequisites } from "./support/prerequisites";
import { assertMonitoringBinaries, monitoringBinaries, query, startAlertmanager, startPostgresExporter, startPrometheus, startWebhook, versionOf, Webhook } from "./support/monitoring";
import { type Child, freePort, Resources, run, sleep, waitUntil } from "./support/processes";
import { startTenantStack, TenantStack, testStackConfig } from "./support/stack";

const objectsOf = (stack: RenderedStack, kind: string) => stack.resources.filter((r) => r.type.startsWith("kubernetes:") && r.type.endsWith(`:${kind}`));
const nsOf = (r: RecordedResource) => r.inputs.metadata?.namespace ?? r.inputs.namespace;

/** The rendered stack's names for a tenant: its namespace, its Orthanc Deployment, its PostgreSQL StatefulSet. */
function renderedNames(stack: RenderedStack, tenant: string) {
    const namespace = objectsOf(stack, "Namespace")
        .map((r) => r.inputs.metadata.name as string)
        .find((name) => name.startsWith(`${tenant}-`) && objectsOf(stack, "Deployment").some((d) => nsOf(d) === name))!;
    const deployment = objectsOf(stack, "Deployment").find((r) => nsOf(r) === namespace && r.inputs.metadata.labels?.app === "orthanc")!.inputs.metadata.name as string;
    const release = releases(stack).find((r) => nsOf(r) === namespace && r.inputs.chart.includes("postgresql-ha"));
    const statefulSet = release ? bitnamiPostgresStatefulSet(release.inputs.name, release.inputs.values) : undefined;
    return { namespace, deployment, statefulSet };
}

const renderedRules = (stack: RenderedStack): PrometheusRuleSpec => objectsOf(stack, "PrometheusRule")[0].inputs.spec;

/**
 * The rendered stack's names for a tenant's identity objects, found by what they are rather than by the constants the
 * rules use: the Deployment that runs the gatekeeper's server.ts, the CronJob that is not a backup.
 */
function renderedIdentityNames(stack: RenderedStack, tenant: string) {
    const { namespace } = renderedNames(stack, tenant);
    const gatekeeper = objectsOf(stack, "Deployment").find((r) => nsOf(r) === namespace && r.inputs.spec.template.spec.containers[0].command?.some((arg: string) => arg.endsWith("/server.ts")))!;
    const auditRetention = objectsOf(stack, "CronJob").find((r) => nsOf(r) === namespace && r.inputs.metadata.labels?.[backupCronJobLabel.key] === undefined)!;
    assert.ok(gatekeeper && auditRetention, `${tenant}: a gatekeeper and an audit retention CronJob`);
    const configMap = objectsOf(stack, "ConfigMap").find((r) => nsOf(r) === namespace && r.inputs.data?.["server.ts"] !== undefined)!;
    return { namespace, gatekeeper: gatekeeper.inputs.metadata.name as string, auditRetention: auditRetention.inputs.metadata.name as string, gatekeeperConfig: JSON.parse(configMap.inputs.data["config.json"]) as GatekeeperConfig };
}

/**
 * A site's alerting as the cluster runs it, quickened (see the file comment): a webhook receiver taking `bearerToken`,
 * Alertmanager configured by `alertmanagerConfig` from the stack schema's `observability.alerting` for `tenants`, and
 * Prometheus scraping `scrapeConfigs` and evaluating `spec`, each rule's `for` at 1 s, sending to that Alertmanager.
 */
async function startAlerting(
    suite: Resources,
    tenants: { name: string; displayName: string }[],
    bearerToken: string,
    spec: PrometheusRuleSpec,
    scrapeConfigs: Record<string, unknown>[],
    files: Record<string, string> = {},
): Promise<{ webhook: Webhook; prometheus: Awaited<ReturnType<typeof startPrometheus>> }> {
    const webhook = await startWebhook(suite, bearerToken);
    const alerting = parseStackConfig({
        domain: "orthweb.example.org",
        ingress: { serviceType: "ClusterIP" },
        tenants: tenants.map((t) => ({ name: t.name, displayName: t.displayName })),
        observability: { alerting: { receivers: [{ name: "site", webhook: { url: webhook.url, bearerToken } }] } },
    }).observability.alerting;
    const secrets = suite.tempDir("alertmanager-secrets");
    for (const [key, value] of Object.entries(alertmanagerCredentials(alerting))) writeFileSync(join(secrets, key), value, { mode: 0o600 });
    const alertmanager = await startAlertmanager(
        suite,
        alertmanagerConfig({ alerting, secretsDirectory: secrets, timing: { groupWait: "1s", groupInterval: "1s", repeatInterval: "1h" } }),
        { SSL_CERT_FILE: webhook.caFile },
    );
    const fast = { groups: spec.groups.map((g) => ({ ...g, interval: "1s", rules: g.rules.map((r) => ({ ...r, for: "1s" })) })) };
    const prometheus = await startPrometheus(
        suite,
        {
            global: { scrape_interval: "1s", evaluation_interval: "1s" },
            rule_files: ["rules.yml"],
            alerting: { alertmanagers: [{ static_configs: [{ targets: [`127.0.0.1:${alertmanager.port}`] }] }] },
            scrape_configs: scrapeConfigs,
        },
        { ...files, "rules.yml": stringify(fast) },
    );
    return { webhook, prometheus };
}

describe("alerts on real Prometheus and Alertmanager (postgres_exporter, Orthanc's metrics, a webhook receiver)", function () {
    const suite = new Resources();
    let dev: RenderedStack;
    let tenantStack: TenantStack;
    const replicas: Replica[] = [];
    let webhook: Webhook;
    let prometheus: Awaited<ReturnType<typeof startPrometheus>>;
    let names: ReturnType<typeof renderedNames>;
    const bearerToken = `token-${Date.now()}`;

    before(async function () {
        assertPrerequisites();
        assertMonitoringBinaries();
        for (const binary of Object.values(monitoringBinaries)) console.log(`      ${binary}: ${versionOf(binary)}`);
        dev = await renderStack("dev");
        assert.equal(dev.error, undefined);
        const tenant = testStackConfig().tenants[0];
        names = renderedNames(dev, tenant.name);

        tenantStack = await startTenantStack(suite);
        for (const name of ["a", "b"]) replicas.push(await tenantStack.startReplica(suite, name));
        console.log(`      ${await describeVersions(replicas[0])}`);
        const { postgres } = tenantStack;
        const exporter = await startPostgresExporter(
            suite,
            `postgresql://${postgres.user}:${encodeURIComponent(postgres.password)}@127.0.0.1:${postgres.port}/${postgres.database}?sslmode=disable`,
        );

        // A site's alerting configuration, through the program's own schema and builder.
        // The rules as built for the cluster, plus Orthanc's own metrics; `for` shortened (see the file comment).
        const spec = alertRulesSpec({ orthancMetrics: true, orthancDeployment: names.deployment });
        const admin = tenantStack.admin;
        ({ webhook, prometheus } = await startAlerting(
            suite,
            testStackConfig().tenants,
            bearerToken,
            spec,
            [
                {
                    // What the Envoy PodMonitor gets from the PostgreSQL pod's merged metrics.
                    job_name: "envoy-stats",
                    // postgres_exporter takes a second to report a PostgreSQL it cannot reach (its connection
                    // retry), longer than a 1 s scrape may last.
                    scrape_interval: "3s",
                    scrape_timeout: "3s",
                    static_configs: [{ targets: [`127.0.0.1:${exporter.port}`], labels: { namespace: names.namespace, pod_name: `${names.statefulSet}-0` } }],
                },
                {
                    job_name: orthancMetricsJob,
                    metrics_path: "/tools/metrics-prometheus",
                    basic_auth: { username: admin.user, password_file: "orthanc-password" },
                    static_configs: replicas.map((replica) => ({
                        targets: [`127.0.0.1:${replica.httpPort}`],
                        labels: { namespace: names.namespace, pod_name: `${names.deployment}-${replica.name}` },
                    })),
                },
            ],
            { "orthanc-password": admin.password },
        ));
        // Prometheus reads the rule and password files relative to its configuration's directory.
        await waitForValue("every target up", `count(up == 1)`, 3);
    });

    after(async function () {
        await suite.release();
    });

    async function waitForValue(what: string, expr: string, expected: number, timeoutMs = 60_000) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
            const result = await query(prometheus, expr);
            if (result.length > 0 && Number(result[0].value[1]) === expected) return;
            if (Date.now() > deadline) throw new Error(`${what}: ${expr} gave ${JSON.stringify(result)}\n${prometheus.child.logTail()}`);
            await new Promise((resolve) => setTimeout(resolve, 250));
        }
    }

    it("scrapes Orthanc's own metrics with the admin's credentials, and PostgreSQL through the exporter", async function () {
        const instances = await query(prometheus, `orthanc_count_instances{namespace="${names.namespace}"}`);
        assert.deepEqual(instances.map((s) => s.metric.pod_name).sort(), replicas.map((r) => `${names.deployment}-${r.name}`).sort());
        const pgUp = await query(prometheus, `pg_up{namespace="${names.namespace}", pod_name="${names.statefulSet}-0"}`);
        assert.equal(pgUp[0]?.value[1], "1");
        const none = (await replicas[0].request("/tools/metrics-prometheus", { credentials: null })).status;
        assert.equal(none, 401, "Orthanc serves its metrics to authenticated clients only");
    });

    it("delivers OrthancReplicaUnreachable for a killed replica, and only for it, to the webhook with its bearer token", async function () {
        await replicas[1].child.kill();
        const alert = await webhook.waitFor("OrthancReplicaUnreachable", (a) => a.labels.alertname === "OrthancReplicaUnreachable" && a.status === "firing");
        assert.equal(alert.labels.pod_name, `${names.deployment}-${replicas[1].name}`);
        assert.equal(alert.labels.tenant, tenantStack.tenant.name);
        assert.equal(alert.labels.severity, "warning");
        assert.match(alert.annotations.summary, new RegExp(`Tenant ${tenantStack.tenant.name}: `));
        assert.ok(!webhook.delivered.some((a) => a.labels.alertname === "OrthancReplicaUnreachable" && a.labels.pod_name !== alert.labels.pod_name));
        assert.equal(webhook.refused, 0, "Alertmanager sent the token it read from the credentials file");
    });

    it("delivers PostgresNotReady when PostgreSQL stops, naming the tenant and the node", async function () {
        // A fast shutdown (SIGINT): the replica still connected would hold a smart shutdown (SIGTERM) open.
        await tenantStack.postgres.child.stop("SIGINT");
        await waitForValue("the exporter reports PostgreSQL down", `pg_up{namespace="${names.namespace}"}`, 0);
        const alert = await webhook.waitFor("PostgresNotReady", (a) => a.labels.alertname === "PostgresNotReady" && a.status === "firing");
        assert.equal(alert.labels.severity, "critical");
        assert.equal(alert.labels.tenant, tenantStack.tenant.name);
        assert.equal(alert.labels.pod_name, `${names.statefulSet}-0`);
        assert.match(alert.annotations.description, new RegExp(`${names.namespace}/${names.statefulSet}-0`));
    });
});

describe("IdentityProviderUnreachable from a real gatekeeper and oidc-provider, through real Prometheus and Alertmanager", function () {
    // The gatekeeper as the cluster starts it (`node server.ts config.json`, the file alone in a directory as the
    // ConfigMap mounts it), with the configuration the dev stack renders for bhs, except what only loopback can give:
    // its ports, the provider's issuer (npm's oidc-provider over TLS from a test root), no audit database (stdout), and
    // a check every second instead of every 30 s. Prometheus scrapes its loopback metrics page directly, with the
    // labels the envoy-stats PodMonitor gives (no Envoy here: in the cluster the sidecar's agent fetches the page and
    // serves it on 15020, tests/upstream/monitoring.ts). The rendered identity rules, their `for` set to 1 s.
    this.timeout(180_000);
    const suite = new Resources();
    const bearerToken = `token-${Date.now()}`;
    let idp: TestIdentityProvider;
    let gatekeeper: Child;
    let prometheus: Awaited<ReturnType<typeof startPrometheus>>;
    let webhook: Webhook;
    let names: ReturnType<typeof renderedIdentityNames>;
    const podName = () => `${names.gatekeeper}-a`;

    before(async function () {
        assertMonitoringBinaries();
        const dev = await renderStack("dev");
        assert.equal(dev.error, undefined);
        names = renderedIdentityNames(dev, "bhs");
        assert.ok(names.gatekeeperConfig.metrics, "the rendered gatekeeper reports on its identity provider");
        const dir = suite.tempDir("identity-provider-unreachable");
        const pki = testStackConfig().pki;
        const root = await issue(dir, "root", { profile: rootCaProfile(pki), subject: { commonName: "korthweb test root (monitoring)", organization: pki.organization } });
        const leaf = await issue(dir, "idp", { profile: serverProfile(pki), subject: { commonName: "localhost", organization: pki.organization }, issuer: root, subjectAltNames: ["localhost"] });
        idp = await startIdentityProvider(suite, {
            tls: { keyPem: readFileSync(leaf.keyFile, "utf8"), certPem: readFileSync(leaf.certFile, "utf8"), caPem: readFileSync(root.certFile, "utf8") },
            users: {},
            apiClients: [],
            resources: [],
        });

        const mount = join(dir, "gatekeeper");
        mkdirSync(mount);
        copyFileSync(join(__dirname, "../../components/identity/gatekeeper/server.ts"), join(mount, "server.ts"));
        const [port, metricsPort] = [await freePort(), await freePort()];
        const { audit, ...rendered } = names.gatekeeperConfig;
        const config: GatekeeperConfig = {
            ...rendered,
            port,
            orthancUrl: `http://127.0.0.1:${await freePort()}`,
            oidc: { ...rendered.oidc, issuer: idp.issuer, discoveryUrl: undefined },
            audit: { retentionDays: audit.retentionDays },
            metrics: { port: metricsPort, providerCheckSeconds: 1 },
        };
        writeFileSync(join(mount, "config.json"), JSON.stringify(config, null, 2));
        gatekeeper = suite.start("gatekeeper", process.execPath, [join(mount, "server.ts"), join(mount, "config.json")], {
            env: {
                PATH: process.env.PATH,
                NODE_EXTRA_CA_CERTS: root.certFile,
                GATEKEEPER_OIDC_CLIENT_SECRET: "unused",
                GATEKEEPER_SESSION_KEY: Buffer.alloc(32, 7).toString("base64"),
                GATEKEEPER_ORTHANC_PASSWORD: "unused",
            },
            logFile: join(dir, "gatekeeper.log"),
        });
        await waitUntil("the gatekeeper answers", gatekeeper, async () => (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status === 200, () => false)));

        const identity = { groups: renderedRules(dev).groups.filter((g) => g.name === "korthweb.identity") };
        ({ webhook, prometheus } = await startAlerting(suite, [{ name: "bhs", displayName: "B" }], bearerToken, identity, [
            { job_name: "envoy-stats", metrics_path: metricsPath, static_configs: [{ targets: [`127.0.0.1:${metricsPort}`], labels: { namespace: names.namespace, pod_name: podName() } }] },
        ]));
    });

    after(async function () {
        await suite.release();
    });

    async function waitForGauge(expected: number) {
        const expr = `${identityProviderUpMetric}{namespace="${names.namespace}", pod_name="${podName()}"}`;
        const deadline = Date.now() + 60_000;
        for (;;) {
            const result = await query(prometheus, expr);
            if (result.length > 0 && Number(result[0].value[1]) === expected) return;
            if (Date.now() > deadline) throw new Error(`${expr} gave ${JSON.stringify(result)}\n${gatekeeper.logTail(20)}\n${prometheus.child.logTail()}`);
            await sleep(250);
        }
    }

    it("reports the provider up while it answers, and no alert goes out", async function () {
        await waitForGauge(1);
        // Several evaluations with the gauge at 1 (each rule's `for` is 1 s here).
        await sleep(4_000);
        assert.deepEqual(await query(prometheus, `ALERTS{alertname="IdentityProviderUnreachable"}`), []);
        assert.ok(!webhook.delivered.some((a) => a.labels.alertname === "IdentityProviderUnreachable"));
    });

    it("reports it down once the provider stops, and Alertmanager delivers IdentityProviderUnreachable for the tenant", async function () {
        await idp.stop();
        await waitForGauge(0);
        const alert = await webhook.waitFor("IdentityProviderUnreachable", (a) => a.labels.alertname === "IdentityProviderUnreachable" && a.status === "firing");
        assert.equal(alert.labels.tenant, "bhs");
        assert.equal(alert.labels.namespace, names.namespace);
        assert.equal(alert.labels.severity, "critical");
        assert.match(alert.annotations.description, new RegExp(`^1 replica\\(s\\) of the gatekeeper ${names.namespace}/${names.gatekeeper} \\(tenant bhs\\)`));
        assert.match(gatekeeper.logTail(20), /identity provider https:\/\/localhost:\d+ does not answer/);
        assert.equal(webhook.refused, 0);
    });
});

/** One `promtool test rules` case: input series, then the alerts expected at a time. */
interface RuleTest {
    interval: string;
    input_series: { series: string; values: string }[];
    alert_rule_test: { eval_time: string; alertname: string; exp_alerts: { exp_labels: Record<string, string>; exp_annotations: Record<string, string> }[] }[];
}

describe("the rendered rules on series only a cluster has (promtool test rules)", function () {
    const suite = new Resources();
    let dir: string;
    before(assertMonitoringBinaries);
    after(() => suite.release());

    async function promtoolTest(spec: PrometheusRuleSpec, tests: RuleTest[]) {
        dir ??= suite.tempDir("promtool");
        const caseDir = join(dir, String(Date.now() + Math.random()));
        mkdirSync(caseDir);
        writeFileSync(join(caseDir, "rules.yml"), stringify(spec));
        writeFileSync(join(caseDir, "tests.yml"), stringify({ rule_files: ["rules.yml"], evaluation_interval: "1m", tests }));
        const result = await run(monitoringBinaries.promtool, ["test", "rules", join(caseDir, "tests.yml")]);
        assert.equal(result.code, 0, result.stdout + result.stderr);
    }

    const labelsOf = (rule: AlertRule, extra: Record<string, string>) => ({ severity: rule.labels.severity, ...extra });
    /** What promtool must find: the alert's labels, and the rule's annotations with those labels and `value` filled in. */
    const expected = (rule: AlertRule, labels: Record<string, string>, value = "") => {
        const fill = (template: string) =>
            template.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, name) => labels[name] ?? "").replace(/\{\{ \$value( \| humanizeDuration)? \}\}/g, value);
        return { exp_labels: labels, exp_annotations: { summary: fill(rule.annotations.summary), description: fill(rule.annotations.description) } };
    };
    const ruleNamed = (spec: PrometheusRuleSpec, alert: string, pick: (r: AlertRule) => boolean = () => true) =>
        spec.groups.flatMap((g) => g.rules).find((r) => r.alert === alert && pick(r))!;

    it("fires OrthancDown and OrthancReplicasUnavailable for the Deployment the dev stack renders, and not for another name", async function () {
        const dev = await renderStack("dev");
        const spec = renderedRules(dev);
        const { namespace, deployment } = renderedNames(dev, "bhs");
        const tenant = "bhs";
        const series = (name: string, values: string, deploymentName = deployment) => ({ series: `${name}{deployment="${deploymentName}", namespace="${namespace}"}`, values });
        await promtoolTest(spec, [
            {
                interval: "1m",
                input_series: [series("kube_deployment_spec_replicas", "2x20"), series("kube_deployment_status_replicas_available", "0x20")],
                alert_rule_test: [
                    { eval_time: "1m", alertname: "OrthancDown", exp_alerts: [] },
                    { eval_time: "5m", alertname: "OrthancDown", exp_alerts: [expected(ruleNamed(spec, "OrthancDown"), labelsOf(ruleNamed(spec, "OrthancDown"), { deployment, namespace, tenant }))] },
                    {
                        eval_time: "15m",
                        alertname: "OrthancReplicasUnavailable",
                        // Both replicas of the input series unavailable.
                        exp_alerts: [expected(ruleNamed(spec, "OrthancReplicasUnavailable"), labelsOf(ruleNamed(spec, "OrthancReplicasUnavailable"), { deployment, namespace, tenant }), "2")],
                    },
                ],
            },
            {
                // The name the rules selected before (kube-state-metrics labels by the object's name): nothing fires.
                interval: "1m",
                input_series: [series("kube_deployment_spec_replicas", "2x20", "orthanc"), series("kube_deployment_status_replicas_available", "0x20", "orthanc")],
                alert_rule_test: [{ eval_time: "15m", alertname: "OrthancDown", exp_alerts: [] }],
            },
        ]);
    });

    it("fires GatekeeperDown, GatekeeperReplicasUnavailable, IdentityProviderUnreachable, IdentityProviderCheckMissing and AuditRetentionFailed for the objects the dev stack renders, only when due, and routes each to a receiver that notifies", async function () {
        const dev = await renderStack("dev");
        const spec = renderedRules(dev);
        const { namespace, gatekeeper, auditRetention } = renderedIdentityNames(dev, "bhs");
        const tenant = "bhs";
        const deployment = (name: string, values: string) => ({ series: `${name}{deployment="${gatekeeper}", namespace="${namespace}"}`, values });
        const cronJob = (name: string, values: string) => ({ series: `${name}{cronjob="${auditRetention}", namespace="${namespace}"}`, values });
        // The gatekeeper's gauge as the envoy-stats PodMonitor labels it (namespace, pod_name), one series per replica.
        const providerUp = (replica: string, values: string) => ({ series: `${identityProviderUpMetric}{namespace="${namespace}", pod_name="${gatekeeper}-${replica}"}`, values });
        const down = ruleNamed(spec, "GatekeeperDown");
        const unavailable = ruleNamed(spec, "GatekeeperReplicasUnavailable");
        const unreachable = ruleNamed(spec, "IdentityProviderUnreachable");
        const missing = ruleNamed(spec, "IdentityProviderCheckMissing");
        const retentionOld = ruleNamed(spec, "AuditRetentionFailed", (r) => r.expr.includes("last_successful_time{"));
        const retentionNever = ruleNamed(spec, "AuditRetentionFailed", (r) => r.expr.includes("kube_cronjob_created"));
        const firing = {
            down: expected(down, labelsOf(down, { deployment: gatekeeper, namespace, tenant })),
            unavailable: expected(unavailable, labelsOf(unavailable, { deployment: gatekeeper, namespace, tenant }), "1"),
            unreachable: expected(unreachable, labelsOf(unreachable, { namespace, tenant }), "1"),
            missing: expected(missing, labelsOf(missing, { namespace, tenant }), "1"),
            retentionOld: expected(retentionOld, labelsOf(retentionOld, { cronjob: auditRetention, namespace, tenant }), "1d 2h 20m 0s"),
            retentionNever: expected(retentionNever, labelsOf(retentionNever, { cronjob: auditRetention, namespace, tenant }), "1d 2h 20m 0s"),
        };
        /** Not firing at `notYet`, firing as `alert` at `due`. */
        const firesAt = (alertname: string, notYet: string, due: string, alert: ReturnType<typeof expected>) => [
            { eval_time: notYet, alertname, exp_alerts: [] },
            { eval_time: due, alertname, exp_alerts: [alert] },
        ];
        // The daily retention run's successes: at the start and a day later (age at most 24 h).
        const dailySuccess = "0x1439 86400x400";
        await promtoolTest(spec, [
            {
                // No replica available: GatekeeperDown after its 2 minutes, not before.
                interval: "1m",
                input_series: [deployment("kube_deployment_spec_replicas", "2x20"), deployment("kube_deployment_status_replicas_available", "0x20")],
                alert_rule_test: firesAt("GatekeeperDown", "1m", "3m", firing.down),
            },
            {
                // One of two replicas missing: GatekeeperReplicasUnavailable after its 10 minutes; the gatekeeper is not down.
                interval: "1m",
                input_series: [deployment("kube_deployment_spec_replicas", "2x20"), deployment("kube_deployment_status_replicas_available", "1x20")],
                alert_rule_test: [...firesAt("GatekeeperReplicasUnavailable", "9m", "11m", firing.unavailable), { eval_time: "11m", alertname: "GatekeeperDown", exp_alerts: [] }],
            },
            {
                // Healthy: both replicas available, the provider answering both, the retention succeeding daily.
                interval: "1m",
                input_series: [
                    deployment("kube_deployment_spec_replicas", "2x1840"),
                    deployment("kube_deployment_status_replicas_available", "2x1840"),
                    providerUp("a", "1x1840"),
                    providerUp("b", "1x1840"),
                    cronJob("kube_cronjob_created", "0x1840"),
                    cronJob("kube_cronjob_status_last_successful_time", dailySuccess),
                ],
                // Past the 26 hours and 15 minutes after which a stale retention would fire.
                alert_rule_test: ["20m", "27h", "30h"].flatMap((eval_time) =>
                    ["GatekeeperDown", "GatekeeperReplicasUnavailable", "IdentityProviderUnreachable", "IdentityProviderCheckMissing", "AuditRetentionFailed"].map((alertname) => ({ eval_time, alertname, exp_alerts: [] })),
                ),
            },
            {
                // Replica a loses the provider at minute 5: alerted once it has been 0 for 5 minutes.
                interval: "1m",
                input_series: [providerUp("a", "1x4 0x30"), providerUp("b", "1x35")],
                alert_rule_test: firesAt("IdentityProviderUnreachable", "8m", "11m", firing.unreachable),
            },
            {
                // The gatekeeper runs, but no replica's gauge reaches Prometheus (a broken scrape path): after 15 minutes.
                interval: "1m",
                input_series: [deployment("kube_deployment_spec_replicas", "2x30"), deployment("kube_deployment_status_replicas_available", "2x30")],
                alert_rule_test: firesAt("IdentityProviderCheckMissing", "14m", "16m", firing.missing),
            },
            {
                // No gatekeeper running (GatekeeperDown's case): nothing to miss a report from.
                interval: "1m",
                input_series: [deployment("kube_deployment_spec_replicas", "2x30"), deployment("kube_deployment_status_replicas_available", "0x30")],
                alert_rule_test: [{ eval_time: "20m", alertname: "IdentityProviderCheckMissing", exp_alerts: [] }],
            },
            {
                // Both replicas: the value counts them.
                interval: "1m",
                input_series: [providerUp("a", "0x10"), providerUp("b", "0x10")],
                alert_rule_test: [{ eval_time: "6m", alertname: "IdentityProviderUnreachable", exp_alerts: [{ ...firing.unreachable, exp_annotations: expected(unreachable, labelsOf(unreachable, { namespace, tenant }), "2").exp_annotations }] }],
            },
            {
                // The last success at the start: past the daily schedule's 26 hours, then 15 minutes more.
                interval: "1m",
                input_series: [cronJob("kube_cronjob_created", "0x1600"), cronJob("kube_cronjob_status_last_successful_time", "0x1600")],
                alert_rule_test: firesAt("AuditRetentionFailed", "26h10m", "26h20m", firing.retentionOld),
            },
            {
                // Never a success since the CronJob was created.
                interval: "1m",
                input_series: [cronJob("kube_cronjob_created", "0x1600")],
                alert_rule_test: firesAt("AuditRetentionFailed", "26h10m", "26h20m", firing.retentionNever),
            },
        ]);
        // Where Alertmanager sends them: the chart's configuration merged with the dev stack's values.
        const amConfig = (helmCoalesce(kubePrometheusStackDefaults.values, releases(dev).find((r) => r.inputs.chart === "kube-prometheus-stack")!.inputs.values) as any).alertmanager.config;
        for (const [rule, alert] of [[down, firing.down], [unavailable, firing.unavailable], [unreachable, firing.unreachable], [retentionOld, firing.retentionOld], [retentionNever, firing.retentionNever]] as const) {
            const receivers = routeReceivers(amConfig.route, { alertname: rule.alert, ...alert.exp_labels });
            assert.ok(receivers.length > 0 && receivers.every((name) => name !== unroutedReceiver && receiverNotifies(amConfig, name)), `${rule.alert} reaches ${receivers}`);
        }
    });

    it("fires PostgresNotReady for the StatefulSet and CertificateExpiresSoon for the Certificates the dev stack renders", async function () {
        const dev = await renderStack("dev");
        const spec = renderedRules(dev);
        const { namespace, statefulSet } = renderedNames(dev, "mhr");
        const certificate = objectsOf(dev, "Certificate").find((r) => nsOf(r).startsWith("mhr-"))!;
        const certificateLabels = {
            name: certificate.inputs.metadata.name,
            namespace: nsOf(certificate),
            issuer_kind: certificate.inputs.spec.issuerRef.kind,
            issuer_name: certificate.inputs.spec.issuerRef.name,
            issuer_group: certificate.inputs.spec.issuerRef.group ?? "cert-manager.io",
        };
        const notReady = ruleNamed(spec, "PostgresNotReady", (r) => r.expr.includes("kube_statefulset_replicas"));
        const expiry = ruleNamed(spec, "CertificateExpiresSoon");
        const selector = (labels: Record<string, string>) => `{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(", ")}}`;
        await promtoolTest(spec, [
            {
                interval: "1m",
                input_series: [
                    { series: `kube_statefulset_replicas{statefulset="${statefulSet}", namespace="${namespace}"}`, values: "3x20" },
                    { series: `kube_statefulset_status_replicas_ready{statefulset="${statefulSet}", namespace="${namespace}"}`, values: "2x20" },
                    // Expires three days after the start: inside the 14 days the alert allows.
                    { series: `certmanager_certificate_expiration_timestamp_seconds${selector(certificateLabels)}`, values: `${3 * 86400}x200` },
                ],
                alert_rule_test: [
                    {
                        eval_time: "10m",
                        alertname: "PostgresNotReady",
                        // One of the three nodes not ready.
                        exp_alerts: [expected(notReady, labelsOf(notReady, { statefulset: statefulSet!, namespace, tenant: "mhr" }), "1")],
                    },
                    {
                        eval_time: "2h",
                        alertname: "CertificateExpiresSoon",
                        // Three days minus the two hours elapsed, as Prometheus' humanizeDuration writes it.
                        exp_alerts: [expected(expiry, { severity: expiry.labels.severity, ...certificateLabels, tenant: "mhr" }, "2d 22h 0m 0s")],
                    },
                ],
            },
        ]);
    });

    it("fires the CloudNativePG alerts on the instance manager's series, and BackupTooOld for a backup that never succeeded", async function () {
        const cnpg = await renderStack("cnpg");
        assert.equal(cnpg.error, undefined);
        const spec = renderedRules(cnpg);
        const cluster = objectsOf(cnpg, "Cluster").find((r) => nsOf(r).startsWith("bhs-"))!;
        const namespace = nsOf(cluster);
        const monitor = objectsOf(cnpg, "PodMonitor").find((r) => r.inputs.metadata.name === "cloudnative-pg-instances")!;
        const job = monitor.inputs.spec.podMetricsEndpoints[0].relabelings.find((r: any) => r.targetLabel === "job").replacement;
        const pod = (n: number) => `${cluster.inputs.metadata.name}-${n}`;
        const target = (n: number) => `job="${job}", namespace="${namespace}", pod_name="${pod(n)}"`;
        const never = ruleNamed(spec, "BackupTooOld", (r) => r.expr.includes("== 0"));
        const collectorDown = ruleNamed(spec, "PostgresNotReady", (r) => r.expr.includes("cnpg_collector_up"));
        const notStreaming = ruleNamed(spec, "PostgresReplicationBroken", (r) => r.expr.includes("is_wal_receiver_up"));
        await promtoolTest(spec, [
            {
                interval: "1m",
                input_series: [
                    { series: `up{${target(1)}}`, values: "1x40" },
                    { series: `up{${target(2)}}`, values: "1x40" },
                    { series: `cnpg_collector_up{${target(1)}, cluster="${cluster.inputs.metadata.name}"}`, values: "1x40" },
                    { series: `cnpg_collector_up{${target(2)}, cluster="${cluster.inputs.metadata.name}"}`, values: "0x40" },
                    { series: `cnpg_pg_replication_in_recovery{${target(1)}}`, values: "0x40" },
                    { series: `cnpg_pg_replication_in_recovery{${target(2)}}`, values: "1x40" },
                    { series: `cnpg_pg_replication_is_wal_receiver_up{${target(2)}}`, values: "0x40" },
                    { series: `cnpg_pg_replication_streaming_replicas{${target(1)}}`, values: "0x40" },
                ],
                alert_rule_test: [
                    {
                        eval_time: "10m",
                        alertname: "PostgresNotReady",
                        exp_alerts: [expected(collectorDown, { severity: "critical", job, namespace, pod_name: pod(2), cluster: cluster.inputs.metadata.name, tenant: "bhs" })],
                    },
                    {
                        eval_time: "10m",
                        alertname: "PostgresReplicationBroken",
                        exp_alerts: [expected(notStreaming, { severity: "critical", job, namespace, pod_name: pod(2), tenant: "bhs" })],
                    },
                ],
            },
            {
                // The Barman Cloud plugin reports 0 until a backup succeeds: alerted once the schedule's allowance passes.
                interval: "1m",
                input_series: [{ series: `barman_cloud_cloudnative_pg_io_last_available_backup_timestamp{${target(1)}}`, values: "0x2000" }],
                alert_rule_test: [
                    { eval_time: "20h", alertname: "BackupTooOld", exp_alerts: [] },
                    { eval_time: "30h", alertname: "BackupTooOld", exp_alerts: [expected(never, { severity: never.labels.severity, namespace, tenant: "bhs" })] },
                ],
            },
        ]);
    });

    it("fires FilesBackupTooOld for the external stack's filesystem claim: a snapshot too old, one not ready, none ever", async function () {
        const external = await renderStack("external");
        assert.equal(external.error, undefined);
        const spec = renderedRules(external);
        const claim = objectsOf(external, "PersistentVolumeClaim").find((r) => nsOf(r).startsWith("mhr-"))!;
        const namespace = nsOf(claim);
        const persistentvolumeclaim = claim.inputs.metadata.name as string;
        const tooOld = ruleNamed(spec, "FilesBackupTooOld", (r) => r.expr.includes("creation_time"));
        const never = ruleNamed(spec, "FilesBackupTooOld", (r) => r.expr.includes("kube_persistentvolumeclaim_created"));
        // kube-state-metrics' custom resource series for one VolumeSnapshot, as its configuration labels them.
        const snapshot = (name: string, taken: number, ready: string) => [
            { series: `korthweb_volumesnapshot_creation_time{namespace="${namespace}", volumesnapshot="${name}", persistentvolumeclaim="${persistentvolumeclaim}"}`, values: `${taken}x3000` },
            { series: `korthweb_volumesnapshot_ready_to_use{namespace="${namespace}", volumesnapshot="${name}", persistentvolumeclaim="${persistentvolumeclaim}"}`, values: ready },
        ];
        const created = { series: `kube_persistentvolumeclaim_created{namespace="${namespace}", persistentvolumeclaim="${persistentvolumeclaim}"}`, values: "0x3000" };
        const labels = (rule: AlertRule) => ({ severity: rule.labels.severity, namespace, persistentvolumeclaim, tenant: "mhr" });
        await promtoolTest(spec, [
            {
                // One ready snapshot taken at the start: fine for the schedule's 26 hours, then too old.
                interval: "1m",
                input_series: [created, ...snapshot("mhr-files-1", 0, "1x3000")],
                alert_rule_test: [
                    { eval_time: "25h", alertname: "FilesBackupTooOld", exp_alerts: [] },
                    { eval_time: "27h", alertname: "FilesBackupTooOld", exp_alerts: [expected(tooOld, labels(tooOld), "1d 3h 0m 0s")] },
                ],
            },
            {
                // A newer snapshot that never became ready does not count: the ready one's age decides.
                interval: "1m",
                input_series: [created, ...snapshot("mhr-files-1", 0, "1x3000"), ...snapshot("mhr-files-2", 24 * 3600, "0x3000")],
                alert_rule_test: [{ eval_time: "27h", alertname: "FilesBackupTooOld", exp_alerts: [expected(tooOld, labels(tooOld), "1d 3h 0m 0s")] }],
            },
            {
                // A claim never snapshotted: alerted once it is older than the schedule allows; a ready snapshot ends it.
                interval: "1m",
                input_series: [created],
                alert_rule_test: [
                    { eval_time: "25h", alertname: "FilesBackupTooOld", exp_alerts: [] },
                    { eval_time: "27h", alertname: "FilesBackupTooOld", exp_alerts: [expected(never, labels(never), "1d 3h 0m 0s")] },
                ],
            },
            {
                interval: "1m",
                input_series: [created, ...snapshot("mhr-files-1", 26 * 3600, "_x1560 1x1500")],
                alert_rule_test: [{ eval_time: "27h", alertname: "FilesBackupTooOld", exp_alerts: [] }],
            },
        ]);
    });
});

describe("the rules on Orthanc's own metrics, with Orthanc 1.13.0's names (promtool test rules)", function () {
    const suite = new Resources();
    before(assertMonitoringBinaries);
    after(() => suite.release());

    it("fires OrthancJobsFailing when orthanc_jobs_total_failed grows, for the replica it grew on", async function () {
        const dev = await renderStack("dev");
        const { namespace, deployment } = renderedNames(dev, "bhs");
        const spec = { groups: alertRulesSpec({ orthancMetrics: true, orthancDeployment: deployment }).groups.filter((g) => g.name === "korthweb.orthanc-metrics") };
        const rule = spec.groups[0].rules.find((r) => r.alert === "OrthancJobsFailing")!;
        const target = (pod: string) => ({ job: orthancMetricsJob, namespace, pod_name: pod });
        const selector = (labels: Record<string, string>) => `{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(", ")}}`;
        const dir = suite.tempDir("promtool-orthanc");
        writeFileSync(join(dir, "rules.yml"), stringify(spec));
        const labels = { severity: rule.labels.severity, ...target(`${deployment}-a`), tenant: "bhs" };
        const fill = (template: string) => template.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, name) => (labels as Record<string, string>)[name] ?? "");
        const tests = [
            {
                interval: "1m",
                input_series: [
                    // Orthanc 1.13.0's counter: one job fails on replica a at minute 5; replica b has none.
                    { series: `orthanc_jobs_total_failed${selector(target(`${deployment}-a`))}`, values: "0x4 1x30" },
                    { series: `orthanc_jobs_total_failed${selector(target(`${deployment}-b`))}`, values: "0x35" },
                ],
                alert_rule_test: [
                    { eval_time: "4m", alertname: "OrthancJobsFailing", exp_alerts: [] },
                    {
                        eval_time: "8m",
                        alertname: "OrthancJobsFailing",
                        exp_alerts: [{ exp_labels: labels, exp_annotations: { summary: fill(rule.annotations.summary), description: fill(rule.annotations.description) } }],
                    },
                    { eval_time: "30m", alertname: "OrthancJobsFailing", exp_alerts: [] },
                ],
            },
        ];
        writeFileSync(join(dir, "tests.yml"), stringify({ rule_files: ["rules.yml"], evaluation_interval: "1m", tests }));
        const result = await run(monitoringBinaries.promtool, ["test", "rules", join(dir, "tests.yml")]);
        assert.equal(result.code, 0, result.stdout + result.stderr);
    });
});

describe("the rendered stacks' Alertmanager configuration in Alertmanager's own tools (amtool)", function () {
    const suite = new Resources();
    before(assertMonitoringBinaries);
    after(() => suite.release());

    for (const stackName of allStacks.filter((name) => parsedStackFile(name).observability.enabled)) {
        it(`${stackName}: the configuration the chart renders loads, and amtool routes every alert of every tenant where the model does`, async function () {
            const stack = await renderStack(stackName);
            assert.equal(stack.error, undefined);
            const values = releases(stack).find((r) => r.inputs.chart === "kube-prometheus-stack")!.inputs.values;
            // What templates/alertmanager/secret.yaml renders: the chart's default configuration merged with the values.
            const config = (helmCoalesce(kubePrometheusStackDefaults.values, values) as any).alertmanager.config;
            const file = join(suite.tempDir(`amtool-${stackName}`), "alertmanager.yml");
            writeFileSync(file, stringify(config));
            const check = await run(monitoringBinaries.amtool, ["check-config", file]);
            assert.equal(check.code, 0, check.stdout + check.stderr);
            const rules = renderedRules(stack).groups.flatMap((g) => g.rules);
            const cases = new Map<string, Record<string, string>>();
            for (const rule of rules) {
                for (const tenant of parsedStackFile(stackName).tenants) {
                    const labels = { alertname: rule.alert, severity: rule.labels.severity, tenant: tenant.name };
                    cases.set(JSON.stringify(labels), labels);
                }
            }
            for (const labels of cases.values()) {
                const routed = await run(monitoringBinaries.amtool, ["config", "routes", "test", `--config.file=${file}`, ...Object.entries(labels).map(([k, v]) => `${k}=${v}`)]);
                assert.equal(routed.code, 0, routed.stdout + routed.stderr);
                const receivers = routed.stdout.trim().split(",").sort();
                assert.deepEqual(receivers, routeReceivers(config.route, labels).sort(), JSON.stringify(labels));
            }
        });
    }
});
