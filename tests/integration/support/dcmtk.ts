/**
 * DCMTK's `echoscu` and `storescu`, as a modality runs them, with what the suite needs from their output.
 */
import { spawn } from "child_process";
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
}

/** The calling AE title of every request; Orthanc is configured not to check AE titles (DicomCheckCalledAet false). */
/** The calling AE title of every DCMTK tool the suite runs; the suite registers it as a modality. */
export const callingAeTitle = "KORTHWEB-IT";

function connectionArgs(target: DicomTarget): string[] {
    const args = ["-aet", callingAeTitle, "-aec", target.calledAeTitle];
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
