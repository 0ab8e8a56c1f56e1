/**
 * Real Prometheus, Alertmanager and postgres_exporter on loopback (Debian sid's), with temp directories, for the
 * monitoring test; and an HTTPS webhook that records what Alertmanager delivers.
 */
import { createServer } from "https";
import { spawnSync } from "child_process";
import { existsSync, writeFileSync } from "fs";
import { join } from "path";
import { stringify } from "yaml";
import { Child, freePort, portOpen, Resources, runOk, waitUntil } from "./processes";
import { korthwebCacheDirectory } from "./prerequisites";

/** Where scripts/install-monitoring-tools unpacks Debian sid's packages (Prometheus 3.5, Alertmanager 0.33, postgres_exporter 0.19). */
export const monitoringToolsCommand = "scripts/install-monitoring-tools";
const toolsBin = join(process.env.KORTHWEB_MONITORING_TOOLS_CACHE ?? join(korthwebCacheDirectory(), "monitoring-tools"), "root", "usr", "bin");

export const monitoringBinaries = {
    prometheus: join(toolsBin, "prometheus"),
    promtool: join(toolsBin, "promtool"),
    alertmanager: join(toolsBin, "prometheus-alertmanager"),
    amtool: join(toolsBin, "amtool"),
    postgresExporter: join(toolsBin, "prometheus-postgres-exporter"),
} as const;

/** Fails, naming the command that installs them, when a binary is missing. */
export function assertMonitoringBinaries(): void {
    const missing = Object.values(monitoringBinaries).filter((binary) => !existsSync(binary));
    if (missing.length > 0) {
        throw new Error(`missing ${missing.join(", ")}: run ${monitoringToolsCommand} (scripts/run does)`);
    }
}

/** `<binary> --version`'s first line, for the suite's output. */
export function versionOf(binary: string): string {
    // Some print it on standard error.
    const result = spawnSync(binary, ["--version"], { encoding: "utf8" });
    return `${result.stdout}${result.stderr}`.trim().split("\n")[0];
}

export interface Service {
    readonly port: number;
    readonly child: Child;
    readonly url: string;
}

/** postgres_exporter connecting as `dsn` (over TCP, as the chart's sidecar connects over 127.0.0.1). */
export async function startPostgresExporter(resources: Resources, dsn: string): Promise<Service> {
    const dir = resources.tempDir("postgres-exporter");
    const port = await freePort();
    const child = resources.start("postgres-exporter", monitoringBinaries.postgresExporter, [`--web.listen-address=127.0.0.1:${port}`], {
        env: { ...process.env, DATA_SOURCE_NAME: dsn },
        logFile: join(dir, "exporter.log"),
    });
    await waitUntil("the exporter listens", child, () => portOpen(port));
    return { port, child, url: `http://127.0.0.1:${port}` };
}

/** Prometheus on `config` (with `files` written beside it: rules, passwords), evaluating every second. */
export async function startPrometheus(resources: Resources, config: Record<string, unknown>, files: Record<string, string>): Promise<Service & { dir: string }> {
    const dir = resources.tempDir("prometheus");
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content, { mode: 0o600 });
    writeFileSync(join(dir, "prometheus.yml"), stringify(config));
    await runOk(monitoringBinaries.promtool, ["check", "config", join(dir, "prometheus.yml")]);
    const port = await freePort();
    const child = resources.start(
        "prometheus",
        monitoringBinaries.prometheus,
        [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`],
        { logFile: join(dir, "prometheus.log") },
    );
    await waitUntil("Prometheus is ready", child, async () => (await portOpen(port)) && (await fetch(`http://127.0.0.1:${port}/-/ready`).then((r) => r.ok, () => false)));
    return { port, child, url: `http://127.0.0.1:${port}`, dir };
}

/** Alertmanager on `config`, its credential files in `secretsDirectory`; `env` e.g. to trust the test's webhook CA. */
export async function startAlertmanager(resources: Resources, config: Record<string, unknown>, env: NodeJS.ProcessEnv): Promise<Service & { configFile: string }> {
    const dir = resources.tempDir("alertmanager");
    const configFile = join(dir, "alertmanager.yml");
    writeFileSync(configFile, stringify(config));
    await runOk(monitoringBinaries.amtool, ["check-config", configFile]);
    const port = await freePort();
    const child = resources.start(
        "alertmanager",
        monitoringBinaries.alertmanager,
        // No cluster listener: a lone instance, nothing beyond loopback.
        [`--config.file=${configFile}`, `--storage.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--cluster.listen-address="],
        { env: { ...process.env, ...env }, logFile: join(dir, "alertmanager.log") },
    );
    await waitUntil("Alertmanager is ready", child, async () => (await portOpen(port)) && (await fetch(`http://127.0.0.1:${port}/-/ready`).then((r) => r.ok, () => false)));
    return { port, child, url: `http://127.0.0.1:${port}`, configFile };
}

export interface DeliveredAlert {
    status: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
}

export interface Webhook {
    readonly url: string;
    /** The certificate Alertmanager must trust (its SSL_CERT_FILE). */
    readonly caFile: string;
    /** Every alert delivered with the expected bearer token, in order; deliveries without it are counted apart. */
    readonly delivered: DeliveredAlert[];
    readonly refused: number;
    waitFor(what: string, predicate: (alert: DeliveredAlert) => boolean, timeoutMs?: number): Promise<DeliveredAlert>;
}

/** An HTTPS endpoint on 127.0.0.1 taking Alertmanager's webhook JSON, accepting only `Bearer <token>`. */
export async function startWebhook(resources: Resources, bearerToken: string): Promise<Webhook> {
    const dir = resources.tempDir("webhook");
    const keyFile = join(dir, "key.pem");
    const certFile = join(dir, "cert.pem");
    await runOk("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyFile, "-out", certFile, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]);
    const { readFileSync } = await import("fs");
    const delivered: DeliveredAlert[] = [];
    let refused = 0;
    const server = createServer({ key: readFileSync(keyFile), cert: readFileSync(certFile) }, (request, response) => {
        const chunks: Buffer[] = [];
        request.on("data", (chunk) => chunks.push(chunk));
        request.on("end", () => {
            if (request.headers.authorization !== `Bearer ${bearerToken}`) {
                refused++;
                response.writeHead(401).end();
                return;
            }
            const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { alerts: DeliveredAlert[] };
            delivered.push(...body.alerts);
            response.writeHead(200).end();
        });
    });
    const port = await freePort();
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    resources.defer(() => new Promise<void>((resolve) => server.close(() => resolve())));
    return {
        url: `https://127.0.0.1:${port}/alerts`,
        caFile: certFile,
        delivered,
        get refused() {
            return refused;
        },
        async waitFor(what, predicate, timeoutMs = 90_000) {
            const deadline = Date.now() + timeoutMs;
            for (;;) {
                const found = delivered.find(predicate);
                if (found) return found;
                if (Date.now() > deadline) throw new Error(`no delivered alert ${what} within ${timeoutMs / 1000} s; delivered: ${JSON.stringify(delivered.map((a) => a.labels))}`);
                await new Promise((resolve) => setTimeout(resolve, 250));
            }
        },
    };
}

/** Prometheus' HTTP API: the value of an instant query, by a label to tell series apart. */
export async function query(prometheus: Service, expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
    const response = await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await response.json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    if (body.status !== "success") throw new Error(`query ${expr}: ${JSON.stringify(body)}`);
    return body.data.result;
}
