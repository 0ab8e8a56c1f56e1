/**
 * Child processes and temporary directories of the integration suite, tracked so that nothing outlives a run.
 *
 * Every process started here and every directory made here is registered twice: in a `Resources` scope (released by
 * a mocha hook, in reverse order, whether the test passed or not) and in a process-wide registry that an `exit`
 * handler empties synchronously, for the cases where hooks never run (an uncaught exception, Ctrl-C).
 */
import { ChildProcess, execFile, spawn, StdioOptions } from "child_process";
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync } from "fs";
import { createServer, connect } from "net";
import { tmpdir } from "os";
import { join } from "path";

export interface Exit {
    code: number | null;
    signal: NodeJS.Signals | null;
}

/** A long-running child (PostgreSQL, an Orthanc replica). */
export interface Child {
    readonly name: string;
    readonly process: ChildProcess;
    /** Resolves when the process has exited, however it ended. */
    readonly exited: Promise<Exit>;
    /** Whether the process is still running. */
    readonly running: boolean;
    /** The end of the process's log, for error messages. */
    logTail(lines?: number): string;
    /** The whole log so far (stdout and stderr). */
    readLog(): string;
    /** Asks the process to stop with `signal`, then SIGKILLs it if it has not exited after `graceMs`. */
    stop(signal?: NodeJS.Signals, graceMs?: number): Promise<Exit>;
    /** SIGKILL, as a crashed pod or an OOM kill would end it. */
    kill(): Promise<Exit>;
}

interface Registered {
    process: ChildProcess;
    /** Signal for the synchronous exit handler: PostgreSQL wants SIGQUIT so its postmaster takes its backends down. */
    emergencySignal: NodeJS.Signals;
}

const liveChildren = new Set<Registered>();
const liveDirectories = new Set<string>();

function emergencyCleanup(): void {
    for (const child of liveChildren) {
        try {
            child.process.kill(child.emergencySignal);
        } catch {
            // Already gone.
        }
    }
    for (const dir of liveDirectories) {
        rmSync(dir, { recursive: true, force: true });
    }
}

process.once("exit", emergencyCleanup);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
        emergencyCleanup();
        process.exit(128 + (signal === "SIGHUP" ? 1 : signal === "SIGINT" ? 2 : 15));
    });
}

/**
 * What a test or a suite started, released in reverse order (Orthanc before the PostgreSQL it uses).
 */
export class Resources {
    private readonly releasers: (() => Promise<void>)[] = [];

    /** Registers a cleanup step. */
    defer(release: () => Promise<void>): void {
        this.releasers.push(release);
    }

    /** A fresh directory under the system temp directory, removed on release. */
    tempDir(prefix: string): string {
        const dir = mkdtempSync(join(tmpdir(), `korthweb-it-${prefix}-`));
        liveDirectories.add(dir);
        this.defer(async () => {
            rmSync(dir, { recursive: true, force: true });
            liveDirectories.delete(dir);
        });
        return dir;
    }

    /**
     * Starts a long-running process whose stdout and stderr go to `logFile`. It is stopped with `stopSignal` on release.
     */
    start(
        name: string,
        command: string,
        args: string[],
        options: { env?: NodeJS.ProcessEnv; logFile: string; stopSignal?: NodeJS.Signals; emergencySignal?: NodeJS.Signals },
    ): Child {
        const log = openSync(options.logFile, "a");
        const stdio: StdioOptions = ["ignore", log, log];
        const child = spawn(command, args, { env: options.env ?? process.env, stdio });
        closeSync(log);
        const registered: Registered = { process: child, emergencySignal: options.emergencySignal ?? "SIGKILL" };
        liveChildren.add(registered);
        let running = true;
        const exited = new Promise<Exit>((resolve) => {
            child.once("error", () => {
                running = false;
                liveChildren.delete(registered);
                resolve({ code: null, signal: null });
            });
            child.once("exit", (code, signal) => {
                running = false;
                liveChildren.delete(registered);
                resolve({ code, signal });
            });
        });
        const stop = async (signal: NodeJS.Signals = options.stopSignal ?? "SIGTERM", graceMs = 15_000): Promise<Exit> => {
            if (!running) {
                return exited;
            }
            child.kill(signal);
            const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
            const result = await exited;
            clearTimeout(timer);
            return result;
        };
        const handle: Child = {
            name,
            process: child,
            exited,
            get running() {
                return running;
            },
            logTail: (lines = 30) => tail(options.logFile, lines),
            readLog: () => readFileSync(options.logFile, "utf8"),
            stop,
            kill: () => stop("SIGKILL"),
        };
        this.defer(async () => {
            await handle.stop();
        });
        return handle;
    }

    /** Releases everything, last registered first; keeps going past a failing step and reports the first failure. */
    async release(): Promise<void> {
        let firstError: unknown;
        while (this.releasers.length > 0) {
            const release = this.releasers.pop()!;
            try {
                await release();
            } catch (error) {
                firstError ??= error;
            }
        }
        if (firstError !== undefined) {
            throw firstError;
        }
    }
}

function tail(file: string, lines: number): string {
    try {
        return readFileSync(file, "utf8").split("\n").slice(-lines - 1).join("\n");
    } catch {
        return "(no log)";
    }
}

export interface RunResult {
    code: number;
    stdout: string;
    stderr: string;
}

/** Runs a short command to completion; never throws on a non-zero exit (callers decide what failure means). */
export function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<RunResult> {
    return new Promise((resolve, reject) => {
        const child = execFile(
            command,
            args,
            { env: options.env ?? process.env, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
            (error, stdout, stderr) => {
                if (error && typeof error.code !== "number") {
                    reject(new Error(`${command} could not run: ${error.message}`));
                    return;
                }
                resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
            },
        );
        if (options.input !== undefined) {
            child.stdin!.end(options.input);
        }
    });
}

/** Runs a command and throws with its output when it fails. */
export async function runOk(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<RunResult> {
    const result = await run(command, args, options);
    if (result.code !== 0) {
        throw new Error(`${command} ${args.join(" ")} exited with ${result.code}:\n${result.stdout}${result.stderr}`);
    }
    return result;
}

/** A TCP port on 127.0.0.1 that nothing listens on right now (the kernel picks it, so parallel runs do not collide). */
export function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = createServer();
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const address = server.address();
            server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
        });
    });
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function portOpen(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const socket = connect({ host: "127.0.0.1", port });
        socket.once("connect", () => {
            socket.destroy();
            resolve(true);
        });
        socket.once("error", () => resolve(false));
    });
}

/**
 * Polls `ready` until it returns true. Fails early, with the child's log, when the child exits, and after `timeoutMs`.
 */
export async function waitUntil(what: string, child: Child, ready: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        if (!child.running) {
            throw new Error(`${child.name} exited before ${what}:\n${child.logTail()}`);
        }
        if (await ready()) {
            return;
        }
        await sleep(100);
    }
    throw new Error(`${child.name}: timed out after ${timeoutMs} ms waiting for ${what}:\n${child.logTail()}`);
}

/** Waits (up to `timeoutMs`) for `pattern` in what `child` logged after its log was `sinceLength` characters long. */
export async function waitForLog(child: Child, sinceLength: number, pattern: RegExp, timeoutMs = 5_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let logged = "";
    while (Date.now() < deadline) {
        logged = child.readLog().slice(sinceLength);
        if (pattern.test(logged)) {
            return logged;
        }
        await sleep(50);
    }
    throw new Error(`${child.name} did not log ${pattern} within ${timeoutMs} ms; it logged:\n${logged}`);
}

export function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs `work` over `items` with at most `limit` in flight, keeping the order of results. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
    const results = new Array<R>(items.length);
    let next = 0;
    const worker = async () => {
        while (next < items.length) {
            const index = next++;
            results[index] = await work(items[index], index);
        }
    };
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
    return results;
}
