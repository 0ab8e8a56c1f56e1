/**
 * The upgrade path the program promises (README "Upgrading Orthanc"): a tenant's database written by the previous
 * Orthanc and PostgreSQL plugin, every old replica stopped, ONE replica of the image's versions opening it and
 * migrating the plugin's schema while nothing else is connected, then two of them serving it, every instance still
 * there byte for byte.
 *
 * The old side is Debian trixie's Orthanc 1.12.7 with the PostgreSQL plugins 5.0 (the `trixie` root, here and nowhere
 * else in the suite); the new side the sid root every other test runs (Orthanc 1.13.0, plugins 10.3). Both run the
 * configuration the program renders, on one throwaway PostgreSQL, as the old and the new Deployment share the
 * tenant's database. What is not run: Kubernetes deleting the old Deployment before creating the new one (modelled in
 * tests/upstream.test.ts); here the old processes are stopped with SIGTERM, as the kubelet stops a pod.
 */
import assert from "assert";
import { readFileSync } from "fs";
import { store } from "./support/dcmtk";
import { assertSamePart10, generateInstances, TestInstance } from "./support/dicom";
import { describeVersions, differencesFromImage, instanceIdOf, reportedVersions } from "./support/orthanc";
import { assertPrerequisites } from "./support/prerequisites";
import { Resources } from "./support/processes";
import { startTenantStack, TenantStack } from "./support/stack";

/** The plugin's schema revision (orthanc-databases, Framework/Plugins/GlobalProperties.h: DatabasePatchLevel = 4). */
const schemaRevisionSql = "SELECT value FROM GlobalProperties WHERE property = 4";
/** What plugin 10.3 logs for each step it applies (PostgreSQL/Plugins/PostgreSQLIndex.cpp, ConfigureDatabase). */
const upgradeStep = /Upgrading DB schema from revision (\d+) to revision (\d+)/g;

describe("Upgrade: a database written by PostgreSQL plugin 5.0, migrated by one 10.3 replica alone, served by two", function () {
    this.timeout(300_000);
    const suite = new Resources();
    let stack: TenantStack;
    const sent: TestInstance[] = [];

    async function orthancConnections(): Promise<number> {
        return Number(await stack.postgres.asSuperuser(`SELECT count(*) FROM pg_stat_activity WHERE usename = '${stack.postgres.user}'`));
    }

    before(async function () {
        assertPrerequisites(["sid", "trixie"]);
        stack = await startTenantStack(suite);
    });

    after(async function () {
        await suite.release();
    });

    it("stores studies through two replicas of the old plugin, stops them, and one 10.3 replica migrates the schema alone; two then serve every instance", async function () {
        const dataDir = suite.tempDir("upgrade-data");
        const old = await Promise.all(["old-a", "old-b"].map((name) => stack.startReplica(suite, name, undefined, { root: "trixie" })));
        const oldVersions = await reportedVersions(old[0]);
        console.log(`      old replicas: ${await describeVersions(old[0])}`);
        assert.notStrictEqual(oldVersions.plugins["postgresql-index"], "10.3", "the old side must run an older plugin");
        const oldRevision = Number(await stack.postgres.asOrthancRole(schemaRevisionSql));

        // Two modalities' studies, one through each old replica.
        for (const [index, replica] of old.entries()) {
            const instances = await generateInstances(dataDir, 15, 4 * 1024, `old-${index}`, { oneStudy: true, patientId: `UPGRADE-${index}` });
            const result = await store({ port: replica.dicomPort, calledAeTitle: replica.aeTitle }, instances);
            assert.strictEqual(result.unacknowledged.length, 0, `storescu to ${replica.name}:\n${result.output}`);
            sent.push(...result.acknowledged);
        }
        const before = await old[0].getJson<{ CountStudies: number; CountInstances: number }>("/statistics");
        assert.deepStrictEqual({ studies: before.CountStudies, instances: before.CountInstances }, { studies: 2, instances: sent.length });

        // Every old replica stopped, as the old Deployment is deleted before the new one is created.
        await Promise.all(old.map((replica) => replica.child.stop()));
        assert.ok(old.every((replica) => !replica.child.running));
        assert.strictEqual(await orthancConnections(), 0, "an old replica is still connected");

        // One new replica, alone on the database: the one that migrates.
        const first = await stack.startReplica(suite, "new-1");
        assert.deepStrictEqual(differencesFromImage(await reportedVersions(first)), []);
        const steps = [...first.child.readLog().matchAll(upgradeStep)].map((step) => `${step[1]}->${step[2]}`);
        console.log(`      schema revision ${oldRevision} written by ${oldVersions.plugins["postgresql-index"]}; replica new-1 applied ${steps.join(", ")}`);
        assert.ok(steps.length > 0, `replica new-1 did not migrate:\n${first.child.logTail(40)}`);
        assert.strictEqual(steps[0].split("->")[0], String(oldRevision), "the migration starts from the old plugin's revision");
        const newRevision = Number(await stack.postgres.asOrthancRole(schemaRevisionSql));
        assert.ok(newRevision > oldRevision, `revision ${oldRevision} -> ${newRevision}`);
        // Its connections, held since start-up, are all there is once it has migrated: no other replica was connected.
        const alone = await orthancConnections();
        assert.ok(alone > 0, "replica new-1 holds its connections");

        // A second one finds the schema current and migrates nothing.
        const second = await stack.startReplica(suite, "new-2");
        assert.ok((await orthancConnections()) > alone, "replica new-2 connected before replica new-1 had migrated alone");
        assert.deepStrictEqual([...second.child.readLog().matchAll(upgradeStep)].map((step) => step[0]), [], "replica new-2 migrated again");
        assert.strictEqual(Number(await stack.postgres.asOrthancRole(schemaRevisionSql)), newRevision);

        for (const replica of [first, second]) {
            const after = await replica.getJson<{ CountStudies: number; CountInstances: number }>("/statistics");
            assert.deepStrictEqual({ studies: after.CountStudies, instances: after.CountInstances }, { studies: 2, instances: sent.length }, `replica ${replica.name}`);
            for (const instance of sent) {
                const downloaded = await replica.getBytes(`/instances/${await instanceIdOf(replica, instance.sopInstanceUid)}/file`);
                assertSamePart10(downloaded, readFileSync(instance.file), `${instance.file} through replica ${replica.name}`);
            }
        }

        // And they keep serving: stored through one new replica, read byte for byte through the other.
        const fresh = await generateInstances(dataDir, 3, 4 * 1024, "after-upgrade");
        const stored = await store({ port: second.dicomPort, calledAeTitle: second.aeTitle }, fresh);
        assert.strictEqual(stored.unacknowledged.length, 0, `storescu to new-2:\n${stored.output}`);
        for (const instance of fresh) {
            const downloaded = await first.getBytes(`/instances/${await instanceIdOf(first, instance.sopInstanceUid)}/file`);
            assertSamePart10(downloaded, readFileSync(instance.file), `${instance.file} through replica new-1`);
        }
    });
});
