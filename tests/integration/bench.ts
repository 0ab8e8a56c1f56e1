/**
 * C-STORE throughput of the rendered tenant configuration on this machine (a benchmark, not a test).
 *
 *   npm run bench                      300 instances of ~128 KiB per replica, 2 replicas
 *   BENCH_INSTANCES=1000 BENCH_REPLICAS=1 npm run bench
 *
 * Starts PostgreSQL and the replicas exactly as the integration suite does, sends each replica its own instances with
 * `storescu` in one association (one replica after the other, so they do not share the CPU), prints instances/s and
 * MiB/s per replica, and removes everything it started.
 */
import { store, storeRate } from "./support/dcmtk";
import { generateInstances } from "./support/dicom";
import { describeVersions } from "./support/orthanc";
import { assertPrerequisites } from "./support/prerequisites";
import { Resources } from "./support/processes";
import { startTenantStack } from "./support/stack";

function positiveInteger(name: string, fallback: number): number {
    const raw = process.env[name];
    const value = raw === undefined || raw === "" ? fallback : Number(raw);
    if (!Number.isInteger(value) || value < 1) {
        throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
    }
    return value;
}

async function main(): Promise<void> {
    const instances = positiveInteger("BENCH_INSTANCES", 300);
    const replicaCount = positiveInteger("BENCH_REPLICAS", 2);
    const pixelBytes = positiveInteger("BENCH_PIXEL_BYTES", 128 * 1024);
    assertPrerequisites();

    const resources = new Resources();
    try {
        const started = Date.now();
        const stack = await startTenantStack(resources);
        const names = Array.from({ length: replicaCount }, (_, index) => String.fromCharCode("a".charCodeAt(0) + index));
        const replicas = await Promise.all(names.map((name) => stack.startReplica(resources, name)));
        const dataDir = resources.tempDir("bench-data");
        console.log(`PostgreSQL and ${replicaCount} Orthanc replica(s) up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
        console.log(`running on ${await describeVersions(replicas[0])}`);

        for (const replica of replicas) {
            const batch = await generateInstances(dataDir, instances, pixelBytes, `replica-${replica.name}`);
            const result = await store({ port: replica.dicomPort, calledAeTitle: replica.aeTitle }, batch);
            if (result.unacknowledged.length > 0) {
                throw new Error(`replica ${replica.name}: ${result.unacknowledged.length} instances not acknowledged:\n${result.output}`);
            }
            const rate = storeRate(result);
            const averageKiB = batch.reduce((sum, instance) => sum + instance.size, 0) / batch.length / 1024;
            console.log(
                `replica ${replica.name}: ${batch.length} instances of ${averageKiB.toFixed(0)} KiB in ${result.seconds.toFixed(2)} s: ` +
                    `${rate.instancesPerSecond.toFixed(0)} instances/s, ${rate.mebibytesPerSecond.toFixed(1)} MiB/s`,
            );
        }
    } finally {
        await resources.release();
    }
}

main().catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
});
