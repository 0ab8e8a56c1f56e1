/**
 * Loaded by mocha before any test file: starts rendering the shipped stacks and the dev variants at once, in parallel child processes,
 * so the suites that need them find them ready instead of rendering one after the other.
 */
import { allStacks, devVariants, renderFirstPreview, renderStack } from "./stacks";

// The tests that await a rendering report its failure; here it is only started.
for (const stack of allStacks) {
    renderStack(stack).catch(() => undefined);
    renderFirstPreview(stack).catch(() => undefined);
}
for (const variant of Object.values(devVariants)) {
    renderStack("dev", variant()).catch(() => undefined);
}
