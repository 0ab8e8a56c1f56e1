import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { pinnedRelease } from "../k8s/helm";
import { namespace } from "../k8s/namespace";
import { charts } from "../versions";

export interface CertManagerArgs {
    namespace?: string;
}

/** cert-manager with its CRDs. Tenants' Issuers and Certificates wait on `crdsReady`. */
export class CertManager extends pulumi.ComponentResource {
    readonly namespace: string;
    readonly release: k8s.helm.v3.Release;
    readonly crdsReady: pulumi.Resource[];

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
        this.crdsReady = [this.release];
        this.registerOutputs({ namespace: this.namespace });
    }
}

export function certManagerValues(): Record<string, unknown> {
    return {
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
