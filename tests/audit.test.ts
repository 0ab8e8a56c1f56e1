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
import { auditOwnerSql, auditPodLabels } from "../components/data/engines/auditDatabase";
import { cloudnativePgAuditWalls, cnpgAuditNames } from "../components/data/engines/cloudnativePgAudit";
import { cnpgNames, cnpgPodLabels, poolerBudget } from "../components/data/engines/cloudnativePg";
import { gatekeeperSecretEnv } from "../components/identity/contract";
import { cnpgPostgresImage, imageReference } from "../components/versions";
import { createDatabaseSql, hbaMethod, reconcileManagedRoles } from "./upstream/cnpgDeclarative";
import { externalAuditEgressName, externalAuditServiceEntryName, externalAuditWalls } from "../components/data/engines/external";
import { auditSqlInstructions } from "../scripts/tools/auditSql";
import { parseWaitFor, statusModels, unsatisfiable } from "./upstream/customResourceReadiness";
import { shellQuote } from "../components/data/backup/backup";
import { auditRetentionRules, cronMaxIntervalSeconds, kubeStateMetricsValues } from "../components/platform/alerts";
import { tenantNames } from "../components/naming/tenantNames";
import { isSecretValue, plain, RecordedResource } from "./support/mocks";
import { kubernetesObjects, parsedStackFile, releases, renderStack, RenderedStack, stackFileConfig } from "./support/stacks";
import { selectorMatches } from "./upstream/istioStats";
import { metricsRead } from "./upstream/monitoring";
import { pgpoolAdmittedUsers, pgpoolBackendHosts } from "./upstream/bitnamiPgpool";

const stack = "dev";

/** A prerendered stack, once per describe, and a finder of its Kubernetes objects by kind, namespace and name. */
function renderedObjects(name: string): { object: (kind: string, namespace: string, objectName: string) => RecordedResource | undefined; rendered: () => RenderedStack } {
    let stackRendered: RenderedStack;
    before(async () => {
        stackRendered = await renderStack(name);
    });
    return {
        object: (kind, namespace, objectName) =>
            kubernetesObjects(stackRendered).find((r) => r.type.endsWith(`:${kind}`) && r.inputs.metadata?.namespace === namespace && r.inputs.metadata?.name === objectName),
        rendered: () => stackRendered,
    };
}

describe("the audit database in the tenant's PostgreSQL (bitnami-ha)", () => {
    const { object, rendered } = renderedObjects(stack);
    // Every tenant that signs users in, through its own provider or the in-cluster Keycloak.
    const tenants = () => parsedStackFile(stack).tenants.filter((t) => t.identity && !t.identity.disabled && t.database.engine === "bitnami-ha");

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
            const release = releases(rendered()).find((r) => r.inputs.namespace === ns && r.inputs.name === "postgresql-ha")!;
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
            const values = releases(rendered()).find((r) => r.inputs.namespace === ns && r.inputs.name === "postgresql-ha")!.inputs.values;
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

describe("the audit database in the tenant's CloudNativePG Cluster (Pulumi.cnpg.yaml)", () => {
    const cnpgStack = "cnpg";
    const { object, rendered } = renderedObjects(cnpgStack);
    const tenantsOf = (audited: boolean) => parsedStackFile(cnpgStack).tenants.filter((t) => t.database.engine === "cloudnative-pg" && t.identity?.oidc && !t.identity.audit.stdoutOnly === audited);
    const secretsOf = (ns: string) =>
        kubernetesObjects(rendered())
            .filter((r) => r.type === "kubernetes:core/v1:Secret" && r.inputs.metadata.namespace === ns)
            .map((r) => ({ name: r.inputs.metadata.name, type: r.inputs.type, stringData: plain(r.inputs.stringData ?? {}) as Record<string, string> }));
    const clusterOf = (ns: string) => plain(object("Cluster", ns, cnpgNames.cluster)!.inputs.spec);

    it("has a tenant with its audit database (bhs) and one on stdout only (mhr)", () => {
        assert.deepEqual(tenantsOf(true).map((t) => t.name), ["bhs"]);
        assert.deepEqual(tenantsOf(false).map((t) => t.name), ["mhr"]);
    });

    it("the operator makes the two roles from the Cluster's managed roles and their Secrets, and the database with its owner (tests/upstream/cnpgDeclarative.ts)", () => {
        for (const tenant of tenantsOf(true)) {
            const ns = tenantNames(tenant.name, "x").namespace;
            const secrets = secretsOf(ns);
            const { created, refused } = reconcileManagedRoles(clusterOf(ns).managed.roles, secrets);
            assert.deepEqual(refused, []);
            assert.deepEqual(created.map((c) => c.role.name), [auditDatabase.owner, auditDatabase.writer]);
            for (const { role, password } of created) {
                assert.deepEqual([role.login, role.superuser, role.createdb, role.createrole, role.replication, role.bypassrls], [true, false, false, false, false, false], role.name);
                assert.ok(password, `${role.name} has its generated password`);
            }
            assert.notEqual(created[0].password, created[1].password);
            // The owner uses the schema public through pg_database_owner (tests/integration/auditDatabase.test.ts).
            assert.equal(created[0].role.inherit, true);
            for (const name of [cnpgAuditNames.ownerSecret, cnpgAuditNames.writerSecret]) {
                assert.ok(isSecretValue(object("Secret", ns, name)!.inputs.stringData) || isSecretValue(object("Secret", ns, name)!.inputs.stringData.password), `${name} is not a secret`);
            }
            const database = object("Database", ns, cnpgAuditNames.database)!;
            assert.deepEqual(plain(database.inputs.spec), { cluster: { name: cnpgNames.cluster }, name: "audit", owner: "audit_owner", ensure: "present", databaseReclaimPolicy: "retain" });
            assert.deepEqual(createDatabaseSql(database.inputs.spec, created.map((c) => c.role.name)), { sql: 'CREATE DATABASE "audit" OWNER "audit_owner"' });
            // Before the operator has made the owner, the Database does not apply: Pulumi waits for it to.
            assert.match(createDatabaseSql(database.inputs.spec, []).notApplied!, /audit_owner/);
            const [check] = parseWaitFor(database.inputs.metadata.annotations["pulumi.com/waitFor"]);
            assert.equal(unsatisfiable(statusModels["postgresql.cnpg.io/v1/Database"], check), undefined);
            assert.deepEqual(check, { kind: "jsonpath", target: ".status.applied", value: "true" });
            // The gatekeeper's password is the one its role gets.
            const gatekeeperSecret = plain(object("Secret", ns, "gatekeeper")!.inputs.stringData);
            assert.equal(gatekeeperSecret[gatekeeperSecretEnv.auditDatabasePassword], created[1].password);
        }
        for (const tenant of tenantsOf(false)) {
            const ns = tenantNames(tenant.name, "x").namespace;
            assert.equal(clusterOf(ns).managed, undefined);
            assert.equal(object("Database", ns, cnpgAuditNames.database), undefined);
            assert.equal(object("Job", ns, cnpgAuditNames.setupJob), undefined);
        }
    });

    it("pg_hba keeps Orthanc's role out of the audit database and the audit roles out of Orthanc's; the superuser has no way in over the network", () => {
        for (const tenant of tenantsOf(true)) {
            const ns = tenantNames(tenant.name, "x").namespace;
            const spec = clusterOf(ns);
            const rules: string[] = spec.postgresql.pg_hba;
            const method = (database: string, user: string, type: "hostssl" | "hostnossl" = "hostssl") => hbaMethod(rules, { type, database, user });
            assert.equal(method("audit", "orthanc"), "reject");
            assert.equal(method("orthanc", "audit_owner"), "reject");
            assert.equal(method("orthanc", "gatekeeper_audit"), "reject");
            assert.equal(method("audit", "gatekeeper_audit"), "scram-sha-256");
            assert.equal(method("audit", "audit_owner"), "scram-sha-256");
            assert.equal(method("orthanc", "orthanc"), "scram-sha-256");
            assert.equal(method("audit", "audit_owner", "hostnossl"), "reject");
            // Who could run the setup instead: the superuser has no password (enableSuperuserAccess false).
            assert.equal(spec.enableSuperuserAccess, false);
        }
        for (const tenant of tenantsOf(false)) {
            assert.deepEqual(clusterOf(tenantNames(tenant.name, "x").namespace).postgresql.pg_hba, ["hostnossl all all all reject"]);
        }
    });

    it("sets up the table and grants with a Job as the owner on the rw Service over verified TLS, outside the mesh, after the Database applied", () => {
        for (const tenant of tenantsOf(true)) {
            const ns = tenantNames(tenant.name, "x").namespace;
            const job = object("Job", ns, cnpgAuditNames.setupJob)!;
            assert.ok(job, `${tenant.name}: no setup Job`);
            const template = plain(job.inputs.spec).template;
            const pod = template.spec;
            const [container] = pod.containers;
            assert.equal(template.metadata.labels["sidecar.istio.io/inject"], "false");
            assert.equal(pod.serviceAccountName, cnpgAuditNames.setupServiceAccount);
            assert.equal(pod.automountServiceAccountToken, false);
            assert.equal(pod.securityContext.runAsUser, 26);
            assert.equal(container.image, imageReference(cnpgPostgresImage));
            assert.equal(container.securityContext.readOnlyRootFilesystem, true);
            const env = Object.fromEntries(container.env.map((e: any) => [e.name, e.value ?? `${e.valueFrom.secretKeyRef.name}/${e.valueFrom.secretKeyRef.key}`]));
            assert.deepEqual(
                [env.PGPASSWORD, env.PGSSLMODE, env.PGSSLROOTCERT],
                [`${cnpgAuditNames.ownerSecret}/password`, "verify-full", "/etc/audit-database-ca/ca.crt"],
            );
            // Only the CA's certificate is mounted from the operator's CA Secret, not its key.
            const ca = pod.volumes.find((v: any) => v.secret?.secretName === `${cnpgNames.cluster}-ca`);
            assert.deepEqual(ca.secret.items, [{ key: "ca.crt", path: "ca.crt" }]);
            const script: string = container.command[2];
            assert.ok(script.includes(`-h '${cnpgNames.cluster}-rw.${ns}.svc.cluster.local' -p 5432 -U audit_owner -d audit`));
            assert.ok(script.includes(auditOwnerSql().join("\n")));
            assert.doesNotMatch(script, /-U postgres|stop_sidecar/);
            for (const secret of secretsOf(ns).filter((s) => s.name.startsWith("audit-"))) assert.ok(!JSON.stringify(plain(job.inputs)).includes(secret.stringData.password));
            // It waits for the Database (awaited) and its account; the gatekeeper waits for it.
            const urnOf = (r: { name: string }) => r.name;
            assert.ok(job.options?.dependsOn.includes(urnOf(object("Database", ns, cnpgAuditNames.database)!)), "the Job waits for the Database");
            assert.ok(object("Deployment", ns, "gatekeeper")!.options?.dependsOn.includes(job.name), "the gatekeeper waits for the setup");
            const config = JSON.parse(object("ConfigMap", ns, "gatekeeper")!.inputs.data["config.json"]);
            assert.deepEqual(config.audit.database, { host: `${cnpgNames.pooler}.${ns}.svc.cluster.local`, port: 5432, database: "audit", user: "gatekeeper_audit", sslmode: "disable" });
        }
    });

    it("deletes what is older than identity.audit.retentionDays daily, as the owner on the rw Service, and the pooler and PostgreSQL budgets count the audit trail's clients", () => {
        for (const tenant of tenantsOf(true)) {
            const ns = tenantNames(tenant.name, "x").namespace;
            const cronJob = plain(object("CronJob", ns, cnpgAuditNames.retentionCronJob)!.inputs.spec);
            assert.equal(cronJob.schedule, auditRetentionSchedule);
            const pod = cronJob.jobTemplate.spec.template.spec;
            assert.equal(cronJob.jobTemplate.spec.template.metadata.labels["sidecar.istio.io/inject"], "false");
            assert.equal(pod.serviceAccountName, cnpgAuditNames.retentionServiceAccount);
            const script: string = pod.containers[0].command[2];
            assert.ok(script.includes(`-h '${cnpgNames.cluster}-rw.${ns}.svc.cluster.local' -p 5432 -U audit_owner -d audit`));
            assert.ok(script.includes(shellQuote(auditRetentionSql(tenant.identity!.audit.retentionDays))));
            const pooler = plain(object("Pooler", ns, cnpgNames.pooler)!.inputs.spec);
            const plainBudget = poolerBudget(tenant.orthanc.maxReplicas, tenant.postgres.pgpoolReplicas);
            assert.equal(Number(pooler.pgbouncer.parameters.max_client_conn), plainBudget.maxClientConn + 3, "three gatekeeper pods");
            assert.equal(Number(clusterOf(ns).postgresql.parameters.max_connections), plainBudget.maxConnections + 3 * tenant.postgres.pgpoolReplicas + 2, "their server connections at each pooler pod, and the two jobs");
        }
    });

    it("walls: the gatekeeper reaches the pooler (NetworkPolicies and the mesh), the jobs the instances on 5432; nothing else gains a way in", () => {
        for (const tenant of tenantsOf(true)) {
            const names = tenantNames(tenant.name, "x");
            const ns = names.namespace;
            const walls = cloudnativePgAuditWalls(tenant.name, names);
            for (const policy of walls.network) assert.deepEqual(plain(object("NetworkPolicy", ns, policy.name)!.inputs.spec), policy.spec, policy.name);
            const admitted = plain(object("AuthorizationPolicy", ns, cnpgAuditNames.poolerAuthorization)!.inputs.spec);
            assert.deepEqual(admitted.selector.matchLabels, cnpgPodLabels.pooler);
            assert.deepEqual(admitted.rules.flatMap((r: any) => r.from[0].source.principals), [`cluster.local/ns/${ns}/sa/gatekeeper`]);
            const spec = (name: string) => plain(object("NetworkPolicy", ns, name)!.inputs.spec);
            const gatekeeperPods = { "app.kubernetes.io/name": "gatekeeper", "app.kubernetes.io/instance": tenant.name };
            assert.deepEqual(spec(cnpgAuditNames.gatekeeperEgress).podSelector.matchLabels, gatekeeperPods);
            assert.deepEqual(spec(cnpgAuditNames.gatekeeperEgress).egress, [{ to: [{ podSelector: { matchLabels: cnpgPodLabels.pooler } }], ports: [{ protocol: "TCP", port: 5432 }] }]);
            assert.deepEqual(spec(cnpgAuditNames.poolerIngress).ingress, [{ from: [{ podSelector: { matchLabels: gatekeeperPods } }], ports: [{ protocol: "TCP", port: 5432 }] }]);
            // The jobs' pods (both carry the name label) reach the instances on 5432 and nothing else; the instances admit them there.
            const jobs = spec(cnpgAuditNames.jobsNetworkPolicy);
            for (const labels of [auditPodLabels.setup, auditPodLabels.retention]) assert.ok(Object.entries(jobs.podSelector.matchLabels).every(([k, v]) => (labels as Record<string, string>)[k] === v));
            assert.deepEqual(jobs.egress, [{ to: [{ podSelector: { matchLabels: cnpgPodLabels.database } }], ports: [{ protocol: "TCP", port: 5432 }] }]);
            assert.deepEqual(spec(cnpgAuditNames.instancesIngress).ingress[0].ports, [{ protocol: "TCP", port: 5432 }]);
        }
        for (const tenant of tenantsOf(false)) {
            assert.equal(object("NetworkPolicy", tenantNames(tenant.name, "x").namespace, cnpgAuditNames.jobsNetworkPolicy), undefined);
        }
    });
});

describe("the audit database the site's DBA made on a managed server (Pulumi.external.yaml)", () => {
    const externalStack = "external";
    const { object } = renderedObjects(externalStack);
    const tenants = () => parsedStackFile(externalStack).tenants;

    it("hands the gatekeeper its connection (verified TLS), its password as a secret, the server's CA beside its provider's; the tenant without one stays on stdout", () => {
        const [bhs, mhr] = tenants();
        const external = bhs.database.external!;
        const ns = tenantNames(bhs.name, "x").namespace;
        const configMap = object("ConfigMap", ns, "gatekeeper")!;
        const config = JSON.parse(configMap.inputs.data["config.json"]);
        assert.deepEqual(config.audit.database, { host: external.host, port: external.port, database: "audit", user: "gatekeeper_audit", sslmode: "verify-full" });
        const secret = object("Secret", ns, "gatekeeper")!.inputs.stringData;
        assert.ok(isSecretValue(secret) || isSecretValue(secret[gatekeeperSecretEnv.auditDatabasePassword]));
        assert.equal(plain(secret)[gatekeeperSecretEnv.auditDatabasePassword], "test-audit-database-password-bhs");
        // Node's CAs sign no managed database: the gatekeeper trusts the server's CA through NODE_EXTRA_CA_CERTS.
        const caFiles = Object.entries(configMap.inputs.data as Record<string, string>).filter(([key]) => key.endsWith(".crt"));
        assert.equal(caFiles.length, 1);
        assert.ok(caFiles[0][1].includes(external.caCertificate.trim()));
        const container = plain(object("Deployment", ns, "gatekeeper")!.inputs.spec).template.spec.containers[0];
        assert.match(container.env.find((e: any) => e.name === "NODE_EXTRA_CA_CERTS").value, new RegExp(`${caFiles[0][0].replace(".", "\\.")}$`));
        const mhrConfig = JSON.parse(object("ConfigMap", tenantNames(mhr.name, "x").namespace, "gatekeeper")!.inputs.data["config.json"]);
        assert.equal(mhrConfig.audit.database, undefined);
        assert.equal(object("NetworkPolicy", tenantNames(mhr.name, "x").namespace, externalAuditEgressName), undefined);
    });

    it("walls: the gatekeeper's egress to the server's addresses on its port; the server's own ServiceEntry serves, or one of its own for another server", () => {
        const [bhs] = tenants();
        const external = bhs.database.external!;
        const names = tenantNames(bhs.name, "x");
        const egress = plain(object("NetworkPolicy", names.namespace, externalAuditEgressName)!.inputs.spec);
        assert.deepEqual(egress.podSelector.matchLabels, { "app.kubernetes.io/name": "gatekeeper", "app.kubernetes.io/instance": bhs.name });
        assert.deepEqual(egress.egress, [{ to: external.addresses.map((cidr) => ({ ipBlock: { cidr } })), ports: [{ protocol: "TCP", port: external.port }] }]);
        assert.equal(object("ServiceEntry", names.namespace, externalAuditServiceEntryName), undefined, "the managed server's entry already names host and port");
        const elsewhere = externalAuditWalls(bhs.name, names, { ...external, audit: { ...external.audit!, host: "10.50.0.9", port: 6432, addresses: ["10.50.0.0/28"] } });
        assert.deepEqual(elsewhere.serviceEntries.map((e) => [e.name, (e.spec as any).resolution, (e.spec as any).endpoints, (e.spec as any).hosts]), [
            [externalAuditServiceEntryName, "STATIC", [{ address: "10.50.0.9" }], [`audit-database.external.${names.namespace}.internal`]],
        ]);
        assert.throws(() => externalAuditWalls(bhs.name, names, { ...external, audit: { ...external.audit!, host: "10.60.0.9", addresses: ["10.50.0.0/28"] } }), /database\.external\.audit\.host 10\.60\.0\.9 is outside/);
    });

    it("scripts/run audit-sql prints the DBA's SQL from the stack file, passwords as psql variables, and names what is missing", () => {
        const config = stackFileConfig(externalStack);
        const text = auditSqlInstructions(config, externalStack, "bhs");
        assert.match(text, /CREATE ROLE audit_owner WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_password';/);
        assert.match(text, /CREATE DATABASE audit OWNER audit_owner;/);
        assert.match(text, /GRANT INSERT, SELECT ON gatekeeper_audit TO "gatekeeper_audit";/);
        assert.match(text, /REVOKE CONNECT ON DATABASE orthanc FROM PUBLIC;/);
        assert.match(text, /DELETE FROM gatekeeper_audit WHERE time < now\(\) - interval '2190 days';/);
        assert.doesNotMatch(text, /test-audit-database-password/);
        assert.throws(() => auditSqlInstructions(config, externalStack, "mhr"), /tenant 'mhr' names no audit database on a managed server/);
        assert.throws(() => auditSqlInstructions(config, externalStack, "xyz"), /unknown tenant 'xyz': the stack's tenants are bhs, mhr/);
    });
});
