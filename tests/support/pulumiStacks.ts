/**
 * Pulumi's runtime captures a stack trace on every promise it makes (`debuggablePromise`, @pulumi/pulumi 3.270.0
 * `runtime/debuggable.js`), to name leaked promises when a deployment exits. Under mocks nothing reads them, yet
 * formatting them (through ts-node's source maps in the test process) was a fifth of the unit suite's CPU time. Those
 * captures get an empty stack; every other error is formatted as before.
 */
export function skipPulumiPromiseStacks(): void {
    const format = Error.prepareStackTrace;
    if ((format as { pulumiPromisesSkipped?: boolean } | undefined)?.pulumiPromisesSkipped) return;
    const skipping = (error: Error, frames: NodeJS.CallSite[]): unknown => {
        if (isPulumiPromiseCapture(frames)) return "";
        return format ? format(error, frames) : [String(error), ...frames.map((frame) => `    at ${frame}`)].join("\n");
    };
    Error.prepareStackTrace = Object.assign(skipping, { pulumiPromisesSkipped: true });
}

/** A capture made by `debuggablePromise`: its first frame is that function, in the SDK's runtime/debuggable.js. */
export function isPulumiPromiseCapture(frames: { getFileName(): string | null | undefined; getFunctionName(): string | null }[]): boolean {
    const top = frames[0];
    return top !== undefined && top.getFunctionName() === "debuggablePromise" && (top.getFileName() ?? "").endsWith("/@pulumi/pulumi/runtime/debuggable.js");
}
