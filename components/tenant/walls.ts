import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { strictMtlsSpec } from "../k8s/walls";
import { PolicyContext, authorizationPolicies, egressServiceEntries, networkPolicies } from "./security";

export interface TenantWallsArgs {
    context: PolicyContext;
    /** The tenant's namespaces, which the walls go into. */
    namespaces: pulumi.Resource[];
    /** Istio's CRDs and validating webhook ready. */
    istioCrdsReady: pulumi.Input<pulumi.Resource>[];
}

/**
 * Both walls in both of the tenant's namespaces: STRICT mutual TLS, deny-by-default Istio authorization with the few
 * identity-based exceptions, and default-deny NetworkPolicies with the few address-based ones; and the only ways out,
 * to the modalities Orthanc sends to. Workloads wait on
 * `ready`, so no pod of the tenant ever runs without them.
 */
export class TenantWalls extends pulumi.ComponentResource {
    readonly ready: pulumi.Resource[];

    constructor(name: string, args: TenantWallsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("korthweb:tenant:TenantWalls", name, {}, opts);
        const { names } = args.context;
        const istioOpts = { parent: this, dependsOn: [...args.namespaces, ...args.istioCrdsReady] };
        const istioObject = (resourceName: string, kind: string, namespace: string, objectName: string, spec: Record<string, unknown>) =>
            new k8s.apiextensions.CustomResource(
                resourceName,
                {
                    apiVersion: kind === "ServiceEntry" ? "networking.istio.io/v1" : "security.istio.io/v1",
                    kind,
                    metadata: { name: objectName, namespace },
                    spec,
                },
                istioOpts,
            );
        const strictMtls = [names.namespace, names.gatewayNamespace].map((namespace) =>
            istioObject(`${name}-strict-mtls-${namespace}`, "PeerAuthentication", namespace, "default", strictMtlsSpec()),
        );
        const authorization = authorizationPolicies(args.context).map((policy) =>
            istioObject(`${name}-authz-${policy.namespace}-${policy.name}`, "AuthorizationPolicy", policy.namespace, policy.name, policy.spec),
        );
        const network = networkPolicies(args.context).map(
            (policy) =>
                new k8s.networking.v1.NetworkPolicy(
                    `${name}-netpol-${policy.namespace}-${policy.name}`,
                    { metadata: { name: policy.name, namespace: policy.namespace }, spec: policy.spec },
                    { parent: this, dependsOn: args.namespaces },
                ),
        );
        const egress = egressServiceEntries(args.context).map((entry) =>
            istioObject(`${name}-egress-${entry.name}`, "ServiceEntry", entry.namespace, entry.name, entry.spec),
        );
        // The CNI's own policies (Cilium's egress by name), whose CRDs the cluster's CNI installed.
        const cni = (args.context.database.cniPolicies ?? []).map(
            (policy) =>
                new k8s.apiextensions.CustomResource(
                    `${name}-cni-${policy.namespace}-${policy.name}`,
                    { apiVersion: policy.apiVersion, kind: policy.kind, metadata: { name: policy.name, namespace: policy.namespace, annotations: policy.annotations }, spec: policy.spec },
                    { parent: this, dependsOn: args.namespaces },
                ),
        );
        this.ready = [...strictMtls, ...authorization, ...network, ...egress, ...cni];
        this.registerOutputs({});
    }
}
