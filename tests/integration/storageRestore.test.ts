/**
 * The restore drill with `filesystem` storage, on the real stack: the index comes back from the backup job's dump
 * (backupCommands/restoreCommands, run as restore.test.ts runs them: host pg_dump/pg_restore and AWS CLI, moto's S3
 * with the job's key scoped by the rendered policy), the files from a copy of the directory taken later (standing for
 * the volume snapshot; what a CSI snapshot or the provider's backup adds is not run here).
 *
 * The two are never taken at the same instant, so the drill meets both kinds of mismatch on purpose: studies stored
 * after the dump are files the index does not name (orphans), and instances deleted after the dump are index rows
 * whose files are gone (missing). The storage tool's `check` must report both; the runbook's answers are run too:
 * orphans that are DICOM files are stored again through the REST API (nothing acknowledged after the dump is lost),
 * and rows without files are deleted.
 */
import assert from "assert";
import { cpSync, readFileSync, rmSync } from "fs";
import { join } from "path";
import { backupCommands, DatabaseTarget, restoreCommands } from "../../components/data/backup/backup";
import { backupAccessPolicy, bucketProtection } from "../../components/data/backup/backupPolicy";
import { clientPath, runScript, startSidecarStub } from "./support/backup";
import { store } from "./support/dcmtk";
import { webRequest } from "./support/dicomWeb";
import { assertSamePart10, generateInstances, TestInstance } from "./support/dicom";
import { productionConfig, Replica, startReplica, instanceIdOf } from "./support/orthanc";
import { Postgres, startPostgres } from "./support/postgres";
import { assertPrerequisites } from "./support/prerequisites";
import { Resources, run } from "./support/processes";
import { AccessKey, MotoServer, startMoto } from "./support/moto";
import { startTenantStack, TenantStack, testDomain } from "./support/stack";
import { checkStore, largeObjectCount, onSharedDirectory, runStorageCheck } from "./support/storageFilesystem";

const bucket = "korthweb-backups";

describe("Restore drill with filesystem storage (index from the backup job's dump, files from a later copy of the volume)", function () {
    this.timeout(300_000);
    const suite = new Resources();
    let stack: TenantStack;
    let moto: MotoServer;
    let jobKey: AccessKey;
    let volume: string;
    let snapshot: string;
    let kept: TestInstance[] = [];
    let afterDump: TestInstance[] = [];
    let deletedAfterDump: { instance: TestInstance; uuid: string }[] = [];
    let restored: Replica;

    const target = (postgres: Postgres): DatabaseTarget => ({ host: postgres.host, port: postgres.port, name: postgres.database, user: postgres.user });
    const objectStorage = () => ({ endpoint: moto.endpoint, bucket, region: moto.region, prefix: `${stack.tenant.name}/` });
    const s3Secrets = () => jobKey;

    before(async function () {
        assertPrerequisites();
        const aws = await run("aws", ["--version"], { env: { PATH: clientPath } }).catch(() => undefined);
        if (!aws || aws.code !== 0) {
            throw new Error("the AWS CLI is missing: apt-get install awscli (scripts/run test installs it)");
        }
        stack = await startTenantStack(suite);
        moto = await startMoto(suite, "eu-central-1");
        const prefix = `${stack.tenant.name}/`;
        await moto.createBucket(bucket, bucketProtection(stack.tenant.name, prefix, 30, "0 1 * * *"));
        jobKey = await moto.user(`backup-${stack.tenant.name}`, backupAccessPolicy({ bucket, prefix }, "pg_dump"));
        await moto.enforce();
        volume = suite.tempDir("rwx-volume");
        snapshot = join(suite.tempDir("volume-snapshot"), "files");
    });

    after(() => suite.release());

    it("backs up the index while Orthanc runs; later stores and deletes; then the volume is copied", async function () {
        const replica = await stack.startReplica(suite, "before", onSharedDirectory(volume));
        const data = suite.tempDir("data");
        const first = await generateInstances(data, 12, 48 * 1024, "first");
        assert.strictEqual((await store({ port: replica.dicomPort, calledAeTitle: replica.aeTitle }, first)).unacknowledged.length, 0);

        const scratch = suite.tempDir("backup-scratch");
        const sidecar = await startSidecarStub(suite);
        const commands = backupCommands({ database: target(stack.postgres), s3: objectStorage(), scratchDirectory: scratch, quitUrl: sidecar.quitUrl });
        const [dump, upload] = await Promise.all([
            runScript(commands.dump, scratch, { databasePassword: stack.postgres.password }),
            runScript(commands.upload, scratch, s3Secrets()),
        ]);
        assert.strictEqual(dump.code, 0, dump.stderr);
        assert.strictEqual(upload.code, 0, upload.stderr);
        // The dump holds the index only: no large object went into it.
        assert.strictEqual(await largeObjectCount(stack.postgres), 0);

        afterDump = await generateInstances(data, 4, 48 * 1024, "after-dump");
        assert.strictEqual((await store({ port: replica.dicomPort, calledAeTitle: replica.aeTitle }, afterDump)).unacknowledged.length, 0);
        for (const instance of first.slice(0, 3)) {
            const id = await instanceIdOf(replica, instance.sopInstanceUid);
            const uuid = (await replica.getJson<{ Uuid: string }>(`/instances/${id}/attachments/dicom/info`)).Uuid;
            assert.strictEqual((await replica.request(`/instances/${id}`, { method: "DELETE" })).status, 200);
            deletedAfterDump.push({ instance, uuid });
        }
        kept = first.slice(3);
        cpSync(volume, snapshot, { recursive: true, preserveTimestamps: true });
        await replica.child.stop();
    });

    it("restores: the index from the dump into a new PostgreSQL, the files from the copy; every instance the dump names and the copy holds is served byte for byte", async function () {
        // The disaster: database and volume gone.
        await stack.postgres.child.stop();
        rmSync(volume, { recursive: true, force: true });
        const postgres = await startPostgres(suite);
        const scratch = suite.tempDir("restore-scratch");
        const commands = restoreCommands({ database: target(postgres), s3: objectStorage(), scratchDirectory: scratch });
        const download = await runScript(commands.download, scratch, s3Secrets());
        assert.strictEqual(download.code, 0, download.stderr);
        const restore = await runScript(commands.restore, scratch, { databasePassword: postgres.password });
        assert.strictEqual(restore.code, 0, restore.stderr);
        const restoredVolume = suite.tempDir("restored-volume");
        cpSync(snapshot, restoredVolume, { recursive: true, preserveTimestamps: true });
        volume = restoredVolume;

        const config = productionConfig(stack.tenant, testDomain, stack.admin.password, postgres.password);
        restored = await startReplica(suite, { name: "restored", config, postgres, extend: onSharedDirectory(volume) });
        assert.strictEqual((await restored.getJson<{ CountInstances: number }>("/statistics")).CountInstances, kept.length + deletedAfterDump.length);
        for (const instance of kept) {
            const file = await restored.getBytes(`/instances/${await instanceIdOf(restored, instance.sopInstanceUid)}/file`);
            assertSamePart10(file, readFileSync(instance.file), `${instance.file} after the restore`);
        }
    });

    it("the check reports index rows without files (deleted after the dump) and orphan files (stored after the dump), and fails", async function () {
        const report = await checkStore(restored, volume);
        assert.deepStrictEqual(report.missing.map((attachment) => attachment.uuid).sort(), deletedAfterDump.map((entry) => entry.uuid).sort());
        assert.deepStrictEqual(report.differing, []);
        assert.strictEqual(report.orphans.length, afterDump.length, `orphans: ${report.orphans}`);
        for (const { instance } of deletedAfterDump) {
            const response = await restored.request(`/instances/${await instanceIdOf(restored, instance.sopInstanceUid)}/file`);
            assert.notStrictEqual(response.status, 200, "an instance without its file was served");
        }
        const check = await runStorageCheck(restored, volume);
        assert.strictEqual(check.code, 1, check.stdout + check.stderr);
        assert.match(check.stdout, new RegExp(`${deletedAfterDump.length} missing, 0 differing, ${afterDump.length} orphans`));
        console.log(`      drill: ${check.stdout.trim().split("\n").pop()}`);
    });

    it("the runbook's answers: orphan DICOM files stored again, rows without files deleted; the check then passes", async function () {
        for (const orphan of (await checkStore(restored, volume, false)).orphans) {
            const path = join(volume, orphan);
            const bytes = readFileSync(path);
            if (bytes.toString("latin1", 128, 132) !== "DICM") continue;
            const response = await webRequest({ port: restored.httpPort, credentials: stack.admin }, "/instances", { method: "POST", body: bytes });
            assert.strictEqual(response.status, 200, response.body.toString());
            rmSync(path);
        }
        for (const { instance } of deletedAfterDump) {
            const id = await instanceIdOf(restored, instance.sopInstanceUid);
            assert.strictEqual((await restored.request(`/instances/${id}`, { method: "DELETE" })).status, 200);
        }
        for (const instance of [...kept, ...afterDump]) {
            const file = await restored.getBytes(`/instances/${await instanceIdOf(restored, instance.sopInstanceUid)}/file`);
            assertSamePart10(file, readFileSync(instance.file), `${instance.file} after the repair`);
        }
        const check = await runStorageCheck(restored, volume);
        assert.strictEqual(check.code, 0, check.stdout + check.stderr);
    });
});
