import * as pulumi from "@pulumi/pulumi";
import { existsSync, readFileSync } from "fs";
import * as path from "path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { alertDeliveryProblems, credentialSettings, missingIdentityProblems, StackConfig, stackConfigSchema } from "./schema";

/**
 * A configuration problem found before any resource is registered. It extends RunError so Pulumi prints the message
 * alone, without a stack trace that would bury it.
 */
export class ConfigError extends pulumi.RunError {
    constructor(readonly problems: string[]) {
        super(`Invalid stack configuration:\n${problems.map((problem) => `  - ${problem}`).join("\n")}`);
        this.name = "ConfigError";
    }
}

/**
 * Validates a raw configuration object (keys without the project prefix) and returns it with defaults applied.
 * Throws a ConfigError naming, for every problem, the key, the value found and what is allowed.
 */
export function parseStackConfig(raw: unknown, project = "korthweb"): StackConfig {
    const result = stackConfigSchema.safeParse(raw, { reportInput: true });
    if (result.success) {
        return result.data;
    }
    throw new ConfigError(result.error.issues.map((issue) => describeIssue(issue, raw, project)));
}

/**
 * Builds the raw configuration from Pulumi's flat `<project>:<key>` map (as `pulumi.runtime.allConfig()` returns it),
 * reading every key of this project so that a misspelt key is reported instead of silently ignored.
 *
 * Credentials (the settings the schema marks with `credential`) are refused unless Pulumi stores them encrypted. The
 * program cannot see that from what Pulumi hands it: the values arrive decrypted, and `isSecret`
 * (`pulumi.runtime.isConfigSecret`) knows top-level keys only, a key being secret as soon as anything under it is
 * (pulumi/pulumi sdk/go/common/resource/config: object.go `Secure`, map.go `SecureKeys`, passed by the language host
 * as PULUMI_CONFIG_SECRET_KEYS). So `backup.s3.secretAccessKey` typed in clear beside a secret `accessKeyId` looks
 * secret there. `stackFile` (the stack file's `config:` map, `readStackFile`) tells each setting apart: one stored there
 * in plain text is refused, one stored there as `secure:` (or under a `secure:` value) passes, and one the file does
 * not hold (an ESC environment's) needs its top-level key to be secret.
 */
export function stackConfigFromPulumi(
    allConfig: Record<string, string>,
    project: string,
    isSecret: (key: string) => boolean = () => false,
    stackFile?: Record<string, unknown>,
): StackConfig {
    const prefix = `${project}:`;
    const raw: Record<string, unknown> = {};
    for (const [fullKey, value] of Object.entries(allConfig)) {
        if (fullKey.startsWith(prefix)) {
            raw[fullKey.slice(prefix.length)] = parseConfigValue(value);
        }
    }
    const config = parseStackConfig(raw, project);
    const undelivered = alertDeliveryProblems(config);
    if (undelivered.length > 0) {
        // Only the path: the receivers hold credentials, which an error message must not print.
        throw new ConfigError(undelivered.map((problem) => `${prefix}${formatPath(problem.path)}: allowed: ${problem.message}`));
    }
    const plainCredentials = credentialSettingPaths(stackConfigSchema, config).filter((path) => {
        const key = `${prefix}${String(path[0])}`;
        return !isSecret(key) || storedAs(stackFile?.[key], path.slice(1)) === "plain";
    });
    if (plainCredentials.length > 0) {
        throw new ConfigError(
            plainCredentials.map(formatPath).map(
                (path) => `${prefix}${path} is stored in plain text; allowed: a secret, set with pulumi config set --secret --path '${path}' <value>`,
            ),
        );
    }
    return config;
}

/**
 * Refuses a stack in which a tenant says nothing about sign-in (`missingIdentityProblems`). The program calls it right
 * after reading its stack, before any resource; kept apart from `stackConfigFromPulumi` so that configurations read
 * for other purposes need not say it.
 */
export function requireTenantIdentity(config: StackConfig, project: string): void {
    const problems = missingIdentityProblems(config);
    if (problems.length > 0) {
        throw new ConfigError(problems.map((problem) => `${project}:${formatPath(problem.path)} missing; allowed: ${problem.message}`));
    }
}

/** Where the configuration holds credentials, as `pulumi config set --path` paths. */
export function credentialPaths(config: StackConfig): string[] {
    return credentialSettingPaths(stackConfigSchema, config).map(formatPath);
}

/**
 * The paths (keys and array indexes) of `value` that `schema` marks as credentials, found by walking both together
 * through objects, arrays and records, so that a credential anywhere is found, however deep, once the schema marks it.
 */
export function credentialSettingPaths(schema: z.core.$ZodType, value: unknown, at: PropertyKey[] = []): PropertyKey[][] {
    if (value === undefined || value === null) return [];
    if (isCredential(schema, value)) return [at];
    const inner = unwrap(schema);
    if (inner instanceof z.ZodObject && typeof value === "object") {
        return Object.entries(inner.shape).flatMap(([key, field]) =>
            credentialSettingPaths(field as z.core.$ZodType, (value as Record<string, unknown>)[key], [...at, key]),
        );
    }
    if (inner instanceof z.ZodArray && Array.isArray(value)) {
        return value.flatMap((element, index) => credentialSettingPaths(inner.element as z.core.$ZodType, element, [...at, index]));
    }
    if (inner instanceof z.ZodRecord && typeof value === "object") {
        return Object.entries(value as Record<string, unknown>).flatMap(([key, element]) =>
            credentialSettingPaths(inner.valueType as z.core.$ZodType, element, [...at, key]),
        );
    }
    if (!(inner instanceof z.ZodObject || inner instanceof z.ZodArray || inner instanceof z.ZodRecord) && !isLeafSchema(inner)) {
        // A union, tuple, map, lazy... could hold a credential this walk would not see: extend it before using one.
        throw new Error(`credentialSettingPaths cannot walk a ${inner.constructor.name} (at ${formatPath(at) || "the top"})`);
    }
    return [];
}

/**
 * Every setting the schema describes, as a path pattern (`[]` for any array index, `*` for any record key), with
 * whether it is marked as a credential: what tests check the marks against.
 */
export function schemaSettings(schema: z.core.$ZodType, at = ""): { path: string; credential: boolean }[] {
    const marked = layers(schema).some((layer) => credentialSettings.has(layer));
    const inner = unwrap(schema);
    if (marked || isLeafSchema(inner)) return [{ path: at, credential: marked }];
    if (inner instanceof z.ZodObject) {
        return Object.entries(inner.shape).flatMap(([key, field]) => schemaSettings(field as z.core.$ZodType, at ? `${at}.${key}` : key));
    }
    if (inner instanceof z.ZodArray) return schemaSettings(inner.element as z.core.$ZodType, `${at}[]`);
    if (inner instanceof z.ZodRecord) return schemaSettings(inner.valueType as z.core.$ZodType, `${at}.*`);
    throw new Error(`schemaSettings cannot walk a ${inner.constructor.name} (at ${at || "the top"})`);
}

function isCredential(schema: z.core.$ZodType, value: unknown): boolean {
    // `has`, not `get`: zod's registry answers `get` with undefined for a schema derived from another (`.min()`) whose
    // metadata is empty.
    return layers(schema).some((layer) => credentialSettings.has(layer) && (credentialSettings.get(layer)?.when?.(value) ?? true));
}

/** Schemas that hold one value, not settings of their own. */
function isLeafSchema(schema: z.core.$ZodType): boolean {
    return [z.ZodString, z.ZodNumber, z.ZodBoolean, z.ZodEnum, z.ZodLiteral, z.ZodURL, z.ZodUnknown, z.ZodAny].some((type) => schema instanceof type);
}

/**
 * How a stack file holds a setting: `node` is the value of its top-level key in the file's `config:` map, `path` the
 * rest of the setting's path. Pulumi writes an encrypted value as a map whose single key is `secure` with the
 * ciphertext (pulumi/pulumi sdk/go/common/resource/config/object.go, "maps with the single key \"secure\" are
 * reserved"); whatever sits under such a value is encrypted with it.
 */
export function storedAs(node: unknown, path: PropertyKey[]): "secure" | "plain" | "absent" {
    let current = node;
    for (const part of path) {
        if (isSecureValue(current)) return "secure";
        if (current === null || typeof current !== "object") return "absent";
        current = (current as Record<PropertyKey, unknown>)[part];
    }
    if (isSecureValue(current)) return "secure";
    return current === undefined ? "absent" : "plain";
}

function isSecureValue(node: unknown): boolean {
    return node !== null && typeof node === "object" && !Array.isArray(node) && Object.keys(node).length === 1 && typeof (node as { secure?: unknown }).secure === "string";
}

/**
 * The `config:` map of the stack file the CLI reads: the one scripts/run hands it with --config-file (it names it in
 * KORTHWEB_STACK_CONFIG_FILE), else Pulumi.<stack>.yaml in the project directory, the CLI's default. Undefined when
 * there is none.
 */
export function readStackFile(stack: string, env: Record<string, string | undefined> = process.env, cwd = process.cwd()): Record<string, unknown> | undefined {
    const file = env.KORTHWEB_STACK_CONFIG_FILE || path.join(cwd, `Pulumi.${stack}.yaml`);
    if (!existsSync(file)) return undefined;
    const parsed = parseYaml(readFileSync(file, "utf8")) as { config?: Record<string, unknown> } | null;
    return parsed?.config ?? {};
}

/** Pulumi stores structured values as JSON text and plain strings as they are; the same rule as `Config.getObject`. */
function parseConfigValue(value: string): unknown {
    try {
        return JSON.parse(value);
    } catch {
        return value;
    }
}

function describeIssue(issue: z.core.$ZodIssue, raw: unknown, project: string): string {
    const key = `${project}:${formatPath(issue.path)}`;
    if (issue.code === "unrecognized_keys") {
        const prefix = issue.path.length ? `${key}.` : `${project}:`;
        const allowed = knownKeys(issue.path);
        return `${issue.keys.map((k) => prefix + k).join(", ")}: unknown key; allowed keys here: ${allowed.join(", ")}`;
    }
    if (issue.code === "invalid_key") {
        const inner = issue.issues.map((inner) => inner.message).join("; ");
        return `${project}:${formatPath(issue.path.slice(0, -1))} has the key ${JSON.stringify(String(issue.path.at(-1)))}; allowed: ${inner}`;
    }
    return `${key} ${describeValue(issue.path, valueAt(raw, issue.path))}; allowed: ${allowedText(issue)}`;
}

const notShown = "(a credential: not shown)";

/** The value found at a setting, with every credential in it (by the schema's marks) left out. */
function describeValue(at: PropertyKey[], value: unknown): string {
    if (value === undefined) return "missing";
    const schema = schemaAt(at);
    if (schema === undefined) return `is ${JSON.stringify(value)}`;
    if (layers(schema).some((layer) => credentialSettings.has(layer))) return `is set ${notShown}`;
    const shown = structuredClone(value);
    for (const inner of credentialSettingPaths(schema, value)) {
        const parent = valueAt(shown, inner.slice(0, -1)) as Record<PropertyKey, unknown>;
        parent[inner.at(-1)!] = notShown;
    }
    return `is ${JSON.stringify(shown)}`;
}

function allowedText(issue: z.core.$ZodIssue): string {
    switch (issue.code) {
        case "invalid_type":
            return issue.expected === "int" ? "an integer" : `a value of type ${issue.expected}`;
        case "invalid_value":
            return customOr(issue.message, `one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`);
        case "too_small":
            return customOr(issue.message, issue.origin === "array" ? `at least ${issue.minimum} entries` : `a value >= ${issue.minimum}`);
        case "too_big":
            return customOr(issue.message, issue.origin === "array" ? `at most ${issue.maximum} entries` : `a value <= ${issue.maximum}`);
        default:
            return issue.message;
    }
}

/** Zod's own messages start with "Too small"/"Too big"; ours are already phrased as what is allowed. */
function customOr(message: string, fallback: string): string {
    return /^(Too small|Too big|Invalid)/.test(message) ? fallback : message;
}

function formatPath(path: PropertyKey[]): string {
    return path
        .map((part, index) => (typeof part === "number" ? `[${part}]` : `${index === 0 ? "" : "."}${String(part)}`))
        .join("");
}

function valueAt(raw: unknown, path: PropertyKey[]): unknown {
    let current: unknown = raw;
    for (const part of path) {
        if (current === null || typeof current !== "object") {
            return undefined;
        }
        current = (current as Record<PropertyKey, unknown>)[part];
    }
    return current;
}

/** The keys the schema accepts at a path, for the "unknown key" message. */
function knownKeys(path: PropertyKey[]): string[] {
    const schema = unwrap(schemaAt(path) ?? z.never());
    return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}

/** The schema of the setting at a path; undefined where the schema has no such setting. */
function schemaAt(path: PropertyKey[]): z.core.$ZodType | undefined {
    let schema: z.core.$ZodType | undefined = stackConfigSchema;
    for (const part of path) {
        const inner: z.core.$ZodType = unwrap(schema);
        if (inner instanceof z.ZodArray && typeof part === "number") {
            schema = inner.element as z.core.$ZodType;
        } else if (inner instanceof z.ZodObject) {
            schema = inner.shape[String(part)] as z.core.$ZodType | undefined;
        } else if (inner instanceof z.ZodRecord) {
            schema = inner.valueType as z.core.$ZodType;
        } else {
            return undefined;
        }
        if (schema === undefined) return undefined;
    }
    return schema;
}

/** A schema and the schemas it wraps (optional, default, pipe...), outermost first: a mark may sit on any of them. */
function layers(schema: z.core.$ZodType): z.core.$ZodType[] {
    const all = [schema];
    let current = schema;
    while (true) {
        const next = wrapped(current);
        if (next === undefined) return all;
        all.push(next);
        current = next;
    }
}

function unwrap(schema: z.core.$ZodType): z.core.$ZodType {
    return layers(schema).at(-1)!;
}

function wrapped(schema: z.core.$ZodType): z.core.$ZodType | undefined {
    if (schema instanceof z.ZodPipe) return schema.in as z.core.$ZodType;
    const wrappers = [z.ZodDefault, z.ZodPrefault, z.ZodOptional, z.ZodNullable, z.ZodReadonly, z.ZodCatch, z.ZodNonOptional];
    return wrappers.some((type) => schema instanceof type) ? (schema as unknown as { unwrap(): z.core.$ZodType }).unwrap() : undefined;
}
