/**
 * The soak: the tenant's rendered configuration on the real stack (two Orthanc replicas of the sid root on one
 * PostgreSQL, as the benchmark and the suite boot it) under a steady mixed load for a bounded time, then every
 * acknowledged instance looked for. `scripts/run soak` (tests/integration/soak.ts) and the suite's short run
 * (tests/integration/soak.test.ts) both run `runSoak`.
 *
 * Load, all on 127.0.0.1:
 * - `associations` modalities, spread over the replicas, each sending one new study of `studySize` instances per
 *   association with `storescu`, then the next, paced so that together they offer `storeRate` instances/s (0: as fast
 *   as they go);
 * - one STOW-RS client uploading a new study of `stowBatch` instances every `stowIntervalMs`, alternating replicas;
 * - one WADO-RS client retrieving a whole stored study every `wadoIntervalMs` from the replica that did not store it,
 *   every part compared byte for byte with what was sent.
 *
 * Instances are made once per client by dump2dcm (random pixel data), then given fresh UIDs for every study by
 * rewriting the UIDs in place (same length, so the files keep their layout): no DCMTK process per instance, and any
 * instance's bytes can be made again from its UIDs for the final comparison.
 */
import assert from "assert";
import { randomBytes, randomInt } from "crypto";
import { readFileSync, unlinkSync, writeFileSync } from "fs";
import { cpus, loadavg, totalmem } from "os";
import { join } from "path";
import { timedStore, writeLogConfig } from "../bench/storescu";
import { dcmtkEnvironment } from "./dcmtk";
import { assertSamePart10, generateInstances, splitPart10, TestInstance } from "./dicom";
import { parseMultipart, stow, webRequest, WebTarget } from "./dicomWeb";
import { Replica } from "./orthanc";
import { mapLimit, Resources, sleep } from "./processes";
import { startTenantStack } from "./stack";
import { acknowledgedFiles, FlatnessThreshold, LatencySummary, MemorySample, memoryTrend, MemoryTrend, summarizeLatencies } from "./soakFigures";

export interface SoakSettings {
    durationMs: number;
    /** Concurrent C-STORE associations (modalities). */
    associations: number;
    /** C-STORE instances per second offered by all associations together; 0 sends as fast as they go. */
    storeRate: number;
    /** Instances per study, one study per association. */
    studySize: number;
    /** Pixel data per instance, bytes. */
    pixelBytes: number;
    stowBatch: number;
    stowIntervalMs: number;
    wadoIntervalMs: number;
    /** Resident memory of each replica read this often. */
    sampleIntervalMs: number;
    /** Acknowledged instances downloaded at the end and compared byte for byte (all are looked for). */
    byteSample: number;
    memoryThreshold: FlatnessThreshold;
}

/** The defaults of `scripts/run soak` (10 minutes); the suite's run shortens the duration and the pace. */
export const defaultSoakSettings: SoakSettings = {
    durationMs: 10 * 60_000,
    associations: 4,
    storeRate: 30,
    studySize: 10,
    pixelBytes: 64 * 1024,
    stowBatch: 5,
    stowIntervalMs: 2000,
    wadoIntervalMs: 1000,
    sampleIntervalMs: 5000,
    byteSample: 200,
    memoryThreshold: { maxGrowthMiB: 16, maxGrowthFraction: 0.05 },
};

/** One sample every 1 to 10 s, about 120 over the run. */
export function sampleInterval(durationMs: number): number {
    return Math.min(10_000, Math.max(1000, Math.round(durationMs / 120)));
}

export interface SoakFigures {
    date: string;
    settings: SoakSettings;
    machine: { nproc: number; cpuModel: string; memoryGiB: number };
    /** Wall time of the load, from the first request to the last answer. */
    loadSeconds: number;
    /** The 1-minute load average, read with every memory sample. */
    loadAverage: { atStart: number; mean: number; max: number; atEnd: number };
    instances: {
        cStore: { sent: number; acknowledged: number };
        stowRs: { sent: number; acknowledged: number };
        acknowledged: number;
        /** Of the acknowledged, how many the other replica serves at the end. */
        presentAtEnd: number;
        lost: number;
        lostExamples: string[];
        byteForByte: { compared: number; differing: number };
        studies: number;
        acknowledgedPerSecond: number;
    };
    latency: { cStore: LatencySummary; stowRs: LatencySummary; wadoRs: LatencySummary };
    latencyOf: { cStore: string; stowRs: string; wadoRs: string };
    /**
     * Orthanc keeps recently written or read files in RAM up to MaximumStorageCacheSize MB per process (128 unless the
     * configuration says otherwise; OrthancServer/Resources/Configuration.json): part of the warm-up, not a leak.
     */
    storageCacheMB: { value: number; from: "the rendered configuration" | "Orthanc's default" };
    /** Per replica: the trend and every sample as [seconds, MiB]. */
    memory: Record<string, MemoryTrend & { pid: number; series: [number, number][] }>;
    /** Every problem met during the load, by kind: how often and the first occurrence. */
    errors: Record<string, { count: number; first: string }>;
    replicasRunning: boolean;
    verdict: { ok: boolean; reasons: string[] };
}

/** A study made from a template: the instances' UIDs, and which were acknowledged. */
interface Study {
    kind: "cStore" | "stowRs";
    template: Template;
    studyUid: string;
    seriesUid: string;
    sopUids: string[];
    acknowledged: Set<number>;
    /** The replica it was sent to; read back from the other. */
    replica: number;
    complete: boolean;
}

/** Files whose UIDs are rewritten in place: where each UID's bytes are, per file. */
interface Template {
    files: Buffer[];
    studyUid: string;
    seriesUid: string;
    sopUids: string[];
    /** Per file: offsets of the study, series and that file's SOP instance UID (file meta included). */
    slots: { study: number[]; series: number[]; sop: number[] }[];
}

/** Offsets of `uid` in `file`, whole values only (not a prefix of a longer UID). */
function uidOffsets(file: Buffer, uid: string): number[] {
    const offsets: number[] = [];
    for (let at = file.indexOf(uid, 0, "latin1"); at >= 0; at = file.indexOf(uid, at + 1, "latin1")) {
        const next = file[at + uid.length];
        if (next === undefined || !/[0-9.]/.test(String.fromCharCode(next))) {
            offsets.push(at);
        }
    }
    return offsets;
}

async function makeTemplate(dir: string, label: string, count: number, pixelBytes: number): Promise<Template> {
    const instances = await generateInstances(dir, count, pixelBytes, label, { oneStudy: true, patientId: `SOAK-${label.toUpperCase()}` });
    const files = instances.map((instance) => readFileSync(instance.file));
    const slots = files.map((file, index) => {
        const found = {
            study: uidOffsets(file, instances[index].studyInstanceUid),
            series: uidOffsets(file, instances[index].seriesInstanceUid),
            sop: uidOffsets(file, instances[index].sopInstanceUid),
        };
        // The data set holds each UID once; the file meta repeats the SOP instance UID (MediaStorageSOPInstanceUID).
        assert.ok(found.study.length === 1 && found.series.length === 1 && found.sop.length === 2, `${label}: UIDs not where expected ${JSON.stringify(found)}`);
        return found;
    });
    return {
        files,
        studyUid: instances[0].studyInstanceUid,
        seriesUid: instances[0].seriesInstanceUid,
        sopUids: instances.map((instance) => instance.sopInstanceUid),
        slots,
    };
}

/**
 * A UID under 2.25 (ITU-T X.667: a 128-bit integer) with as many characters as `length`: a random integer below
 * 2^128 with that many digits. Same length as the template's, so that no length field changes.
 */
export function uidOfLength(length: number): string {
    const digits = length - "2.25.".length;
    const low = 10n ** BigInt(Math.max(0, digits - 1));
    const ceiling = 2n ** 128n;
    const high = 10n ** BigInt(digits) < ceiling ? 10n ** BigInt(digits) : ceiling;
    if (digits < 1 || low >= high) {
        throw new Error(`no 2.25 UID is ${length} characters long`);
    }
    // 192 random bits reduced to the range: the bias is below 2^-60.
    return `2.25.${low + (BigInt(`0x${randomBytes(24).toString("hex")}`) % (high - low))}`;
}

function newStudy(template: Template, kind: Study["kind"], replica: number): Study {
    return {
        kind,
        template,
        studyUid: uidOfLength(template.studyUid.length),
        seriesUid: uidOfLength(template.seriesUid.length),
        sopUids: template.sopUids.map((uid) => uidOfLength(uid.length)),
        acknowledged: new Set(),
        replica,
        complete: false,
    };
}

/** The bytes of instance `index` of `study`, as sent. */
function instanceBytes(study: Study, index: number): Buffer {
    const file = Buffer.from(study.template.files[index]);
    const slots = study.template.slots[index];
    for (const offset of slots.study) file.write(study.studyUid, offset, "latin1");
    for (const offset of slots.series) file.write(study.seriesUid, offset, "latin1");
    for (const offset of slots.sop) file.write(study.sopUids[index], offset, "latin1");
    return file;
}

/** VmRSS of a process in MiB; undefined once it is gone. */
export function residentMiB(pid: number): number | undefined {
    try {
        const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
        return match ? Number(match[1]) / 1024 : undefined;
    } catch {
        return undefined;
    }
}

/** The load's own bookkeeping, shared by its clients. */
class Ledger {
    readonly studies: Study[] = [];
    readonly bySop = new Map<string, { study: Study; index: number }>();
    readonly latencies = { cStore: [] as number[], stowRs: [] as number[], wadoRs: [] as number[] };
    readonly errors: Record<string, { count: number; first: string }> = {};
    readonly sent = { cStore: 0, stowRs: 0 };
    /** Served bytes that differ from the bytes sent (corruption, not loss). */
    differing = 0;

    add(study: Study): void {
        this.studies.push(study);
        study.sopUids.forEach((uid, index) => this.bySop.set(uid, { study, index }));
    }

    error(kind: string, detail: string): void {
        const entry = (this.errors[kind] ??= { count: 0, first: detail.slice(0, 2000) });
        entry.count += 1;
    }

    acknowledged(kind?: Study["kind"]): number {
        return this.studies.filter((study) => kind === undefined || study.kind === kind).reduce((sum, study) => sum + study.acknowledged.size, 0);
    }
}

const elapsedMs = (since: bigint) => Number(process.hrtime.bigint() - since) / 1e6;

/** Waits until `until` (epoch ms) or the deadline, whichever is first. */
async function paceUntil(until: number, deadline: number): Promise<void> {
    const wait = Math.min(until, deadline) - Date.now();
    if (wait > 0) {
        await sleep(wait);
    }
}

/** A DICOM JSON sequence's items' values of `tag`. */
function sequenceValues(answer: Record<string, { Value?: Record<string, { Value?: unknown[] }>[] }>, sequence: string, tag: string): string[] {
    return (answer[sequence]?.Value ?? []).map((item) => String(item[tag]?.Value?.[0] ?? ""));
}

/** Checks every part of a WADO-RS answer against what was sent; returns the SOP instance UIDs served. */
function checkParts(ledger: Ledger, parts: { content: Buffer }[], where: string): Set<string> {
    const served = new Set<string>();
    for (const part of parts) {
        const sop = splitPart10(part.content).meta.get("0002,0003")?.toString("latin1").replace(/[\0 ]+$/, "") ?? "";
        served.add(sop);
        const known = ledger.bySop.get(sop);
        if (!known) {
            ledger.error("WADO-RS served an instance never sent", `${where}: ${sop}`);
            continue;
        }
        try {
            assertSamePart10(part.content, instanceBytes(known.study, known.index), `${where}: ${sop}`);
        } catch (error) {
            ledger.differing += 1;
            ledger.error("served bytes differ from those sent", (error as Error).message);
        }
    }
    return served;
}

export interface SoakOptions {
    settings: SoakSettings;
    /** Progress lines (a line a minute and the phases). */
    log?: (line: string) => void;
}

/** Boots the stack (released with `resources`), runs the load, verifies, and returns the figures. */
export async function runSoak(resources: Resources, { settings, log = () => undefined }: SoakOptions): Promise<SoakFigures> {
    const stack = await startTenantStack(resources);
    const replicas = await Promise.all(["soak-1", "soak-2"].map((name) => stack.startReplica(resources, name)));
    const dicomWebRoot = (replicas[0].config.DicomWeb as { Root: string }).Root;
    const web = (index: number): WebTarget => ({ port: replicas[index].httpPort, credentials: stack.admin });
    log(`stack up: 2 replicas (${replicas.map((r) => `${r.name} pid ${r.child.process.pid}`).join(", ")}) on one PostgreSQL`);

    const dir = resources.tempDir("soak-data");
    const logConfig = writeLogConfig(dir);
    const storeTemplates = await mapLimit(Array.from({ length: settings.associations }, (_, index) => index), 1, (index) =>
        makeTemplate(dir, `modality-${index}`, settings.studySize, settings.pixelBytes),
    );
    const stowTemplate = await makeTemplate(dir, "stow", settings.stowBatch, settings.pixelBytes);

    const ledger = new Ledger();
    const started = process.hrtime.bigint();
    const startedAt = Date.now();
    const deadline = startedAt + settings.durationMs;
    const memory = new Map<Replica, MemorySample[]>(replicas.map((replica) => [replica, []]));
    const loads: number[] = [];
    const sample = () => {
        const seconds = elapsedMs(started) / 1000;
        loads.push(loadavg()[0]);
        for (const replica of replicas) {
            const mib = residentMiB(replica.child.process.pid!);
            if (mib === undefined) {
                ledger.error("replica gone", `${replica.name} has no /proc entry at ${seconds.toFixed(0)} s`);
            } else {
                memory.get(replica)!.push({ seconds, mib });
            }
        }
    };
    sample();
    const sampler = setInterval(sample, settings.sampleIntervalMs);
    let nextReport = startedAt + 60_000;
    const reporter = setInterval(() => {
        if (Date.now() >= nextReport) {
            nextReport += 60_000;
            const rss = replicas.map((replica) => `${replica.name} ${memory.get(replica)!.at(-1)?.mib.toFixed(0)} MiB`).join(", ");
            log(`  ${((Date.now() - startedAt) / 60_000).toFixed(0)} min: ${ledger.acknowledged()} acknowledged, ${rss}, load ${loadavg()[0].toFixed(2)}`);
        }
    }, 1000);

    const storeClient = async (client: number) => {
        const replicaIndex = client % replicas.length;
        const replica = replicas[replicaIndex];
        // Each association offers studySize instances; together the clients offer storeRate per second.
        const periodMs = settings.storeRate > 0 ? (settings.studySize * settings.associations * 1000) / settings.storeRate : 0;
        // Spread the clients' starts over one period, as modalities do not all start on the same tick.
        await paceUntil(startedAt + (periodMs * client) / settings.associations, deadline);
        for (let round = 0; Date.now() < deadline; round++) {
            const roundStart = Date.now();
            const study = newStudy(storeTemplates[client], "cStore", replicaIndex);
            ledger.add(study);
            const instances: TestInstance[] = study.sopUids.map((sopInstanceUid, index) => {
                const file = join(dir, `c${client}-${round}-${index}.dcm`);
                const bytes = instanceBytes(study, index);
                writeFileSync(file, bytes);
                return { file, sopInstanceUid, studyInstanceUid: study.studyUid, seriesInstanceUid: study.seriesUid, size: bytes.length };
            });
            ledger.sent.cStore += instances.length;
            try {
                const result = await timedStore({ port: replica.dicomPort, calledAeTitle: replica.aeTitle }, instances, logConfig, dcmtkEnvironment());
                ledger.latencies.cStore.push(...result.latenciesMs);
                const acknowledged = new Set(acknowledgedFiles(result.output));
                instances.forEach((instance, index) => acknowledged.has(instance.file) && study.acknowledged.add(index));
                if (study.acknowledged.size < instances.length || result.exitCode !== 0) {
                    ledger.error(
                        "C-STORE association not fully acknowledged",
                        `${replica.name}: ${study.acknowledged.size} of ${instances.length}, storescu exit ${result.exitCode}:\n${result.output.split("\n").slice(-8).join("\n")}`,
                    );
                }
            } catch (error) {
                ledger.error("storescu failed to run", (error as Error).message);
            } finally {
                study.complete = true;
                for (const instance of instances) unlinkSync(instance.file);
            }
            await paceUntil(roundStart + periodMs, deadline);
        }
    };

    const stowClient = async () => {
        for (let round = 0; Date.now() < deadline; round++) {
            const roundStart = Date.now();
            const replicaIndex = round % replicas.length;
            const study = newStudy(stowTemplate, "stowRs", replicaIndex);
            ledger.add(study);
            const files = study.sopUids.map((_, index) => instanceBytes(study, index));
            ledger.sent.stowRs += files.length;
            const sent = process.hrtime.bigint();
            try {
                const response = await stow(web(replicaIndex), dicomWebRoot, files);
                ledger.latencies.stowRs.push(elapsedMs(sent));
                const answer = /json/.test(String(response.headers["content-type"])) ? JSON.parse(response.body.toString()) : {};
                for (const uid of sequenceValues(answer, "00081199", "00081155")) {
                    const index = study.sopUids.indexOf(uid);
                    if (index >= 0) study.acknowledged.add(index);
                }
                const failed = sequenceValues(answer, "00081198", "00081155");
                if (response.status !== 200 || failed.length > 0 || study.acknowledged.size < files.length) {
                    ledger.error("STOW-RS not fully stored", `${replicas[replicaIndex].name}: HTTP ${response.status}, ${study.acknowledged.size} of ${files.length} referenced, ${failed.length} failed: ${response.body.toString().slice(0, 500)}`);
                }
            } catch (error) {
                ledger.error("STOW-RS request failed", (error as Error).message);
            } finally {
                study.complete = true;
            }
            await paceUntil(roundStart + settings.stowIntervalMs, deadline);
        }
    };

    const wadoClient = async () => {
        while (Date.now() < deadline) {
            const roundStart = Date.now();
            const candidates = ledger.studies.filter((study) => study.complete && study.acknowledged.size > 0);
            if (candidates.length > 0) {
                const study = candidates[randomInt(candidates.length)];
                const replicaIndex = (study.replica + 1) % replicas.length;
                const where = `WADO-RS of study ${study.studyUid} from ${replicas[replicaIndex].name}`;
                const sent = process.hrtime.bigint();
                try {
                    const response = await webRequest(web(replicaIndex), `${dicomWebRoot}studies/${study.studyUid}`, {
                        headers: { Accept: 'multipart/related; type="application/dicom"' },
                    });
                    ledger.latencies.wadoRs.push(elapsedMs(sent));
                    if (response.status !== 200) {
                        ledger.error("WADO-RS answered an error", `${where}: HTTP ${response.status} ${response.body.toString().slice(0, 300)}`);
                    } else {
                        const served = checkParts(ledger, parseMultipart(response.headers["content-type"], response.body), where);
                        const missing = [...study.acknowledged].filter((index) => !served.has(study.sopUids[index]));
                        if (missing.length > 0) {
                            ledger.error("WADO-RS lacked acknowledged instances", `${where}: ${missing.length} of ${study.acknowledged.size} missing`);
                        }
                    }
                } catch (error) {
                    ledger.error("WADO-RS request failed", `${where}: ${(error as Error).message}`);
                }
            }
            await paceUntil(roundStart + settings.wadoIntervalMs, deadline);
        }
    };

    log(`load: ${settings.associations} C-STORE associations (${settings.storeRate || "unpaced"} instances/s together), STOW-RS every ${settings.stowIntervalMs} ms, WADO-RS every ${settings.wadoIntervalMs} ms, for ${(settings.durationMs / 60_000).toFixed(2)} min`);
    try {
        await Promise.all([...storeTemplates.map((_, client) => storeClient(client)), stowClient(), wadoClient()]);
    } finally {
        clearInterval(sampler);
        clearInterval(reporter);
    }
    const loadSeconds = elapsedMs(started) / 1000;
    sample();
    const replicasRunning = replicas.every((replica) => replica.child.running);
    for (const replica of replicas.filter((r) => !r.child.running)) {
        ledger.error("replica exited", `${replica.name}:\n${replica.child.logTail()}`);
    }

    // Every acknowledged instance, looked for on the replica that did not store it: one lookup per study.
    log(`verifying ${ledger.acknowledged()} acknowledged instances of ${ledger.studies.length} studies`);
    const lost: string[] = [];
    const present: { study: Study; index: number; id: string }[] = [];
    await mapLimit(ledger.studies.filter((study) => study.acknowledged.size > 0), 4, async (study) => {
        const replica = replicas[(study.replica + 1) % replicas.length];
        const found = new Map<string, string>();
        const lookup = await replica.request("/tools/lookup", { method: "POST", body: study.studyUid });
        const match = lookup.status === 200 ? ((await lookup.json()) as { ID: string; Type: string }[]).find((entry) => entry.Type === "Study") : undefined;
        if (match) {
            for (const instance of await replica.getJson<{ ID: string; MainDicomTags: { SOPInstanceUID: string } }[]>(`/studies/${match.ID}/instances`)) {
                found.set(instance.MainDicomTags.SOPInstanceUID, instance.ID);
            }
        }
        for (const index of study.acknowledged) {
            const id = found.get(study.sopUids[index]);
            if (id === undefined) {
                lost.push(`${study.kind} ${study.sopUids[index]} (study ${study.studyUid})`);
            } else {
                present.push({ study, index, id });
            }
        }
    });
    // A sample of them downloaded whole, from both replicas, and compared with what was sent.
    const sampled = [...present];
    for (let index = 0; index < Math.min(settings.byteSample, sampled.length); index++) {
        const other = index + randomInt(sampled.length - index); // a partial Fisher-Yates shuffle: a uniform sample
        [sampled[index], sampled[other]] = [sampled[other], sampled[index]];
    }
    sampled.length = Math.min(settings.byteSample, sampled.length);
    const differingBefore = ledger.differing;
    await mapLimit(sampled, 4, async ({ study, index, id }, position) => {
        const replica = replicas[position % replicas.length];
        try {
            assertSamePart10(await replica.getBytes(`/instances/${id}/file`), instanceBytes(study, index), `${study.sopUids[index]} from ${replica.name}`);
        } catch (error) {
            ledger.differing += 1;
            ledger.error("served bytes differ from those sent", (error as Error).message);
        }
    });

    const trends = Object.fromEntries(
        replicas.map((replica) => {
            const samples = memory.get(replica)!;
            return [
                replica.name,
                {
                    ...memoryTrend(samples, settings.memoryThreshold),
                    pid: replica.child.process.pid!,
                    series: samples.map((s) => [Number(s.seconds.toFixed(1)), Number(s.mib.toFixed(1))] as [number, number]),
                },
            ];
        }),
    );
    const reasons: string[] = [];
    if (lost.length > 0) reasons.push(`${lost.length} acknowledged instance(s) not served at the end`);
    if (ledger.differing > 0) reasons.push(`${ledger.differing} instance(s) served with other bytes than sent`);
    if (!replicasRunning) reasons.push("a replica exited during the soak");
    for (const [name, trend] of Object.entries(trends)) {
        if (trend.flat === false) {
            reasons.push(`${name}: resident memory climbs ${trend.secondHalfSlopeMiBPerMinute} MiB/min over the second half, ${trend.projectedGrowthMiB} MiB in all, more than the ${trend.allowedGrowthMiB} MiB allowed`);
        }
    }
    const acknowledged = ledger.acknowledged();
    const round = (value: number, digits = 2) => Number(value.toFixed(digits));
    return {
        date: new Date(startedAt).toISOString(),
        settings,
        machine: { nproc: cpus().length, cpuModel: cpus()[0]?.model ?? "unknown", memoryGiB: round(totalmem() / 2 ** 30, 1) },
        loadSeconds: round(loadSeconds, 1),
        loadAverage: {
            atStart: round(loads[0]),
            mean: round(loads.reduce((sum, value) => sum + value, 0) / loads.length),
            max: round(Math.max(...loads)),
            atEnd: round(loads[loads.length - 1]),
        },
        instances: {
            cStore: { sent: ledger.sent.cStore, acknowledged: ledger.acknowledged("cStore") },
            stowRs: { sent: ledger.sent.stowRs, acknowledged: ledger.acknowledged("stowRs") },
            acknowledged,
            presentAtEnd: present.length,
            lost: lost.length,
            lostExamples: lost.slice(0, 20),
            byteForByte: { compared: sampled.length, differing: ledger.differing - differingBefore },
            studies: ledger.studies.length,
            acknowledgedPerSecond: round(acknowledged / loadSeconds, 1),
        },
        latency: {
            cStore: summarizeLatencies(ledger.latencies.cStore),
            stowRs: summarizeLatencies(ledger.latencies.stowRs),
            wadoRs: summarizeLatencies(ledger.latencies.wadoRs),
        },
        latencyOf: {
            cStore: "per instance: C-STORE request sent to response received (storescu's log timestamps)",
            stowRs: `per request of ${settings.stowBatch} instances: sent to answer read`,
            wadoRs: `per whole-study retrieval (${settings.studySize} or ${settings.stowBatch} instances): sent to last byte read, every part compared with what was sent`,
        },
        storageCacheMB: typeof replicas[0].config.MaximumStorageCacheSize === "number"
            ? { value: replicas[0].config.MaximumStorageCacheSize, from: "the rendered configuration" }
            : { value: 128, from: "Orthanc's default" },
        memory: trends,
        errors: ledger.errors,
        replicasRunning,
        verdict: { ok: reasons.length === 0, reasons },
    };
}

/** The figures as the command prints them. */
export function formatSoak(figures: SoakFigures): string {
    const { instances, latency, settings } = figures;
    const lines = [
        `soak of ${(figures.loadSeconds / 60).toFixed(1)} min, ${figures.date}; machine ${figures.machine.nproc} x ${figures.machine.cpuModel}, ` +
            `load average (1 min) ${figures.loadAverage.atStart} at start, mean ${figures.loadAverage.mean}, max ${figures.loadAverage.max}`,
        `load: ${settings.associations} C-STORE associations at ${settings.storeRate || "unpaced"} inst/s together (studies of ${settings.studySize}, ` +
            `${(settings.pixelBytes / 1024).toFixed(0)} KiB pixel data), STOW-RS of ${settings.stowBatch} every ${settings.stowIntervalMs / 1000} s, WADO-RS every ${settings.wadoIntervalMs / 1000} s`,
        "",
        `instances acknowledged: ${instances.acknowledged} (C-STORE ${instances.cStore.acknowledged} of ${instances.cStore.sent} sent, ` +
            `STOW-RS ${instances.stowRs.acknowledged} of ${instances.stowRs.sent}), ${instances.acknowledgedPerSecond}/s, ${instances.studies} studies`,
        `present at the end: ${instances.presentAtEnd} of ${instances.acknowledged} (lost: ${instances.lost}); ` +
            `byte for byte: ${instances.byteForByte.compared} compared, ${instances.byteForByte.differing} differing`,
        ...instances.lostExamples.map((example) => `  lost: ${example}`),
        "",
        "| operation | count | p50 ms | p95 ms | p99 ms | max ms |",
        "|-----------|-------|--------|--------|--------|--------|",
        ...(["cStore", "stowRs", "wadoRs"] as const).map((op) => {
            const l = latency[op];
            return `| ${{ cStore: "C-STORE (per instance)", stowRs: `STOW-RS (${settings.stowBatch} instances)`, wadoRs: "WADO-RS (whole study)" }[op]} | ${l.count} | ${l.p50Ms} | ${l.p95Ms} | ${l.p99Ms} | ${l.maxMs} |`;
        }),
        "",
        `resident memory per replica (flat: the Theil-Sen line through the second half's samples climbs at most max(${settings.memoryThreshold.maxGrowthMiB} MiB, ` +
            `${settings.memoryThreshold.maxGrowthFraction * 100}% of their median) over that half; ` +
            `the storage cache holds up to ${figures.storageCacheMB.value} MB per replica, ${figures.storageCacheMB.from}):`,
        ...Object.entries(figures.memory).map(([name, trend]) => {
            const step = Math.max(1, Math.floor(trend.series.length / 10));
            const along = trend.series.filter((_, index) => index % step === 0).map(([s, mib]) => `${(s / 60).toFixed(1)}m ${mib.toFixed(0)}`);
            return (
                `  ${name}: ${trend.firstMiB} -> ${trend.lastMiB} MiB (max ${trend.maxMiB}); second half: median ${trend.secondHalfMedianMiB}, ` +
                `slope ${trend.secondHalfSlopeMiBPerMinute} MiB/min, ${trend.projectedGrowthMiB} MiB over the half (allowed ${trend.allowedGrowthMiB}); ` +
                `quartile medians ${trend.secondQuarterMedianMiB} -> ${trend.lastQuarterMedianMiB}; flat: ${trend.flat ?? "too few samples"}\n    ${along.join(", ")}`
            );
        }),
        "",
        Object.keys(figures.errors).length === 0 ? "errors: none" : "errors:",
        ...Object.entries(figures.errors).map(([kind, { count, first }]) => `  ${count} x ${kind}; first: ${first.split("\n")[0].slice(0, 300)}`),
        "",
        figures.verdict.ok ? "verdict: OK (nothing acknowledged lost, memory flat)" : `verdict: FAILED\n${figures.verdict.reasons.map((r) => `  - ${r}`).join("\n")}`,
    ];
    return lines.join("\n");
}
