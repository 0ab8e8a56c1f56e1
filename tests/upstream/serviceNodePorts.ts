/**
 * Which node ports the API server gives a Service: every port of a NodePort Service, and of a LoadBalancer Service
 * too unless `allocateLoadBalancerNodePorts` is false ("Default is true": the ServiceSpec field's API documentation,
 * as @pulumi/kubernetes 4.34.2 carries it in types/output.d.ts); none for ClusterIP. A port that names its nodePort
 * keeps it; the others get one from the node-port range (30000-32767 by default).
 */
import type * as k8s from "@pulumi/kubernetes";

export function withAllocatedNodePorts(spec: k8s.types.input.core.v1.ServiceSpec & { type?: string }): k8s.types.output.core.v1.ServiceSpec {
    const allocates = spec.type === "NodePort" || (spec.type === "LoadBalancer" && spec.allocateLoadBalancerNodePorts !== false);
    let next = 30000;
    const ports = ((spec.ports ?? []) as k8s.types.output.core.v1.ServicePort[]).map((port) =>
        allocates ? { ...port, nodePort: port.nodePort ?? next++ } : port,
    );
    return { ...(spec as k8s.types.output.core.v1.ServiceSpec), ports };
}
