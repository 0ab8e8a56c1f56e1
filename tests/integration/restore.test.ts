/**
 * The Bitnami engine's backup and restore, proven on this machine with the commands the CronJob runs.
 *
 * Orthanc (the rendered configuration: PostgreSQL index and storage) stores studies; the backup commands from
 * `backupCommands` dump its database with the host's pg_dump (PostgreSQL 15 client; the pod's image has 17) and upload
 * the dump with the host's AWS CLI (Debian's awscli, v2) to moto's S3 on loopback (support/moto.ts: Debian sid's
 * python3-moto in server mode, checking every request's SigV4 signature and authorising it by IAM policy). The job's
 * key pair is an IAM user carrying the policy the program renders for a Bitnami tenant (`backupAccessPolicy`, writer
 * pg_dump), and the bucket carries the rendered protection (versioning, object lock, lifecycle rules, which moto
 * accepts but does not run); the restore commands from `restoreCommands` bring the newest dump into a NEW PostgreSQL
 * (fresh initdb, as a new release), and an Orthanc started on it serves every instance byte for byte.
 *
 * Differences from the pod, and only these: the dump connects to PostgreSQL directly (no Pgpool, no sidecar), the
 * endpoint is http on 127.0.0.1 instead of the configured https URL, and quitquitquit goes to a stub of the Istio
 * agent. The two containers' scripts run concurrently, sharing a scratch directory, as in the pod.
 */
import assert from "assert";
import { readFileSync, writeFileSync } from "fs";
import { join } from "path";
import { backupCommands, DatabaseTarget, restoreCommands } from "../../components/data/backup/backup";
import { backupAccessPolicy, bucketProtection } from "../../components/data/backup/backupPolicy";
import { store } from "./support/dcmtk";
import { clientPath, runScript, SidecarStub, startSidecarStub } from "./support/backup";
import { assertSamePart10, generateInstances, TestInstance } from "./support/dicom";
import { describeVersions, generatePassword, instanceIdOf, productionConfig, startReplica } from "./support/orthanc";
import { Postgres, startPostgres } from "./support/postgres";
import { assertPrerequisites } from "./support/prerequisites";
import { Resources, run, RunResult } from "./support/processes";
import { AccessKey, MotoServer, startMoto } from "./support/moto";
import { startTenantStack, TenantStack, testDomain } from "./support/stack";

const retentionDays = 30;
const schedule = "0 1 * * *";
const bucket = "korthweb-backups";
const day = 24 * 3600 * 1000;

/** The key timestamp the upload writes (`date -u +%Y%m%dT%H%M%SZ`) for a given instant. */
function stamp(at: Date): string {
    return at.toISOString().replace(/[-:]/g, "").replace(/\.[0-9]{3}/, "");
}

const dumpKey = (tenant: string) => new RegExp(`^${tenant}/[0-9]{8}T[0-9]{6}Z\\.dump$`);

describe("Backup and restore of the Bitnami engine (real pg_dump/pg_restore, AWS CLI, Orthanc)", function () {
    this.timeout(300_000);
    const suite = new Resources();
    let stack: TenantStack;
    let moto: MotoServer;
    /** The backup job's key pair (the rendered policy) and an unrestricted one that inspects the bucket. */
    let jobKey: AccessKey;
    let auditor: AccessKey;
    let sidecar: SidecarStub;
    let sent: TestInstance[] = [];
    /** The PostgreSQL restored into; the later tests back it up in turn. */
    let restored: Postgres;
    let timings: string[] = [];

    const target = (postgres: Postgres): DatabaseTarget => ({ host: postgres.host, port: postgres.port, name: postgres.database, user: postgres.user });
    const objectStorage = () => ({ endpoint: moto.endpoint, bucket, region: moto.region, prefix: `${stack.tenant.name}/` });
    const s3Secrets = () => jobKey;
    const keys = (prefix = "") => moto.keys(bucket, prefix, auditor);
    const stored = (key: string) => moto.object(bucket, key, auditor, suite.tempDir("audit"));

    /** One run of the backup pod: both containers' scripts at once, sharing a fresh scratch directory. */
    async function runBackup(postgres: Postgres, databasePassword: string): Promise<{ dump: RunResult; upload: RunResult; scratch: string }> {
        const scratch = suite.tempDir("backup-scratch");
        const commands = backupCommands({
            database: target(postgres),
            s3: objectStorage(),
            scratchDirectory: scratch,
            quitUrl: sidecar.quitUrl,
        });
        const started = Date.now();
        const [dump, upload] = await Promise.all([
            runScript(commands.dump, scratch, { databasePassword }),
            runScript(commands.upload, scratch, s3Secrets()),
        ]);
        timings.push(`backup ${((Date.now() - started) / 1000).toFixed(1)} s`);
        return { dump, upload, scratch };
    }

    before(async function () {
        assertPrerequisites();
        const aws = await run("aws", ["--version"], { env: { PATH: clientPath } }).catch(() => undefined);
        if (!aws || aws.code !== 0) {
            throw new Error("the AWS CLI is missing: apt-get install awscli (scripts/run test installs it)");
        }
        const pgDump = await run("pg_dump", ["--version"], { env: { PATH: clientPath } });
        console.log(`      clients: ${(aws.stdout + aws.stderr).trim().split(" ")[0]}, ${pgDump.stdout.trim()} (the pod's image: pg_dump 17)`);
        stack = await startTenantStack(suite);
        moto = await startMoto(suite, "eu-central-1");
        const prefix = `${stack.tenant.name}/`;
        await moto.createBucket(bucket, bucketProtection(stack.tenant.name, prefix, retentionDays, schedule));
        jobKey = await moto.user(`backup-${stack.tenant.name}`, backupAccessPolicy({ bucket, prefix }, "pg_dump"));
        auditor = await moto.user("auditor", { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "s3:*", Resource: "*" }] });
        await moto.enforce();
        sidecar = await startSidecarStub(suite);
    });

    after(async function () {
        console.log(`      timings: ${timings.join(", ")}`);
        await suite.release();
    });

    it("stores studies through Orthanc on its PostgreSQL index and storage", async function () {
        const replica = await stack.startReplica(suite, "source");
        console.log(`      running on ${await describeVersions(replica)}`);
        const dataDir = suite.tempDir("data");
        // Small instances, and a few of several MiB: the storage plugin writes each as one large object, split in
        // 2 KiB pages; pg_dump must carry them whole.
        sent = [...(await generateInstances(dataDir, 12, 4 * 1024, "small")), ...(await generateInstances(dataDir, 3, 3 * 1024 * 1024, "large"))];
        const started = Date.now();
        const result = await store({ port: replica.dicomPort, calledAeTitle: replica.aeTitle }, sent);
        timings.push(`store ${((Date.now() - started) / 1000).toFixed(1)} s`);
        assert.strictEqual(result.unacknowledged.length, 0, result.output);
        const statistics = await replica.getJson<{ CountInstances: number; CountStudies: number }>("/statistics");
        assert.deepStrictEqual([statistics.CountStudies, statistics.CountInstances], [sent.length, sent.length]);
        // Scale to 0: nothing writes while the dump and the restore happen.
        await replica.child.stop();
    });

    it("backs up with the CronJob's commands: one dump under <tenant>/, the one pg_dump wrote, and the sidecar told to quit", async function () {
        const { dump, upload, scratch } = await runBackup(stack.postgres, stack.postgres.password);
        assert.strictEqual(dump.code, 0, `dump failed:\n${dump.stdout}${dump.stderr}`);
        assert.strictEqual(upload.code, 0, `upload failed:\n${upload.stdout}${upload.stderr}`);
        console.log(`      ${dump.stdout.trim()}; ${upload.stdout.trim()}`);
        const dumps = await keys(`${stack.tenant.name}/`);
        assert.strictEqual(dumps.length, 1, `keys: ${dumps}`);
        assert.match(dumps[0], dumpKey(stack.tenant.name));
        assert.ok((await stored(dumps[0]))?.equals(readFileSync(join(scratch, "backup.dump"))), "the object is not the file pg_dump wrote");
        assert.strictEqual(sidecar.quits, 1);
        const refused = moto.requests().filter((request) => request.status >= 400);
        assert.deepStrictEqual(refused, [], "moto refused a request (signature or policy)");
    });

    it("restores the newest dump into a new PostgreSQL, and Orthanc on it serves every instance byte for byte", async function () {
        // The old database is gone: nothing below can read from it.
        await stack.postgres.child.stop();
        restored = await startPostgres(suite);
        const scratch = suite.tempDir("restore-scratch");
        const commands = restoreCommands({ database: target(restored), s3: objectStorage(), scratchDirectory: scratch });
        const started = Date.now();
        const download = await runScript(commands.download, scratch, s3Secrets());
        assert.strictEqual(download.code, 0, `download failed:\n${download.stdout}${download.stderr}`);
        const restore = await runScript(commands.restore, scratch, { databasePassword: restored.password });
        assert.strictEqual(restore.code, 0, `restore failed:\n${restore.stdout}${restore.stderr}`);
        timings.push(`download and restore ${((Date.now() - started) / 1000).toFixed(1)} s`);
        console.log(`      ${download.stdout.trim()}; ${restore.stdout.trim()}`);

        // The same tenant configuration, pointed at the new database with its own (new) password.
        const config = productionConfig(stack.tenant, testDomain, stack.admin.password, restored.password);
        const replica = await startReplica(suite, { name: "restored", config, postgres: restored });
        const statistics = await replica.getJson<{ CountInstances: number; CountStudies: number }>("/statistics");
        assert.deepStrictEqual([statistics.CountStudies, statistics.CountInstances], [sent.length, sent.length]);
        for (const instance of sent) {
            const downloaded = await replica.getBytes(`/instances/${await instanceIdOf(replica, instance.sopInstanceUid)}/file`);
            assertSamePart10(downloaded, readFileSync(instance.file), `${instance.file} after the restore`);
        }
        // A restore into a database that already holds Orthanc's tables fails whole and changes nothing.
        const again = await runScript(commands.restore, scratch, { databasePassword: restored.password });
        assert.notStrictEqual(again.code, 0, "restoring over a restored database succeeded");
        assert.strictEqual((await replica.getJson<{ CountInstances: number }>("/statistics")).CountInstances, sent.length);
        await replica.child.stop();
    });

    it("deletes nothing, however old: the bucket's lifecycle rules expire dumps, the job's key cannot delete", async function () {
        const tenant = stack.tenant.name;
        const now = Date.now();
        const old = [`${tenant}/${stamp(new Date(now - (retentionDays + 10) * day))}.dump`, `${tenant}/${stamp(new Date(now - 400 * day))}.dump`];
        const others = [`mhr/${stamp(new Date(now - 400 * day))}.dump`, `${tenant}/notes.txt`];
        const fixture = join(suite.tempDir("fixtures"), "object");
        for (const key of [...old, ...others]) {
            writeFileSync(fixture, key);
            const put = await moto.aws(["s3api", "put-object", "--bucket", bucket, "--key", key, "--body", fixture], auditor);
            assert.strictEqual(put.code, 0, put.stderr);
        }
        const before = await keys();
        const requestsBefore = moto.requests().length;
        const { dump, upload } = await runBackup(restored, restored.password);
        assert.strictEqual(dump.code, 0, dump.stderr);
        assert.strictEqual(upload.code, 0, upload.stderr);
        const jobRequests = moto.requests().slice(requestsBefore);
        const after = await keys();
        for (const key of before) {
            assert.ok(after.includes(key), `${key} was deleted`);
        }
        const fresh = after.filter((key) => !before.includes(key));
        assert.strictEqual(fresh.length, 1, `the new dump: ${fresh}`);
        assert.match(fresh[0], dumpKey(tenant));
        const requests = jobRequests.map((request) => request.operation);
        assert.ok(requests.includes("PutObject") || requests.includes("CompleteMultipartUpload"), requests.join(", "));
        assert.ok(!requests.some((operation) => /Delete|List/.test(operation)), `the job listed or deleted: ${requests.join(", ")}`);
        assert.strictEqual(sidecar.quits, 2);
        // Nor could it: the rendered policy denies every delete, and moto enforces it on the job's key.
        const erase = await moto.aws(["s3", "rm", `s3://${bucket}/${old[0]}`], jobKey);
        assert.notStrictEqual(erase.code, 0, "the job's key deleted an old dump");
        assert.match(erase.stderr, /AccessDenied/);
        assert.ok(await stored(old[0]), `${old[0]} is gone`);
    });

    it("uploads nothing when pg_dump fails, fails the job, and still stops the sidecar", async function () {
        const before = await keys();
        const { dump, upload } = await runBackup(restored, generatePassword());
        assert.notStrictEqual(dump.code, 0);
        assert.notStrictEqual(upload.code, 0);
        assert.match(upload.stderr, /pg_dump failed, nothing uploaded/);
        assert.deepStrictEqual(await keys(), before);
        assert.strictEqual(sidecar.quits, 3);
    });
});
