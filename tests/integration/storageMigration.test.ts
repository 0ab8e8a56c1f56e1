/**
 * Migration of a tenant from `postgresql` storage (large objects) to `filesystem`, on the real stack, with the
 * command and the steps of docs/storage-migration.md:
 *
 * 1. online copy: the storage tool copies every attachment through the REST API of a replica that still runs the old
 *    configuration, while that replica serves reads and takes new studies; the copy is killed midway (SIGKILL) and
 *    run again, and resumes;
 * 2. cut-over: the replicas restart with the old storage and `ReadOnly: true` (Orthanc 1.12.5+), so reads go on and
 *    writes are refused (a modality gets no Success and keeps the study); a final copy takes what arrived during
 *    step 1, `check --content` finds every attachment in place and reports the copies of instances deleted during step
 *    1 as orphans, which `--remove-orphans` removes;
 * 3. switch: the replicas restart with the `filesystem` configuration; every acknowledged instance is served byte for
 *    byte, new studies land in files, and once the large objects are dropped everything is still served.
 */
import assert from "assert";
import { dicomWebRoot } from "../../components/tenant/orthancConfig";
import { spawn } from "child_process";
import { readFileSync } from "fs";
import { createInterface } from "readline";
import { store } from "./support/dcmtk";
import { stow } from "./support/dicomWeb";
import { assertSamePart10, generateInstances, TestInstance } from "./support/dicom";
import { describeVersions, Replica, instanceIdOf } from "./support/orthanc";
import { assertPrerequisites } from "./support/prerequisites";
import { Resources, run } from "./support/processes";
import { startTenantStack, TenantStack } from "./support/stack";
import { indexedUuids, largeObjectCount, onSharedDirectory, runStorageCheck, storageToolArgs, storageToolEnv, storedFiles } from "./support/storageFilesystem";
import { OrthancConfig } from "../../components/tenant/orthancConfig";

const readOnly = (config: OrthancConfig): OrthancConfig => ({ ...config, ReadOnly: true });

describe("Migration from PostgreSQL storage to filesystem (real Orthanc 1.13.0, interrupted and resumed)", function () {
    this.timeout(300_000);
    const suite = new Resources();
    let stack: TenantStack;
    let volume: string;
    let data: string;
    let old: Replica;
    /** Every instance a sender got Success for: none may be lost. */
    let acknowledged: TestInstance[] = [];
    /** Instances deleted through the REST API after the online copy took them. */
    let deletedDuringCopy: TestInstance[] = [];

    const copy = (replica: Replica) => run(process.execPath, storageToolArgs("copy", replica, volume), { env: storageToolEnv(replica) });

    before(async function () {
        assertPrerequisites();
        stack = await startTenantStack(suite);
        volume = suite.tempDir("rwx-volume");
        data = suite.tempDir("data");
        old = await stack.startReplica(suite, "old-1");
        console.log(`      running on ${await describeVersions(old)}`);
        const instances = await generateInstances(data, 40, 32 * 1024, "before");
        const stored = await store({ port: old.dicomPort, calledAeTitle: old.aeTitle }, instances);
        assert.strictEqual(stored.unacknowledged.length, 0, stored.output);
        const stowed = await generateInstances(data, 4, 512 * 1024, "stowed");
        const response = await stow({ port: old.httpPort, credentials: stack.admin }, dicomWebRoot, stowed.map((instance) => readFileSync(instance.file)));
        assert.strictEqual(response.status, 200, response.body.toString());
        acknowledged = [...instances, ...stowed];
        deletedDuringCopy = instances.slice(-3);
        assert.ok((await largeObjectCount(stack.postgres)) >= acknowledged.length, "the old configuration does not store large objects");
    });

    after(() => suite.release());

    it("copies online while Orthanc serves reads and takes studies; killed midway, a second run resumes", async function () {
        const total = (await indexedUuids(stack.postgres)).length;
        // Reads of every instance, round after round, for as long as the copy runs.
        let copying = true;
        let reads = 0;
        const reader = (async () => {
            while (copying) {
                for (const instance of acknowledged.slice(0, 44)) {
                    const file = await old.getBytes(`/instances/${await instanceIdOf(old, instance.sopInstanceUid)}/file`);
                    assertSamePart10(file, readFileSync(instance.file), `${instance.file} during the copy`);
                    reads += 1;
                }
            }
        })();
        const during = await generateInstances(data, 10, 32 * 1024, "during");
        const writer = store({ port: old.dicomPort, calledAeTitle: old.aeTitle }, during);

        // The first run, one attachment at a time, killed once 10 files are in place.
        const first = spawn(process.execPath, storageToolArgs("copy", old, volume, ["--concurrency", "1"]), { env: storageToolEnv(old), stdio: ["ignore", "pipe", "pipe"] });
        let copiedBeforeKill = 0;
        createInterface({ input: first.stdout! }).on("line", (line) => {
            if (line.startsWith("copied ") && ++copiedBeforeKill === 10) first.kill("SIGKILL");
        });
        const exit = await new Promise<NodeJS.Signals | null>((resolve) => first.once("exit", (_, signal) => resolve(signal)));
        assert.strictEqual(exit, "SIGKILL", "the copy finished before it could be interrupted");
        const afterKill = storedFiles(volume).uuids.length;
        assert.ok(afterKill >= 10 && afterKill < total, `${afterKill} files after the kill, of ${total}`);

        const second = await copy(old);
        assert.strictEqual(second.code, 0, second.stdout + second.stderr);
        const summary = /summary: copied (\d+) \(\d+ bytes\), already in place (\d+)/.exec(second.stdout);
        assert.ok(summary, second.stdout);
        assert.ok(Number(summary[2]) >= 10, `the second run re-copied what the first had done: ${summary[0]}`);
        console.log(`      first run killed after ${afterKill} files; second run: ${summary[0]}`);

        const written = await writer;
        copying = false;
        await reader;
        assert.strictEqual(written.unacknowledged.length, 0, written.output);
        acknowledged.push(...written.acknowledged);
        assert.ok(reads >= 44, `only ${reads} reads during the copy`);
        console.log(`      ${reads} reads served byte for byte during the copy`);
        // Studies keep arriving after the online copy, and others are deleted: the cut-over's final pass must take the
        // new ones, and the deleted ones' copies are orphans in the directory.
        const late = await store({ port: old.dicomPort, calledAeTitle: old.aeTitle }, await generateInstances(data, 5, 32 * 1024, "late"));
        assert.strictEqual(late.unacknowledged.length, 0, late.output);
        acknowledged.push(...late.acknowledged);
        for (const instance of deletedDuringCopy) {
            const response = await old.request(`/instances/${await instanceIdOf(old, instance.sopInstanceUid)}`, { method: "DELETE" });
            assert.strictEqual(response.status, 200, await response.text());
        }
        acknowledged = acknowledged.filter((instance) => !deletedDuringCopy.includes(instance));
    });

    it("cut-over: read-only replicas serve reads and refuse writes; the final copy completes the directory", async function () {
        await old.child.stop();
        old = await stack.startReplica(suite, "old-readonly", readOnly);
        const sample = acknowledged[acknowledged.length - 1];
        assertSamePart10(await old.getBytes(`/instances/${await instanceIdOf(old, sample.sopInstanceUid)}/file`), readFileSync(sample.file), "read-only replica");
        const refused = await store({ port: old.dicomPort, calledAeTitle: old.aeTitle }, await generateInstances(data, 1, 1024, "refused"));
        assert.strictEqual(refused.acknowledged.length, 0, "a read-only replica acknowledged a C-STORE");

        const final = await copy(old);
        assert.strictEqual(final.code, 0, final.stdout + final.stderr);
        const copied = /summary: copied (\d+)/.exec(final.stdout);
        assert.ok(copied && Number(copied[1]) >= 5, `the final pass did not copy the late studies: ${final.stdout}`);
        console.log(`      final pass: ${final.stdout.trim().split("\n").pop()}`);
        // The copies of the instances deleted during the online copy are orphans: reported, then removed (nothing
        // writes to the directory yet), after which the check passes.
        const check = await runStorageCheck(old, volume);
        assert.strictEqual(check.code, 1, check.stdout + check.stderr);
        assert.match(check.stdout, new RegExp(`0 missing, 0 differing, ${deletedDuringCopy.length} orphans`));
        const removal = await run(process.execPath, storageToolArgs("check", old, volume, ["--content", "--remove-orphans"]), { env: storageToolEnv(old) });
        assert.strictEqual(removal.code, 0, removal.stdout + removal.stderr);
        const again = await runStorageCheck(old, volume);
        assert.strictEqual(again.code, 0, again.stdout + again.stderr);
        assert.deepStrictEqual(storedFiles(volume).uuids, await indexedUuids(stack.postgres));
        await old.child.stop();
    });

    it("switch: filesystem replicas serve every acknowledged instance byte for byte, also once the large objects are gone", async function () {
        const replicas = await Promise.all(["fs-1", "fs-2"].map((name) => stack.startReplica(suite, name, onSharedDirectory(volume))));
        const verifyAll = async () => {
            for (const replica of replicas) {
                assert.strictEqual((await replica.getJson<{ CountInstances: number }>("/statistics")).CountInstances, acknowledged.length);
                for (const instance of acknowledged) {
                    const file = await replica.getBytes(`/instances/${await instanceIdOf(replica, instance.sopInstanceUid)}/file`);
                    assertSamePart10(file, readFileSync(instance.file), `${instance.file} from ${replica.name}`);
                }
            }
        };
        await verifyAll();
        // The runbook's last step: the large objects go once the check has passed; nothing reads them any more.
        const largeObjects = await largeObjectCount(stack.postgres);
        await stack.postgres.asOrthancRole("SELECT count(lo_unlink(content)) FROM storagearea; TRUNCATE storagearea");
        assert.strictEqual(await largeObjectCount(stack.postgres), 0);
        await verifyAll();
        // New studies land in the directory.
        const after = await generateInstances(data, 3, 16 * 1024, "after");
        const stored = await store({ port: replicas[1].dicomPort, calledAeTitle: replicas[1].aeTitle }, after);
        assert.strictEqual(stored.unacknowledged.length, 0, stored.output);
        acknowledged.push(...after);
        assert.deepStrictEqual(storedFiles(volume).uuids, await indexedUuids(stack.postgres));
        const check = await runStorageCheck(replicas[0], volume);
        assert.strictEqual(check.code, 0, check.stdout + check.stderr);
        console.log(`      ${largeObjects} large objects dropped; ${check.stdout.trim().split("\n").pop()}`);
    });
});
