import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { isKubeconfigContents } from "./kubernetesProvider";
import { alertDeliveryProblems, StackConfig, stackConfigSchema } from "./schema";

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
 * reading every key of this project so that a misspelt key is reported instead of silently ignored. `isSecret` tells
 * which top-level keys are stored encrypted (`pulumi.runtime.isConfigSecret`): credentials in a key that is not are
 * refused.
 */
export function stackConfigFromPulumi(allConfig: Record<string, string>, project: string, isSecret: (key: string) => boolean = () => false): StackConfig {
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
    const plainCredentials = credentialPaths(config).filter((path) => !isSecret(`${prefix}${path.split(/[.[]/)[0]}`));
    if (plainCredentials.length > 0) {
        throw new ConfigError(
            plainCredentials.map(
                (path) => `${prefix}${path} is stored in plain text; allowed: a secret, set with pulumi config set --secret --path '${path}' <value>`,
            ),
        );
    }
    return config;
}

/** Where the configuration holds credentials, as `pulumi config set --path` paths. */
export function credentialPaths(config: StackConfig): string[] {
    const paths = config.tenants.flatMap((tenant, index) => (tenant.database.external ? [`tenants[${index}].database.external.password`] : []));
    for (const tenant of Object.keys(config.backup?.tenants ?? {})) {
        paths.push(`backup.tenants.${tenant}.accessKeyId`, `backup.tenants.${tenant}.secretAccessKey`);
    }
    const alerting = config.observability.alerting;
    if (alerting.smtp?.password !== undefined) paths.push("observability.alerting.smtp.password");
    alerting.receivers.forEach((receiver, index) => {
        const at = `observability.alerting.receivers[${index}]`;
        if (receiver.webhook?.bearerToken !== undefined) paths.push(`${at}.webhook.bearerToken`);
        if (receiver.slack) paths.push(`${at}.slack.webhookUrl`);
        if (receiver.pagerduty) paths.push(`${at}.pagerduty.routingKey`);
        if (receiver.opsgenie) paths.push(`${at}.opsgenie.apiKey`);
    });
    // A kubeconfig's contents carry the cluster's credentials; a path does not.
    if (config.kubernetes.kubeconfig !== undefined && isKubeconfigContents(config.kubernetes.kubeconfig)) {
        paths.push("kubernetes.kubeconfig");
    }
    return paths;
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
    const value = valueAt(raw, issue.path);
    const shown = value !== undefined && credentialKeys.has(String(issue.path.at(-1))) ? "is set (a credential: not shown)" : describeValue(value);
    return `${key} ${shown}; allowed: ${allowedText(issue)}`;
}

/** Keys whose values are credentials: an error names them without printing them. */
const credentialKeys = new Set(["password", "bearerToken", "webhookUrl", "routingKey", "apiKey", "accessKeyId", "secretAccessKey"]);

function describeValue(value: unknown): string {
    return value === undefined ? "missing" : `is ${JSON.stringify(value)}`;
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
    let schema: z.core.$ZodType = stackConfigSchema;
    for (const part of path) {
        schema = unwrap(schema);
        if (schema instanceof z.ZodArray && typeof part === "number") {
            schema = schema.element as z.core.$ZodType;
        } else if (schema instanceof z.ZodObject) {
            schema = schema.shape[String(part)];
        }
    }
    schema = unwrap(schema);
    return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}

function unwrap(schema: z.core.$ZodType): z.core.$ZodType {
    let current = schema;
    while (current instanceof z.ZodDefault || current instanceof z.ZodOptional || current instanceof z.ZodPipe) {
        current = current instanceof z.ZodPipe ? (current.in as z.core.$ZodType) : current.unwrap();
    }
    return current;
}
