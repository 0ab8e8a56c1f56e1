/**
 * `scripts/run up|preview <stack>` on a machine with nothing but a cluster: the Pulumi bootstrap (scripts/pulumi-env)
 * run through scripts/run itself, and `scripts/run modality-cert`, which reads a stack's outputs through it. Each
 * sandbox is a throwaway copy of the project's scripts, so the repository's own .pulumi-state and .pulumi-passphrase
 * are never touched; its toolchain and npm packages are the repository's (node, the pulumi package, ts-node), installs
 * are skipped (KORTHWEB_SKIP_INSTALL), HOME is inside the sandbox, and PATH holds the system's directories plus, where
 * a test wants one, a stub `pulumi` that records every call with the Pulumi variables it saw.
 */
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { stackOutputsFixture } from "./support/stackOutputsFixture";

const repoRoot = path.resolve(__dirname, "..");
const systemPath = "/usr/bin:/bin";

/** One call of the stub CLI. */
interface Call {
    args: string;
    backendUrl: string;
    passphraseFile: string;
    /** undefined when PULUMI_CONFIG_PASSPHRASE was not set at all. */
    passphrase: string | undefined;
}

interface Run {
    status: number | null;
    stdout: string;
    stderr: string;
}

// Records each call as one tab-separated line; `whoami` answers with $STUB_WHOAMI, or fails as when logged out;
// `stack output` prints the file $STUB_OUTPUTS.
const stubCli = `#!/bin/sh
printf '%s\\t%s\\t%s\\t%s\\n' "$*" "\${PULUMI_BACKEND_URL-}" "\${PULUMI_CONFIG_PASSPHRASE_FILE-}" \\
    "\${PULUMI_CONFIG_PASSPHRASE+=}\${PULUMI_CONFIG_PASSPHRASE-}" >>"$STUB_LOG"
case "$1" in
    version) echo v3.265.0 ;;
    whoami) [ -n "\${STUB_WHOAMI-}" ] || { echo "error: not logged in" >&2; exit 1; }; printf '%s\\n' "$STUB_WHOAMI" ;;
    stack) [ "$2" != output ] || cat "$STUB_OUTPUTS" ;;
esac
`;

class Sandbox {
    readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "korthweb-cli-"));
    readonly project = path.join(this.dir, "project");
    readonly home = path.join(this.dir, "home");
    readonly bin = path.join(this.dir, "bin");
    readonly log = path.join(this.dir, "calls.log");

    constructor() {
        fs.mkdirSync(path.join(this.project, "scripts"), { recursive: true });
        for (const script of ["run", "pulumi-env"]) {
            fs.copyFileSync(path.join(repoRoot, "scripts", script), path.join(this.project, "scripts", script));
        }
        fs.cpSync(path.join(repoRoot, "scripts", "tools"), path.join(this.project, "scripts", "tools"), { recursive: true });
        for (const file of ["Pulumi.yaml", "tsconfig.json"]) {
            fs.copyFileSync(path.join(repoRoot, file), path.join(this.project, file));
        }
        fs.symlinkSync(path.join(repoRoot, "toolchain"), path.join(this.project, "toolchain"));
        fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(this.project, "node_modules"));
        fs.mkdirSync(this.home);
        fs.mkdirSync(this.bin);
    }

    get passphraseFile(): string {
        return path.join(this.project, ".pulumi-passphrase");
    }

    withStubCli(): this {
        fs.writeFileSync(path.join(this.bin, "pulumi"), stubCli, { mode: 0o755 });
        return this;
    }

    /** scripts/run with only the environment given here: nothing of the caller's PULUMI_* or HOME leaks in. */
    run(args: string[], env: Record<string, string> = {}, cwd?: string): Run {
        const result = spawnSync(path.join(this.project, "scripts", "run"), args, {
            cwd,
            env: { PATH: `${this.bin}:${systemPath}`, HOME: this.home, KORTHWEB_SKIP_INSTALL: "1", STUB_LOG: this.log, ...env },
            encoding: "utf8",
            timeout: 20_000,
        });
        return { status: result.status, stdout: result.stdout, stderr: result.stderr };
    }

    calls(): Call[] {
        if (!fs.existsSync(this.log)) return [];
        return fs
            .readFileSync(this.log, "utf8")
            .split("\n")
            .filter((line) => line !== "")
            .map((line) => {
                const [args, backendUrl, passphraseFile, passphrase] = line.split("\t");
                return { args, backendUrl, passphraseFile, passphrase: passphrase.startsWith("=") ? passphrase.slice(1) : undefined };
            });
    }

    /** The calls that act on stacks, after the CLI and backend checks. */
    stackCalls(): Call[] {
        return this.calls().filter((call) => !/^(version|whoami)\b/.test(call.args));
    }

    remove(): void {
        fs.rmSync(this.dir, { recursive: true, force: true });
    }
}

function assertSucceeded(run: Run): void {
    assert.equal(run.status, 0, `scripts/run failed:\n${run.stdout}\n${run.stderr}`);
}

describe("scripts/run up and preview on a machine with only a cluster", () => {
    describe("with a Pulumi CLI on PATH and no backend logged in to, two runs of `up local`", () => {
        let sandbox: Sandbox;
        let first: Run;
        let second: Run;
        let callsOfFirstRun: Call[];
        let passphraseAfterFirstRun: string;

        before(() => {
            sandbox = new Sandbox().withStubCli();
            first = sandbox.run(["up", "local", "--yes"]);
            callsOfFirstRun = sandbox.calls();
            passphraseAfterFirstRun = fs.readFileSync(sandbox.passphraseFile, "utf8");
            second = sandbox.run(["up", "local", "--yes"]);
        });
        after(() => sandbox.remove());

        it("both succeed, using the CLI on PATH rather than fetching one", () => {
            assertSucceeded(first);
            assertSucceeded(second);
            assert.equal(callsOfFirstRun[0].args, "version");
            assert.match(first.stdout, /pulumi v3\.265\.0, on PATH/);
        });

        it("ask the CLI who is logged in, without letting it prompt for a login", () => {
            assert.equal(callsOfFirstRun[1].args, "whoami --verbose --non-interactive");
        });

        it("keep the state in the project's .pulumi-state, through PULUMI_BACKEND_URL", () => {
            const stateUrl = `file://${sandbox.project}/.pulumi-state`;
            for (const call of sandbox.stackCalls()) {
                assert.equal(call.backendUrl, stateUrl, call.args);
            }
            assert.ok(fs.statSync(path.join(sandbox.project, ".pulumi-state")).isDirectory());
        });

        it("create the stack with the passphrase provider, then run `up --stack local` with the extra arguments", () => {
            const run = ["stack select --create local --secrets-provider passphrase", "up --stack local --yes"];
            assert.deepEqual(
                sandbox.stackCalls().map((call) => call.args),
                [...run, ...run],
            );
        });

        it("generate .pulumi-passphrase once, random and readable only by its owner, and reuse it on the next run", () => {
            assert.equal(fs.statSync(sandbox.passphraseFile).mode & 0o777, 0o600);
            assert.match(passphraseAfterFirstRun, /^[A-Za-z0-9+/]{43}=$/);
            assert.equal(fs.readFileSync(sandbox.passphraseFile, "utf8"), passphraseAfterFirstRun);
            assert.match(first.stdout, /generated \.pulumi-passphrase/);
            assert.doesNotMatch(second.stdout, /generated/);
            for (const call of sandbox.stackCalls()) {
                assert.equal(call.passphraseFile, sandbox.passphraseFile, call.args);
                assert.equal(call.passphrase, undefined, call.args);
            }
        });
    });

    it("uses PULUMI_CONFIG_PASSPHRASE when it is set, and writes no passphrase file", () => {
        const sandbox = new Sandbox().withStubCli();
        try {
            assertSucceeded(sandbox.run(["up", "local"], { PULUMI_CONFIG_PASSPHRASE: "from the user" }));
            assert.equal(fs.existsSync(sandbox.passphraseFile), false);
            const up = sandbox.stackCalls().at(-1)!;
            assert.equal(up.args, "up --stack local");
            assert.equal(up.passphrase, "from the user");
            assert.equal(up.passphraseFile, "");
        } finally {
            sandbox.remove();
        }
    });

    it("keeps a backend the user chose: no project state, no passphrase, the backend's own secrets provider", () => {
        const sandbox = new Sandbox().withStubCli();
        try {
            const run = sandbox.run(["up", "local"], { STUB_WHOAMI: "User: someone\nBackend URL: s3://korthweb-state" });
            assertSucceeded(run);
            assert.deepEqual(
                sandbox.stackCalls().map((call) => [call.args, call.backendUrl, call.passphraseFile]),
                [
                    ["stack select --create local", "", ""],
                    ["up --stack local", "", ""],
                ],
            );
            assert.equal(fs.existsSync(path.join(sandbox.project, ".pulumi-state")), false);
            assert.equal(fs.existsSync(sandbox.passphraseFile), false);
        } finally {
            sandbox.remove();
        }
    });

    it("runs `preview` the same way, passing its arguments through (what pull requests run)", () => {
        const sandbox = new Sandbox().withStubCli();
        try {
            assertSucceeded(sandbox.run(["preview", "dev", "--policy-pack", "policy", "--diff"]));
            assert.deepEqual(
                sandbox.stackCalls().map((call) => call.args),
                ["stack select --create dev --secrets-provider passphrase", "preview --stack dev --policy-pack policy --diff"],
            );
        } finally {
            sandbox.remove();
        }
    });

    it("with no CLI on PATH and none obtainable, stops with one message saying what failed and how to install it", function () {
        if (systemPath.split(":").some((dir) => fs.existsSync(path.join(dir, "pulumi")))) {
            this.skip(); // a system-wide CLI would be found; this case cannot be set up here
        }
        const sandbox = new Sandbox(); // no stub: the toolchain's pulumi package is the only CLI
        try {
            // Node's fetch goes through this proxy, a closed port: the download fails as on a machine without internet,
            // and on one with internet the test still does not download the CLI.
            const run = sandbox.run(["up", "local"], { NODE_USE_ENV_PROXY: "1", HTTPS_PROXY: "http://127.0.0.1:1" });
            assert.notEqual(run.status, 0);
            assert.equal(
                run.stderr.trim(),
                [
                    "error: no Pulumi CLI on PATH, and the toolchain's pulumi package could not fetch one: pulumi: fetch failed",
                    "Install the Pulumi CLI by hand (https://www.pulumi.com/docs/install/), put it on PATH, and run this again.",
                ].join("\n"),
            );
            assert.doesNotMatch(run.stdout, /state:|secrets:/); // it stopped before anything else
            assert.equal(fs.existsSync(path.join(sandbox.project, ".pulumi-state")), false);
        } finally {
            sandbox.remove();
        }
    });
});

describe("scripts/run modality-cert <stack> <tenant> <modality> <dir>", () => {
    let sandbox: Sandbox;
    let outputsFile: string;
    let caller: string;
    let run: Run;

    before(() => {
        sandbox = new Sandbox().withStubCli();
        outputsFile = path.join(sandbox.dir, "outputs.json");
        fs.writeFileSync(outputsFile, JSON.stringify(stackOutputsFixture()));
        caller = path.join(sandbox.dir, "caller");
        fs.mkdirSync(path.join(caller, "certs"), { recursive: true });
        // A key left from an earlier run, readable by all: it must come out replaced and owner-only.
        fs.writeFileSync(path.join(caller, "certs", "tester.key"), "old key", { mode: 0o644 });
        run = sandbox.run(["modality-cert", "local", "bhs", "tester", "certs"], { STUB_OUTPUTS: outputsFile }, caller);
    });
    after(() => sandbox.remove());

    it("reads the existing stack's outputs with secrets, through the bootstrap's CLI and backend, creating no stack", () => {
        assertSucceeded(run);
        assert.deepEqual(
            sandbox.stackCalls().map((call) => [call.args, call.backendUrl, call.passphraseFile]),
            [["stack output --stack local --json --show-secrets", `file://${sandbox.project}/.pulumi-state`, ""]],
        );
        // A passphrase generated now could not decrypt a stack that exists: a reading job makes none.
        assert.equal(fs.existsSync(sandbox.passphraseFile), false);
    });

    it("writes the key (mode 600), the certificate and the server CA into the directory, relative to the caller", () => {
        const outputs = stackOutputsFixture().modalityCertificates.bhs.tester;
        const dir = path.join(caller, "certs");
        const files: [string, string, number][] = [
            ["tester.key", outputs.privateKey, 0o600],
            ["tester.crt", outputs.certificate, 0o644],
            ["server-ca.crt", outputs.serverCa, 0o644],
        ];
        for (const [name, content, mode] of files) {
            assert.equal(fs.readFileSync(path.join(dir, name), "utf8"), content, name);
            assert.equal(fs.statSync(path.join(dir, name)).mode & 0o777, mode, name);
        }
        assert.deepEqual(fs.readdirSync(dir).sort(), ["server-ca.crt", "tester.crt", "tester.key"]);
    });

    it("prints the echoscu and storescu lines to use, with the modality's AE titles and the stack's DICOM address", () => {
        const dir = path.join(caller, "certs");
        const dicom = `-aet TESTER -aec ORTHANC +tls ${dir}/tester.key ${dir}/tester.crt +cf ${dir}/server-ca.crt dicom.bhs.local.orthweb.example 11112`;
        const lines = run.stdout.split("\n");
        assert.ok(lines.includes(`echoscu ${dicom}`), run.stdout);
        assert.ok(lines.includes(`storescu ${dicom} study/*.dcm`), run.stdout);
        assert.match(run.stdout, /DICOM on port 31112, HTTPS on port 30443/);
        assert.doesNotMatch(run.stdout + run.stderr, /bhs-password|tester key/); // no secret on the terminal
    });

    it("stops on an unknown modality, naming the tenant's modalities, and writes nothing", () => {
        const unknown = sandbox.run(["modality-cert", "local", "bhs", "mri", "other"], { STUB_OUTPUTS: outputsFile }, caller);
        assert.equal(unknown.status, 1);
        assert.equal(unknown.stderr.trim(), "error: tenant 'bhs' has no modality 'mri': its modalities are tester, ct-2");
        assert.equal(fs.existsSync(path.join(caller, "other")), false);
    });
});
