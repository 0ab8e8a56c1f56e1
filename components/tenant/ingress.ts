/**
 * A tenant's ingress: its own Istio gateway (Helm values) and the Gateway and VirtualService objects bound to it.
 * Pure builders, tested without mocks.
 */
import type * as k8s from "@pulumi/kubernetes";
import { IngressConfig } from "../config/schema";
import { TenantNames } from "../naming/tenantNames";

/** Ports exposed to the outside. Envoy listens on the Gateway server's port, so each equals its Service targetPort. */
export const ingressPorts = { https: 443, dicomTls: 11112 } as const;
/** The gateway pods' health port (kubelet probes only; not exposed by the Service). */
export const gatewayStatusPort = 15021;

/** Orthanc's ports inside the pod, behind the Service `orthanc`. */
export const orthancPorts = { http: 8042, dicom: 4242 } as const;
export const orthancServiceName = "orthanc";

/**
 * Secrets the gateway pods serve. Istio reads a Gateway's credentials from the namespace of the gateway pods, the
 * tenant's gateway namespace, which holds these and nothing else.
 */
export const gatewaySecrets = {
    /** Server certificate for web.<tenant> and dicom.<tenant>, issued and renewed by cert-manager. */
    serverTls: "orthanc-server-tls",
    /**
     * The only CA the DICOM port trusts for client certificates: the tenant CA's trust anchor. Istio reads a
     * `caCertCredentialName` as a CA bundle only when the name ends in "-cacert"; any other name is read as a key and
     * certificate, and a secret holding only a CA fails every handshake (tests/upstream/istio.ts, `resolveServerTls`).
     */
    dicomClientCa: "dicom-clients-cacert",
} as const;

/** Keys Istio reads a CA bundle from; `cacert` is looked at first. */
export const caBundleKey = "cacert";

/**
 * Helm values of the tenant's gateway release. The chart's Service is off: the program creates the Service itself
 * (`gatewayServiceSpec`), so its address and node ports are outputs of a resource it owns instead of a read of an
 * object a chart made, which a first preview cannot do.
 */
export function gatewayValues(tenant: string): Record<string, unknown> {
    return {
        labels: { "korthweb.io/tenant": tenant },
        service: { type: "None" },
        autoscaling: { enabled: true, minReplicas: 2, maxReplicas: 5, targetCPUUtilizationPercentage: 80 },
        podDisruptionBudget: { minAvailable: 1 },
        resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "1Gi" } },
        topologySpreadConstraints: [
            {
                maxSkew: 1,
                topologyKey: "kubernetes.io/hostname",
                whenUnsatisfiable: "ScheduleAnyway",
                labelSelector: { matchLabels: { "korthweb.io/tenant": tenant } },
            },
        ],
    };
}

/** Labels the gateway chart puts on its pods: `app` is the release name, `istio` the release name without "istio-". */
export function gatewayPodLabels(names: TenantNames): Record<string, string> {
    return { app: names.gatewayRelease, istio: names.gatewayIstioLabel };
}

/** Selects this tenant's gateway pods only: the label is derived from the tenant-specific release name. */
export function gatewaySelector(names: TenantNames): Record<string, string> {
    return { istio: names.gatewayIstioLabel };
}

export interface GatewayServiceInput {
    serviceType: IngressConfig["serviceType"];
    /** Fixed node ports, with serviceType NodePort. */
    nodePorts?: { https: number; dicom: number };
    /** The client networks a LoadBalancer admits (CIDR blocks); any when unset. */
    loadBalancerSourceRanges?: string[];
}

/**
 * The gateway's Service. Envoy listens on the Gateway servers' port numbers, so each port's targetPort equals its
 * Gateway server port. No plain-HTTP port is opened.
 */
export function gatewayServiceSpec(names: TenantNames, input: GatewayServiceInput): k8s.types.input.core.v1.ServiceSpec {
    const nodePort = (port: "https" | "dicom") => (input.nodePorts ? { nodePort: input.nodePorts[port] } : {});
    return {
        type: input.serviceType,
        selector: gatewayPodLabels(names),
        ports: [
            { name: "https", port: ingressPorts.https, protocol: "TCP", targetPort: ingressPorts.https, ...nodePort("https") },
            { name: "tls-dicom", port: ingressPorts.dicomTls, protocol: "TCP", targetPort: ingressPorts.dicomTls, ...nodePort("dicom") },
        ],
        // Keep the client's address visible to the gateway (access logs, future source-range policies).
        ...(input.serviceType === "ClusterIP" ? {} : { externalTrafficPolicy: "Local" }),
        ...(input.serviceType === "LoadBalancer" && input.loadBalancerSourceRanges ? { loadBalancerSourceRanges: input.loadBalancerSourceRanges } : {}),
    };
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
 * A SHA-256 no certificate has: with no modality configured, the allow-list still refuses every client (an empty list
 * would accept any certificate the tenant CA ever signed).
 */
export const noClientFingerprint = "0".repeat(64);

/**
 * DICOM over TLS. Modalities send no SNI, so the server matches every host name and this port serves one tenant:
 * the reason each tenant has its own gateway address. A client needs a certificate from the tenant CA and, on top,
 * one of the configured modalities' own certificates (`verifyCertificateHash`): a modality removed from the
 * configuration, or whose certificate was replaced, is refused from the next deployment on, whatever its certificate's
 * remaining validity.
 */
export function dicomGatewaySpec(names: TenantNames, allowedClientFingerprints: string[]): Record<string, unknown> {
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
                    verifyCertificateHash: allowedClientFingerprints.length > 0 ? [...allowedClientFingerprints].sort() : [noClientFingerprint],
                    minProtocolVersion: "TLSV1_2",
                },
            },
        ],
    };
}

/**
 * The web route: every request of the tenant's web host, to `backend`: Orthanc's REST port, or the tenant's gatekeeper
 * when its users sign in (components/identity/identity.ts). The response headers are set here, on the gateway, and the
 * cross-site write rules apply to the gateway's HTTPS port (security.ts): both hold whichever backend answers.
 */
export function webVirtualServiceSpec(names: TenantNames, gatewayName: string, backend: WebBackend = orthancWebBackend(names)): Record<string, unknown> {
    return {
        hosts: [names.webHost],
        gateways: [gatewayName],
        // Only the gateway in this namespace uses the route; no sidecar anywhere gets it.
        exportTo: ["."],
        http: [
            ...(backend.prefixed
                ? [
                      {
                          match: backend.prefixed.prefixes.map((prefix) => ({ uri: { prefix } })),
                          route: [{ destination: { host: backend.prefixed.host, port: { number: backend.prefixed.port } } }],
                          // The same headers as the rest of the origin: a page of the realm is a page of this site.
                          headers: { response: { set: webResponseHeaders } },
                      },
                  ]
                : []),
            {
                route: [{ destination: { host: backend.host, port: { number: backend.port } } }],
                // Large studies are uploaded through the REST API; the default 15 s would cut them off.
                timeout: `${webRouteTimeoutSeconds}s`,
                headers: { response: { set: webResponseHeaders } },
            },
        ],
    };
}

/**
 * The web UIs' Content-Security-Policy. It keeps the browser to the tenant's own origin (scripts, styles, images,
 * fetches, workers, form targets) and forbids framing by any page (clickjacking). Scripts are not held to hashes or
 * nonces: the viewers the image serves need inline scripts (OHIF's index.html has two), eval and WebAssembly (OHIF's
 * codecs, Stone Web Viewer), workers from blob: URLs, and inline styles. OHIF is proven to render under it
 * (tests/integration/viewer.test.ts); Orthanc Explorer 2 and Stone cannot be run here.
 */
export const webContentSecurityPolicy = [
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline' 'unsafe-eval' 'wasm-unsafe-eval' blob:",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self' data: blob:",
    "worker-src 'self' blob:",
    "media-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
].join("; ");

/**
 * Set by the gateway on every answer of the web route (replacing whatever Orthanc or a plugin sent).
 * `Referrer-Policy: same-origin` keeps URLs, whose query strings can carry patient names (QIDO-RS), from leaving the
 * tenant's origin; `no-referrer` would also make Chromium send `Origin: null` on the UIs' own POSTs (Fetch standard),
 * which older browsers' requests would then be refused for (security.ts, crossSiteWriteRules).
 */
export const webResponseHeaders: Record<string, string> = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Content-Security-Policy": webContentSecurityPolicy,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    // For browsers that ignore CSP's frame-ancestors.
    "X-Frame-Options": "DENY",
};

export function dicomVirtualServiceSpec(names: TenantNames, gatewayName: string): Record<string, unknown> {
    return {
        hosts: ["*"],
        gateways: [gatewayName],
        exportTo: ["."],
        tcp: [{ match: [{ port: ingressPorts.dicomTls }], route: [{ destination: { host: orthancHost(names), port: { number: orthancPorts.dicom } } }] }],
    };
}

/** Where the gateway sends the web route. */
/**
 * How long the gateway waits for a web request's whole answer. The gatekeeper gives Orthanc as long to stay silent
 * (`GatekeeperConfig.orthancIdleTimeoutSeconds`): after that the client has been answered 504 by the gateway anyway.
 */
export const webRouteTimeoutSeconds = 600;

export interface WebBackend {
    host: string;
    port: number;
    /**
     * Paths served by someone else on the same host, routed before the rest: the tenant's realm of the in-cluster
     * Keycloak, whose sign-in form posts to, and redirects within, the same origin.
     */
    prefixed?: { prefixes: string[]; host: string; port: number };
}

export function orthancWebBackend(names: TenantNames): WebBackend {
    return { host: orthancHost(names), port: orthancPorts.http };
}

export function orthancHost(names: TenantNames): string {
    return `${orthancServiceName}.${names.namespace}.svc.cluster.local`;
}
