/**
 * The integration suite's start (tests/integration/support/rootHooks.ts), with stand-ins for the Orthanc roots: issue
 * 14 asks that it print what the real stack runs before anything else, and run only on the pinned image's versions.
 * Nothing here boots Orthanc; the hook's real run is every `npm run test:integration`.
 */
import { strict as assert } from "assert";
import { readFileSync } from "fs";
import { join } from "path";
import { differencesFromImage } from "./integration/support/orthanc";
import { imageVersions } from "./integration/support/prerequisites";
import { rootHooks } from "./integration/support/rootHooks";
import { StackVersions } from "./integration/support/stack";

/** Debian trixie's Orthanc and PostgreSQL plugins (the upgrade test's old side), which the main suite must refuse. */
const trixie = { orthanc: "1.12.7", plugins: { "postgresql-index": "5.0", "postgresql-storage": "5.0", "dicom-web": "1.20" } };

const image = (): StackVersions => ({ orthanc: imageVersions.orthanc, plugins: { ...imageVersions.plugins }, root: "/roots/sid", postgresql: "17.6" });

async function startSuite(versions: StackVersions): Promise<{ lines: string[]; error?: Error }> {
    const lines: string[] = [];
    const hooks = rootHooks({ assertPrerequisites: () => undefined, probeVersions: async () => versions, log: (line) => lines.push(line) });
    try {
        await hooks.beforeAll.call({ timeout: () => undefined } as never);
        return { lines };
    } catch (error) {
        return { lines, error: error as Error };
    }
}

describe("the integration suite's start", () => {
    it("is a root hook of the integration suite's mocha configuration", () => {
        const config = JSON.parse(readFileSync(join(__dirname, "integration", ".mocharc.json"), "utf8")) as { require: string[] };
        assert.ok(config.require.includes("tests/integration/support/rootHooks.ts"), JSON.stringify(config.require));
    });

    it("prints the versions Orthanc reports for itself and each plugin, and PostgreSQL's, before any test", async () => {
        const { lines, error } = await startSuite(image());
        assert.equal(error, undefined);
        const printed = lines.join("\n");
        assert.match(printed, new RegExp(`Orthanc ${imageVersions.orthanc.replace(/\./g, "\\.")}\\b`));
        for (const [plugin, version] of Object.entries(imageVersions.plugins)) {
            assert.ok(printed.includes(`${plugin} ${version}`), `${plugin} ${version} missing from: ${printed}`);
        }
        assert.match(printed, /PostgreSQL 17\.6/);
    });

    it("stops on trixie's Orthanc 1.12.7 or plugin 5.0, naming each difference, after printing what it found", async () => {
        const old = { ...trixie, root: "/roots/trixie", postgresql: "17.6" };
        const { lines, error } = await startSuite(old);
        assert.match(String(error?.message), /Orthanc 1\.12\.7, the image has 1\.13\.0/);
        assert.match(String(error?.message), /plugin postgresql-index 5\.0/);
        assert.match(lines.join("\n"), /Orthanc 1\.12\.7/);
        // Each difference alone is enough.
        assert.notDeepEqual(differencesFromImage({ ...image(), orthanc: trixie.orthanc }), []);
        assert.notDeepEqual(differencesFromImage({ ...image(), plugins: { ...imageVersions.plugins, "postgresql-index": "5.0" } }), []);
        const { "dicom-web": _, ...withoutDicomWeb } = imageVersions.plugins;
        assert.notDeepEqual(differencesFromImage({ ...image(), plugins: withoutDicomWeb }), []);
    });
});
