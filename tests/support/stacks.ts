/**
 * The whole program rendered under mocks for a stack, each in its own process, once per test run.
 */
import { execFile } from "child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "fs";
import { tmpdir } from "os";
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
export const shippedStacks = ["dev", "tst", "local"] as const;

/** The `config:` block of Pulumi.<stack>.yaml. */
export function stackFileConfig(stack: string): Record<string, unknown> {
    const file = parse(readFileSync(path.join(repoRoot, `Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, unknown> };
    return file.config;
}

/** The stack file's configuration as the program sees it: validated, with the defaults filled in. */
export function parsedStackFile(stack: string): StackConfig {
    const config = stackFileConfig(stack);
    return parseStackConfig(Object.fromEntries(Object.entries(config).map(([key, value]) => [key.replace(/^korthweb:/, ""), value])));
}

/** The tenant that `withThirdTenant` adds. */
export const thirdTenant = { name: "gvh", displayName: "Glen Valley Hospital" };

/** Variations of the dev stack that tests render besides the shipped stacks. */
export const devVariants = {
    withoutObservability: () => ({ ...stackFileConfig("dev"), "korthweb:observability": { enabled: false } }),
    withInvalidTenant: () => ({ ...stackFileConfig("dev"), "korthweb:tenants": [{ name: "BHS", displayName: "x" }] }),
    withThirdTenant: () => {
        const dev = stackFileConfig("dev");
        return { ...dev, "korthweb:tenants": [...(dev["korthweb:tenants"] as unknown[]), thirdTenant] };
    },
};

const cache = new Map<string, Promise<RenderedStack>>();

/** Renders a stack with its stack file's configuration, or with `config` when given. Memoised per input. */
export function renderStack(stack: string, config: Record<string, unknown> = stackFileConfig(stack)): Promise<RenderedStack> {
    const key = JSON.stringify({ stack, config });
    let rendered = cache.get(key);
    if (!rendered) {
        rendered = runRenderer(stack, config);
        cache.set(key, rendered);
    }
    return rendered;
}

function runRenderer(stack: string, config: Record<string, unknown>): Promise<RenderedStack> {
    const inputFile = path.join(mkdtempSync(path.join(tmpdir(), "korthweb-render-")), "input.json");
    writeFileSync(inputFile, JSON.stringify({ stack, config }));
    const args = ["-r", "ts-node/register/transpile-only", path.join(__dirname, "renderStack.ts"), inputFile];
    return new Promise((resolve, reject) => {
        execFile(process.execPath, args, { cwd: repoRoot, maxBuffer: 256 * 1024 * 1024 }, (error, stdout, stderr) => {
            if (error) {
                reject(new Error(`rendering stack ${stack} failed: ${stderr || error.message}`));
                return;
            }
            resolve(JSON.parse(stdout) as RenderedStack);
        });
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
