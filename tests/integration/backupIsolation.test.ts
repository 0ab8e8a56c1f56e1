/**
 * Each tenant's backup key pair, scoped by the policy the program renders for it (stack output `backupStorage`,
 * components/data/backup/backupPolicy.ts), against a real S3 that enforces IAM: moto's server mode (support/moto.ts).
 * Two Bitnami tenants share one bucket by prefix, as the external stack's kind of configuration allows; the backup
 * job's own upload script (`backupCommands`) and the restore's download (`restoreCommands`) run with the host's AWS CLI,
 * exactly as in the pod.
 *
 * The bucket carries the rendered protection (versioning, object lock, both tenants' lifecycle rules, which moto
 * accepts but does not run). What moto does not judge, and the policy model does (tests/backupPolicy.test.ts): which
 * prefix a key may list (moto ignores the `s3:prefix` condition) and KMS key use.
 */
import assert from "assert";
import { readFileSync, writeFileSync } from "fs";
import { join } from "path";
import { parseStackConfig } from "../../components/config/load";
import { backupCommands, restoreCommands } from "../../components/data/backup/backup";
import { backupStorage } from "../../components/data/backup/backupPolicy";
import { runScript, SidecarStub, startSidecarStub } from "./support/backup";
import { AccessKey, MotoServer, startMoto } from "./support/moto";
import { Resources } from "./support/processes";

const bucket = "korthweb-backups";
const config = parseStackConfig({
    domain: "orthweb.example.org",
    ingress: { serviceType: "ClusterIP" },
    tenants: [
        { name: "bhs", displayName: "B" },
        { name: "mhr", displayName: "M" },
    ],
    backup: {
        s3: { endpoint: "https://s3.eu-west-1.amazonaws.com", bucket, region: "eu-west-1", anyAddress: true },
        // The key ids here are placeholders: moto issues the real ones to the users the policies are attached to.
        tenants: { bhs: { accessKeyId: "bhs", secretAccessKey: "x" }, mhr: { accessKeyId: "mhr", secretAccessKey: "x" } },
    },
});
const storage = backupStorage(config);
const database = { host: "unused", port: 5432, name: "orthanc", user: "orthanc" };

const denied = /AccessDenied|Forbidden|\(403\)/;

describe("Backup isolation between tenants (moto's S3 with IAM, the rendered policies, the job's own scripts)", function () {
    this.timeout(120_000);
    const suite = new Resources();
    let moto: MotoServer;
    let sidecar: SidecarStub;
    const keys: Record<string, AccessKey> = {};
    let auditor: AccessKey;
    let shared: AccessKey;
    const uploaded: Record<string, { key: string; body: Buffer }> = {};

    const objectStorage = (tenant: string) => ({ endpoint: moto.endpoint, bucket, region: moto.region, prefix: storage[tenant].prefix });
    /** What is stored at `key`, read with the auditor's unrestricted key; undefined when there is nothing. */
    async function stored(key: string): Promise<Buffer | undefined> {
        const file = join(suite.tempDir("audit"), "object");
        const result = await moto.aws(["s3api", "get-object", "--bucket", bucket, "--key", key, file], auditor);
        return result.code === 0 ? readFileSync(file) : undefined;
    }

    /** The backup pod's upload container, given a finished dump: the script of `backupCommands`, with `tenant`'s key. */
    async function upload(tenant: string, body: Buffer) {
        const scratch = suite.tempDir(`scratch-${tenant}`);
        writeFileSync(join(scratch, "backup.dump"), body);
        writeFileSync(join(scratch, "dump.done"), "");
        const commands = backupCommands({ database, s3: objectStorage(tenant), scratchDirectory: scratch, quitUrl: sidecar.quitUrl });
        return runScript(commands.upload, scratch, keys[tenant]);
    }

    before(async function () {
        moto = await startMoto(suite);
        sidecar = await startSidecarStub(suite);
        // The bucket as the owner sets it from backupStorage: object lock (chosen at creation), versioning, the rules.
        await moto.createBucket(bucket, { ...storage.bhs.bucketProtection, lifecycleRules: [...storage.bhs.bucketProtection.lifecycleRules, ...storage.mhr.bucketProtection.lifecycleRules] });
        for (const tenant of ["bhs", "mhr"]) {
            keys[tenant] = await moto.user(`backup-${tenant}`, storage[tenant].accessPolicy);
        }
        auditor = await moto.user("auditor", { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "s3:*", Resource: "*" }] });
        // The configuration korthweb had before: one key pair for the whole bucket.
        shared = await moto.user("shared", { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "s3:*", Resource: [`arn:aws:s3:::${bucket}`, `arn:aws:s3:::${bucket}/*`] }] });
        await moto.enforce();
    });

    after(() => suite.release());

    it("each tenant's job uploads its dump under its own prefix with its own key, and stops the sidecar", async function () {
        for (const tenant of ["bhs", "mhr"]) {
            const body = Buffer.from(`PGDMP ${tenant}'s dump`);
            const result = await upload(tenant, body);
            assert.strictEqual(result.code, 0, `${tenant}: ${result.stdout}${result.stderr}`);
            const key = /uploaded s3:\/\/[^/]+\/(\S+)/.exec(result.stdout)![1];
            assert.ok(key.startsWith(storage[tenant].prefix), key);
            assert.deepStrictEqual(await stored(key), body);
            uploaded[tenant] = { key, body };
        }
        assert.strictEqual(sidecar.quits, 2);
    });

    it("a tenant's key downloads its own dump for a restore", async function () {
        const scratch = suite.tempDir("restore");
        const { download } = restoreCommands({ database, s3: objectStorage("bhs"), scratchDirectory: scratch, key: uploaded.bhs.key });
        const result = await runScript(download, scratch, keys.bhs);
        assert.strictEqual(result.code, 0, result.stderr);
        assert.deepStrictEqual(readFileSync(join(scratch, "restore.dump")), uploaded.bhs.body);
    });

    it("bhs's key neither reads, overwrites nor deletes mhr's dump, which stays as mhr wrote it", async function () {
        const theirs = uploaded.mhr.key;
        const file = join(suite.tempDir("stolen"), "dump");
        const attempts = {
            read: await moto.aws(["s3api", "get-object", "--bucket", bucket, "--key", theirs, file], keys.bhs),
            overwrite: await moto.aws(["s3api", "put-object", "--bucket", bucket, "--key", theirs, "--body", "/etc/hostname"], keys.bhs),
            add: await moto.aws(["s3api", "put-object", "--bucket", bucket, "--key", `${storage.mhr.prefix}20300101T000000Z.dump`, "--body", "/etc/hostname"], keys.bhs),
            delete: await moto.aws(["s3api", "delete-object", "--bucket", bucket, "--key", theirs], keys.bhs),
        };
        for (const [what, result] of Object.entries(attempts)) {
            assert.notStrictEqual(result.code, 0, `bhs could ${what} mhr's dump`);
            assert.match(result.stderr, denied, what);
        }
        assert.deepStrictEqual(await stored(theirs), uploaded.mhr.body);
        assert.strictEqual(await stored(`${storage.mhr.prefix}20300101T000000Z.dump`), undefined);
    });

    it("no tenant's key deletes, not even its own dumps: expiry is the bucket's lifecycle rules'", async function () {
        for (const tenant of ["bhs", "mhr"]) {
            const result = await moto.aws(["s3", "rm", `s3://${bucket}/${uploaded[tenant].key}`], keys[tenant]);
            assert.notStrictEqual(result.code, 0, `${tenant} deleted its own dump`);
            assert.match(result.stderr, denied);
            assert.deepStrictEqual(await stored(uploaded[tenant].key), uploaded[tenant].body);
        }
    });

    it("an overwrite with a stolen key leaves the locked original, which not even an s3:* key deletes before its retention", async function () {
        const key = uploaded.bhs.key;
        const head = await moto.aws(["s3api", "head-object", "--bucket", bucket, "--key", key], auditor);
        assert.strictEqual(head.code, 0, head.stderr);
        const original = JSON.parse(head.stdout) as { VersionId: string; ObjectLockMode?: string; ObjectLockRetainUntilDate?: string };
        assert.strictEqual(original.ObjectLockMode, "GOVERNANCE", "the bucket's default retention applies to the job's upload");
        const overwrite = await moto.aws(["s3api", "put-object", "--bucket", bucket, "--key", key, "--body", "/etc/hostname"], keys.bhs);
        assert.strictEqual(overwrite.code, 0, overwrite.stderr);
        const file = join(suite.tempDir("version"), "original");
        assert.strictEqual((await moto.aws(["s3api", "get-object", "--bucket", bucket, "--key", key, "--version-id", original.VersionId, file], auditor)).code, 0);
        assert.deepStrictEqual(readFileSync(file), uploaded.bhs.body);
        const erase = await moto.aws(["s3api", "delete-object", "--bucket", bucket, "--key", key, "--version-id", original.VersionId], auditor);
        assert.notStrictEqual(erase.code, 0, "a locked version was deleted");
        assert.match(erase.stderr, /AccessDenied/);
    });

    it("whereas the one key pair korthweb used to hand every tenant deletes any tenant's dump (here it leaves a delete marker over it; moto enforces, it does not allow all)", async function () {
        const victim = `${storage.mhr.prefix}20000101T000000Z.dump`;
        assert.strictEqual((await moto.aws(["s3api", "put-object", "--bucket", bucket, "--key", victim, "--body", "/etc/hostname"], auditor)).code, 0);
        const result = await moto.aws(["s3api", "delete-object", "--bucket", bucket, "--key", victim], shared);
        assert.strictEqual(result.code, 0, result.stderr);
        assert.strictEqual(await stored(victim), undefined);
        const forged = await moto.aws(["s3api", "get-object", "--bucket", bucket, "--key", uploaded.bhs.key, "/dev/null"], { ...keys.bhs, secretAccessKey: "not-the-secret" });
        assert.notStrictEqual(forged.code, 0, "a request signed with the wrong secret was accepted");
    });
});
