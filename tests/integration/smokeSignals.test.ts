/**
 * `scripts/run smoke` writes the first modality's key of each tenant to disk for DCMTK (scripts/tools/smoke.ts). Here
 * the real tool, as scripts/run runs it, is killed while the key is in use, and must leave nothing behind. No Orthanc
 * is needed: an `echoscu` stand-in holds the association open (it waits for its standard input, which ends with the
 * tool). In the integration suite because each run starts Node with ts-node, which the unit suite's time cannot afford.
 */
import { strict as assert } from "assert";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { stackOutputsFixture } from "../support/stackOutputsFixture";

const repoRoot = path.resolve(__dirname, "..", "..");

describe("scripts/tools/smoke: the modality key on disk", () => {
    // The real tool as scripts/run runs it, with the fixture's outputs, its own TMPDIR, and an `echoscu` that holds the
    // association open (it waits for its standard input, which ends when the tool does): the key is on disk then.
    const smokeRun = () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "korthweb-smoke-test-"));
        const tmp = path.join(dir, "tmp");
        const bin = path.join(dir, "bin");
        fs.mkdirSync(tmp);
        fs.mkdirSync(bin);
        fs.writeFileSync(path.join(bin, "echoscu"), "#!/bin/sh\ncat >/dev/null\n", { mode: 0o755 });
        const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", path.join(repoRoot, "scripts", "tools", "smoke.ts")], {
            cwd: repoRoot,
            env: {
                PATH: `${bin}:/usr/bin:/bin`,
                TMPDIR: tmp,
                // Nothing listens on port 9: the web check fails at once and the DICOM check starts.
                KORTHWEB_SMOKE_TARGETS: JSON.stringify({ bhs: { web: "127.0.0.1:9", dicom: "127.0.0.1:9" } }),
            },
            stdio: ["pipe", "pipe", "pipe"],
        });
        child.stdin.end(JSON.stringify(stackOutputsFixture()));
        const keys = () => {
            const found: string[] = [];
            const walk = (at: string): void => {
                for (const entry of fs.readdirSync(at, { withFileTypes: true })) {
                    const full = path.join(at, entry.name);
                    if (entry.isDirectory()) walk(full);
                    else if (entry.name.endsWith(".key")) found.push(full);
                }
            };
            walk(tmp);
            return found;
        };
        const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
        return { child, keys, exited, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
    };

    // Both signals at once: each run costs a Node start with ts-node, and they need not wait for each other.
    it("leaves no key behind when killed by SIGTERM or SIGINT while the key is in use", async () => {
        await Promise.all(
            (["SIGTERM", "SIGINT"] as const).map(async (signal) => {
                const run = smokeRun();
                try {
                    const deadline = Date.now() + 30_000;
                    while (run.keys().length === 0) {
                        assert.ok(Date.now() < deadline && run.child.exitCode === null, `${signal}: the key was never written`);
                        await new Promise((done) => setTimeout(done, 50));
                    }
                    const [key] = run.keys();
                    const workDir = path.dirname(path.dirname(key));
                    assert.equal(fs.statSync(workDir).mode & 0o777, 0o700, "in a directory only its owner reads");
                    run.child.kill(signal);
                    const { signal: killedBy } = await run.exited;
                    assert.equal(killedBy, signal, "the run still ends as killed by the signal");
                    assert.deepEqual(run.keys(), [], signal);
                    const left = fs.readdirSync(path.dirname(workDir)).filter((name) => name.startsWith("korthweb-smoke-"));
                    assert.deepEqual(left, [], `${signal}: nothing of the run is left in TMPDIR`);
                } finally {
                    run.child.kill("SIGKILL");
                    run.remove();
                }
            }),
        );
    });
});
