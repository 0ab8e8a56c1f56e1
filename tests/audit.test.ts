/**
 * The gatekeeper's audit database in the tenant's Bitnami postgresql-ha (components/data/engines/bitnamiHaAudit.ts),
 * as the shipped stacks render it, and its alert. The SQL itself runs against a real PostgreSQL in
 * tests/integration/auditDatabase.test.ts.
 */
import { strict as assert } from "assert";
import {
    auditDatabase,
    auditRetentionSchedule,
    auditRetentionSql,
    auditSetupSql,
    bitnamiHaAuditWalls,
    postgresNodeHosts,
} from "../components/data/engines/bitnamiHaAudit";
import { connectionBudget } from "../components/data/engines/bitnamiHaValues";
import { shellQuote } from "../components/data/backup/backup";
import { auditRetentionRules, cronMaxIntervalSeconds, kubeStateMetricsValues } from "../components/platform/alerts";
import { tenantNames } from "../components/naming/tenantNames";
import { isSecretValue, plain } from "./support/mocks";
import { kubernetesObjects, parsedStackFile, releases, renderStack, RenderedStack } from "./support/stacks";
import { selectorMatches } from "./upstream/istioStats";
import { metricsRead } from "./upstream/monitoring";
import { pgpoolAdmittedUsers, pgpoolBackendHosts } from "./upstream/bitnamiPgpool";

const stack = "dev";

describe("the audit database in the tenant's PostgreSQL (bitnami-ha)", () => {
    let rendered: RenderedStack;
    before(async () => {
        rendered = await renderStack(stack);
    });
    const object = (kind: string, namespace: string, name: string) =>
        kubernetesObjects(rendered).find((r) => r.type.endsWith(`:${kind}`) && r.inputs.metadata?.namespace === namespace && r.inputs.metadata?.name === name);
    const tenants = () => parsedStackFile(stack).tenants.filter((t) => t.identity?.oidc && t.database.engine === "bitnami-ha");

    it("has tenants to check (dev signs users in on bitnami-ha)", () => assert.ok(tenants().length >= 1));

    it("sets up the database with a Job as the superuser on the primary, its passwords from Secrets only, hardened, ending its sidecar", () => {
        for (const tenant of tenants()) {
            const ns = tenantNames(tenant.name, "x").namespace;
            const job = object("Job", ns, "audit-database-setup");
            assert.ok(job, `${tenant.name}: no setup Job`);
            const pod = plain(job.inputs.spec).template.spec;
            const [container] = pod.containers;
            assert.equal(pod.serviceAccountName, "audit-database-setup");
            assert.equal(pod.automountServiceAccountToken, false);
            assert.equal(pod.restartPolicy, "Never");
            assert.equal(container.securityContext.readOnlyRootFilesystem, true);
            assert.deepEqual(container.securityContext.capabilities.drop, ["ALL"]);
            assert.deepEqual(
                container.env.filter((e: any) => e.valueFrom).map((e: any) => [e.name, e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key]),
                [
                    ["PGPASSWORD", "postgresql-ha-credentials", "postgres-password"],
                    ["AUDIT_OWNER_PASSWORD", "audit-database-credentials", "owner-password"],
                    ["AUDIT_WRITER_PASSWORD", "audit-database-credentials", "gatekeeper-password"],
                ],
            );
            const script: string = container.command[2];
            assert.equal(container.command[0], "/bin/bash", "/dev/tcp is bash's");
            // It looks for the primary among the chart's nodes, and stops the proxy however it ends.
            for (const host of postgresNodeHosts(ns, tenant.postgres.replicas)) assert.ok(script.includes(host), host);
            assert.match(script, /trap stop_sidecar EXIT/);
            assert.match(script, /\/dev\/tcp\/127\.0\.0\.1\/15020/);
            assert.ok(script.includes(auditSetupSql().trimEnd()));
            // No password in the script or the spec: psql variables from the environment.
            const secrets = plain(object("Secret", ns, "audit-database-credentials")!.inputs.stringData);
            for (const value of Object.values(secrets) as string[]) assert.ok(!JSON.stringify(plain(job.inputs)).includes(value));
            assert.match(script, /-v owner_password="\$AUDIT_OWNER_PASSWORD" -v writer_password="\$AUDIT_WRITER_PASSWORD"/);
        }
    });

    it("deletes what is older than identity.audit.retentionDays daily, as the owner through Pgpool, hardened like the backup", () => {
        for (const tenant of tenants()) {
            const ns = tenantNames(tenant.name, "x").namespace;
            const cronJob = plain(object("CronJob", ns, "audit-retention")!.inputs.spec);
            assert.equal(cronJob.schedule, auditRetentionSchedule);
            assert.equal(cronMaxIntervalSeconds(cronJob.schedule), 24 * 3600, "daily");
            assert.equal(cronJob.timeZone, "Etc/UTC");
            assert.equal(cronJob.concurrencyPolicy, "Forbid");
            const pod = cronJob.jobTemplate.spec.template.spec;
            const [container] = pod.containers;
            assert.equal(pod.serviceAccountName, "audit-retention");
            assert.equal(container.securityContext.readOnlyRootFilesystem, true);
            assert.equal(pod.securityContext.runAsNonRoot, true);
            assert.deepEqual(
                container.env.filter((e: any) => e.valueFrom).map((e: any) => [e.name, e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key]),
                [["PGPASSWORD", "audit-database-credentials", "owner-password"]],
            );
            const script: string = container.command[2];
            assert.ok(script.includes(`-c ${shellQuote(auditRetentionSql(tenant.identity!.audit.retentionDays))}`));
            assert.match(script, new RegExp(`-h 'postgresql-ha-pgpool\\.${ns}\\.svc\\.cluster\\.local' -p 5432 -U audit_owner -d audit`));
            assert.match(script, /trap stop_sidecar EXIT/);
        }
        assert.equal(auditRetentionSql(2190), "DELETE FROM gatekeeper_audit WHERE time < now() - interval '2190 days'");
        assert.throws(() => auditRetentionSql(0), /positive integer/);
    });

    it("has Pgpool admit the two audit roles (the chart's customUsersSecret) and counts their connections", () => {
        for (const tenant of tenants()) {
            const ns = tenantNames(tenant.name, "x").namespace;
            const release = releases(rendered).find((r) => r.inputs.namespace === ns && r.inputs.name === "postgresql-ha")!;
            assert.equal(release.inputs.values.pgpool.customUsersSecret, "pgpool-custom-users");
            const users = object("Secret", ns, "pgpool-custom-users")!.inputs.stringData;
            assert.ok(isSecretValue(users) || isSecretValue(users.passwords));
            const credentials = plain(object("Secret", ns, "audit-database-credentials")!.inputs.stringData);
            // The chart's format: the same number of names and passwords, ';'-separated, in the same order.
            assert.equal(plain(users).usernames, "audit_owner;gatekeeper_audit");
            assert.equal(plain(users).passwords, `${credentials["owner-password"]};${credentials["gatekeeper-password"]}`);
            const budget = connectionBudget(tenant.orthanc.maxReplicas, tenant.postgres.pgpoolReplicas);
            assert.equal(Number(release.inputs.values.pgpool.numInitChildren), budget.numInitChildren + 4, "two gatekeepers, one surging, the retention job");
        }
    });

    it("connects where the chart's Pgpool admits and looks: the audit roles through Pgpool, the superuser to the nodes Pgpool names (tests/upstream/bitnamiPgpool.ts)", () => {
        for (const tenant of tenants()) {
            const ns = tenantNames(tenant.name, "x").namespace;
            const values = releases(rendered).find((r) => r.inputs.namespace === ns && r.inputs.name === "postgresql-ha")!.inputs.values;
            const users = pgpoolAdmittedUsers(values, { "pgpool-custom-users": plain(object("Secret", ns, "pgpool-custom-users")!.inputs.stringData) });
            assert.deepEqual(users, ["orthanc", "audit_owner", "gatekeeper_audit"]);
            assert.ok(!users.includes("postgres"), "the setup cannot go through Pgpool as the superuser");
            assert.deepEqual(postgresNodeHosts(ns, tenant.postgres.replicas), pgpoolBackendHosts("postgresql-ha", ns, values.postgresql.replicaCount));
        }
    });

    it("walls: the gatekeeper and the retention job reach Pgpool, the setup job the nodes; nothing else gains a way in", () => {
        for (const tenant of tenants()) {
            const names = tenantNames(tenant.name, "x");
            const ns = names.namespace;
            const walls = bitnamiHaAuditWalls(tenant.name, names);
            for (const policy of walls.network) assert.ok(object("NetworkPolicy", ns, policy.name), policy.name);
            const admitted = (name: string) => plain(object("AuthorizationPolicy", ns, name)!.inputs.spec).rules.flatMap((r: any) => r.from[0].source.principals);
            assert.deepEqual(admitted("allow-audit-to-pgpool"), [`cluster.local/ns/${ns}/sa/gatekeeper`, `cluster.local/ns/${ns}/sa/audit-retention`]);
            assert.deepEqual(admitted("allow-audit-setup-to-postgresql"), [`cluster.local/ns/${ns}/sa/audit-database-setup`]);
            const gatekeeperEgress = plain(object("NetworkPolicy", ns, "allow-audit-database-jobs-gatekeeper")!.inputs.spec);
            assert.deepEqual(gatekeeperEgress.podSelector.matchLabels, { "app.kubernetes.io/name": "gatekeeper", "app.kubernetes.io/instance": tenant.name });
            assert.deepEqual(gatekeeperEgress.egress, [{ to: [{ podSelector: { matchLabels: { "app.kubernetes.io/instance": "postgresql-ha", "app.kubernetes.io/component": "pgpool" } } }], ports: [{ protocol: "TCP", port: 5432 }] }]);
            // Only the setup pod reaches the nodes directly (besides Pgpool and the nodes themselves).
            const nodesIngress = plain(object("NetworkPolicy", ns, "allow-audit-setup-to-postgresql")!.inputs.spec).ingress;
            assert.deepEqual(nodesIngress[0].from, [{ podSelector: { matchLabels: { "app.kubernetes.io/name": "audit-database", "app.kubernetes.io/component": "setup" } } }]);
        }
    });

    it("the setup's SQL: its own database and owner, the gatekeeper's statements, passwords as psql variables, idempotent", () => {
        const sql = auditSetupSql();
        assert.deepEqual(auditDatabase, { name: "audit", owner: "audit_owner", writer: "gatekeeper_audit" });
        assert.match(sql, /CREATE DATABASE audit OWNER audit_owner' WHERE NOT EXISTS/);
        assert.match(sql, /PASSWORD :'owner_password'/);
        assert.match(sql, /PASSWORD :'writer_password'/);
        assert.match(sql, /REVOKE ALL ON DATABASE "audit" FROM PUBLIC/);
        assert.match(sql, /GRANT INSERT, SELECT ON gatekeeper_audit TO "gatekeeper_audit"/);
        assert.doesNotMatch(sql.replace("REVOKE CONNECT ON DATABASE orthanc FROM PUBLIC;", ""), /orthanc/i, "Orthanc's role is granted nothing");
    });

    it("alerts when the retention CronJob has not succeeded for a day and its slack, on series kube-state-metrics serves for it", () => {
        const rules = auditRetentionRules();
        assert.deepEqual([...new Set(rules.map((r) => r.alert))], ["AuditRetentionFailed"]);
        assert.ok((kubeStateMetricsValues() as any).collectors.includes("cronjobs"));
        for (const tenant of tenants()) {
            const ns = tenantNames(tenant.name, "x").namespace;
            assert.ok(object("CronJob", ns, "audit-retention"));
            // kube-state-metrics labels its cronjob series with the object's namespace and name.
            for (const rule of rules) {
                for (const metric of metricsRead(rule.expr).filter((m) => m !== "kube_cronjob_status_last_successful_time" || rule.expr.includes(`${m}{`))) {
                    assert.ok(selectorMatches(rule.expr, metric, { __name__: metric, namespace: ns, cronjob: "audit-retention" }), `${rule.annotations.summary}: ${metric}`);
                    assert.ok(!selectorMatches(rule.expr, metric, { __name__: metric, namespace: ns, cronjob: "database-backup" }), "not the backup's");
                }
            }
        }
        const [old, never] = rules;
        assert.match(old.expr, new RegExp(`\\(time\\(\\) - kube_cronjob_status_last_successful_time\\{[^}]*\\}\\) > ${26 * 3600}`));
        assert.match(never.expr, /unless on\(namespace, cronjob\) kube_cronjob_status_last_successful_time/);
    });
});
