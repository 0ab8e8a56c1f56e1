import type * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { pinnedRelease } from "../k8s/helm";
import { namespace } from "../k8s/namespace";
import { createIssuancePolicy, IssuancePolicy, issuancePolicy } from "./certManager";
import { charts } from "../versions";

export interface CloudNativePgOperatorArgs {
    namespace?: string;
    /**
     * cert-manager's CRDs and webhook: the Barman Cloud plugin's chart issues the plugin's gRPC server and client
     * certificates with a cert-manager Issuer and Certificates (templates/certificate-issuer.yaml,
     * server-certificate.yaml, client-certificate.yaml in cloudnative-pg/charts at plugin-barman-cloud-v0.7.0).
     */
    certManagerReady: pulumi.Input<pulumi.Resource>[];
    /** cert-manager's controller identity, which the plugin's issuance policy admits (CertManager.controllerServiceAccount). */
    certManagerServiceAccount: { name: string; namespace: string };
}

/** Release names; the charts name their Deployments and pod labels after them. */
export const cloudnativePgReleases = { operator: "cloudnative-pg", barmanCloud: "plugin-barman-cloud" } as const;

/**
 * Labels of the operator's pods: the chart's selector labels (`app.kubernetes.io/name` is the chart name, `instance`
 * the release; charts/cloudnative-pg/templates/_helpers.tpl at cloudnative-pg-v0.29.0). The tenants' NetworkPolicies
 * admit the operator by these labels.
 */
export const cloudnativePgOperatorPodLabels = { "app.kubernetes.io/name": "cloudnative-pg" } as const;

/**
 * The CloudNativePG operator (1.30, chart cloudnative-pg 0.29.0) and its Barman Cloud plugin (0.13, chart
 * plugin-barman-cloud 0.7.0) in one namespace, outside the mesh. The plugin must run in the operator's namespace
 * (plugin-barman-cloud v0.13.0 web/docs/installation.mdx), where the operator discovers it by its Service.
 */
export class CloudNativePgOperator extends pulumi.ComponentResource {
    readonly namespace: string;
    readonly operator: k8s.helm.v3.Release;
    readonly barmanCloud: k8s.helm.v3.Release;
    /** Wait on these before creating Clusters, Poolers, ScheduledBackups or ObjectStores: CRDs and webhooks installed. */
    readonly ready: pulumi.Resource[];

    constructor(name: string, args: CloudNativePgOperatorArgs, opts?: pulumi.ComponentResourceOptions) {
        super("korthweb:platform:CloudNativePgOperator", name, {}, opts);
        this.namespace = args.namespace ?? "cnpg-system";
        // Both charts run their pods non-root, with RuntimeDefault seccomp, no privilege escalation and every capability
        // dropped (containerSecurityContext/podSecurityContext in both values files): "restricted" admits them.
        // No sidecar: the operator reaches instances by pod IP over its own TLS, and the plugin talks gRPC with mutual
        // TLS from cert-manager; the mesh would only get in the way of the admission webhooks the API server calls.
        const ns = namespace(`${name}-namespace`, { name: this.namespace, enforce: "restricted", istioInjection: false }, { parent: this });
        this.operator = pinnedRelease(
            `${name}-operator`,
            { pin: charts.cloudnativePg, releaseName: cloudnativePgReleases.operator, namespace: this.namespace, values: cloudnativePgValues() },
            { parent: this, dependsOn: [ns] },
        );
        // cert-manager approves nothing by itself (certManager.ts): the plugin's two Certificates need a policy before the
        // release, whose wait for the plugin's Deployment would otherwise time out on unissued secrets.
        const issuance = createIssuancePolicy(
            `${name}-barman-cloud`,
            barmanCloudIssuancePolicy(this.namespace, args.certManagerServiceAccount),
            { parent: this, dependsOn: [ns, ...args.certManagerReady] },
        );
        this.barmanCloud = pinnedRelease(
            `${name}-barman-cloud`,
            { pin: charts.barmanCloudPlugin, releaseName: cloudnativePgReleases.barmanCloud, namespace: this.namespace, values: barmanCloudPluginValues() },
            // The plugin's RBAC names the operator's API group; its Certificates need cert-manager.
            { parent: this, dependsOn: [ns, this.operator, ...args.certManagerReady, ...issuance] },
        );
        this.ready = [this.operator, this.barmanCloud];
        this.registerOutputs({ namespace: this.namespace });
    }
}

export function cloudnativePgValues(): Record<string, unknown> {
    return {
        // Two replicas with leader election: a Cluster's failover is the operator's job.
        replicaCount: 2,
        crds: { create: true },
        webhook: { mutating: { create: true, failurePolicy: "Fail" }, validating: { create: true, failurePolicy: "Fail" } },
        config: {
            create: true,
            // Tenants' namespaces are created by the program; the operator watches them all.
            clusterWide: true,
        },
        resources: { requests: { cpu: "100m", memory: "256Mi" }, limits: { memory: "1Gi" } },
        monitoring: { podMonitorEnabled: false, grafanaDashboard: { create: false } },
    };
}

export function barmanCloudPluginValues(): Record<string, unknown> {
    return {
        crds: { create: true },
        // The chart's own self-signed Issuer for the plugin's gRPC certificates (cert-manager must be installed).
        certificate: { createClientCertificate: true, createServerCertificate: true, createIssuer: true },
        resources: { requests: { cpu: "50m", memory: "128Mi" }, limits: { memory: "512Mi" } },
    };
}

/**
 * What the plugin's own self-signed Issuer may sign: exactly its two Certificates, in its namespace (cloudnative-pg/charts
 * at plugin-barman-cloud-v0.7.0, templates/certificate-issuer.yaml, client-certificate.yaml, server-certificate.yaml:
 * Issuer `<fullname>-selfsigned-issuer`, fullname = the release name since it contains the chart's name; CN
 * `barman-cloud-client` with `client auth`; CN and DNS name `barman-cloud` (service.name, which the chart says not to
 * change) with `server auth`; duration 2160h; cert-manager's default key, RSA 2048).
 */
export function barmanCloudIssuancePolicy(namespaceName: string, requester: { name: string; namespace: string }): IssuancePolicy {
    return issuancePolicy({
        name: `korthweb-${cloudnativePgReleases.barmanCloud}`,
        issuerRef: { group: "cert-manager.io", kind: "Issuer", name: `${cloudnativePgReleases.barmanCloud}-selfsigned-issuer` },
        namespace: namespaceName,
        requester,
        allowed: {
            commonName: { value: "barman-cloud*", required: true },
            dnsNames: { values: ["barman-cloud"] },
            usages: ["client auth", "server auth"],
            isCA: false,
        },
        constraints: { maxDuration: "2160h", privateKey: { algorithm: "RSA", minSize: 2048 } },
    });
}
