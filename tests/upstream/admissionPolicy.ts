/**
 * How the API server decides a request against a ValidatingAdmissionPolicy, and whether RBAC lets it through, modelled
 * from the upstream sources (read, not run: no API server runs here).
 *
 * kubernetes/apiserver v0.32.0 (Kubernetes 1.32):
 * - pkg/admission/plugin/cel/condition.go (CreateAdmissionRequest, convertObjectToUnstructured): `request` is an
 *   AdmissionRequest whose `dryRun` is always set (a pointer to the request's dry-run flag, false or true) and whose
 *   `userInfo.username` is the requester's name; it reaches CEL through the unstructured converter, so a field tagged
 *   omitempty and empty (an empty user name) is absent, and reading it is an error.
 * - pkg/endpoints/handlers/{create,update,patch,delete}.go: every write, deletes included, carries
 *   `dryrun.IsDryRun(options.DryRun)` into the admission attributes; a patch is admitted as UPDATE (or CREATE when it
 *   creates).
 * - pkg/admission/plugin/policy/validating/plugin.go: policies handle CREATE, UPDATE, DELETE and CONNECT; nothing in
 *   pkg/admission/plugin/policy skips dry-run requests, and the exemption of admissionregistration objects
 *   (webhook/predicates/rules/rules.go, IsExemptAdmissionConfigurationResource) is applied by webhooks only
 *   (webhook/generic/webhook.go), not by policies.
 * - pkg/admission/plugin/webhook/predicates/rules/rules.go (Matcher.resource): resource rule "*" matches a resource
 *   with no subresource, "*\/*" every resource and subresource; `*` in groups, versions and operations matches all.
 * - pkg/admission/plugin/policy/validating/validator.go (Validate) and webhook/matchconditions/matcher.go (Match):
 *   match conditions first: any false, the policy does not apply; an error (with none false) follows the failure
 *   policy (Fail: deny). Then each validation: false denies (with validationActions Deny), an error follows the
 *   failure policy.
 * - pkg/authentication/serviceaccount/util.go (MakeUsername): `system:serviceaccount:<namespace>:<name>`.
 *
 * kubernetes/apimachinery v0.32.0 pkg/api/meta/restmapper.go (UnsafeGuessKindToResource): the plural resource name of
 * a built-in kind (lower-cased; "s" -> "ses", "y" -> "ies", "endpoints" unchanged). A CRD declares its own plural, and
 * the guess can be wrong (Istio's Gateway would be "gatewaies"): custom kinds are looked up in `crdPlurals`, read from
 * istio 1.30.3 manifests/charts/base/files/crd-all.gen.yaml, cert-manager v1.21.1 deploy/crds, prometheus-operator
 * v0.93.0 example/prometheus-operator-crd, and shared/reference/crds (CloudNativePG 1.30.0, Barman Cloud plugin 0.13.0);
 * Cilium's was not read here (its documented plural). A custom kind missing from the table throws.
 *
 * kubernetes/kubernetes pkg/apis/rbac/v1/evaluation_helpers.go (VerbMatches, APIGroupMatches, ResourceMatches; the
 * stored version at commit 03bf11a3): a rule allows a request when one of its verbs, groups and resources equals the
 * request's or is "*".
 *
 * CEL: only the subset the program writes is interpreted (`has(path)`, `path == literal`, `path != literal`, `&&`,
 * `||`, `!`, parentheses, string and boolean literals); anything else throws, so a new expression cannot pass
 * unread. `&&` and `||` absorb an error when the other side decides (false && error is false), as CEL does.
 */
import { PolicyRule, ruleAllows } from "./kubernetes";

export interface AdmissionAttributes {
    username: string;
    operation: "CREATE" | "UPDATE" | "DELETE" | "CONNECT";
    group: string;
    version: string;
    resource: string;
    subresource?: string;
    namespace?: string;
    name: string;
    dryRun: boolean;
}

/** `request` as CEL sees it: empty omitempty fields are absent. */
export function celRequest(attributes: AdmissionAttributes): Record<string, unknown> {
    const withoutEmpty = (object: Record<string, unknown>) => Object.fromEntries(Object.entries(object).filter(([, value]) => value !== "" && value !== undefined));
    const gvr = { group: attributes.group, version: attributes.version, resource: attributes.resource };
    return withoutEmpty({
        resource: gvr,
        requestResource: gvr,
        subResource: attributes.subresource,
        requestSubResource: attributes.subresource,
        name: attributes.name,
        namespace: attributes.namespace,
        operation: attributes.operation,
        userInfo: withoutEmpty({ username: attributes.username }),
        dryRun: attributes.dryRun,
    });
}

export interface ResourceRule {
    apiGroups?: string[];
    apiVersions?: string[];
    resources?: string[];
    operations?: string[];
}

export function resourceRuleMatches(rule: ResourceRule, attributes: AdmissionAttributes): boolean {
    const exactOrWildcard = (items: string[] | undefined, requested: string) => (items ?? []).some((item) => item === "*" || item === requested);
    const resourceMatches = (rule.resources ?? []).some((entry) => {
        const [resource, sub = ""] = entry.split(/\/(.*)/s);
        return (resource === "*" || resource === attributes.resource) && (sub === "*" || sub === (attributes.subresource ?? ""));
    });
    return (
        exactOrWildcard(rule.operations, attributes.operation) &&
        exactOrWildcard(rule.apiGroups, attributes.group) &&
        exactOrWildcard(rule.apiVersions, attributes.version) &&
        resourceMatches
    );
}

export interface PolicySpec {
    failurePolicy?: string;
    matchConstraints?: { resourceRules?: ResourceRule[] };
    matchConditions?: { name: string; expression: string }[];
    validations?: { expression: string; message?: string }[];
}

export type PolicyDecision = { decision: "not matched" | "admit" } | { decision: "deny"; why: string };

/** The decision of one policy bound with `validationActions: ["Deny"]` (no params, no namespace or object selector). */
export function policyDecision(spec: PolicySpec, attributes: AdmissionAttributes): PolicyDecision {
    if (!(spec.matchConstraints?.resourceRules ?? []).some((rule) => resourceRuleMatches(rule, attributes))) return { decision: "not matched" };
    const failClosed = (spec.failurePolicy ?? "Fail") === "Fail";
    const variables = { request: celRequest(attributes) };
    const conditions = (spec.matchConditions ?? []).map((condition) => evaluateCel(condition.expression, variables));
    if (conditions.some((result) => result === false)) return { decision: "not matched" };
    const conditionError = conditions.find((result): result is CelError => result instanceof CelError);
    if (conditionError) return failClosed ? { decision: "deny", why: `match condition: ${conditionError.message}` } : { decision: "not matched" };
    for (const validation of spec.validations ?? []) {
        const result = evaluateCel(validation.expression, variables);
        if (result instanceof CelError) {
            if (failClosed) return { decision: "deny", why: `validation: ${result.message}` };
        } else if (result !== true) {
            return { decision: "deny", why: validation.message ?? validation.expression };
        }
    }
    return { decision: "admit" };
}

/** An evaluation error (a CEL value, not a JavaScript exception). */
export class CelError {
    constructor(readonly message: string) {}
}

type CelValue = string | boolean | Record<string, unknown> | CelError;

/** Evaluates the CEL subset described above; throws on anything outside it. */
export function evaluateCel(expression: string, variables: Record<string, unknown>): boolean | CelError {
    const tokens = expression.match(/"(?:[^"\\]|\\.)*"|&&|\|\||==|!=|[!().]|[A-Za-z_][A-Za-z0-9_]*|\S/g) ?? [];
    let position = 0;
    const peek = () => tokens[position];
    const take = (expected?: string) => {
        const token = tokens[position++];
        if (expected !== undefined && token !== expected) throw new Error(`CEL subset: expected ${expected}, got ${token ?? "end"} in ${expression}`);
        return token;
    };
    const path = (): string[] => {
        const segments = [take()];
        while (peek() === ".") {
            take(".");
            segments.push(take());
        }
        if (!segments.every((segment) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(segment))) throw new Error(`CEL subset: not a field path in ${expression}`);
        return segments;
    };
    const lookup = (segments: string[]): CelValue => {
        let value: unknown = variables;
        for (const segment of segments) {
            if (value === null || typeof value !== "object" || !(segment in (value as object))) return new CelError(`no such key: ${segment}`);
            value = (value as Record<string, unknown>)[segment];
        }
        return value as CelValue;
    };
    const operand = (): CelValue => {
        const token = peek();
        if (token?.startsWith('"')) return JSON.parse(take()) as string;
        if (token === "true" || token === "false") return take() === "true";
        return lookup(path());
    };
    const primary = (): CelValue => {
        if (peek() === "(") {
            take("(");
            const value = or();
            take(")");
            return value;
        }
        if (peek() === "has" && tokens[position + 1] === "(") {
            take("has");
            take("(");
            const segments = path();
            take(")");
            if (segments.length < 2) throw new Error(`CEL subset: has() needs a field selection in ${expression}`);
            const parent = lookup(segments.slice(0, -1));
            if (parent instanceof CelError) return parent;
            return typeof parent === "object" && parent !== null && segments[segments.length - 1] in parent;
        }
        const left = operand();
        if (peek() !== "==" && peek() !== "!=") return left;
        const negate = take() === "!=";
        const right = operand();
        if (left instanceof CelError) return left;
        if (right instanceof CelError) return right;
        return (left === right) !== negate;
    };
    const unary = (): CelValue => {
        if (peek() !== "!") return primary();
        take("!");
        const value = unary();
        return value instanceof CelError ? value : typeof value === "boolean" ? !value : new CelError("no matching overload for !");
    };
    // CEL's commutative && and ||: the deciding side wins over an error on the other.
    const logical = (operator: "&&" | "||", next: () => CelValue) => (): CelValue => {
        let value = next();
        while (peek() === operator) {
            take(operator);
            const right = next();
            const decisive = operator === "||";
            if (value === decisive || right === decisive) value = decisive;
            else if (value instanceof CelError) continue;
            else if (right instanceof CelError) value = right;
            else if (typeof value === "boolean" && typeof right === "boolean") value = !decisive;
            else value = new CelError(`no matching overload for ${operator}`);
        }
        return value;
    };
    const and = logical("&&", unary);
    const or = logical("||", and);
    const result = or();
    if (position !== tokens.length) throw new Error(`CEL subset: unexpected ${peek()} in ${expression}`);
    if (result instanceof CelError || typeof result === "boolean") return result;
    return new CelError(`expression is not a boolean: ${expression}`);
}

export type RbacRule = PolicyRule;

/** Whether one of the rules allows a request on a resource (`ruleAllows`; no name: a rule limited to names allows none). */
export function rbacRuleAllows(rules: RbacRule[], request: { verb: string; group: string; resource: string }): boolean {
    return rules.some((rule) => ruleAllows(rule, { verb: request.verb, apiGroup: request.group, resource: request.resource }));
}

/** The plural resource name apimachinery guesses for a kind. */
export function guessResource(kind: string): string {
    const singular = kind.toLowerCase();
    if (singular.endsWith("endpoints")) return singular;
    if (singular.endsWith("s")) return `${singular}es`;
    if (singular.endsWith("y")) return `${singular.slice(0, -1)}ies`;
    return `${singular}s`;
}

const builtInGroups = new Set(["", "apps", "batch", "autoscaling", "policy", "networking.k8s.io", "rbac.authorization.k8s.io", "admissionregistration.k8s.io"]);

/** Plural names the CRDs of the program's custom kinds declare, by `<group>/<Kind>`. */
export const crdPlurals: Record<string, string> = {
    "networking.istio.io/Gateway": "gateways",
    "networking.istio.io/VirtualService": "virtualservices",
    "networking.istio.io/ServiceEntry": "serviceentries",
    "security.istio.io/AuthorizationPolicy": "authorizationpolicies",
    "security.istio.io/PeerAuthentication": "peerauthentications",
    "telemetry.istio.io/Telemetry": "telemetries",
    "cert-manager.io/Certificate": "certificates",
    "cert-manager.io/ClusterIssuer": "clusterissuers",
    // cert-manager/approver-policy v0.27.0 deploy/crds/policy.cert-manager.io_certificaterequestpolicies.yaml
    "policy.cert-manager.io/CertificateRequestPolicy": "certificaterequestpolicies",
    "monitoring.coreos.com/PodMonitor": "podmonitors",
    "monitoring.coreos.com/ServiceMonitor": "servicemonitors",
    "monitoring.coreos.com/PrometheusRule": "prometheusrules",
    "postgresql.cnpg.io/Cluster": "clusters",
    "postgresql.cnpg.io/Pooler": "poolers",
    "postgresql.cnpg.io/ScheduledBackup": "scheduledbackups",
    "postgresql.cnpg.io/Database": "databases",
    "barmancloud.cnpg.io/ObjectStore": "objectstores",
    "cilium.io/CiliumNetworkPolicy": "ciliumnetworkpolicies",
};

/** API group, version and resource of a Pulumi Kubernetes type token `kubernetes:<group>/<version>:<Kind>`. */
export function resourceOfType(type: string): { group: string; version: string; resource: string; kind: string } | undefined {
    const match = /^kubernetes:([^/:]+)\/([^:]+):(.+)$/.exec(type);
    if (!match || match[1] === "helm.sh") return undefined;
    const [, token, version, kind] = match;
    const group = token === "core" ? "" : token;
    if (builtInGroups.has(group)) return { group, version, resource: guessResource(kind), kind };
    const resource = crdPlurals[`${group}/${kind}`];
    if (!resource) throw new Error(`${group}/${kind}: add the plural its CRD declares to crdPlurals`);
    return { group, version, resource, kind };
}

/**
 * Pod Security admission's `restricted` level, as the Pod Security Standards define it (kubernetes.io, "Pod Security
 * Standards", Restricted, which includes Baseline; implemented in kubernetes/pod-security-admission policy/check_*.go,
 * not read here): no privileged container, no host namespaces, ports or paths; only configMap, csi, downwardAPI,
 * emptyDir, ephemeral, persistentVolumeClaim, projected and secret volumes; every container with
 * allowPrivilegeEscalation false, capabilities dropping ALL and adding at most NET_BIND_SERVICE; runAsNonRoot true on
 * the pod or on every container (and false nowhere); no runAsUser 0; a RuntimeDefault or Localhost seccomp profile on
 * the pod or on every container. Returns what fails, empty when the pod is admitted.
 */
export function restrictedViolations(pod: { securityContext?: any; containers: { name: string; securityContext?: any; ports?: any[] }[]; volumes?: any[]; hostNetwork?: boolean; hostPID?: boolean; hostIPC?: boolean }): string[] {
    const problems: string[] = [];
    const podContext = pod.securityContext ?? {};
    if (pod.hostNetwork || pod.hostPID || pod.hostIPC) problems.push("host namespaces");
    const allowedVolumes = ["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"];
    for (const volume of pod.volumes ?? []) {
        const type = Object.keys(volume).find((key) => key !== "name");
        if (type && !allowedVolumes.includes(type)) problems.push(`volume ${volume.name}: ${type}`);
    }
    const seccompOk = (context: any) => ["RuntimeDefault", "Localhost"].includes(context?.seccompProfile?.type);
    if (podContext.runAsUser === 0) problems.push("pod runAsUser 0");
    for (const container of pod.containers) {
        const context = container.securityContext ?? {};
        const name = container.name;
        if (context.privileged) problems.push(`${name}: privileged`);
        if ((container.ports ?? []).some((port) => port.hostPort)) problems.push(`${name}: hostPort`);
        if (context.allowPrivilegeEscalation !== false) problems.push(`${name}: allowPrivilegeEscalation not false`);
        if (!(context.capabilities?.drop ?? []).includes("ALL")) problems.push(`${name}: capabilities not dropping ALL`);
        if ((context.capabilities?.add ?? []).some((capability: string) => capability !== "NET_BIND_SERVICE")) problems.push(`${name}: capabilities added`);
        const nonRoot = context.runAsNonRoot ?? podContext.runAsNonRoot;
        if (nonRoot !== true) problems.push(`${name}: runAsNonRoot not true`);
        if (context.runAsUser === 0) problems.push(`${name}: runAsUser 0`);
        if (!seccompOk(context) && !(seccompOk(podContext) && context.seccompProfile === undefined)) problems.push(`${name}: no RuntimeDefault or Localhost seccomp profile`);
    }
    return problems;
}
