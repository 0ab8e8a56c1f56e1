/**
 * The program's layout, read from its import statements (tests/support/importGraph.ts): the data tier
 * (components/data/) is called by the tenant and never calls back into components/tenant/, and no file of components/
 * reaches itself through its imports. Both once failed: components/tenant/database.ts picked the engines of
 * components/database/, which took the `DatabaseEndpoint` type back from it.
 */
import { strict as assert } from "assert";
import * as path from "path";
import { importCycles, importGraph, importsAcross, importSpecifiers, readSources } from "./support/importGraph";

const repoRoot = path.resolve(__dirname, "..");

describe("the program's layout (components/)", () => {
    const { edges, unresolved } = importGraph(readSources(repoRoot, "components"));

    it("every relative import resolves to a file of components/, and the tenant calls the data tier's entry point", () => {
        assert.deepEqual(unresolved, []);
        assert.ok(edges["components/tenant/tenant.ts"].includes("components/data/index.ts"), "components/tenant/tenant.ts imports components/data");
        assert.ok(edges["components/data/index.ts"].includes("components/data/engines/bitnamiHa.ts"));
    });

    it("nothing under components/data/ imports from components/tenant/", () => {
        assert.deepEqual(importsAcross(edges, "components/data/", "components/tenant/"), []);
    });

    it("components/ has no import cycle", () => {
        assert.deepEqual(importCycles(edges), []);
    });
});

describe("the import graph's reading (tests/support/importGraph.ts)", () => {
    const specifierCases: [string, string, string[]][] = [
        ["a multi-line named import", 'import {\n    a,\n    b,\n} from "./x";', ["./x"]],
        ["a type-only import", 'import type { A } from "../y";', ["../y"]],
        ["a namespace import of a package", 'import * as k8s from "@pulumi/kubernetes";', ["@pulumi/kubernetes"]],
        ["a default and named import", 'import yaml, { parse } from "./z";', ["./z"]],
        ["re-exports", 'export { a } from "./e";\nexport * from "./f";\nexport type { T } from "./g";', ["./e", "./f", "./g"]],
        ["a side-effect import", 'import "./side";', ["./side"]],
        ["require and a dynamic import", 'const r = require("./r");\nconst d = await import("./d");', ["./r", "./d"]],
        ["a doc comment quoting an import", '/**\n * import { a } from "./doc";\n * require("./doc")\n */', []],
        ["a line comment", '// import { a } from "./c";\n// require("./c")', []],
        ["a declaration whose comment says from", 'export const a = 1; // from "./no"', []],
    ];
    for (const [what, source, expected] of specifierCases) {
        it(`reads ${what}`, () => assert.deepEqual(importSpecifiers(source), expected));
    }

    it("resolves a file before a folder's index, and reports what resolves to neither", () => {
        const { edges, unresolved } = importGraph({
            "c/t/x.ts": 'import { y } from "../d";\nimport { z } from "./z";\nimport lock from "../lock.json";\nimport * as fs from "fs";',
            "c/d/index.ts": 'import { w } from "./w";',
            "c/d/w.ts": "",
        });
        assert.deepEqual(edges["c/t/x.ts"], ["c/d/index.ts"]);
        assert.deepEqual(edges["c/d/index.ts"], ["c/d/w.ts"]);
        assert.deepEqual(unresolved, ["c/t/x.ts: ./z"]);
    });

    const cycleCases: [string, Record<string, string[]>, string[][]][] = [
        ["two files importing each other", { a: ["b"], b: ["a"] }, [["a", "b"]]],
        ["a circle of three, entered from outside", { a: ["b"], b: ["c"], c: ["a"], d: ["a"] }, [["a", "b", "c"]]],
        ["a file importing itself", { a: ["a"] }, [["a"]]],
        ["two separate circles", { a: ["b"], b: ["a"], c: ["d"], d: ["c"], e: ["a", "c"] }, [["a", "b"], ["c", "d"]]],
        ["a chain and a diamond", { a: ["b", "c"], b: ["d"], c: ["d"], d: [] }, []],
    ];
    for (const [what, edges, expected] of cycleCases) {
        it(`finds the cycles of ${what}`, () => {
            const sortedCycles = (cycles: string[][]) => cycles.map((cycle) => cycle.join(" ")).sort();
            assert.deepEqual(sortedCycles(importCycles(edges)), sortedCycles(expected));
        });
    }

    it("crosses a boundary only into the named folder, not one that shares its prefix", () => {
        const edges = { "c/data/a.ts": ["c/tenant/b.ts", "c/k8s/w.ts", "c/tenantNames.ts"], "c/dataset/x.ts": ["c/tenant/b.ts"], "c/tenant/b.ts": ["c/data/a.ts"] };
        assert.deepEqual(importsAcross(edges, "c/data/", "c/tenant/"), ["c/data/a.ts -> c/tenant/b.ts"]);
    });
});
