/**
 * `storescu` with a timestamp on every log line, for per-instance C-STORE latency.
 *
 * DCMTK's logger is log4cplus: `--log-config` gives it a pattern whose `%D{%H:%M:%S.%Q}` is the local time with
 * milliseconds and their microseconds ("14:05:09.123.456"; log4cplus expands %Q only next to strftime's own fields). storescu logs "Sending Store Request" just before it
 * writes the request and "Received Store Response" once the response is read: the difference is the time from sending
 * the request to its response, per instance, as the modality sees it.
 */
import { spawn } from "child_process";
import { writeFileSync } from "fs";
import { join } from "path";
import { createInterface } from "readline";
import { callingAeTitle } from "../support/dcmtk";
import { TestInstance } from "../support/dicom";

export interface TimedStoreResult {
    acknowledged: number;
    bytes: number;
    /** Wall-clock time of the storescu run (process start to exit, association set-up included). */
    seconds: number;
    /** Per acknowledged instance: request sent to response received. */
    latenciesMs: number[];
    exitCode: number | null;
    output: string;
}

/** The log4cplus configuration file, written once per directory. */
export function writeLogConfig(dir: string): string {
    const file = join(dir, "storescu-log.cfg");
    writeFileSync(
        file,
        [
            "log4cplus.rootLogger = INFO, console",
            "log4cplus.appender.console = log4cplus::ConsoleAppender",
            "log4cplus.appender.console.layout = log4cplus::PatternLayout",
            "log4cplus.appender.console.layout.ConversionPattern = %D{%H:%M:%S.%Q} %p: %m%n",
            "",
        ].join("\n"),
    );
    return file;
}

/** Milliseconds since midnight of a log line's timestamp. */
function timestampMs(line: string): number | undefined {
    const match = /^(\d\d):(\d\d):(\d\d)\.(\d{3})\.(\d{3}) /.exec(line);
    return match
        ? ((Number(match[1]) * 60 + Number(match[2])) * 60 + Number(match[3])) * 1000 + Number(match[4]) + Number(match[5]) / 1000
        : undefined;
}

const day = 24 * 3600 * 1000;

/**
 * Sends `instances` in one association. `env` decides TCP_NODELAY on the client side (DCMTK reads it from there).
 */
export function timedStore(
    target: { port: number; calledAeTitle: string },
    instances: readonly TestInstance[],
    logConfig: string,
    env: NodeJS.ProcessEnv,
): Promise<TimedStoreResult> {
    const output: string[] = [];
    const latenciesMs: number[] = [];
    let sentAt: number | undefined;
    let inFlightSize = 0;
    let bytes = 0;
    const bySize = new Map(instances.map((instance) => [instance.file, instance.size]));
    const started = process.hrtime.bigint();
    const child = spawn(
        "storescu",
        [
            "--log-config", logConfig, "-to", "30", "-ta", "30", "-td", "120",
            "-aet", callingAeTitle, "-aec", target.calledAeTitle, "127.0.0.1", String(target.port),
            ...instances.map((instance) => instance.file),
        ],
        { env, stdio: ["ignore", "pipe", "pipe"] },
    );
    const onLine = (line: string) => {
        output.push(line);
        const sending = /INFO: Sending file: (.*)$/.exec(line);
        if (sending) {
            inFlightSize = bySize.get(sending[1]) ?? 0;
        } else if (/INFO: Sending Store Request/.test(line)) {
            sentAt = timestampMs(line);
        } else if (/INFO: Received Store Response \(Success\)/.test(line)) {
            const at = timestampMs(line);
            if (sentAt !== undefined && at !== undefined) {
                // Across midnight the clock of the pattern starts again from 0.
                latenciesMs.push((at - sentAt + day) % day);
                bytes += inFlightSize;
            }
            sentAt = undefined;
        }
    };
    createInterface({ input: child.stdout! }).on("line", onLine);
    createInterface({ input: child.stderr! }).on("line", onLine);
    return new Promise((resolve, reject) => {
        child.once("error", reject);
        child.once("close", (code) =>
            resolve({
                acknowledged: latenciesMs.length,
                bytes,
                seconds: Number(process.hrtime.bigint() - started) / 1e9,
                latenciesMs,
                exitCode: code,
                output: output.join("\n"),
            }),
        );
    });
}
