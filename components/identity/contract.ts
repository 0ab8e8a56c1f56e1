/**
 * The contract between the program and a tenant's gatekeeper: the identity-aware proxy that stands between the
 * tenant's gateway and Orthanc on the web port (sign-in, roles, share links, audit trail). The program renders a
 * `GatekeeperConfig` as JSON into the gatekeeper's ConfigMap; the gatekeeper (components/identity/gatekeeper/server.ts)
 * reads it at start. Secrets never appear here: they reach the gatekeeper as the environment variables named in
 * `gatekeeperSecretEnv`, from a Kubernetes Secret.
 *
 * Why a proxy of our own rather than the image's authorization plugin with orthanc-auth-service: see the README,
 * "Who signs in". In short, the plugin's web service (orthanc-auth-service 26.4.1) reads tokens from Keycloak only,
 * the plugin's own audit log records no view, search or DICOMweb read and lives in the database the Orthanc pods write,
 * while every request of every client (Orthanc Explorer 2, Stone, OHIF, REST, DICOMweb) passes the gateway's one route.
 */

/** What a role may do. Each request needs exactly one of these (see the gatekeeper's `requiredPermission`). */
export const permissions = [
    /** Find patients, studies, series (QIDO-RS, /tools/find, listing). */
    "search",
    /** Read images and their metadata (WADO-RS, WADO-URI, rendered frames, the viewers). */
    "view",
    /** Archives, media, whole-study downloads. */
    "download",
    /** Create a signed share link for one study. */
    "share",
    /** Store instances (REST, STOW-RS). */
    "upload",
    /** Change tags, labels, metadata (modify, anonymize). */
    "edit",
    /** Delete what this user uploaded. */
    "delete-own",
    /** Delete anything. */
    "delete",
    /** Read the audit trail. */
    "audit",
    /** Everything else Orthanc serves: jobs, modalities, peers, system, settings. */
    "admin",
] as const;
export type Permission = (typeof permissions)[number];

/** A role: the identity provider's groups that grant it, and what it may do. */
export interface RoleConfig {
    /** Values of the groups claim that grant the role; a user holds the union of their roles' permissions. */
    groups: string[];
    permissions: Permission[];
}

/** The roles every tenant has unless its stack configuration maps its own (`tenants[].identity.roles`). */
export const defaultRoles: Record<string, RoleConfig> = {
    administrator: { groups: ["orthanc-administrators"], permissions: [...permissions] },
    clinician: { groups: ["orthanc-clinicians"], permissions: ["search", "view", "download", "share"] },
    technologist: { groups: ["orthanc-technologists"], permissions: ["search", "view", "upload", "edit", "delete-own"] },
    auditor: { groups: ["orthanc-auditors"], permissions: ["audit"] },
};

/** A script or integration that signs in with OAuth2 client credentials and acts under one role. */
export interface ApiClientConfig {
    /** The `client_id` (or `azp`) claim of its access tokens. */
    clientId: string;
    role: string;
}

export interface GatekeeperConfig {
    tenant: string;
    /** Port the gatekeeper listens on (plain HTTP inside the mesh; the sidecar and the gateway hold the TLS). */
    port: number;
    /** Where users reach the tenant: `https://<webHost>`; the OIDC redirect URI is `<publicUrl>/oauth2/callback`. */
    publicUrl: string;
    /** Orthanc's HTTP root inside the namespace, e.g. `http://orthanc:8042`. */
    orthancUrl: string;
    /** Orthanc's user for the gatekeeper (its password is in the environment). */
    orthancUsername: string;
    /**
     * How long Orthanc may stay silent on a request (no byte of its answer, or of a streamed one) before the gatekeeper
     * gives up with 504 and closes the request; a client that goes away closes its request to Orthanc at once.
     */
    orthancIdleTimeoutSeconds: number;
    oidc: {
        /** https only; the tokens' `iss` must equal it exactly. */
        issuer: string;
        /**
         * Where the discovery document is read when not under the issuer: the in-cluster Keycloak's address inside the
         * mesh. Its document still names the public issuer (checked), with the token and key endpoints at the address
         * asked (Keycloak's dynamic backchannel), and the sign-in page at the public one.
         */
        discoveryUrl?: string;
        /** The web client (authorization code flow with PKCE); its secret is in the environment. */
        clientId: string;
        /** Values accepted in `aud` for bearer tokens (API clients, viewers); the web client's id when unset. */
        audiences: string[];
        scopes: string[];
        /** Claim holding the user's groups (`groups` for Okta/Keycloak mappers, Entra ID's `groups` or `roles`). */
        groupsClaim: string;
        /** Claim shown as the user's name in the audit trail. */
        nameClaim: string;
    };
    roles: Record<string, RoleConfig>;
    apiClients: ApiClientConfig[];
    session: {
        /** A signed-in browser session lasts at most this long (the cookie is encrypted with the session key). */
        ttlSeconds: number;
    };
    shareLinks: {
        /** Longest validity a share link may be given. */
        maxTtlSeconds: number;
    };
    audit: {
        /**
         * Where audit records are stored besides the gatekeeper's stdout: a PostgreSQL database in which the
         * gatekeeper's user may INSERT and SELECT, never UPDATE or DELETE, and that Orthanc's user cannot reach.
         */
        database?: { host: string; port: number; database: string; user: string; sslmode?: "disable" | "require" | "verify-full" };
        /** How long records are kept (enforced by the retention job, not by the gatekeeper). */
        retentionDays: number;
    };
    /**
     * Where the gatekeeper reports, on the pod's loopback only, whether its identity provider answers (its sidecar
     * fetches the page for Prometheus), and how often it asks the provider. No report without it.
     */
    metrics?: { port: number; providerCheckSeconds: number };
}

/** Environment variables through which the gatekeeper receives its secrets. */
export const gatekeeperSecretEnv = {
    oidcClientSecret: "GATEKEEPER_OIDC_CLIENT_SECRET",
    /** 32 random bytes, base64: encrypts session cookies and signs share links. */
    sessionKey: "GATEKEEPER_SESSION_KEY",
    orthancPassword: "GATEKEEPER_ORTHANC_PASSWORD",
    auditDatabasePassword: "GATEKEEPER_AUDIT_DATABASE_PASSWORD",
} as const;

/** Actions an audit record names; one record per request that reaches the gatekeeper, plus sign-in outcomes. */
export const auditActions = [
    "sign-in",
    "sign-in-failed",
    "sign-out",
    "search",
    "view",
    "download",
    "upload",
    "change",
    "delete",
    "share",
    "export",
    "audit-read",
    "admin",
    "refused",
] as const;
export type AuditAction = (typeof auditActions)[number];

/** One line of the audit trail (JSON). No image data and no tag values besides identifiers. */
export interface AuditRecord {
    time: string;
    tenant: string;
    action: AuditAction;
    /** The identity provider's `sub`, or the API client's id; absent when nobody was identified. */
    subject?: string;
    name?: string;
    /** The client's address as the gateway saw it (X-Forwarded-For's last hop added by the tenant's gateway). */
    source: string;
    method: string;
    /** The path without its query string (query strings of QIDO-RS searches carry patient names). */
    path: string;
    /** Orthanc ids or DICOM UIDs the request names. */
    resources: { level: "patient" | "study" | "series" | "instance"; id: string }[];
    /** HTTP status returned to the client. */
    status: number;
    outcome: "allowed" | "refused" | "failed";
    /** Why a request was refused (no token, expired, wrong issuer, missing permission). */
    reason?: string;
}
