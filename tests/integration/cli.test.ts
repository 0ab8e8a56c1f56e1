/**
 * `scripts/run up|preview|config <stack>` on a machine with nothing but a cluster: the Pulumi bootstrap
 * (scripts/pulumi-env) run through scripts/run itself, and `scripts/run modality-cert`, which reads a stack's outputs
 * through it. Each sandbox is a throwaway git checkout of the project's scripts, stack files and policy pack, so the
 * repository's own .pulumi-state and .pulumi-passphrase are never touched; its toolchain and npm packages are the
 * repository's (node, the pulumi package, ts-node), installs are skipped (KORTHWEB_SKIP_INSTALL) unless a test says
 * otherwise, HOME is inside the sandbox, and PATH holds the system's directories plus stubs: a `pulumi` that records
 * every call with the variables it saw and keeps a list of the stacks it "created", and a `kubectl` that records its
 * calls and answers /readyz as told. Its components/image-lock.json has a digest for every pin (made up where the
 * committed one has none), so that `up` passes its lock check unless a test puts the committed lock back.
 *
 * It runs with the integration suite, not the unit suite: every case starts real bash, git and node processes (about
 * 5 s of processes in all), which the unit suite's budget of 15 s for everything cannot also hold.
 */
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ImageLock, imageLock } from "../../components/versions";
import { stackOutputsFixture } from "../support/stackOutputsFixture";

const repoRoot = path.resolve(__dirname, "../..");
const systemPath = "/usr/bin:/bin";
const pinned = /^requiredPulumiVersion: "(.*)"$/m.exec(fs.readFileSync(path.join(repoRoot, "Pulumi.yaml"), "utf8"))?.[1];

/** What scripts/install-pulumi-cli pins: Pulumi's install script at a commit, and its digest. */
const installerSource = fs.readFileSync(path.join(repoRoot, "scripts", "install-pulumi-cli"), "utf8");
const pinnedInstallScriptSha256 = /^install_script_sha256=([0-9a-f]{64})$/m.exec(installerSource)![1];
const pinnedInstallScriptUrl = `https://raw.githubusercontent.com/pulumi/get.pulumi.com/${/^install_script_commit=([0-9a-f]{40})$/m.exec(installerSource)![1]}/dist/install.sh`;

/** One call of the stub CLI. */
interface Call {
    args: string;
    backendUrl: string;
    passphraseFile: string;
    /** undefined when PULUMI_CONFIG_PASSPHRASE was not set at all. */
    passphrase: string | undefined;
    /** The stack file the program is told the CLI reads (KORTHWEB_STACK_CONFIG_FILE). */
    stackConfigFile: string;
}

interface Run {
    status: number | null;
    stdout: string;
    stderr: string;
}

// Records each call as one tab-separated line. `version` answers $STUB_VERSION (default: the pinned version);
// `whoami` answers $STUB_WHOAMI or fails as when logged out; `stack ls` lists the stacks in $STUB_STACKS (one a line)
// and `stack init` adds one, writing a salt into the stack file of the directory it runs in, as the passphrase
// provider does; `config get` answers $STUB_CONTEXT; `stack output` prints the file $STUB_OUTPUTS; `preview` prints
// $STUB_PREVIEW_SAYS. Given --policy-pack, it keeps what it found there while it ran: the pack's rules.ts and its
// mode, in $STUB_LOG.pack-rules.ts and $STUB_LOG.pack-mode (the run removes the pack when it ends).
const stubCli = `#!/bin/bash
printf '%s\\t%s\\t%s\\t%s\\t%s\\n' "$*" "\${PULUMI_BACKEND_URL-}" "\${PULUMI_CONFIG_PASSPHRASE_FILE-}" \\
    "\${PULUMI_CONFIG_PASSPHRASE+=}\${PULUMI_CONFIG_PASSPHRASE-}" "\${KORTHWEB_STACK_CONFIG_FILE-}" >>"$STUB_LOG"
previous=
for arg in "$@"; do
    if [ "$previous" = --policy-pack ]; then cat "$arg/rules.ts" >"$STUB_LOG.pack-rules.ts"; stat -c %a "$arg/rules.ts" >"$STUB_LOG.pack-mode"; fi
    previous="$arg"
done
dir=.
if [ "$1" = --cwd ]; then dir="$2"; shift 2; fi
case "$1 $2" in
    version*)
        echo "\${STUB_VERSION:-v${pinned}}"
        # As the real CLI does after any command while a newer release exists (its update check), unless told not to.
        if [ -n "\${STUB_NEWER_RELEASE-}" ] && [ "\${PULUMI_SKIP_UPDATE_CHECK-}" != true ]; then
            printf '%s\\n' "warning: A new version of Pulumi is available. To upgrade from version '${pinned}' to '$STUB_NEWER_RELEASE', run" \\
                '   $ curl -sSL https://get.pulumi.com | sh' 'or visit https://pulumi.com/docs/install/ for manual instructions and release notes.' >&2
        fi ;;
    whoami*) [ -n "\${STUB_WHOAMI-}" ] || { echo "error: not logged in" >&2; exit 1; }; printf '%s\\n' "$STUB_WHOAMI" ;;
    "stack ls") printf '['; touch "$STUB_STACKS"; sed 's/.*/{"name": "&"},/' "$STUB_STACKS" | tr -d '\\n'; printf ']\\n' ;;
    "stack init")
        echo "$3" >>"$STUB_STACKS"
        if [[ "$*" == *"--secrets-provider passphrase"* ]]; then
            { echo "encryptionsalt: v1:stub"; cat "$dir/Pulumi.$3.yaml" 2>/dev/null; } >"$dir/salted" && mv "$dir/salted" "$dir/Pulumi.$3.yaml"
        fi ;;
    "config get") [ -n "\${STUB_CONTEXT-}" ] && echo "$STUB_CONTEXT" ;;
    "stack output") cat "$STUB_OUTPUTS" ;;
    preview*) echo "\${STUB_PREVIEW_SAYS-Previewing update}" ;;
esac
`;

const stubKubectl = `#!/bin/sh
echo "kubectl $*" >>"$STUB_LOG"
[ -z "\${STUB_KUBECTL_FAILS-}" ] || { echo "Unable to connect to the server: dial tcp 10.0.0.1:443: i/o timeout" >&2; exit 1; }
echo ok
`;

/**
 * A machine without npm, curl, kubectl and Debian's package tools: a directory of links to the commands scripts/run
 * and its stubs use, and nothing else (linking the whole system takes seconds here). Made once per run of the suite.
 */
let bareSystemDir: string | undefined;
function bareSystem(): string {
    if (bareSystemDir) return bareSystemDir;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "korthweb-cli-system-"));
    const commands = ["bash", "sh", "env", "dirname", "basename", "realpath", "cat", "sed", "grep", "head", "tail", "tr", "base64", "mkdir", "mv", "cp", "rm", "chmod", "cmp", "mktemp", "tee", "git", "tar", "touch", "id", "ln", "ls", "find"];
    for (const name of commands) {
        const target = systemPath.split(":").map((d) => path.join(d, name)).find((file) => fs.existsSync(file));
        assert.ok(target, `${name} is not on ${systemPath}`);
        fs.symlinkSync(target, path.join(dir, name));
    }
    bareSystemDir = dir;
    return dir;
}
after(() => bareSystemDir && fs.rmSync(bareSystemDir, { recursive: true, force: true }));

/**
 * The repository's components/image-lock.json with a digest for every entry, so that `up` runs past its lock check:
 * where the committed lock has none, a made-up one (the sha256 of the reference; no registry's answer).
 */
function fullyLocked(): ImageLock {
    const lock = structuredClone(imageLock);
    for (const kind of ["images", "charts"] as const) {
        for (const [reference, entry] of Object.entries(lock[kind])) {
            entry.digest ??= `sha256:${createHash("sha256").update(reference).digest("hex")}`;
        }
    }
    return lock;
}

/**
 * The sandbox's project as a git checkout with one commit (the policy pack is run as committed): made once, then
 * copied into each sandbox.
 */
let templateDir: string | undefined;
function projectTemplate(): string {
    if (templateDir) return templateDir;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "korthweb-cli-template-"));
    fs.mkdirSync(path.join(dir, "scripts"));
    for (const script of ["run", "pulumi-env", "install-pulumi-cli"]) {
        fs.copyFileSync(path.join(repoRoot, "scripts", script), path.join(dir, "scripts", script));
    }
    fs.cpSync(path.join(repoRoot, "scripts", "tools"), path.join(dir, "scripts", "tools"), { recursive: true });
    fs.cpSync(path.join(repoRoot, "policy"), path.join(dir, "policy"), { recursive: true, filter: (src) => !src.includes("node_modules") });
    for (const file of ["Pulumi.yaml", "Pulumi.local.yaml", "Pulumi.dev.yaml", "Pulumi.cnpg.yaml", "tsconfig.json"]) {
        fs.copyFileSync(path.join(repoRoot, file), path.join(dir, file));
    }
    fs.mkdirSync(path.join(dir, "components"));
    fs.writeFileSync(path.join(dir, "components", "image-lock.json"), JSON.stringify(fullyLocked()));
    const git = (...args: string[]) => {
        const result = spawnSync("git", ["-C", dir, "-c", "user.name=t", "-c", "user.email=t@t", ...args], { encoding: "utf8", env: { PATH: systemPath } });
        assert.equal(result.status, 0, result.stderr);
    };
    git("init", "-q");
    git("add", "-A");
    git("commit", "-qm", "sandbox");
    // The reviewed main branch as fetched from the team's remote, where `up` and `preview` take the policy pack from.
    git("update-ref", "refs/remotes/origin/main", "HEAD");
    templateDir = dir;
    return dir;
}
after(() => templateDir && fs.rmSync(templateDir, { recursive: true, force: true }));

class Sandbox {
    readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "korthweb-cli-"));
    readonly project = path.join(this.dir, "project");
    readonly home = path.join(this.dir, "home");
    readonly bin = path.join(this.dir, "bin");
    readonly log = path.join(this.dir, "calls.log");
    readonly stacks = path.join(this.dir, "stacks");
    system = systemPath;

    constructor({ toolchain = "linked" }: { toolchain?: "linked" | "uninstalled" } = {}) {
        fs.cpSync(projectTemplate(), this.project, { recursive: true });
        if (toolchain === "linked") {
            fs.symlinkSync(path.join(repoRoot, "toolchain"), path.join(this.project, "toolchain"));
        } else {
            fs.mkdirSync(path.join(this.project, "toolchain"));
            for (const file of ["package.json", "package-lock.json"]) {
                fs.copyFileSync(path.join(repoRoot, "toolchain", file), path.join(this.project, "toolchain", file));
            }
        }
        fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(this.project, "node_modules"));
        fs.mkdirSync(this.home);
        fs.mkdirSync(this.bin);
        fs.writeFileSync(path.join(this.bin, "kubectl"), stubKubectl, { mode: 0o755 });
    }

    get passphraseFile(): string {
        return path.join(this.project, ".pulumi-passphrase");
    }

    /**
     * A `curl` that records each URL it is asked for and serves, as any install script, one that records its
     * arguments and puts the stub CLI into <--install-root>/bin (or fails like a host that cannot be resolved); and,
     * with `vouch`, a `sha256sum` that reports the pinned digest for it, as the real one does for the pinned script
     * (which this suite does not have). Without `vouch` the real sha256sum judges the served script.
     */
    withInstallerStubs({ vouch = true, curlFails = false }: { vouch?: boolean; curlFails?: boolean } = {}): this {
        const cli = path.join(this.dir, "stub-cli");
        fs.writeFileSync(cli, stubCli, { mode: 0o755 });
        const served = `#!/bin/sh\necho "$*" >>"${this.log}.installer"\nwhile [ $# -gt 0 ]; do [ "$1" = --install-root ] && root="$2"; shift; done\nmkdir -p "$root/bin" && cp "${cli}" "$root/bin/pulumi"\n`;
        fs.writeFileSync(path.join(this.dir, "served-install.sh"), served);
        fs.writeFileSync(
            path.join(this.bin, "curl"),
            `#!/bin/sh\nwhile [ $# -gt 0 ]; do case "$1" in -o) out="$2"; shift ;; http*) url="$1" ;; esac; shift; done\necho "$url" >>"${this.log}.downloads"\n` +
                (curlFails ? `echo "curl: (6) Could not resolve host: raw.githubusercontent.com" >&2\nexit 6\n` : `cp "${path.join(this.dir, "served-install.sh")}" "$out"\n`),
            { mode: 0o755 },
        );
        if (vouch) {
            fs.writeFileSync(path.join(this.bin, "sha256sum"), `#!/bin/sh\necho "${pinnedInstallScriptSha256}  $1"\n`, { mode: 0o755 });
        }
        return this;
    }

    downloads(): string[] {
        const file = `${this.log}.downloads`;
        return fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim().split("\n") : [];
    }

    installerRuns(): string[] {
        const file = `${this.log}.installer`;
        return fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim().split("\n") : [];
    }

    withStubCli(): this {
        fs.writeFileSync(path.join(this.bin, "pulumi"), stubCli, { mode: 0o755 });
        return this;
    }

    withStacks(...names: string[]): this {
        fs.writeFileSync(this.stacks, names.map((name) => `${name}\n`).join(""));
        return this;
    }

    /** scripts/run with only the environment given here: nothing of the caller's PULUMI_* or HOME leaks in. */
    run(args: string[], env: Record<string, string> = {}, cwd?: string): Run {
        const result = spawnSync(path.join(this.project, "scripts", "run"), args, {
            cwd,
            env: {
                PATH: `${this.bin}:${this.system}`,
                HOME: this.home,
                KORTHWEB_SKIP_INSTALL: "1",
                STUB_LOG: this.log,
                STUB_STACKS: this.stacks,
                ...env,
            },
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
            .filter((line) => line !== "" && !line.startsWith("kubectl "))
            .map((line) => {
                const [args, backendUrl, passphraseFile, passphrase, stackConfigFile] = line.split("\t");
                return { args, backendUrl, passphraseFile, passphrase: passphrase.startsWith("=") ? passphrase.slice(1) : undefined, stackConfigFile };
            });
    }

    kubectlCalls(): string[] {
        if (!fs.existsSync(this.log)) return [];
        return fs
            .readFileSync(this.log, "utf8")
            .split("\n")
            .filter((line) => line.startsWith("kubectl "));
    }

    /** The calls that act on stacks, after the CLI and backend checks. */
    stackCalls(): Call[] {
        return this.calls().filter((call) => !/^(version|whoami|stack ls)\b/.test(call.args));
    }

    reset(): void {
        for (const made of [this.log, this.stacks, path.join(this.project, ".pulumi-state"), this.passphraseFile]) {
            fs.rmSync(made, { recursive: true, force: true });
        }
        for (const file of ["Pulumi.local.yaml", "policy/rules.ts", "components/image-lock.json"]) {
            fs.copyFileSync(path.join(projectTemplate(), file), path.join(this.project, file));
        }
        this.system = systemPath;
    }

    remove(): void {
        // The policy pack's copy is read-only (scripts/pulumi-env): writable again, so that a non-root run can delete it.
        const writable = (dir: string): void => {
            if (!fs.existsSync(dir)) return;
            fs.chmodSync(dir, 0o755);
            for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
                if (entry.isDirectory()) writable(path.join(dir, entry.name));
                else if (!entry.isSymbolicLink()) fs.chmodSync(path.join(dir, entry.name), 0o644);
            }
        };
        writable(path.join(this.project, ".cache"));
        fs.rmSync(this.dir, { recursive: true, force: true });
    }
}

function assertSucceeded(run: Run): void {
    assert.equal(run.status, 0, `scripts/run failed:\n${run.stdout}\n${run.stderr}`);
}

/**
 * `it` with a sandbox as new: one sandbox serves these tests, reset before each (state, passphrase, stub records and
 * the tracked files a test edits), since making one per test costs more than the tests. The policy pack's extracted
 * copy is kept: it depends only on the committed tree.
 */
let shared: Sandbox | undefined;
function inSandbox(title: string, test: (sandbox: Sandbox) => void): void {
    it(title, () => {
        shared ??= new Sandbox().withStubCli();
        shared.reset();
        test(shared);
    });
}
after(() => shared?.remove());

describe("scripts/run up and preview on a machine with only a cluster", () => {
    describe("with the pinned Pulumi CLI on PATH and no backend logged in to, two runs of `up local --yes`", () => {
        let sandbox: Sandbox;
        let first: Run;
        let second: Run;
        let callsOfFirstRun: Call[];
        let passphraseAfterFirstRun: string;
        const tracked = fs.readFileSync(path.join(repoRoot, "Pulumi.local.yaml"), "utf8");

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
            assert.match(first.stdout, new RegExp(`pulumi v${pinned!.replace(/\./g, "\\.")}, on PATH`));
        });

        it("keep the local stack's state in the project's .pulumi-state without asking who is logged in", () => {
            const stateUrl = `file://${sandbox.project}/.pulumi-state`;
            assert.ok(!sandbox.calls().some((call) => call.args.startsWith("whoami")));
            for (const call of sandbox.stackCalls()) {
                assert.equal(call.backendUrl, stateUrl, call.args);
            }
            assert.ok(fs.statSync(path.join(sandbox.project, ".pulumi-state")).isDirectory());
        });

        it("create the stack once, in the private config directory, then run `up` with its config file and the protected policy pack", () => {
            const config = path.join(sandbox.project, ".pulumi-state", "config");
            const commit = spawnSync("git", ["-C", sandbox.project, "rev-parse", "origin/main"], { encoding: "utf8" }).stdout.trim();
            const calls = sandbox.stackCalls().map((call) => call.args);
            assert.equal(calls.length, 3);
            assert.equal(calls[0], `--cwd ${config} stack init local --secrets-provider passphrase --no-select --non-interactive`);
            const up = new RegExp(`^up --stack local --config-file ${config}/Pulumi\\.local\\.yaml --policy-pack ${sandbox.project}/\\.cache/policy/${commit}\\.\\w{6} --yes$`);
            assert.match(calls[1], up);
            assert.match(calls[2], up);
            assert.notEqual(calls[1], calls[2], "each run extracts the pack afresh");
        });

        it("leave the tracked Pulumi.local.yaml as it was; the salt is in the private copy, which keeps the comments", () => {
            assert.equal(fs.readFileSync(path.join(sandbox.project, "Pulumi.local.yaml"), "utf8"), tracked);
            const copy = fs.readFileSync(path.join(sandbox.project, ".pulumi-state", "config", "Pulumi.local.yaml"), "utf8");
            assert.equal(copy, `encryptionsalt: v1:stub\n${tracked}`);
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

    inSandbox("tells the program which stack file the CLI reads: the private copy it hands with --config-file", (sandbox) => {
        assertSucceeded(sandbox.run(["up", "local", "--yes"]));
        const up = sandbox.stackCalls().find((call) => call.args.startsWith("up "))!;
        const copy = path.join(sandbox.project, ".pulumi-state", "config", "Pulumi.local.yaml");
        assert.ok(up.args.includes(`--config-file ${copy}`));
        assert.equal(up.stackConfigFile, copy);
    });

    inSandbox("keeps .pulumi-state the owner's only (directories 0700, files 0600), whatever the caller's umask", (sandbox) => {
        const state = path.join(sandbox.project, ".pulumi-state");
        // An older checkout's state, made with a permissive umask.
        fs.mkdirSync(path.join(state, ".pulumi", "stacks"), { recursive: true, mode: 0o755 });
        fs.writeFileSync(path.join(state, ".pulumi", "stacks", "old.json"), "{}", { mode: 0o644 });
        fs.chmodSync(state, 0o755);
        const umask = process.umask(0o000);
        try {
            assertSucceeded(sandbox.run(["up", "local", "--yes"]));
        } finally {
            process.umask(umask);
        }
        const modes: string[] = [];
        const walk = (entry: string): void => {
            const stat = fs.lstatSync(entry);
            modes.push(`${path.relative(sandbox.project, entry)} ${(stat.mode & 0o777).toString(8)}`);
            if (stat.isDirectory()) fs.readdirSync(entry).forEach((name) => walk(path.join(entry, name)));
        };
        walk(state);
        assert.ok(modes.some((line) => line.startsWith(".pulumi-state/config/Pulumi.local.yaml ")), modes.join("\n"));
        assert.deepEqual(modes.filter((line) => !/ (600|700)$/.test(line)), [], "readable by others");
    });

    inSandbox("refuses, naming the file, to make a new passphrase for stacks encrypted with one that was lost", (sandbox) => {
        assertSucceeded(sandbox.run(["up", "local", "--yes"]));
        fs.rmSync(sandbox.passphraseFile);
        const calls = sandbox.stackCalls().length;
        const run = sandbox.run(["up", "local", "--yes"]);
        assert.equal(run.status, 1);
        assert.match(run.stderr, /\.pulumi-passphrase is missing, but the stacks in \.pulumi-state were encrypted with a passphrase: restore that file/);
        assert.ok(!fs.existsSync(sandbox.passphraseFile), "no new passphrase was generated");
        assert.equal(sandbox.stackCalls().length, calls, "the CLI was not asked to run with a wrong passphrase");
    });

    inSandbox("makes the private copy again when the tracked stack file changes, keeping the salt", (sandbox) => {
        assertSucceeded(sandbox.run(["up", "local", "--yes"]));
        fs.appendFileSync(path.join(sandbox.project, "Pulumi.local.yaml"), "# a pulled change\n");
        const run = sandbox.run(["up", "local", "--yes"]);
        assertSucceeded(run);
        assert.match(run.stdout, /Pulumi\.local\.yaml changed/);
        const copy = fs.readFileSync(path.join(sandbox.project, ".pulumi-state", "config", "Pulumi.local.yaml"), "utf8");
        assert.match(copy, /^encryptionsalt: v1:stub\n[^]*# a pulled change\n$/);
        assert.equal(sandbox.stackCalls().filter((call) => call.args.includes("stack init")).length, 1);
    });

    inSandbox("keeps `local` in .pulumi-state even when logged in elsewhere, so a login does not start it empty", (sandbox) => {
        assertSucceeded(sandbox.run(["up", "local", "--yes"], { STUB_WHOAMI: "User: someone\nBackend URL: s3://korthweb-state" }));
        assert.ok(sandbox.stackCalls().every((call) => call.backendUrl === `file://${sandbox.project}/.pulumi-state`));
    });

    inSandbox("refuses a cloud stack when no backend was chosen, rather than keeping its state in the checkout", (sandbox) => {
        const run = sandbox.run(["up", "dev", "--yes"]);
        assert.equal(run.status, 1);
        assert.match(run.stderr, /^error: no state backend chosen for stack 'dev'\. Choose one: PULUMI_BACKEND_URL=<url>, or pulumi login <url>/);
        assert.deepEqual(sandbox.stackCalls(), []);
        assert.equal(fs.existsSync(path.join(sandbox.project, ".pulumi-state")), false);
    });

    inSandbox("refuses the file backend for a cloud stack, and for any stack under CI", (sandbox) => {
        const dev = sandbox.run(["up", "dev", "--yes"], { PULUMI_BACKEND_URL: `file://${sandbox.dir}/state` });
        assert.equal(dev.status, 1);
        assert.match(dev.stderr, /stack 'dev' on the file backend .*only the local stack/);
        const ci = sandbox.run(["preview", "local"], { CI: "true" });
        assert.equal(ci.status, 1);
        assert.match(ci.stderr, /CI is set and the state backend is file:/);
        assert.deepEqual(sandbox.stackCalls(), []);
    });

    inSandbox("uses the backend logged in to for a cloud stack, with its own secrets provider and the tracked stack file", (sandbox) => {
        // What `pulumi whoami --verbose` prints for Pulumi Cloud: the console's URL (pulumi/pulumi
        // pkg/backend/httpstate/backend.go cloudBackend.URL), no API a later call could log in to. The calls keep
        // the CLI's own login rather than being sent there.
        const run = sandbox.run(["up", "dev", "--yes"], { STUB_WHOAMI: "User: someone\nOrganizations: someone\nBackend URL: https://app.pulumi.com/someone" });
        assertSucceeded(run);
        assert.match(run.stdout, /state: https:\/\/app\.pulumi\.com\/someone \(pulumi login\)/);
        const calls = sandbox.stackCalls();
        assert.equal(calls[0].args, "stack init dev --no-select --non-interactive");
        assert.match(calls[1].args, /^up --stack dev --policy-pack \S+ --yes$/);
        assert.ok(calls.every((call) => call.backendUrl === "" && call.passphraseFile === ""));
        assert.equal(fs.existsSync(sandbox.passphraseFile), false);
    });

    inSandbox("without a job, prints the jobs, also when called by a relative path from another directory", (sandbox) => {
        const caller = path.join(sandbox.home, "elsewhere");
        fs.mkdirSync(caller, { recursive: true });
        const result = spawnSync(path.join("..", "..", "project", "scripts", "run"), [], {
            cwd: caller,
            env: { PATH: `${sandbox.bin}:${sandbox.system}`, HOME: sandbox.home },
            encoding: "utf8",
        });
        assert.equal(result.status, 2);
        assert.match(result.stderr, /^# {3}scripts\/run test /m);
        assert.match(result.stderr, /scripts\/run smoke <stack>/);
        assert.match(result.stderr, /scripts\/run lock-images \[--refresh\] +ask the registries/);
        assert.doesNotMatch(result.stderr, /No such file|can't read|Node\.js is pinned/);
    });

    inSandbox("without a terminal, refuses `up` without --yes, saying how to run it unattended", (sandbox) => {
        const run = sandbox.run(["up", "local"]);
        assert.equal(run.status, 1);
        assert.match(run.stderr, /no terminal to confirm the update: read `scripts\/run preview local` first, then run `scripts\/run up local --yes`/);
        assert.deepEqual(sandbox.calls(), []);
    });

    inSandbox("`preview` creates no stack: a missing one is an error naming how to create it", (sandbox) => {
        const run = sandbox.run(["preview", "dev"], { PULUMI_BACKEND_URL: "https://api.pulumi.com" });
        assert.equal(run.status, 1);
        assert.match(run.stderr, /stack 'dev' does not exist on https:\/\/api\.pulumi\.com; this job creates none/);
        assert.ok(!sandbox.calls().some((call) => call.args.includes("init") || call.args.includes("--create")));
    });

    inSandbox("`preview` checks the stack's cluster through its context, then previews with the policy pack", (sandbox) => {
        sandbox.withStacks("dev");
        const run = sandbox.run(["preview", "dev", "--diff"], { PULUMI_BACKEND_URL: "https://api.pulumi.com", STUB_CONTEXT: "aks-dev" });
        assertSucceeded(run);
        assert.deepEqual(sandbox.kubectlCalls(), ["kubectl --context aks-dev get --raw /readyz"]);
        assert.match(sandbox.stackCalls().at(-1)!.args, /^preview --stack dev --policy-pack \S+\/\.cache\/policy\/[0-9a-f]{40}\.\w{6} --diff$/);
    });

    inSandbox("`preview` fails when the cluster is unreachable, before previewing or from the provider's warning", (sandbox) => {
        sandbox.withStacks("dev");
        const env = { PULUMI_BACKEND_URL: "https://api.pulumi.com", STUB_CONTEXT: "aks-dev" };
        const before = sandbox.run(["preview", "dev"], { ...env, STUB_KUBECTL_FAILS: "1" });
        assert.equal(before.status, 1);
        assert.match(before.stderr, /the cluster of stack 'dev' \(context aks-dev\) is unreachable: Unable to connect to the server/);
        assert.ok(!sandbox.calls().some((call) => call.args.startsWith("preview")));
        const during = sandbox.run(["preview", "dev"], { ...env, STUB_PREVIEW_SAYS: "warning: configured Kubernetes cluster is unreachable: dial tcp" });
        assert.equal(during.status, 1);
        assert.match(during.stderr, /could not reach the cluster during the preview/);
    });

    it("`preview` under CI without kubectl fails rather than previewing blind", () => {
        const sandbox = new Sandbox().withStubCli().withStacks("dev");
        try {
            fs.rmSync(path.join(sandbox.bin, "kubectl"));
            sandbox.system = bareSystem();
            const run = sandbox.run(["preview", "dev"], { PULUMI_BACKEND_URL: "https://api.pulumi.com", CI: "true" });
            assert.equal(run.status, 1);
            assert.match(run.stderr, /kubectl is needed to check that the cluster of stack 'dev' is reachable/);
        } finally {
            sandbox.remove();
        }
    });

    describe("the policy pack, from a revision the change being run cannot edit", () => {
        const original = fs.readFileSync(path.join(repoRoot, "policy", "rules.ts"), "utf8");
        let sandbox: Sandbox;
        const git = (...args: string[]) => spawnSync("git", ["-C", sandbox.project, "-c", "user.name=t", "-c", "user.email=t@t", ...args], { encoding: "utf8" });
        // One sandbox for these tests (a new one costs more than they do); the last one removes what the first two use.
        before(() => {
            sandbox = new Sandbox().withStubCli().withStacks("dev");
            // A branch that weakens the rules, committed, and weakened further in the working tree.
            git("checkout", "-qb", "weaker-rules");
            fs.writeFileSync(path.join(sandbox.project, "policy", "rules.ts"), "// every rule removed, and committed\n");
            git("commit", "-qam", "remove every rule");
            fs.writeFileSync(path.join(sandbox.project, "policy", "rules.ts"), "// every rule removed\n");
        });
        after(() => sandbox.remove());
        const env = { PULUMI_BACKEND_URL: "https://api.pulumi.com" };

        it("`up` and `preview` run origin/main's pack, not the branch's commits or working tree, read-only, and remove it afterwards", () => {
            for (const job of [["preview", "dev"], ["up", "dev", "--yes"]]) {
                const run = sandbox.run(job, env);
                assertSucceeded(run);
                assert.match(run.stdout, /policy: the pack of origin\/main \(commit [0-9a-f]{12}\), read-only in \.cache\/policy\//);
                assert.equal(fs.readFileSync(`${sandbox.log}.pack-rules.ts`, "utf8"), original, job[0]);
                assert.equal(fs.readFileSync(`${sandbox.log}.pack-mode`, "utf8").trim(), "444", job[0]);
                assert.deepEqual(fs.readdirSync(path.join(sandbox.project, ".cache", "policy")), [], `${job[0]} left its copy of the pack`);
            }
        });

        it("runs the pack of KORTHWEB_POLICY_REF when told, HEAD included (someone working on the rules)", () => {
            assertSucceeded(sandbox.run(["preview", "dev"], { ...env, KORTHWEB_POLICY_REF: "HEAD" }));
            assert.equal(fs.readFileSync(`${sandbox.log}.pack-rules.ts`, "utf8"), "// every rule removed, and committed\n");
        });

        it("stops before touching the stack when that revision is missing or has no pack, saying what to fetch or set", () => {
            fs.rmSync(sandbox.log, { force: true });
            git("update-ref", "-d", "refs/remotes/origin/main");
            const missing = sandbox.run(["up", "dev", "--yes"], env);
            assert.equal(missing.status, 1);
            assert.match(missing.stderr, /the policy pack is taken from origin\/main \(KORTHWEB_POLICY_REF, default origin\/main: the reviewed main branch\), which .* does not have/);
            assert.match(missing.stderr, /git fetch origin main\), or set KORTHWEB_POLICY_REF/);
            git("checkout", "-q", "--orphan", "no-pack");
            git("rm", "-rqf", "--cached", "policy");
            git("commit", "-qm", "no pack");
            const empty = sandbox.run(["preview", "dev"], { ...env, KORTHWEB_POLICY_REF: "no-pack" });
            assert.equal(empty.status, 1);
            assert.match(empty.stderr, /no-pack \(commit [0-9a-f]{40}\) has no policy\/PulumiPolicy\.yaml/);
            assert.ok(!sandbox.calls().some((call) => /^(up|preview|stack init)\b/.test(call.args)));
        });
    });

    describe("with the committed components/image-lock.json, which holds no digest for images no registry here could be asked about", () => {
        const unlocked = Object.entries(imageLock.images).filter(([, entry]) => !entry.digest).map(([reference]) => reference);
        const useCommittedLock = (sandbox: Sandbox) => fs.copyFileSync(path.join(repoRoot, "components", "image-lock.json"), path.join(sandbox.project, "components", "image-lock.json"));

        inSandbox("`up` refuses before touching the stack, naming each image without a digest and the command that locks them", (sandbox) => {
            assert.ok(unlocked.length > 0);
            useCommittedLock(sandbox);
            const run = sandbox.run(["up", "dev", "--yes"], { PULUMI_BACKEND_URL: "https://api.pulumi.com" });
            assert.equal(run.status, 1);
            const [error, remedy, flag] = run.stderr.trim().split("\n").slice(-3);
            assert.match(error, /^error: components\/image-lock\.json holds no digest for .*: deployed now, they would run whatever their tag names today\.$/);
            for (const reference of [...unlocked, ...Object.keys(imageLock.charts)]) assert.ok(error.includes(reference), `${reference} not named`);
            assert.ok(!error.includes("cloudnative-pg"), "a locked image is not named");
            assert.match(remedy, /^Run `scripts\/run lock-images` on a machine that reaches the registries, review and commit components\/image-lock\.json/);
            assert.match(flag, /KORTHWEB_ALLOW_UNLOCKED_IMAGES=1 for this run/);
            assert.deepEqual(sandbox.calls(), [], "no CLI call, no stack created");
            assert.equal(fs.existsSync(path.join(sandbox.project, ".pulumi-state")), false);
        });

        inSandbox("`up` goes ahead with a warning when KORTHWEB_ALLOW_UNLOCKED_IMAGES=1 or on the local kind stack, and `preview` with a warning anyway", (sandbox) => {
            useCommittedLock(sandbox);
            const local = sandbox.run(["up", "local", "--yes"]);
            assertSucceeded(local);
            assert.match(local.stderr, /^warning: components\/image-lock\.json holds no digest for /m);
            const up = sandbox.run(["up", "local", "--yes"], { KORTHWEB_ALLOW_UNLOCKED_IMAGES: "1" });
            assertSucceeded(up);
            assert.match(up.stderr, /^warning: components\/image-lock\.json holds no digest for .*docker\.io\/orthancteam\/orthanc:26\.8\.1.*: they are pulled by tag\. Lock them with `scripts\/run lock-images`/m);
            assert.match(sandbox.stackCalls().at(-1)!.args, /^up --stack local /);
            sandbox.withStacks("dev");
            const preview = sandbox.run(["preview", "dev"], { PULUMI_BACKEND_URL: "https://api.pulumi.com" });
            assertSucceeded(preview);
            assert.match(preview.stderr, /^warning: components\/image-lock\.json holds no digest for /m);
            assert.match(sandbox.stackCalls().at(-1)!.args, /^preview --stack dev /);
        });
    });

    inSandbox("takes the pinned CLI for what it is while a newer release exists (the CLI's update warning is not its version)", (sandbox) => {
        const run = sandbox.run(["up", "local", "--yes"], { STUB_NEWER_RELEASE: "9.9.9" });
        assertSucceeded(run);
        assert.doesNotMatch(run.stdout + run.stderr, /A new version of Pulumi/);
    });

    inSandbox("refuses a CLI on PATH of another version than Pulumi.yaml pins", (sandbox) => {
        const run = sandbox.run(["up", "local", "--yes"], { STUB_VERSION: "v3.265.0" });
        assert.equal(run.status, 1);
        assert.equal(
            run.stderr.split("\n")[0],
            `error: the Pulumi CLI ${sandbox.bin}/pulumi is v3.265.0, but Pulumi.yaml pins v${pinned} (requiredPulumiVersion).`,
        );
        assert.deepEqual(sandbox.stackCalls(), []);
    });

    it("with no CLI on PATH but the pinned one in ~/.pulumi/versions, uses that one and downloads nothing", () => {
        const sandbox = new Sandbox().withInstallerStubs();
        try {
            const cached = path.join(sandbox.home, ".pulumi", "versions", pinned!, "bin");
            fs.mkdirSync(cached, { recursive: true });
            fs.writeFileSync(path.join(cached, "pulumi"), stubCli, { mode: 0o755 });
            const run = sandbox.run(["up", "local", "--yes"]);
            assertSucceeded(run);
            assert.match(run.stdout, new RegExp(`pulumi v${pinned!.replace(/\./g, "\\.")}, from ${path.dirname(cached).replace(/\./g, "\\.")}\n`));
            assert.match(sandbox.stackCalls().at(-1)!.args, /^up --stack local /);
            assert.deepEqual(sandbox.downloads(), []);
        } finally {
            sandbox.remove();
        }
    });

    it("with no CLI at all, installs the pinned version into ${PULUMI_HOME:-~/.pulumi}/versions/<version> with Pulumi's install script at its pinned commit, once", () => {
        const sandbox = new Sandbox().withInstallerStubs();
        try {
            const first = sandbox.run(["up", "local", "--yes"]);
            assertSucceeded(first);
            const root = path.join(sandbox.home, ".pulumi", "versions", pinned!);
            assert.match(first.stdout, new RegExp(`pulumi v${pinned!.replace(/\./g, "\\.")}, installed into ${root.replace(/\./g, "\\.")} \\(scripts/install-pulumi-cli\\)`));
            assert.deepEqual(sandbox.downloads(), [pinnedInstallScriptUrl]);
            assert.deepEqual(sandbox.installerRuns(), [`--version ${pinned} --install-root ${root} --no-edit-path`]);
            assert.match(sandbox.stackCalls().at(-1)!.args, /^up --stack local /);
            // The next run finds it there.
            const second = sandbox.run(["up", "local", "--yes"]);
            assertSucceeded(second);
            assert.match(second.stdout, new RegExp(`, from ${root.replace(/\./g, "\\.")}\n`));
            assert.equal(sandbox.downloads().length, 1);
            // PULUMI_HOME moves it, as it moves every Pulumi tool's.
            const pulumiHome = path.join(sandbox.dir, "pulumi-home");
            assertSucceeded(sandbox.run(["up", "local", "--yes"], { PULUMI_HOME: pulumiHome }));
            assert.deepEqual(sandbox.installerRuns().at(-1), `--version ${pinned} --install-root ${path.join(pulumiHome, "versions", pinned!)} --no-edit-path`);
        } finally {
            sandbox.remove();
        }
    });

    it("runs no install script whose sha256 is not the pinned one, and says what failed and how to install by hand", () => {
        const sandbox = new Sandbox().withInstallerStubs({ vouch: false });
        try {
            // The launcher, were it reached, would fetch through this closed proxy and never succeed either.
            const run = sandbox.run(["up", "local", "--yes"], { NODE_USE_ENV_PROXY: "1", HTTPS_PROXY: "http://127.0.0.1:1" });
            assert.notEqual(run.status, 0);
            const root = path.join(sandbox.home, ".pulumi", "versions", pinned!);
            const [error, hint] = run.stderr.trim().split("\n");
            assert.match(error, new RegExp(`^error: no Pulumi CLI on PATH, and scripts/install-pulumi-cli could not install v${pinned!.replace(/\./g, "\\.")} into ${root.replace(/\./g, "\\.")}: error: ${pinnedInstallScriptUrl.replace(/[./]/g, "\\$&")} has sha256 [0-9a-f]{64}, not the pinned [0-9a-f]{64}; not running it\\.$`));
            assert.equal(hint, "Install the Pulumi CLI by hand (https://www.pulumi.com/docs/install/), put it on PATH, and run this again.");
            assert.deepEqual(sandbox.installerRuns(), [], "the unpinned script ran");
            assert.equal(fs.existsSync(path.join(sandbox.project, ".pulumi-state")), false, "it stopped before anything else");
        } finally {
            sandbox.remove();
        }
    });

    it("says what failed when the download fails", () => {
        const sandbox = new Sandbox().withInstallerStubs({ curlFails: true });
        try {
            const run = sandbox.run(["up", "local", "--yes"]);
            assert.notEqual(run.status, 0);
            assert.match(run.stderr.trim().split("\n")[0], /could not install v[0-9.]+ into .*: curl: \(6\) Could not resolve host: raw\.githubusercontent\.com$/);
            assert.deepEqual(sandbox.stackCalls(), []);
        } finally {
            sandbox.remove();
        }
    });
});

describe("scripts/run config <stack> ...: the stack's secrets with the CLI, backend and passphrase of `up`", () => {
    inSandbox("creates the stack when missing, then runs `pulumi config` on it, the value on stdin", (sandbox) => {
        const run = sandbox.run(["config", "cnpg", "set", "--secret", "--path", "backup.s3.accessKeyId"], { PULUMI_BACKEND_URL: "https://api.pulumi.com" });
        assertSucceeded(run);
        assert.deepEqual(
            sandbox.stackCalls().map((call) => call.args),
            ["stack init cnpg --no-select --non-interactive", "config --stack cnpg set --secret --path backup.s3.accessKeyId"],
        );
    });

    inSandbox("on a self-managed backend other than a file, needs a secrets provider or a passphrase, and creates the stack with the provider", (sandbox) => {
        const env = { PULUMI_BACKEND_URL: "s3://korthweb-state" };
        const without = sandbox.run(["config", "cnpg", "set", "--secret", "--path", "backup.s3.accessKeyId"], env);
        assert.equal(without.status, 1);
        assert.match(without.stderr, /^error: the backend s3:\/\/korthweb-state keeps no secrets provider of its own, and none was given: set KORTHWEB_SECRETS_PROVIDER/);
        assert.deepEqual(sandbox.stackCalls(), []);
        const withKms = sandbox.run(["config", "cnpg", "set", "--secret", "--path", "backup.s3.accessKeyId"], { ...env, KORTHWEB_SECRETS_PROVIDER: "awskms://alias/korthweb" });
        assertSucceeded(withKms);
        assert.equal(sandbox.stackCalls()[0].args, "stack init cnpg --secrets-provider awskms://alias/korthweb --no-select --non-interactive");
        const withPassphrase = sandbox.run(["preview", "cnpg"], { ...env, PULUMI_CONFIG_PASSPHRASE: "the team's" });
        assertSucceeded(withPassphrase);
    });

    inSandbox("on the local stack, writes to the private copy, never the tracked stack file", (sandbox) => {
        assertSucceeded(sandbox.run(["config", "local", "set", "--path", "kubernetes.context", "kind-kind"]));
        const config = path.join(sandbox.project, ".pulumi-state", "config", "Pulumi.local.yaml");
        assert.equal(sandbox.stackCalls().at(-1)!.args, `config --stack local --config-file ${config} set --path kubernetes.context kind-kind`);
    });

    inSandbox("keeps the stack a flag when the caller ends the options with `--` (a value starting with '-')", (sandbox) => {
        assertSucceeded(sandbox.run(["config", "cnpg", "set", "--path", "orthanc.note", "--", "-x"], { PULUMI_BACKEND_URL: "https://api.pulumi.com" }));
        const args = sandbox.stackCalls().at(-1)!.args;
        assert.equal(args, "config --stack cnpg set --path orthanc.note -- -x");
        assert.ok(args.indexOf("--stack") < args.indexOf(" -- "), "--stack before the caller's --");
    });
});

describe("scripts/run on a fresh Debian machine without npm or curl", () => {
    it("installs nodejs, npm, ca-certificates and curl with apt-get, and says so when that fails", () => {
        const sandbox = new Sandbox({ toolchain: "uninstalled" }).withStubCli();
        try {
            sandbox.system = bareSystem();
            fs.writeFileSync(path.join(sandbox.bin, "dpkg-query"), "#!/bin/sh\nexit 1\n", { mode: 0o755 });
            fs.writeFileSync(path.join(sandbox.bin, "apt-get"), '#!/bin/sh\necho "apt-get $*" >>"$STUB_LOG"\n[ "$1" != install ] || { echo "E: Unable to locate package npm" >&2; exit 100; }\n', { mode: 0o755 });
            const run = sandbox.run(["up", "local", "--yes"], { KORTHWEB_SKIP_INSTALL: "" });
            assert.equal(run.status, 1);
            const log = fs.readFileSync(sandbox.log, "utf8");
            assert.match(log, /^apt-get update -qq\napt-get install -y -qq nodejs npm ca-certificates curl\n$/);
            assert.equal(
                run.stderr.split("\n").slice(-3).join("\n"),
                [
                    "error: scripts/run needs npm (to install the pinned Node.js from the npm registry) and curl (for the Pulumi CLI);",
                    "installing the Debian packages nodejs npm ca-certificates curl with apt-get failed (above). Install them, or npm and curl, and run this again.",
                    "",
                ].join("\n"),
            );
        } finally {
            sandbox.remove();
        }
    });
});

describe("scripts/run's apt-get installs as a user with sudo", () => {
    inSandbox("reach apt-get non-interactive through sudo, which resets the environment (debconf would ask, e.g. tzdata)", (sandbox) => {
        const stubbed: string[] = [];
        try {
            const stubs: Record<string, string> = {
                id: '#!/bin/sh\n[ "$1" = -u ] && echo 1000 || exec /usr/bin/id "$@"\n',
                "dpkg-query": "#!/bin/sh\nexit 1\n",
                // sudo's env_reset: the command sees a fresh environment, whatever was set in front of sudo.
                sudo: '#!/bin/sh\nexec env -i PATH="$PATH" STUB_LOG="$STUB_LOG" "$@"\n',
                "apt-get": '#!/bin/sh\necho "apt-get $* DEBIAN_FRONTEND=${DEBIAN_FRONTEND-}" >>"$STUB_LOG"\n',
            };
            for (const [name, body] of Object.entries(stubs)) {
                stubbed.push(path.join(sandbox.bin, name));
                fs.writeFileSync(path.join(sandbox.bin, name), body, { mode: 0o755 });
            }
            assertSucceeded(sandbox.run(["setup"]));
            const install = fs.readFileSync(sandbox.log, "utf8").split("\n").find((line) => line.startsWith("apt-get install"));
            assert.match(install ?? "", /^apt-get install -y -qq postgresql .* DEBIAN_FRONTEND=noninteractive$/);
        } finally {
            for (const file of stubbed) fs.rmSync(file, { force: true }); // the sandbox is shared
        }
    });
});

describe("scripts/run modality-cert <stack> <tenant> <modality> <dir>", () => {
    let sandbox: Sandbox;
    let outputsFile: string;
    let caller: string;
    let run: Run;

    before(() => {
        sandbox = new Sandbox().withStubCli().withStacks("local");
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

describe("scripts/run smoke <stack> [--port-forward]", () => {
    let sandbox: Sandbox;
    before(() => {
        sandbox = new Sandbox().withStubCli().withStacks("local");
        // The tool reads the Service's name and port from the program's ingress builders.
        fs.cpSync(path.join(repoRoot, "components", "tenant", "ingress.ts"), path.join(sandbox.project, "components", "tenant", "ingress.ts"));
    });
    after(() => sandbox.remove());

    it("hands --port-forward and the stack's kube context to the tool: kubectl port-forward to the Orthanc of a tenant that signs users in", () => {
        const outputs = stackOutputsFixture();
        (outputs.tenantEndpoints.bhs as Record<string, unknown>).signIn = {
            issuer: "https://login.example.org/bhs",
            clientId: "korthweb-bhs",
            redirectUri: "https://web.bhs.local.orthweb.example/oauth2/callback",
        };
        const outputsFile = path.join(sandbox.dir, "outputs.json");
        fs.writeFileSync(outputsFile, JSON.stringify(outputs));
        // Nothing listens on the fixture's node ports: every check fails, which is not what this test is about.
        const run = sandbox.run(["smoke", "local", "--port-forward"], { STUB_OUTPUTS: outputsFile, STUB_CONTEXT: "kind-kind", KORTHWEB_NODE_ADDRESS: "127.0.0.1" });
        assert.equal(run.status, 1, run.stdout + run.stderr);
        const kubectl = fs.readFileSync(sandbox.log, "utf8").split("\n").filter((line) => line.startsWith("kubectl "));
        assert.deepEqual(kubectl, ["kubectl --context kind-kind -n bhs-orthweb port-forward --address 127.0.0.1 svc/orthanc :8042"]);
        assert.match(run.stdout, /^FAIL bhs +web +/m);
    });

    it("stops on any other argument with its usage, before reading the stack", () => {
        const calls = () => (fs.existsSync(sandbox.log) ? fs.readFileSync(sandbox.log, "utf8") : "");
        const before = calls();
        const run = sandbox.run(["smoke", "local", "--port-foward"]);
        assert.equal(run.status, 2);
        assert.equal(run.stderr.trim(), "usage: scripts/run smoke <stack> [--port-forward]");
        assert.equal(calls(), before, "no CLI call");
    });
});

describe("scripts/run soak", () => {
    inSandbox("is listed in the usage of scripts/run", (sandbox) => {
        const run = sandbox.run([]);
        assert.equal(run.status, 2);
        assert.match(run.stderr, /^# {3}scripts\/run soak \[--minutes N\]/m);
    });
    for (const args of [["--minuts", "2"], ["--minutes", "2", "--rate"]]) {
        inSandbox(`stops on \`soak ${args.join(" ")}\` with its usage, before installing or running anything`, (sandbox) => {
            const run = sandbox.run(["soak", ...args]);
            assert.equal(run.status, 2, run.stdout + run.stderr);
            assert.match(run.stderr, /^usage: scripts\/run soak \[--minutes N\] \[--associations N\] \[--rate N\] \[--results FILE\]; not understood: /);
            assert.equal(run.stdout, "", "nothing installed");
        });
    }
});
