import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { pinnedRelease } from "../k8s/helm";
import { namespace } from "../k8s/namespace";
import { charts } from "../versions";

export interface CertManagerArgs {
    namespace?: string;
}

/**
 * cert-manager with its CRDs, and approver-policy, which alone approves certificate requests: each tenant's
 * CertificateRequestPolicy (components/tenant/pki.ts) admits its gateway's server certificate and nothing else.
 * Tenants' Issuers, Certificates and policies wait on `crdsReady`.
 */
export class CertManager extends pulumi.ComponentResource {
    readonly namespace: string;
    readonly release: k8s.helm.v3.Release;
    readonly approverPolicy: k8s.helm.v3.Release;
    readonly crdsReady: pulumi.Resource[];
    /** The identity under which cert-manager turns a Certificate into a CertificateRequest: what policies bind. */
    readonly controllerServiceAccount: { name: string; namespace: string };

    constructor(name: string, args: CertManagerArgs = {}, opts?: pulumi.ComponentResourceOptions) {
        super("korthweb:platform:CertManager", name, {}, opts);
        this.namespace = args.namespace ?? "cert-manager";
        const ns = namespace(
            `${name}-namespace`,
            { name: this.namespace, enforce: "restricted", istioInjection: false },
            { parent: this },
        );
        this.release = pinnedRelease(
            `${name}-release`,
            { pin: charts.certManager, releaseName: "cert-manager", namespace: this.namespace, values: certManagerValues() },
            { parent: this, dependsOn: [ns] },
        );
        // After cert-manager: its webhook approves nothing itself and checks approver-policy's approvals against RBAC.
        this.approverPolicy = pinnedRelease(
            `${name}-approver-policy`,
            { pin: charts.approverPolicy, releaseName: approverPolicyReleaseName, namespace: this.namespace, values: approverPolicyValues() },
            { parent: this, dependsOn: [ns, this.release] },
        );
        this.crdsReady = [this.release, this.approverPolicy];
        // The chart's service account is its full name, which is the release name "cert-manager".
        this.controllerServiceAccount = { name: "cert-manager", namespace: this.namespace };
        this.registerOutputs({ namespace: this.namespace });
    }
}

export const approverPolicyReleaseName = "cert-manager-approver-policy";

export function certManagerValues(): Record<string, unknown> {
    return {
        // Issuance is scoped (issue 18): namespace editors get no cert-manager rights through `edit`/`admin` (the chart
        // aggregates cert-manager-edit into them by default), and no request is approved merely for naming a
        // cert-manager.io issuer: approver-policy decides, by the tenants' CertificateRequestPolicies.
        global: { rbac: { aggregateClusterRoles: false } },
        disableAutoApproval: true,
        // `installCRDs` is deprecated. `keep` leaves the CRDs (and so every Certificate) in place if the release is
        // ever uninstalled, instead of cascading through all tenants.
        crds: { enabled: true, keep: true },
        replicaCount: 2,
        podDisruptionBudget: { enabled: true, minAvailable: 1 },
        resources: { requests: { cpu: "50m", memory: "128Mi" }, limits: { memory: "512Mi" } },
        webhook: {
            replicaCount: 2,
            podDisruptionBudget: { enabled: true, minAvailable: 1 },
            resources: { requests: { cpu: "20m", memory: "64Mi" }, limits: { memory: "256Mi" } },
        },
        cainjector: {
            replicaCount: 1,
            resources: { requests: { cpu: "20m", memory: "128Mi" }, limits: { memory: "512Mi" } },
        },
        // The metrics Service (port 9402). Its ServiceMonitor is Observability's, not the chart's `servicemonitor`, which
        // would need the Prometheus Operator's CRDs before this release (see certManagerServiceMonitorSpec).
        prometheus: { enabled: true, servicemonitor: { enabled: false } },
    };
}

export function approverPolicyValues(): Record<string, unknown> {
    return {
        // `keep`, as for cert-manager's: uninstalling the release must not delete every tenant's policy.
        crds: { enabled: true, keep: true },
        // One replica approves; a second keeps renewals approved through a node drain.
        replicaCount: 2,
        podDisruptionBudget: { enabled: true, minAvailable: 1 },
        resources: { requests: { cpu: "20m", memory: "64Mi" }, limits: { memory: "256Mi" } },
    };
}

/** A CertificateRequestPolicy with the RBAC that binds it: plain data, for tests. */
export interface IssuancePolicy {
    /** approver-policy's CertificateRequestPolicy (cluster-scoped). */
    policy: { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; spec: Record<string, any> };
    /** Grants `use` of the policy, in the requests' namespace only. */
    role: { metadata: { name: string; namespace: string }; rules: { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames: string[] }[] };
    roleBinding: {
        metadata: { name: string; namespace: string };
        roleRef: { apiGroup: string; kind: string; name: string };
        subjects: { kind: string; name: string; namespace: string }[];
    };
}

export interface IssuancePolicyArgs {
    name: string;
    labels?: Record<string, string>;
    issuerRef: { group: string; kind: string; name: string };
    /** The one namespace whose requests the policy admits. */
    namespace: string;
    /** Who may use it there: cert-manager's controller, which makes the requests of Certificates. */
    requester: { name: string; namespace: string };
    /** approver-policy's `allowed` and `constraints` blocks. */
    allowed: Record<string, unknown>;
    constraints?: Record<string, unknown>;
}

/**
 * What one issuer may sign, for approver-policy (cert-manager/approver-policy v0.27.0, pkg/internal/approver/manager):
 * it approves a request only when a policy selects it by issuer and namespace, is bound to the requester by RBAC
 * (`use`, checked in the request's namespace) and admits every attribute; anything else stays unapproved and is never
 * signed. The Role and its binding live in that namespace, so the policy is usable nowhere else.
 */
export function issuancePolicy(args: IssuancePolicyArgs): IssuancePolicy {
    const roleName = `${args.name}-policy`;
    return {
        policy: {
            apiVersion: "policy.cert-manager.io/v1alpha1",
            kind: "CertificateRequestPolicy",
            metadata: { name: args.name, ...(args.labels ? { labels: args.labels } : {}) },
            spec: {
                selector: { issuerRef: { ...args.issuerRef }, namespace: { matchNames: [args.namespace] } },
                allowed: args.allowed,
                ...(args.constraints ? { constraints: args.constraints } : {}),
            },
        },
        role: {
            metadata: { name: roleName, namespace: args.namespace },
            rules: [{ apiGroups: ["policy.cert-manager.io"], resources: ["certificaterequestpolicies"], verbs: ["use"], resourceNames: [args.name] }],
        },
        roleBinding: {
            metadata: { name: roleName, namespace: args.namespace },
            roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: roleName },
            subjects: [{ kind: "ServiceAccount", name: args.requester.name, namespace: args.requester.namespace }],
        },
    };
}

/** Creates a policy and its RBAC; returns them, for what must wait until the issuer's requests can be approved. */
export function createIssuancePolicy(name: string, scope: IssuancePolicy, opts: pulumi.CustomResourceOptions): pulumi.Resource[] {
    const policy = new k8s.apiextensions.CustomResource(`${name}-issuance-policy`, scope.policy, opts);
    const role = new k8s.rbac.v1.Role(`${name}-issuance-policy-use`, scope.role, opts);
    const dependsOn = [...((opts.dependsOn as pulumi.Input<pulumi.Resource>[] | undefined) ?? []), role];
    const binding = new k8s.rbac.v1.RoleBinding(`${name}-issuance-policy-use`, scope.roleBinding, { ...opts, dependsOn });
    return [policy, role, binding];
}
