/**
 * What `new pulumi.StackReference("<org>/<project>/<this stack>")` returns to the program that runs in that same
 * stack, as the storage guard (components/data/storage/storageIdentity.ts) relies on it. Read at pulumi/pulumi v3.259.0:
 * - pkg/resource/deploy/builtins.go (`readStackReference`): the built-in provider answers Read (and so previews too:
 *   a read with a known ID runs in preview) with the referenced stack's outputs from the backend client.
 * - pkg/backend/backend.go (`GetStackOutputs`) and pkg/backend/httpstate/state.go, pkg/backend/diy/state.go
 *   (`getSnapshotStackOutputs`): the outputs of the root stack resource in the stack's latest checkpoint;
 *   pkg/resource/stack/checkpoint.go (`GetRootStackResource`): none in a checkpoint without resources, i.e. a stack
 *   created (`pulumi stack init`) and never updated: the outputs are then empty. A stack that does not exist fails.
 * - pkg/resource/deploy/step.go (`SameStep.Apply` copies the old outputs) and sdk/nodejs/runtime/stack.ts (the root
 *   stack registers its outputs once the program has finished): during an update, the checkpoint written so far
 *   still carries the previous update's outputs; the new ones land only at its end. So the program reads what the last
 *   completed update exported, in preview and in update alike.
 * A model, not the engine: no Pulumi CLI or backend runs here.
 */
export const stackReferenceType = "pulumi:pulumi:StackReference";

export interface StackHistory {
    /** Whether the stack exists in the backend (the program always runs in an existing stack). */
    exists: boolean;
    /** The outputs each completed update exported, oldest first. */
    completedUpdates: Record<string, unknown>[];
}

/** The outputs a StackReference to `stack` reads while an operation of that same stack runs. */
export function selfReferenceOutputs(stack: StackHistory): Record<string, unknown> {
    if (!stack.exists) throw new Error("unknown stack");
    return stack.completedUpdates.at(-1) ?? {};
}
