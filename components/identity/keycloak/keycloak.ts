/**
 * The in-cluster Keycloak, for the tenants whose stack says `identity.keycloak` (the local and dev stacks: a place to
 * try sign-in and roles without an identity provider of one's own, not a hospital's identity service). One Keycloak
 * for the platform, a realm per tenant imported at start, its own PostgreSQL from CloudNativePG, inside the mesh.
 *
 * Each realm lives under its tenant's own web host (`https://web.<tenant>.<domain>/keycloak/realms/<tenant>`): the
 * tenant's gateway routes that realm's paths, and no other, to Keycloak, and Keycloak's mesh policy admits each
 * gateway to its own realm's paths only. The gatekeeper reads the realm inside the mesh (the discovery document's
 * token and key endpoints follow the address asked: Keycloak's dynamic backchannel), while the browser and the
 * tokens' issuer use the public address. So the issuer is one URL for both, without a hairpin through the gateway
 * and without the gatekeeper trusting the tenant's CA.
 *
 * Chart facts: codecentric/helm-charts keycloakx-7.1.11 charts/keycloakx (values.yaml, templates/statefulset.yaml,
 * service-http.yaml, _helpers.tpl); Keycloak facts: tests/upstream/keycloak.ts.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { createHash } from "crypto";
import { stringify } from "yaml";
import type { DnsConfig, IdentityConfig } from "../../config/schema";
import { apiServerPorts } from "../../config/schema";
import { clusterAwait, clusterSpec, instanceStatusPort, postgresPort } from "../../data/engines/cloudnativePg";
import { cnpgDatabasePodLabels } from "../../data/engines/cloudnativePgNames";
import { pinnedRelease } from "../../k8s/helm";
import { namespace as createNamespace } from "../../k8s/namespace";
import { NamespaceWalls } from "../../k8s/namespaceWalls";
import { denyByDefault, NamedSpec, namespaceFloor, namespaceNamed, podsLabelled, principal, tcp } from "../../k8s/walls";
import { TenantNames } from "../../naming/tenantNames";
import { cloudnativePgOperatorPodLabels } from "../../platform/cloudnativePg";
import { gatewaySelector } from "../../tenant/ingress";
import { gatewayPrincipal } from "../../tenant/security";
import { charts, keycloakImage, lockedDigest } from "../../versions";
import { gatekeeperName, gatekeeperSelector } from "../names";
import { keycloakNamespace, keycloakPaths, keycloakPodLabels, keycloakPorts, keycloakRelease, realmPathPrefixes } from "./names";
import { realmIssuer, realmJson, RealmSecrets } from "./realm";

type NetworkPolicySpec = k8s.types.input.networking.v1.NetworkPolicySpec;

/** Objects of the Keycloak namespace besides the chart's. */
export const keycloakObjects = {
    /** The CloudNativePG Cluster of Keycloak's database; its Services are `<name>-rw`, `-ro`, `-r`. */
    databaseCluster: "keycloak-db",
    database: "keycloak",
    databaseOwner: "keycloak",
    /** basic-auth Secret of the owner role (bootstrap.initdb.secret), read by Keycloak too. */
    databaseSecret: "keycloak-db-credentials",
    /** One `<tenant>-realm.json` per tenant, mounted where the import reads. */
    realmsSecret: "keycloak-realms",
    bootstrapAdminSecret: "keycloak-bootstrap-admin",
} as const;

/** Where `kc.sh start --import-realm` reads realm files (Keycloak's data/import directory of the official image). */
export const realmImportDirectory = "/opt/keycloak/data/import";
/** The master realm's administrator, created on the first start only; reached by port-forward only (README). */
export const bootstrapAdministrator = "korthweb-admin";
/** The image's keycloak user (uid 1000; the chart's securityContext runs it so). */
const keycloakUid = 1000;

/** A tenant that signs in through the in-cluster Keycloak. */
export interface KeycloakTenant {
    tenant: string;
    displayName: string;
    names: TenantNames;
    /** `tenantWebUrl`: where the tenant's users reach it, and its realm. */
    webUrl: string;
    identity: IdentityConfig;
}

export const databasePodLabels = cnpgDatabasePodLabels(keycloakObjects.databaseCluster);

/** The realm file's name: the import takes a `*-realm.json` file's realm from its content, the name keeps them apart. */
export function realmFileName(tenant: string): string {
    return `${tenant}-realm.json`;
}

/**
 * The chart's values. `extraEnv`, `extraVolumes` and `extraVolumeMounts` are YAML strings the chart passes through
 * `tpl` (statefulset.yaml), hence `stringify`.
 */
export function keycloakValues(realmsChecksum: string): Record<string, unknown> {
    const digest = lockedDigest(keycloakImage);
    const env = [
        // The master realm's address: the administrator's port-forward. Every tenant realm names its own (frontendUrl).
        { name: "KC_HOSTNAME", value: `http://localhost:${keycloakPorts.container}${keycloakPaths.relativePath}` },
        // Requests inside the mesh (the gatekeepers) get token and key endpoints at the address they asked.
        { name: "KC_HOSTNAME_BACKCHANNEL_DYNAMIC", value: "true" },
        // One replica: no cluster of caches to wall in (the chart's default stack pings peers through the database).
        { name: "KC_CACHE", value: "local" },
        // CloudNativePG's instances refuse connections without TLS (pg_hba `hostnossl ... reject`).
        { name: "KC_DB_URL_PROPERTIES", value: "?sslmode=require" },
        { name: "KC_BOOTSTRAP_ADMIN_USERNAME", valueFrom: { secretKeyRef: { name: keycloakObjects.bootstrapAdminSecret, key: "username" } } },
        { name: "KC_BOOTSTRAP_ADMIN_PASSWORD", valueFrom: { secretKeyRef: { name: keycloakObjects.bootstrapAdminSecret, key: "password" } } },
        // Sign-ins, successful ones included, in the log the platform collects, besides the realms' stored events.
        { name: "KC_SPI_EVENTS_LISTENER_JBOSS_LOGGING_SUCCESS_LEVEL", value: "info" },
        { name: "KC_LOG_CONSOLE_OUTPUT", value: "json" },
    ];
    return {
        fullnameOverride: keycloakRelease,
        replicas: 1,
        image: { repository: `${keycloakImage.registry}/${keycloakImage.repository}`, tag: keycloakImage.tag, digest: digest ?? "" },
        // The image has no default command: start in production mode, importing realms that do not exist yet.
        args: ["start", "--import-realm"],
        enableServiceLinks: false,
        serviceAccount: { create: true, automountServiceAccountToken: false },
        podSecurityContext: { fsGroup: keycloakUid, runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
        // Not read-only: `start` re-augments the server when build options (health, metrics) differ from the image's.
        securityContext: {
            runAsUser: keycloakUid,
            runAsGroup: keycloakUid,
            runAsNonRoot: true,
            allowPrivilegeEscalation: false,
            capabilities: { drop: ["ALL"] },
            seccompProfile: { type: "RuntimeDefault" },
        },
        // A realm added to the stack is imported at the next start: a changed set of realm files rolls the pod.
        podAnnotations: { "korthweb.io/realms-checksum": realmsChecksum },
        resources: { requests: { cpu: "250m", memory: "768Mi" }, limits: { memory: "1536Mi" } },
        http: { relativePath: keycloakPaths.relativePath },
        // Plain HTTP behind the sidecar and the gateway, which hold the TLS; the gateway's X-Forwarded-* are believed.
        proxy: { enabled: true, mode: "xforwarded", http: { enabled: true } },
        cache: { stack: "custom" },
        database: {
            vendor: "postgres",
            hostname: `${keycloakObjects.databaseCluster}-rw`,
            port: postgresPort,
            database: keycloakObjects.database,
            username: keycloakObjects.databaseOwner,
            existingSecret: keycloakObjects.databaseSecret,
            existingSecretKey: "password",
        },
        metrics: { enabled: true },
        health: { enabled: true },
        // No TLS port: an `https` port would be taken for TLS by the mesh, and nothing listens there.
        // 0: empty to the chart's `if` (Go templates take 0 as false), where a null might be dropped on the way to Helm.
        service: { httpsPort: 0 },
        extraEnv: stringify(env),
        extraVolumes: stringify([{ name: "realms", secret: { secretName: keycloakObjects.realmsSecret } }]),
        extraVolumeMounts: stringify([{ name: "realms", mountPath: realmImportDirectory, readOnly: true }]),
    };
}

/** Keycloak's database: one CloudNativePG instance (a try-out provider), its owner's password generated here. */
export function keycloakDatabaseSpec(storageClass?: string): Record<string, unknown> {
    return clusterSpec({
        instances: 1,
        replication: "asynchronous",
        volumeSize: "2Gi",
        storageClass,
        maxConnections: 100,
        database: { name: keycloakObjects.database, owner: keycloakObjects.databaseOwner, secret: keycloakObjects.databaseSecret },
        resources: { requests: { cpu: "100m", memory: "256Mi" }, limits: { memory: "512Mi" } },
    });
}

export interface KeycloakWallsInput {
    tenants: KeycloakTenant[];
    istioNamespace: string;
    dns: DnsConfig;
    operatorNamespace: string;
    apiServerAddresses: string[];
}

/**
 * The Keycloak namespace's walls. NetworkPolicies: each tenant's gateway and gatekeeper reach Keycloak's HTTP port,
 * Keycloak reaches its database, the database its operator and the API server. Istio: each tenant's gateway reaches
 * its own realm's paths, its gatekeeper its own realm; nothing else (the master realm is the port-forward's).
 */
export function keycloakWalls(input: KeycloakWallsInput): { network: NamedSpec<NetworkPolicySpec>[]; authorization: NamedSpec[] } {
    const ns = keycloakNamespace;
    const keycloakPods = podsLabelled({ ...keycloakPodLabels });
    const databasePods = podsLabelled({ ...databasePodLabels });
    const operator = { ...namespaceNamed(input.operatorNamespace), podSelector: { matchLabels: { ...cloudnativePgOperatorPodLabels } } };
    const toApiServer = { to: input.apiServerAddresses.map((cidr) => ({ ipBlock: { cidr } })), ports: apiServerPorts.map(tcp) };
    const clients = input.tenants.flatMap(({ tenant, names }) => [
        { ...namespaceNamed(names.gatewayNamespace), podSelector: { matchLabels: gatewaySelector(names) } },
        { ...namespaceNamed(names.namespace), podSelector: { matchLabels: gatekeeperSelector(tenant) } },
    ]);
    const wildcard = (prefix: string) => `${prefix}*`;
    return {
        network: [
            ...namespaceFloor(ns, input.istioNamespace, input.dns),
            {
                namespace: ns,
                name: "allow-keycloak",
                spec: {
                    podSelector: { matchLabels: { ...keycloakPodLabels } },
                    policyTypes: ["Ingress", "Egress"],
                    ingress: clients.length > 0 ? [{ from: clients, ports: [tcp(keycloakPorts.container)] }] : [],
                    egress: [{ to: [databasePods], ports: [tcp(postgresPort)] }],
                },
            },
            {
                namespace: ns,
                name: "allow-keycloak-database",
                spec: {
                    podSelector: { matchLabels: { ...databasePodLabels } },
                    policyTypes: ["Ingress", "Egress"],
                    ingress: [
                        { from: [keycloakPods], ports: [tcp(postgresPort)] },
                        { from: [operator, databasePods], ports: [tcp(instanceStatusPort)] },
                    ],
                    egress: [toApiServer],
                },
            },
        ],
        authorization: [
            denyByDefault(ns),
            {
                namespace: ns,
                name: "allow-tenants-to-their-realms",
                spec: {
                    selector: { matchLabels: { ...keycloakPodLabels } },
                    action: "ALLOW",
                    rules: input.tenants.flatMap(({ tenant, names }) => [
                        {
                            from: [{ source: { principals: [gatewayPrincipal(names)] } }],
                            to: [{ operation: { ports: [String(keycloakPorts.container)], paths: realmPathPrefixes(tenant).map(wildcard) } }],
                        },
                        {
                            from: [{ source: { principals: [principal(names.namespace, gatekeeperName)] } }],
                            to: [{ operation: { ports: [String(keycloakPorts.container)], paths: [wildcard(realmPathPrefixes(tenant)[0])] } }],
                        },
                    ]),
                },
            },
        ],
    };
}

export interface InClusterKeycloakArgs {
    tenants: KeycloakTenant[];
    istioNamespace: string;
    dns: DnsConfig;
    operator: { namespace: string; ready: pulumi.Input<pulumi.Resource>[] };
    apiServerAddresses: string[];
    storageClass?: string;
    /** Meshed pods: after the sidecar injector. */
    dependsOn: pulumi.Input<pulumi.Resource>[];
    istioCrdsReady: pulumi.Input<pulumi.Resource>[];
}

/** What a tenant's gatekeeper and the stack outputs get from the in-cluster Keycloak. */
export interface KeycloakRealm {
    issuer: string;
    /** The web client's generated secret (the gatekeeper's `oidc.clientSecret`). */
    webClientSecret: pulumi.Output<string>;
    administrator: string;
    /** The first administrator's first password (temporary: she sets her own). */
    administratorPassword: pulumi.Output<string>;
    apiClientSecrets: Record<string, pulumi.Output<string>>;
}

export class InClusterKeycloak extends pulumi.ComponentResource {
    readonly realms: Record<string, KeycloakRealm> = {};
    /** The master realm's administrator password (port-forward only). */
    readonly bootstrapAdminPassword: pulumi.Output<string>;
    /** What a gatekeeper waits for: Keycloak answering, with the realms imported. */
    readonly ready: pulumi.Resource[];

    constructor(name: string, args: InClusterKeycloakArgs, opts?: pulumi.ComponentResourceOptions) {
        super("korthweb:identity:InClusterKeycloak", name, {}, opts);
        const ns = createNamespace(`${name}-namespace`, { name: keycloakNamespace, enforce: "restricted", istioInjection: true }, { parent: this, dependsOn: args.dependsOn });
        const inNamespace = { parent: this, dependsOn: [ns] };
        const generated = (resource: string) => pulumi.secret(new random.RandomPassword(resource, { length: 32, special: false }, { parent: this }).result);

        const realmFiles: Record<string, pulumi.Output<string>> = {};
        for (const { tenant, displayName, webUrl, identity } of args.tenants) {
            const administrator = identity.keycloak?.administrator ?? "administrator";
            const realm: KeycloakRealm = {
                issuer: realmIssuer(tenant, webUrl),
                webClientSecret: generated(`${name}-${tenant}-web-client-secret`),
                administrator,
                administratorPassword: generated(`${name}-${tenant}-administrator-password`),
                apiClientSecrets: Object.fromEntries(identity.apiClients.map((client) => [client.clientId, generated(`${name}-${tenant}-api-client-${client.clientId}`)])),
            };
            this.realms[tenant] = realm;
            realmFiles[realmFileName(tenant)] = pulumi
                .all([realm.webClientSecret, realm.administratorPassword, pulumi.all(realm.apiClientSecrets)])
                .apply(([webClientSecret, administratorPassword, apiClientSecrets]: [string, string, Record<string, string>]) => {
                    const secrets: RealmSecrets = { webClientSecret, administratorPassword, apiClientSecrets };
                    return realmJson({ tenant, displayName, webUrl, identity, administrator }, secrets);
                });
        }
        const realmsSecret = new k8s.core.v1.Secret(`${name}-realms`, { metadata: { name: keycloakObjects.realmsSecret, namespace: keycloakNamespace }, stringData: realmFiles }, inNamespace);
        this.bootstrapAdminPassword = generated(`${name}-bootstrap-admin-password`);
        const bootstrapSecret = new k8s.core.v1.Secret(
            `${name}-bootstrap-admin`,
            { metadata: { name: keycloakObjects.bootstrapAdminSecret, namespace: keycloakNamespace }, stringData: { username: bootstrapAdministrator, password: this.bootstrapAdminPassword } },
            inNamespace,
        );
        const databaseSecret = new k8s.core.v1.Secret(
            `${name}-database-credentials`,
            {
                metadata: { name: keycloakObjects.databaseSecret, namespace: keycloakNamespace },
                type: "kubernetes.io/basic-auth",
                stringData: { username: keycloakObjects.databaseOwner, password: generated(`${name}-database-password`) },
            },
            inNamespace,
        );
        const walls = keycloakWalls({ tenants: args.tenants, istioNamespace: args.istioNamespace, dns: args.dns, operatorNamespace: args.operator.namespace, apiServerAddresses: args.apiServerAddresses });
        const wallsReady = new NamespaceWalls(`${name}-walls`, { namespace: ns, ...walls, istioCrdsReady: args.istioCrdsReady }, { parent: this }).ready;
        const database = new k8s.apiextensions.CustomResource(
            `${name}-database`,
            {
                apiVersion: "postgresql.cnpg.io/v1",
                kind: "Cluster",
                metadata: { name: keycloakObjects.databaseCluster, namespace: keycloakNamespace, annotations: { ...clusterAwait } },
                spec: keycloakDatabaseSpec(args.storageClass),
            },
            { parent: this, dependsOn: [ns, databaseSecret, ...wallsReady, ...args.operator.ready] },
        );
        // The checksum of the realm files' names and roles, not of their secrets (a digest is no secret, but needs none).
        const realmsChecksum = createHash("sha256")
            .update(JSON.stringify(args.tenants.map(({ tenant, identity }) => [tenant, identity])))
            .digest("hex");
        const release = pinnedRelease(
            `${name}-keycloak`,
            { pin: charts.keycloakx, releaseName: keycloakRelease, namespace: keycloakNamespace, values: keycloakValues(realmsChecksum) },
            { parent: this, dependsOn: [ns, database, realmsSecret, bootstrapSecret, ...wallsReady] },
        );
        this.ready = [release];
        this.registerOutputs({ issuers: Object.fromEntries(Object.entries(this.realms).map(([tenant, realm]) => [tenant, realm.issuer])) });
    }
}
