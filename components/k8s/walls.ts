/**
 * The pieces every tier's walls are built from: the mesh identity of a service account, selectors and ports for
 * NetworkPolicies, the policy objects' shape. The tenant's walls (components/tenant/security.ts), the data tier's
 * (components/data/) and the platform's use them; they import none of those.
 */
import type * as k8s from "@pulumi/kubernetes";
import type { DnsConfig } from "../config/schema";
import { monitoringNamespaceLabels } from "./namespace";

/** SPIFFE identity of a service account, as the mesh's mutual TLS proves it. */
export function principal(namespace: string, serviceAccount: string): string {
    return `cluster.local/ns/${namespace}/sa/${serviceAccount}`;
}

export interface NamedSpec<Spec = Record<string, unknown>> {
    /** The tenant namespace or the tenant's gateway namespace. */
    namespace: string;
    name: string;
    spec: Spec;
}

/** A CNI's own policy object (apiVersion and kind given), in the tenant namespace. */
export interface CniPolicy extends NamedSpec {
    apiVersion: string;
    kind: string;
    /** Annotations of the object, e.g. what Pulumi waits for. */
    annotations?: Record<string, string>;
}

export const tcp = (port: number) => ({ protocol: "TCP", port });

/**
 * Every pod's way to DNS: the DNS pods by namespace and labels and/or the addresses pods query, on the configured
 * ports over UDP and TCP. A NetworkPolicy sees the pod's port after the Service's translation: OpenShift's DNS pods
 * answer on 5353 behind the Service's 53, so 53 alone would refuse every query there.
 */
export function dnsEgress(dns: DnsConfig): k8s.types.input.networking.v1.NetworkPolicyEgressRule {
    const pods = dns.namespace !== undefined ? [{ ...namespaceNamed(dns.namespace), podSelector: { matchLabels: { ...dns.podLabels } } }] : [];
    const addresses = (dns.addresses ?? []).map((cidr) => ({ ipBlock: { cidr } }));
    return { to: [...pods, ...addresses], ports: dns.ports.flatMap((port) => [{ protocol: "UDP", port }, tcp(port)]) };
}
export const podsLabelled = (matchLabels: Record<string, string>) => ({ podSelector: { matchLabels } });
export const namespaceNamed = (name: string) => ({ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": name } } });
/** The monitoring namespace the program created: its name and the program's label, not the name alone. */
export const monitoringNamespaceSelector = (name: string) => ({
    namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": name, ...monitoringNamespaceLabels } },
});

/**
 * The floor of a platform namespace's walls (the object store's, Keycloak's): a NetworkPolicy that denies everything,
 * and one that lets every pod resolve names and reach istiod for its mesh configuration and certificates. The ways in
 * and out each workload needs come on top, by NetworkPolicy and by Istio identity.
 */
export function namespaceFloor(namespace: string, istioNamespace: string, dns: DnsConfig): NamedSpec<k8s.types.input.networking.v1.NetworkPolicySpec>[] {
    return [
        { namespace, name: "default-deny", spec: { podSelector: {}, policyTypes: ["Ingress", "Egress"] } },
        {
            namespace,
            name: "allow-dns-and-istiod",
            spec: {
                podSelector: {},
                policyTypes: ["Egress"],
                egress: [dnsEgress(dns), { to: [{ ...namespaceNamed(istioNamespace), podSelector: { matchLabels: { app: "istiod" } } }], ports: [tcp(15012)] }],
            },
        },
    ];
}

/** STRICT mutual TLS: a PeerAuthentication's spec, mesh-wide or for one namespace. */
export function strictMtlsSpec(): Record<string, unknown> {
    return { mtls: { mode: "STRICT" } };
}

/** An AuthorizationPolicy with no selector and no rules: it allows nothing, so a workload no policy names answers nobody. */
export const denyByDefault = (namespace: string): NamedSpec => ({ namespace, name: "deny-by-default", spec: {} });
