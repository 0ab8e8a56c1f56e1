/**
 * `scripts/run smoke <stack>`: the seed validation of a deployed stack, as one command.
 *
 *   node -r ts-node/register/transpile-only scripts/tools/smoke.ts
 *
 * Environment:
 *   KORTHWEB_STACK_OUTPUTS  a JSON file with the stack outputs, as `pulumi stack output --json --show-secrets` prints
 *                           them. Without it they are read from standard input (what scripts/run pipes in).
 *   KORTHWEB_SMOKE_TARGETS  where to connect instead of what the outputs say, per tenant, as JSON:
 *                           '{"bhs":{"web":"127.0.0.1:18443","dicom":"127.0.0.1:18112"}}' (either key may be left out).
 *                           A tenant that signs users in may also take "orthanc": where its Orthanc web port is
 *                           reached as the break-glass admin (plain HTTP, as a port-forward gives it); then no
 *                           port-forward is started for it.
 *   KORTHWEB_NODE_ADDRESS   the node to connect to when a tenant's gateway has node ports (default 127.0.0.1).
 *   KORTHWEB_SMOKE_TOKEN_<TENANT>  (tenant name upper-cased, '-' as '_') an access token of one of the tenant's API
 *                           clients (`identity.apiClients`, a role with `search`): lookup and qido go through the
 *                           gateway with it. Only for a tenant that signs users in.
 *   KORTHWEB_KUBE_CONTEXT   the kube context for `--port-forward` (scripts/run passes the stack's).
 *
 * Argument: `--port-forward`: for each tenant that signs users in and has no token, lookup and qido go to Orthanc's web
 * port as the break-glass admin over `kubectl -n <namespace> port-forward svc/orthanc :8042`, stopped when the run
 * ends, however it ends.
 *
 * Where it connects otherwise: the tenant's `ingressAddress` on 443 (or the web URL's port) and on `dicomPort`, or,
 * when the outputs carry `nodePorts`, KORTHWEB_NODE_ADDRESS on those ports.
 *
 * For each tenant with at least one modality certificate, with the first one:
 *   web     the server must present a certificate for the web host name that chains to rootCaCertificate, whatever
 *           address is connected to (SNI and name check use the host name); then, for a tenant without sign-in,
 *           HTTPS GET <webUrl>/system as the admin user; for a tenant that signs users in (`signIn` in its outputs),
 *           that its gatekeeper answers: an anonymous API request refused with a Bearer challenge (401), a browser
 *           sent to sign in with the tenant's client and redirect URI, and the admin password refused (admitted
 *           there, break-glass access would reach the internet)
 *   echo    C-ECHO over DICOM TLS with the modality's key and certificate (DCMTK `echoscu +tls ... +cf <root CA>`;
 *           DCMTK checks the server's chain, not its name)
 *   store   C-STORE of a freshly generated instance (new UIDs, patient KORTHWEB-SMOKE; it stays in the tenant)
 *   lookup  the instance found back through the REST API (POST /tools/lookup with its SOPInstanceUID)
 *   qido    its study found through QIDO-RS (GET /dicom-web/studies?StudyInstanceUID=..., application/dicom+json)
 *           Both through the gateway as the admin (no sign-in) or with the tenant's API client token; else as the
 *           break-glass admin on Orthanc's own port (`--port-forward`); with neither, they fail saying so.
 * One line per tenant and check, PASS/FAIL with the reason, then a summary; exit status 1 if anything failed.
 */
import { execFile, spawn } from "child_process";
import { mkdirSync, mkdtempSync, rmSync } from "fs";
import * as http from "http";
import * as https from "https";
import { tmpdir } from "os";
import { join } from "path";
import * as tls from "tls";
import { generateInstance, SmokeInstance } from "./instance";
import { modalityCertFiles, writeFiles } from "./modalityCert";
import { orthancPorts, orthancServiceName } from "../../components/tenant/ingress";
import { ModalityCertificate, readStackOutputs, runTool, SignIn, StackOutputs, TenantEndpoint } from "./stackOutputs";

export interface Endpoint {
    host: string;
    port: number;
}

/** How lookup and qido reach the tenant's REST API and DICOMweb. */
export type RestAccess =
    /** Through the gateway with this Authorization header: the admin's (no sign-in) or an API client's bearer token. */
    | { via: "gateway"; authorization: string; as: string }
    /** Orthanc's own web port, plain HTTP, as the admin: break-glass from inside the cluster (a port-forward). */
    | { via: "break-glass"; endpoint: Endpoint; portForward?: string }
    /** A port-forward to the tenant's Orthanc Service, to start before the checks. */
    | { via: "port-forward"; namespace: string }
    /** No way in: why, and what to give. */
    | { via: "none"; why: string };

/** Everything needed to check one tenant. */
export interface TenantPlan {
    tenant: string;
    webUrl: string;
    /** The web URL's host name: SNI, certificate name check and Host header, whatever `web` connects to. */
    webHost: string;
    web: Endpoint;
    dicom: Endpoint;
    adminUser: string;
    adminPassword: string;
    /** Present when the tenant signs users in: its gatekeeper holds the web route, and admin is break-glass only. */
    signIn?: SignIn;
    rest: RestAccess;
    rootCa: string;
    modality: string;
    certificate: ModalityCertificate;
}

/** A tenant to check, or one that cannot be (with why). */
export type PlanEntry = { tenant: string; plan: TenantPlan } | { tenant: string; skipped: string } | { tenant: string; error: string };

export type CheckName = "web" | "echo" | "store" | "lookup" | "qido";
export const checkNames: CheckName[] = ["web", "echo", "store", "lookup", "qido"];

export interface CheckResult {
    tenant: string;
    /** A check, or "plan" when the tenant could not be checked at all. */
    check: CheckName | "plan";
    status: "PASS" | "FAIL" | "SKIP";
    detail: string;
}

export interface SmokeEnv {
    KORTHWEB_SMOKE_TARGETS?: string;
    KORTHWEB_NODE_ADDRESS?: string;
    /** KORTHWEB_SMOKE_TOKEN_<TENANT>, see `tokenVariable`. */
    [tokenVariable: string]: string | undefined;
}

/** The environment variable holding an API client's access token for `tenant`: KORTHWEB_SMOKE_TOKEN_<TENANT>. */
export function tokenVariable(tenant: string): string {
    return `KORTHWEB_SMOKE_TOKEN_${tenant.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
}

export const basicAuthorization = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

/** "host:port" or "[v6]:port". */
export function parseEndpoint(text: string, what: string): Endpoint {
    const match = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(text);
    const port = match ? Number(match[2]) : 0;
    if (!match || port < 1 || port > 65535) {
        throw new Error(`${what}: '${text}' is not host:port`);
    }
    return { host: match[1].replace(/^\[(.*)\]$/, "$1"), port };
}

type Overrides = Record<string, { web?: Endpoint; dicom?: Endpoint; orthanc?: Endpoint }>;
const overrideKeys = ["web", "dicom", "orthanc"];

function parseOverrides(text: string | undefined, tenants: string[]): Overrides {
    if (!text) return {};
    let value: unknown;
    try {
        value = JSON.parse(text);
    } catch (error) {
        throw new Error(`KORTHWEB_SMOKE_TARGETS is not JSON (${(error as Error).message})`);
    }
    if (!value || typeof value !== "object" || Array.isArray(value)) {
        throw new Error(`KORTHWEB_SMOKE_TARGETS must be an object keyed by tenant, e.g. {"bhs":{"web":"127.0.0.1:18443","dicom":"127.0.0.1:18112"}}`);
    }
    const overrides: Overrides = {};
    for (const [tenant, targets] of Object.entries(value)) {
        if (!tenants.includes(tenant)) {
            throw new Error(`KORTHWEB_SMOKE_TARGETS names tenant '${tenant}', which the stack does not have (tenants: ${tenants.join(", ")})`);
        }
        if (!targets || typeof targets !== "object" || Array.isArray(targets)) {
            throw new Error(`KORTHWEB_SMOKE_TARGETS.${tenant} must be an object with "web", "dicom" and/or "orthanc"`);
        }
        overrides[tenant] = {};
        for (const [key, endpoint] of Object.entries(targets)) {
            if (!overrideKeys.includes(key) || typeof endpoint !== "string") {
                throw new Error(`KORTHWEB_SMOKE_TARGETS.${tenant}.${key}: only "web", "dicom" and "orthanc", each "host:port", are allowed`);
            }
            overrides[tenant][key as keyof Overrides[string]] = parseEndpoint(endpoint, `KORTHWEB_SMOKE_TARGETS.${tenant}.${key}`);
        }
    }
    return overrides;
}

/**
 * How lookup and qido get in. Without sign-in: the admin through the gateway, as people do. With sign-in the gateway
 * admits tokens only: an API client's token when the operator gives one (the path integrations take, through the
 * gatekeeper, in its audit trail); else the break-glass admin on Orthanc's own port, only when asked for
 * (`--port-forward` or an "orthanc" target), since it bypasses the gatekeeper and its trail; else nothing, and why.
 */
export function restAccess(
    tenant: string,
    endpoint: TenantEndpoint,
    env: SmokeEnv,
    options: { orthanc?: Endpoint; portForward?: boolean },
): RestAccess {
    if (!endpoint.signIn) {
        return { via: "gateway", authorization: basicAuthorization(endpoint.adminUser, endpoint.adminPassword), as: `the ${endpoint.adminUser} user` };
    }
    const variable = tokenVariable(tenant);
    const token = env[variable]?.trim();
    if (token) return { via: "gateway", authorization: `Bearer ${token}`, as: `the API client token of ${variable}` };
    if (options.orthanc) return { via: "break-glass", endpoint: options.orthanc };
    if (options.portForward) {
        return endpoint.namespace
            ? { via: "port-forward", namespace: endpoint.namespace }
            : { via: "none", why: "--port-forward: the stack outputs name no namespace for the tenant (update the stack)" };
    }
    return {
        via: "none",
        why:
            `${tenant} signs users in, so the gateway admits no admin password: set ${variable} to an access token of one of ` +
            `its API clients (a role with search), or run with --port-forward (the break-glass admin on Orthanc's own port, from inside the cluster)`,
    };
}

/** Where to reach each tenant, from the outputs and the environment. Throws on a malformed environment. */
export function resolveTargets(outputs: StackOutputs, env: SmokeEnv, options: { portForward?: boolean } = {}): PlanEntry[] {
    const tenants = Object.keys(outputs.tenantEndpoints);
    const overrides = parseOverrides(env.KORTHWEB_SMOKE_TARGETS, tenants);
    const nodeAddress = env.KORTHWEB_NODE_ADDRESS || "127.0.0.1";
    return tenants.map((tenant): PlanEntry => {
        const endpoint = outputs.tenantEndpoints[tenant];
        // A modality that brought its own certificate request keeps its key: the outputs have none to connect with.
        const issued = Object.entries(outputs.modalityCertificates[tenant] ?? {});
        const [modality, certificate] = issued.find(([, entry]) => entry.privateKey !== undefined) ?? [];
        if (!modality || certificate?.privateKey === undefined) {
            return {
                tenant,
                skipped:
                    issued.length === 0
                        ? "no modality certificate (list a modality under the tenant's `modalities`)"
                        : "no modality certificate with its key in the outputs (each modality brought its own certificateRequest)",
            };
        }
        let url: URL;
        try {
            url = new URL(endpoint.webUrl);
        } catch {
            return { tenant, error: `webUrl '${endpoint.webUrl}' is not a URL` };
        }
        const override = overrides[tenant] ?? {};
        const ingress = endpoint.ingressAddress;
        const ingressKnown = ingress !== "" && ingress !== "pending";
        const viaIngress = (port: number): Endpoint | string =>
            ingressKnown ? { host: ingress, port } : `no ingress address yet ('${ingress}'); set KORTHWEB_SMOKE_TARGETS to say where to connect`;
        const web =
            override.web ??
            (endpoint.nodePorts.https !== undefined ? { host: nodeAddress, port: endpoint.nodePorts.https } : viaIngress(Number(url.port || 443)));
        const dicom =
            override.dicom ??
            (endpoint.nodePorts.dicom !== undefined ? { host: nodeAddress, port: endpoint.nodePorts.dicom } : viaIngress(certificate.dicomPort));
        if (typeof web === "string") return { tenant, error: web };
        if (typeof dicom === "string") return { tenant, error: dicom };
        return {
            tenant,
            plan: {
                tenant,
                webUrl: endpoint.webUrl.replace(/\/+$/, ""),
                webHost: url.hostname,
                web,
                dicom,
                adminUser: endpoint.adminUser,
                adminPassword: endpoint.adminPassword,
                ...(endpoint.signIn ? { signIn: endpoint.signIn } : {}),
                rest: restAccess(tenant, endpoint, env, { orthanc: override.orthanc, portForward: options.portForward }),
                rootCa: outputs.rootCaCertificate,
                modality,
                certificate,
            },
        };
    });
}

/** The probes a tenant check runs; each resolves with what it saw, or rejects with why it failed. */
export interface Probes {
    /** `web` for a tenant without sign-in: GET /system as the admin. */
    system(plan: TenantPlan): Promise<string>;
    /** `web` for a tenant that signs users in: its gatekeeper refuses anonymous requests and the admin password. */
    gate(plan: TenantPlan): Promise<string>;
    echo(plan: TenantPlan): Promise<string>;
    newInstance(plan: TenantPlan): Promise<SmokeInstance>;
    store(plan: TenantPlan, instance: SmokeInstance): Promise<string>;
    lookup(plan: TenantPlan, instance: SmokeInstance): Promise<string>;
    qido(plan: TenantPlan, instance: SmokeInstance): Promise<string>;
}

const reason = (error: unknown): string => (error instanceof Error ? error.message : String(error));

async function attempt(tenant: string, check: CheckName, probe: () => Promise<string>): Promise<CheckResult> {
    try {
        return { tenant, check, status: "PASS", detail: await probe() };
    } catch (error) {
        return { tenant, check, status: "FAIL", detail: reason(error) };
    }
}

/** Every check of one tenant, in order; lookup and qido fail as not run when nothing was stored. */
export async function checkTenant(plan: TenantPlan, probes: Probes, onResult: (result: CheckResult) => void = () => {}): Promise<CheckResult[]> {
    const results: CheckResult[] = [];
    const add = (result: CheckResult): void => {
        results.push(result);
        onResult(result);
    };
    const { tenant } = plan;
    add(await attempt(tenant, "web", () => (plan.signIn ? probes.gate(plan) : probes.system(plan))));
    add(await attempt(tenant, "echo", () => probes.echo(plan)));
    let instance: SmokeInstance | undefined;
    const store = await attempt(tenant, "store", async () => {
        const generated = await probes.newInstance(plan);
        const detail = await probes.store(plan, generated);
        instance = generated;
        return detail;
    });
    add(store);
    for (const check of ["lookup", "qido"] as const) {
        add(instance ? await attempt(tenant, check, () => probes[check](plan, instance!)) : { tenant, check, status: "FAIL", detail: "not run: no instance was stored" });
    }
    return results;
}

/** Checks every tenant of the plan in turn. */
export async function runSmoke(entries: PlanEntry[], probes: Probes, onResult: (result: CheckResult) => void = () => {}): Promise<CheckResult[]> {
    const results: CheckResult[] = [];
    for (const entry of entries) {
        if ("plan" in entry) {
            results.push(...(await checkTenant(entry.plan, probes, onResult)));
        } else {
            const result: CheckResult =
                "skipped" in entry
                    ? { tenant: entry.tenant, check: "plan", status: "SKIP", detail: entry.skipped }
                    : { tenant: entry.tenant, check: "plan", status: "FAIL", detail: entry.error };
            results.push(result);
            onResult(result);
        }
    }
    return results;
}

/** One report line: status, tenant, check, reason. */
export function formatResult(result: CheckResult, tenantWidth = 8): string {
    return `${result.status} ${result.tenant.padEnd(tenantWidth)} ${result.check.padEnd(6)} ${result.detail}`;
}

/** The closing line. */
export function formatSummary(results: CheckResult[]): string {
    const count = (status: CheckResult["status"]) => results.filter((result) => result.status === status).length;
    const checked = [...new Set(results.filter((result) => result.check !== "plan").map((result) => result.tenant))];
    const failed = count("FAIL");
    const verdict = exitStatus(results) === 0 ? "PASS" : "FAIL";
    const nothing = checked.length === 0 ? "; no tenant could be checked" : "";
    return (
        `smoke ${verdict}: ${count("PASS")} passed, ${failed} failed, ${count("SKIP")} skipped; ` +
        `tenants checked: ${checked.join(", ") || "none"}${nothing}`
    );
}

/** The whole report: one line per result, then the summary. */
export function formatReport(results: CheckResult[]): string {
    const width = Math.max(8, ...results.map((result) => result.tenant.length));
    return [...results.map((result) => formatResult(result, width)), formatSummary(results)].join("\n") + "\n";
}

/** 1 when a check failed or none passed (nothing validated is not a success), else 0. */
export function exitStatus(results: CheckResult[]): number {
    const failed = results.some((result) => result.status === "FAIL");
    const passed = results.some((result) => result.status === "PASS");
    return failed || !passed ? 1 : 0;
}

// ---- The real probes: HTTPS with Node, DICOM with DCMTK. ----

interface HttpAnswer {
    status: number;
    headers: http.IncomingHttpHeaders;
    body: string;
}

function collect(reject: (error: Error) => void, resolve: (answer: HttpAnswer) => void) {
    return (response: http.IncomingMessage) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString("utf8") }));
        response.on("error", reject);
    };
}

/**
 * A request to the tenant's web endpoint: connects to `plan.web`, verifies the server as `plan.webHost`. No
 * credentials unless `headers` carries them.
 */
export function webRequest(plan: TenantPlan, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<HttpAnswer> {
    const url = new URL(`${plan.webUrl}${path}`);
    return new Promise((resolve, reject) => {
        const request = https.request(
            {
                host: plan.web.host,
                port: plan.web.port,
                method,
                path: `${url.pathname}${url.search}`,
                servername: plan.webHost,
                ca: plan.rootCa,
                // Node's own check, against the web host name rather than the address connected to.
                checkServerIdentity: (_host, certificate) => tls.checkServerIdentity(plan.webHost, certificate),
                agent: false,
                timeout: 20_000,
                headers: {
                    Host: url.host,
                    ...(body !== undefined ? { "Content-Length": String(Buffer.byteLength(body)) } : {}),
                    ...headers,
                },
            },
            collect(reject, resolve),
        );
        request.on("timeout", () => request.destroy(new Error(`no answer from ${plan.web.host}:${plan.web.port} within 20 s`)));
        request.on("error", (error: NodeJS.ErrnoException) => reject(new Error(`${method} ${url.href} via ${plan.web.host}:${plan.web.port}: ${error.code ? `${error.code}: ` : ""}${error.message}`)));
        request.end(body);
    });
}

/** Plain HTTP to Orthanc's own web port (a port-forward's local end) as the break-glass admin. */
function breakGlassRequest(plan: TenantPlan, endpoint: Endpoint, method: string, path: string, headers: Record<string, string>, body?: string): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
        const request = http.request(
            {
                host: endpoint.host,
                port: endpoint.port,
                method,
                path,
                agent: false,
                timeout: 20_000,
                headers: {
                    Authorization: basicAuthorization(plan.adminUser, plan.adminPassword),
                    ...(body !== undefined ? { "Content-Length": String(Buffer.byteLength(body)) } : {}),
                    ...headers,
                },
            },
            collect(reject, resolve),
        );
        request.on("timeout", () => request.destroy(new Error(`no answer from ${endpoint.host}:${endpoint.port} within 20 s`)));
        request.on("error", (error: NodeJS.ErrnoException) => reject(new Error(`${method} http://${endpoint.host}:${endpoint.port}${path} (break-glass): ${error.code ? `${error.code}: ` : ""}${error.message}`)));
        request.end(body);
    });
}

/** A request to the tenant's REST API or DICOMweb the way `plan.rest` says; fails with why when there is no way in. */
export function restRequest(plan: TenantPlan, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<HttpAnswer> {
    const access = plan.rest;
    switch (access.via) {
        case "gateway":
            return webRequest(plan, method, path, { Authorization: access.authorization, ...headers }, body);
        case "break-glass":
            return breakGlassRequest(plan, access.endpoint, method, path, headers, body);
        case "port-forward":
            return Promise.reject(new Error(`the port-forward to ${access.namespace} was never started`));
        case "none":
            return Promise.reject(new Error(access.why));
    }
}

/** How a lookup or qido line says it got in. */
function restRoute(plan: TenantPlan): string {
    const access = plan.rest;
    if (access.via === "gateway") return `through the gateway as ${access.as}`;
    if (access.via === "break-glass") {
        const where = access.portForward ?? `${access.endpoint.host}:${access.endpoint.port}`;
        return `as the break-glass ${plan.adminUser} on Orthanc's own web port (${where}); the gateway's route for signed-in clients is not checked: give ${tokenVariable(plan.tenant)}`;
    }
    return "";
}

const isRedirect = (status: number) => [301, 302, 303, 307, 308].includes(status);

/**
 * What a tenant that signs users in must show at its gateway: TLS as for every tenant (webRequest), and its gatekeeper,
 * not Orthanc, behind it: an anonymous API request refused with a Bearer challenge (Orthanc's own refusal is a Basic
 * one), a browser sent to the provider with the tenant's client and redirect URI, and the admin password refused.
 * Every problem is named, the leak first.
 */
export async function checkGate(plan: TenantPlan): Promise<string> {
    const signIn = plan.signIn;
    if (!signIn) throw new Error(`${plan.tenant} does not sign users in`);
    const problems: string[] = [];
    const admin = await webRequest(plan, "GET", "/system", { Authorization: basicAuthorization(plan.adminUser, plan.adminPassword), Accept: "application/json" });
    if (admin.status >= 200 && admin.status < 300) {
        problems.push(`the ${plan.adminUser} password is admitted through the gateway (GET /system: HTTP ${admin.status}): break-glass access reaches the internet`);
    } else if (admin.status !== 401 && admin.status !== 403) {
        problems.push(`GET /system as ${plan.adminUser}: HTTP ${admin.status}, expected 401 or 403`);
    }
    const anonymous = await webRequest(plan, "GET", "/system", { Accept: "application/json" });
    const challenge = String(anonymous.headers["www-authenticate"] ?? "");
    if (anonymous.status >= 200 && anonymous.status < 300) {
        problems.push(`GET /system is served without sign-in (HTTP ${anonymous.status})`);
    } else if (anonymous.status !== 401 || !/^Bearer\b/i.test(challenge)) {
        problems.push(
            `anonymous GET /system: HTTP ${anonymous.status}${challenge ? ` (WWW-Authenticate: ${challenge})` : ""}, expected the gatekeeper's 401 with a Bearer challenge`,
        );
    }
    const browser = await webRequest(plan, "GET", "/", { Accept: "text/html" });
    const location = String(browser.headers.location ?? "");
    let signInAt: URL | undefined;
    try {
        signInAt = new URL(location);
    } catch {
        signInAt = undefined;
    }
    const params = signInAt?.searchParams;
    if (
        !isRedirect(browser.status) ||
        signInAt?.protocol !== "https:" ||
        params?.get("client_id") !== signIn.clientId ||
        params?.get("redirect_uri") !== signIn.redirectUri
    ) {
        problems.push(
            `a browser's GET /: HTTP ${browser.status}${location ? ` to ${location.slice(0, 200)}` : ""}, expected a redirect to sign in at the provider ` +
                `with client_id ${signIn.clientId} and redirect_uri ${signIn.redirectUri}`,
        );
    }
    if (problems.length > 0) throw new Error(problems.join("; "));
    return (
        `${plan.webUrl} via ${plan.web.host}:${plan.web.port}, certificate valid for ${plan.webHost}: the gatekeeper refuses an anonymous request ` +
        `(401 Bearer) and the ${plan.adminUser} password (HTTP ${admin.status}), and sends a browser to sign in at ${signInAt!.origin}`
    );
}

function expectStatus(answer: HttpAnswer, what: string): void {
    if (answer.status !== 200) {
        throw new Error(`${what}: HTTP ${answer.status} ${answer.body.trim().slice(0, 200)}`);
    }
}

function parseJson(answer: HttpAnswer, what: string): unknown {
    try {
        return JSON.parse(answer.body);
    } catch {
        throw new Error(`${what}: the answer is not JSON: ${answer.body.slice(0, 200)}`);
    }
}

interface ProcessAnswer {
    code: number | null;
    output: string;
}

function runDcmtk(tool: string, args: string[]): Promise<ProcessAnswer> {
    return new Promise((resolve, reject) => {
        execFile(tool, args, { timeout: 90_000 }, (error, stdout, stderr) => {
            if ((error as NodeJS.ErrnoException | null)?.code === "ENOENT") {
                reject(new Error(`${tool} not found: install DCMTK (apt-get install dcmtk)`));
                return;
            }
            const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
            resolve({ code, output: `${stdout}${stderr}`.trim() });
        });
    });
}

/** The last lines of a tool's log that say something, for a FAIL line. */
function tail(output: string): string {
    const lines = output.split("\n").filter((line) => line.trim() !== "");
    return lines.slice(-2).join(" | ") || "no output";
}

export function realProbes(workDir: string): Probes {
    const credentials = new Map<string, { key: string; crt: string; ca: string }>();
    // The modality's files, as `scripts/run modality-cert` writes them, in a directory only this user reads.
    const dcmtkTls = (plan: TenantPlan): string[] => {
        let files = credentials.get(plan.tenant);
        if (!files) {
            const dir = join(workDir, plan.tenant);
            const outputs: StackOutputs = {
                rootCaCertificate: plan.rootCa,
                tenantEndpoints: {},
                modalityCertificates: { [plan.tenant]: { [plan.modality]: plan.certificate } },
            };
            outputs.tenantEndpoints[plan.tenant] = {
                webUrl: plan.webUrl,
                dicomHost: plan.certificate.dicomHost,
                dicomPort: plan.certificate.dicomPort,
                ingressAddress: "",
                nodePorts: {},
                adminUser: plan.adminUser,
                adminPassword: "",
            };
            writeFiles(dir, modalityCertFiles(outputs, plan.tenant, plan.modality, dir).files);
            files = { key: join(dir, `${plan.modality}.key`), crt: join(dir, `${plan.modality}.crt`), ca: join(dir, "server-ca.crt") };
            credentials.set(plan.tenant, files);
        }
        return ["-aet", plan.certificate.aeTitle, "-aec", plan.certificate.calledAeTitle, "+tls", files.key, files.crt, "+cf", files.ca, plan.dicom.host, String(plan.dicom.port)];
    };
    const association = (plan: TenantPlan) =>
        `${plan.certificate.aeTitle} -> ${plan.certificate.calledAeTitle} at ${plan.dicom.host}:${plan.dicom.port}`;
    return {
        async system(plan) {
            const answer = await webRequest(plan, "GET", "/system", { Authorization: basicAuthorization(plan.adminUser, plan.adminPassword) });
            expectStatus(answer, `GET ${plan.webUrl}/system`);
            const system = parseJson(answer, "GET /system") as { Version?: string; Name?: string };
            return `GET ${plan.webUrl}/system via ${plan.web.host}:${plan.web.port}: Orthanc ${system.Version ?? "?"} (${system.Name ?? "?"}), certificate valid for ${plan.webHost}`;
        },
        gate: checkGate,
        async echo(plan) {
            const { code, output } = await runDcmtk("echoscu", ["-v", "-to", "15", "-ta", "15", "-td", "15", ...dcmtkTls(plan)]);
            if (code !== 0 || !/Received Echo Response \(Success\)/.test(output)) {
                throw new Error(`C-ECHO ${association(plan)}: echoscu exited ${code}: ${tail(output)}`);
            }
            return `C-ECHO ${association(plan)} over TLS as modality ${plan.modality}: Success`;
        },
        async newInstance(plan) {
            const dir = join(workDir, plan.tenant, "instance");
            mkdirSync(dir, { recursive: true });
            return generateInstance(dir);
        },
        async store(plan, instance) {
            const { code, output } = await runDcmtk("storescu", ["-v", "-to", "15", "-ta", "15", "-td", "30", ...dcmtkTls(plan), instance.file]);
            if (code !== 0 || !/Received Store Response \(Success\)/.test(output)) {
                throw new Error(`C-STORE ${association(plan)}: storescu exited ${code}: ${tail(output)}`);
            }
            return `C-STORE ${association(plan)}: Success, SOPInstanceUID ${instance.sopInstanceUid}`;
        },
        async lookup(plan, instance) {
            const answer = await restRequest(plan, "POST", "/tools/lookup", { "Content-Type": "text/plain" }, instance.sopInstanceUid);
            expectStatus(answer, "POST /tools/lookup");
            const found = parseJson(answer, "POST /tools/lookup") as { Type?: string; ID?: string }[];
            const hit = Array.isArray(found) ? found.find((entry) => entry.Type === "Instance") : undefined;
            if (!hit) {
                throw new Error(`POST /tools/lookup ${instance.sopInstanceUid}: not found (${answer.body.trim().slice(0, 200)})`);
            }
            return `POST /tools/lookup: instance ${hit.ID}, ${restRoute(plan)}`;
        },
        async qido(plan, instance) {
            const path = `/dicom-web/studies?StudyInstanceUID=${encodeURIComponent(instance.studyInstanceUid)}`;
            const answer = await restRequest(plan, "GET", path, { Accept: "application/dicom+json" });
            expectStatus(answer, `GET ${path}`);
            const studies = parseJson(answer, `GET ${path}`) as Record<string, { Value?: unknown[] }>[];
            const hit = Array.isArray(studies) && studies.some((study) => study?.["0020000D"]?.Value?.[0] === instance.studyInstanceUid);
            if (!hit) {
                throw new Error(`GET ${path}: the study is not in the answer (${answer.body.trim().slice(0, 200)})`);
            }
            return `QIDO-RS GET /dicom-web/studies: study ${instance.studyInstanceUid} found, ${restRoute(plan)}`;
        },
    };
}

/**
 * A directory only this user reads (mkdtemp makes it 0700), for the modality keys, removed however the run ends: at
 * the end, on an error, at `process.exit`, and on SIGINT, SIGTERM or SIGHUP, whose default action ends Node at once
 * without running any `finally` (an interrupted run would leave a modality's key behind). After removing it, a signal
 * is raised again with its default action, so the caller sees the run killed by it. Returns the directory and the
 * function that removes it.
 */
export function privateWorkDir(prefix: string): { dir: string; remove: () => void } {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    return { dir, remove: onEnd(() => rmSync(dir, { recursive: true, force: true })) };
}

/**
 * Runs `cleanup` however the run ends (at `process.exit`, on SIGINT, SIGTERM or SIGHUP, then raising the signal again
 * with its default action), or when the returned function is called, whichever comes first.
 */
export function onEnd(cleanup: () => void): () => void {
    const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
    const onSignal = (signal: NodeJS.Signals) => {
        cleanup();
        signals.forEach((other) => process.removeListener(other, onSignal));
        process.removeListener("exit", cleanup);
        process.kill(process.pid, signal);
    };
    signals.forEach((signal) => process.on(signal, onSignal));
    process.on("exit", cleanup);
    return () => {
        cleanup();
        signals.forEach((signal) => process.removeListener(signal, onSignal));
        process.removeListener("exit", cleanup);
    };
}

export interface PortForward {
    endpoint: Endpoint;
    /** What was run, for the report. */
    command: string;
    stop(): void;
}

/**
 * `kubectl [--context C] -n <namespace> port-forward --address 127.0.0.1 svc/orthanc :8042`: kubectl picks a free local
 * port and says which ("Forwarding from 127.0.0.1:<port> -> 8042"). The process is stopped by `stop`, or when the run
 * ends however it ends (`onEnd`): an interrupted smoke leaves no tunnel into the tenant open.
 */
export function startPortForward(namespace: string, context: string | undefined, timeoutMs = 30_000): Promise<PortForward> {
    const args = [...(context ? ["--context", context] : []), "-n", namespace, "port-forward", "--address", "127.0.0.1", `svc/${orthancServiceName}`, `:${orthancPorts.http}`];
    const command = `kubectl ${args.join(" ")}`;
    const child = spawn("kubectl", args, { stdio: ["ignore", "pipe", "pipe"] });
    const stop = onEnd(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    });
    return new Promise((resolve, reject) => {
        let stdout = "";
        let stderr = "";
        let settled = false;
        const fail = (why: string) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            stop();
            reject(new Error(`${command}: ${why}`));
        };
        const timer = setTimeout(() => fail(`no forwarding within ${timeoutMs / 1000} s: ${tail(stderr)}`), timeoutMs);
        child.stdout.on("data", (chunk: Buffer) => {
            if (settled) return; // kubectl goes on logging each connection
            stdout += chunk.toString("utf8");
            const port = /Forwarding from 127\.0\.0\.1:(\d+) ->/.exec(stdout)?.[1];
            if (port) {
                settled = true;
                clearTimeout(timer);
                resolve({ endpoint: { host: "127.0.0.1", port: Number(port) }, command, stop });
            }
        });
        child.stderr.on("data", (chunk: Buffer) => {
            stderr += chunk.toString("utf8");
        });
        child.on("error", (error: NodeJS.ErrnoException) => fail(error.code === "ENOENT" ? "kubectl not found: install it (the stack's kube context reaches the cluster)" : error.message));
        child.on("exit", (code, signal) => fail(`exited ${code ?? signal} before forwarding: ${tail(stderr)}`));
    });
}

/**
 * Starts the port-forwards the plans ask for and points their REST access at them; one that does not start leaves its
 * tenant's lookup and qido to fail with kubectl's reason. Returns the stoppers.
 */
export async function openPortForwards(
    entries: PlanEntry[],
    context: string | undefined,
    start: (namespace: string, context: string | undefined) => Promise<PortForward> = startPortForward,
): Promise<(() => void)[]> {
    const stoppers: (() => void)[] = [];
    for (const entry of entries) {
        if (!("plan" in entry) || entry.plan.rest.via !== "port-forward") continue;
        try {
            const forward = await start(entry.plan.rest.namespace, context);
            stoppers.push(forward.stop);
            entry.plan.rest = { via: "break-glass", endpoint: forward.endpoint, portForward: forward.command };
        } catch (error) {
            entry.plan.rest = { via: "none", why: reason(error) };
        }
    }
    return stoppers;
}

/** The command line: nothing, or `--port-forward`. */
export function parseArguments(args: string[]): { portForward: boolean } {
    const unknown = args.filter((arg) => arg !== "--port-forward");
    if (unknown.length > 0) throw new Error(`unknown argument ${unknown[0]}: the only one is --port-forward`);
    return { portForward: args.includes("--port-forward") };
}

async function main(): Promise<number> {
    const { portForward } = parseArguments(process.argv.slice(2));
    const entries = resolveTargets(readStackOutputs(), process.env, { portForward });
    const width = Math.max(8, ...entries.map((entry) => entry.tenant.length));
    const work = privateWorkDir("korthweb-smoke-"); // the modality keys go here
    const forwards = await openPortForwards(entries, process.env.KORTHWEB_KUBE_CONTEXT || undefined);
    try {
        const results = await runSmoke(entries, realProbes(work.dir), (result) => process.stdout.write(`${formatResult(result, width)}\n`));
        process.stdout.write(`${formatSummary(results)}\n`);
        return exitStatus(results);
    } finally {
        forwards.forEach((stop) => stop());
        work.remove();
    }
}

if (require.main === module) {
    runTool(main);
}
