/**
 * cert-manager behaviour korthweb relies on, read at cert-manager/cert-manager v1.21.1:
 * - pkg/issuer/ca (CA issuer): the issuer's Secret must hold `tls.crt` (a CA certificate, optionally followed by its
 *   chain; the first certificate signs) and `tls.key`; issued Secrets get `tls.crt` (leaf + chain), `tls.key` and
 *   `ca.crt` (the top of the issuer's chain: the root when the chain reaches it).
 * - A ClusterIssuer reads its Secret from the "cluster resource namespace": the chart passes
 *   `--cluster-resource-namespace` = the release namespace unless `clusterResourceNamespace` is set
 *   (deploy/charts/cert-manager/templates/deployment.yaml); the controller's own default (kube-system) never applies
 *   to a chart install.
 */
import { PolicyRule, ruleAllows } from "./kubernetes";

export interface IssuerLike {
    kind: "Issuer" | "ClusterIssuer";
    namespace?: string;
    secretName: string;
}

/** Where the CA issuer reads its Secret from. */
export function issuerSecretNamespace(issuer: IssuerLike, certManager: { releaseNamespace: string; values: Record<string, any> }): string {
    if (issuer.kind === "Issuer") {
        return issuer.namespace!;
    }
    return certManager.values.clusterResourceNamespace || certManager.releaseNamespace;
}

export const caIssuerSecretKeys = ["tls.crt", "tls.key"];
/** Keys of a Secret cert-manager issues from a CA issuer. */
export const issuedSecretKeys = ["tls.crt", "tls.key", "ca.crt"];

/**
 * Who may obtain a certificate from an issuer, read at cert-manager/cert-manager v1.21.1 and
 * cert-manager/approver-policy v0.27.0. A request is signed only once approved; what approves it:
 * - cert-manager's own approver (pkg/controller/certificaterequests/approver), on unless the chart's
 *   `disableAutoApproval` (templates/deployment.yaml passes `--controllers=-certificaterequests-approver`), approves
 *   every request whose signer its ClusterRole names: `approveSignerNames` (values.yaml default
 *   `issuers.cert-manager.io/*`, `clusterissuers.cert-manager.io/*`; templates/rbac.yaml) — whoever asks, from any
 *   namespace.
 * - approver-policy (pkg/internal/approver/manager/review.go, predicate/predicate.go, allowed/evaluator.go,
 *   constraints/evaluator.go): policies are filtered by `selector.issuerRef` (wildcards; a request's empty kind is
 *   Issuer, empty group cert-manager.io), by `selector.namespace.matchNames` (wildcards), then by a SubjectAccessReview
 *   of verb `use` on `certificaterequestpolicies/<policy>` in the request's namespace for the request's user and
 *   groups. No policy left: unprocessed (never approved). Otherwise approved if one policy's evaluators all pass, else
 *   denied. `allowed`: every attribute the request sets must be allowed (a set attribute with no allowed value denies;
 *   `required` denies an absent one); usages a subset; `isCA: true` needs `allowed.isCA: true`. `constraints`:
 *   maxDuration (a request without duration is denied), private key algorithm and minimum size.
 * - Who the requester is: the webhook writes the creator's identity into `spec.username`
 *   (internal/webhook/admission/certificaterequest/identity/certificaterequest_identity.go). For a Certificate, the
 *   request is created by cert-manager's controller (pkg/controller/certificates/requestmanager, copying duration, isCA,
 *   usages and the issuerRef into a request in the Certificate's namespace), so its user is the controller's service
 *   account.
 * - Who may create Certificates and CertificateRequests: templates/rbac.yaml's `cert-manager-edit` ClusterRole
 *   (create on certificates, certificaterequests, issuers) carries the `aggregate-to-edit`/`aggregate-to-admin` labels
 *   when `global.rbac.aggregateClusterRoles` (default true): every namespace editor has it.
 * Policies are taken as Ready (approver-policy marks them so once it has checked them; until then a request is left
 * unprocessed, not denied). RBAC is modelled for exact names only (no wildcards), which is all the program writes.
 */

/** What a CertificateRequest says, as approver-policy reads it. */
export interface CertificateRequestFacts {
    namespace: string;
    /** spec.username: who created the request. */
    username: string;
    groups?: string[];
    issuerRef: { name: string; kind?: string; group?: string };
    isCA: boolean;
    usages: string[];
    commonName?: string;
    dnsNames: string[];
    organizations: string[];
    /** spec.duration in hours; none when the request has none. */
    durationHours?: number;
    key: { algorithm: "RSA" | "ECDSA" | "Ed25519"; size: number };
}

export type RbacRule = PolicyRule;
export interface RbacRole {
    kind: "Role" | "ClusterRole";
    name: string;
    namespace?: string;
    rules: RbacRule[];
}
export interface RbacBinding {
    kind: "RoleBinding" | "ClusterRoleBinding";
    namespace?: string;
    roleRef: { kind: string; name: string };
    subjects: { kind: string; name: string; namespace?: string }[];
}

/** The user name of a ServiceAccount's requests. */
export const serviceAccountUser = (account: { name: string; namespace: string }) => `system:serviceaccount:${account.namespace}:${account.name}`;

/** A CertificateRequestPolicy's spec, in the fields the model reads. */
export interface PolicySpec {
    selector: { issuerRef?: { name?: string; kind?: string; group?: string }; namespace?: { matchNames?: string[] } };
    allowed?: {
        commonName?: { value?: string; required?: boolean };
        dnsNames?: { values?: string[]; required?: boolean };
        subject?: { organizations?: { values?: string[]; required?: boolean } };
        usages?: string[];
        isCA?: boolean;
    };
    constraints?: { maxDuration?: string; privateKey?: { algorithm?: string; minSize?: number; maxSize?: number } };
}

/** approver-policy's wildcard: `*` matches any run of characters (pkg/internal/util/wildcard.go). */
export function wildcardMatches(pattern: string, value: string): boolean {
    const regex = new RegExp(`^${pattern.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
    return regex.test(value);
}

const goDurationHours = (duration: string): number => {
    const match = /^(\d+)h$/.exec(duration);
    if (!match) throw new Error(`duration ${duration}: only whole hours are modelled`);
    return Number(match[1]);
};

/** Does RBAC grant `user` (in `groups`) `verb` on `group/resource` named `name` in `namespace`? */
export function rbacAllows(
    roles: RbacRole[],
    bindings: RbacBinding[],
    who: { user: string; groups?: string[] },
    request: { verb: string; apiGroup: string; resource: string; name?: string; namespace: string },
): boolean {
    const isSubject = (subject: RbacBinding["subjects"][number]) =>
        subject.kind === "ServiceAccount"
            ? serviceAccountUser({ name: subject.name, namespace: subject.namespace ?? "" }) === who.user
            : subject.kind === "User"
              ? subject.name === who.user
              : (who.groups ?? []).includes(subject.name);
    return bindings.some((binding) => {
        if (binding.kind === "RoleBinding" && binding.namespace !== request.namespace) return false;
        if (!binding.subjects.some(isSubject)) return false;
        const role = roles.find(
            (r) => r.kind === binding.roleRef.kind && r.name === binding.roleRef.name && (r.kind === "ClusterRole" || r.namespace === binding.namespace),
        );
        return (role?.rules ?? []).some((rule) => ruleAllows(rule, request));
    });
}

export type Review = { result: "approved"; policy: string } | { result: "denied"; reasons: string[] } | { result: "unprocessed"; reason: string };

/** Why `policy` does not admit `request`, if it does not (allowed, then constraints). */
export function policyViolations(policy: PolicySpec, request: CertificateRequestFacts): string[] {
    const allowed = policy.allowed ?? {};
    const violations: string[] = [];
    const checkString = (what: string, value: string | undefined, rule?: { value?: string; required?: boolean }) => {
        if (!value) {
            if (rule?.required) violations.push(`${what} required`);
        } else if (rule?.value === undefined || !wildcardMatches(rule.value, value)) {
            violations.push(`${what} ${value} not allowed`);
        }
    };
    const checkSlice = (what: string, values: string[], rule?: { values?: string[]; required?: boolean }) => {
        if (values.length === 0) {
            if (rule?.required) violations.push(`${what} required`);
        } else if (rule?.values === undefined || !values.every((v) => rule.values!.some((pattern) => wildcardMatches(pattern, v)))) {
            violations.push(`${what} ${values.join(",")} not allowed`);
        }
    };
    checkString("commonName", request.commonName, allowed.commonName);
    checkSlice("dnsNames", request.dnsNames, allowed.dnsNames);
    checkSlice("organizations", request.organizations, allowed.subject?.organizations);
    if (request.isCA && allowed.isCA !== true) violations.push("isCA not allowed");
    if (request.usages.length > 0 && (allowed.usages === undefined || !request.usages.every((u) => allowed.usages!.some((pattern) => wildcardMatches(pattern, u))))) {
        violations.push(`usages ${request.usages.join(",")} not allowed`);
    }
    const constraints = policy.constraints;
    if (constraints?.maxDuration !== undefined) {
        if (request.durationHours === undefined || request.durationHours > goDurationHours(constraints.maxDuration)) {
            violations.push(`duration ${request.durationHours ?? "none"} above ${constraints.maxDuration}`);
        }
    }
    const key = constraints?.privateKey;
    if (key?.algorithm !== undefined && key.algorithm !== request.key.algorithm) violations.push(`key algorithm ${request.key.algorithm}`);
    if (key?.minSize !== undefined && request.key.size < key.minSize) violations.push(`key size ${request.key.size} below ${key.minSize}`);
    if (key?.maxSize !== undefined && request.key.size > key.maxSize) violations.push(`key size ${request.key.size} above ${key.maxSize}`);
    return violations;
}

/** approver-policy's review of one request against the cluster's policies and RBAC. */
export function approverPolicyReview(
    request: CertificateRequestFacts,
    policies: { name: string; spec: PolicySpec }[],
    rbac: { roles: RbacRole[]; bindings: RbacBinding[] },
): Review {
    if (policies.length === 0) return { result: "unprocessed", reason: "No CertificateRequestPolicies exist" };
    const kind = request.issuerRef.kind || "Issuer";
    const group = request.issuerRef.group || "cert-manager.io";
    const applicable = policies.filter(({ name, spec }) => {
        const issuer = spec.selector.issuerRef;
        if (issuer) {
            if (issuer.name !== undefined && !wildcardMatches(issuer.name, request.issuerRef.name)) return false;
            if (issuer.kind !== undefined && !wildcardMatches(issuer.kind, kind)) return false;
            if (issuer.group !== undefined && !wildcardMatches(issuer.group, group)) return false;
        }
        const names = spec.selector.namespace?.matchNames ?? [];
        if (names.length > 0 && !names.some((pattern) => wildcardMatches(pattern, request.namespace))) return false;
        return rbacAllows(rbac.roles, rbac.bindings, { user: request.username, groups: request.groups }, {
            verb: "use",
            apiGroup: "policy.cert-manager.io",
            resource: "certificaterequestpolicies",
            name,
            namespace: request.namespace,
        });
    });
    if (applicable.length === 0) return { result: "unprocessed", reason: "No CertificateRequestPolicies bound or applicable" };
    const reasons: string[] = [];
    for (const { name, spec } of applicable) {
        const violations = policyViolations(spec, request);
        if (violations.length === 0) return { result: "approved", policy: name };
        reasons.push(`${name}: ${violations.join("; ")}`);
    }
    return { result: "denied", reasons };
}

/** The signers cert-manager's own approver approves, or none when it is off. */
export function certManagerAutoApproves(values: Record<string, any>, request: { issuerRef: { name: string; kind?: string; group?: string }; namespace: string }): boolean {
    if (values.disableAutoApproval === true) return false;
    const names: string[] = values.approveSignerNames ?? ["issuers.cert-manager.io/*", "clusterissuers.cert-manager.io/*"];
    if (names.length === 0) return true;
    const kind = (request.issuerRef.kind || "Issuer") === "ClusterIssuer" ? "clusterissuers" : "issuers";
    const group = request.issuerRef.group || "cert-manager.io";
    if (group !== "cert-manager.io") return false;
    const signer = kind === "clusterissuers" ? `${kind}.${group}/${request.issuerRef.name}` : `${kind}.${group}/${request.namespace}.${request.issuerRef.name}`;
    return names.some((name) => name === signer || name === `${kind}.${group}/*`);
}

/** Do Kubernetes' `edit` and `admin` roles include cert-manager-edit (create Certificates and CertificateRequests)? */
export function editorsMayRequestCertificates(values: Record<string, any>): boolean {
    return values.global?.rbac?.aggregateClusterRoles ?? true;
}

/** The request cert-manager's controller makes for a Certificate (spec as the program writes it). */
export function requestForCertificate(
    certificate: { namespace: string; spec: Record<string, any> },
    controller: { name: string; namespace: string },
): CertificateRequestFacts {
    const spec = certificate.spec;
    return {
        namespace: certificate.namespace,
        username: serviceAccountUser(controller),
        issuerRef: spec.issuerRef,
        isCA: spec.isCA ?? false,
        usages: spec.usages ?? [],
        commonName: spec.commonName,
        dnsNames: spec.dnsNames ?? [],
        organizations: spec.subject?.organizations ?? [],
        durationHours: spec.duration === undefined ? undefined : goDurationHours(spec.duration),
        key: { algorithm: spec.privateKey?.algorithm ?? "RSA", size: spec.privateKey?.size ?? 2048 },
    };
}

/** Keys approver-policy v0.27.0's values.schema.json admits at the top level and below the ones the program sets. */
export const approverPolicyValueKeys: Record<string, string[]> = {
    "": [
        "affinity", "app", "commonLabels", "containerSecurityContext", "crds", "dnsPolicy", "global", "hostNetwork", "http_proxy", "https_proxy",
        "image", "imageNamespace", "imagePullSecrets", "imageRegistry", "nameOverride", "no_proxy", "nodeSelector", "podAnnotations",
        "podDisruptionBudget", "priorityClassName", "replicaCount", "resources", "securityContext", "strategy", "tolerations",
        "topologySpreadConstraints", "volumeMounts", "volumes",
    ],
    crds: ["enabled", "keep"],
    podDisruptionBudget: ["enabled", "minAvailable", "maxUnavailable"],
};
