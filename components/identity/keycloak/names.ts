/**
 * Names of the in-cluster Keycloak that the tenants' walls and routes need (their gateway sends the realm's paths to
 * it, their gatekeeper reads its backchannel): a leaf module, like ../names.ts.
 */
export const keycloakNamespace = "keycloak";
/**
 * The release, and the chart's fullname (`fullnameOverride`): its StatefulSet `keycloak`, Services `keycloak-http`
 * and `keycloak-headless`, ServiceAccount `keycloak` (codecentric/helm-charts keycloakx-7.1.11
 * charts/keycloakx/templates/_helpers.tpl `keycloak.fullname`, service-http.yaml, statefulset.yaml).
 */
export const keycloakRelease = "keycloak";
/** The chart's selector labels on the pods (`keycloak.selectorLabels`: the chart's name and the release). */
export const keycloakPodLabels = { "app.kubernetes.io/name": "keycloakx", "app.kubernetes.io/instance": keycloakRelease } as const;
/**
 * Ports: the container serves HTTP on 8080 (port `http`) and its management interface (health, metrics) on 9000
 * (`http-internal`); the Service maps 80 to `http` (statefulset.yaml, service-http.yaml).
 */
export const keycloakPorts = { container: 8080, service: 80, management: 9000 } as const;
export const keycloakServiceHost = `${keycloakRelease}-http.${keycloakNamespace}.svc.cluster.local`;
/**
 * Keycloak's paths under each tenant's web host, as the Orthanc Team's sample puts them (orthanc-auth-service
 * minimal-setup/keycloak: nginx forwards /keycloak/). Orthanc serves nothing there.
 */
export const keycloakPaths = { relativePath: "/keycloak" } as const;

/** The paths of one realm, and the shared static resources its pages load: what a tenant's gateway routes to Keycloak. */
export function realmPathPrefixes(realm: string): string[] {
    const root = keycloakPaths.relativePath;
    // The trailing slash keeps realm `bhs` from matching realm `bhs2`'s paths.
    return [`${root}/realms/${realm}/`, `${root}/resources/`, `${root}/admin/${realm}/console/`, `${root}/admin/realms/${realm}/`];
}

/** The backchannel: where the gatekeeper reads the realm's discovery document, keys and tokens, inside the mesh. */
export function realmDiscoveryUrl(realm: string): string {
    return `http://${keycloakServiceHost}${keycloakPaths.relativePath}/realms/${realm}/.well-known/openid-configuration`;
}
