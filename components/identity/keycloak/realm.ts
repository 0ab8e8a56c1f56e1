/**
 * A tenant's realm in the in-cluster Keycloak, as the realm import reads it at start (`kc.sh start --import-realm`).
 * Pure: the generated secrets come in as plain strings, so the component renders the JSON inside `apply` and the
 * tests read it without mocks.
 *
 * Key names are those of Keycloak's representation classes (keycloak/keycloak, core/src/main/java/org/keycloak/
 * representations/idm/RealmRepresentation.java, ClientRepresentation.java, UserRepresentation.java,
 * CredentialRepresentation.java) and of its mapper providers' configuration (GroupMembershipMapper.java,
 * AudienceProtocolMapper.java); tests/upstream/keycloak.ts models what the import and the token endpoint do with them.
 */
import { IdentityConfig, identityRoles } from "../../config/schema";
import { keycloakPaths } from "./names";

/** The realm's web client: the gatekeeper signs users in with it (authorization code with PKCE). */
export const keycloakWebClientId = "orthanc";
/** The claim the group mapper writes, which the gatekeeper reads (`oidc.groupsClaim`). */
export const keycloakGroupsClaim = "groups";

export interface RealmSecrets {
    /** The web client's secret (the gatekeeper holds it too). */
    webClientSecret: string;
    /** Each API client's secret, by client id. */
    apiClientSecrets: Record<string, string>;
    /** The first administrator's password: temporary, she sets her own at first sign-in. */
    administratorPassword: string;
}

/**
 * Where a tenant's users reach its realm: under the tenant's own web address (`tenantWebUrl`, the node port included
 * where there is one), through the tenant's own gateway.
 */
export function realmFrontendUrl(webUrl: string): string {
    return `${webUrl}${keycloakPaths.relativePath}`;
}

/** The issuer of the tenant's realm: what the gatekeeper holds tokens to. */
export function realmIssuer(tenant: string, webUrl: string): string {
    return `${realmFrontendUrl(webUrl)}/realms/${tenant}`;
}

/** The groups the realm must have: every group a role of the tenant is granted by (roles' groups are the contract). */
export function realmGroups(identity: IdentityConfig): string[] {
    return [...new Set(Object.values(identityRoles(identity)).flatMap((role) => role.groups))].sort();
}

/**
 * The groups the first administrator is put in: those of every role that holds the `admin` permission (the default
 * `administrator`). A tenant whose roles give nobody `admin` is refused by the schema before this runs.
 */
export function administratorGroups(identity: IdentityConfig): string[] {
    return [...new Set(Object.values(identityRoles(identity)).filter((role) => role.permissions.includes("admin")).flatMap((role) => role.groups))].sort();
}

/** Keycloak writes mapper configuration as strings, booleans included. */
const on = "true";
const off = "false";

/** The audience mapper: access tokens name the web client in `aud`, which the gatekeeper requires of bearer tokens. */
function audienceMapper(): Record<string, unknown> {
    return {
        name: "orthanc audience",
        protocol: "openid-connect",
        protocolMapper: "oidc-audience-mapper",
        config: { "included.client.audience": keycloakWebClientId, "access.token.claim": on, "id.token.claim": off, "introspection.token.claim": on },
    };
}

/** Group names (not paths) in the ID and access tokens: what the tenant's roles are granted by. */
function groupsMapper(): Record<string, unknown> {
    return {
        name: "groups",
        protocol: "openid-connect",
        protocolMapper: "oidc-group-membership-mapper",
        config: {
            "claim.name": keycloakGroupsClaim,
            "full.path": off,
            "id.token.claim": on,
            "access.token.claim": on,
            "userinfo.token.claim": on,
            "introspection.token.claim": on,
        },
    };
}

export interface RealmInput {
    tenant: string;
    displayName: string;
    /** `tenantWebUrl`: where the tenant's users reach it. */
    webUrl: string;
    identity: IdentityConfig;
    /** The first administrator's user name (`identity.keycloak.administrator`). */
    administrator: string;
}

/**
 * The realm import replaces `${NAME}` and `${NAME:default}` with environment variables of Keycloak's process, which
 * hold its bootstrap administrator's password and its database's: a display name, group or client id from the stack
 * that held one would carry a secret into the realm's pages. Refused by name (tests/upstream/keycloak.ts).
 */
export function realmJson(input: RealmInput, secrets: RealmSecrets): string {
    const json = JSON.stringify(realmRepresentation(input, secrets), null, 2);
    const placeholder = /\$\{[^}]*\}/.exec(json);
    if (placeholder) {
        throw new Error(`tenants.${input.tenant}: the realm would hold ${placeholder[0]}, which Keycloak's import replaces with its own environment; remove "\${" from the tenant's displayName, roles' groups and API client ids`);
    }
    return json;
}

export function realmRepresentation(input: RealmInput, secrets: RealmSecrets): Record<string, unknown> {
    const { tenant, identity } = input;
    const publicUrl = input.webUrl;
    const missing = identity.apiClients.filter((client) => secrets.apiClientSecrets[client.clientId] === undefined).map((client) => client.clientId);
    if (missing.length > 0) throw new Error(`tenants.${tenant}: no generated secret for the API clients ${missing.join(", ")}`);
    return {
        realm: tenant,
        displayName: input.displayName,
        enabled: true,
        // Browsers come through the gateway's TLS (X-Forwarded-Proto https); the gatekeeper's backchannel is a mesh
        // address, whose mutual TLS the sidecars hold.
        sslRequired: "external",
        // Each realm's pages, tokens and issuer under its tenant's own host (the hostname provider honours it over
        // the server's hostname): mhr's gateway never serves bhs's realm.
        attributes: { frontendUrl: realmFrontendUrl(publicUrl) },
        registrationAllowed: false,
        resetPasswordAllowed: false,
        editUsernameAllowed: false,
        loginWithEmailAllowed: true,
        duplicateEmailsAllowed: false,
        // Guessing passwords: a lockout that grows per failure, undone by time (no permanent lockout an attacker
        // could use to lock staff out).
        bruteForceProtected: true,
        permanentLockout: false,
        failureFactor: 5,
        waitIncrementSeconds: 60,
        maxFailureWaitSeconds: 15 * 60,
        passwordPolicy: "length(12) and notUsername and notEmail and passwordHistory(5)",
        // Sign-ins and failed sign-ins at the provider, and administrators' changes, kept 90 days in Keycloak's
        // database (the gatekeeper's trail records the sign-ins it completes, too).
        eventsEnabled: true,
        eventsExpiration: 90 * 24 * 3600,
        // Also to Keycloak's log (JSON, successes at info: KC_SPI_EVENTS_LISTENER_JBOSS_LOGGING_SUCCESS_LEVEL).
        eventsListeners: ["jboss-logging"],
        adminEventsEnabled: true,
        adminEventsDetailsEnabled: false,
        accessTokenLifespan: 300,
        ssoSessionMaxLifespan: identity.sessionTtlSeconds,
        groups: realmGroups(identity).map((name) => ({ name })),
        clients: [
            {
                clientId: keycloakWebClientId,
                name: `Orthanc of ${input.displayName}`,
                enabled: true,
                protocol: "openid-connect",
                publicClient: false,
                clientAuthenticatorType: "client-secret",
                secret: secrets.webClientSecret,
                standardFlowEnabled: true,
                implicitFlowEnabled: false,
                directAccessGrantsEnabled: false,
                serviceAccountsEnabled: false,
                redirectUris: [`${publicUrl}/oauth2/callback`],
                webOrigins: [],
                attributes: { "pkce.code.challenge.method": "S256", "post.logout.redirect.uris": `${publicUrl}/` },
                protocolMappers: [groupsMapper(), audienceMapper()],
            },
            ...identity.apiClients.map((client) => ({
                clientId: client.clientId,
                name: `API client ${client.clientId} (role ${client.role})`,
                enabled: true,
                protocol: "openid-connect",
                publicClient: false,
                clientAuthenticatorType: "client-secret",
                secret: secrets.apiClientSecrets[client.clientId],
                // Client credentials only: no browser sign-in, no passwords.
                standardFlowEnabled: false,
                implicitFlowEnabled: false,
                directAccessGrantsEnabled: false,
                serviceAccountsEnabled: true,
                protocolMappers: [audienceMapper()],
            })),
        ],
        users: [
            {
                username: input.administrator,
                enabled: true,
                credentials: [{ type: "password", value: secrets.administratorPassword, temporary: true }],
                groups: administratorGroups(identity).map((group) => `/${group}`),
                // She adds the tenant's staff and puts them in groups, in her realm's admin console only.
                clientRoles: { "realm-management": ["realm-admin"] },
                requiredActions: ["CONFIGURE_TOTP"],
            },
        ],
    };
}
