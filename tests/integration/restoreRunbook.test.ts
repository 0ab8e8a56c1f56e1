/**
 * Step 4 of the Bitnami restore runbook (docs/backup-restore-bitnami.md), run as written by bash from the project
 * directory: the real `node` printing the real scripts (restoreCommands), the real download script, with an `aws` that
 * serves one dump and a `kubectl` that stands for the primary's pod (a directory receiving what `exec -i` gets on its
 * standard input). The dump is the whole database: after the block nothing of it may be left on the operator's
 * machine, when the block succeeds and when it fails half-way.
 */
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const repoRoot = path.resolve(__dirname, "..", "..");
const runbook = fs.readFileSync(path.join(repoRoot, "docs", "backup-restore-bitnami.md"), "utf8");
const dumpBytes = "PGDMP-the-whole-database";

const stubAws = `#!/bin/sh
echo "aws $*" >> "$STUB_LOG"
case "$*" in
    *list-objects-v2*) echo "bhs/20260301T010002Z.dump" ;;
    *" s3 cp "*) set -- $*; printf "%s" "${dumpBytes}" > "$8" ;;
esac
`;
// `exec -i ... -- sh -c "cat > <file>"` writes its input into the pod directory; the restore's `exec -i` reads the
// password and records the script; `get secret` prints a base64 password. STUB_KUBECTL_FAILS makes `exec -i` fail.
const stubKubectl = `#!/bin/bash
echo "kubectl $*" >> "$STUB_LOG"
case "$*" in
    *"get secret"*) printf 'c2VjcmV0' ;;
    *"exec -i"*"cat > "*)
        [ -z "\${STUB_KUBECTL_FAILS-}" ] || { echo "error: unable to upgrade connection" >&2; exit 1; }
        all="$*"; cat > "$STUB_POD/\${all##*/}" ;;
    *"exec -i"*"pg_restore"*) cat > /dev/null; echo "restore: restored into orthanc" ;;
esac
`;

function stepFour(): string {
    const section = runbook.slice(runbook.indexOf("### 4. Restore"), runbook.indexOf("### 5."));
    const block = /```sh\n([^]*?)```/.exec(section)?.[1];
    assert.ok(block, "step 4 has a shell block");
    return block;
}

function runStepFour(env: Record<string, string> = {}) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "korthweb-runbook-"));
    const [bin, tmp, pod] = ["bin", "tmp", "pod"].map((name) => path.join(dir, name));
    [bin, tmp, pod].forEach((made) => fs.mkdirSync(made));
    fs.writeFileSync(path.join(bin, "aws"), stubAws, { mode: 0o755 });
    fs.writeFileSync(path.join(bin, "kubectl"), stubKubectl, { mode: 0o755 });
    const before = new Set(fs.readdirSync(repoRoot));
    const result = spawnSync("bash", ["-c", `ns=bhs-orthweb; primary=postgresql-ha-postgresql-0\n${stepFour()}`], {
        cwd: repoRoot,
        env: {
            PATH: `${bin}:${path.dirname(process.execPath)}:/usr/bin:/bin`,
            TMPDIR: tmp,
            HOME: dir,
            STUB_LOG: path.join(dir, "calls.log"),
            STUB_POD: pod,
            ENDPOINT: "https://s3.example.org",
            BUCKET: "korthweb-backups",
            REGION: "eu-west-1",
            ...env,
        },
        encoding: "utf8",
        timeout: 60_000,
    });
    const leftInProject = fs.readdirSync(repoRoot).filter((name) => !before.has(name));
    // What a leaking runbook left in the project (the old one left the dump in restore/): reported, then removed.
    leftInProject.forEach((name) => fs.rmSync(path.join(repoRoot, name), { recursive: true, force: true }));
    const leftInTmp = fs.readdirSync(tmp).filter((name) => !name.startsWith("v8-compile-cache"));
    const received = Object.fromEntries(fs.readdirSync(pod).map((name) => [name, fs.readFileSync(path.join(pod, name), "utf8")]));
    const calls = fs.readFileSync(path.join(dir, "calls.log"), "utf8");
    fs.rmSync(dir, { recursive: true, force: true });
    return { result, calls, leftInProject, leftInTmp, received };
}

describe("the Bitnami restore runbook, step 4, leaves no dump on the operator's machine", () => {
    it("streams the dump into the primary's pod and removes it here when the step succeeds", () => {
        const { result, calls, leftInProject, leftInTmp, received } = runStepFour();
        assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
        assert.match(result.stdout + result.stderr, /restore: downloaded s3:\/\/korthweb-backups\/bhs\/20260301T010002Z\.dump/);
        assert.deepEqual(received, { "restore.dump": dumpBytes, "restore.key": "bhs/20260301T010002Z.dump\n" });
        assert.match(calls, /exec -i postgresql-ha-postgresql-0 -c postgresql -- sh -c read -r PGPASSWORD; export PGPASSWORD; [^]*dir='\/bitnami\/postgresql\/restore'\n[^]*pg_restore --host/);
        assert.deepEqual(leftInProject, []);
        assert.deepEqual(leftInTmp, []);
    });

    it("removes it here when the copy into the pod fails half-way", () => {
        const { result, calls, leftInProject, leftInTmp } = runStepFour({ STUB_KUBECTL_FAILS: "1" });
        assert.match(result.stderr, /unable to upgrade connection/);
        assert.doesNotMatch(calls, /restore\.key|pg_restore/, "the step stops at the failed copy: nothing else is copied or restored");
        assert.deepEqual(leftInProject, []);
        assert.deepEqual(leftInTmp, []);
    });
});
