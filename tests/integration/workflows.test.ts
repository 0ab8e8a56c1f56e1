/**
 * The GitHub workflows through a real validator: @action-validator/cli (GitHub's workflow JSON schema and the globs
 * of `paths` filters), pinned by tools/workflow-lint/package-lock.json and installed from it with `npm ci` when
 * missing. The unit suite (tests/workflows.test.ts) checks what a schema cannot: pins, inputs, permissions, trust.
 */
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const repoRoot = path.resolve(__dirname, "../..");
const lint = path.join(repoRoot, "tools", "workflow-lint");
const validator = path.join(lint, "node_modules", ".bin", "action-validator");
const workflowDir = path.join(repoRoot, ".github", "workflows");

function validate(file: string) {
    return spawnSync(validator, [file], { encoding: "utf8" });
}

describe("GitHub workflows, validated by @action-validator/cli", () => {
    before(function () {
        this.timeout(300_000);
        const installed = path.join(lint, "node_modules", ".installed-package-lock.json");
        if (!fs.existsSync(validator) || fs.readFileSync(installed, "utf8") !== fs.readFileSync(path.join(lint, "package-lock.json"), "utf8")) {
            const ci = spawnSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: lint, encoding: "utf8" });
            assert.equal(ci.status, 0, `npm ci in tools/workflow-lint failed:\n${ci.stderr}`);
            fs.copyFileSync(path.join(lint, "package-lock.json"), installed);
        }
    });

    for (const name of fs.readdirSync(workflowDir).filter((file) => file.endsWith(".yml"))) {
        it(`${name} is a valid workflow`, () => {
            const result = validate(path.join(workflowDir, name));
            assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
        });
    }

    it("the validator refuses a workflow with a misspelt key (so a pass above means something)", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "korthweb-workflow-"));
        try {
            const broken = fs.readFileSync(path.join(workflowDir, "pull-request.yml"), "utf8").replace("steps:", "stepz:");
            fs.writeFileSync(path.join(dir, "broken.yml"), broken);
            const result = validate(path.join(dir, "broken.yml"));
            assert.equal(result.status, 1);
            assert.match(result.stdout + result.stderr, /Additional property 'stepz' is not allowed/);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
