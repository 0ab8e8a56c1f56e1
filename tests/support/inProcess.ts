/**
 * For tests that build single components in the test process: one set of recording mocks for the whole process.
 */
import * as pulumi from "@pulumi/pulumi";
import { RecordedResource, RecordingMocks } from "./mocks";
import { skipPulumiPromiseStacks } from "./pulumiStacks";

const mocks = new RecordingMocks();
let installed: Promise<void> | undefined;

export function useMocks(): Promise<RecordingMocks> {
    skipPulumiPromiseStacks();
    installed ??= pulumi.runtime.setMocks(mocks, "korthweb", "unit", false);
    return installed.then(() => mocks);
}

/** Waits until registrations stop, then returns those whose name starts with `prefix` (a component's children). */
export async function registeredUnder(prefix: string): Promise<RecordedResource[]> {
    await mocks.settled(20);
    return mocks.resources.filter((r) => r.name === prefix || r.name.startsWith(`${prefix}-`));
}

export function only<T>(items: T[], what: string): T {
    if (items.length !== 1) {
        throw new Error(`expected exactly one ${what}, found ${items.length}`);
    }
    return items[0];
}
