/**
 * Names derived from a tenant's short name. Every place that needs a tenant's namespaces, host names or gateway
 * labels calls this, so validation can check the derived names against Kubernetes' limits before anything exists.
 */
export interface TenantNames {
    /** Orthanc, its database and their credentials. */
    namespace: string;
    /**
     * The tenant's ingress gateway and only what it serves: its server certificate and the client CA. The gateway's
     * service account may list every Secret of its own namespace (Istio checks exactly that before serving a
     * credential), so it must not share a namespace with the database passwords or Orthanc's configuration.
     */
    gatewayNamespace: string;
    /** Helm release of the tenant's own Istio ingress gateway; the chart names its pods, Service and account after it. */
    gatewayRelease: string;
    /** Value of the `istio` label the gateway chart puts on its pods (release name without "istio-"). */
    gatewayIstioLabel: string;
    webHost: string;
    dicomHost: string;
}

/** Suffix Korthweb used for tenant namespaces; kept so existing runbooks (`kubectl -n bhs-orthweb ...`) still work. */
export const tenantNamespaceSuffix = "-orthweb";
export const gatewayNamespaceSuffix = "-gateway";

export function tenantNames(tenantName: string, domain: string): TenantNames {
    // A tenant-specific release name gives each tenant's gateway pods their own labels, so a Gateway object of one
    // tenant can never select another tenant's gateway pods.
    const gatewayRelease = `${tenantName}-ingressgateway`;
    return {
        namespace: `${tenantName}${tenantNamespaceSuffix}`,
        gatewayNamespace: `${tenantName}${gatewayNamespaceSuffix}`,
        gatewayRelease,
        gatewayIstioLabel: gatewayRelease.replace(/^istio-/, ""),
        webHost: `web.${tenantName}.${domain}`,
        dicomHost: `dicom.${tenantName}.${domain}`,
    };
}

/** Orthanc's service account in the tenant namespace: the identity the data tier's walls admit. */
export const orthancServiceAccount = "orthanc";

export function orthancPodLabels(tenant: string): Record<string, string> {
    return { app: "orthanc", "app.kubernetes.io/name": "orthanc", "app.kubernetes.io/instance": tenant };
}

/** The labels that select Orthanc's pods (a subset of `orthancPodLabels`, stable across versions). */
export function orthancSelector(tenant: string): Record<string, string> {
    return { "app.kubernetes.io/name": "orthanc", "app.kubernetes.io/instance": tenant };
}

/**
 * Where people reach a tenant's web UI: `https://<webHost>`, with the node port when the gateway is a NodePort Service
 * (the local stack: `https://web.bhs.local.orthweb.example:30443`). The sign-in's redirect URI, the gatekeeper's
 * same-origin checks and the in-cluster Keycloak's realm address are built from it: a URL without the port people
 * type would send every browser back to a port nothing listens on.
 */
export function tenantWebUrl(names: TenantNames, serviceType: string, nodePorts?: { https?: number }): string {
    const port = serviceType === "NodePort" ? nodePorts?.https : undefined;
    return `https://${names.webHost}${port !== undefined && port !== 443 ? `:${port}` : ""}`;
}
