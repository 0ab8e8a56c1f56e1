import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { createHash } from "crypto";
import { IngressConfig, PkiConfig, TenantConfig } from "../config/schema";
import { pinnedRelease } from "../k8s/helm";
import { namespace } from "../k8s/namespace";
import { CertificateAuthority } from "../pki/certificateAuthority";
import { certManagerDuration, certManagerUsages, serverProfile, tenantCaProfile } from "../pki/profile";
import { charts } from "../versions";
import {
    cacertSecretName,
    dicomGatewaySpec,
    dicomVirtualServiceSpec,
    gatewaySecrets,
    gatewayValues,
    ingressPorts,
    orthancServiceName,
    webGatewaySpec,
    webVirtualServiceSpec,
} from "./ingress";
import { tenantNames } from "./naming";
import {
    orthancAdminUser,
    orthancAutoscalerSpec,
    orthancConfigFile,
    orthancConfigSecretName,
    orthancDeploymentSpec,
    orthancDisruptionBudgetSpec,
    orthancServiceSpec,
    tenantOrthancConfig,
} from "./orthancWorkload";
import { connectionBudget, postgresHaValues, postgresRelease, postgresSecrets } from "./postgres";
import { authorizationPolicies, networkPolicies, orthancServiceAccount } from "./security";

/** The tenant CA's secret; the name Korthweb's runbooks use to sign modality certificates. */
const tenantCaSecretName = "int-ca-secret";

export interface OrthancTenantArgs {
    tenant: TenantConfig;
    domain: string;
    ingress: IngressConfig;
    pki: PkiConfig;
    /** Signs the tenant's intermediate CA. */
    rootCa: CertificateAuthority;
    istioNamespace: string;
    /** Namespace whose Prometheus may scrape the tenant's proxies. */
    monitoringNamespace: string;
    /** Istio CRDs and validating webhook ready. */
    istioCrdsReady: pulumi.Input<pulumi.Resource>[];
    /** Sidecar injector and CNI agent ready: pods created before would run without a sidecar. */
    istioInjectionReady: pulumi.Input<pulumi.Resource>[];
    certManagerCrdsReady: pulumi.Input<pulumi.Resource>[];
}

/** What a tenant exports: where to reach it and how to trust it. */
export interface TenantOutputs {
    namespace: string;
    webUrl: string;
    dicomHost: string;
    dicomPort: number;
    ingressAddress: pulumi.Output<string>;
    adminUser: string;
    adminPassword: pulumi.Output<string>;
    /** The tenant CA, signed by the root: what a client needs to verify the tenant's servers (with the root). */
    caCertificate: pulumi.Output<string>;
    /** What the DICOM port trusts for client certificates: the tenant CA alone. */
    dicomClientTrustAnchor: pulumi.Output<string>;
}

/**
 * One isolated Orthanc site: namespace, PKI, database, Orthanc, ingress gateway and both security walls.
 */
export class OrthancTenant extends pulumi.ComponentResource {
    readonly outputs: TenantOutputs;

    constructor(name: string, args: OrthancTenantArgs, opts?: pulumi.ComponentResourceOptions) {
        super("korthweb:tenant:OrthancTenant", name, {}, opts);
        const { tenant } = args;
        const names = tenantNames(tenant.name, args.domain);
        const ns = names.namespace;
        // Data-bearing resources are protected: removing the tenant from the configuration fails instead of
        // deleting studies. See README, "Deleting a tenant".
        const dataOpts = { parent: this, protect: tenant.protectData };

        const tenantNamespace = namespace(
            `${name}-namespace`,
            {
                name: ns,
                // Baseline, not restricted: the Istio CNI removes the need for NET_ADMIN, but the chart-installed
                // gateway and database pods do not all meet "restricted". Warnings and audit stay at "restricted".
                enforce: "baseline",
                istioInjection: true,
                labels: { "korthweb.io/tenant": tenant.name },
            },
            dataOpts,
        );
        const inNamespace = { parent: this, dependsOn: [tenantNamespace] };

        // --- Identity: the tenant CA and the certificates cert-manager issues from it.
        const tenantCa = new CertificateAuthority(
            `${name}-ca`,
            {
                commonName: `${tenant.displayName} CA`,
                organization: args.pki.organization,
                profile: tenantCaProfile(args.pki),
                issuer: args.rootCa,
            },
            { parent: this },
        );
        const caSecret = new k8s.core.v1.Secret(
            `${name}-int-ca-secret`,
            {
                metadata: { name: tenantCaSecretName, namespace: ns },
                type: "kubernetes.io/tls",
                stringData: {
                    "tls.crt": tenantCa.chainPem,
                    "tls.key": tenantCa.privateKeyPem,
                    "ca.crt": args.rootCa.certificatePem,
                },
            },
            inNamespace,
        );
        const clientTrust = { "ca.crt": tenantCa.trustAnchorPem, cacert: tenantCa.trustAnchorPem };
        const clientCaSecrets = [gatewaySecrets.dicomClientCa, cacertSecretName(gatewaySecrets.serverTls)].map(
            (secretName) =>
                new k8s.core.v1.Secret(
                    `${name}-${secretName}`,
                    { metadata: { name: secretName, namespace: ns }, stringData: clientTrust },
                    inNamespace,
                ),
        );
        const issuer = new k8s.apiextensions.CustomResource(
            `${name}-issuer`,
            {
                apiVersion: "cert-manager.io/v1",
                kind: "Issuer",
                metadata: { name: "tenant-ca", namespace: ns },
                spec: { ca: { secretName: tenantCaSecretName } },
            },
            { parent: this, dependsOn: [caSecret, ...args.certManagerCrdsReady] },
        );
        const server = serverProfile(args.pki);
        const serverCertificate = new k8s.apiextensions.CustomResource(
            `${name}-server-certificate`,
            {
                apiVersion: "cert-manager.io/v1",
                kind: "Certificate",
                metadata: { name: "orthanc-server", namespace: ns },
                spec: {
                    secretName: gatewaySecrets.serverTls,
                    commonName: names.webHost,
                    dnsNames: [names.webHost, names.dicomHost],
                    subject: { organizations: [args.pki.organization] },
                    ...certManagerDuration(server),
                    usages: certManagerUsages(server),
                    privateKey: { algorithm: server.keyAlgorithm, size: server.rsaBits, rotationPolicy: "Always" },
                    issuerRef: { group: "cert-manager.io", kind: "Issuer", name: "tenant-ca" },
                },
            },
            { parent: this, dependsOn: [issuer, ...args.certManagerCrdsReady] },
        );

        // --- Credentials: generated, never defaulted, secret in state and in every resource that holds them.
        const password = (purpose: string, protect = tenant.protectData) =>
            pulumi.secret(
                new random.RandomPassword(`${name}-${purpose}-password`, { length: 32, special: false }, { parent: this, protect })
                    .result,
            );
        const adminPassword = password("orthanc-admin", false);
        const databasePassword = password("database");
        const postgresCredentials = new k8s.core.v1.Secret(
            `${name}-postgresql-credentials`,
            {
                metadata: { name: postgresSecrets.postgresql, namespace: ns },
                stringData: {
                    password: databasePassword,
                    "postgres-password": password("postgres-superuser"),
                    "repmgr-password": password("repmgr"),
                },
            },
            { ...dataOpts, dependsOn: [tenantNamespace] },
        );
        const pgpoolCredentials = new k8s.core.v1.Secret(
            `${name}-pgpool-credentials`,
            {
                metadata: { name: postgresSecrets.pgpool, namespace: ns },
                stringData: { "admin-password": password("pgpool-admin"), "sr-check-password": password("sr-check") },
            },
            { ...dataOpts, dependsOn: [tenantNamespace] },
        );

        // --- Mesh security first, so no workload ever runs without it.
        const istioOpts = { parent: this, dependsOn: [tenantNamespace, ...args.istioCrdsReady] };
        const meshPolicies = [
            new k8s.apiextensions.CustomResource(
                `${name}-strict-mtls`,
                {
                    apiVersion: "security.istio.io/v1",
                    kind: "PeerAuthentication",
                    metadata: { name: "default", namespace: ns },
                    spec: { mtls: { mode: "STRICT" } },
                },
                istioOpts,
            ),
        ];
        const policyContext = { tenant: tenant.name, names, istioNamespace: args.istioNamespace, monitoringNamespace: args.monitoringNamespace };
        for (const policy of authorizationPolicies(policyContext)) {
            meshPolicies.push(
                new k8s.apiextensions.CustomResource(
                    `${name}-authz-${policy.name}`,
                    {
                        apiVersion: "security.istio.io/v1",
                        kind: "AuthorizationPolicy",
                        metadata: { name: policy.name, namespace: ns },
                        spec: policy.spec,
                    },
                    istioOpts,
                ),
            );
        }
        const networkWall = networkPolicies(policyContext).map(
            (policy) =>
                new k8s.networking.v1.NetworkPolicy(
                    `${name}-netpol-${policy.name}`,
                    { metadata: { name: policy.name, namespace: ns }, spec: policy.spec },
                    inNamespace,
                ),
        );
        const workloadOpts = {
            parent: this,
            dependsOn: [tenantNamespace, ...meshPolicies, ...networkWall, ...args.istioInjectionReady],
        };

        // --- PostgreSQL HA.
        const postgres = pinnedRelease(
            `${name}-postgresql-ha`,
            {
                pin: charts.postgresqlHa,
                releaseName: postgresRelease,
                namespace: ns,
                values: postgresHaValues({
                    replicas: tenant.postgres.replicas,
                    pgpoolReplicas: tenant.postgres.pgpoolReplicas,
                    volumeSize: tenant.postgres.volumeSize,
                    storageClass: tenant.postgres.storageClass,
                    connections: connectionBudget(tenant.orthanc.maxReplicas, tenant.postgres.pgpoolReplicas),
                }),
            },
            { ...workloadOpts, protect: tenant.protectData, dependsOn: [...workloadOpts.dependsOn, postgresCredentials, pgpoolCredentials] },
        );

        // --- Orthanc.
        const configJson = pulumi.secret(
            pulumi
                .all([adminPassword, databasePassword])
                .apply(([admin, database]) =>
                    JSON.stringify(tenantOrthancConfig(tenant, args.domain, { adminPassword: admin, databasePassword: database }), null, 2),
                ),
        );
        const configSecret = new k8s.core.v1.Secret(
            `${name}-orthanc-config`,
            { metadata: { name: orthancConfigSecretName, namespace: ns }, stringData: { [orthancConfigFile]: configJson } },
            inNamespace,
        );
        // A digest is not secret material; it only tells the Deployment that the configuration changed.
        const configChecksum = pulumi.unsecret(configJson.apply((json) => createHash("sha256").update(json).digest("hex")));
        new k8s.core.v1.ServiceAccount(
            `${name}-orthanc-service-account`,
            { metadata: { name: orthancServiceAccount, namespace: ns }, automountServiceAccountToken: false },
            inNamespace,
        );
        const deployment = new k8s.apps.v1.Deployment(
            `${name}-orthanc`,
            {
                metadata: { name: "orthanc", namespace: ns, labels: { app: "orthanc" } },
                spec: configChecksum.apply((checksum) => orthancDeploymentSpec(tenant.name, tenant.orthanc, checksum)),
            },
            // After creation the autoscaler sets the replica count; an update must not reset it.
            { ...workloadOpts, dependsOn: [...workloadOpts.dependsOn, configSecret, postgres], ignoreChanges: ["spec.replicas"] },
        );
        new k8s.core.v1.Service(
            `${name}-orthanc-service`,
            { metadata: { name: orthancServiceName, namespace: ns }, spec: orthancServiceSpec(tenant.name) },
            inNamespace,
        );
        new k8s.autoscaling.v2.HorizontalPodAutoscaler(
            `${name}-orthanc-autoscaler`,
            { metadata: { name: "orthanc", namespace: ns }, spec: orthancAutoscalerSpec(tenant.orthanc, "orthanc") },
            { parent: this, dependsOn: [deployment] },
        );
        new k8s.policy.v1.PodDisruptionBudget(
            `${name}-orthanc-disruption-budget`,
            { metadata: { name: "orthanc", namespace: ns }, spec: orthancDisruptionBudgetSpec(tenant.name) },
            inNamespace,
        );

        // --- Ingress: the tenant's own gateway and what binds to it.
        const gateway = pinnedRelease(
            `${name}-ingressgateway`,
            {
                pin: charts.istioGateway,
                releaseName: names.gatewayRelease,
                namespace: ns,
                values: gatewayValues(names, args.ingress, tenant.name),
            },
            { ...workloadOpts, dependsOn: [...workloadOpts.dependsOn, serverCertificate, ...clientCaSecrets] },
        );
        const routes: [string, Record<string, unknown>, (gatewayName: string) => Record<string, unknown>][] = [
            ["web", webGatewaySpec(names), (gatewayName) => webVirtualServiceSpec(names, gatewayName)],
            ["dicom", dicomGatewaySpec(names), (gatewayName) => dicomVirtualServiceSpec(names, gatewayName)],
        ];
        for (const [route, gatewaySpec, virtualServiceSpec] of routes) {
            new k8s.apiextensions.CustomResource(
                `${name}-${route}-gateway`,
                { apiVersion: "networking.istio.io/v1", kind: "Gateway", metadata: { name: route, namespace: ns }, spec: gatewaySpec },
                istioOpts,
            );
            new k8s.apiextensions.CustomResource(
                `${name}-${route}-virtual-service`,
                {
                    apiVersion: "networking.istio.io/v1",
                    kind: "VirtualService",
                    metadata: { name: route, namespace: ns },
                    spec: virtualServiceSpec(route),
                },
                istioOpts,
            );
        }
        const gatewayService = k8s.core.v1.Service.get(`${name}-gateway-service`, `${ns}/${names.gatewayRelease}`, {
            parent: this,
            dependsOn: [gateway],
        });

        this.outputs = {
            namespace: ns,
            webUrl: `https://${names.webHost}`,
            dicomHost: names.dicomHost,
            dicomPort: ingressPorts.dicomTls,
            ingressAddress: ingressAddress(gatewayService),
            adminUser: orthancAdminUser,
            adminPassword,
            caCertificate: tenantCa.certificatePem,
            dicomClientTrustAnchor: tenantCa.trustAnchorPem,
        };
        this.registerOutputs({ ...this.outputs });
    }
}

/** The load balancer's IP or host name once the cloud has assigned it, else the cluster IP. */
function ingressAddress(service: k8s.core.v1.Service): pulumi.Output<string> {
    return pulumi
        .all([service.status, service.spec])
        .apply(([status, spec]) => status?.loadBalancer?.ingress?.[0]?.ip ?? status?.loadBalancer?.ingress?.[0]?.hostname ?? spec?.clusterIP ?? "pending");
}
