/**
 * What Pulumi's engine, the Kubernetes provider and Helm wait for and read during `pulumi preview` and `pulumi up`.
 * Read at pulumi/pulumi v3.259.0 (the newest tag of the snapshot; the pinned SDK is 3.270.0), pulumi/pulumi-kubernetes
 * just after v4.32.0 (pinned 4.34.2) and helm/helm v3.20.2 (the Helm that provider vendors):
 * - pulumi/pulumi pkg/resource/deploy/step_generator.go, step.go (ReadStep): a `Resource.get` with a known ID is read
 *   from the cluster during preview too, and `dependsOn` does not delay it (pulumi/pulumi#16395); with an unknown ID
 *   the read is skipped and its outputs are unknown.
 * - pulumi-kubernetes provider/pkg/provider/helm_release.go: a `helm.v3.Release` runs Helm with Wait unless
 *   `skipAwait`; `atomic` also forces Wait; the release `status` is unknown in the preview of a new or changed release.
 * - helm/helm pkg/kube/ready.go: Helm's Wait holds a LoadBalancer Service until it has an ingress address (unless it
 *   has externalIPs); with `atomic`, a timed-out install is uninstalled and an upgrade rolled back.
 * - pulumi-kubernetes provider/pkg/await (Service): a Service created by Pulumi is awaited until its endpoints settle
 *   and, for type LoadBalancer, until it has an ingress address, unless annotated `pulumi.com/skipAwait: "true"`.
 */

export interface ClusterCapabilities {
    /** Whether something assigns LoadBalancer Services an address (a cloud, MetalLB, k3d's servicelb). */
    loadBalancer: boolean;
}

export interface AwaitedService {
    /** Who waits: "helm" (a chart's Service under Wait) or "pulumi" (a Service the program creates). */
    waitedBy: "helm" | "pulumi";
    type: string;
    externalIPs?: string[];
    annotations?: Record<string, string>;
}

/** Why a deployment step would wait forever on this cluster, or undefined when it completes. */
export function neverReady(service: AwaitedService, cluster: ClusterCapabilities): string | undefined {
    if (service.type !== "LoadBalancer" || cluster.loadBalancer) {
        return undefined;
    }
    if (service.waitedBy === "helm" && (service.externalIPs?.length ?? 0) > 0) {
        return undefined;
    }
    if (service.waitedBy === "pulumi" && service.annotations?.["pulumi.com/skipAwait"] === "true") {
        return undefined;
    }
    return `a LoadBalancer Service waited for by ${service.waitedBy} gets no address on a cluster without a load balancer`;
}

export interface ReadRequest {
    type: string;
    /** `undefined` when the ID is unknown in this preview. */
    id: string | undefined;
}

/** The reads that run against the cluster during a preview: every one whose ID is known. */
export function readsRunInPreview(reads: ReadRequest[]): ReadRequest[] {
    return reads.filter((read) => read.id !== undefined);
}

/**
 * Replacing a Kubernetes object, read at pulumi/pulumi v3.259.0 (pkg/resource/deploy/step_generator.go: with
 * `deleteBeforeReplace` the old resource is deleted before the new one is created, otherwise created first) and
 * pulumi-kubernetes after v4.32.0 (provider/pkg/metadata/overrides.go DeletionPropagation: Foreground unless the
 * `pulumi.com/deletionPropagationPolicy` annotation says otherwise; provider/pkg/await/await.go Deletion: waits until
 * the object is gone, which under foreground propagation is after its ReplicaSets and pods).
 * Returns the order in which old and new pods can run.
 */
export function replacementOrder(resource: { deleteBeforeReplace: boolean; annotations?: Record<string, string> }): "old pods gone, then new" | "overlap" {
    const policy = (resource.annotations?.["pulumi.com/deletionPropagationPolicy"] ?? "foreground").toLowerCase();
    return resource.deleteBeforeReplace && policy === "foreground" ? "old pods gone, then new" : "overlap";
}
