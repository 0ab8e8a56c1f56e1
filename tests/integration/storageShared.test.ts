/**
 * Several replicas writing one `filesystem` storage at once, on the real stack: two Orthanc 1.13.0 replicas of the
 * rendered tenant configuration (PostgreSQL plugins 10.3) with their files in ONE directory, which stands for the
 * tenant's ReadWriteMany volume, and their index in one PostgreSQL (support/storageFilesystem.ts).
 *
 * What a volume adds that a directory of this machine does not (NFS/EFS attribute caching, close-to-open consistency)
 * is not run here: the claim is Orthanc's own, that a replica never reads a file before the index names it, and the
 * index row is written after the file (fsynced: SyncStorageArea's default).
 */
import assert from "assert";
import { dicomWebRoot } from "../../components/tenant/orthancConfig";
import { existsSync, readFileSync } from "fs";
import { store } from "./support/dcmtk";
import { stow } from "./support/dicomWeb";
import { assertSamePart10, generateInstances, TestInstance } from "./support/dicom";
import { describeVersions, Replica, instanceIdOf } from "./support/orthanc";
import { assertPrerequisites } from "./support/prerequisites";
import { Resources } from "./support/processes";
import { startTenantStack, TenantStack } from "./support/stack";
import { checkStore, indexedUuids, largeObjectCount, onSharedDirectory, runStorageCheck, storedFiles } from "./support/storageFilesystem";
import { attachmentFile } from "../../scripts/tools/storageFiles";

describe("Two replicas on one filesystem storage (real Orthanc 1.13.0, one directory, one PostgreSQL index)", function () {
    this.timeout(300_000);
    const suite = new Resources();
    let stack: TenantStack;
    let shared: string;
    let replicas: Replica[];
    let sent: TestInstance[] = [];

    before(async function () {
        assertPrerequisites();
        stack = await startTenantStack(suite);
        shared = suite.tempDir("rwx-volume");
        replicas = await Promise.all(["fs-a", "fs-b"].map((name) => stack.startReplica(suite, name, onSharedDirectory(shared))));
        console.log(`      running on ${await describeVersions(replicas[0])}`);
    });

    after(() => suite.release());

    it("stores concurrent C-STOREs and STOWs into both replicas, files in the shared directory, nothing in PostgreSQL's storage", async function () {
        const data = suite.tempDir("data");
        const batches = await Promise.all([0, 1, 2, 3].map((batch) => generateInstances(data, 15, 64 * 1024, `batch${batch}`)));
        const stowed = await Promise.all([0, 1].map((batch) => generateInstances(data, 5, 256 * 1024, `stow${batch}`)));
        // Two associations into each replica and one STOW-RS request into each, all at once.
        const [a1, a2, b1, b2, stowA, stowB] = await Promise.all([
            store({ port: replicas[0].dicomPort, calledAeTitle: replicas[0].aeTitle }, batches[0]),
            store({ port: replicas[0].dicomPort, calledAeTitle: replicas[0].aeTitle }, batches[1]),
            store({ port: replicas[1].dicomPort, calledAeTitle: replicas[1].aeTitle }, batches[2]),
            store({ port: replicas[1].dicomPort, calledAeTitle: replicas[1].aeTitle }, batches[3]),
            ...[0, 1].map((index) =>
                stow({ port: replicas[index].httpPort, credentials: stack.admin }, dicomWebRoot, stowed[index].map((instance) => readFileSync(instance.file))),
            ),
        ]);
        for (const result of [a1, a2, b1, b2]) {
            assert.strictEqual(result.unacknowledged.length, 0, result.output);
        }
        for (const result of [stowA, stowB]) {
            assert.strictEqual(result.status, 200, result.body.toString());
        }
        sent = [...batches.flat(), ...stowed.flat()];
        for (const replica of replicas) {
            assert.strictEqual((await replica.getJson<{ CountInstances: number }>("/statistics")).CountInstances, sent.length);
        }
        const files = storedFiles(shared);
        assert.deepStrictEqual(files.others, [], "files outside Orthanc's layout");
        assert.ok(files.uuids.length >= sent.length, `${files.uuids.length} files for ${sent.length} instances`);
        assert.strictEqual(await largeObjectCount(stack.postgres), 0, "PostgreSQL stored files although EnableStorage is false");
    });

    it("serves every instance byte for byte from both replicas, whichever stored it", async function () {
        for (const instance of sent) {
            const sentBytes = readFileSync(instance.file);
            const copies: Buffer[] = [];
            for (const replica of replicas) {
                const id = await instanceIdOf(replica, instance.sopInstanceUid);
                const file = await replica.getBytes(`/instances/${id}/file`);
                assertSamePart10(file, sentBytes, `${instance.file} from ${replica.name}`);
                copies.push(file);
            }
            assert.ok(copies[0].equals(copies[1]), `${instance.file}: the replicas serve different bytes`);
        }
    });

    it("a delete through one replica removes the file for both", async function () {
        const doomed = sent.filter((_, index) => index % 3 === 0);
        const uuidsBefore = new Set(storedFiles(shared).uuids);
        const doomedFiles: string[] = [];
        for (const instance of doomed) {
            const id = await instanceIdOf(replicas[0], instance.sopInstanceUid);
            const uuid = (await replicas[0].getJson<{ Uuid: string }>(`/instances/${id}/attachments/dicom/info`)).Uuid;
            assert.ok(uuidsBefore.has(uuid), `${uuid} is not in the shared directory`);
            doomedFiles.push(attachmentFile(shared, uuid));
            const response = await replicas[0].request(`/instances/${id}`, { method: "DELETE" });
            assert.strictEqual(response.status, 200, await response.text());
            // The other replica no longer has it: not in its index, not by its file.
            assert.strictEqual((await replicas[1].request(`/instances/${id}/file`)).status, 404);
        }
        for (const file of doomedFiles) {
            assert.ok(!existsSync(file), `${file} survived the delete`);
        }
        sent = sent.filter((instance) => !doomed.includes(instance));
        for (const replica of replicas) {
            assert.strictEqual((await replica.getJson<{ CountInstances: number }>("/statistics")).CountInstances, sent.length);
        }
    });

    it("ends with no orphan file and no index row without its file (the directory against PostgreSQL's attachments)", async function () {
        const indexed = await indexedUuids(stack.postgres);
        const files = storedFiles(shared);
        assert.deepStrictEqual(files.uuids, indexed, "the directory's files and the index's attachments differ");
        assert.deepStrictEqual(files.others, []);
        // The storage tool's check says the same through the REST API, content included, and exits 0.
        const report = await checkStore(replicas[1], shared);
        assert.deepStrictEqual([report.missing, report.differing, report.orphans], [[], [], []]);
        assert.strictEqual(report.attachments, indexed.length);
        const check = await runStorageCheck(replicas[0], shared);
        assert.strictEqual(check.code, 0, check.stdout + check.stderr);
        console.log(`      ${check.stdout.trim().split("\n").pop()}`);
    });
});
