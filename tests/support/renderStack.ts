/**
 * Runs the whole Pulumi program (index.ts) under mocks in this process and prints, as JSON on stdout, every resource
 * it registered and its resolved stack outputs. tests/support/stacks.ts starts one such process per stack, because a
 * program module can only be loaded once per process.
 *
 * Input: the path of a JSON file `{stack, config}` where `config` maps `korthweb:<key>` to the value of the stack file.
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
        parent: parent?.__name,
    });
    return register.call(this, res, parent, type, name, ...rest);
};

interface RenderInput {
    stack: string;
    config: Record<string, unknown>;
}

async function main(): Promise<void> {
    const input = JSON.parse(readFileSync(process.argv[2], "utf8")) as RenderInput;
    // Pulumi hands structured values to the program as JSON text and strings as they are.
    const flat = Object.fromEntries(
        Object.entries(input.config).map(([key, value]) => [key, typeof value === "string" ? value : JSON.stringify(value)]),
    );
    pulumi.runtime.setAllConfig(flat, []);
    const mocks = new RecordingMocks();
    await pulumi.runtime.setMocks(mocks, "korthweb", input.stack, false);
    try {
        const program = require("../../index");
        const outputs = await resolve(program);
        await mocks.settled(50);
        const resources = mocks.resources.map((r) => ({ ...r, options: options.get(`${r.type}::${r.name}`) }));
        process.stdout.write(JSON.stringify({ resources, outputs }));
    } catch (error) {
        process.stdout.write(JSON.stringify({ error: error instanceof Error ? error.message : String(error), resources: mocks.resources }));
    }
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
