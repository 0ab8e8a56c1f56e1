import * as assert from "assert";
import { skipPulumiPromiseStacks } from "./support/pulumiStacks";

// The suite's speed rests on this: the SDK's per-promise stack captures go unformatted, nothing else does.
describe("test support: Pulumi's promise stack captures", () => {
    before(() => skipPulumiPromiseStacks());

    it("leaves the SDK's debuggablePromise capture empty", () => {
        const { debuggablePromise } = require("@pulumi/pulumi/runtime/debuggable");
        const captured = Promise.resolve(1) as Promise<number> & { _debugStackTrace?: string };
        debuggablePromise(captured, "test");
        assert.strictEqual(captured._debugStackTrace, "");
    });

    it("keeps every other error's stack, with this file in it", () => {
        const stack = new Error("kept").stack ?? "";
        assert.match(stack, /^Error: kept\n/);
        assert.match(stack, /pulumiStacks\.test\.ts/);
    });

    it("installs once however often it is asked", () => {
        const installed = Error.prepareStackTrace;
        skipPulumiPromiseStacks();
        assert.strictEqual(Error.prepareStackTrace, installed);
    });
});
