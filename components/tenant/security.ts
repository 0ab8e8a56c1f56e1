/**
 * A tenant's two walls: Istio authorization (identity-based, enforced by the sidecars) and Kubernetes NetworkPolicies
 * (address-based, enforced by the CNI). Both say the same thing: the gateway reaches Orthanc, Orthanc reaches Pgpool,
 * Pgpool and the PostgreSQL nodes reach each other, and nothing else, in particular nothing from another tenant.
 */
import type * as k8s from "@pulumi/kubernetes";
import { gatewaySelector, ingressPorts, orthancPorts } from "./ingress";
import { TenantNames } from "./naming";
import { postgresPodLabels, postgresService, postgresServiceAccount } from "./postgres";

export const orthancServiceAccount = "orthanc";

export function orthancPodLabels(tenant: string): Record<string, string> {
    return { app: "orthanc", "app.kubernetes.io/name": "orthanc", "app.kubernetes.io/instance": tenant };
}

/** The labels that select Orthanc's pods (a subset of `orthancPodLabels`, stable across versions). */
export function orthancSelector(tenant: string): Record<string, string> {
    return { "app.kubernetes.io/name": "orthanc", "app.kubernetes.io/instance": tenant };
}

export interface PolicyContext {
    tenant: string;
    names: TenantNames;
    istioNamespace: string;
    /** Namespace of Prometheus, allowed to scrape the proxies' metrics ports. */
    monitoringNamespace: string;
}

/** SPIFFE identity of a service account in the tenant's namespace, as the mesh's mutual TLS proves it. */
export function principal(names: TenantNames, serviceAccount: string): string {
    return `cluster.local/ns/${names.namespace}/sa/${serviceAccount}`;
}

const ports = (...numbers: number[]) => numbers.map(String);

export interface NamedSpec<Spec = Record<string, unknown>> {
    name: string;
    spec: Spec;
}

export function authorizationPolicies(ctx: PolicyContext): NamedSpec[] {
    const { names } = ctx;
    const gatewayPrincipal = principal(names, names.gatewayRelease);
    return [
        // An ALLOW policy with no rules matches nothing: every workload here denies what the policies below don't allow.
        { name: "deny-by-default", spec: {} },
        {
            // Clients outside the mesh reach the gateway only on its two TLS ports.
            name: "allow-clients-to-gateway",
            spec: {
                selector: { matchLabels: gatewaySelector(names) },
                action: "ALLOW",
                rules: [{ to: [{ operation: { ports: ports(ingressPorts.https, ingressPorts.dicomTls) } }] }],
            },
        },
        {
            name: "allow-gateway-to-orthanc",
            spec: {
                selector: { matchLabels: orthancSelector(ctx.tenant) },
                action: "ALLOW",
                rules: [
                    {
                        from: [{ source: { principals: [gatewayPrincipal] } }],
                        to: [{ operation: { ports: ports(orthancPorts.http, orthancPorts.dicom) } }],
                    },
                    {
                        // The tenant's own workloads, e.g. an operator's job in the namespace.
                        from: [{ source: { namespaces: [names.namespace] } }],
                        to: [{ operation: { ports: ports(orthancPorts.http, orthancPorts.dicom) } }],
                    },
                ],
            },
        },
        {
            name: "allow-orthanc-to-pgpool",
            spec: {
                selector: { matchLabels: postgresPodLabels.pgpool },
                action: "ALLOW",
                rules: [
                    {
                        from: [{ source: { principals: [principal(names, orthancServiceAccount)] } }],
                        to: [{ operation: { ports: ports(postgresService.port) } }],
                    },
                ],
            },
        },
        {
            // Pgpool's health checks and the PostgreSQL nodes' replication share the chart's one service account.
            name: "allow-replication-to-postgresql",
            spec: {
                selector: { matchLabels: postgresPodLabels.postgresql },
                action: "ALLOW",
                rules: [
                    {
                        from: [{ source: { principals: [principal(names, postgresServiceAccount)] } }],
                        to: [{ operation: { ports: ports(postgresService.port) } }],
                    },
                ],
            },
        },
    ];
}

const tcp = (port: number) => ({ protocol: "TCP", port });
const podsLabelled = (matchLabels: Record<string, string>) => ({ podSelector: { matchLabels } });
const namespaceNamed = (name: string) => ({ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": name } } });

export function networkPolicies(ctx: PolicyContext): NamedSpec<k8s.types.input.networking.v1.NetworkPolicySpec>[] {
    const { names } = ctx;
    const gatewayPods = gatewaySelector(names);
    const orthancPods = orthancSelector(ctx.tenant);
    return [
        { name: "default-deny", spec: { podSelector: {}, policyTypes: ["Ingress", "Egress"] } },
        {
            // Every pod resolves names and fetches its mesh configuration and certificates from istiod.
            name: "allow-dns-and-istiod",
            spec: {
                podSelector: {},
                policyTypes: ["Egress"],
                egress: [
                    {
                        to: [{ ...namespaceNamed("kube-system"), podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }],
                        ports: [{ protocol: "UDP", port: 53 }, tcp(53)],
                    },
                    {
                        to: [{ ...namespaceNamed(ctx.istioNamespace), podSelector: { matchLabels: { app: "istiod" } } }],
                        ports: [tcp(15012)],
                    },
                ],
            },
        },
        {
            name: "allow-clients-to-gateway",
            spec: {
                podSelector: { matchLabels: gatewayPods },
                policyTypes: ["Ingress", "Egress"],
                ingress: [{ ports: [tcp(ingressPorts.https), tcp(ingressPorts.dicomTls), tcp(ingressPorts.status)] }],
                egress: [{ to: [podsLabelled(orthancPods)], ports: [tcp(orthancPorts.http), tcp(orthancPorts.dicom)] }],
            },
        },
        {
            name: "allow-orthanc",
            spec: {
                podSelector: { matchLabels: orthancPods },
                policyTypes: ["Ingress", "Egress"],
                // Same namespace only: the gateway and the tenant's own workloads.
                ingress: [{ from: [{ podSelector: {} }], ports: [tcp(orthancPorts.http), tcp(orthancPorts.dicom)] }],
                egress: [{ to: [podsLabelled(postgresPodLabels.pgpool)], ports: [tcp(postgresService.port)] }],
            },
        },
        {
            name: "allow-pgpool",
            spec: {
                podSelector: { matchLabels: postgresPodLabels.pgpool },
                policyTypes: ["Ingress", "Egress"],
                ingress: [{ from: [podsLabelled(orthancPods)], ports: [tcp(postgresService.port)] }],
                egress: [{ to: [podsLabelled(postgresPodLabels.postgresql)], ports: [tcp(postgresService.port)] }],
            },
        },
        {
            name: "allow-postgresql-replication",
            spec: {
                podSelector: { matchLabels: postgresPodLabels.postgresql },
                policyTypes: ["Ingress", "Egress"],
                ingress: [
                    {
                        from: [podsLabelled(postgresPodLabels.pgpool), podsLabelled(postgresPodLabels.postgresql)],
                        ports: [tcp(postgresService.port)],
                    },
                ],
                egress: [{ to: [podsLabelled(postgresPodLabels.postgresql)], ports: [tcp(postgresService.port)] }],
            },
        },
        {
            // Prometheus scrapes the proxies' merged metrics (15020) and Envoy's own (15090); nothing else.
            name: "allow-monitoring-scrapes",
            spec: {
                podSelector: {},
                policyTypes: ["Ingress"],
                ingress: [{ from: [namespaceNamed(ctx.monitoringNamespace)], ports: [tcp(15020), tcp(15090)] }],
            },
        },
    ];
}
