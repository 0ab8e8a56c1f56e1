import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

/** Pod Security admission levels, from most to least permissive. */
export type PodSecurityLevel = "privileged" | "baseline" | "restricted";

export interface NamespaceArgs {
    name: string;
    /** Level enforced; warnings and audit entries are always raised against "restricted" so drift is visible. */
    enforce: PodSecurityLevel;
    /** Whether Istio injects its sidecar into this namespace's pods. */
    istioInjection: boolean;
    labels?: Record<string, string>;
}

/**
 * Set by the program on the monitoring namespace it creates, and required by the tenants' walls beside the name: a
 * namespace someone else creates under that name is not Prometheus. Labelling a namespace takes cluster-wide rights.
 */
export const monitoringNamespaceLabels: Readonly<Record<string, string>> = { "korthweb.io/monitoring": "prometheus" };

export function namespaceLabels(args: NamespaceArgs): Record<string, string> {
    return {
        "app.kubernetes.io/part-of": "korthweb",
        "pod-security.kubernetes.io/enforce": args.enforce,
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/audit": "restricted",
        "istio-injection": args.istioInjection ? "enabled" : "disabled",
        ...args.labels,
    };
}

export function namespace(resourceName: string, args: NamespaceArgs, opts: pulumi.CustomResourceOptions) {
    return new k8s.core.v1.Namespace(resourceName, { metadata: { name: args.name, labels: namespaceLabels(args) } }, opts);
}
