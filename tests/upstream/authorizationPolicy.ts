/**
 * What Istio's AuthorizationPolicies decide for one HTTP request at a workload's sidecar: a pure model, applied to the
 * rendered policies. Envoy and istiod do not run here; this is what we read, not what we ran.
 *
 * Read at istio/istio 1.30.3:
 * - `pilot/pkg/security/authz/builder/builder.go` and the docs' evaluation order: DENY policies first (any match refuses),
 *   then ALLOW policies (none selecting the workload allows; otherwise one must match).
 * - `pilot/pkg/security/authz/model/generator.go` (pathGenerator, methodGenerator) and `authz/matcher/string.go`,
 *   `header.go`: a value `*` matches anything non-empty, `*suffix`, `prefix*`, otherwise exact; paths are matched by
 *   Envoy's `url_path` matcher, i.e. without the query string; methods by the `:method` header.
 * - `pilot/pkg/networking/core/listener_builder.go`: the mesh's `pathNormalization` sets the HTTP connection manager's
 *   normalization before any filter (RBAC included) sees the path, and the normalized path is what the upstream gets:
 *   DEFAULT and BASE normalize (RFC 3986 dot segments), MERGE_SLASHES also merges slashes, DECODE_AND_MERGE_SLASHES also
 *   unescapes %2F and %5C. Envoy's normalization is modelled from its documentation (RFC 3986, backslash as slash,
 *   percent-encoded unreserved characters decoded); Envoy's source was not read.
 * - `pilot/pkg/security/authz/model/model.go` (New, Generate, checkError) and `generator.go` (requestHeaderGenerator):
 *   a `when` on `request.headers[name]` becomes a header matcher (`authz/matcher/header.go`, HeaderMatcher: `*` is
 *   Envoy's present_match, `*x`/`x*` suffix/prefix, else exact, all case-sensitive); `values` are OR'ed, `notValues`
 *   are `Not(OR)`, both AND'ed with the rest of the rule. Envoy's header matcher does not match an absent header, so
 *   `values` needs the header and `notValues` matches when it is absent.
 * - TCP filter chains (a port Istio does not treat as HTTP, such as a Gateway's TLS server with a `tcp` route, or a
 *   Service port named `tcp-*`): HTTP-only fields (`methods`, `paths`, `hosts`, `request.headers`) cannot be
 *   generated. For ALLOW the whole rule is skipped (matches nothing); for DENY only those fields are dropped, so the
 *   rule matches more: a DENY of HTTP methods without `ports` refuses every TCP connection its `from` matches
 *   (istiod's webhook warns about exactly this, `pkg/config/validation/validation.go`).
 * Rule fields not modelled (`hosts`, `notPrincipals`, other `when` keys, ...) make a rule match nothing here, so a test
 * that relies on them fails rather than passes.
 */

export type PathNormalization = "NONE" | "DEFAULT" | "BASE" | "MERGE_SLASHES" | "DECODE_AND_MERGE_SLASHES";

export interface HttpRequest {
    method: string;
    /** The request target as the client sent it, query string included. */
    path: string;
    port: number;
    /** Peer identity proven by mutual TLS (SPIFFE path without `spiffe://`), and its namespace. */
    principal: string;
    namespace: string;
    /** Request headers, names in lower case (HTTP only). */
    headers?: Record<string, string>;
    /** The filter chain the request meets: HTTP (default) or TCP (raw bytes, e.g. DICOM). */
    protocol?: "HTTP" | "TCP";
}

export interface PolicySpec {
    selector?: { matchLabels?: Record<string, string> };
    action?: string;
    rules?: Record<string, any>[];
}

/** Istio's string match: `*` any non-empty, `*x` suffix, `x*` prefix, else exact (matcher/string.go). */
export function istioStringMatch(pattern: string, value: string): boolean {
    if (pattern === "*") return value.length > 0;
    if (pattern.startsWith("*")) return value.endsWith(pattern.slice(1));
    if (pattern.endsWith("*")) return value.startsWith(pattern.slice(0, -1));
    return value === pattern;
}

const unreserved = /[A-Za-z0-9\-._~]/;

/** The path the RBAC filter (and then the upstream) sees under the mesh's `pathNormalization`. */
export function normalizedPath(target: string, normalization: PathNormalization): string {
    let path = target.split("?")[0];
    if (normalization === "NONE") return path;
    if (normalization === "DECODE_AND_MERGE_SLASHES") path = path.replace(/%2f/gi, "/").replace(/%5c/gi, "\\");
    path = path.replace(/%([0-9A-Fa-f]{2})/g, (escape, hex) => {
        const char = String.fromCharCode(parseInt(hex, 16));
        return unreserved.test(char) ? char : escape;
    });
    path = path.replace(/\\/g, "/");
    if (normalization === "MERGE_SLASHES" || normalization === "DECODE_AND_MERGE_SLASHES") path = path.replace(/\/{2,}/g, "/");
    const out: string[] = [];
    const segments = path.split("/").slice(1);
    segments.forEach((segment, i) => {
        if (segment === "..") out.pop();
        if (segment === "." || segment === "..") {
            if (i === segments.length - 1) out.push("");
            return;
        }
        out.push(segment);
    });
    return "/" + out.join("/");
}

const known = {
    source: new Set(["principals", "namespaces"]),
    operation: new Set(["methods", "paths", "ports", "notMethods", "notPaths", "notPorts"]),
};
const httpOnlyOperationFields = new Set(["methods", "paths", "notMethods", "notPaths"]);

/** Envoy's header matcher as Istio generates it: an absent header matches no value. */
export function istioHeaderMatch(pattern: string, value: string | undefined): boolean {
    if (value === undefined) return false;
    if (pattern === "*") return true;
    return istioStringMatch(pattern, value);
}

type Verdict = boolean | "skip";

function sourceMatches(source: Record<string, string[]>, request: HttpRequest): boolean {
    if (Object.keys(source).some((field) => !known.source.has(field))) return false;
    if (source.principals && !source.principals.some((p) => istioStringMatch(p, request.principal))) return false;
    if (source.namespaces && !source.namespaces.some((n) => istioStringMatch(n, request.namespace))) return false;
    return true;
}

/** On a TCP chain an HTTP-only field is dropped (DENY) or skips the rule (ALLOW): model.go, checkError. */
function operationMatches(operation: Record<string, string[]>, request: HttpRequest, path: string, deny: boolean): Verdict {
    if (Object.keys(operation).some((field) => !known.operation.has(field))) return false;
    const tcp = request.protocol === "TCP";
    if (tcp && !deny && Object.keys(operation).some((field) => httpOnlyOperationFields.has(field))) return "skip";
    const applies = (field: string) => operation[field] !== undefined && !(tcp && httpOnlyOperationFields.has(field));
    const anyOf = (field: string, value: string) => !applies(field) || operation[field].some((p) => istioStringMatch(p, value));
    const noneOf = (field: string, value: string) => !applies(field) || !operation[field].some((p) => istioStringMatch(p, value));
    return (
        anyOf("methods", request.method) &&
        noneOf("notMethods", request.method) &&
        anyOf("paths", path) &&
        noneOf("notPaths", path) &&
        anyOf("ports", String(request.port)) &&
        noneOf("notPorts", String(request.port))
    );
}

const headerKey = /^request\.headers\[(.+)\]$/;

/** `when` conditions on request headers (the only key modelled); HTTP-only like the methods. */
function conditionMatches(condition: { key: string; values?: string[]; notValues?: string[] }, request: HttpRequest, deny: boolean): Verdict {
    const header = headerKey.exec(condition.key);
    if (!header) return false;
    if (request.protocol === "TCP") return deny ? true : "skip";
    const value = request.headers?.[header[1].toLowerCase()];
    const matchesAny = (patterns: string[]) => patterns.some((p) => istioHeaderMatch(p, value));
    return (condition.values === undefined || matchesAny(condition.values)) && (condition.notValues === undefined || !matchesAny(condition.notValues));
}

function ruleMatches(rule: Record<string, any>, request: HttpRequest, path: string, deny: boolean): boolean {
    if (Object.keys(rule).some((field) => !["from", "to", "when"].includes(field))) return false;
    const from = rule.from === undefined || rule.from.some((f: any) => sourceMatches(f.source ?? {}, request));
    const to: Verdict[] = rule.to === undefined ? [true] : rule.to.map((t: any) => operationMatches(t.operation ?? {}, request, path, deny));
    const when: Verdict[] = (rule.when ?? []).map((c: any) => conditionMatches(c, request, deny));
    if (to.includes("skip") || when.includes("skip")) return false;
    return from && to.some((verdict) => verdict === true) && when.every((verdict) => verdict === true);
}

const selects = (policy: PolicySpec, labels: Record<string, string>) =>
    Object.entries(policy.selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v);

/** Whether the workload's sidecar lets the request through, given the policies of the workload's namespace. */
export function authorizationAllows(
    policies: PolicySpec[],
    workloadLabels: Record<string, string>,
    request: HttpRequest,
    normalization: PathNormalization,
): boolean {
    const path = normalizedPath(request.path, normalization);
    const applying = policies.filter((p) => selects(p, workloadLabels));
    const matches = (p: PolicySpec) => (p.rules ?? []).some((rule) => ruleMatches(rule, request, path, p.action === "DENY"));
    if (applying.some((p) => p.action === "DENY" && matches(p))) return false;
    const allow = applying.filter((p) => (p.action ?? "ALLOW") === "ALLOW");
    return allow.length === 0 || allow.some(matches);
}
