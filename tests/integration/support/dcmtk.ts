/**
 * DCMTK's `echoscu` and `storescu`, as a modality runs them, with what the suite needs from their output.
 */
import { spawn } from "child_process";
import { readdirSync } from "fs";
import { join } from "path";
import { createInterface } from "readline";
import { TestInstance } from "./dicom";
import { run } from "./processes";

/**
 * Environment of every DCMTK peer (the tools and Orthanc's DICOM server): DCMTK sets TCP_NODELAY on its sockets only
 * when this variable says so, and without it Nagle's algorithm meets delayed ACKs and each C-STORE waits ~50 ms.
 */
export const dcmtkEnvironment = (): NodeJS.ProcessEnv => ({ ...process.env, TCP_NODELAY: "1" });

/** A client's TLS settings; DCMTK verifies the server against `trustFiles` (`+cf`). */
export type ClientTls =
    /** A client certificate (`+tls key cert`). */
    | { keyFile: string; certFile: string; trustFiles: string[] }
    /** TLS without a client certificate (`+tla`). */
    | { anonymous: true; trustFiles: string[] };

export interface DicomTarget {
    port: number;
    calledAeTitle: string;
    tls?: ClientTls;
    /** The calling AE title; `callingAeTitle` (registered by the suite) when absent. */
    callingAeTitle?: string;
}

/** The calling AE title of every DCMTK tool the suite runs; the suite registers it as a modality. */
export const callingAeTitle = "KORTHWEB-IT";

function connectionArgs(target: DicomTarget): string[] {
    const args = ["-aet", target.callingAeTitle ?? callingAeTitle, "-aec", target.calledAeTitle];
    if (target.tls) {
        args.push(...("anonymous" in target.tls ? ["+tla"] : ["+tls", target.tls.keyFile, target.tls.certFile]));
        for (const file of target.tls.trustFiles) {
            args.push("+cf", file);
        }
    }
    return [...args, "127.0.0.1", String(target.port)];
}

/** C-ECHO; `ok` only when the association was accepted and the echo answered Success. */
export async function echo(target: DicomTarget): Promise<{ ok: boolean; output: string }> {
    const result = await run("echoscu", ["-v", "-to", "10", "-ta", "10", "-td", "10", ...connectionArgs(target)], { env: dcmtkEnvironment() });
    const output = (result.stdout + result.stderr).trim();
    return { ok: result.code === 0 && /Received Echo Response \(Success\)/.test(output), output };
}

export interface StoreResult {
    /** Instances whose C-STORE response was Success: the ones the sender may forget. */
    acknowledged: TestInstance[];
    /** Everything else: not sent, or sent without a Success response. */
    unacknowledged: TestInstance[];
    exitCode: number | null;
    /** Wall-clock time of the storescu run, association set-up included. */
    seconds: number;
    output: string;
}

/**
 * Sends `instances` in one association with `storescu -v` and reads its log line by line: "Sending file: X" names the
 * instance in flight and "Received Store Response (Success)" acknowledges it. `onAcknowledged` sees the running count,
 * so a test can act (kill a replica) while the batch is under way.
 */
export function store(target: DicomTarget, instances: TestInstance[], onAcknowledged?: (count: number) => void): Promise<StoreResult> {
    const byFile = new Map(instances.map((instance) => [instance.file, instance]));
    const acknowledged = new Set<TestInstance>();
    const output: string[] = [];
    let inFlight: TestInstance | undefined;
    const started = process.hrtime.bigint();
    const child = spawn("storescu", ["-v", "-to", "10", "-ta", "10", "-td", "30", ...connectionArgs(target), ...instances.map((i) => i.file)], {
        env: dcmtkEnvironment(),
        stdio: ["ignore", "ignore", "pipe"],
    });
    createInterface({ input: child.stderr! }).on("line", (line) => {
        output.push(line);
        const sending = /^I: Sending file: (.*)$/.exec(line);
        if (sending) {
            inFlight = byFile.get(sending[1]);
        } else if (/^I: Received Store Response \(Success\)/.test(line) && inFlight) {
            acknowledged.add(inFlight);
            inFlight = undefined;
            onAcknowledged?.(acknowledged.size);
        }
    });
    return new Promise((resolve, reject) => {
        child.once("error", reject);
        child.once("close", (code) => {
            resolve({
                acknowledged: instances.filter((instance) => acknowledged.has(instance)),
                unacknowledged: instances.filter((instance) => !acknowledged.has(instance)),
                exitCode: code,
                seconds: Number(process.hrtime.bigint() - started) / 1e9,
                output: output.join("\n"),
            });
        });
    });
}

/** Instances per second and MiB/s of a store run, for the logs. */
export function storeRate(result: StoreResult): { instancesPerSecond: number; mebibytesPerSecond: number } {
    const bytes = result.acknowledged.reduce((sum, instance) => sum + instance.size, 0);
    return {
        instancesPerSecond: result.acknowledged.length / result.seconds,
        mebibytesPerSecond: bytes / (1024 * 1024) / result.seconds,
    };
}

/** One `-k` key per entry: `Name=value`, or the bare name to ask for it as a return key. */
function keyArgs(keys: Record<string, string>): string[] {
    return Object.entries(keys).flatMap(([name, value]) => ["-k", value === "" ? name : `${name}=${value}`]);
}

export interface FindResult {
    /** The final response was Success. */
    ok: boolean;
    /** Each Pending response's identifier, by keyword (values without their DICOM padding). */
    matches: Record<string, string>[];
    exitCode: number;
    output: string;
}

/**
 * C-FIND in the study root information model (`findscu -S -v`). findscu exits 0 even when the peer aborts the
 * association, so success is read from its log: "Received Final Find Response (Success)".
 */
export async function find(target: DicomTarget, keys: Record<string, string>): Promise<FindResult> {
    const result = await run("findscu", ["-v", "-S", "-to", "10", "-ta", "10", "-td", "10", ...keyArgs(keys), ...connectionArgs(target)], {
        env: dcmtkEnvironment(),
    });
    const output = (result.stdout + result.stderr).trim();
    const matches: Record<string, string>[] = [];
    let current: Record<string, string> | undefined;
    for (const line of output.split("\n")) {
        if (/^I: Find Response: \d+ \(Pending\)/.test(line)) {
            current = {};
            matches.push(current);
            continue;
        }
        // "I: (0020,000d) UI [1.2.3 ]   #  44, 1 StudyInstanceUID"
        const element = /^I: \([0-9a-f]{4},[0-9a-f]{4}\) \w\w (?:\[(.*)\]|\(no value available\)).*#.*\s(\w+)$/.exec(line);
        if (current && element) {
            // DICOM pads values to an even length: UIDs with NUL (which findscu prints as is), text with spaces.
            current[element[2]] = (element[1] ?? "").replace(/\0+$/, "").trim();
        } else if (current && !/^I: (#|$)/.test(line)) {
            current = undefined;
        }
    }
    return { ok: /^I: Received Final Find Response \(Success\)/m.test(output), matches, exitCode: result.code, output };
}

export interface RetrieveResult {
    /** The final C-GET/C-MOVE response was Success. */
    ok: boolean;
    /** Sub-operations the final response reports completed, as getscu logs them (movescu -v does not: undefined). */
    completed?: number;
    /** Files received, in `outputDirectory`. */
    files: string[];
    exitCode: number;
    output: string;
}

function retrieveResult(result: { code: number; stdout: string; stderr: string }, kind: "C-GET" | "Move", outputDirectory: string): RetrieveResult {
    const output = (result.stdout + result.stderr).trim();
    const completed = /Number of Completed Suboperations\s*:\s*(\d+)/.exec(output);
    const final = kind === "C-GET" ? /^I: Received C-GET Response \(Success\)/m : /^I: Received Final Move Response \(Success\)/m;
    return {
        ok: final.test(output),
        completed: completed ? Number(completed[1]) : undefined,
        files: readdirSync(outputDirectory).map((file) => join(outputDirectory, file)),
        exitCode: result.code,
        output,
    };
}

/** C-GET in the study root model (`getscu -S`): the instances come back on the same association, into `outputDirectory`. */
export async function get(target: DicomTarget, keys: Record<string, string>, outputDirectory: string): Promise<RetrieveResult> {
    const result = await run(
        "getscu",
        ["-v", "-S", "-to", "10", "-ta", "10", "-td", "10", "-od", outputDirectory, ...keyArgs(keys), ...connectionArgs(target)],
        { env: dcmtkEnvironment() },
    );
    return retrieveResult(result, "C-GET", outputDirectory);
}

/**
 * C-MOVE in the study root model (`movescu -S`), asking the peer to send to `destination`: an AE title the peer must
 * know with an address. movescu itself listens on `listenPort` as that destination (a storage SCP in the same process)
 * and writes what arrives into `outputDirectory`.
 */
export async function move(
    target: DicomTarget,
    keys: Record<string, string>,
    destination: { aeTitle: string; listenPort: number },
    outputDirectory: string,
): Promise<RetrieveResult> {
    const result = await run(
        "movescu",
        [
            "-v", "-S", "-to", "10", "-ta", "10", "-td", "10",
            "-aem", destination.aeTitle, "+P", String(destination.listenPort), "-od", outputDirectory,
            ...keyArgs(keys), ...connectionArgs(target),
        ],
        { env: dcmtkEnvironment() },
    );
    return retrieveResult(result, "Move", outputDirectory);
}
