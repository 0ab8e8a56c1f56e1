import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { PkiConfig } from "../config/schema";
import { CertificateAuthority } from "../pki/certificateAuthority";
import { tenantCaProfile } from "../pki/profile";

export interface TenantPkiArgs {
    tenant: string;
    displayName: string;
    pki: PkiConfig;
    /** Signs the tenant CA. */
    rootCa: CertificateAuthority;
    /**
     * cert-manager's namespace. A ClusterIssuer reads its CA from there (cert-manager's "cluster resource namespace"),
     * so the tenant CA's key lives in neither of the tenant's namespaces.
     */
    certManagerNamespace: string;
    /** cert-manager's CRDs and webhook ready. */
    certManagerReady: pulumi.Input<pulumi.Resource>[];
}

/**
 * A tenant's certificate authority: signed by the root with @pulumi/tls, and a cert-manager ClusterIssuer that issues
 * and renews the tenant's server certificate from it.
 *
 * The issuer is cluster-scoped because the certificate is needed in the gateway's namespace, and a namespaced Issuer
 * there would need the CA key in the one namespace whose service account can read every Secret (the gateway's).
 */
export class TenantPki extends pulumi.ComponentResource {
    readonly ca: CertificateAuthority;
    /** Reference to the ClusterIssuer, for cert-manager Certificates. */
    readonly issuerRef: { group: string; kind: string; name: string };
    /** Wait on this before creating Certificates. */
    readonly issuer: pulumi.Resource;

    constructor(name: string, args: TenantPkiArgs, opts?: pulumi.ComponentResourceOptions) {
        super("korthweb:tenant:TenantPki", name, {}, opts);
        this.ca = new CertificateAuthority(
            `${name}-ca`,
            {
                commonName: `${args.displayName} CA`,
                organization: args.pki.organization,
                profile: tenantCaProfile(args.pki),
                issuer: args.rootCa,
            },
            { parent: this },
        );
        const secretName = tenantCaSecretName(args.tenant);
        const caSecret = new k8s.core.v1.Secret(
            `${name}-ca-secret`,
            {
                metadata: { name: secretName, namespace: args.certManagerNamespace },
                type: "kubernetes.io/tls",
                // The chain, so issued certificates carry the path to the root.
                stringData: { "tls.crt": this.ca.chainPem, "tls.key": this.ca.privateKeyPem },
            },
            { parent: this, dependsOn: args.certManagerReady },
        );
        this.issuerRef = { group: "cert-manager.io", kind: "ClusterIssuer", name: secretName };
        this.issuer = new k8s.apiextensions.CustomResource(
            `${name}-issuer`,
            {
                apiVersion: "cert-manager.io/v1",
                kind: "ClusterIssuer",
                metadata: { name: secretName, labels: { "korthweb.io/tenant": args.tenant } },
                spec: { ca: { secretName } },
            },
            { parent: this, dependsOn: [caSecret, ...args.certManagerReady] },
        );
        this.registerOutputs({ caCertificate: this.ca.certificatePem });
    }
}

/** Name of the tenant CA's Secret (in cert-manager's namespace) and of its ClusterIssuer. */
export function tenantCaSecretName(tenant: string): string {
    return `korthweb-${tenant}-ca`;
}
