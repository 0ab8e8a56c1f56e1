/**
 * What Keycloak 26 does with the settings the program gives the in-cluster Keycloak: a pure model, applied to the
 * rendered stacks by tests/keycloak.test.ts. Keycloak does not run here (no Java distribution installs from npm or
 * Debian); this is what we read, not what we ran.
 *
 * Read in keycloak/keycloak (the repository is too large to mirror here: read through the code index, at commits of
 * the 26.x line; that they equal tag 26.5.6, the pinned image, is not verified):
 * - services/src/main/java/org/keycloak/protocol/oidc/OIDCWellKnownProvider.java `getConfig`: the issuer, the
 *   authorization and end-session endpoints are built from the FRONTEND URL; the token, userinfo, introspection
 *   endpoints and `jwks_uri` from the BACKEND URL.
 * - quarkus/runtime/.../hostname/HostnameV2Provider.java and HostnameV2Options.java: a realm's `frontendUrl` attribute
 *   replaces the server's `hostname` as the realm's FRONTEND URL; with `hostname-backchannel-dynamic` true (which
 *   needs `hostname` as a full URL) the BACKEND URL follows the request, unless the request came in on the frontend.
 *   Tokens' `iss` is the FRONTEND issuer, whichever address the token request used.
 * - The realm import at start (`--import-realm`, data/import): a realm that exists is skipped, never updated; the file's
 *   `${NAME}` and `${NAME:default}` are replaced with the process' environment variables (a name without a value and
 *   without a default stays as written).
 */

export interface KeycloakServerSettings {
    /** `hostname` (KC_HOSTNAME): a full URL, relative path included. */
    hostname: string;
    backchannelDynamic: boolean;
    /** `http-relative-path` (KC_HTTP_RELATIVE_PATH). */
    relativePath: string;
}

export interface ModelRealm {
    realm: string;
    attributes?: { frontendUrl?: string };
}

export interface DiscoveryModel {
    issuer: string;
    authorization_endpoint: string;
    end_session_endpoint: string;
    token_endpoint: string;
    jwks_uri: string;
    userinfo_endpoint: string;
}

const trim = (url: string) => url.replace(/\/$/, "");

/** The discovery document Keycloak serves for `realm` to a request for `requestUrl`. */
export function discoveryDocument(server: KeycloakServerSettings, realm: ModelRealm, requestUrl: string): DiscoveryModel {
    if (server.backchannelDynamic && !/^https?:\/\//.test(server.hostname)) {
        throw new Error("hostname-backchannel-dynamic needs hostname as a full URL (Keycloak refuses to start)");
    }
    const frontend = trim(realm.attributes?.frontendUrl ?? server.hostname);
    const request = new URL(requestUrl);
    const requestBase = `${request.origin}${server.relativePath}`;
    const backend = server.backchannelDynamic && request.origin !== new URL(frontend).origin ? requestBase : frontend;
    const realmPath = `/realms/${realm.realm}`;
    const oidc = `${realmPath}/protocol/openid-connect`;
    return {
        issuer: `${frontend}${realmPath}`,
        authorization_endpoint: `${frontend}${oidc}/auth`,
        end_session_endpoint: `${frontend}${oidc}/logout`,
        token_endpoint: `${backend}${oidc}/token`,
        jwks_uri: `${backend}${oidc}/certs`,
        userinfo_endpoint: `${backend}${oidc}/userinfo`,
    };
}

/** What the import does with a realm file's text: `${NAME}` and `${NAME:default}` from the environment. */
export function importedText(text: string, environment: Record<string, string>): string {
    return text.replace(/\$\{([^}:]+)(?::([^}]*))?\}/g, (whole, name: string, fallback: string | undefined) => environment[name] ?? fallback ?? whole);
}

/** The realms an import at start creates: those of the files that do not exist yet. */
export function importedRealms(existing: ReadonlySet<string>, files: ModelRealm[]): string[] {
    return files.map((file) => file.realm).filter((realm) => !existing.has(realm));
}

/**
 * The Service ports codecentric/helm-charts keycloakx-7.1.11 renders (charts/keycloakx/templates/service-http.yaml):
 * the management port, `http`, and `https` only when `service.httpsPort` is non-empty to Go's template `if` (nil,
 * false, 0 and "" are empty), each with its name, which Istio reads as the protocol.
 */
export function keycloakxServicePorts(values: { service?: { httpPort?: number; httpsPort?: unknown }; http?: { internalPort?: string } }): { name: string; port: number }[] {
    const goTruthy = (value: unknown) => value !== undefined && value !== null && value !== false && value !== 0 && value !== "";
    const chartDefaults = { httpPort: 80, httpsPort: 8443 };
    const service = { ...chartDefaults, ...values.service };
    return [
        { name: values.http?.internalPort ?? "http-internal", port: 9000 },
        { name: "http", port: service.httpPort ?? chartDefaults.httpPort },
        ...(goTruthy(service.httpsPort) ? [{ name: "https", port: Number(service.httpsPort) }] : []),
    ];
}

/**
 * The names and pod labels codecentric/helm-charts keycloakx-7.1.11 gives a release (charts/keycloakx/Chart.yaml
 * `name: keycloakx`; templates/_helpers.tpl `keycloak.fullname`: `fullnameOverride`, else the release name when it
 * contains the chart's name, else `<release>-<chart>`, each cut to 63 characters; `keycloak.selectorLabels`: the
 * chart's name (or `nameOverride`) and the release; templates/service-http.yaml: `<fullname>-http`; statefulset.yaml:
 * the pods carry the selector labels).
 */
export function keycloakxRelease(release: string, values: { fullnameOverride?: string; nameOverride?: string }): { fullname: string; httpService: string; podLabels: Record<string, string> } {
    const chart = "keycloakx";
    const name = (values.nameOverride || chart).slice(0, 63).replace(/-$/, "");
    const fullname = (values.fullnameOverride || (release.includes(values.nameOverride || chart) ? release : `${release}-${values.nameOverride || chart}`)).slice(0, 63).replace(/-$/, "");
    return { fullname, httpService: `${fullname}-http`, podLabels: { "app.kubernetes.io/name": name, "app.kubernetes.io/instance": release } };
}
