/**
 * What the backup pod's surroundings are on this machine: the commands `backupCommands`/`restoreCommands` produce, run
 * with `sh -c` exactly as the containers run them, with the host's client tools, and a stand-in for the Istio agent's
 * quitquitquit endpoint that counts how often it was asked to stop.
 */
import { spawn } from "child_process";
import { createServer } from "http";
import { AddressInfo } from "net";
import { backupEnvironment } from "../../../components/data/backup/backup";
import { Resources, RunResult } from "./processes";

/**
 * The client tools the commands find on PATH: Debian's (/usr/bin first), so `aws` is the awscli package's AWS CLI v2
 * and pg_dump/pg_restore are the PostgreSQL client's, whatever else a developer's PATH holds (e.g. a pip AWS CLI v1).
 */
export const clientPath = `/usr/bin:/bin:${process.env.PATH ?? ""}`;

export interface Secrets {
    databasePassword?: string;
    accessKeyId?: string;
    secretAccessKey?: string;
}

/**
 * Runs one container's script with only what the pod gives it: HOME, PATH and the secrets, under the names the pod
 * spec's env uses (`backupEnvironment`). Nothing of the suite's own environment (AWS_*, PG*) leaks in.
 */
export function runScript(script: string, home: string, secrets: Secrets): Promise<RunResult> {
    const env: NodeJS.ProcessEnv = { PATH: clientPath, HOME: home, LANG: "C.UTF-8" };
    if (secrets.databasePassword !== undefined) env[backupEnvironment.databasePassword] = secrets.databasePassword;
    if (secrets.accessKeyId !== undefined) env[backupEnvironment.accessKeyId] = secrets.accessKeyId;
    if (secrets.secretAccessKey !== undefined) env[backupEnvironment.secretAccessKey] = secrets.secretAccessKey;
    return new Promise((resolve, reject) => {
        const child = spawn("/bin/sh", ["-c", script], { env, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (chunk) => (stdout += chunk));
        child.stderr.on("data", (chunk) => (stderr += chunk));
        const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
        child.once("error", reject);
        child.once("exit", (code, signal) => {
            clearTimeout(timer);
            resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
        });
    });
}

export interface SidecarStub {
    /** What the upload script POSTs to (the pod's http://localhost:15020/quitquitquit). */
    readonly quitUrl: string;
    /** How many POSTs to /quitquitquit arrived. */
    readonly quits: number;
}

/** An HTTP server on 127.0.0.1 answering POST /quitquitquit as pilot-agent does (200), counting the calls. */
export async function startSidecarStub(resources: Resources): Promise<SidecarStub> {
    let quits = 0;
    const server = createServer((request, response) => {
        if (request.method === "POST" && request.url === "/quitquitquit") {
            quits++;
            response.writeHead(200);
            response.end("OK");
            return;
        }
        response.writeHead(404);
        response.end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    resources.defer(() => new Promise<void>((resolve) => server.close(() => resolve())));
    return {
        quitUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/quitquitquit`,
        get quits() {
            return quits;
        },
    };
}
