/**
 * The whole program rendered under mocks for a stack, each in its own process, once per test run.
 */
import { execFile } from "child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "fs";
import { cpus, tmpdir } from "os";
import * as path from "path";
import { parse } from "yaml";
import { parseStackConfig } from "../../components/config/load";
import { StackConfig } from "../../components/config/schema";
import { RecordedResource } from "./mocks";

export interface RenderedStack {
    resources: RecordedResource[];
    outputs: Record<string, any>;
    /** The program's error, when it refused the configuration. */
    error?: string;
}

const repoRoot = path.resolve(__dirname, "..", "..");
/** The stand-in gatekeeper source the stacks are rendered with. */
export const gatekeeperFixture = path.join(repoRoot, "tests", "fixtures", "gatekeeper");
export const shippedStacks = ["dev", "tst", "local"] as const;
/** Stack files that show the other database engines, with backups; rendered like the shipped ones. */
export const exampleStacks = ["cnpg", "external"] as const;
export const allStacks = [...shippedStacks, ...exampleStacks] as const;

/**
 * Credentials a stack file leaves to `pulumi config set --secret --path`: the suite fills them in, and marks their
 * top-level keys secret as Pulumi would.
 */
export function withTestCredentials(config: Record<string, unknown>): { config: Record<string, unknown>; secretKeys: string[] } {
    const filled = structuredClone(config) as Record<string, any>;
    const secretKeys: string[] = [];
    const backup = filled["korthweb:backup"];
    if (backup?.s3) {
        // Each tenant's own key pair (backup.tenants.<tenant>), as `pulumi config set --secret --path` stores them;
        // none for a tenant that assumes a role.
        for (const [tenant, own] of Object.entries((backup.tenants ?? {}) as Record<string, Record<string, string>>)) {
            if (own.roleArn !== undefined) continue;
            own.accessKeyId ??= `test-access-key-id-${tenant}`;
            own.secretAccessKey ??= `test-secret-access-key-${tenant}`;
        }
        secretKeys.push("korthweb:backup");
    }
    const alerting = filled["korthweb:observability"]?.alerting;
    if (alerting) {
        if (alerting.smtp) alerting.smtp.password ??= "test-smtp-password";
        for (const receiver of (alerting.receivers ?? []) as Record<string, any>[]) {
            if (receiver.webhook) receiver.webhook.bearerToken ??= `test-webhook-token-${receiver.name}`;
            if (receiver.slack) receiver.slack.webhookUrl ??= `https://hooks.slack.example/test-${receiver.name}`;
            if (receiver.pagerduty) receiver.pagerduty.routingKey ??= `test-routing-key-${receiver.name}`;
            if (receiver.opsgenie) receiver.opsgenie.apiKey ??= `test-api-key-${receiver.name}`;
        }
        secretKeys.push("korthweb:observability");
    }
    const tenants = (filled["korthweb:tenants"] ?? []) as Record<string, any>[];
    for (const tenant of tenants) {
        // The web client's secret at the site's identity provider.
        if (tenant.identity?.oidc) {
            tenant.identity.oidc.clientSecret ??= `test-oidc-client-secret-${tenant.name}`;
            if (!secretKeys.includes("korthweb:tenants")) secretKeys.push("korthweb:tenants");
        }
        if (tenant.database?.external) {
            tenant.database.external.password ??= `test-database-password-${tenant.name}`;
            if (tenant.database.external.audit) tenant.database.external.audit.password ??= `test-audit-database-password-${tenant.name}`;
            if (!secretKeys.includes("korthweb:tenants")) secretKeys.push("korthweb:tenants");
        }
        // A store's static credentials, where it has no workload identity (README, "Where the images are stored").
        const storage = tenant.storage;
        const storageCredentials: [Record<string, any> | undefined, string[]][] = [
            [storage?.s3?.endpoint !== undefined ? storage.s3 : undefined, ["accessKeyId", "secretAccessKey"]],
            [storage?.azureBlob, ["connectionString"]],
            [storage?.googleCloudStorage, ["serviceAccountKey"]],
        ];
        for (const [settings, keys] of storageCredentials) {
            if (!settings) continue;
            for (const key of keys) settings[key] ??= `test-storage-${key}-${tenant.name}`;
            if (!secretKeys.includes("korthweb:tenants")) secretKeys.push("korthweb:tenants");
        }
    }
    // Each operator names their own context (scripts/run config <stack> set --path kubernetes.context); `up` needs one.
    filled["korthweb:kubernetes"] = { context: "test-context", ...(filled["korthweb:kubernetes"] ?? {}) };
    return { config: filled, secretKeys };
}

/** The `config:` block of Pulumi.<stack>.yaml. */
export function stackFileConfig(stack: string): Record<string, unknown> {
    const file = parse(readFileSync(path.join(repoRoot, `Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, unknown> };
    return file.config;
}

/** The stack file's configuration as the program sees it: validated, with the defaults filled in. Each caller gets its own copy. */
export function parsedStackFile(stack: string): StackConfig {
    let parsed = parsedStackFiles.get(stack);
    if (!parsed) {
        const config = withTestCredentials(stackFileConfig(stack)).config;
        parsed = parseStackConfig(Object.fromEntries(Object.entries(config).map(([key, value]) => [key.replace(/^korthweb:/, ""), value])));
        parsedStackFiles.set(stack, parsed);
    }
    return structuredClone(parsed);
}
const parsedStackFiles = new Map<string, StackConfig>();

/** The tenant that `withThirdTenant` adds. */
export const thirdTenant = {
    name: "gvh",
    displayName: "Glen Valley Hospital",
    identity: { oidc: { issuer: "https://login.gvh.example/realms/gvh", clientId: "orthanc", anyAddress: true } },
};

/** The C-MOVE address `withModalityAddress` gives bhs's tester. */
export const modalityAddress = { host: "10.20.30.40", port: 11113 };

/** The dev stack's tenants with `patch(tenant)` applied to bhs. */
function withBhs(patch: (tenant: Record<string, any>) => Record<string, any>) {
    const dev = stackFileConfig("dev");
    const tenants = (dev["korthweb:tenants"] as Record<string, any>[]).map((t) => (t.name === "bhs" ? patch(t) : t));
    return { ...dev, "korthweb:tenants": tenants };
}

/** Variations of the dev stack that tests render besides the shipped stacks. */
export const devVariants = {
    withRotatedCertificate: () => withBhs((t) => ({ ...t, modalities: t.modalities.map((m: any) => ({ ...m, certificateGeneration: 2 })) })),
    withModalityAddress: () => withBhs((t) => ({ ...t, modalities: t.modalities.map((m: any) => ({ ...m, ...modalityAddress })) })),
    withInvalidTenant: () => ({ ...stackFileConfig("dev"), "korthweb:tenants": [{ name: "BHS", displayName: "x" }] }),
    withThirdTenant: () => {
        const dev = stackFileConfig("dev");
        return { ...dev, "korthweb:tenants": [...(dev["korthweb:tenants"] as unknown[]), thirdTenant] };
    },
};

const cache = new Map<string, Promise<RenderedStack>>();

/** Renders a stack with its stack file's configuration, or with `config` when given. Memoised per input. */
export function renderStack(stack: string, config: Record<string, unknown> = stackFileConfig(stack)): Promise<RenderedStack> {
    return memoised({ stack, ...withTestCredentials(config) });
}

/**
 * Renders a stack as the first `pulumi preview` of an empty stack sees it: every ID and every computed output unknown.
 */
export function renderFirstPreview(stack: string): Promise<RenderedStack> {
    return memoised({ stack, ...withTestCredentials(stackFileConfig(stack)), firstPreview: true });
}

interface RenderInput {
    stack: string;
    config: Record<string, unknown>;
    /** Top-level keys Pulumi would hold encrypted. */
    secretKeys?: string[];
    firstPreview?: boolean;
}

function memoised(input: RenderInput): Promise<RenderedStack> {
    const key = JSON.stringify(input);
    let rendered = cache.get(key);
    if (!rendered) {
        rendered = new Promise((resolve, reject) => pending.push({ input, resolve, reject }));
        cache.set(key, rendered);
        if (pending.length === 1) {
            setImmediate(renderPending);
        }
    }
    return rendered;
}

interface Pending {
    input: RenderInput;
    resolve: (stack: RenderedStack) => void;
    reject: (error: Error) => void;
}
const pending: Pending[] = [];
/**
 * Each renderer loads Node and the SDK once and renders its share of the inputs in turn. One core is left to mocha,
 * which runs the test files that need no rendering first (.mocharc.json) while the renderers work: on 2 cores, one
 * renderer beside the tests finished sooner than two competing with them (13 s against 14 s for the suite).
 */
const renderers = Math.max(1, Math.min(2, cpus().length - 1));

/** Renders every input requested in the same turn of the event loop, split over `renderers` processes. */
function renderPending(): void {
    const batch = pending.splice(0);
    for (let worker = 0; worker < renderers; worker++) {
        const share = batch.filter((_, index) => index % renderers === worker);
        if (share.length > 0) {
            runRenderer(share);
        }
    }
}

function runRenderer(share: Pending[]): void {
    const inputFile = path.join(mkdtempSync(path.join(tmpdir(), "korthweb-render-")), "input.json");
    writeFileSync(inputFile, JSON.stringify(share.map((p) => p.input)));
    const args = ["-r", "ts-node/register/transpile-only", path.join(__dirname, "renderStack.ts"), inputFile];
    // The gatekeeper's source is the suite's fixture (components/identity/identity.ts, gatekeeperSourceDirectory).
    const env = { ...process.env, KORTHWEB_GATEKEEPER_SOURCE: gatekeeperFixture };
    execFile(process.execPath, args, { cwd: repoRoot, env, maxBuffer: 512 * 1024 * 1024 }, (error, stdout, stderr) => {
        if (error) {
            const failure = new Error(`rendering ${share.map((p) => p.input.stack).join(", ")} failed: ${stderr || error.message}`);
            share.forEach((p) => p.reject(failure));
            return;
        }
        const results = JSON.parse(stdout) as RenderedStack[];
        share.forEach((p, index) => p.resolve(results[index]));
    });
}

/** The Kubernetes objects among the resources: kind, namespace and name, plus the full inputs. */
export function kubernetesObjects(stack: RenderedStack): RecordedResource[] {
    return stack.resources.filter((r) => r.type.startsWith("kubernetes:") && !r.type.startsWith("kubernetes:helm.sh") && r.type !== "pulumi:providers:kubernetes");
}

export function ofType(stack: RenderedStack, type: string): RecordedResource[] {
    return stack.resources.filter((r) => r.type === type);
}

export function releases(stack: RenderedStack): RecordedResource[] {
    return ofType(stack, "kubernetes:helm.sh/v3:Release");
}
