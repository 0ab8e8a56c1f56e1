import { isDeepStrictEqual } from "util";
import { strict as assert } from "assert";
import { parseStackConfig } from "../components/config/load";
import { clusterDns } from "../components/config/schema";
import {
    CloudNativePgDatabase,
    barmanCloudPluginName,
    clusterAwait,
    poolerAwait,
    clusterSpec,
    cloudnativePgWalls,
    cnpgNames,
    cnpgPodLabels,
    objectStoreSpec,
    operatorSchedule,
    poolerBudget,
    poolerSpec,
    scheduledBackupSpec,
} from "../components/data/engines/cloudnativePg";
import { CloudNativePgOperator, barmanCloudPluginValues, cloudnativePgValues } from "../components/platform/cloudnativePg";
import { databaseWalls } from "../components/data/databaseWalls";
import { orthancSelector, tenantNames } from "../components/naming/tenantNames";
import { connectionBudget, orthancConnectionsPerReplica, orthancDatabase } from "../components/data/engines/bitnamiHaValues";
import { monitoringNamespaceLabels } from "../components/k8s/namespace";
import { charts } from "../components/versions";
import * as pulumi from "@pulumi/pulumi";
import { reveal, secretAt } from "./support/mocks";

/** Whether an Output is marked secret. */
const promiseSecret = (output: pulumi.Output<unknown>) => pulumi.isSecret(output);
import { only, registeredUnder, useMocks } from "./support/inProcess";
import { crdObjectProblems, crdSchemas } from "./support/crdSchemaValidation";
import { admitsName, ciliumPolicyProblems, proxiesDns } from "./upstream/ciliumPolicy";
import { acknowledgedCommitReachesAStandby, cnpgInstanceNames, cnpgSynchronousStandbyNames, commitsWithStandbysLost } from "./upstream/synchronousReplication";
import { awaitTimeoutSeconds, parseWaitFor, statusModels, unsatisfiable } from "./upstream/customResourceReadiness";
import { manifestOf } from "./support/schemaValidation";
import { ofType, parsedStackFile, renderStack } from "./support/stacks";
import { botocoreCredentialSource, ContainerModel, eksWebhookMutation, regionalStsHost } from "./upstream/awsWebIdentity";
import { referenceFor, valuesProblems } from "./support/schemaChartValues";

const releaseType = "kubernetes:helm.sh/v3:Release";
const backupRaw = {
    s3: {
        endpoint: "https://s3.eu-west-1.amazonaws.com",
        bucket: "korthweb-backups",
        region: "eu-west-1",
        // An on-premises store at stable addresses.
        addresses: ["10.30.0.0/24"],
    },
    // bhs's own key pair and KMS key.
    tenants: { bhs: { accessKeyId: "AKIAEXAMPLEKEY", secretAccessKey: "example-secret-access-key", kmsKeyId: "arn:aws:kms:eu-west-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef" } },
    schedule: "0 1 * * *",
    retentionDays: 14,
};

function stack(options: { backup?: boolean; protectData?: boolean; replicas?: number } = {}) {
    return parseStackConfig({
        domain: "orthweb.example.org",
        ingress: { serviceType: "ClusterIP" },
        kubernetes: { apiServerAddresses: ["10.0.0.1/32"] },
        tenants: [
            {
                name: "bhs",
                displayName: "B",
                protectData: options.protectData ?? true,
                database: { engine: "cloudnative-pg" },
                postgres: { replicas: options.replicas ?? 3, pgpoolReplicas: 2 },
            },
        ],
        ...(options.backup ? { backup: backupRaw } : {}),
    });
}

const names = tenantNames("bhs", "orthweb.example.org");
const orthancPods = orthancSelector("bhs");
const backup = stack({ backup: true }).backup!;

describe("CloudNativePG engine", () => {
    describe("pure builders", () => {
        const spec = clusterSpec({ instances: 3, replication: "synchronous", volumeSize: "20Gi", maxConnections: 100 }) as any;

        it("has no superuser access and bootstraps Orthanc's database owned by an ordinary role from the generated Secret", () => {
            assert.equal(spec.enableSuperuserAccess, false);
            // docs/src/bootstrap.md (cloudnative-pg v1.30.0): initdb creates `owner` as an unprivileged user whose
            // password comes from the basic-auth Secret; the superuser would be `postgres`.
            assert.deepEqual(spec.bootstrap.initdb, { database: "orthanc", owner: "orthanc", secret: { name: cnpgNames.ownerSecret } });
            assert.notEqual(spec.bootstrap.initdb.owner, "postgres");
            assert.equal(spec.managed, undefined, "no declarative role that could grant SUPERUSER");
            assert.equal(spec.superuserSecret, undefined);
        });

        it("replicates synchronously to any one standby with required durability, and not at all when the tenant opts out", () => {
            // api/v1/cluster_types.go SynchronousReplicaConfiguration (v1.30.0): method any|first, number > 0,
            // dataDurability required|preferred; tests/upstream/cloudnativePgSynchronous.ts models what it renders.
            assert.deepEqual(spec.postgresql.synchronous, { method: "any", number: 1, dataDurability: "required" });
            const quorum = cnpgSynchronousStandbyNames(spec.postgresql.synchronous, cnpgInstanceNames(cnpgNames.cluster, spec.instances), `${cnpgNames.cluster}-1`);
            assert.equal(quorum, `ANY 1 ("${cnpgNames.cluster}-2","${cnpgNames.cluster}-3","${cnpgNames.cluster}-1")`);
            const standbys = cnpgInstanceNames(cnpgNames.cluster, spec.instances).slice(1);
            assert.ok(acknowledgedCommitReachesAStandby(quorum), "no commit is acknowledged by the primary alone");
            assert.ok(commitsWithStandbysLost(quorum, standbys, 1), "one standby lost: commits go on");
            // What `preferred` would do with its standbys down: the list empties and the primary commits alone.
            const preferred = { ...spec.postgresql.synchronous, dataDurability: "preferred" };
            assert.equal(acknowledgedCommitReachesAStandby(cnpgSynchronousStandbyNames(preferred, cnpgInstanceNames(cnpgNames.cluster, 3), `${cnpgNames.cluster}-1`, [`${cnpgNames.cluster}-1`])), false);
            const asynchronous = clusterSpec({ instances: 3, replication: "asynchronous", volumeSize: "20Gi", maxConnections: 100 }) as any;
            assert.equal(asynchronous.postgresql.synchronous, undefined);
            assert.equal(spec.minSyncReplicas, undefined, "the deprecated min/maxSyncReplicas are not mixed in");
        });

        it("keeps instances and the operator's jobs out of the mesh and refuses non-TLS connections to them", () => {
            // inheritedMetadata reaches instance pods and Jobs' pod templates (internal/controller/cluster_create.go
            // inheritJobMetadata, v1.30.0).
            assert.equal(spec.inheritedMetadata.labels["sidecar.istio.io/inject"], "false");
            // User rules come before the default `host all all all` rule (pkg/postgres/configuration.go).
            assert.deepEqual(spec.postgresql.pg_hba, ["hostnossl all all all reject"]);
        });

        it("puts the pooler in the mesh, in session mode (Orthanc's prepared statements), in front of the primary", () => {
            const pooler = poolerSpec({ instances: 2, budget: poolerBudget(6, 2) }) as any;
            assert.equal(pooler.pgbouncer.poolMode, "session");
            assert.equal(pooler.type, "rw");
            assert.equal(pooler.cluster.name, cnpgNames.cluster);
            assert.equal(pooler.instances, 2);
            assert.equal(pooler.template.metadata.labels["sidecar.istio.io/inject"], "true");
            // pkg/management/pgbouncer/config/config.go: verify-ca is the default, stated explicitly.
            assert.equal(pooler.pgbouncer.parameters.server_tls_sslmode, "verify-ca");
            assert.equal(pooler.serviceTemplate.spec.ports[0].appProtocol, "tcp");
        });

        it("sizes the pooler and max_connections like the Bitnami budget: every Orthanc connection through one pooler pod", () => {
            const budget = poolerBudget(6, 2);
            const orthancConnections = 7 * orthancConnectionsPerReplica;
            assert.equal(budget.defaultPoolSize, orthancConnections);
            assert.ok(budget.maxClientConn > orthancConnections);
            assert.equal(budget.maxConnections, 2 * orthancConnections + 20);
            assert.equal(budget.maxConnections, connectionBudget(6, 2).maxConnections - 2 * 5, "Pgpool's budget counts its spare children too");
            const pooler = poolerSpec({ instances: 2, budget }) as any;
            assert.equal(pooler.pgbouncer.parameters.max_client_conn, String(budget.maxClientConn));
            assert.equal((clusterSpec({ instances: 2, replication: "synchronous", volumeSize: "1Gi", maxConnections: budget.maxConnections }) as any).postgresql.parameters.max_connections, String(budget.maxConnections));
        });

        it("archives WAL through the Barman Cloud plugin only when backups are configured", () => {
            assert.equal(spec.plugins, undefined);
            const withBackup = clusterSpec({ instances: 3, replication: "synchronous", volumeSize: "20Gi", maxConnections: 100, objectStore: cnpgNames.objectStore }) as any;
            assert.deepEqual(withBackup.plugins, [{ name: barmanCloudPluginName, isWALArchiver: true, parameters: { barmanObjectName: cnpgNames.objectStore } }]);
        });

        it("stores backups under s3://<bucket>/<prefix> with credentials from the tenant's Secret, encrypted with the tenant's KMS key", () => {
            const store = objectStoreSpec("bhs", backup) as any;
            assert.equal(store.configuration.destinationPath, "s3://korthweb-backups/bhs");
            assert.equal(store.configuration.endpointURL, backup.s3.endpoint);
            assert.deepEqual(store.configuration.s3Credentials.accessKeyId, { name: cnpgNames.s3Secret, key: "ACCESS_KEY_ID" });
            assert.deepEqual(store.configuration.s3Credentials.secretAccessKey, { name: cnpgNames.s3Secret, key: "ACCESS_SECRET_KEY" });
            assert.equal(store.configuration.serverName, undefined, "forbidden in ObjectStore (CEL rule)");
            // Base backups and WAL alike: aws:kms (the CRD's enum), the key by --sse-kms-key-id (barman-cloud-backup,
            // barman-cloud-wal-archive), which the barman-cloud library appends as given (pkg/api/config.go).
            const kms = "--sse-kms-key-id=arn:aws:kms:eu-west-1:111122223333:key/mrk-0123456789abcdef0123456789abcdef";
            assert.deepEqual(store.configuration.data, { compression: "gzip", encryption: "aws:kms", additionalCommandArgs: [kms] });
            assert.deepEqual(store.configuration.wal, { compression: "gzip", encryption: "aws:kms", archiveAdditionalCommandArgs: [kms] });
            assert.deepEqual(crdObjectProblems({ apiVersion: "barmancloud.cnpg.io/v1", kind: "ObjectStore", metadata: {}, spec: store }), []);
            // Another prefix, no KMS key of its own: the bucket's default encryption, nothing forced.
            const plain = objectStoreSpec("bhs", { ...backup, tenants: { bhs: { accessKeyId: "a", secretAccessKey: "b", bucket: "backups-bhs", prefix: "sites/bhs" } } }) as any;
            assert.equal(plain.configuration.destinationPath, "s3://backups-bhs/sites/bhs");
            assert.deepEqual([plain.configuration.data, plain.configuration.wal], [{ compression: "gzip" }, { compression: "gzip" }]);
            assert.throws(() => objectStoreSpec("mhr", backup), /backup\.tenants\.mhr/);
        });

        it("sets no retentionPolicy: Barman's deletion would need DeleteObject; the bucket's lifecycle rules expire backups", () => {
            // plugin-barman-cloud v0.13.0 internal/cnpgi/instance/retention.go: an empty policy skips
            // DeleteBackupsByPolicy (barman-cloud-backup-delete) and still prunes Backup objects gone from the catalog.
            assert.equal((objectStoreSpec("bhs", backup) as any).retentionPolicy, undefined);
        });

        it("schedules plugin base backups with a seconds field, because the operator's cron parser starts with seconds", () => {
            // robfig/cron v1.2.0 (cloudnative-pg v1.30.0 go.mod) `Parse`: second minute hour dom month [dow].
            assert.equal(operatorSchedule("0 1 * * *"), "0 0 1 * * *");
            assert.equal(operatorSchedule(" 30  2 * * 0 "), "0 30 2 * * 0");
            const scheduled = scheduledBackupSpec(backup) as any;
            assert.equal(scheduled.schedule, "0 0 1 * * *");
            assert.equal(scheduled.method, "plugin");
            assert.deepEqual(scheduled.pluginConfiguration, { name: barmanCloudPluginName });
            assert.deepEqual(scheduled.cluster, { name: cnpgNames.cluster });
        });
    });

    describe("walls", () => {
        const apiServer = { cidrs: ["10.0.0.1/32"], ports: [443, 6443] };
        const walls = cloudnativePgWalls(names, orthancPods, "cnpg-system", undefined, apiServer, undefined, "monitoring");
        const policy = (name: string) => only(walls.network.filter((p) => p.name === name), name).spec as any;

        it("lets Orthanc reach the pooler alone, on 5432, by identity in the mesh and by labels in the CNI", () => {
            assert.deepEqual(walls.orthancEgress, [{ to: [{ podSelector: { matchLabels: cnpgPodLabels.pooler } }], ports: [{ protocol: "TCP", port: 5432 }] }]);
            const authz = only(walls.authorization, "AuthorizationPolicy") as any;
            assert.deepEqual(authz.spec.selector.matchLabels, cnpgPodLabels.pooler);
            assert.deepEqual(authz.spec.rules[0].from[0].source.principals, ["cluster.local/ns/bhs-orthweb/sa/orthanc"]);
            assert.deepEqual(authz.spec.rules[0].to[0].operation.ports, ["5432"]);
            assert.deepEqual(policy("allow-cnpg-pooler").ingress, [{ from: [{ podSelector: { matchLabels: orthancPods } }], ports: [{ protocol: "TCP", port: 5432 }] }]);
        });

        it("admits nobody on 9187 when the program runs no Prometheus (observability off), a namespace named monitoring included", () => {
            const unmonitored = only(cloudnativePgWalls(names, orthancPods, "cnpg-system", undefined, apiServer).network.filter((p) => p.name === "allow-cnpg-instances"), "policy").spec as any;
            assert.ok(!JSON.stringify(unmonitored.ingress).includes("9187"));
        });

        it("has no AuthorizationPolicy for the instances, which have no sidecar to enforce one", () => {
            for (const authz of walls.authorization as any[]) {
                assert.notDeepEqual(authz.spec.selector.matchLabels, cnpgPodLabels.database);
            }
        });

        it("opens the instances to the pooler and each other on 5432, to each other and the operator on 8000, to Prometheus on 9187, nothing else", () => {
            const instances = policy("allow-cnpg-instances");
            assert.deepEqual(instances.podSelector.matchLabels, cnpgPodLabels.database);
            assert.deepEqual(instances.ingress, [
                {
                    from: [{ podSelector: { matchLabels: cnpgPodLabels.pooler } }, { podSelector: { matchLabels: cnpgPodLabels.database } }],
                    ports: [{ protocol: "TCP", port: 5432 }],
                },
                {
                    from: [
                        { podSelector: { matchLabels: cnpgPodLabels.database } },
                        {
                            namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "cnpg-system" } },
                            podSelector: { matchLabels: { "app.kubernetes.io/name": "cloudnative-pg" } },
                        },
                    ],
                    ports: [{ protocol: "TCP", port: 8000 }],
                },
                { from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring", ...monitoringNamespaceLabels } } }], ports: [{ protocol: "TCP", port: 9187 }] },
            ]);
            assert.deepEqual(policy("allow-cnpg-pooler").egress[0], { to: [{ podSelector: { matchLabels: cnpgPodLabels.database } }], ports: [{ protocol: "TCP", port: 5432 }] });
        });

        it("opens the object storage addresses to the instances only with backups, and needs no ServiceEntry (no sidecar there)", () => {
            assert.equal(policy("allow-cnpg-instances").egress.length, 2);
            const withBackup = cloudnativePgWalls(names, orthancPods, "cnpg-system", backup, apiServer);
            const egress = (only(withBackup.network.filter((p) => p.name === "allow-cnpg-instances"), "policy").spec as any).egress;
            assert.deepEqual(egress[2], { to: [{ ipBlock: { cidr: "10.30.0.0/24" } }], ports: [{ protocol: "TCP", port: 443 }] });
            assert.deepEqual(withBackup.serviceEntries, []);
            const minio = parseStackConfig({ ...JSON.parse(JSON.stringify(stack())), backup: { ...backupRaw, s3: { ...backupRaw.s3, endpoint: "https://minio.example.org:9000" } } }).backup!;
            const minioEgress = (only(cloudnativePgWalls(names, orthancPods, "cnpg-system", minio, apiServer).network.filter((p) => p.name === "allow-cnpg-instances"), "policy").spec as any).egress;
            assert.deepEqual(minioEgress[2].ports, [{ protocol: "TCP", port: 9000 }]);
        });

        it("with Cilium, lets the instances (outside the mesh: this policy is their only bound) reach a cloud store by name, not by address", () => {
            const { addresses: _fixed, ...cloud } = backupRaw.s3;
            const byName = parseStackConfig({ ...JSON.parse(JSON.stringify(stack())), kubernetes: { apiServerAddresses: ["10.0.0.1/32"], cni: "cilium" }, backup: { ...backupRaw, s3: cloud } });
            const walls = cloudnativePgWalls(names, orthancPods, "cnpg-system", byName.backup, apiServer, { cni: byName.kubernetes.cni, dns: clusterDns(byName.kubernetes) });
            const egress = (only(walls.network.filter((p) => p.name === "allow-cnpg-instances"), "policy").spec as any).egress;
            assert.equal(egress.length, 2, "no address block for the store");
            const policy = only(walls.cniPolicies ?? [], "CiliumNetworkPolicy");
            assert.deepEqual(policy.spec.endpointSelector, { matchLabels: cnpgPodLabels.database });
            assert.deepEqual(ciliumPolicyProblems(policy), []);
            assert.ok(admitsName(policy.spec, "s3.eu-west-1.amazonaws.com", 443));
            assert.ok(proxiesDns(policy.spec, [53]));
            assert.deepEqual(walls.serviceEntries, []);
        });

        it("has Pulumi wait for the Cluster's Ready condition (30 minutes) and the Pooler's reconciliation at full size", () => {
            const cluster = parseWaitFor(clusterAwait["pulumi.com/waitFor"]);
            assert.deepEqual(cluster, [{ kind: "condition", target: "Ready", value: "True" }]);
            assert.equal(awaitTimeoutSeconds(clusterAwait), 1800);
            const pooler = parseWaitFor(poolerAwait(3)["pulumi.com/waitFor"]);
            assert.deepEqual(pooler, [
                { kind: "jsonpath", target: ".status.phase", value: "active" },
                { kind: "jsonpath", target: ".status.instances", value: "3" },
            ]);
            for (const [kind, checks, spec] of [["Cluster", cluster, {}], ["Pooler", pooler, { instances: 3 }]] as const) {
                for (const check of checks) assert.equal(unsatisfiable(statusModels[`postgresql.cnpg.io/v1/${kind}`], check, spec), undefined, `${kind} ${check.target}`);
            }
        });

        it("lets the engine's pods reach the API server at its configured addresses only", () => {
            assert.deepEqual(policy("allow-cnpg-pooler").egress[1], { to: [{ ipBlock: { cidr: "10.0.0.1/32" } }], ports: [{ protocol: "TCP", port: 443 }, { protocol: "TCP", port: 6443 }] });
            const narrow = cloudnativePgWalls(names, orthancPods, "cnpg-system", undefined, { cidrs: ["10.0.0.2/32"], ports: [6443] });
            assert.deepEqual((narrow.network[1].spec as any).egress[1], { to: [{ ipBlock: { cidr: "10.0.0.2/32" } }], ports: [{ protocol: "TCP", port: 6443 }] });
        });

        it("is what databaseWalls returns for the cloudnative-pg engine", () => {
            const tenant = stack().tenants[0];
            const apiServerAddresses = apiServer.cidrs;
            assert.deepEqual(databaseWalls(names, orthancPods, tenant.database, { apiServerAddresses, monitoringNamespace: "monitoring" }), walls);
            assert.deepEqual(
                databaseWalls(names, orthancPods, tenant.database, { backup, apiServerAddresses }),
                cloudnativePgWalls(names, orthancPods, "cnpg-system", backup, apiServer),
            );
            assert.throws(() => databaseWalls(names, orthancPods, tenant.database), /apiServerAddresses/);
        });
    });

    describe("components under mocks", () => {
        before(useMocks);

        it("CloudNativePgOperator installs both pinned charts in cnpg-system (restricted, no sidecar), the plugin after cert-manager", async () => {
            const operator = new CloudNativePgOperator("cnpgop1", { certManagerReady: [], certManagerServiceAccount: { name: "cert-manager", namespace: "cert-manager" } });
            const children = await registeredUnder("cnpgop1");
            const releases = children.filter((r) => r.type === releaseType);
            assert.deepEqual(releases.map((r) => [r.inputs.name, r.inputs.chart, r.inputs.version, r.inputs.namespace, r.inputs.repositoryOpts.repo]).sort(), [
                ["cloudnative-pg", "cloudnative-pg", charts.cloudnativePg.version, "cnpg-system", charts.cloudnativePg.repo],
                ["plugin-barman-cloud", "plugin-barman-cloud", charts.barmanCloudPlugin.version, "cnpg-system", charts.barmanCloudPlugin.repo],
            ]);
            const ns = only(children.filter((r) => r.type === "kubernetes:core/v1:Namespace"), "Namespace");
            assert.equal(ns.inputs.metadata.labels["pod-security.kubernetes.io/enforce"], "restricted");
            assert.equal(ns.inputs.metadata.labels["istio-injection"], "disabled");
            assert.equal(operator.namespace, "cnpg-system");
            assert.deepEqual(operator.ready, [operator.operator, operator.barmanCloud]);
        });

        it("the charts' values use keys their pinned values.yaml has", () => {
            for (const [chart, values] of [
                [charts.cloudnativePg, cloudnativePgValues()],
                [charts.barmanCloudPlugin, barmanCloudPluginValues()],
            ] as const) {
                const reference = referenceFor(chart.chart, chart.version);
                assert.ok(reference, `a reference values.yaml for ${chart.chart}`);
                assert.deepEqual(valuesProblems(chart.chart, reference!.tree, values), []);
            }
        });

        it("CloudNativePgDatabase points Orthanc at the pooler's Service with a generated secret password", async () => {
            const tenant = stack().tenants[0];
            const database = new CloudNativePgDatabase("cnpgdb1", { tenant, namespace: names.namespace, dependsOn: [], operator: { namespace: "cnpg-system", ready: [] } });
            const children = await registeredUnder("cnpgdb1");
            assert.equal(database.endpoint.host, `${cnpgNames.pooler}.bhs-orthweb.svc.cluster.local`);
            assert.equal(database.endpoint.port, 5432);
            assert.equal(database.endpoint.database, orthancDatabase.name);
            assert.equal(database.endpoint.user, orthancDatabase.user);
            assert.equal(database.endpoint.ready.length, 2);
            assert.deepEqual(database.ready, database.endpoint.ready);
            const secret = only(children.filter((r) => r.type === "kubernetes:core/v1:Secret"), "Secret");
            assert.equal(secret.inputs.type, "kubernetes.io/basic-auth");
            // Pulumi marks the whole stringData secret once a member is (tests/support/mocks.ts `secretAt`).
            assert.ok(secretAt(secret.inputs.stringData, "password"));
            assert.equal(reveal(secret.inputs.stringData).username, "orthanc");
            assert.match(reveal(reveal(secret.inputs.stringData).password), /^mockpassword/);
            assert.equal(await promiseSecret(database.endpoint.password), true);
            const kinds = children.filter((r) => r.type.startsWith("kubernetes:postgresql.cnpg.io") || r.type.startsWith("kubernetes:barmancloud")).map((r) => r.type).sort();
            assert.deepEqual(kinds, ["kubernetes:postgresql.cnpg.io/v1:Cluster", "kubernetes:postgresql.cnpg.io/v1:Pooler"]);
        });

        it("with backups: ObjectStore, S3 Secret whose credentials are secrets, WAL archiving and a ScheduledBackup", async () => {
            const config = stack({ backup: true });
            new CloudNativePgDatabase("cnpgdb2", { tenant: config.tenants[0], namespace: names.namespace, dependsOn: [], operator: { namespace: "cnpg-system", ready: [] }, backup: config.backup });
            const children = await registeredUnder("cnpgdb2");
            const s3 = only(children.filter((r) => r.type === "kubernetes:core/v1:Secret" && r.inputs.metadata.name === cnpgNames.s3Secret), "S3 Secret");
            assert.equal(s3.inputs.metadata.namespace, "bhs-orthweb");
            assert.ok(secretAt(s3.inputs.stringData, "ACCESS_KEY_ID"));
            assert.ok(secretAt(s3.inputs.stringData, "ACCESS_SECRET_KEY"));
            assert.equal(reveal(reveal(s3.inputs.stringData).ACCESS_SECRET_KEY), backupRaw.tenants.bhs.secretAccessKey);
            assert.equal(reveal(reveal(s3.inputs.stringData).ACCESS_KEY_ID), backupRaw.tenants.bhs.accessKeyId);
            const store = only(children.filter((r) => r.type === "kubernetes:barmancloud.cnpg.io/v1:ObjectStore"), "ObjectStore");
            assert.equal(store.inputs.spec.retentionPolicy, undefined);
            const cluster = only(children.filter((r) => r.type === "kubernetes:postgresql.cnpg.io/v1:Cluster"), "Cluster");
            assert.equal(cluster.inputs.spec.plugins[0].parameters.barmanObjectName, store.inputs.metadata.name);
            const scheduled = only(children.filter((r) => r.type === "kubernetes:postgresql.cnpg.io/v1:ScheduledBackup"), "ScheduledBackup");
            assert.equal(scheduled.inputs.spec.cluster.name, cluster.inputs.metadata.name);
        });

        it("protects the data and its credentials when the tenant says so, and not otherwise", async () => {
            const protectedDb = new CloudNativePgDatabase("cnpgdb3", { tenant: stack().tenants[0], namespace: "p", dependsOn: [], operator: { namespace: "cnpg-system", ready: [] } });
            const unprotectedDb = new CloudNativePgDatabase("cnpgdb4", {
                tenant: stack({ protectData: false }).tenants[0],
                namespace: "u",
                dependsOn: [],
                operator: { namespace: "cnpg-system", ready: [] },
            });
            await registeredUnder("cnpgdb3");
            const isProtected = (r: any) => (r as any).__protect === true;
            const [cluster, pooler] = protectedDb.ready;
            assert.equal(isProtected(cluster), true);
            assert.equal(isProtected(pooler), false, "the pooler holds no data");
            assert.equal(isProtected(unprotectedDb.ready[0]), false);
        });

        it("every object it creates is valid against the pinned CRDs, and a misspelt field is refused", async () => {
            const config = stack({ backup: true });
            new CloudNativePgDatabase("cnpgdb5", { tenant: config.tenants[0], namespace: names.namespace, dependsOn: [], operator: { namespace: "cnpg-system", ready: [] }, backup: config.backup });
            const custom = (await registeredUnder("cnpgdb5")).filter((r) => /cnpg\.io/.test(r.type));
            assert.equal(custom.length, 4);
            for (const resource of custom) {
                assert.deepEqual(crdObjectProblems(manifestOf(resource)), [], resource.type);
            }
            const cluster = manifestOf(only(custom.filter((r) => r.type.endsWith(":Cluster")), "Cluster"));
            cluster.spec.postgresql.synchronus = cluster.spec.postgresql.synchronous;
            assert.deepEqual(crdObjectProblems(cluster), ["/spec/postgresql/synchronus: unknown field"]);
        });
    });

    describe("the CRD schema validator", () => {
        const cluster = () => ({ apiVersion: "postgresql.cnpg.io/v1", kind: "Cluster", metadata: { name: "x" }, spec: clusterSpec({ instances: 2, replication: "synchronous", volumeSize: "1Gi", maxConnections: 50 }) as any });

        it("holds the kinds the engine creates, from the pinned charts", () => {
            assert.deepEqual(Object.keys(crdSchemas).sort(), ["barmancloud.cnpg.io/v1/ObjectStore", "postgresql.cnpg.io/v1/Cluster", "postgresql.cnpg.io/v1/Database", "postgresql.cnpg.io/v1/Pooler", "postgresql.cnpg.io/v1/ScheduledBackup"]);
            assert.match(crdSchemas["postgresql.cnpg.io/v1/Cluster"].chart, new RegExp(charts.cloudnativePg.version.replace(/\./g, "\\.")));
        });

        it("refuses wrong enums, types, patterns and missing required fields", () => {
            const c = cluster();
            c.spec.postgresql.synchronous.method = "all";
            c.spec.instances = "3";
            delete c.spec.postgresql.synchronous.number;
            const problems = crdObjectProblems(c);
            assert.ok(problems.some((p) => p.startsWith("/spec/postgresql/synchronous/method")), problems.join("\n"));
            assert.ok(problems.some((p) => p.startsWith("/spec/instances")), problems.join("\n"));
            assert.ok(problems.includes("/spec/postgresql/synchronous/number: required"), problems.join("\n"));
            const store = { apiVersion: "barmancloud.cnpg.io/v1", kind: "ObjectStore", metadata: {}, spec: { ...(objectStoreSpec("bhs", backup) as any), retentionPolicy: "30 days" } };
            assert.ok(crdObjectProblems(store).some((p) => p.startsWith("/spec/retentionPolicy")));
            const pooler = { apiVersion: "postgresql.cnpg.io/v1", kind: "Pooler", metadata: {}, spec: { ...(poolerSpec({ instances: 1, budget: poolerBudget(2, 1) }) as any), pgbouncer: { poolMode: "sessions" } } };
            assert.ok(crdObjectProblems(pooler).some((p) => p.startsWith("/spec/pgbouncer/poolMode")));
        });

        it("accepts free-form maps (parameters, labels) and int-or-string values", () => {
            const c = cluster();
            c.spec.postgresql.parameters.work_mem = "64MB";
            c.spec.inheritedMetadata.labels.anything = "x";
            assert.deepEqual(crdObjectProblems(c), []);
        });
    });

    describe("backups as an IAM role (Pulumi.cnpg.yaml: bhs assumes a role, mhr keeps a key pair)", () => {
        const bhsRole = "arn:aws:iam::111122223333:role/korthweb-cnpg-bhs-backup";
        const inNamespace = (type: string, ns: string) => async () =>
            ofType(await renderStack("cnpg"), type).filter((r) => r.inputs.metadata?.namespace === ns);

        it("creates no key Secret for the tenant with a role; its ObjectStore inherits the role, its Cluster's ServiceAccount carries it", async () => {
            const secrets = async (ns: string) => (await inNamespace("kubernetes:core/v1:Secret", ns)()).map((r) => r.inputs.metadata.name);
            assert.ok(!(await secrets("bhs-orthweb")).includes(cnpgNames.s3Secret));
            assert.ok((await secrets("mhr-orthweb")).includes(cnpgNames.s3Secret));
            const store = only(await inNamespace("kubernetes:barmancloud.cnpg.io/v1:ObjectStore", "bhs-orthweb")(), "ObjectStore");
            assert.deepEqual(store.inputs.spec.configuration.s3Credentials, { inheritFromIAMRole: true });
            assert.deepEqual(crdObjectProblems(manifestOf(store)), []);
            const cluster = only(await inNamespace("kubernetes:postgresql.cnpg.io/v1:Cluster", "bhs-orthweb")(), "Cluster");
            assert.deepEqual(cluster.inputs.spec.serviceAccountTemplate, { metadata: { annotations: { "eks.amazonaws.com/role-arn": bhsRole } } });
            assert.deepEqual(crdObjectProblems(manifestOf(cluster)), []);
            const mhrCluster = only(await inNamespace("kubernetes:postgresql.cnpg.io/v1:Cluster", "mhr-orthweb")(), "Cluster");
            assert.equal(mhrCluster.inputs.spec.serviceAccountTemplate, undefined);
            const mhrStore = only(await inNamespace("kubernetes:barmancloud.cnpg.io/v1:ObjectStore", "mhr-orthweb")(), "ObjectStore");
            assert.deepEqual(mhrStore.inputs.spec.configuration.s3Credentials.accessKeyId, { name: cnpgNames.s3Secret, key: "ACCESS_KEY_ID" });
        });

        it("the Barman sidecar, after the EKS webhook, assumes bhs's role in the store's region, and the instances reach that STS by name", async () => {
            const config = parsedStackFile("cnpg");
            const store = only(await inNamespace("kubernetes:barmancloud.cnpg.io/v1:ObjectStore", "bhs-orthweb")(), "ObjectStore");
            const cluster = only(await inNamespace("kubernetes:postgresql.cnpg.io/v1:Cluster", "bhs-orthweb")(), "Cluster");
            // The instance pod as the operator creates it: the plugin's sidecar is an init container with the
            // ObjectStore's env (plugin-barman-cloud v0.13.0 internal/cnpgi/operator/lifecycle.go, lifecycle_envs.go).
            const sidecar: ContainerModel = { name: "plugin-barman-cloud", env: store.inputs.spec.instanceSidecarConfiguration.env };
            const instance = { containers: [{ name: "postgres", env: [] }], initContainers: [sidecar] };
            const mutated = eksWebhookMutation(instance, cluster.inputs.spec.serviceAccountTemplate.metadata.annotations, { region: "us-east-1" });
            const env = mutated.initContainers![0].env!;
            assert.deepEqual(botocoreCredentialSource(env), { provider: "assume-role-with-web-identity", roleArn: bhsRole, tokenFile: "/var/run/secrets/eks.amazonaws.com/serviceaccount/token" });
            const region = env.find((e) => e.name === "AWS_REGION")?.value;
            assert.equal(region, config.backup!.s3.region, "the store's region, not the webhook's");
            assert.equal(env.find((e) => e.name === "AWS_STS_REGIONAL_ENDPOINTS")?.value, "regional");
            const sts = regionalStsHost(region!);
            const policies = ofType(await renderStack("cnpg"), "kubernetes:cilium.io/v2:CiliumNetworkPolicy");
            // The database instances' policy: Orthanc's own (storage egress) select other pods.
            const of = (ns: string) =>
                only(
                    policies.filter((p) => p.inputs.metadata.namespace === ns && isDeepStrictEqual(p.inputs.spec.endpointSelector, { matchLabels: cnpgPodLabels.database })),
                    `${ns} CiliumNetworkPolicy of the database instances`,
                );
            assert.ok(admitsName(of("bhs-orthweb").inputs.spec, sts, 443));
            assert.ok(!admitsName(of("mhr-orthweb").inputs.spec, sts, 443), "mhr has a key pair: no STS");
        });
    });
});
