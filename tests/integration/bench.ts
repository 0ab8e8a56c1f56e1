/**
 * The tenant's Orthanc against Korthweb's and against the machine's ceiling, on the same generated data (a benchmark,
 * not a test). See the README's "Benchmark" section for what it measures and the latest figures.
 *
 *   npm run bench                        (also: scripts/run bench)
 *   BENCH_CONFIGS=rendered,ceiling BENCH_INSTANCES=1000 npm run bench
 *
 * Sizes and counts (defaults in brackets):
 *   BENCH_INSTANCES [300]              instances of the study sent in one association (and retrieved by WADO-RS)
 *   BENCH_PIXEL_BYTES [131072]         pixel data per instance, bytes
 *   BENCH_ASSOCIATIONS [4]             concurrent storescu associations (spread over the replicas)
 *   BENCH_CONCURRENT_INSTANCES [100]   instances per concurrent association (one study each)
 *   BENCH_REPLICAS [2]                 Orthanc replicas of `rendered`, `rendered-filesystem` and `korthweb` (`ceiling` is one process)
 *   BENCH_STOW_INSTANCES [200]         instances of the study uploaded by STOW-RS
 *   BENCH_STOW_BATCH [10]              instances per STOW-RS request
 *   BENCH_WADO_REPEAT [5]              WADO-RS retrievals of the study
 *   BENCH_LARGE_FRAMES [128]           512x512x16-bit frames of the large instance (128 = 64 MiB)
 *   BENCH_LARGE_COUNT [2]              large instances (distinct), sent in one association
 * Selecting and varying (for finding out why one configuration is slower):
 *   BENCH_CONFIGS [rendered,rendered-filesystem,korthweb,ceiling]
 *   BENCH_WORKLOADS [oneAssociation,concurrent,stowRs,wadoRs,largeInstance]
 *   BENCH_RENDERED_OVERRIDES           JSON deep-merged into the rendered configuration, e.g. '{"PostgreSQL":{"IndexConnectionsCount":1}}'
 *   BENCH_POSTGRES_SETTINGS            `;`-separated PostgreSQL settings, e.g. 'synchronous_commit=off'
 *   BENCH_RESULTS [bench-results.json] where the JSON goes (relative to the repository root)
 */
import { writeFileSync } from "fs";
import { cpus } from "os";
import { resolve } from "path";
import { ConfigurationName, configurationNames, korthwebConfigFile, readKorthwebConfig, RunningConfiguration, startConfiguration } from "./bench/configurations";
import { cpuSeconds, peakResidentMiB, resetPeakResident, treeCpuSeconds } from "./bench/procfs";
import { timedStore, writeLogConfig } from "./bench/storescu";
import { generateInstances, TestInstance } from "./support/dicom";
import { parseMultipart, stow, webRequest, WebTarget } from "./support/dicomWeb";
import { formatVersions } from "./support/orthanc";
import { assertPrerequisites } from "./support/prerequisites";
import { mapLimit, Resources } from "./support/processes";
import { percentile } from "./support/soakFigures";
import { requirePinnedVersions } from "./support/stack";

/** Variants of the rendered configuration that differ only in where the files are stored. */
const storageVariants: readonly ConfigurationName[] = ["rendered-filesystem"];

const workloadNames = ["oneAssociation", "concurrent", "stowRs", "wadoRs", "largeInstance"] as const;
type WorkloadName = (typeof workloadNames)[number];

/** What each ratio compares: instances/s, or MiB/s where the bytes are the point. */
const ratioBasis: Record<WorkloadName, "instancesPerSecond" | "mebibytesPerSecond"> = {
    oneAssociation: "instancesPerSecond",
    concurrent: "instancesPerSecond",
    stowRs: "instancesPerSecond",
    wadoRs: "mebibytesPerSecond",
    largeInstance: "mebibytesPerSecond",
};

interface Figures {
    instances: number;
    mebibytes: number;
    seconds: number;
    instancesPerSecond: number;
    mebibytesPerSecond: number;
    latencyP50Ms: number;
    latencyP95Ms: number;
    /** What one latency sample is. */
    latencyOf: string;
    /** VmHWM of each Orthanc process during the workload, MiB. */
    peakResidentMiB: Record<string, number>;
    /** CPU seconds during the workload: all Orthanc processes, and PostgreSQL (postmaster and backends). */
    orthancCpuSeconds: number;
    postgresCpuSeconds?: number;
    note?: string;
}

function positiveInteger(name: string, fallback: number): number {
    const raw = process.env[name];
    const value = raw === undefined || raw === "" ? fallback : Number(raw);
    if (!Number.isInteger(value) || value < 1) {
        throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
    }
    return value;
}

const settings = {
    instances: positiveInteger("BENCH_INSTANCES", 300),
    pixelBytes: positiveInteger("BENCH_PIXEL_BYTES", 128 * 1024),
    associations: positiveInteger("BENCH_ASSOCIATIONS", 4),
    concurrentInstances: positiveInteger("BENCH_CONCURRENT_INSTANCES", 100),
    replicas: positiveInteger("BENCH_REPLICAS", 2),
    stowInstances: positiveInteger("BENCH_STOW_INSTANCES", 200),
    stowBatch: positiveInteger("BENCH_STOW_BATCH", 10),
    wadoRepeat: positiveInteger("BENCH_WADO_REPEAT", 5),
    largeFrames: positiveInteger("BENCH_LARGE_FRAMES", 128),
    largeCount: positiveInteger("BENCH_LARGE_COUNT", 2),
};

function selectedConfigurations(): ConfigurationName[] {
    const raw = process.env.BENCH_CONFIGS;
    if (!raw) {
        return [...configurationNames];
    }
    const names = raw.split(",").map((name) => name.trim());
    for (const name of names) {
        if (!configurationNames.includes(name as ConfigurationName)) {
            throw new Error(`BENCH_CONFIGS: unknown configuration ${name} (known: ${configurationNames.join(", ")})`);
        }
    }
    return names as ConfigurationName[];
}

interface Data {
    study: TestInstance[];
    concurrent: TestInstance[][];
    stow: TestInstance[];
    large: TestInstance[];
    logConfig: string;
}

/** Runs `work` with the Orthanc processes' peak memory reset before and read after, and CPU time counted. */
async function measure(
    running: RunningConfiguration,
    work: () => Promise<Omit<Figures, "peakResidentMiB" | "orthancCpuSeconds" | "postgresCpuSeconds" | "instancesPerSecond" | "mebibytesPerSecond">>,
): Promise<Figures> {
    const pids = running.replicas.map((replica) => replica.child.process.pid!);
    for (const pid of pids) {
        if (!resetPeakResident(pid)) {
            console.warn(`could not reset VmHWM of ${pid}: the peak covers the process's whole life`);
        }
    }
    const postgresPid = running.postgres?.child.process.pid;
    const cpuBefore = pids.map(cpuSeconds);
    const postgresBefore = postgresPid ? treeCpuSeconds(postgresPid) : 0;
    const figures = await work();
    for (const replica of running.replicas) {
        if (!replica.child.running) {
            throw new Error(`${replica.child.name} exited during the workload:\n${replica.child.logTail()}`);
        }
    }
    return {
        ...figures,
        instancesPerSecond: figures.instances / figures.seconds,
        mebibytesPerSecond: figures.mebibytes / figures.seconds,
        peakResidentMiB: Object.fromEntries(running.replicas.map((replica, index) => [replica.name, round(peakResidentMiB(pids[index]), 1)])),
        orthancCpuSeconds: round(pids.reduce((sum, pid, index) => sum + cpuSeconds(pid) - cpuBefore[index], 0), 2),
        postgresCpuSeconds: postgresPid ? round(treeCpuSeconds(postgresPid) - postgresBefore, 2) : undefined,
    };
}

function round(value: number, digits: number): number {
    return Number(value.toFixed(digits));
}

const mib = (bytes: number) => bytes / (1024 * 1024);
const sum = (instances: readonly TestInstance[]) => instances.reduce((total, instance) => total + instance.size, 0);

async function storeAll(running: RunningConfiguration, batches: { replicaIndex: number; instances: TestInstance[] }[], data: Data) {
    const started = process.hrtime.bigint();
    const results = await Promise.all(
        batches.map(({ replicaIndex, instances }) => {
            const replica = running.replicas[replicaIndex];
            return timedStore({ port: replica.dicomPort, calledAeTitle: replica.aeTitle }, instances, data.logConfig, running.clientEnv);
        }),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    batches.forEach(({ instances }, index) => {
        if (results[index].acknowledged !== instances.length) {
            throw new Error(
                `${running.name}: ${instances.length - results[index].acknowledged} of ${instances.length} instances not acknowledged:\n` +
                    results[index].output.split("\n").slice(-20).join("\n"),
            );
        }
    });
    const latencies = results.flatMap((result) => result.latenciesMs);
    return {
        instances: latencies.length,
        mebibytes: mib(results.reduce((total, result) => total + result.bytes, 0)),
        seconds,
        latencyP50Ms: percentile(latencies, 50),
        latencyP95Ms: percentile(latencies, 95),
        latencyOf: "C-STORE request sent to response received, per instance (storescu log timestamps)",
    };
}

function webTarget(running: RunningConfiguration, replicaIndex: number): WebTarget {
    return { port: running.replicas[replicaIndex].httpPort, credentials: running.credentials };
}

function selectedWorkloads(): Set<WorkloadName> {
    const raw = process.env.BENCH_WORKLOADS;
    const names = raw ? raw.split(",").map((name) => name.trim()) : [...workloadNames];
    for (const name of names) {
        if (!workloadNames.includes(name as WorkloadName)) {
            throw new Error(`BENCH_WORKLOADS: unknown workload ${name} (known: ${workloadNames.join(", ")})`);
        }
    }
    return new Set(names as WorkloadName[]);
}

async function runWorkloads(running: RunningConfiguration, data: Data): Promise<Record<WorkloadName, Figures>> {
    const last = running.replicas.length - 1;
    const results = {} as Record<WorkloadName, Figures>;
    const selected = selectedWorkloads();
    const measured = (workload: WorkloadName, work: Parameters<typeof measure>[1]) =>
        selected.has(workload) ? measure(running, work) : Promise.resolve(undefined as unknown as Figures);

    results.oneAssociation = await measured("oneAssociation", () => storeAll(running, [{ replicaIndex: 0, instances: data.study }], data));

    results.concurrent = await measured("concurrent", async () => ({
        ...(await storeAll(running, data.concurrent.map((instances, index) => ({ replicaIndex: index % running.replicas.length, instances })), data)),
        note: `${data.concurrent.length} associations over ${running.replicas.length} Orthanc process(es)`,
    }));

    results.stowRs = await measured("stowRs", async () => {
        const batches: TestInstance[][] = [];
        for (let index = 0; index < data.stow.length; index += settings.stowBatch) {
            batches.push(data.stow.slice(index, index + settings.stowBatch));
        }
        // The bodies are built before the clock starts: the client's file reading is not the server's time.
        const { readFileSync } = await import("fs");
        const bodies = batches.map((batch) => batch.map((instance) => readFileSync(instance.file)));
        const latencies: number[] = [];
        const started = process.hrtime.bigint();
        for (const body of bodies) {
            const sent = process.hrtime.bigint();
            const response = await stow(webTarget(running, 0), running.dicomWebRoot, body);
            latencies.push(Number(process.hrtime.bigint() - sent) / 1e6);
            const answer = response.status === 200 ? (JSON.parse(response.body.toString()) as Record<string, unknown>) : {};
            if (response.status !== 200 || "00081198" in answer) {
                throw new Error(`${running.name}: STOW-RS answered ${response.status}: ${response.body.toString().slice(0, 2000)}`);
            }
        }
        return {
            instances: data.stow.length,
            mebibytes: mib(sum(data.stow)),
            seconds: Number(process.hrtime.bigint() - started) / 1e9,
            latencyP50Ms: percentile(latencies, 50),
            latencyP95Ms: percentile(latencies, 95),
            latencyOf: `STOW-RS request of ${settings.stowBatch} instances, sent to answer read, ${bodies.length} requests in sequence`,
        };
    });

    // The study stored in one association, read back from the other replica (any replica serves any study).
    results.wadoRs = await measured("wadoRs", async () => {
        const path = `${running.dicomWebRoot}studies/${data.study[0].studyInstanceUid}`;
        const latencies: number[] = [];
        let instances = 0;
        let bytes = 0;
        const started = process.hrtime.bigint();
        for (let round = 0; round < settings.wadoRepeat; round++) {
            const sent = process.hrtime.bigint();
            const response = await webRequest(webTarget(running, last), path, { headers: { Accept: 'multipart/related; type="application/dicom"' } });
            latencies.push(Number(process.hrtime.bigint() - sent) / 1e6);
            const parts = response.status === 200 ? parseMultipart(response.headers["content-type"], response.body) : [];
            if (parts.length !== data.study.length) {
                throw new Error(`${running.name}: WADO-RS answered ${response.status} with ${parts.length} of ${data.study.length} instances`);
            }
            instances += parts.length;
            bytes += parts.reduce((total, part) => total + part.content.length, 0);
        }
        return {
            instances,
            mebibytes: mib(bytes),
            seconds: Number(process.hrtime.bigint() - started) / 1e9,
            latencyP50Ms: percentile(latencies, 50),
            latencyP95Ms: percentile(latencies, 95),
            latencyOf: `WADO-RS retrieval of the whole study (${data.study.length} instances), request sent to last byte read, ${settings.wadoRepeat} in sequence`,
        };
    });

    results.largeInstance = await measured("largeInstance", async () => ({
        ...(await storeAll(running, [{ replicaIndex: 0, instances: data.large }], data)),
        note: `${data.large.length} instance(s) of ${mib(data.large[0].size).toFixed(0)} MiB in one association`,
    }));
    return results;
}

/**
 * Orthanc's warnings and errors over the run (e.g. PostgreSQL serialization failures it retried), per replica: each
 * distinct message (timestamp and thread removed) with its count. Orthanc logs its start-up at warning level too.
 */
function logProblems(running: RunningConfiguration): Record<string, Record<string, number>> {
    return Object.fromEntries(
        running.replicas.map((replica) => {
            const counts: Record<string, number> = {};
            for (const line of replica.child.readLog().split("\n")) {
                const match = /^([WE])\d{4} [\d:.]+\s+\S+ (.*)$/.exec(line);
                if (match && !/main\.cpp|OrthancInitialization|OrthancConfiguration|FromDcmtkBridge|HttpClient|LuaContext|No limit on|Plugin|plugin|HttpServer|DicomServer|SQLite|ServerContext|JobsEngine/.test(match[2])) {
                    const message = `${match[1]} ${match[2].replace(/\d+/g, "#")}`;
                    counts[message] = (counts[message] ?? 0) + 1;
                }
            }
            return [replica.name, counts];
        }),
    );
}

function formatTable(
    results: Partial<Record<ConfigurationName, Record<WorkloadName, Figures>>>,
    ratios: { vsKorthweb: Record<string, number>; vsCeiling: Record<string, number>; storageVariants: Record<string, Record<"vsKorthweb" | "vsCeiling", Record<string, number>>> },
): string {
    const header = ["workload", "config", "inst/s", "MiB/s", "p50 ms", "p95 ms", "peak RSS MiB (per process)", "CPU s Orthanc/PG"];
    const rows: string[][] = [];
    for (const workload of workloadNames) {
        for (const name of configurationNames) {
            const figures = results[name]?.[workload];
            if (!figures) {
                continue;
            }
            rows.push([
                workload,
                name,
                figures.instancesPerSecond.toFixed(1),
                figures.mebibytesPerSecond.toFixed(1),
                figures.latencyP50Ms.toFixed(1),
                figures.latencyP95Ms.toFixed(1),
                Object.values(figures.peakResidentMiB).map((value) => value.toFixed(0)).join(" / "),
                `${figures.orthancCpuSeconds.toFixed(1)} / ${figures.postgresCpuSeconds?.toFixed(1) ?? "-"}`,
            ]);
        }
    }
    const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
    const line = (cells: string[]) => `| ${cells.map((cell, column) => cell.padEnd(widths[column])).join(" | ")} |`;
    const table = [line(header), `|${widths.map((width) => "-".repeat(width + 2)).join("|")}|`, ...rows.map(line)];
    const variants = Object.keys(ratios.storageVariants);
    const ratioHeader = ["workload", "basis", "rendered/korthweb", "rendered/ceiling", ...variants.flatMap((variant) => [`${variant}/korthweb`, `${variant}/ceiling`])];
    const ratioRows = workloadNames.map((workload) => [
        workload,
        ratioBasis[workload] === "instancesPerSecond" ? "inst/s" : "MiB/s",
        ratios.vsKorthweb[workload]?.toFixed(2) ?? "-",
        ratios.vsCeiling[workload]?.toFixed(2) ?? "-",
        ...variants.flatMap((variant) => [ratios.storageVariants[variant].vsKorthweb[workload]?.toFixed(2) ?? "-", ratios.storageVariants[variant].vsCeiling[workload]?.toFixed(2) ?? "-"]),
    ]);
    const ratioWidths = ratioHeader.map((title, column) => Math.max(title.length, ...ratioRows.map((row) => row[column].length)));
    const ratioLine = (cells: string[]) => `| ${cells.map((cell, column) => cell.padEnd(ratioWidths[column])).join(" | ")} |`;
    return [
        ...table,
        "",
        ratioLine(ratioHeader),
        `|${ratioWidths.map((width) => "-".repeat(width + 2)).join("|")}|`,
        ...ratioRows.map(ratioLine),
    ].join("\n");
}

async function main(): Promise<void> {
    assertPrerequisites();
    const names = selectedConfigurations();
    if (names.includes("korthweb")) {
        readKorthwebConfig(); // fails early, with the path, when the reference is missing
    }
    const renderedOverrides = process.env.BENCH_RENDERED_OVERRIDES ? (JSON.parse(process.env.BENCH_RENDERED_OVERRIDES) as Record<string, unknown>) : undefined;
    const postgresSettings = process.env.BENCH_POSTGRES_SETTINGS?.split(";").filter((setting) => setting.trim() !== "");

    // What runs, first: as Orthanc reports it for itself and each plugin, and only the pinned image's versions.
    const versions = await requirePinnedVersions((line) => console.log(line));

    const dataResources = new Resources();
    const results: Partial<Record<ConfigurationName, Record<WorkloadName, Figures>>> = {};
    const descriptions: Partial<Record<ConfigurationName, string>> = {};
    const problems: Partial<Record<ConfigurationName, ReturnType<typeof logProblems>>> = {};
    try {
        const dir = dataResources.tempDir("bench-data");
        const generated = Date.now();
        const data: Data = {
            study: await generateInstances(dir, settings.instances, settings.pixelBytes, "study", { oneStudy: true, patientId: "BENCH-STUDY" }),
            concurrent: await mapLimit(Array.from({ length: settings.associations }, (_, index) => index), 1, (index) =>
                generateInstances(dir, settings.concurrentInstances, settings.pixelBytes, `modality-${index}`, { oneStudy: true, patientId: `BENCH-MODALITY-${index}` }),
            ),
            stow: await generateInstances(dir, settings.stowInstances, settings.pixelBytes, "stow", { oneStudy: true, patientId: "BENCH-STOW" }),
            large: await generateInstances(dir, settings.largeCount, 0, "large", { frames: settings.largeFrames, patientId: "BENCH-LARGE" }),
            logConfig: writeLogConfig(dir),
        };
        console.log(`data generated in ${((Date.now() - generated) / 1000).toFixed(1)} s`);

        for (const name of names) {
            const resources = new Resources();
            try {
                const started = Date.now();
                const running = await startConfiguration(resources, name, { replicas: settings.replicas, renderedOverrides: name.startsWith("rendered") ? renderedOverrides : undefined, postgresSettings: name === "ceiling" ? undefined : postgresSettings });
                descriptions[name] = running.description;
                console.log(`${name}: ${running.description}; up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
                results[name] = await runWorkloads(running, data);
                problems[name] = logProblems(running);
                if (running.postgres) {
                    // Each is a transaction Orthanc rolled back and retried after a pause (under SERIALIZABLE; the
                    // rendered configuration asks for READ COMMITTED).
                    const failures = (running.postgres.child.readLog().match(/could not serialize access/g) ?? []).length;
                    problems[name]!.postgres = { "serialization failures (ERROR could not serialize access)": failures };
                    console.log(`  PostgreSQL: ${failures} serialization failures`);
                }
                for (const [replica, counts] of Object.entries(problems[name]!)) {
                    for (const [message, count] of Object.entries(counts)) {
                        console.log(`  ${replica} logged ${count} x ${message.slice(0, 160)}`);
                    }
                }
                for (const workload of workloadNames) {
                    const figures = results[name]![workload];
                    if (!figures) {
                        continue;
                    }
                    console.log(
                        `  ${workload}: ${figures.instancesPerSecond.toFixed(1)} inst/s, ${figures.mebibytesPerSecond.toFixed(1)} MiB/s, ` +
                            `p50 ${figures.latencyP50Ms.toFixed(1)} ms, p95 ${figures.latencyP95Ms.toFixed(1)} ms`,
                    );
                }
            } finally {
                await resources.release();
            }
        }
    } finally {
        await dataResources.release();
    }

    const ratio = (workload: WorkloadName, other: ConfigurationName, of: ConfigurationName) => {
        const a = results[of]?.[workload]?.[ratioBasis[workload]];
        const b = results[other]?.[workload]?.[ratioBasis[workload]];
        return a !== undefined && b !== undefined ? round(a / b, 3) : undefined;
    };
    /** `of`'s figures over `other`'s, per workload that both ran. */
    const ratiosOf = (of: ConfigurationName, other: ConfigurationName): Record<string, number> =>
        Object.fromEntries(workloadNames.flatMap((workload) => {
            const value = ratio(workload, other, of);
            return value === undefined ? [] : [[workload, value]];
        }));
    const ratios = {
        basis: ratioBasis,
        vsKorthweb: ratiosOf("rendered", "korthweb"),
        vsCeiling: ratiosOf("rendered", "ceiling"),
        /** Each storage variant of the rendered configuration against the same references, and against `rendered`. */
        storageVariants: Object.fromEntries(
            storageVariants.map((variant) => [variant, { vsKorthweb: ratiosOf(variant, "korthweb"), vsCeiling: ratiosOf(variant, "ceiling"), vsRendered: ratiosOf(variant, "rendered") }]),
        ),
    };
    const machine = { nproc: cpus().length, cpuModel: cpus()[0]?.model ?? "unknown", memoryGiB: round(require("os").totalmem() / 2 ** 30, 1) };
    /** The goals: 10 x Korthweb for one association, 70 % of the ceiling with concurrent associations. */
    const goals = (against: { vsKorthweb: Record<string, number>; vsCeiling: Record<string, number> }) => ({
        oneAssociationVsKorthweb: { target: 10, measured: against.vsKorthweb.oneAssociation, met: (against.vsKorthweb.oneAssociation ?? 0) >= 10 },
        concurrentVsCeiling: { target: 0.7, measured: against.vsCeiling.concurrent, met: (against.vsCeiling.concurrent ?? 0) >= 0.7 },
    });
    const targets = {
        ...goals(ratios),
        storageVariants: Object.fromEntries(Object.entries(ratios.storageVariants).map(([variant, against]) => [variant, goals(against)])),
    };
    const table = formatTable(results, ratios);
    console.log(`\n${formatVersions(versions)}; PostgreSQL ${versions.postgresql}\nmachine: ${machine.nproc} x ${machine.cpuModel}, ${machine.memoryGiB} GiB\n`);
    for (const name of names) {
        console.log(`${name}: ${descriptions[name]}`);
    }
    console.log(`\n${table}\n`);
    console.log(
        `targets: rendered/korthweb oneAssociation ${targets.oneAssociationVsKorthweb.measured ?? "-"} (>= 10: ${targets.oneAssociationVsKorthweb.met}); ` +
            `rendered/ceiling concurrent ${targets.concurrentVsCeiling.measured ?? "-"} (>= 0.7: ${targets.concurrentVsCeiling.met})`,
    );
    for (const [variant, target] of Object.entries(targets.storageVariants)) {
        console.log(
            `targets: ${variant}/korthweb oneAssociation ${target.oneAssociationVsKorthweb.measured ?? "-"} (>= 10: ${target.oneAssociationVsKorthweb.met}); ` +
                `${variant}/ceiling concurrent ${target.concurrentVsCeiling.measured ?? "-"} (>= 0.7: ${target.concurrentVsCeiling.met})`,
        );
    }
    const file = resolve(__dirname, "../..", process.env.BENCH_RESULTS || "bench-results.json");
    writeFileSync(
        file,
        `${JSON.stringify(
            {
                date: new Date().toISOString(),
                machine,
                versions,
                settings,
                korthwebConfig: names.includes("korthweb") ? korthwebConfigFile() : undefined,
                variations: { renderedOverrides, postgresSettings },
                configurations: descriptions,
                results,
                orthancLogProblems: problems,
                ratios,
                targets,
                table,
            },
            null,
            2,
        )}\n`,
    );
    console.log(`written to ${file}`);
}

main().catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
});
