/**
 * A tenant's gatekeeper: the identity-aware proxy between the tenant's gateway and Orthanc's web port (contract.ts).
 * Pure builders (configuration, source files, workload, walls), tested without mocks, and the component the tenant
 * creates from them: a ConfigMap with the configuration and the gatekeeper's source, a Secret with its keys, a
 * Deployment of Node running that source, a Service and a disruption budget.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { createHash } from "crypto";
import { existsSync, readdirSync, readFileSync } from "fs";
import * as path from "path";
import { IdentityConfig, identityRoles, isIpv4Address, OidcConfig } from "../config/schema";
import { ciliumFqdnPolicy, ClusterNetwork } from "../data/backup/backup";
import type { DatabaseEndpoint, DatabaseWalls } from "../data/endpoint";
import { gatewaySelector, orthancPorts, orthancServiceName, WebBackend, webRouteTimeoutSeconds } from "../tenant/ingress";
import { orthancSelector, TenantNames } from "../naming/tenantNames";
import { namespaceNamed, principal, tcp } from "../k8s/walls";
import { restrictedContainerSecurity } from "../tenant/orthancWorkload";
import { gatewayPrincipal, WebFront } from "../tenant/security";
import { externalTlsServiceEntries } from "../k8s/externalServiceEntries";
import { imageReference, nodeImage } from "../versions";
import { GatekeeperConfig, gatekeeperSecretEnv } from "./contract";
import { keycloakGroupsClaim, keycloakWebClientId, realmIssuer } from "./keycloak/realm";
import { keycloakNamespace, keycloakPodLabels, keycloakPorts, keycloakServiceHost, realmDiscoveryUrl, realmPathPrefixes } from "./keycloak/names";

import { gatekeeperMetricsPort, gatekeeperName, gatekeeperOrthancUser, gatekeeperPort, gatekeeperSelector } from "./names";
import { healthPath, metricsPath } from "./gatekeeper/server";

export { gatekeeperMetricsPort, gatekeeperName, gatekeeperOrthancUser, gatekeeperPort, gatekeeperSelector };
/** Where the pod finds its source (the ConfigMap's `*.ts` files) and its configuration. */
export const gatekeeperPaths = { source: "/opt/gatekeeper", configDirectory: "/etc/gatekeeper", configFile: "config.json" } as const;
/** The official node image's unprivileged user (nodejs/docker-node, `adduser -u 1000 ... node`). */
const nodeUid = 1000;
/** The ConfigMap's keys for the configuration and the provider's CA: not `.ts`, so they never collide with a source file. */
const configKey = "config.json";
const providerCaKey = "identity-provider-ca.crt";
/** A ConfigMap holds at most 1 MiB (Kubernetes validation of ConfigMap size). */
const configMapLimitBytes = 1024 * 1024;
/**
 * The source folder: components/identity/gatekeeper/, beside this file, unless KORTHWEB_GATEKEEPER_SOURCE names another
 * (the unit suite renders its stacks with a fixture of its own, tests/fixtures/gatekeeper/, so that what it asserts
 * does not move with the gatekeeper's code, which its own tests prove).
 */
export function gatekeeperSourceDirectory(): string {
    return process.env.KORTHWEB_GATEKEEPER_SOURCE ?? path.join(__dirname, "gatekeeper");
}
/** The path the gatekeeper answers liveness and readiness on. */
export const gatekeeperHealthPath = healthPath;
/** How often the gatekeeper asks its identity provider whether it answers (the IdentityProviderUnreachable alert waits 5 minutes). */
export const providerCheckSeconds = 30;

/**
 * The pod annotations Istio's injector moves into the sidecar for metrics merging (istio 1.30.3
 * pkg/kube/inject/webhook.go `applyPrometheusMerge`): the agent fetches the gatekeeper's loopback metrics page and
 * serves it with Envoy's on 15020, which the envoy-stats PodMonitor scrapes.
 */
export const gatekeeperScrapeAnnotations = {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": String(gatekeeperMetricsPort),
    "prometheus.io/path": metricsPath,
} as const;

export function gatekeeperPodLabels(tenant: string): Record<string, string> {
    return { app: gatekeeperName, ...gatekeeperSelector(tenant) };
}


export function gatekeeperPrincipal(names: TenantNames): string {
    return principal(names.namespace, gatekeeperName);
}

/** Where the tenant's gateway sends the web route. */
export function gatekeeperHost(names: TenantNames): string {
    return `${gatekeeperName}.${names.namespace}.svc.cluster.local`;
}

/** The OIDC settings a gatekeeper runs with, without the client secret (a stack secret, or generated for Keycloak's realm). */
export type SignInProvider = Omit<OidcConfig, "clientSecret"> & { discoveryUrl?: string };

/** The site's provider (`identity.oidc`), or the tenant's realm of the in-cluster Keycloak (`identity.keycloak`). */
export function tenantOidc(identity: IdentityConfig, tenant: string, webUrl: string): SignInProvider {
    if (identity.oidc) {
        const { clientSecret: _secret, ...provider } = identity.oidc;
        return provider;
    }
    if (identity.keycloak) {
        return {
            issuer: realmIssuer(tenant, webUrl),
            discoveryUrl: realmDiscoveryUrl(tenant),
            clientId: keycloakWebClientId,
            groupsClaim: keycloakGroupsClaim,
            nameClaim: "name",
            audiences: [],
            scopes: ["openid", "profile", "email"],
        };
    }
    throw new Error(`tenants.${tenant}.identity: oidc or keycloak (identity.disabled runs no gatekeeper)`);
}

/** The gatekeeper's configuration for a tenant (contract.ts `GatekeeperConfig`), as the ConfigMap holds it. */
export function gatekeeperConfig(
    tenant: string,
    names: TenantNames,
    identity: IdentityConfig,
    auditDatabase?: GatekeeperConfig["audit"]["database"],
    /** `tenantWebUrl`: the node port included where the gateway is a NodePort Service. */
    webUrl = `https://${names.webHost}`,
): GatekeeperConfig {
    const oidc = tenantOidc(identity, tenant, webUrl);
    return {
        tenant,
        port: gatekeeperPort,
        publicUrl: webUrl,
        orthancUrl: `http://${orthancServiceName}.${names.namespace}.svc.cluster.local:${orthancPorts.http}`,
        orthancUsername: gatekeeperOrthancUser,
        orthancIdleTimeoutSeconds: webRouteTimeoutSeconds,
        oidc: {
            issuer: oidc.issuer,
            ...(oidc.discoveryUrl ? { discoveryUrl: oidc.discoveryUrl } : {}),
            clientId: oidc.clientId,
            audiences: oidc.audiences.length > 0 ? [...oidc.audiences] : [oidc.clientId],
            scopes: [...oidc.scopes],
            groupsClaim: oidc.groupsClaim,
            nameClaim: oidc.nameClaim,
        },
        roles: identityRoles(identity),
        apiClients: identity.apiClients.map(({ clientId, role }) => ({ clientId, role })),
        session: { ttlSeconds: identity.sessionTtlSeconds },
        shareLinks: { maxTtlSeconds: identity.shareLinkMaxTtlSeconds },
        // Without a database (identity.audit.stdoutOnly, or an engine that renders none), stdout only.
        audit: { ...(auditDatabase ? { database: { ...auditDatabase } } : {}), retentionDays: identity.audit.retentionDays },
        metrics: { port: gatekeeperMetricsPort, providerCheckSeconds },
    };
}

/**
 * The gatekeeper's source files, by file name: every `*.ts` of `directory` (and its `package.json`, which tells Node
 * how to load them, when there is one). Read when the program runs, so the ConfigMap carries the source the
 * repository holds; a folder without `server.ts`, the file the pod starts, stops the program here.
 */
export function gatekeeperSourceFiles(directory: string = gatekeeperSourceDirectory()): Record<string, string> {
    const server = path.join(directory, "server.ts");
    if (!existsSync(server)) {
        throw new Error(`the gatekeeper's source is missing: ${server} does not exist (every tenant with identity settings runs it)`);
    }
    const names = readdirSync(directory)
        .filter((name) => name.endsWith(".ts") || name === "package.json")
        .sort();
    return Object.fromEntries(names.map((name) => [name, readFileSync(path.join(directory, name), "utf8")]));
}

/**
 * The ConfigMap's data: the configuration, the source files and the provider's CA when the stack gives one, refused
 * when over a ConfigMap's 1 MiB.
 */
export function gatekeeperConfigMapData(config: GatekeeperConfig, sources: Record<string, string>, providerCa?: string): Record<string, string> {
    const data = { ...sources, [configKey]: JSON.stringify(config, null, 2), ...(providerCa !== undefined ? { [providerCaKey]: providerCa } : {}) };
    const bytes = Object.entries(data).reduce((sum, [key, value]) => sum + Buffer.byteLength(key) + Buffer.byteLength(value), 0);
    if (bytes > configMapLimitBytes) {
        throw new Error(`the gatekeeper's source and configuration take ${bytes} bytes; a ConfigMap holds at most ${configMapLimitBytes}`);
    }
    return data;
}

/** A digest of what the pods run, so that a new source or configuration rolls them. */
export function gatekeeperChecksum(data: Record<string, string>): string {
    const hash = createHash("sha256");
    for (const key of Object.keys(data).sort()) hash.update(key).update("\0").update(data[key]).update("\0");
    return hash.digest("hex");
}

export function gatekeeperDeploymentSpec(tenant: string, sourceFiles: string[], checksum: string, providerCa = false, auditDatabase = false): k8s.types.input.apps.v1.DeploymentSpec {
    const labels = gatekeeperPodLabels(tenant);
    const secretEnv = (name: string) => ({ name, valueFrom: { secretKeyRef: { name: gatekeeperName, key: name } } });
    const probe = { httpGet: { path: gatekeeperHealthPath, port: "http" }, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 };
    return {
        // Two at least: a single gatekeeper would be a single point of failure for every web user of the tenant.
        replicas: 2,
        selector: { matchLabels: gatekeeperSelector(tenant) },
        strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
        template: {
            metadata: { labels: { ...labels, version: nodeImage.tag }, annotations: { "korthweb.io/config-checksum": checksum, ...gatekeeperScrapeAnnotations } },
            spec: {
                serviceAccountName: gatekeeperName,
                automountServiceAccountToken: false,
                enableServiceLinks: false,
                securityContext: { runAsNonRoot: true, runAsUser: nodeUid, runAsGroup: nodeUid, seccompProfile: { type: "RuntimeDefault" } },
                topologySpreadConstraints: [
                    { maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: gatekeeperSelector(tenant) } },
                ],
                containers: [
                    {
                        name: gatekeeperName,
                        image: imageReference(nodeImage),
                        command: ["node", `${gatekeeperPaths.source}/server.ts`, `${gatekeeperPaths.configDirectory}/${gatekeeperPaths.configFile}`],
                        ports: [{ name: "http", containerPort: gatekeeperPort, protocol: "TCP" }],
                        env: [
                            secretEnv(gatekeeperSecretEnv.oidcClientSecret),
                            secretEnv(gatekeeperSecretEnv.sessionKey),
                            secretEnv(gatekeeperSecretEnv.orthancPassword),
                            ...(auditDatabase ? [secretEnv(gatekeeperSecretEnv.auditDatabasePassword)] : []),
                            // Node trusts these besides its bundled CAs, for every TLS connection it opens.
                            ...(providerCa ? [{ name: "NODE_EXTRA_CA_CERTS", value: `${gatekeeperPaths.configDirectory}/${providerCaKey}` }] : []),
                        ],
                        resources: { requests: { cpu: "50m", memory: "96Mi" }, limits: { memory: "384Mi" } },
                        securityContext: restrictedContainerSecurity,
                        readinessProbe: probe,
                        livenessProbe: { ...probe, periodSeconds: 20 },
                        volumeMounts: [
                            { name: "source", mountPath: gatekeeperPaths.source, readOnly: true },
                            { name: "config", mountPath: gatekeeperPaths.configDirectory, readOnly: true },
                            { name: "tmp", mountPath: "/tmp" },
                        ],
                    },
                ],
                volumes: [
                    { name: "source", configMap: { name: gatekeeperName, items: sourceFiles.map((file) => ({ key: file, path: file })) } },
                    {
                        name: "config",
                        configMap: {
                            name: gatekeeperName,
                            items: [{ key: configKey, path: gatekeeperPaths.configFile }, ...(providerCa ? [{ key: providerCaKey, path: providerCaKey }] : [])],
                        },
                    },
                    { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
                ],
            },
        },
    };
}

export function gatekeeperServiceSpec(tenant: string): k8s.types.input.core.v1.ServiceSpec {
    return {
        type: "ClusterIP",
        selector: gatekeeperSelector(tenant),
        // Istio picks HTTP from the name.
        ports: [{ name: "http-gatekeeper", port: gatekeeperPort, targetPort: "http", protocol: "TCP" }],
    };
}

export function gatekeeperDisruptionBudgetSpec(tenant: string): k8s.types.input.policy.v1.PodDisruptionBudgetSpec {
    return { minAvailable: 1, selector: { matchLabels: gatekeeperSelector(tenant) } };
}

/** Names of the gatekeeper's walls in the tenant namespace. */
export const identityWallNames = {
    networkPolicy: "allow-gatekeeper",
    authorizationPolicy: "allow-gateway-to-gatekeeper",
    serviceEntry: "identity-provider",
    ciliumPolicy: "allow-gatekeeper-to-identity-provider",
} as const;

/** Where the gatekeeper reaches its identity provider: the issuer's host, the other hosts named, one port. */
export function identityProviderEndpoint(oidc: OidcConfig): { hosts: string[]; port: number } {
    const url = new URL(oidc.issuer);
    return { hosts: [url.hostname], port: url.port ? Number(url.port) : 443 };
}

/**
 * The gatekeeper's part of the tenant's walls (the `DatabaseWalls` shape, combined with the engine's by the tenant):
 * the tenant's gateway alone reaches it, on its port (NetworkPolicy by pods, the mesh by the gateway's identity); it
 * reaches Orthanc's web port and its identity provider, by name in the mesh (REGISTRY_ONLY) and by address, any
 * address, or Cilium's FQDN policy in the CNI, as the stack says. Orthanc's side (it admits the gatekeeper, and the
 * gateway on the DICOM port only) is security.ts', given `gatekeeper` in the policy context.
 */
export function identityWalls(tenant: string, names: TenantNames, oidc: OidcConfig, network: ClusterNetwork): DatabaseWalls {
    const ns = names.namespace;
    const pods = gatekeeperSelector(tenant);
    const { hosts, port } = identityProviderEndpoint(oidc);
    const addressed = hosts.filter(isIpv4Address);
    const named = hosts.filter((host) => !isIpv4Address(host));
    const cidrs = [...addressed.map((address) => `${address}/32`), ...(oidc.anyAddress ? ["0.0.0.0/0"] : oidc.addresses ?? [])];
    return gatekeeperWalls(tenant, names, {
        egress: cidrs.length > 0 ? [{ to: cidrs.map((cidr) => ({ ipBlock: { cidr } })), ports: [tcp(port)] }] : [],
        serviceEntries: externalTlsServiceEntries(ns, identityWallNames.serviceEntry, hosts, port, `tls-idp-${port}`, (index) => `identity-provider-${index}.gatekeeper.${ns}.internal`),
        cniPolicies: network.cni === "cilium" ? named.map((host, index) => ciliumFqdnPolicy(ns, `${identityWallNames.ciliumPolicy}-${index}`, pods, host, port, network.dns)) : [],
    });
}

/**
 * The gatekeeper's walls when its tenant signs in through the in-cluster Keycloak: out to Keycloak's HTTP port inside
 * the mesh, by pods (no ServiceEntry: Keycloak's Service is in the mesh's registry; no address).
 */
export function keycloakGatekeeperWalls(tenant: string, names: TenantNames): DatabaseWalls {
    return gatekeeperWalls(tenant, names, {
        egress: [{ to: [{ ...namespaceNamed(keycloakNamespace), podSelector: { matchLabels: { ...keycloakPodLabels } } }], ports: [tcp(keycloakPorts.container)] }],
        serviceEntries: [],
        cniPolicies: [],
    });
}

/** The way to the identity provider, by NetworkPolicy, by the mesh's registry and by the CNI. */
interface ProviderWay {
    egress: k8s.types.input.networking.v1.NetworkPolicyEgressRule[];
    serviceEntries: DatabaseWalls["serviceEntries"];
    cniPolicies: DatabaseWalls["cniPolicies"];
}

function gatekeeperWalls(tenant: string, names: TenantNames, provider: ProviderWay): DatabaseWalls {
    const ns = names.namespace;
    const pods = gatekeeperSelector(tenant);
    return {
        orthancEgress: [],
        network: [
            {
                namespace: ns,
                name: identityWallNames.networkPolicy,
                spec: {
                    podSelector: { matchLabels: pods },
                    policyTypes: ["Ingress", "Egress"],
                    ingress: [{ from: [{ ...namespaceNamed(names.gatewayNamespace), podSelector: { matchLabels: gatewaySelector(names) } }], ports: [tcp(gatekeeperPort)] }],
                    egress: [{ to: [{ podSelector: { matchLabels: orthancSelector(tenant) } }], ports: [tcp(orthancPorts.http)] }, ...provider.egress],
                },
            },
        ],
        authorization: [
            {
                namespace: ns,
                name: identityWallNames.authorizationPolicy,
                spec: {
                    selector: { matchLabels: pods },
                    action: "ALLOW",
                    rules: [{ from: [{ source: { principals: [gatewayPrincipal(names)] } }], to: [{ operation: { ports: [String(gatekeeperPort)] } }] }],
                },
            },
        ],
        serviceEntries: provider.serviceEntries,
        cniPolicies: provider.cniPolicies,
    };
}

/** What the policy context needs to put the gatekeeper in front of Orthanc's web port (security.ts). */
export function gatekeeperFront(tenant: string, names: TenantNames, inClusterKeycloak = false): WebFront {
    return {
        podLabels: gatekeeperSelector(tenant),
        principal: gatekeeperPrincipal(names),
        port: gatekeeperPort,
        ...(inClusterKeycloak ? { signInPods: { namespace: keycloakNamespace, podLabels: { ...keycloakPodLabels }, port: keycloakPorts.container } } : {}),
    };
}

/** The tenant's web route: the gatekeeper, and the realm's paths to the in-cluster Keycloak when the tenant's realm is there. */
export function gatekeeperWebBackend(tenant: string, names: TenantNames, inClusterKeycloak = false): WebBackend {
    return {
        host: gatekeeperHost(names),
        port: gatekeeperPort,
        ...(inClusterKeycloak ? { prefixed: { prefixes: realmPathPrefixes(tenant), host: keycloakServiceHost, port: keycloakPorts.service } } : {}),
    };
}

export interface TenantIdentityArgs {
    tenant: string;
    names: TenantNames;
    identity: IdentityConfig;
    /** The audit database the tenant's engine renders (its connection, the gatekeeper role's password); stdout only without. */
    auditDatabase?: DatabaseEndpoint["audit"];
    /** Where people reach the tenant (`tenantWebUrl`). */
    webUrl: string;
    /** The tenant's realm when it signs in through the in-cluster Keycloak: its generated web client secret, and Keycloak's readiness. */
    keycloakRealm?: { webClientSecret: pulumi.Output<string>; ready: pulumi.Resource[] };
    /** The source folder; the one beside this file unless given. */
    sourceDirectory?: string;
    /** What the pods wait for: the namespace, the tenant's walls, the sidecar injector. */
    dependsOn: pulumi.Input<pulumi.Resource>[];
}

/**
 * The tenant's gatekeeper. Its Orthanc password is generated here and handed to Orthanc's configuration
 * (`orthancPassword`); its session key too; the OIDC client secret comes from the stack configuration.
 */
export class TenantIdentity extends pulumi.ComponentResource {
    /** The gatekeeper's Orthanc password (secret), for Orthanc's RegisteredUsers. */
    readonly orthancPassword: pulumi.Output<string>;
    /** Where the tenant's users are sent to sign in, and the redirect URI to register with the provider. */
    readonly signIn: { issuer: string; clientId: string; redirectUri: string };

    constructor(name: string, args: TenantIdentityArgs, opts?: pulumi.ComponentResourceOptions) {
        super("korthweb:identity:TenantIdentity", name, {}, opts);
        const { tenant, names, identity } = args;
        const ns = names.namespace;
        const inNamespace = { parent: this, dependsOn: args.dependsOn };
        const clientSecret = args.keycloakRealm?.webClientSecret ?? pulumi.secret(identity.oidc?.clientSecret ?? "");
        if (!args.keycloakRealm && !identity.oidc) throw new Error(`tenants.${tenant}.identity.keycloak: the in-cluster Keycloak's realm was not given to the tenant`);
        const auditDatabase = args.auditDatabase;
        const config = gatekeeperConfig(tenant, names, identity, auditDatabase?.connection, args.webUrl);
        const sources = gatekeeperSourceFiles(args.sourceDirectory);
        // Node takes one file of extra CAs: the provider's and the audit server's, when either is given.
        const extraCas = [identity.oidc?.caCertificate, auditDatabase?.caCertificate].filter((pem): pem is string => pem !== undefined);
        const extraCa = extraCas.length > 0 ? extraCas.map((pem) => pem.trimEnd()).join("\n") + "\n" : undefined;
        const data = gatekeeperConfigMapData(config, sources, extraCa);

        this.orthancPassword = pulumi.secret(new random.RandomPassword(`${name}-orthanc-password`, { length: 32, special: false }, { parent: this }).result);
        const sessionKey = pulumi.secret(new random.RandomBytes(`${name}-session-key`, { length: 32 }, { parent: this }).base64);
        const configMap = new k8s.core.v1.ConfigMap(`${name}-config`, { metadata: { name: gatekeeperName, namespace: ns }, data }, inNamespace);
        const secret = new k8s.core.v1.Secret(
            `${name}-secret`,
            {
                metadata: { name: gatekeeperName, namespace: ns },
                stringData: {
                    [gatekeeperSecretEnv.oidcClientSecret]: clientSecret,
                    [gatekeeperSecretEnv.sessionKey]: sessionKey,
                    [gatekeeperSecretEnv.orthancPassword]: this.orthancPassword,
                    ...(auditDatabase ? { [gatekeeperSecretEnv.auditDatabasePassword]: auditDatabase.password } : {}),
                },
            },
            inNamespace,
        );
        new k8s.core.v1.ServiceAccount(`${name}-service-account`, { metadata: { name: gatekeeperName, namespace: ns }, automountServiceAccountToken: false }, inNamespace);
        // A new session key, Orthanc or audit database password rolls the pods as well (a digest is no secret).
        const checksum = pulumi
            .unsecret(
                pulumi
                    .all([sessionKey, this.orthancPassword, auditDatabase?.password ?? ""])
                    .apply(([key, password, auditPassword]) => createHash("sha256").update(key).update(password).update(auditPassword).digest("hex")),
            )
            .apply((secrets) => gatekeeperChecksum({ ...data, secrets }));
        new k8s.apps.v1.Deployment(
            name,
            {
                metadata: { name: gatekeeperName, namespace: ns, labels: { app: gatekeeperName } },
                spec: checksum.apply((sum) => gatekeeperDeploymentSpec(tenant, Object.keys(sources), sum, extraCa !== undefined, auditDatabase !== undefined)),
            },
            { parent: this, dependsOn: [...args.dependsOn, configMap, secret, ...(auditDatabase?.ready ?? []), ...(args.keycloakRealm?.ready ?? [])] },
        );
        new k8s.core.v1.Service(`${name}-service`, { metadata: { name: gatekeeperName, namespace: ns }, spec: gatekeeperServiceSpec(tenant) }, inNamespace);
        new k8s.policy.v1.PodDisruptionBudget(`${name}-disruption-budget`, { metadata: { name: gatekeeperName, namespace: ns }, spec: gatekeeperDisruptionBudgetSpec(tenant) }, inNamespace);

        this.signIn = { issuer: config.oidc.issuer, clientId: config.oidc.clientId, redirectUri: `${config.publicUrl}/oauth2/callback` };
        this.registerOutputs({ signIn: this.signIn });
    }
}
