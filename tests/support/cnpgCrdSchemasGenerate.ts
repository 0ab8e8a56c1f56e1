/**
 * Regenerates tests/support/cnpgCrdSchemas.json: the structural part of the openAPIV3Schema of every CloudNativePG and
 * Barman Cloud plugin kind korthweb creates, from the CRDs their pinned charts install (cloudnative-pg 0.29.0 =
 * operator 1.30.0, plugin-barman-cloud 0.7.0 = plugin 0.13.0). tests/cloudnativePg.test.ts validates the objects the
 * program builds against it, so test time does not depend on the reference files. Run after changing a chart pin:
 *
 *     node -r ts-node/register/transpile-only tests/support/cnpgCrdSchemasGenerate.ts ../shared/reference/crds
 *
 * Descriptions and CEL rules (`x-kubernetes-validations`) are dropped: the validator checks structure only.
 */
import { readFileSync, writeFileSync } from "fs";
import * as path from "path";
import { parseAllDocuments } from "yaml";
import { charts } from "../../components/versions";

/** Reference file -> the kinds korthweb uses from it. */
const sources: { file: string; chart: string; kinds: string[] }[] = [
    { file: "cloudnative-pg-1.30.0-crds.yaml", chart: `cloudnative-pg ${charts.cloudnativePg.version}`, kinds: ["Cluster", "Pooler", "ScheduledBackup", "Database"] },
    { file: "plugin-barman-cloud-0.13.0-crds.yaml", chart: `plugin-barman-cloud ${charts.barmanCloudPlugin.version}`, kinds: ["ObjectStore"] },
];

/** Keywords the validator reads; everything else is dropped. */
const kept = new Set([
    "type",
    "properties",
    "required",
    "enum",
    "items",
    "additionalProperties",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "anyOf",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "nullable",
]);

function strip(schema: unknown): unknown {
    if (Array.isArray(schema)) return schema.map(strip);
    if (schema === null || typeof schema !== "object") return schema;
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(schema as Record<string, unknown>)) {
        if (!kept.has(key)) continue;
        if (key === "properties") {
            out[key] = Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, strip(v)]));
        } else if (key === "enum" || key === "required") {
            out[key] = value;
        } else {
            out[key] = strip(value);
        }
    }
    return out;
}

function main(directory: string) {
    const result: Record<string, { source: string; chart: string; schema: unknown }> = {};
    for (const source of sources) {
        for (const document of parseAllDocuments(readFileSync(path.join(directory, source.file), "utf8"))) {
            const crd = document.toJS() as any;
            if (crd?.kind !== "CustomResourceDefinition" || !source.kinds.includes(crd.spec.names.kind)) continue;
            for (const version of crd.spec.versions) {
                if (!version.served) continue;
                result[`${crd.spec.group}/${version.name}/${crd.spec.names.kind}`] = {
                    source: source.file,
                    chart: source.chart,
                    schema: strip(version.schema.openAPIV3Schema),
                };
            }
        }
    }
    const missing = sources.flatMap((s) => s.kinds).filter((kind) => !Object.keys(result).some((key) => key.endsWith(`/${kind}`)));
    if (missing.length > 0) throw new Error(`kinds not found: ${missing.join(", ")}`);
    writeFileSync(path.join(__dirname, "cnpgCrdSchemas.json"), JSON.stringify(result) + "\n");
    console.log(`wrote ${Object.keys(result).join(", ")}`);
}

main(process.argv[2] ?? path.join(__dirname, "../../../shared/reference/crds"));
