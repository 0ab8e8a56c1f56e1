/**
 * What the data tier gives the tenant: where Orthanc's index is (`DatabaseEndpoint`), what an engine or a file store
 * adds to Orthanc's pod, and what they add to the tenant's walls. Every engine and store returns these shapes; the
 * tenant and Orthanc see nothing else of them.
 */
import type * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import type { BackupConfig, TenantConfig } from "../config/schema";
import type { CniPolicy, NamedSpec } from "../k8s/walls";
import type { ImagePin } from "../versions";

export interface TenantDatabaseArgs {
    tenant: TenantConfig;
    /** The stack's domain (the tenant's derived names). */
    domain: string;
    /** The tenant namespace, created by the tenant. */
    namespace: string;
    /** What the database pods wait for: the namespace, the tenant's walls, the sidecar injector. */
    dependsOn: pulumi.Input<pulumi.Resource>[];
}

/** Where Orthanc connects, and with which credentials. What every database engine gives the tenant. */
export interface DatabaseEndpoint {
    host: string;
    port: number;
    database: string;
    user: string;
    /** The Orthanc role's password; a Pulumi secret. */
    password: pulumi.Output<string>;
    /** Orthanc starts after these: the database is ready to accept it. */
    ready: pulumi.Resource[];
    /**
     * The gatekeeper's audit database, where the engine renders one (engines/bitnamiHaAudit.ts, cloudnativePgAudit.ts)
     * or names the one the site's DBA made (engines/external.ts, `database.external.audit`): the connection of
     * `GatekeeperConfig.audit.database`, the gatekeeper role's password (a Pulumi secret), and what must exist first.
     */
    audit?: {
        connection: { host: string; port: number; database: string; user: string; sslmode: "disable" | "require" | "verify-full" };
        password: pulumi.Output<string>;
        ready: pulumi.Resource[];
        /** The CA (PEM) the gatekeeper verifies the server against, where Node's own CAs do not sign it (a managed server's). */
        caCertificate?: string;
    };
    /** What Orthanc needs beyond host, port, database, user and password (TLS settings, a CA file), if anything. */
    orthanc?: {
        /** Merged over Orthanc's PostgreSQL section; called with the password (the result is kept secret). */
        postgresql: (password: string) => Record<string, unknown>;
        pod: OrthancPodAdditions;
    };
}

export interface EngineArgs extends TenantDatabaseArgs {
    /** The CloudNativePG operator, for the cloudnative-pg engine. */
    cloudnativePg?: { namespace: string; ready: pulumi.Input<pulumi.Resource>[] };
    backup?: BackupConfig;
}

/** Volumes an engine or the file store adds to Orthanc's pod (a CA to verify a managed database, a shared volume, keys). */
export interface OrthancPodAdditions {
    volumes: k8s.types.input.core.v1.Volume[];
    volumeMounts: k8s.types.input.core.v1.VolumeMount[];
    /** Variables from Secrets (a store's static credentials). */
    env?: k8s.types.input.core.v1.EnvVar[];
    /** The image, when the storage choice needs another build of it (the `-full` image). */
    image?: ImagePin;
}

/**
 * What a database engine adds to the tenant's walls: where Orthanc's egress goes, the engine's own NetworkPolicies and
 * Istio AuthorizationPolicies in the tenant namespace, and ServiceEntries for anything outside the mesh.
 */
export interface DatabaseWalls {
    orthancEgress: k8s.types.input.networking.v1.NetworkPolicyEgressRule[];
    network: NamedSpec<k8s.types.input.networking.v1.NetworkPolicySpec>[];
    authorization: NamedSpec[];
    serviceEntries: NamedSpec[];
    /** Policies of the cluster's CNI beyond NetworkPolicies (Cilium's, for egress by name), created as they are. */
    cniPolicies?: CniPolicy[];
}
