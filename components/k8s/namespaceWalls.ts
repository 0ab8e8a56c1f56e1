import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { type NamedSpec, strictMtlsSpec } from "./walls";

export interface NamespaceWallsArgs {
    namespace: pulumi.Resource;
    /** The namespace's NetworkPolicies and Istio AuthorizationPolicies, from a pure builder. */
    network: NamedSpec<k8s.types.input.networking.v1.NetworkPolicySpec>[];
    authorization: NamedSpec[];
    /** Istio's CRDs: PeerAuthentication and AuthorizationPolicy are their kinds. */
    istioCrdsReady: pulumi.Input<pulumi.Resource>[];
}

/**
 * A platform namespace's walls as resources: STRICT mutual TLS for the namespace, and the policies its builder gives.
 * Its workloads wait on `ready`, so none runs a moment without them.
 */
export class NamespaceWalls extends pulumi.ComponentResource {
    readonly ready: pulumi.Resource[];

    constructor(name: string, args: NamespaceWallsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("korthweb:k8s:NamespaceWalls", name, {}, opts);
        const istioOpts = { parent: this, dependsOn: [args.namespace, ...args.istioCrdsReady] };
        const namespaceName = (args.network[0] ?? args.authorization[0])?.namespace;
        const istioObject = (resource: string, kind: string, objectName: string, spec: Record<string, unknown>) =>
            new k8s.apiextensions.CustomResource(resource, { apiVersion: "security.istio.io/v1", kind, metadata: { name: objectName, namespace: namespaceName }, spec }, istioOpts);
        this.ready = [
            istioObject(`${name}-strict-mtls`, "PeerAuthentication", "default", strictMtlsSpec()),
            ...args.network.map(
                (policy) =>
                    new k8s.networking.v1.NetworkPolicy(`${name}-np-${policy.name}`, { metadata: { name: policy.name, namespace: policy.namespace }, spec: policy.spec }, { parent: this, dependsOn: [args.namespace] }),
            ),
            ...args.authorization.map((policy) => istioObject(`${name}-authz-${policy.name}`, "AuthorizationPolicy", policy.name, policy.spec)),
        ];
        this.registerOutputs({});
    }
}
