/**
 * Validates objects against the structural schemas of the CloudNativePG and Barman Cloud plugin CRDs
 * (tests/support/cnpgCrdSchemas.json, made by cnpgCrdSchemasGenerate.ts). No npm package carries models of these
 * kinds, so this implements the subset of OpenAPI v3 that structural CRD schemas use: type, properties, required,
 * enum, items, additionalProperties, x-kubernetes-preserve-unknown-fields, x-kubernetes-int-or-string, anyOf, pattern,
 * bounds and nullable. Unlike the API server, which prunes unknown fields silently, an unknown field is an error here:
 * a misspelt field would otherwise vanish on apply. CEL rules (x-kubernetes-validations) and formats are not checked.
 */
import { readFileSync } from "fs";
import * as path from "path";

export interface Schema {
    type?: "object" | "array" | "string" | "integer" | "number" | "boolean";
    properties?: Record<string, Schema>;
    required?: string[];
    enum?: unknown[];
    items?: Schema;
    additionalProperties?: boolean | Schema;
    "x-kubernetes-preserve-unknown-fields"?: boolean;
    "x-kubernetes-int-or-string"?: boolean;
    anyOf?: Schema[];
    pattern?: string;
    minimum?: number;
    maximum?: number;
    minLength?: number;
    maxLength?: number;
    minItems?: number;
    maxItems?: number;
    nullable?: boolean;
}

export const crdSchemas: Record<string, { source: string; chart: string; schema: Schema }> = JSON.parse(
    readFileSync(path.join(__dirname, "cnpgCrdSchemas.json"), "utf8"),
);

/** CRD patterns are Go RE2; the Unicode flag rejects escapes RE2 accepts (`\-`), so fall back without it. */
function compile(pattern: string): RegExp {
    try {
        return new RegExp(pattern, "u");
    } catch {
        return new RegExp(pattern);
    }
}

const kindOf = (value: unknown) => (value === null ? "null" : Array.isArray(value) ? "array" : typeof value);

/** Problems of `value` against `schema`, each prefixed with its path. */
export function schemaProblems(schema: Schema, value: unknown, at = ""): string[] {
    const here = at || "/";
    if (value === null || value === undefined) return schema.nullable || value === undefined ? [] : [`${here}: null`];
    if (schema["x-kubernetes-int-or-string"]) {
        return Number.isInteger(value) || typeof value === "string" ? [] : [`${here}: ${kindOf(value)}, expected an integer or a string`];
    }
    if (schema.anyOf && !schema.anyOf.some((option) => schemaProblems(option, value, at).length === 0)) {
        return [`${here}: matches none of anyOf`];
    }
    const problems: string[] = [];
    switch (schema.type) {
        case "object": {
            if (kindOf(value) !== "object") return [`${here}: ${kindOf(value)}, expected an object`];
            const object = value as Record<string, unknown>;
            for (const key of schema.required ?? []) {
                if (object[key] === undefined) problems.push(`${at}/${key}: required`);
            }
            for (const [key, child] of Object.entries(object)) {
                const property = schema.properties?.[key];
                if (property) {
                    problems.push(...schemaProblems(property, child, `${at}/${key}`));
                } else if (typeof schema.additionalProperties === "object") {
                    problems.push(...schemaProblems(schema.additionalProperties, child, `${at}/${key}`));
                } else if (!schema["x-kubernetes-preserve-unknown-fields"] && schema.additionalProperties !== true) {
                    problems.push(`${at}/${key}: unknown field`);
                }
            }
            break;
        }
        case "array": {
            if (!Array.isArray(value)) return [`${here}: ${kindOf(value)}, expected an array`];
            if (schema.minItems !== undefined && value.length < schema.minItems) problems.push(`${here}: fewer than ${schema.minItems} items`);
            if (schema.maxItems !== undefined && value.length > schema.maxItems) problems.push(`${here}: more than ${schema.maxItems} items`);
            if (schema.items) value.forEach((item, i) => problems.push(...schemaProblems(schema.items!, item, `${at}/${i}`)));
            break;
        }
        case "string":
            if (typeof value !== "string") return [`${here}: ${kindOf(value)}, expected a string`];
            if (schema.pattern !== undefined && !compile(schema.pattern).test(value)) problems.push(`${here}: "${value}" does not match ${schema.pattern}`);
            if (schema.minLength !== undefined && value.length < schema.minLength) problems.push(`${here}: shorter than ${schema.minLength}`);
            if (schema.maxLength !== undefined && value.length > schema.maxLength) problems.push(`${here}: longer than ${schema.maxLength}`);
            break;
        case "integer":
        case "number":
            if (typeof value !== "number" || (schema.type === "integer" && !Number.isInteger(value))) {
                return [`${here}: ${kindOf(value)}, expected ${schema.type === "integer" ? "an integer" : "a number"}`];
            }
            if (schema.minimum !== undefined && value < schema.minimum) problems.push(`${here}: below ${schema.minimum}`);
            if (schema.maximum !== undefined && value > schema.maximum) problems.push(`${here}: above ${schema.maximum}`);
            break;
        case "boolean":
            if (typeof value !== "boolean") return [`${here}: ${kindOf(value)}, expected a boolean`];
            break;
        default:
            // No type: only preserve-unknown-fields or anyOf (checked above) constrain it.
            break;
    }
    if (schema.enum && !schema.enum.some((allowed) => allowed === value)) problems.push(`${here}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
    return problems;
}

/**
 * Problems of a whole manifest (apiVersion, kind, metadata, spec) against its kind's schema. `metadata` is checked as
 * an object only: the API server validates ObjectMeta itself.
 */
export function crdObjectProblems(manifest: Record<string, any>): string[] {
    const entry = crdSchemas[`${manifest.apiVersion}/${manifest.kind}`];
    if (!entry) return [`no schema for ${manifest.apiVersion}/${manifest.kind}`];
    const { metadata, ...rest } = manifest;
    const schema: Schema = { ...entry.schema, properties: { ...entry.schema.properties, metadata: { type: "object", "x-kubernetes-preserve-unknown-fields": true } } };
    return schemaProblems(schema, { ...rest, metadata: metadata ?? {} });
}
