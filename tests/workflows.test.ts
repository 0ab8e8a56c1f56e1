/**
 * The GitHub workflows: every action pinned by commit to an entry of tests/upstream/githubActions.ts and given only
 * inputs its action.yml declares; least permissions; no credentials left in .git/config; the tests in a Debian
 * container; previews only for trusted changes, with the base branch's scripts, per-stack environment secrets and no
 * fallback to another stack's. The schema check by a real validator (@action-validator/cli) is in the integration
 * suite (tests/integration/workflows.test.ts). The helper scripts the preview runs are exercised here too.
 */
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse } from "yaml";
import { pinnedActions } from "./upstream/githubActions";

const repoRoot = path.resolve(__dirname, "..");
const workflowDir = path.join(repoRoot, ".github", "workflows");

interface Step {
    uses?: string;
    run?: string;
    with?: Record<string, unknown>;
    env?: Record<string, string>;
    if?: string;
}
interface Job {
    "runs-on": string;
    container?: { image: string; options?: string };
    permissions?: Record<string, string>;
    environment?: string;
    if?: string;
    env?: Record<string, string>;
    steps: Step[];
}
interface Workflow {
    on: Record<string, unknown>;
    permissions?: Record<string, string>;
    defaults?: { run?: { shell?: string } };
    jobs: Record<string, Job>;
}

const workflows = Object.fromEntries(
    fs
        .readdirSync(workflowDir)
        .filter((name) => name.endsWith(".yml"))
        .map((name) => [name, parse(fs.readFileSync(path.join(workflowDir, name), "utf8")) as Workflow]),
);
const allSteps = Object.entries(workflows).flatMap(([name, workflow]) =>
    Object.entries(workflow.jobs).flatMap(([job, { steps }]) => steps.map((step, index) => ({ where: `${name} ${job} step ${index + 1}`, step }))),
);

describe("GitHub workflows", () => {
    it("are the pull-request tests and the gated preview", () => {
        assert.deepEqual(Object.keys(workflows).sort(), ["preview.yml", "pull-request.yml"]);
    });

    it("pin every action by commit to a known release and give it only inputs its action.yml declares, the required ones included", () => {
        const used = allSteps.filter(({ step }) => step.uses !== undefined);
        assert.ok(used.length > 0);
        for (const { where, step } of used) {
            const [repository, ref] = step.uses!.split("@");
            assert.match(ref ?? "", /^[0-9a-f]{40}$/, `${where}: ${step.uses} is not pinned by commit`);
            const action = pinnedActions.find((candidate) => candidate.repository === repository && candidate.sha === ref);
            assert.ok(action, `${where}: ${step.uses} is no release modelled in tests/upstream/githubActions.ts`);
            const given = Object.keys(step.with ?? {});
            for (const input of given) {
                assert.ok(action.inputs.includes(input), `${where}: ${repository} ${action.tag} has no input '${input}'`);
            }
            for (const input of action.required) {
                assert.ok(given.includes(input), `${where}: ${repository} ${action.tag} requires '${input}'`);
            }
        }
    });

    it("leave no token in .git/config: every checkout has persist-credentials false", () => {
        for (const { where, step } of allSteps.filter(({ step }) => step.uses?.startsWith("actions/checkout@"))) {
            assert.equal(step.with?.["persist-credentials"], false, where);
        }
    });

    it("grant least permissions: read-only tests; the preview's job only what it uses, nothing at the top", () => {
        assert.deepEqual(workflows["pull-request.yml"].permissions, { contents: "read" });
        assert.deepEqual(workflows["preview.yml"]?.permissions, {});
        assert.deepEqual(workflows["preview.yml"]?.jobs.preview.permissions, { contents: "read", "id-token": "write", "pull-requests": "write" });
    });

    it("run the tests as CI does, in a privileged Debian container (debootstrap and unshare), with no secret", () => {
        const { on, jobs } = workflows["pull-request.yml"];
        assert.deepEqual(Object.keys(on), ["pull_request"]);
        const test = jobs.test;
        assert.match(test.container?.image ?? "", /^debian:/);
        assert.match(test.container?.options ?? "", /--privileged/);
        const runs = test.steps.map((step) => step.run ?? "");
        // git before the checkout, so that it clones (the suite needs .git) rather than downloading a tarball.
        assert.match(runs[0], /apt-get install .*\bgit\b/);
        assert.ok(test.steps[1].uses?.startsWith("actions/checkout@"));
        // The container runs as root on a workspace the runner's user owns, and actions/checkout trusts it only for its
        // own git calls: without this, git refuses the clone ("dubious ownership") and the tests that read it fail.
        assert.deepEqual(runs.slice(2), ['git config --global --add safe.directory "$GITHUB_WORKSPACE"', "bash .ci/run"]);
        assert.doesNotMatch(fs.readFileSync(path.join(workflowDir, "pull-request.yml"), "utf8"), /secrets\./);
        assert.match(fs.readFileSync(path.join(repoRoot, ".ci", "run"), "utf8"), /scripts\/run test/);
    });

    describe("the preview", () => {
        // Read in a hook: a missing file fails these tests, not the loading of the whole suite.
        let workflow: Workflow;
        let text: string;
        let job: Job;
        before(() => {
            text = fs.readFileSync(path.join(workflowDir, "preview.yml"), "utf8");
            workflow = parse(text) as Workflow;
            job = workflow.jobs.preview;
        });

        it("runs this file as the base branch has it, only with the maintainers' label and a reviewer's approval per stack", () => {
            assert.deepEqual(Object.keys(workflow.on), ["pull_request_target"]);
            assert.equal(job.if, "contains(github.event.pull_request.labels.*.name, 'preview')");
            assert.equal(job.environment, "preview-${{ matrix.stack }}");
        });

        it("checks out the base branch to run, takes only the program from the pull request, and runs nothing from its checkout", () => {
            const checkouts = job.steps.filter((step) => step.uses?.startsWith("actions/checkout@"));
            assert.equal(checkouts[0].with?.ref, "${{ github.event.pull_request.base.sha }}");
            assert.equal(checkouts[0].with?.path, undefined);
            assert.equal(checkouts[1].with?.ref, "${{ github.event.pull_request.head.sha }}");
            assert.equal(checkouts[1].with?.path, ".pull-request");
            const runs = job.steps.map((step) => step.run ?? "").filter(Boolean);
            assert.equal(runs[0], "scripts/take-pr-program .pull-request");
            for (const run of runs.slice(1)) assert.doesNotMatch(run, /\.pull-request/);
        });

        it("checks the preview with the base commit's policy pack, which the pull request cannot edit", () => {
            const preview = job.steps.find((step) => /scripts\/run preview/.test(step.run ?? ""))!;
            // scripts/pulumi-env takes the pack from KORTHWEB_POLICY_REF: the commit checked out to run, the base.
            assert.equal(preview.env?.KORTHWEB_POLICY_REF, "${{ github.event.pull_request.base.sha }}");
            assert.match(fs.readFileSync(path.join(repoRoot, "scripts", "pulumi-env"), "utf8"), /KORTHWEB_POLICY_REF/);
        });

        it("puts the pinned Pulumi CLI first on PATH before scripts/run, which refuses the runner image's own (another version)", () => {
            const runs = job.steps.map((step) => step.run ?? "");
            const install = runs.findIndex((run) => /scripts\/install-pulumi-cli /.test(run));
            const preview = runs.findIndex((run) => /scripts\/run preview/.test(run));
            assert.ok(install >= 0 && install < preview, "no step installs the pinned CLI before the preview");
            assert.match(runs[install], /requiredPulumiVersion/);
            assert.match(runs[install], /scripts\/install-pulumi-cli "\$version" "\$HOME\/\.pulumi"/);
            assert.match(runs[install], />>\s*"\$GITHUB_PATH"/);
        });

        it("puts a missing kubeconfig secret's error into the output the comment quotes, and fails", () => {
            const step = job.steps.find((candidate) => /scripts\/ci-kubeconfig/.test(candidate.run ?? ""))!;
            const temp = fs.mkdtempSync(path.join(os.tmpdir(), "korthweb-preview-step-"));
            try {
                // As the runner runs it (shell: bash): bash --noprofile --norc -eo pipefail, from the checkout.
                const result = spawnSync("bash", ["--noprofile", "--norc", "-eo", "pipefail", "-c", step.run!], {
                    cwd: repoRoot,
                    env: { PATH: "/usr/bin:/bin", RUNNER_TEMP: temp, STACK: "dev" },
                    encoding: "utf8",
                });
                assert.notEqual(result.status, 0);
                assert.match(fs.readFileSync(path.join(temp, "preview.txt"), "utf8"), /KUBECONFIG secret is empty or missing/);
            } finally {
                fs.rmSync(temp, { recursive: true, force: true });
            }
        });

        it("uses per-stack short-lived credentials: an OIDC team token and the environment's own kubeconfig, no long-lived token, no fallback", () => {
            const auth = job.steps.find((step) => step.uses?.startsWith("pulumi/auth-actions@"));
            assert.equal(auth?.with?.scope, "team:korthweb-preview-${{ matrix.stack }}");
            assert.equal(auth?.with?.["requested-token-type"], "urn:pulumi:token-type:access_token:team");
            assert.deepEqual(text.match(/secrets\.[A-Z_]+/g), ["secrets.KUBECONFIG"]);
            assert.doesNotMatch(text, /\|\|\s*secrets\./);
        });

        it("fails on a failed preview (pipefail), previews through scripts/run under CI, and comments on success and failure (not on a run a newer push cancelled)", () => {
            assert.equal(workflow.defaults?.run?.shell, "bash");
            assert.match(job.steps.map((step) => step.run ?? "").join("\n"), /scripts\/run preview "\$STACK" --diff\n\s*\} 2>&1 \| tee/);
            const comment = job.steps.at(-1)!;
            assert.equal(comment.if, "success() || failure()");
            assert.match(comment.run ?? "", /gh pr comment "\$PR"/);
            // No workflow expression inside a script: only the environment carries event data into shells.
            for (const step of job.steps) assert.doesNotMatch(step.run ?? "", /\$\{\{/);
        });
    });
});

describe("the preview's helper scripts", () => {
    let dir: string;
    beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "korthweb-workflow-"))));
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    function project(): { base: string; pr: string } {
        const base = path.join(dir, "base");
        const pr = path.join(base, ".pull-request");
        for (const [root, who] of [[base, "base"], [pr, "pr"]]) {
            fs.mkdirSync(path.join(root, "components"), { recursive: true });
            fs.mkdirSync(path.join(root, "scripts"), { recursive: true });
            fs.mkdirSync(path.join(root, "policy"), { recursive: true });
            for (const file of ["index.ts", "components/a.ts", "Pulumi.dev.yaml", "Pulumi.yaml", "package.json", "policy/rules.ts", "scripts/run"]) {
                fs.writeFileSync(path.join(root, file), `${who}\n`);
            }
        }
        fs.copyFileSync(path.join(repoRoot, "scripts", "take-pr-program"), path.join(base, "scripts", "take-pr-program"));
        return { base, pr };
    }

    it("take-pr-program takes the program and stack files, keeps everything else the base's, and removes the checkout", () => {
        const { base } = project();
        const result = spawnSync(path.join(base, "scripts", "take-pr-program"), [".pull-request"], { cwd: base, encoding: "utf8" });
        assert.equal(result.status, 0, result.stderr);
        for (const file of ["index.ts", "components/a.ts", "Pulumi.dev.yaml"]) assert.equal(fs.readFileSync(path.join(base, file), "utf8"), "pr\n", file);
        for (const file of ["Pulumi.yaml", "package.json", "policy/rules.ts", "scripts/run"]) assert.equal(fs.readFileSync(path.join(base, file), "utf8"), "base\n", file);
        assert.equal(fs.existsSync(path.join(base, ".pull-request")), false);
    });

    it("take-pr-program refuses symbolic links in the program", () => {
        const { base, pr } = project();
        fs.symlinkSync("../scripts", path.join(pr, "components", "tools"));
        const result = spawnSync(path.join(base, "scripts", "take-pr-program"), [".pull-request"], { cwd: base, encoding: "utf8" });
        assert.equal(result.status, 1);
        assert.match(result.stderr, /symbolic links.*components\/tools/);
        assert.equal(fs.readFileSync(path.join(base, "index.ts"), "utf8"), "base\n");
    });

    it("take-pr-program refuses symbolic links even when the pull request removes every stack file", () => {
        const { base, pr } = project();
        fs.rmSync(path.join(pr, "Pulumi.dev.yaml"));
        fs.symlinkSync("../scripts", path.join(pr, "components", "tools"));
        const result = spawnSync(path.join(base, "scripts", "take-pr-program"), [".pull-request"], { cwd: base, encoding: "utf8" });
        assert.equal(result.status, 1);
        assert.match(result.stderr, /symbolic links.*components\/tools/);
    });

    it("ci-kubeconfig fails on a missing secret and writes a present one owner-only", () => {
        const out = path.join(dir, "kubeconfig");
        const script = path.join(repoRoot, "scripts", "ci-kubeconfig");
        const missing = spawnSync(script, [out], { env: { PATH: "/usr/bin:/bin", STACK: "tst" }, encoding: "utf8" });
        assert.equal(missing.status, 1);
        assert.match(missing.stderr, /KUBECONFIG secret is empty or missing; set it on the GitHub environment preview-tst/);
        const present = spawnSync(script, [out], { env: { PATH: "/usr/bin:/bin", STACK: "tst", KUBECONFIG_CONTENT: "apiVersion: v1" }, encoding: "utf8" });
        assert.equal(present.status, 0);
        assert.equal(fs.readFileSync(out, "utf8"), "apiVersion: v1\n");
        assert.equal(fs.statSync(out).mode & 0o777, 0o600);
    });

    it("pr-comment-preview heads the output with the stack and outcome, without colour codes", () => {
        const log = path.join(dir, "preview.txt");
        fs.writeFileSync(log, "\x1b[32m+ 3 to create\x1b[0m\n");
        const result = spawnSync(path.join(repoRoot, "scripts", "pr-comment-preview"), [log], { env: { PATH: "/usr/bin:/bin", STACK: "dev", OUTCOME: "failure" }, encoding: "utf8" });
        assert.equal(result.status, 0, result.stderr);
        assert.equal(result.stdout, "### pulumi preview: dev (failure)\n\n```\n+ 3 to create\n```\n");
    });

    it("install-pulumi-cli refuses an install script whose sha256 is not the pinned one, and runs nothing of it", () => {
        const marker = path.join(dir, "ran");
        const bin = path.join(dir, "bin");
        fs.mkdirSync(bin);
        // A curl that serves another script than the pinned one: running it would leave the marker.
        fs.writeFileSync(path.join(bin, "curl"), `#!/bin/sh\nwhile [ $# -gt 0 ]; do [ "$1" = -o ] && out="$2"; shift; done\nprintf 'touch ${marker}\\n' >"$out"\n`, {
            mode: 0o755,
        });
        const run = spawnSync(path.join(repoRoot, "scripts", "install-pulumi-cli"), ["3.270.0", path.join(dir, "root")], {
            env: { PATH: `${bin}:/usr/bin:/bin` },
            encoding: "utf8",
        });
        assert.equal(run.status, 1, run.stderr);
        assert.match(run.stderr, /has sha256 [0-9a-f]{64}, not the pinned [0-9a-f]{64}; not running it/);
        assert.equal(fs.existsSync(marker), false, "the unpinned script ran");
    });
});
