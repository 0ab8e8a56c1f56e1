import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { ChartPin, chartReference } from "../versions";

export interface PinnedReleaseArgs {
    /** The chart and exact version, from components/versions.ts. */
    pin: ChartPin;
    /**
     * The Helm release name. Always set: without it Pulumi appends a random suffix, and every Service name derived
     * from the release moves with it.
     */
    releaseName: string;
    namespace: pulumi.Input<string>;
    values: pulumi.Input<Record<string, unknown>>;
}

/**
 * A Helm release of a pinned chart. One place decides how korthweb installs charts: wait for readiness (so dependants
 * start on a working control plane), roll back a failed upgrade, and keep a bounded history.
 */
export function pinnedRelease(
    resourceName: string,
    args: PinnedReleaseArgs,
    opts: pulumi.CustomResourceOptions,
): k8s.helm.v3.Release {
    return new k8s.helm.v3.Release(
        resourceName,
        {
            name: args.releaseName,
            chart: chartReference(args.pin),
            version: args.pin.version,
            repositoryOpts: args.pin.repo ? { repo: args.pin.repo } : undefined,
            namespace: args.namespace,
            createNamespace: false,
            values: args.values,
            atomic: true,
            cleanupOnFail: true,
            maxHistory: 5,
            timeout: 900,
        },
        opts,
    );
}
