/**
 * The Bitnami engine's scheduled backup, as the pure builders describe it (components/data/backup/backup.ts). What the
 * commands do against a real PostgreSQL and moto's S3 server is proven in tests/integration/restore.test.ts.
 */
import { strict as assert } from "assert";
import {
    backupCommands,
    backupCronJobSpec,
    backupImages,
    backupNames,
    backupPodLabels,
    backupS3Secret,
    backupServiceAccount,
    backupWalls,
    combineWalls,
    defaultBackupDeadlineSeconds,
    requestChecksumCalculation,
    restoreCommands,
    sidecarQuitUrl,
} from "../components/data/backup/backup";
import { BackupConfig } from "../components/config/schema";
import { orthancSelector, tenantNames } from "../components/naming/tenantNames";
import { bitnamiHaWalls } from "../components/data/databaseWalls";
import { postgresPodLabels } from "../components/data/engines/bitnamiHaValues";
import { postgresqlHaImages } from "../components/versions";
import { validateObjects } from "./support/schemaValidation";
import { clusterDns } from "../components/config/schema";
import { admitsName, ciliumPolicyProblems, proxiesDns } from "./upstream/ciliumPolicy";
import { parseWaitFor } from "./upstream/customResourceReadiness";
import { istioAdmission } from "./upstream/istioValidation";
import { botocoreCredentialSource, eksWebhookMutation, regionalStsHost, webhookTokenFile } from "./upstream/awsWebIdentity";
import { only } from "./support/inProcess";
import { parseStackConfig } from "../components/config/load";
import { tenantBackupTarget } from "../components/config/schema";

const names = tenantNames("bhs", "orthweb.example");
const accessKeyId = "AKIAEXAMPLEBACKUPKEY";
const secretAccessKey = "s3cr3t-backup-access-key-do-not-leak";
const backup: BackupConfig = {
    s3: {
        endpoint: "https://s3.eu-central-1.example.com",
        bucket: "korthweb-backups",
        region: "eu-central-1",
        // An on-premises store at stable addresses.
        addresses: ["10.30.0.0/24", "10.30.1.0/24"],
    },
    // bhs's own key pair and KMS key; mhr's own key pair under another prefix.
    tenants: {
        bhs: { accessKeyId, secretAccessKey, kmsKeyId: "arn:aws:kms:eu-central-1:111122223333:key/11111111-2222-3333-4444-555555555555" },
        mhr: { accessKeyId: "AKIAEXAMPLEMHRKEY", secretAccessKey: "mhr-secret", prefix: "sites/mhr" },
    },
    schedule: "17 2 * * *",
    retentionDays: 14,
};
const storage = { endpoint: "https://s3.example", bucket: "b", region: "r", prefix: "bhs/" };
const spec = (): any => backupCronJobSpec({ tenant: "bhs", names, backup, scratchSize: "20Gi" });
const pod = () => spec().jobTemplate.spec.template.spec;
const container = (name: string) => pod().containers.find((c: any) => c.name === name);
const script = (name: string): string => container(name).command[2];

describe("database backup (Bitnami engine)", () => {
    it("runs on the configured schedule, in UTC, never two at once, with bounded history and a deadline", () => {
        const cronJob = spec() as any;
        assert.equal(cronJob.schedule, "17 2 * * *");
        assert.equal(cronJob.timeZone, "Etc/UTC");
        assert.equal(cronJob.concurrencyPolicy, "Forbid");
        assert.equal(cronJob.successfulJobsHistoryLimit, 3);
        assert.equal(cronJob.failedJobsHistoryLimit, 3);
        assert.equal(cronJob.jobTemplate.spec.activeDeadlineSeconds, defaultBackupDeadlineSeconds);
        assert.equal((backupCronJobSpec({ tenant: "bhs", names, backup, scratchSize: "1Gi", activeDeadlineSeconds: 600 }) as any).jobTemplate.spec.activeDeadlineSeconds, 600);
        assert.equal(cronJob.jobTemplate.spec.backoffLimit, 2);
        assert.equal(pod().restartPolicy, "Never");
    });

    it("hardens the pod: non-root, no capabilities, RuntimeDefault seccomp, read-only root with emptyDirs, no API token", () => {
        const p = pod();
        assert.equal(p.automountServiceAccountToken, false);
        assert.equal(p.serviceAccountName, backupNames.serviceAccount);
        assert.deepEqual(backupServiceAccount(names), { namespace: "bhs-orthweb", name: "database-backup", automountServiceAccountToken: false });
        assert.equal(p.securityContext.runAsNonRoot, true);
        assert.notEqual(p.securityContext.runAsUser, 0);
        assert.equal(p.securityContext.seccompProfile.type, "RuntimeDefault");
        assert.deepEqual(
            p.containers.map((c: any) => c.name),
            ["dump", "upload"],
        );
        assert.equal(p.initContainers, undefined, "an init container would run before a classic sidecar, outside the mesh");
        for (const c of p.containers) {
            assert.deepEqual(c.securityContext, {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                runAsNonRoot: true,
                capabilities: { drop: ["ALL"] },
                seccompProfile: { type: "RuntimeDefault" },
            });
            assert.ok(c.resources.limits.memory, `${c.name} has no memory limit`);
            for (const mount of c.volumeMounts) {
                const volume = p.volumes.find((v: any) => v.name === mount.name);
                const bounded = volume.emptyDir?.sizeLimit ?? volume.ephemeral?.volumeClaimTemplate.spec.resources.requests.storage;
                assert.ok(bounded, `${c.name} writes to ${mount.mountPath}, which is neither a bounded emptyDir nor a claimed volume`);
            }
        }
        // The dump is the database's size: on a volume claimed for the run, not on the node's disk, whose pressure
        // would have the kubelet evict other tenants' pods.
        const scratch = p.volumes.find((v: any) => v.name === "scratch");
        assert.equal(scratch.emptyDir, undefined);
        assert.deepEqual(scratch.ephemeral.volumeClaimTemplate.spec, { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "20Gi" } } });
        const inClass = backupCronJobSpec({ tenant: "bhs", names, backup, scratchSize: "5Gi", scratchStorageClass: "premium.ssd" }) as any;
        const claim = inClass.jobTemplate.spec.template.spec.volumes.find((v: any) => v.name === "scratch").ephemeral.volumeClaimTemplate.spec;
        assert.deepEqual([claim.storageClassName, claim.resources.requests.storage], ["premium.ssd", "5Gi"]);
    });

    it("uses the chart's own PostgreSQL image for pg_dump, and pinned tags only", () => {
        assert.equal(container("dump").image, "docker.io/bitnamilegacy/postgresql-repmgr:17.6.0-debian-12-r2");
        assert.deepEqual(backupImages.postgresql, postgresqlHaImages.postgresqlRepmgr);
        assert.equal(container("upload").image, "docker.io/amazon/aws-cli:2.36.7");
        for (const image of Object.values(backupImages)) {
            assert.match(image.tag, /^[0-9]/, `${image.repository} is not pinned to a version`);
        }
    });

    it("puts no secret in the spec: the database and S3 credentials come from Secrets by reference", async () => {
        const text = JSON.stringify(spec());
        assert.ok(!text.includes(secretAccessKey) && !text.includes(accessKeyId), "an S3 credential is in the CronJob");
        const env = (name: string) => Object.fromEntries(container(name).env.map((e: any) => [e.name, e]));
        assert.deepEqual(env("dump").PGPASSWORD, { name: "PGPASSWORD", valueFrom: { secretKeyRef: { name: "postgresql-ha-credentials", key: "password" } } });
        for (const key of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]) {
            assert.deepEqual(env("upload")[key].valueFrom, { secretKeyRef: { name: backupNames.s3Secret, key } });
        }
        assert.equal(env("upload").PGPASSWORD, undefined, "the upload container does not need the database password");
        assert.equal(env("dump").AWS_SECRET_ACCESS_KEY, undefined, "the dump container does not need the S3 credentials");
        for (const c of pod().containers) {
            for (const e of c.env) {
                assert.ok(e.valueFrom || !/PASSWORD|SECRET|KEY_ID/.test(e.name), `${c.name}: ${e.name} is a literal`);
            }
        }
        // The Secret the builders describe carries what it is given (the owner passes Pulumi secrets).
        assert.deepEqual(backupS3Secret(names, { accessKeyId: "a", secretAccessKey: "b" }), {
            namespace: "bhs-orthweb",
            name: "database-backup-s3",
            stringData: { AWS_ACCESS_KEY_ID: "a", AWS_SECRET_ACCESS_KEY: "b" },
        });
    });

    it("dumps Orthanc's database in custom format as Orthanc's role, through Pgpool", () => {
        const dump = script("dump");
        assert.match(
            dump,
            /pg_dump --host='postgresql-ha-pgpool\.bhs-orthweb\.svc\.cluster\.local' --port=5432 --username='orthanc' --dbname='orthanc' --no-password --format=custom /,
        );
        assert.ok(!/--username='postgres'/.test(dump));
        // A dump whose table of contents cannot be read is never marked done.
        assert.ok(dump.indexOf("pg_restore --list") < dump.indexOf('touch "$dir/dump.done"'));
    });

    it("uploads to s3://<bucket>/<prefix>/<timestamp>.dump on the configured endpoint, path-style, SSE-KMS with the tenant's key", () => {
        const upload = script("upload");
        assert.match(upload, /key='bhs\/'"\$\(date -u \+%Y%m%dT%H%M%SZ\)\.dump"/);
        assert.match(
            upload,
            /aws --endpoint-url 'https:\/\/s3\.eu-central-1\.example\.com' --region 'eu-central-1' s3 cp "\$dir\/backup\.dump" "s3:\/\/"'korthweb-backups'"\/\$key" --only-show-errors --sse aws:kms --sse-kms-key-id 'arn:aws:kms:eu-central-1:111122223333:key\/11111111-2222-3333-4444-555555555555'/,
        );
        assert.match(upload, /addressing_style = path/);
        // Another tenant: its own bucket prefix, no KMS key of its own (the bucket's default encryption).
        const mhr = backupCronJobSpec({ tenant: "mhr", names: tenantNames("mhr", "orthweb.example"), backup, scratchSize: "1Gi" }) as any;
        const mhrUpload: string = mhr.jobTemplate.spec.template.spec.containers[1].command[2];
        assert.match(mhrUpload, /key='sites\/mhr\/'"\$\(date/);
        assert.ok(!mhrUpload.includes("--sse"), mhrUpload);
        assert.throws(() => backupCronJobSpec({ tenant: "gvh", names: tenantNames("gvh", "orthweb.example"), backup, scratchSize: "1Gi" }), /backup\.tenants\.gvh/);
    });

    it("checksums every upload to AWS, whose object-locked buckets refuse uploads without one; not elsewhere", () => {
        const env = (b: BackupConfig) =>
            Object.fromEntries((backupCronJobSpec({ tenant: "bhs", names, backup: b, scratchSize: "1Gi" }) as any).jobTemplate.spec.template.spec.containers[1].env.map((e: any) => [e.name, e.value]));
        assert.equal(env(backup).AWS_REQUEST_CHECKSUM_CALCULATION, "when_required", "an S3-compatible store on premises");
        for (const endpoint of ["https://s3.eu-west-1.amazonaws.com", "https://s3.amazonaws.com", "https://s3.cn-north-1.amazonaws.com.cn"]) {
            assert.equal(env({ ...backup, s3: { ...backup.s3, endpoint } }).AWS_REQUEST_CHECKSUM_CALCULATION, "when_supported", endpoint);
        }
        assert.equal(requestChecksumCalculation("https://amazonaws.com.evil.example"), "when_required");
    });

    it("deletes nothing: retention is the bucket's lifecycle rules, not the job's", () => {
        const upload = script("upload");
        assert.ok(upload.startsWith("set -eu\n"));
        assert.doesNotMatch(upload, / s3 rm | s3api delete-object|delete-objects/);
        assert.doesNotMatch(upload, /86400/);
    });

    it("stops the Istio sidecar when the upload ends, however it ends, and holds the dump until the proxy runs", () => {
        const upload = script("upload");
        assert.ok(upload.includes(`curl -fsS -X POST '${sidecarQuitUrl}'`));
        assert.equal(sidecarQuitUrl, "http://localhost:15020/quitquitquit");
        // The trap is set before anything can fail.
        assert.ok(upload.indexOf("trap stop_sidecar EXIT") < upload.indexOf("while [ ! -e"));
        assert.deepEqual(JSON.parse(spec().jobTemplate.spec!.template.metadata!.annotations!["proxy.istio.io/config"] as string), {
            holdApplicationUntilProxyStarts: true,
        });
    });

    it("refuses values that would break out of the scripts", () => {
        const base = {
            database: { host: "h", port: 5432, name: "orthanc", user: "orthanc" },
            s3: storage,
            scratchDirectory: "/backup",
        };
        assert.throws(() => backupCommands({ ...base, s3: { ...base.s3, prefix: "bhs;rm -rf /" }, quitUrl: sidecarQuitUrl }));
        assert.throws(() => backupCommands({ ...base, s3: { ...base.s3, prefix: "bhs" }, quitUrl: sidecarQuitUrl }), /ending with '\/'/);
        assert.throws(() => restoreCommands({ ...base, key: "mhr/20260101T000000Z.dump" }));
        assert.throws(() => restoreCommands({ ...base, key: "bhs/x/20260101T000000Z.dump" }));
        assert.doesNotThrow(() => restoreCommands({ ...base, key: "bhs/20260101T000000Z.dump" }));
        assert.doesNotThrow(() => restoreCommands({ ...base, s3: { ...base.s3, prefix: "sites/bhs/" }, key: "sites/bhs/20260101T000000Z.dump" }));
        const quoted = backupCommands({ ...base, s3: { ...base.s3, endpoint: "https://s3.example/it's" }, quitUrl: sidecarQuitUrl });
        assert.ok(quoted.upload.includes(`'https://s3.example/it'"'"'s'`));
    });

    it("restores as Orthanc's role, whole or not at all, and never changes ownership to a role the new cluster lacks", () => {
        const { restore } = restoreCommands({
            database: { host: "postgresql-ha-pgpool", port: 5432, name: "orthanc", user: "orthanc" },
            s3: storage,
            scratchDirectory: "/backup",
        });
        assert.match(restore, /pg_restore --host='postgresql-ha-pgpool' --port=5432 --username='orthanc' --dbname='orthanc' --no-password --no-owner --no-privileges --exit-on-error --single-transaction /);
    });

    it("adds exactly its walls: backup pods to Pgpool and to the endpoint's addresses, Pgpool admitting them, the endpoint known to the mesh", () => {
        const ns = "bhs-orthweb";
        assert.deepEqual(backupWalls(names, backup), {
            orthancEgress: [],
            network: [
                {
                    namespace: ns,
                    name: "allow-database-backup",
                    spec: {
                        podSelector: { matchLabels: backupPodLabels },
                        policyTypes: ["Egress"],
                        egress: [
                            { to: [{ podSelector: { matchLabels: postgresPodLabels.pgpool } }], ports: [{ protocol: "TCP", port: 5432 }] },
                            { to: [{ ipBlock: { cidr: "10.30.0.0/24" } }, { ipBlock: { cidr: "10.30.1.0/24" } }], ports: [{ protocol: "TCP", port: 443 }] },
                        ],
                    },
                },
                {
                    namespace: ns,
                    name: "allow-database-backup-to-pgpool",
                    spec: {
                        podSelector: { matchLabels: postgresPodLabels.pgpool },
                        policyTypes: ["Ingress"],
                        ingress: [{ from: [{ podSelector: { matchLabels: backupPodLabels } }], ports: [{ protocol: "TCP", port: 5432 }] }],
                    },
                },
            ],
            authorization: [
                {
                    namespace: ns,
                    name: "allow-database-backup-to-pgpool",
                    spec: {
                        selector: { matchLabels: postgresPodLabels.pgpool },
                        action: "ALLOW",
                        rules: [{ from: [{ source: { principals: ["cluster.local/ns/bhs-orthweb/sa/database-backup"] } }], to: [{ operation: { ports: ["5432"] } }] }],
                    },
                },
            ],
            serviceEntries: [
                {
                    namespace: ns,
                    name: "backup-object-storage",
                    spec: {
                        hosts: ["s3.eu-central-1.example.com"],
                        ports: [{ number: 443, name: "tls-s3-443", protocol: "TLS" }],
                        location: "MESH_EXTERNAL",
                        resolution: "DNS",
                        exportTo: ["."],
                    },
                },
            ],
            cniPolicies: [],
        });
        // The backup pods' labels select neither Orthanc nor the database pods.
        const labels = backupPodLabels as Record<string, string>;
        for (const other of [orthancSelector("bhs"), postgresPodLabels.pgpool, postgresPodLabels.postgresql]) {
            assert.ok(!Object.entries(other).every(([k, v]) => labels[k] === v));
        }
    });

    it("names an endpoint given by address and port as the mesh needs, and adds to the engine's walls without changing them", () => {
        const byAddress = backupWalls(names, { ...backup, s3: { ...backup.s3, endpoint: "https://10.0.5.10:9000", addresses: ["10.0.5.10/32"] } });
        assert.deepEqual(byAddress.serviceEntries[0].spec, {
            hosts: ["object-storage.backup.bhs-orthweb.internal"],
            addresses: ["10.0.5.10/32"],
            ports: [{ number: 9000, name: "tls-s3-9000", protocol: "TLS" }],
            location: "MESH_EXTERNAL",
            resolution: "STATIC",
            endpoints: [{ address: "10.0.5.10" }],
            exportTo: ["."],
        });
        assert.deepEqual((byAddress.network[0].spec.egress as any[])[1].ports, [{ protocol: "TCP", port: 9000 }]);
        const engine = bitnamiHaWalls(names, orthancSelector("bhs"));
        const combined = combineWalls(engine, backupWalls(names, backup));
        assert.deepEqual(combined.orthancEgress, engine.orthancEgress);
        assert.deepEqual(combined.network.slice(0, engine.network.length), engine.network);
        assert.equal(combined.authorization.length, engine.authorization.length + 1);
        assert.throws(() => backupWalls(names, { ...backup, s3: { ...backup.s3, endpoint: "http://s3.example" } }));
    });

    describe("the way out to object storage, which a NetworkPolicy can only name by address", () => {
        const { addresses: _fixed, ...cloudS3 } = backup.s3;
        const cloud: BackupConfig = { ...backup, s3: { ...cloudS3, endpoint: "https://s3.eu-west-1.amazonaws.com" } };
        const toStorage = (walls: ReturnType<typeof backupWalls>) => (walls.network[0].spec.egress as any[]).slice(1);

        it("fixed addresses: exactly those on the endpoint's port, and no CNI policy", () => {
            const walls = backupWalls(names, backup);
            assert.deepEqual(toStorage(walls), [{ to: [{ ipBlock: { cidr: "10.30.0.0/24" } }, { ipBlock: { cidr: "10.30.1.0/24" } }], ports: [{ protocol: "TCP", port: 443 }] }]);
            assert.deepEqual(walls.cniPolicies, []);
        });

        it("any address, when the stack opts in: every address on the endpoint's port, the backup pods only", () => {
            const walls = backupWalls(names, { ...cloud, s3: { ...cloud.s3, anyAddress: true } });
            assert.deepEqual(toStorage(walls), [{ to: [{ ipBlock: { cidr: "0.0.0.0/0" } }], ports: [{ protocol: "TCP", port: 443 }] }]);
            assert.deepEqual(walls.network[0].spec.podSelector, { matchLabels: backupPodLabels });
        });

        it("Cilium: the endpoint by name (toFQDNs), the pods' DNS through Cilium's proxy, a policy Cilium accepts, and nothing by address", () => {
            for (const dns of [clusterDns({}), clusterDns({ platform: "openshift" }), { addresses: ["169.254.20.10/32"], ports: [53] }]) {
                const walls = backupWalls(names, cloud, { cni: "cilium", dns });
                assert.deepEqual(toStorage(walls), []);
                assert.equal(walls.cniPolicies!.length, 1);
                const policy = walls.cniPolicies![0];
                assert.deepEqual(ciliumPolicyProblems(policy), []);
                assert.deepEqual(policy.spec.endpointSelector, { matchLabels: backupPodLabels });
                assert.ok(admitsName(policy.spec, "s3.eu-west-1.amazonaws.com", 443));
                assert.ok(admitsName(policy.spec, "korthweb-backups.s3.eu-west-1.amazonaws.com", 443), "virtual-hosted bucket names");
                assert.ok(!admitsName(policy.spec, "s3.eu-west-1.amazonaws.com.evil.example", 443));
                assert.ok(proxiesDns(policy.spec, dns.ports), JSON.stringify(dns));
                assert.deepEqual(parseWaitFor(policy.annotations!["pulumi.com/waitFor"]), [{ kind: "condition", target: "Valid", value: "True" }]);
            }
        });

        it("an endpoint given by IPv4 address is its own fixed address", () => {
            const walls = backupWalls(names, { ...cloud, s3: { ...cloud.s3, endpoint: "https://10.0.5.10:9000" } });
            assert.deepEqual(toStorage(walls), [{ to: [{ ipBlock: { cidr: "10.0.5.10/32" } }], ports: [{ protocol: "TCP", port: 9000 }] }]);
        });

        it("keeps the mesh's entry by name, without addresses, in every mode, and istiod admits it", () => {
            for (const walls of [backupWalls(names, backup), backupWalls(names, { ...cloud, s3: { ...cloud.s3, anyAddress: true } }), backupWalls(names, cloud, { cni: "cilium", dns: clusterDns({}) })]) {
                const entry = walls.serviceEntries[0];
                assert.equal(entry.spec.addresses, undefined);
                assert.equal(entry.spec.resolution, "DNS");
                assert.deepEqual(istioAdmission({ apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: entry.name, namespace: entry.namespace }, spec: entry.spec }).errors, []);
            }
        });

        it("the Cilium model refuses what the agent refuses", () => {
            const base = { apiVersion: "cilium.io/v2", kind: "CiliumNetworkPolicy" };
            const egress = (rule: Record<string, unknown>) => ciliumPolicyProblems({ ...base, spec: { endpointSelector: { matchLabels: { a: "b" } }, egress: [rule] } });
            assert.match(egress({ toFQDNs: [{ matchName: "s3.example" }], toEndpoints: [{}] }).join(), /Combining/);
            assert.match(egress({ toEndpoints: [{}], toPorts: [{ rules: { dns: [{ matchPattern: "*" }] } }] }).join(), /Port 53 must be specified/);
            assert.match(egress({ toFQDNs: [{ matchName: "s3.example" }], toPorts: [{ ports: [{ port: 443, protocol: "TCP" }] }] }).join(), /not a string/);
            assert.match(egress({ toFQDNs: [{ matchName: "s3.example/x" }] }).join(), /invalid characters/);
            assert.match(ciliumPolicyProblems({ ...base, spec: { egress: [] } }).join(), /EndpointSelector/);
            assert.ok(!proxiesDns({ egress: [{ toPorts: [{ ports: [{ port: "53", protocol: "ANY" }], rules: { dns: [{ matchName: "s3.example" }] } }] }] }, [53]), "only s3.example would resolve");
        });
    });

    it("builds objects the upstream schemas accept (CronJob, NetworkPolicy, AuthorizationPolicy, ServiceEntry)", async () => {
        const walls = backupWalls(names, backup);
        const resource = (type: string, named: { namespace: string; name: string }, body: Record<string, unknown>) => ({
            type,
            name: named.name,
            inputs: { metadata: { name: named.name, namespace: named.namespace }, ...body },
        });
        const reports = await validateObjects([
            resource("kubernetes:batch/v1:CronJob", { namespace: names.namespace, name: backupNames.cronJob }, { spec: spec() }),
            ...walls.network.map((n) => resource("kubernetes:networking.k8s.io/v1:NetworkPolicy", n, { spec: n.spec })),
            ...walls.authorization.map((a) => resource("kubernetes:security.istio.io/v1:AuthorizationPolicy", a, { spec: a.spec })),
            ...walls.serviceEntries.map((s) => resource("kubernetes:networking.istio.io/v1:ServiceEntry", s, { spec: s.spec })),
        ]);
        assert.equal(reports.length, 5);
        for (const report of reports) {
            assert.equal(report.noSchema, false, `${report.object}: no schema`);
            assert.deepEqual(report.problems, [], report.object);
        }
    });
});

describe("database backup as an IAM role (EKS IAM roles for service accounts)", () => {
    const bhsRole = "arn:aws:iam::111122223333:role/korthweb-bhs-backup";
    const stackWith = (kubernetes: Record<string, unknown>, s3: Record<string, unknown>) =>
        parseStackConfig({
            domain: "orthweb.example",
            ingress: { serviceType: "ClusterIP" },
            kubernetes,
            tenants: ["bhs", "mhr"].map((name) => ({ name, displayName: name, database: { engine: "bitnami-ha" } })),
            backup: {
                s3: { endpoint: "https://s3.eu-central-1.amazonaws.com", bucket: "korthweb-backups", region: "eu-central-1", ...s3 },
                irsa: { oidcProviderArn: "arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-central-1.amazonaws.com/id/EXAMPLE" },
                tenants: { bhs: { roleArn: bhsRole }, mhr: { accessKeyId: "AKIAEXAMPLEMHRKEY", secretAccessKey: "mhr-secret" } },
            },
        });
    const anyAddress = stackWith({}, { anyAddress: true }).backup!;
    const byName = stackWith({ cni: "cilium" }, {});
    const mhr = tenantNames("mhr", "orthweb.example");
    const podOf = (b: BackupConfig, tenant = "bhs") => (backupCronJobSpec({ tenant, names: tenantNames(tenant, "orthweb.example"), backup: b, scratchSize: "20Gi" }) as any).jobTemplate.spec.template.spec;
    const upload = (p: any) => p.containers.find((c: any) => c.name === "upload");

    it("keeps no key in the pod; the webhook's token makes the AWS CLI assume the tenant's role, and only with the account's annotation", () => {
        const p = podOf(anyAddress);
        assert.ok(!JSON.stringify(p).includes(backupNames.s3Secret), "a role needs no key Secret");
        assert.deepEqual(botocoreCredentialSource(upload(p).env), { provider: "none" }, "without the webhook the pod has no credentials at all (no metadata service either)");
        const identity = tenantBackupTarget(anyAddress, "bhs")!.identity;
        const account = backupServiceAccount(names, identity);
        assert.deepEqual(account.annotations, { "eks.amazonaws.com/role-arn": bhsRole });
        assert.equal(account.automountServiceAccountToken, false, "the webhook projects a token of its own for STS");
        // The webhook's own region may differ from the store's: the CLI's --region decides the STS client's region.
        const mutated = eksWebhookMutation({ ...p, containers: p.containers }, account.annotations!, { region: "us-west-2" });
        assert.deepEqual(botocoreCredentialSource(upload(mutated).env), { provider: "assume-role-with-web-identity", roleArn: bhsRole, tokenFile: webhookTokenFile });
        assert.match(upload(p).command[2], /aws --endpoint-url 'https:\/\/s3\.eu-central-1\.amazonaws\.com' --region 'eu-central-1'/);
        assert.equal(regionalStsHost("eu-central-1"), "sts.eu-central-1.amazonaws.com");
        // A key-pair tenant's account has no annotation: the webhook leaves its pod alone, the key pair is used.
        const mhrAccount = backupServiceAccount(mhr, tenantBackupTarget(anyAddress, "mhr")!.identity);
        assert.equal(mhrAccount.annotations, undefined);
        const mhrPod = podOf(anyAddress, "mhr");
        assert.deepEqual(eksWebhookMutation(mhrPod, mhrAccount.annotations ?? {}), mhrPod);
        assert.equal(botocoreCredentialSource(upload(mhrPod).env).provider, "env");
    });

    it("admits the regional STS endpoint by name (mesh and Cilium) or on any address, for the tenant with a role only", () => {
        const sts = regionalStsHost(anyAddress.s3.region);
        const walls = backupWalls(names, anyAddress);
        const entry = only(walls.serviceEntries.filter((e) => e.name === backupNames.stsServiceEntry), "STS ServiceEntry");
        assert.deepEqual(entry.spec.hosts, [sts]);
        assert.deepEqual(istioAdmission({ apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: entry.name, namespace: entry.namespace }, spec: entry.spec }).errors, []);
        const egress = (walls.network[0].spec.egress as any[]).find((rule) => rule.to.some((peer: any) => peer.ipBlock?.cidr === "0.0.0.0/0"));
        assert.ok(egress.ports.some((port: any) => port.port === 443));
        assert.deepEqual(backupWalls(mhr, anyAddress).serviceEntries.map((e) => e.name), [backupNames.serviceEntry], "mhr uses its key pair: no STS");
        const cilium = only(backupWalls(names, byName.backup!, { cni: "cilium", dns: clusterDns(byName.kubernetes) }).cniPolicies ?? [], "CiliumNetworkPolicy");
        assert.deepEqual(ciliumPolicyProblems(cilium), []);
        assert.ok(admitsName(cilium.spec, sts, 443));
        assert.ok(!admitsName(cilium.spec, "sts.amazonaws.com", 443), "the global endpoint is not what the CLI uses");
        const mhrCilium = only(backupWalls(mhr, byName.backup!, { cni: "cilium", dns: clusterDns(byName.kubernetes) }).cniPolicies ?? [], "CiliumNetworkPolicy");
        assert.ok(!admitsName(mhrCilium.spec, sts, 443));
    });
});
