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
