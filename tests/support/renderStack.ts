/**
 * Runs the whole Pulumi program (index.ts) under mocks and prints, as JSON on stdout, for each input the resources it
 * registered and its resolved stack outputs. tests/support/stacks.ts hands each such process a batch of inputs; the
 * program (index.ts) is dropped from the require cache between inputs, so each input runs it afresh while Node, the
 * SDK and the component modules load once.
 *
 * Input: the path of a JSON file holding an array of `{stack, config, secretKeys?, firstPreview?}`, `config` mapping
 * `korthweb:<key>` to the value of the stack file.
 */
import * as pulumi from "@pulumi/pulumi";
import { readFileSync } from "fs";
import { RecordingMocks } from "./mocks";

/**
 * Resource options are not visible to mocks. The SDK hands every registration to runtime.registerResource, so
 * wrapping it records what tests need from the options (protection, explicit dependencies, ignored changes) by name.
 */
interface RecordedOptions {
    protect: boolean;
    dependsOn: string[];
    ignoreChanges: string[];
    deleteBeforeReplace: boolean;
    parent?: string;
}
const options = new Map<string, RecordedOptions>();
const runtimeResource = require("@pulumi/pulumi/runtime/resource");
const register = runtimeResource.registerResource;
runtimeResource.registerResource = function (res: unknown, parent: any, type: string, name: string, ...rest: any[]) {
    const opts = rest[4] ?? {};
    const dependsOn = Array.isArray(opts.dependsOn) ? opts.dependsOn : opts.dependsOn ? [opts.dependsOn] : [];
    options.set(`${type}::${name}`, {
        protect: opts.protect === true,
        dependsOn: dependsOn.map((dependency: any) => dependency?.__name).filter(Boolean),
        ignoreChanges: opts.ignoreChanges ?? [],
        deleteBeforeReplace: opts.deleteBeforeReplace === true,
        parent: parent?.__name,
    });
    return register.call(this, res, parent, type, name, ...rest);
};

interface RenderInput {
    stack: string;
    config: Record<string, unknown>;
    secretKeys?: string[];
    /** Render as the first `pulumi preview` of an empty stack sees it (see RecordingMocks). */
    firstPreview?: boolean;
}

const programPath = require.resolve("../../index");
// Pulumi records where each resource was registered from a stack trace; source-map-support (installed by ts-node)
// would map every one of them, which is most of a render's time. Plain positions serve the mocks as well.
delete (Error as { prepareStackTrace?: unknown }).prepareStackTrace;
// Nor are frames collected for the SDK's per-promise captures (runtime/debuggable.js) or any error here: a render
// reports messages only.
// Resource.callsites lifts the limit itself for the one trace it parses per resource (@pulumi/pulumi resource.js).
Error.stackTraceLimit = 0;
// An error thrown inside an apply() callback surfaces as an unhandled rejection, not from require().
const late: string[] = [];
process.on("unhandledRejection", (reason) => late.push(reason instanceof Error ? reason.message : String(reason)));

async function render(input: RenderInput): Promise<unknown> {
    // Pulumi hands structured values to the program as JSON text and strings as they are.
    const flat = Object.fromEntries(
        Object.entries(input.config).map(([key, value]) => [key, typeof value === "string" ? value : JSON.stringify(value)]),
    );
    pulumi.runtime.setAllConfig(flat, input.secretKeys ?? []);
    const mocks = new RecordingMocks(input.firstPreview === true);
    // "organization": what a DIY backend's stacks are named under (the program references its own stack by it).
    await pulumi.runtime.setMocks(mocks, "korthweb", input.stack, input.firstPreview === true, "organization");
    options.clear();
    late.length = 0;
    // index.ts registers the resources when it runs; the component modules only define, so they stay loaded.
    delete require.cache[programPath];
    try {
        const program = require(programPath);
        // Outputs that stay unknown in a preview never resolve; a preview's stack outputs are not what it is tested for.
        const outputs = input.firstPreview ? {} : await resolve(program);
        await mocks.settled(50);
        if (late.length > 0) {
            throw new Error(late.join("\n"));
        }
        const resources = mocks.resources.map((r) => ({ ...r, options: options.get(`${r.type}::${r.name}`) }));
        return { resources, outputs };
    } catch (error) {
        await mocks.settled(50);
        return { error: error instanceof Error ? error.message : String(error), resources: mocks.resources };
    }
}

async function main(): Promise<void> {
    const inputs = JSON.parse(readFileSync(process.argv[2], "utf8")) as RenderInput[];
    const results = [];
    for (const input of inputs) {
        results.push(await render(input));
    }
    process.stdout.write(JSON.stringify(results));
}

/** Stack outputs with their Outputs resolved; a secret output becomes `{secret: true, value}`. */
async function resolve(value: unknown): Promise<unknown> {
    if (pulumi.Output.isInstance(value)) {
        const secret = await pulumi.isSecret(value);
        const plain = await resolve(await new Promise((done) => value.apply(done)));
        return secret ? { secret: true, value: plain } : plain;
    }
    if (Array.isArray(value)) {
        return Promise.all(value.map(resolve));
    }
    if (value !== null && typeof value === "object" && !pulumi.Resource.isInstance(value)) {
        const entries = await Promise.all(Object.entries(value).map(async ([k, v]) => [k, await resolve(v)] as const));
        return Object.fromEntries(entries);
    }
    return value;
}

main().catch((error) => {
    process.stderr.write(String(error?.stack ?? error));
    process.exit(1);
});
