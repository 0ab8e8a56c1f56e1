/**
 * The faults a site meets (issue 17), made on this machine's real processes: a PostgreSQL frozen as if unreachable, a
 * data directory on a small volume, Pgpool-II's children all taken, a forwarder standing for the Service in front of
 * the gateway, and a modality that keeps sending one instance per association while the fault lasts.
 */
import { ChildProcess, spawn, spawnSync } from "child_process";
import { mkdirSync, readdirSync, readFileSync, statfsSync, writeFileSync } from "fs";
import { connect, createServer, Socket } from "net";
import { join } from "path";
import { DicomTarget, store } from "./dcmtk";
import { TestInstance } from "./dicom";
import { Child, Resources, runOk, sleep } from "./processes";

/** Every process under `pid` (its children, theirs, ...), read from /proc. */
export function descendants(pid: number): number[] {
    const parents = new Map<number, number[]>();
    for (const entry of readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        try {
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ')'.
            const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
            const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
            parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
        } catch {
            // Gone meanwhile.
        }
    }
    const found: number[] = [];
    const walk = (parent: number) => {
        for (const child of parents.get(parent) ?? []) {
            found.push(child);
            walk(child);
        }
    };
    walk(pid);
    return found;
}

/**
 * Stops a process and every process under it with SIGSTOP: to a client, the server has vanished without closing a
 * connection (a network partition, a hung host). Connections stay open, queries wait, new connections are accepted by
 * the kernel and never answered. Returns what thaws it (SIGCONT to the same processes), released with `resources`
 * should the test fail first.
 */
export function freeze(resources: Resources, pid: number): () => void {
    const frozen = [pid, ...descendants(pid)];
    for (const target of frozen) process.kill(target, "SIGSTOP");
    let thawed = false;
    const thaw = () => {
        if (thawed) return;
        thawed = true;
        for (const target of frozen) {
            try {
                process.kill(target, "SIGCONT");
            } catch {
                // Gone.
            }
        }
    };
    resources.defer(async () => thaw());
    return thaw;
}

/**
 * A tmpfs of `sizeMiB` mounted on a fresh directory of the suite (root only), unmounted on release and at the
 * suite's exit. It stands for a tenant's small PersistentVolume.
 */
export async function smallVolume(resources: Resources, name: string, sizeMiB: number): Promise<string> {
    const dir = resources.tempDir(name);
    await runOk("mount", ["-t", "tmpfs", "-o", `size=${sizeMiB}m,mode=0755`, `korthweb-${name}`, dir]);
    const unmount = () => spawn("umount", ["-l", dir], { stdio: "ignore" });
    // Synchronous: at exit, a lazy unmount is all there is time for.
    const onExit = () => spawnSync("umount", ["-l", dir], { stdio: "ignore" });
    process.once("exit", onExit);
    resources.defer(async () => {
        process.removeListener("exit", onExit);
        await new Promise((resolve) => unmount().once("exit", resolve));
    });
    mkdirSync(join(dir, "cluster"), { mode: 0o700 });
    return dir;
}

/** Bytes still free on the filesystem of `path`. */
export function freeBytes(path: string): number {
    const stats = statfsSync(path);
    return stats.bavail * stats.bsize;
}

/**
 * Rows of a storage area and an index that do not belong together: files stored without the attachment that names
 * them (a write half done), and attachments whose file is missing (an instance the index serves and cannot read).
 */
export async function partialRows(asOrthancRole: (sql: string) => Promise<string>): Promise<{ filesWithoutAttachment: number; attachmentsWithoutFile: number }> {
    const row = await asOrthancRole(
        "SELECT (SELECT count(*) FROM storagearea f LEFT JOIN attachedfiles a ON a.uuid = f.uuid WHERE a.uuid IS NULL), " +
            "(SELECT count(*) FROM attachedfiles a LEFT JOIN storagearea f ON f.uuid = a.uuid WHERE f.uuid IS NULL)",
    );
    const [filesWithoutAttachment, attachmentsWithoutFile] = row.split("|").map(Number);
    return { filesWithoutAttachment, attachmentsWithoutFile };
}

/** One C-STORE association of the modality, and what came of it. */
export interface Attempt {
    instance: TestInstance;
    acknowledged: boolean;
    /** Date.now() at the start and at the end of the storescu run. */
    started: number;
    ended: number;
    output: string;
}

/**
 * A modality sending `instances` one association each, one after the other with `pauseMs` between, until stopped or
 * out of instances: what a modality's queue does while the archive is in trouble.
 */
export function keepSending(target: DicomTarget, instances: TestInstance[], pauseMs: number) {
    const attempts: Attempt[] = [];
    let stopped = false;
    const done = (async () => {
        for (const instance of instances) {
            if (stopped) break;
            const started = Date.now();
            const result = await store(target, [instance]);
            attempts.push({ instance, acknowledged: result.acknowledged.length === 1, started, ended: Date.now(), output: result.output });
            await sleep(pauseMs);
        }
    })();
    return {
        attempts,
        /** Resolves with the first acknowledged attempt that started at or after `since`. */
        async firstAcknowledgedSince(since: number, timeoutMs: number): Promise<Attempt | undefined> {
            const deadline = Date.now() + timeoutMs;
            while (Date.now() < deadline) {
                const attempt = attempts.find((a) => a.acknowledged && a.started >= since);
                if (attempt) return attempt;
                await sleep(200);
            }
            return undefined;
        },
        async stop(): Promise<Attempt[]> {
            stopped = true;
            await done;
            return attempts;
        },
    };
}

/** What each client holding a Pgpool child runs, over and over; the suite counts the sessions by it. */
export const holderQuery = "SELECT pg_sleep(0.5);";

/**
 * Clients that take every Pgpool-II child they can and keep it (short sleeps, one after the other, for an hour),
 * `count` of them, each retrying every `retryMs` when Pgpool refuses it: whatever child another client lets go is
 * taken within that time. They stand for the other replicas, a runaway job, an operator's sessions. A killed holder's
 * child is free within half a second (Pgpool notices the closed client once the running sleep ends).
 */
export function holdPgpoolChildren(resources: Resources, pgpoolPort: number, count: number, retryMs = 250) {
    const script = join(resources.tempDir("pgpool-holders"), "hold.sql");
    writeFileSync(script, `${holderQuery}\n`.repeat(7200));
    const live = new Set<ChildProcess>();
    let stopped = false;
    const holder = async () => {
        while (!stopped) {
            const child = spawn("psql", ["-X", "-q", "-h", "127.0.0.1", "-p", String(pgpoolPort), "-U", "repmgr", "-d", "postgres", "-f", script], {
                stdio: "ignore",
                env: { ...process.env, PGCONNECT_TIMEOUT: "5" },
            });
            live.add(child);
            await new Promise((resolve) => child.once("exit", resolve));
            live.delete(child);
            if (!stopped) await sleep(retryMs);
        }
    };
    const running = Array.from({ length: count }, holder);
    const release = async () => {
        stopped = true;
        for (const child of live) child.kill("SIGKILL");
        await Promise.all(running);
    };
    resources.defer(release);
    return { release };
}

/**
 * A plain TCP forwarder on a fixed port of 127.0.0.1 to `upstreamPort`, which `retarget` changes: the Service in front
 * of the gateway pods, whose address stays while the pod behind it is replaced.
 */
export async function startForwarder(resources: Resources, upstreamPort: number) {
    let upstream = upstreamPort;
    const open = new Set<Socket>();
    const server = createServer((client) => {
        const backend = connect({ host: "127.0.0.1", port: upstream });
        for (const socket of [client, backend]) {
            open.add(socket);
            socket.once("close", () => open.delete(socket));
            socket.on("error", () => undefined);
        }
        client.pipe(backend).pipe(client);
        client.once("close", () => backend.destroy());
        backend.once("close", () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => resolve());
    });
    const address = server.address();
    if (typeof address !== "object" || !address) throw new Error("forwarder has no address");
    resources.defer(
        () =>
            new Promise<void>((resolve) => {
                for (const socket of open) socket.destroy();
                server.close(() => resolve());
            }),
    );
    return {
        port: address.port,
        retarget(port: number) {
            upstream = port;
        },
    };
}

/**
 * Starts an exited server again with the command line it ran with (same port, same data, same configuration): what
 * kubelet does when a container exits. Released with `resources`.
 */
export function startAgain(resources: Resources, child: Child, logFile: string, signals: { stopSignal: NodeJS.Signals; emergencySignal?: NodeJS.Signals }): Child {
    if (child.running) {
        throw new Error(`${child.name} is still running`);
    }
    const [, ...args] = child.process.spawnargs;
    return resources.start(`${child.name}-again`, child.process.spawnfile, args, { logFile, ...signals });
}
