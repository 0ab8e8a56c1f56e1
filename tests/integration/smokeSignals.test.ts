/**
 * `scripts/run smoke` writes the first modality's key of each tenant to disk for DCMTK (scripts/tools/smoke.ts), and
 * with `--port-forward` opens a tunnel to the Orthanc of each tenant that signs users in (`kubectl port-forward`, as
 * the break-glass admin). Here the real tool, as scripts/run runs it, is killed while the key is in use, and must leave
 * nothing behind: no key, no kubectl. No Orthanc is needed: an `echoscu` stand-in holds the association open (it waits
 * for its standard input, which ends with the tool), a `kubectl` stand-in says where it forwards and waits. In the
 * integration suite because each run starts Node with ts-node, which the unit suite's time cannot afford.
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
    const smokeRun = (options: { portForward?: boolean; echoscu?: string } = {}) => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "korthweb-smoke-test-"));
        const tmp = path.join(dir, "tmp");
        const bin = path.join(dir, "bin");
        const kubectlLog = path.join(dir, "kubectl.log");
        fs.mkdirSync(tmp);
        fs.mkdirSync(bin);
        fs.writeFileSync(path.join(bin, "echoscu"), options.echoscu ?? "#!/bin/sh\ncat >/dev/null\n", { mode: 0o755 });
        // kubectl's own words when it forwards a random local port (`:8042`), then it waits until stopped.
        fs.writeFileSync(
            path.join(bin, "kubectl"),
            `#!/bin/sh\necho "$$ $*" >> '${kubectlLog}'\necho "Forwarding from 127.0.0.1:9 -> 8042"\necho "Forwarding from [::1]:9 -> 8042"\nexec sleep 600\n`,
            { mode: 0o755 },
        );
        const outputs = stackOutputsFixture();
        if (options.portForward) {
            (outputs.tenantEndpoints.bhs as Record<string, unknown>).signIn = {
                issuer: "https://login.example.org/bhs",
                clientId: "korthweb-bhs",
                redirectUri: "https://web.bhs.local.orthweb.example/oauth2/callback",
            };
        }
        const args = options.portForward ? ["--port-forward"] : [];
        const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", path.join(repoRoot, "scripts", "tools", "smoke.ts"), ...args], {
            cwd: repoRoot,
            env: {
                PATH: `${bin}:/usr/bin:/bin`,
                TMPDIR: tmp,
                KORTHWEB_KUBE_CONTEXT: "kind-kind",
                // Nothing listens on port 9: the web check fails at once and the DICOM check starts.
                KORTHWEB_SMOKE_TARGETS: JSON.stringify({ bhs: { web: "127.0.0.1:9", dicom: "127.0.0.1:9" } }),
            },
            stdio: ["pipe", "pipe", "pipe"],
        });
        child.stdin.end(JSON.stringify(outputs));
        /** The kubectl processes started: pid and arguments. */
        const kubectls = () =>
            fs.existsSync(kubectlLog)
                ? fs
                      .readFileSync(kubectlLog, "utf8")
                      .trim()
                      .split("\n")
                      .map((line) => ({ pid: Number(line.split(" ")[0]), args: line.slice(line.indexOf(" ") + 1) }))
                : [];
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
        let output = "";
        child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
        return { child, keys, kubectls, exited, output: () => output, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
    };

    /** Whether a process is alive (a zombie, killed but not yet reaped by its new parent, is not). */
    const alive = (pid: number): boolean => {
        try {
            return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
        } catch {
            return false;
        }
    };
    const gone = async (pid: number): Promise<boolean> => {
        const deadline = Date.now() + 5_000;
        while (alive(pid) && Date.now() < deadline) await new Promise((done) => setTimeout(done, 50));
        return !alive(pid);
    };

    // Both signals at once: each run costs a Node start with ts-node, and they need not wait for each other.
    it("leaves no key and no port-forward behind when killed by SIGTERM or SIGINT while the key is in use", async () => {
        await Promise.all(
            (["SIGTERM", "SIGINT"] as const).map(async (signal) => {
                const run = smokeRun({ portForward: true });
                try {
                    const deadline = Date.now() + 30_000;
                    while (run.keys().length === 0) {
                        assert.ok(Date.now() < deadline && run.child.exitCode === null, `${signal}: the key was never written`);
                        await new Promise((done) => setTimeout(done, 50));
                    }
                    const [kubectl] = run.kubectls();
                    assert.equal(kubectl?.args, "--context kind-kind -n bhs-orthweb port-forward --address 127.0.0.1 svc/orthanc :8042", "the tenant's Orthanc, in the stack's context");
                    assert.ok(alive(kubectl.pid), "the port-forward runs while the checks do");
                    const [key] = run.keys();
                    const workDir = path.dirname(path.dirname(key));
                    assert.equal(fs.statSync(workDir).mode & 0o777, 0o700, "in a directory only its owner reads");
                    run.child.kill(signal);
                    const { signal: killedBy } = await run.exited;
                    assert.equal(killedBy, signal, "the run still ends as killed by the signal");
                    assert.deepEqual(run.keys(), [], signal);
                    assert.ok(await gone(kubectl.pid), `${signal}: kubectl ${kubectl.pid} still runs`);
                    const left = fs.readdirSync(path.dirname(workDir)).filter((name) => name.startsWith("korthweb-smoke-"));
                    assert.deepEqual(left, [], `${signal}: nothing of the run is left in TMPDIR`);
                } finally {
                    run.child.kill("SIGKILL");
                    run.remove();
                }
            }),
        );
    });

    it("stops the port-forward when the run ends by itself", async () => {
        const run = smokeRun({ portForward: true, echoscu: "#!/bin/sh\nexit 1\n" });
        try {
            const { code } = await run.exited;
            assert.equal(code, 1);
            const [kubectl] = run.kubectls();
            assert.ok(kubectl, "kubectl was started");
            assert.ok(await gone(kubectl.pid), `kubectl ${kubectl.pid} still runs`);
            assert.deepEqual(run.kubectls().length, 1);
            assert.match(run.output(), /^FAIL bhs +web +/m);
        } finally {
            run.child.kill("SIGKILL");
            run.remove();
        }
    });
});
