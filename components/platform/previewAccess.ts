import * as k8s from "@pulumi/kubernetes";
import { serviceAccountUsername } from "../k8s/serviceAccount";
import * as pulumi from "@pulumi/pulumi";
import { namespace } from "../k8s/namespace";

/**
 * The identity pull-request previews run as, and the fence that keeps it to dry runs.
 *
 * pulumi-kubernetes previews a change by sending the real request with `dryRun=All` (a server-side apply, a create,
 * or an update for CRDs), so admission webhooks and server defaults show up in the preview. Kubernetes authorizes a
 * dry-run request like the real one, so a read-only identity gets Forbidden, and the provider then quietly falls back
 * to a client-side diff for that object. This identity may therefore create, update and patch what the program
 * manages; a ValidatingAdmissionPolicy refuses every such request from it that is not a dry run.
 */
export interface PreviewAccessArgs {
    /** Namespace of the ServiceAccount; nothing else lives there. */
    namespace?: string;
    /** Name of the ServiceAccount, which is also the name of its ClusterRole, binding and policy. */
    serviceAccount?: string;
    /** What the identity may read and dry-run; defaults to `previewedKinds`. */
    kinds?: PreviewedKind[];
}

/** The resources of one API group, by their plural (RBAC) names. */
export interface PreviewedKind {
    apiGroup: string;
    resources: string[];
}

export const defaultPreviewIdentity = { namespace: "korthweb-preview", serviceAccount: "korthweb-preview" } as const;

/**
 * What the program itself creates (outside its Helm releases), by API group. A Helm release previews client-side in
 * pulumi-kubernetes (its Create and Update do nothing in preview), so the charts' kinds are not needed.
 *
 * Secrets are left out on purpose: a dry-run apply answers with the whole merged object, so patching a Secret reveals
 * its data just as reading it would. A changed Secret therefore previews client-side (the provider falls back on
 * Forbidden), and the identity can read no credential of the cluster.
 */
export const previewedKinds: PreviewedKind[] = [
    { apiGroup: "", resources: ["namespaces", "services", "serviceaccounts", "configmaps", "persistentvolumeclaims"] },
    { apiGroup: "apps", resources: ["deployments"] },
    { apiGroup: "batch", resources: ["cronjobs", "jobs"] },
    { apiGroup: "autoscaling", resources: ["horizontalpodautoscalers"] },
    { apiGroup: "policy", resources: ["poddisruptionbudgets"] },
    { apiGroup: "networking.k8s.io", resources: ["networkpolicies"] },
    { apiGroup: "rbac.authorization.k8s.io", resources: ["clusterroles", "clusterrolebindings", "roles", "rolebindings"] },
    { apiGroup: "admissionregistration.k8s.io", resources: ["validatingadmissionpolicies", "validatingadmissionpolicybindings"] },
    { apiGroup: "cert-manager.io", resources: ["certificates", "clusterissuers"] },
    { apiGroup: "policy.cert-manager.io", resources: ["certificaterequestpolicies"] },
    { apiGroup: "networking.istio.io", resources: ["gateways", "virtualservices", "serviceentries"] },
    { apiGroup: "security.istio.io", resources: ["authorizationpolicies", "peerauthentications"] },
    { apiGroup: "telemetry.istio.io", resources: ["telemetries"] },
    { apiGroup: "monitoring.coreos.com", resources: ["podmonitors", "servicemonitors", "prometheusrules"] },
    { apiGroup: "postgresql.cnpg.io", resources: ["clusters", "poolers", "scheduledbackups", "databases"] },
    { apiGroup: "barmancloud.cnpg.io", resources: ["objectstores"] },
    { apiGroup: "cilium.io", resources: ["ciliumnetworkpolicies"] },
];

/**
 * Read everything listed; create, update and patch it, because a dry run is authorized as the real request would be
 * (server-side apply of a new object needs create as well as patch; a CRD is previewed with an update). No delete: a
 * preview never deletes. No escalate, bind or impersonate.
 */
export function previewClusterRoleRules(kinds: PreviewedKind[]): k8s.types.input.rbac.v1.PolicyRule[] {
    return kinds.map((kind) => ({
        apiGroups: [kind.apiGroup],
        resources: [...kind.resources],
        verbs: ["get", "list", "watch", "create", "update", "patch"],
    }));
}

/**
 * Denies every write by `username` that is not a dry run, on every resource and subresource.
 *
 * Why each piece (kubernetes/apiserver v0.32.0, modelled in tests/upstream/admissionPolicy.ts):
 * - `resources: ["*", "*\/*"]`: "*" matches no subresource, "*\/*" every one.
 * - The match condition guards with `has()`: the request reaches CEL through the unstructured converter, which drops
 *   an empty user name, and a match condition that errors under `failurePolicy: Fail` would refuse every identity's
 *   request.
 * - `request.dryRun` is always set (false or true), for deletes too; a missing one would error and so deny, since the
 *   validation runs only for this identity.
 * - Admission policies have no exemption for admissionregistration objects (webhooks do), so this policy also guards
 *   itself and its binding against the identity.
 */
export function previewAdmissionPolicySpec(username: string): k8s.types.input.admissionregistration.v1.ValidatingAdmissionPolicySpec {
    return {
        failurePolicy: "Fail",
        matchConstraints: {
            resourceRules: [{ apiGroups: ["*"], apiVersions: ["*"], resources: ["*", "*/*"], operations: ["CREATE", "UPDATE", "DELETE", "CONNECT"] }],
        },
        matchConditions: [{ name: "preview-identity", expression: `has(request.userInfo.username) && request.userInfo.username == ${JSON.stringify(username)}` }],
        validations: [
            {
                expression: "request.dryRun == true",
                reason: "Forbidden",
                message: `${username} previews only: it may send dry-run requests, nothing that changes the cluster`,
            },
        ],
    };
}

export function previewAdmissionPolicyBindingSpec(policyName: string): k8s.types.input.admissionregistration.v1.ValidatingAdmissionPolicyBindingSpec {
    return { policyName, validationActions: ["Deny"] };
}

/** A ServiceAccount that may run `pulumi preview` with server-side dry runs, and nothing else. */
export class PreviewAccess extends pulumi.ComponentResource {
    readonly namespace: string;
    readonly serviceAccount: string;

    constructor(name: string, args: PreviewAccessArgs = {}, opts?: pulumi.ComponentResourceOptions) {
        super("korthweb:platform:PreviewAccess", name, {}, opts);
        this.namespace = args.namespace ?? defaultPreviewIdentity.namespace;
        this.serviceAccount = args.serviceAccount ?? defaultPreviewIdentity.serviceAccount;
        const username = serviceAccountUsername(this.namespace, this.serviceAccount);
        const labels = { "app.kubernetes.io/part-of": "korthweb", "app.kubernetes.io/component": "preview-access" };

        const ns = namespace(`${name}-namespace`, { name: this.namespace, enforce: "restricted", istioInjection: false }, { parent: this });
        const account = new k8s.core.v1.ServiceAccount(
            `${name}-service-account`,
            { metadata: { name: this.serviceAccount, namespace: this.namespace, labels }, automountServiceAccountToken: false },
            { parent: this, dependsOn: [ns] },
        );
        const policy = new k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
            `${name}-policy`,
            { metadata: { name: this.serviceAccount, labels }, spec: previewAdmissionPolicySpec(username) },
            { parent: this },
        );
        const binding = new k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
            `${name}-policy-binding`,
            { metadata: { name: this.serviceAccount, labels }, spec: previewAdmissionPolicyBindingSpec(this.serviceAccount) },
            { parent: this, dependsOn: [policy] },
        );
        const role = new k8s.rbac.v1.ClusterRole(
            `${name}-cluster-role`,
            { metadata: { name: this.serviceAccount, labels }, rules: previewClusterRoleRules(args.kinds ?? previewedKinds) },
            { parent: this },
        );
        // The identity gets its rights only once the fence is in force.
        new k8s.rbac.v1.ClusterRoleBinding(
            `${name}-cluster-role-binding`,
            {
                metadata: { name: this.serviceAccount, labels },
                roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: this.serviceAccount },
                subjects: [{ kind: "ServiceAccount", name: this.serviceAccount, namespace: this.namespace }],
            },
            { parent: this, dependsOn: [account, role, binding] },
        );
        this.registerOutputs({ namespace: this.namespace, serviceAccount: this.serviceAccount });
    }
}
