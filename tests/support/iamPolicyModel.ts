/**
 * A small model of how AWS evaluates identity policies for one request, enough to judge the backup policies the
 * program renders (components/data/backup/backupPolicy.ts). From AWS's documentation, "Policy evaluation logic" and
 * "IAM JSON policy elements: Condition operators" (docs.aws.amazon.com/IAM/latest/UserGuide/): an explicit Deny in
 * any applicable policy wins; otherwise an Allow is needed; without one the request is implicitly denied. Action
 * names match case-insensitively with `*` and `?`; resource ARNs case-sensitively with the same wildcards. A
 * condition holds when every operator's every key holds; `StringLike` on a key the request lacks does not hold (only
 * the `...IfExists` forms would), and a key with several values holds when any one matches.
 *
 * Left out, because the rendered policies use none of it: NotAction, NotResource, principals, policy variables,
 * resource-based policies, SCPs and permission boundaries. A statement that uses them is refused, so the model never
 * silently answers for what it does not know.
 */

export interface ModelStatement {
    Sid?: string;
    Effect: "Allow" | "Deny";
    Action: string | string[];
    Resource: string | string[];
    Condition?: Record<string, Record<string, string | string[]>>;
}

export interface ModelPolicy {
    Version: string;
    Statement: ModelStatement[];
}

export interface ModelRequest {
    action: string;
    resource: string;
    /** Condition keys of the request, e.g. `s3:prefix` for ListBucket with a prefix. */
    context?: Record<string, string>;
}

export type Decision = "allow" | "explicit-deny" | "implicit-deny";

const known = new Set(["Sid", "Effect", "Action", "Resource", "Condition"]);
const operators = new Set(["StringLike", "StringEquals"]);

function wildcard(pattern: string, caseInsensitive: boolean): RegExp {
    const body = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
    return new RegExp(`^${body}$`, caseInsensitive ? "i" : "");
}

const list = (value: string | string[]) => (Array.isArray(value) ? value : [value]);

function conditionHolds(condition: ModelStatement["Condition"], context: Record<string, string>): boolean {
    if (!condition) return true;
    return Object.entries(condition).every(([operator, keys]) => {
        if (!operators.has(operator)) throw new Error(`the model does not know the condition operator ${operator}`);
        return Object.entries(keys).every(([key, values]) => {
            const actual = context[key];
            if (actual === undefined) return false;
            return list(values).some((value) => (operator === "StringEquals" ? actual === value : wildcard(value, false).test(actual)));
        });
    });
}

function applies(statement: ModelStatement, request: ModelRequest): boolean {
    for (const key of Object.keys(statement)) {
        if (!known.has(key)) throw new Error(`the model does not know the statement element ${key}`);
    }
    return (
        list(statement.Action).some((action) => wildcard(action, true).test(request.action)) &&
        list(statement.Resource).some((resource) => wildcard(resource, false).test(request.resource)) &&
        conditionHolds(statement.Condition, request.context ?? {})
    );
}

/** The decision for `request` under every policy attached to the identity. */
export function evaluate(policies: ModelPolicy[], request: ModelRequest): Decision {
    const statements = policies.flatMap((policy) => policy.Statement);
    if (statements.some((s) => s.Effect === "Deny" && applies(s, request))) return "explicit-deny";
    return statements.some((s) => s.Effect === "Allow" && applies(s, request)) ? "allow" : "implicit-deny";
}

/** The requests S3 authorises for an operation on an object or a listing (docs.aws.amazon.com, "Actions for Amazon S3"). */
export const s3Requests = {
    get: (bucket: string, key: string): ModelRequest => ({ action: "s3:GetObject", resource: `arn:aws:s3:::${bucket}/${key}` }),
    put: (bucket: string, key: string): ModelRequest => ({ action: "s3:PutObject", resource: `arn:aws:s3:::${bucket}/${key}` }),
    delete: (bucket: string, key: string): ModelRequest => ({ action: "s3:DeleteObject", resource: `arn:aws:s3:::${bucket}/${key}` }),
    deleteVersion: (bucket: string, key: string): ModelRequest => ({ action: "s3:DeleteObjectVersion", resource: `arn:aws:s3:::${bucket}/${key}` }),
    /** ListObjectsV2 (and HeadBucket, with no prefix). */
    list: (bucket: string, prefix?: string): ModelRequest => ({
        action: "s3:ListBucket",
        resource: `arn:aws:s3:::${bucket}`,
        ...(prefix !== undefined ? { context: { "s3:prefix": prefix } } : {}),
    }),
    bucketAction: (action: string, bucket: string): ModelRequest => ({ action, resource: `arn:aws:s3:::${bucket}` }),
};
