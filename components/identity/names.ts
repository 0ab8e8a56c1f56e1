/**
 * Names of a tenant's gatekeeper that other components need (Orthanc's configuration, the alerts) without the
 * gatekeeper's builders: a leaf module, so that neither imports the other (components/ has no import cycle).
 */
/** The name of every object of a tenant's gatekeeper, in the tenant namespace (Deployment, Service, account, ...). */
export const gatekeeperName = "gatekeeper";
/** Orthanc's user for the gatekeeper (a RegisteredUsers entry beside the break-glass `admin`). */
export const gatekeeperOrthancUser = "gatekeeper";
/** The port the gatekeeper listens on (plain HTTP inside the pod; the sidecar holds the mesh's mutual TLS). */
export const gatekeeperPort = 8080;
/** Where the gatekeeper serves its metrics, on the pod's loopback only (its sidecar fetches them for Prometheus). */
export const gatekeeperMetricsPort = 9464;

/** The labels that select a tenant's gatekeeper pods (the audit database's walls admit them too). */
export function gatekeeperSelector(tenant: string): Record<string, string> {
    return { "app.kubernetes.io/name": gatekeeperName, "app.kubernetes.io/instance": tenant };
}
