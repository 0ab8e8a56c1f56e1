/**
 * Loaded by mocha before any test file: starts rendering the shipped stacks at once, in parallel child processes,
 * so the suites that need them find them ready instead of rendering one after the other.
 */
import { renderStack, shippedStacks } from "./stacks";

for (const stack of shippedStacks) {
    renderStack(stack).catch(() => undefined); // the tests that await it report the failure
}
