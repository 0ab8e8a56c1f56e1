/**
 * Each tenant's backup key pair, as the policy the program renders for it lets it act (components/data/backup/
 * backupPolicy.ts), judged by a model of AWS's policy evaluation (tests/support/iamPolicyModel.ts); and the bucket's
 * versioning, object lock and lifecycle rules. What moto, a real S3 with IAM, makes of the same policies is in
 * tests/integration/backupIsolation.test.ts.
 */
import { strict as assert } from "assert";
import { parseStackConfig } from "../components/config/load";
import { StackConfig, tenantBackupTarget } from "../components/config/schema";
import { backupAccessPolicy, backupStorage, bucketProtection, deniedActions, expirationDays, irsaTrustPolicy } from "../components/data/backup/backupPolicy";
import { trustAllows } from "./upstream/awsWebIdentity";
import { cronMaxIntervalSeconds } from "../components/platform/alerts";
import { evaluate, ModelPolicy, s3Requests } from "./support/iamPolicyModel";
import { parsedStackFile, renderStack } from "./support/stacks";

const kms = (n: number) => `arn:aws:kms:eu-west-1:111122223333:key/${String(n).repeat(8)}-1111-2222-3333-444455556666`;

/** Two Bitnami tenants in one bucket, by prefix; a CloudNativePG tenant in its own bucket. */
const mixed: StackConfig = parseStackConfig({
    domain: "orthweb.example.org",
    ingress: { serviceType: "ClusterIP" },
    kubernetes: { apiServerAddresses: ["10.0.0.1/32"] },
    tenants: [
        { name: "bhs", displayName: "B" },
        { name: "mhr", displayName: "M" },
        { name: "gvh", displayName: "G", database: { engine: "cloudnative-pg" } },
    ],
    backup: {
        s3: { endpoint: "https://s3.eu-west-1.amazonaws.com", bucket: "shared-backups", region: "eu-west-1", anyAddress: true },
        tenants: {
            bhs: { accessKeyId: "A1", secretAccessKey: "s1", kmsKeyId: kms(1) },
            mhr: { accessKeyId: "A2", secretAccessKey: "s2", prefix: "sites/mhr", kmsKeyId: kms(2) },
            gvh: { accessKeyId: "A3", secretAccessKey: "s3", bucket: "gvh-backups", kmsKeyId: kms(3) },
        },
        retentionDays: 30,
    },
});

const configs: [string, StackConfig][] = [
    ["mixed", mixed],
    ["cnpg", parsedStackFile("cnpg")],
    ["external", parsedStackFile("external")],
];

/** Objects a tenant's backups write under its prefix: a dump, a Barman base backup, a WAL segment. */
const objectsOf = (prefix: string) => [`${prefix}20260101T010000Z.dump`, `${prefix}postgresql/base/20260101T010000/data.tar.gz`, `${prefix}postgresql/wals/0000000100000000/000000010000000000000001.gz`];

describe("backup access policies (a model of AWS's evaluation)", () => {
    for (const [name, config] of configs) {
        const storage = backupStorage(config);
        const tenants = Object.keys(storage);

        it(`${name}: each tenant writes, reads and lists its own prefix, and deletes nothing, not even its own`, () => {
            assert.ok(tenants.length >= 1, "a stack with backed-up tenants");
            for (const tenant of tenants) {
                const { bucket, prefix, accessPolicy } = storage[tenant];
                for (const key of objectsOf(prefix)) {
                    assert.equal(evaluate([accessPolicy], s3Requests.put(bucket, key)), "allow", `${tenant} put ${key}`);
                    assert.equal(evaluate([accessPolicy], s3Requests.get(bucket, key)), "allow", `${tenant} get ${key}`);
                    assert.equal(evaluate([accessPolicy], s3Requests.delete(bucket, key)), "explicit-deny", `${tenant} delete ${key}`);
                    assert.equal(evaluate([accessPolicy], s3Requests.deleteVersion(bucket, key)), "explicit-deny", `${tenant} delete a version of ${key}`);
                }
                assert.equal(evaluate([accessPolicy], s3Requests.list(bucket, prefix)), "allow", `${tenant} lists ${prefix}`);
                for (const action of ["s3:PutLifecycleConfiguration", "s3:PutBucketVersioning", "s3:PutBucketObjectLockConfiguration", "s3:PutBucketPolicy", "s3:DeleteBucket"]) {
                    assert.equal(evaluate([accessPolicy], s3Requests.bucketAction(action, bucket)), "explicit-deny", `${tenant} ${action}`);
                }
                // The deny stands whatever else is attached to the same user.
                const adminToo: ModelPolicy = { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "s3:*", Resource: "*" }] };
                assert.equal(evaluate([accessPolicy, adminToo], s3Requests.delete(bucket, objectsOf(prefix)[0])), "explicit-deny");
                assert.equal(evaluate([accessPolicy, adminToo], { action: "s3:BypassGovernanceRetention", resource: `arn:aws:s3:::${bucket}/${prefix}x` }), "explicit-deny");
            }
        });

        it(`${name}: no tenant reads, writes, lists or deletes another's objects, nor uses another's KMS key`, () => {
            for (const tenant of tenants) {
                const { accessPolicy } = storage[tenant];
                for (const other of tenants.filter((t) => t !== tenant)) {
                    const theirs = storage[other];
                    for (const key of objectsOf(theirs.prefix)) {
                        for (const request of [s3Requests.get, s3Requests.put, s3Requests.delete]) {
                            assert.notEqual(evaluate([accessPolicy], request(theirs.bucket, key)), "allow", `${tenant} ${request(theirs.bucket, key).action} ${theirs.bucket}/${key}`);
                        }
                    }
                    // Listing: in another bucket nothing; in a shared bucket (Bitnami tenants only) not their prefix.
                    assert.notEqual(evaluate([accessPolicy], s3Requests.list(theirs.bucket, theirs.prefix)), "allow", `${tenant} lists ${other}'s prefix`);
                    if (theirs.kmsKeyId !== undefined) {
                        assert.notEqual(evaluate([accessPolicy], { action: "kms:Decrypt", resource: theirs.kmsKeyId }), "allow", `${tenant} decrypts with ${other}'s key`);
                    }
                }
            }
        });
    }

    it("a tenant sharing a bucket (the dump writer) cannot list the whole bucket; Barman, in a bucket of its own, can", () => {
        const storage = backupStorage(mixed);
        assert.equal(evaluate([storage.bhs.accessPolicy], s3Requests.list("shared-backups")), "implicit-deny");
        assert.equal(evaluate([storage.bhs.accessPolicy], s3Requests.list("shared-backups", "")), "implicit-deny");
        assert.equal(evaluate([storage.bhs.accessPolicy], s3Requests.list("shared-backups", "sites/")), "implicit-deny");
        // HeadBucket carries no prefix (EnterpriseDB/barman aws_s3.py `_check_bucket_existence`).
        assert.equal(evaluate([storage.gvh.accessPolicy], s3Requests.list("gvh-backups")), "allow");
        assert.deepEqual([storage.bhs.writer, storage.mhr.writer, storage.gvh.writer], ["pg_dump", "pg_dump", "barman"]);
    });

    it("uses the tenant's own KMS key for uploads and downloads, and nothing else of KMS", () => {
        const { accessPolicy, kmsKeyId } = backupStorage(mixed).bhs;
        assert.equal(kmsKeyId, kms(1));
        for (const action of ["kms:GenerateDataKey", "kms:Decrypt"]) {
            assert.equal(evaluate([accessPolicy], { action, resource: kms(1) }), "allow", action);
        }
        for (const action of ["kms:ScheduleKeyDeletion", "kms:PutKeyPolicy", "kms:DisableKey", "kms:Encrypt"]) {
            assert.equal(evaluate([accessPolicy], { action, resource: kms(1) }), "implicit-deny", action);
        }
        const noKms = backupAccessPolicy({ bucket: "b", prefix: "bhs/" }, "pg_dump");
        assert.ok(!JSON.stringify(noKms).includes("kms:"));
    });

    it("the model refuses the shared key pair the program once had, and what it does not know", () => {
        // One user for every tenant with the bucket's objects: bhs's key reads and deletes mhr's dumps.
        const shared: ModelPolicy = { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: ["s3:*"], Resource: ["arn:aws:s3:::shared-backups", "arn:aws:s3:::shared-backups/*"] }] };
        assert.equal(evaluate([shared], s3Requests.delete("shared-backups", "sites/mhr/20260101T010000Z.dump")), "allow");
        assert.equal(evaluate([shared], s3Requests.list("shared-backups")), "allow");
        assert.throws(() => evaluate([{ Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "s3:*", Resource: "*", NotResource: "x" } as any] }], s3Requests.list("b")), /NotResource/);
        assert.throws(() => evaluate([{ Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "s3:*", Resource: "*", Condition: { StringLikeIfExists: { "s3:prefix": "a*" } } }] }], s3Requests.list("b")), /StringLikeIfExists/);
        // A prefix condition without the trailing '/' would give bhs2's prefix to bhs.
        const loose = backupAccessPolicy({ bucket: "b", prefix: "bhs/" }, "pg_dump");
        assert.equal(evaluate([loose], s3Requests.get("b", "bhs2/20260101T010000Z.dump")), "implicit-deny");
        assert.throws(() => backupAccessPolicy({ bucket: "b", prefix: "bhs" }, "pg_dump"), /must end with '\/'/);
    });

    it("denies every delete and every change to the protections by name", () => {
        assert.deepEqual(
            [...deniedActions].filter((a) => /Delete|Bypass|Retention|LegalHold|ObjectLock|Versioning|Lifecycle|BucketPolicy/.test(a)),
            [...deniedActions],
        );
        for (const action of ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention", "s3:PutLifecycleConfiguration", "s3:PutBucketVersioning"]) {
            assert.ok((deniedActions as readonly string[]).includes(action), action);
        }
    });
});

describe("bucket protection: versioning, object lock, lifecycle", () => {
    it("locks every version for the retention, expires after the retention plus one schedule interval, then removes noncurrent versions", () => {
        const protection = bucketProtection("bhs", "bhs/", 30, "0 1 * * *");
        assert.deepEqual(protection.versioning, { Status: "Enabled" });
        assert.deepEqual(protection.objectLock, { ObjectLockEnabled: "Enabled", Rule: { DefaultRetention: { Mode: "GOVERNANCE", Days: 30 } } });
        const [expire, markers] = protection.lifecycleRules;
        assert.deepEqual(expire.Filter, { Prefix: "bhs/" });
        assert.deepEqual(expire.Expiration, { Days: 31 });
        assert.deepEqual(expire.NoncurrentVersionExpiration, { NoncurrentDays: 1 });
        assert.deepEqual(expire.AbortIncompleteMultipartUpload, { DaysAfterInitiation: 1 });
        assert.deepEqual(markers.Expiration, { ExpiredObjectDeleteMarker: true });
        // A weekly schedule keeps a week more: a restore to 30 days ago needs the backup before it.
        assert.equal(expirationDays(30, "0 1 * * 0"), 30 + Math.ceil(cronMaxIntervalSeconds("0 1 * * 0") / 86400));
        assert.equal(expirationDays(30, "0 1 * * 0"), 37);
        assert.equal(bucketProtection("bhs", "bhs/", 30, "0 1 * * *", "COMPLIANCE").objectLock.Rule.DefaultRetention.Mode, "COMPLIANCE");
    });

    for (const [name, config] of configs) {
        it(`${name}: each tenant's rules cover its own prefix only, and the lock ends before the objects expire`, () => {
            const storage = backupStorage(config);
            for (const [tenant, entry] of Object.entries(storage)) {
                const target = tenantBackupTarget(config.backup, tenant)!;
                assert.deepEqual([entry.bucket, entry.prefix], [target.bucket, target.prefix]);
                for (const rule of entry.bucketProtection.lifecycleRules) {
                    assert.equal(rule.Filter.Prefix, entry.prefix);
                    assert.ok(rule.ID.includes(tenant));
                    for (const other of Object.values(storage).filter((o) => o !== entry && o.bucket === entry.bucket)) {
                        assert.ok(!other.prefix.startsWith(rule.Filter.Prefix), `${tenant}'s rule ${rule.ID} would expire ${other.prefix}`);
                    }
                }
                const days = (entry.bucketProtection.lifecycleRules[0].Expiration as { Days: number }).Days;
                assert.ok(entry.bucketProtection.objectLock.Rule.DefaultRetention.Days <= days);
                assert.ok(days >= config.backup!.retentionDays + 1);
            }
        });
    }

    it("is a stack output of every stack with backups, per backed-up tenant, without any credential", async () => {
        for (const stack of ["cnpg", "external"] as const) {
            const { outputs } = await renderStack(stack);
            const config = parsedStackFile(stack);
            assert.deepEqual(outputs.backupStorage, JSON.parse(JSON.stringify(backupStorage(config))), stack);
            const text = JSON.stringify(outputs.backupStorage);
            for (const own of Object.values(config.backup!.tenants)) {
                for (const credential of [own.secretAccessKey, own.accessKeyId]) assert.ok(credential === undefined || !text.includes(credential), `${stack}: a credential in backupStorage`);
            }
        }
        assert.deepEqual(Object.keys((await renderStack("cnpg")).outputs.backupStorage), ["bhs", "mhr"]);
        assert.deepEqual(Object.keys((await renderStack("external")).outputs.backupStorage), ["mhr"], "bhs's managed database is its provider's to back up");
        assert.deepEqual((await renderStack("dev")).outputs.backupStorage, {});
    });
});

describe("a tenant's IAM role (EKS IRSA): its permission policy and its trust policy", () => {
    const provider = "arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";
    const issuer = "oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";
    const token = (namespace: string, account: string, overrides: Partial<{ providerArn: string; issuer: string; aud: string }> = {}) => ({
        providerArn: provider,
        issuer,
        sub: `system:serviceaccount:${namespace}:${account}`,
        aud: "sts.amazonaws.com",
        ...overrides,
    });

    it("cnpg: bhs's role gets the policy a key pair would, and trusts only bhs's instances' ServiceAccount, for STS, from the cluster's provider", async () => {
        const config = parsedStackFile("cnpg");
        const { outputs } = await renderStack("cnpg");
        const bhs = outputs.backupStorage.bhs;
        assert.deepEqual(bhs.accessPolicy, backupAccessPolicy(tenantBackupTarget(config.backup, "bhs")!, "barman"));
        assert.deepEqual(bhs.role.serviceAccount, { namespace: "bhs-orthweb", name: "postgresql" });
        assert.equal(bhs.role.roleArn, config.backup!.tenants.bhs.roleArn);
        assert.ok(trustAllows(bhs.role.trustPolicy, token("bhs-orthweb", "postgresql")));
        for (const [what, other] of [
            ["mhr's instances", token("mhr-orthweb", "postgresql")],
            ["bhs's Orthanc", token("bhs-orthweb", "orthanc")],
            ["bhs's instances with another audience", token("bhs-orthweb", "postgresql", { aud: "vault" })],
            ["another cluster's provider", token("bhs-orthweb", "postgresql", { providerArn: provider.replace("EXAMPLED5", "OTHERD5"), issuer: issuer.replace("EXAMPLED5", "OTHERD5") })],
        ] as const) {
            assert.ok(!trustAllows(bhs.role.trustPolicy, other), what);
        }
        assert.equal(outputs.backupStorage.mhr.role, undefined, "mhr keeps its key pair");
    });

    it("trusts the Bitnami backup job's ServiceAccount for a dump writer, and refuses what is not a provider ARN", () => {
        const config = parseStackConfig({
            domain: "orthweb.example.org",
            ingress: { serviceType: "ClusterIP" },
            tenants: [{ name: "bhs", displayName: "B" }],
            backup: {
                s3: { endpoint: "https://s3.eu-west-1.amazonaws.com", bucket: "shared-backups", region: "eu-west-1", anyAddress: true },
                irsa: { oidcProviderArn: provider },
                tenants: { bhs: { roleArn: "arn:aws:iam::111122223333:role/korthweb-bhs-backup" } },
            },
        });
        const role = backupStorage(config).bhs.role!;
        assert.deepEqual(role.serviceAccount, { namespace: "bhs-orthweb", name: "database-backup" });
        assert.ok(trustAllows(role.trustPolicy!, token("bhs-orthweb", "database-backup")));
        assert.ok(!trustAllows(role.trustPolicy!, token("bhs-orthweb", "postgresql")));
        assert.throws(() => irsaTrustPolicy("https://oidc.eks.eu-west-1.amazonaws.com/id/X", role.serviceAccount), /not an IAM OIDC provider ARN/);
    });
});
