import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { createHash } from "crypto";
import { ModalityConfig, PkiConfig } from "../config/schema";
import { CertificateAuthority } from "../pki/certificateAuthority";
import { dicomClientProfile, tenantCaProfile } from "../pki/profile";

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
    /** Modalities that get a client certificate from the tenant CA. */
    modalities: ModalityConfig[];
}

/** A modality's credentials for the DICOM port. */
export interface ModalityCertificate {
    aeTitle: string;
    /** PEM certificate, signed by the tenant CA. */
    certificate: pulumi.Output<string>;
    /** PEM private key; a Pulumi secret, in the state only. */
    privateKey: pulumi.Output<string>;
    /** SHA-256 of the certificate's DER encoding, hex: what the gateway's allow-list holds. */
    fingerprint: pulumi.Output<string>;
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
    readonly modalityCertificates: Record<string, ModalityCertificate>;

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
        const profile = dicomClientProfile(args.pki);
        this.modalityCertificates = Object.fromEntries(
            args.modalities.map((modality) => {
                // The generation is part of the names: a new one replaces this modality's key and certificate alone.
                const id = `${name}-modality-${modality.name}-g${modality.certificateGeneration}`;
                const key = new tls.PrivateKey(`${id}-key`, { algorithm: profile.keyAlgorithm, rsaBits: profile.rsaBits }, { parent: this });
                const privateKey = pulumi.secret(key.privateKeyPem);
                const request = new tls.CertRequest(
                    `${id}-request`,
                    { privateKeyPem: privateKey, subject: { commonName: modality.aeTitle, organization: args.pki.organization, organizationalUnit: modality.name } },
                    { parent: this },
                );
                const certificate = new tls.LocallySignedCert(
                    `${id}-certificate`,
                    {
                        certRequestPem: request.certRequestPem,
                        caPrivateKeyPem: this.ca.privateKeyPem,
                        caCertPem: this.ca.certificatePem,
                        allowedUses: profile.allowedUses,
                        validityPeriodHours: profile.validityHours,
                        earlyRenewalHours: Math.floor(profile.validityHours / 10),
                    },
                    { parent: this },
                );
                const entry: ModalityCertificate = {
                    aeTitle: modality.aeTitle,
                    certificate: certificate.certPem,
                    privateKey,
                    fingerprint: certificate.certPem.apply(certificateFingerprint),
                };
                return [modality.name, entry];
            }),
        );
        this.registerOutputs({ caCertificate: this.ca.certificatePem });
    }

    /** The fingerprints of every modality certificate: the only client certificates the DICOM port accepts. */
    get allowedClientFingerprints(): pulumi.Output<string[]> {
        return pulumi.all(Object.values(this.modalityCertificates).map((m) => m.fingerprint));
    }
}

/** SHA-256 of a PEM certificate's DER encoding, lowercase hex without separators (Envoy's verify_certificate_hash). */
export function certificateFingerprint(pem: string): string {
    const base64 = pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, "").replace(/\s+/g, "");
    return createHash("sha256").update(Buffer.from(base64, "base64")).digest("hex");
}

/** Name of the tenant CA's Secret (in cert-manager's namespace) and of its ClusterIssuer. */
export function tenantCaSecretName(tenant: string): string {
    return `korthweb-${tenant}-ca`;
}
