/**
 * A tenant's ingress: its own Istio gateway (Helm values) and the Gateway and VirtualService objects bound to it.
 * Pure builders, tested without mocks.
 */
import { IngressConfig } from "../config/schema";
import { TenantNames } from "./naming";

/** Ports exposed to the outside. Envoy listens on the Gateway server's port, so each equals its Service targetPort. */
export const ingressPorts = { https: 443, dicomTls: 11112, status: 15021 } as const;

/** Orthanc's ports inside the pod, behind the Service `orthanc`. */
export const orthancPorts = { http: 8042, dicom: 4242 } as const;
export const orthancServiceName = "orthanc";

/** Secrets the gateway pods read (Istio reads credentials from the gateway pods' namespace: the tenant's). */
export const gatewaySecrets = {
    /** Server certificate for web.<tenant> and dicom.<tenant>, issued and renewed by cert-manager. */
    serverTls: "orthanc-server-tls",
    /** The only CA the DICOM port trusts for client certificates: the tenant CA's trust anchor. */
    dicomClientCa: "orthanc-dicom-client-ca",
} as const;

/**
 * Istio looks for `<credentialName>-cacert` before falling back to the `ca.crt` cert-manager writes (the root, which
 * would admit every tenant's clients). Publishing it with the tenant's trust anchor closes that fallback.
 */
export function cacertSecretName(credentialName: string): string {
    return `${credentialName}-cacert`;
}

export function gatewayValues(names: TenantNames, ingress: IngressConfig, tenant: string): Record<string, unknown> {
    return {
        labels: { "korthweb.io/tenant": tenant },
        service: {
            type: ingress.serviceType,
            annotations: ingress.annotations,
            // Replaces the chart's list whole: no plain-HTTP port is opened.
            ports: [
                { name: "status-port", port: ingressPorts.status, protocol: "TCP", targetPort: ingressPorts.status },
                { name: "https", port: ingressPorts.https, protocol: "TCP", targetPort: ingressPorts.https },
                { name: "tls-dicom", port: ingressPorts.dicomTls, protocol: "TCP", targetPort: ingressPorts.dicomTls },
            ],
            // Keep the client's address visible to the gateway (access logs, future source-range policies).
            ...(ingress.serviceType === "ClusterIP" ? {} : { externalTrafficPolicy: "Local" }),
        },
        autoscaling: { enabled: true, minReplicas: 2, maxReplicas: 5, targetCPUUtilizationPercentage: 80 },
        podDisruptionBudget: { minAvailable: 1 },
        resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "1Gi" } },
        topologySpreadConstraints: [
            {
                maxSkew: 1,
                topologyKey: "kubernetes.io/hostname",
                whenUnsatisfiable: "ScheduleAnyway",
                labelSelector: { matchLabels: gatewaySelector(names) },
            },
        ],
    };
}

/** Selects this tenant's gateway pods only: the label is derived from the tenant-specific release name. */
export function gatewaySelector(names: TenantNames): Record<string, string> {
    return { istio: names.gatewayIstioLabel };
}

export function webGatewaySpec(names: TenantNames): Record<string, unknown> {
    return {
        selector: gatewaySelector(names),
        servers: [
            {
                port: { number: ingressPorts.https, name: "https-web", protocol: "HTTPS" },
                hosts: [names.webHost],
                tls: { mode: "SIMPLE", credentialName: gatewaySecrets.serverTls, minProtocolVersion: "TLSV1_2" },
            },
        ],
    };
}

/**
 * DICOM over TLS. Modalities send no SNI, so the server matches every host name and this port serves one tenant:
 * the reason each tenant has its own gateway address.
 */
export function dicomGatewaySpec(names: TenantNames): Record<string, unknown> {
    return {
        selector: gatewaySelector(names),
        servers: [
            {
                port: { number: ingressPorts.dicomTls, name: "tls-dicom", protocol: "TLS" },
                hosts: ["*"],
                tls: {
                    mode: "MUTUAL",
                    credentialName: gatewaySecrets.serverTls,
                    caCertCredentialName: gatewaySecrets.dicomClientCa,
                    minProtocolVersion: "TLSV1_2",
                },
            },
        ],
    };
}

export function webVirtualServiceSpec(names: TenantNames, gatewayName: string): Record<string, unknown> {
    return {
        hosts: [names.webHost],
        gateways: [gatewayName],
        http: [
            {
                route: [{ destination: { host: orthancHost(names), port: { number: orthancPorts.http } } }],
                // Large studies are uploaded through the REST API; the default 15 s would cut them off.
                timeout: "600s",
            },
        ],
    };
}

export function dicomVirtualServiceSpec(names: TenantNames, gatewayName: string): Record<string, unknown> {
    return {
        hosts: ["*"],
        gateways: [gatewayName],
        tcp: [{ match: [{ port: ingressPorts.dicomTls }], route: [{ destination: { host: orthancHost(names), port: { number: orthancPorts.dicom } } }] }],
    };
}

export function orthancHost(names: TenantNames): string {
    return `${orthancServiceName}.${names.namespace}.svc.cluster.local`;
}
