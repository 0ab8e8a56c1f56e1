import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { IngressConfig, PkiConfig } from "../config/schema";
import { pinnedRelease } from "../k8s/helm";
import { certManagerDuration, certManagerUsages, serverProfile } from "../pki/profile";
import { charts } from "../versions";
import {
    caBundleKey,
    dicomGatewaySpec,
    dicomVirtualServiceSpec,
    gatewaySecrets,
    gatewayServiceSpec,
    gatewayValues,
    webGatewaySpec,
    WebBackend,
    webVirtualServiceSpec,
} from "./ingress";
import { TenantNames } from "../naming/tenantNames";

export interface TenantGatewayArgs {
    tenant: string;
    names: TenantNames;
    ingress: IngressConfig;
    nodePorts?: { https: number; dicom: number };
    pki: PkiConfig;
    /** The tenant's ClusterIssuer, which issues the server certificate. */
    issuerRef: { group: string; kind: string; name: string };
    /** The only CA the DICOM port trusts for client certificates. */
    dicomClientTrustAnchor: pulumi.Input<string>;
    /** The only client certificates the DICOM port accepts (SHA-256 fingerprints). */
    allowedClientFingerprints: pulumi.Input<string[]>;
    /** The gateway namespace, created (with its walls) by the tenant. */
    namespace: pulumi.Resource;
    /** What must exist before the gateway pods start: mesh policies, NetworkPolicies, the sidecar injector, the issuer. */
    dependsOn: pulumi.Input<pulumi.Resource>[];
    /** Istio's and cert-manager's CRDs ready. */
    crdsReady: pulumi.Input<pulumi.Resource>[];
    /** Where the web route goes: the tenant's gatekeeper when its users sign in; Orthanc's REST port when unset. */
    webBackend?: WebBackend;
}

/**
 * The tenant's way in: its own Istio ingress gateway, in a namespace of its own that holds only what the gateway
 * serves (server certificate, client CA), its Service, and the Gateway and VirtualService objects bound to it.
 */
export class TenantGateway extends pulumi.ComponentResource {
    /** The load balancer's IP or host name once the cloud has assigned it, else the Service's cluster IP. */
    readonly address: pulumi.Output<string>;
    /** Node ports of the HTTPS and DICOM ports (with serviceType NodePort). */
    readonly nodePorts: pulumi.Output<{ https?: number; dicom?: number }>;

    constructor(name: string, args: TenantGatewayArgs, opts?: pulumi.ComponentResourceOptions) {
        super("korthweb:tenant:TenantGateway", name, {}, opts);
        const { names } = args;
        const ns = names.gatewayNamespace;
        const inNamespace = { parent: this, dependsOn: [args.namespace] };

        const clientCa = new k8s.core.v1.Secret(
            `${name}-dicom-client-ca`,
            { metadata: { name: gatewaySecrets.dicomClientCa, namespace: ns }, stringData: { [caBundleKey]: args.dicomClientTrustAnchor } },
            inNamespace,
        );
        const server = serverProfile(args.pki);
        const serverCertificate = new k8s.apiextensions.CustomResource(
            `${name}-server-certificate`,
            {
                apiVersion: "cert-manager.io/v1",
                kind: "Certificate",
                metadata: { name: "orthanc-server", namespace: ns },
                spec: {
                    secretName: gatewaySecrets.serverTls,
                    commonName: names.webHost,
                    dnsNames: [names.webHost, names.dicomHost],
                    subject: { organizations: [args.pki.organization] },
                    ...certManagerDuration(server),
                    usages: certManagerUsages(server),
                    privateKey: { algorithm: server.keyAlgorithm, size: server.rsaBits, rotationPolicy: "Always" },
                    issuerRef: args.issuerRef,
                },
            },
            { parent: this, dependsOn: [args.namespace, ...args.dependsOn, ...args.crdsReady] },
        );
        const release = pinnedRelease(
            `${name}-release`,
            { pin: charts.istioGateway, releaseName: names.gatewayRelease, namespace: ns, values: gatewayValues(args.tenant) },
            { parent: this, dependsOn: [args.namespace, ...args.dependsOn, serverCertificate, clientCa] },
        );
        const service = new k8s.core.v1.Service(
            `${name}-service`,
            {
                metadata: { name: names.gatewayRelease, namespace: ns, annotations: args.ingress.annotations },
                spec: gatewayServiceSpec(names, {
                    serviceType: args.ingress.serviceType,
                    nodePorts: args.nodePorts,
                    loadBalancerSourceRanges: args.ingress.loadBalancerSourceRanges,
                }),
            },
            { parent: this, dependsOn: [release] },
        );
        const istioOpts = { parent: this, dependsOn: [args.namespace, ...args.crdsReady] };
        const routes: [string, pulumi.Input<Record<string, unknown>>, Record<string, unknown>][] = [
            ["web", webGatewaySpec(names), webVirtualServiceSpec(names, "web", args.webBackend)],
            [
                "dicom",
                pulumi.output(args.allowedClientFingerprints).apply((fingerprints) => dicomGatewaySpec(names, fingerprints)),
                dicomVirtualServiceSpec(names, "dicom"),
            ],
        ];
        for (const [route, gatewaySpec, virtualServiceSpec] of routes) {
            new k8s.apiextensions.CustomResource(
                `${name}-${route}-gateway`,
                { apiVersion: "networking.istio.io/v1", kind: "Gateway", metadata: { name: route, namespace: ns }, spec: gatewaySpec },
                istioOpts,
            );
            new k8s.apiextensions.CustomResource(
                `${name}-${route}-virtual-service`,
                { apiVersion: "networking.istio.io/v1", kind: "VirtualService", metadata: { name: route, namespace: ns }, spec: virtualServiceSpec },
                istioOpts,
            );
        }

        this.address = pulumi.all([service.status, service.spec]).apply(([status, spec]) => serviceAddress(status, spec));
        this.nodePorts = service.spec.apply(exposedNodePorts);
        this.registerOutputs({ address: this.address, nodePorts: this.nodePorts });
    }
}

/** The load balancer's IP or host name once assigned, else the cluster IP. */
export function serviceAddress(
    status: k8s.types.output.core.v1.ServiceStatus | undefined,
    spec: k8s.types.output.core.v1.ServiceSpec | undefined,
): string {
    const ingress = status?.loadBalancer?.ingress?.[0];
    return ingress?.ip ?? ingress?.hostname ?? spec?.clusterIP ?? "pending";
}

/**
 * The node ports clients are meant to use: a NodePort Service's only. Kubernetes allocates node ports to LoadBalancer
 * Services too (`allocateLoadBalancerNodePorts` defaults to true), but their clients go through the load balancer;
 * reporting those ports made `scripts/run smoke` and `modality-cert` dial nodes instead.
 */
export function exposedNodePorts(spec: k8s.types.output.core.v1.ServiceSpec | undefined): { https?: number; dicom?: number } {
    if (spec?.type !== "NodePort") return {};
    return {
        https: spec.ports?.find((port) => port.name === "https")?.nodePort,
        dicom: spec.ports?.find((port) => port.name === "tls-dicom")?.nodePort,
    };
}
