/**
 * Regenerates tests/support/schemaChartKeys.json: the key tree of the reference values.yaml of each chart korthweb pins
 * (at the pinned minor version), which
 * tests/schema.test.ts checks the program's Helm values against. Run after changing a chart pin:
 *
 *     node -r ts-node/register/transpile-only tests/support/schemaChartKeysGenerate.ts ../shared/reference/charts /work/.mirror
 *
 * The second argument, a directory of `owner+name/repo` git mirrors, is where the charts not in shared/reference/charts
 * are read, at their tags (`fromRepositories`).
 *
 * The tree holds keys and value kinds only, no values. Keys a values file documents but leaves commented out count as
 * accepted too: cert-manager's `# +docs:property` blocks (`# minAvailable: 1`) and Bitnami's `## @param a.b.c` lines.
 */
import { createHash } from "crypto";
import { execFileSync } from "child_process";
import { readFileSync, readdirSync, writeFileSync } from "fs";
import * as path from "path";
import { parse } from "yaml";
import { charts as pins } from "../../components/versions";
import { KeyNode, minorOf } from "./schemaChartValues";

/** Reference file name prefix -> chart name as pinned in components/versions.ts. */
const charts: Record<string, string> = {
    "istio-base-values-": "base",
    "istio-cni-values-": "cni",
    "istio-istiod-values-": "istiod",
    "istio-gateway-values-": "gateway",
    "cert-manager-values-": "cert-manager",
    "kube-prometheus-stack-values-": "kube-prometheus-stack",
    "kiali-server-values-": "kiali-server",
    "postgresql-ha-values": "postgresql-ha",
    "cloudnative-pg-values-": "cloudnative-pg",
    "plugin-barman-cloud-values-": "plugin-barman-cloud",
    "versitygw-values-": "versitygw",
    "keycloakx-values-": "keycloakx",
};

/** Charts read from their own repositories at the pinned tag, under the file name the loop below expects. */
const fromRepositories: { file: string; repository: string; ref: string; path: string }[] = [
    { file: "versitygw-values-0.3.4.yaml", repository: "versity/versitygw", ref: "v1.7.0", path: "chart/values.yaml" },
    { file: "keycloakx-values-7.1.11.yaml", repository: "codecentric/helm-charts", ref: "keycloakx-7.1.11", path: "charts/keycloakx/values.yaml" },
];

/**
 * Reference files whose values.yaml is byte for byte the values.yaml of the pinned chart version, which is not itself
 * in shared/reference/charts; the digest ties the claim to the bytes checked. postgresql-ha: the reference is the
 * values.yaml of 16.3.4; in bitnami/charts, tags postgresql-ha/16.3.2 and postgresql-ha/16.3.4 differ only in
 * Chart.yaml (an annotation, the version) and templates/postgresql/scripts-configmap.yaml
 * (`git diff postgresql-ha/16.3.2 postgresql-ha/16.3.4 -- bitnami/postgresql-ha`), and
 * `git show postgresql-ha/16.3.2:bitnami/postgresql-ha/values.yaml` has this sha256.
 */
const identicalAtPin: Record<string, { version: string; sha256: string }> = {
    "postgresql-ha-values.yaml": { version: "16.3.2", sha256: "665fcf375987ddcc019eb96798442b9a9a72eaf7e76486295596f06a60770077" },
};

function tree(value: unknown): KeyNode {
    if (value === null || value === undefined) return { t: "null" };
    if (Array.isArray(value)) return { t: "list" };
    if (typeof value === "object") {
        return { t: "map", k: Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, tree(v)])) };
    }
    return { t: typeof value as "string" | "number" | "boolean" };
}

function addPath(root: KeyNode, keys: string[]): void {
    let node = root;
    for (const key of keys) {
        if (node.t !== "map") return;
        node.k ??= {};
        node.k[key] ??= { t: "doc" };
        if (node.k[key].t === "doc" && key !== keys[keys.length - 1]) node.k[key] = { t: "map", k: {}, documented: true };
        node = node.k[key];
    }
}

/** Keys that appear only in comments, with the path their indentation puts them at. */
function commentedKeys(text: string): string[][] {
    const found: string[][] = [];
    const stack: { indent: number; key: string }[] = [];
    for (const line of text.split("\n")) {
        const param = /^\s*##\s*@(param|extra)\s+([\w.\-/]+)/.exec(line);
        if (param) {
            found.push(param[2].split(".").filter((k) => k !== ""));
            continue;
        }
        const real = /^(\s*)(- )?([\w.\-/"]+):(\s|$)/.exec(line);
        const commented = /^(\s*)#( *)([A-Za-z_][\w.\-/]*):(\s|$)/.exec(line);
        let indent: number;
        let key: string;
        if (real) {
            indent = real[1].length + (real[2] ? 2 : 0);
            key = (real[2] ? "[]" : "") + real[3].replace(/"/g, "");
        } else if (commented && !line.includes("##")) {
            indent = commented[1].length + commented[2].length - 1;
            key = commented[3];
        } else {
            continue;
        }
        while (stack.length > 0 && stack[stack.length - 1].indent >= indent) stack.pop();
        const keys = [...stack.map((s) => s.key), key];
        if (!real && !keys.some((k) => k.startsWith("[]"))) found.push(keys);
        stack.push({ indent, key });
    }
    return found;
}

function main(): void {
    const directory = process.argv[2] ?? path.join(__dirname, "..", "..", "..", "shared", "reference", "charts");
    const output: Record<string, { chart: string; version: string; source: string; sourceVersion?: string; tree: KeyNode }> = {};
    const mirrors = process.argv[3];
    const texts: [string, string][] = readdirSync(directory)
        .sort()
        .map((file) => [file, file.endsWith(".yaml") ? readFileSync(path.join(directory, file), "utf8") : ""]);
    for (const source of fromRepositories) {
        if (!mirrors) throw new Error(`give the git mirrors' directory as the second argument: ${source.repository} is read there`);
        const gitDir = path.join(mirrors, source.repository.replace("/", "+"), "repo");
        texts.push([source.file, execFileSync("git", [`--git-dir=${gitDir}`, "show", `${source.ref}:${source.path}`], { encoding: "utf8" })]);
    }
    for (const [file, text] of texts) {
        const prefix = Object.keys(charts).find((p) => file.startsWith(p));
        if (!prefix || !file.endsWith(".yaml")) continue;
        let values = parse(text) as Record<string, unknown>;
        // The Istio gateway chart keeps its defaults under this key; users set them at the top level.
        if (values._internal_defaults_do_not_set) {
            const { _internal_defaults_do_not_set: defaults, ...rest } = values as Record<string, any>;
            values = { ...defaults, ...rest };
        }
        const root = tree(values);
        for (const keys of commentedKeys(text)) {
            addPath(root, keys[0] === "_internal_defaults_do_not_set" ? keys.slice(1) : keys);
        }
        let version = /-v?(\d+\.\d+\.\d+)\.yaml$/.exec(file)?.[0].slice(1, -5) ?? "";
        if (!version) {
            // postgresql-ha: the version is in the Chart.yaml beside it.
            const chartFile = path.join(directory, file.replace("-values.yaml", "-Chart.yaml"));
            version = (parse(readFileSync(chartFile, "utf8")) as { version: string }).version;
        }
        const chart = charts[prefix];
        // Only the minor versions korthweb pins: the test looks its reference up by chart and minor version.
        if (!Object.values(pins).some((pin) => pin.chart.endsWith(chart) && minorOf(pin.version) === minorOf(version))) continue;
        const identical = identicalAtPin[file];
        if (identical) {
            const digest = createHash("sha256").update(text).digest("hex");
            if (digest !== identical.sha256) throw new Error(`${file} changed (sha256 ${digest}): check it against ${chart} ${identical.version} again`);
            output[file] = { chart, version: identical.version, source: file, sourceVersion: version, tree: root };
            continue;
        }
        output[file] = { chart, version, source: file, tree: root };
    }
    writeFileSync(path.join(__dirname, "schemaChartKeys.json"), `${JSON.stringify(output)}\n`);
    console.log(Object.values(output).map((o) => `${o.chart} ${o.version}`).join("\n"));
}

main();
