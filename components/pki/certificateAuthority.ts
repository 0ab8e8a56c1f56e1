import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { CertificateProfile } from "./profile";

export interface CertificateAuthorityArgs {
    commonName: string;
    organization: string;
    profile: CertificateProfile;
    /** The CA that signs this one; a self-signed root when absent. */
    issuer?: CertificateAuthority;
}

/**
 * A certificate authority made with @pulumi/tls: a private key and a CA certificate, self-signed (the root) or signed
 * by another CA (a tenant's intermediate).
 *
 * The private key only leaves this component wrapped in `pulumi.secret`, so it is encrypted in the state and in
 * every resource that receives it.
 */
export class CertificateAuthority extends pulumi.ComponentResource {
    readonly certificatePem: pulumi.Output<string>;
    readonly privateKeyPem: pulumi.Output<string>;
    /** This CA's certificate followed by its issuers', as a TLS peer needs to build the path to the root. */
    readonly chainPem: pulumi.Output<string>;
    /**
     * A certificate that makes this CA, and only this CA, a trust anchor. For a root, its certificate. For an
     * intermediate, a self-signed certificate with the same key and subject: OpenSSL-based peers (Envoy, DCMTK,
     * Orthanc) do not accept an intermediate alone as a trust anchor, and adding the root would trust every sibling
     * CA. Certificates this CA issues chain to either form, since both carry the same name and key.
     */
    readonly trustAnchorPem: pulumi.Output<string>;

    constructor(name: string, args: CertificateAuthorityArgs, opts?: pulumi.ComponentResourceOptions) {
        super("korthweb:pki:CertificateAuthority", name, {}, opts);
        const key = new tls.PrivateKey(
            `${name}-key`,
            { algorithm: args.profile.keyAlgorithm, rsaBits: args.profile.rsaBits },
            { parent: this },
        );
        this.privateKeyPem = pulumi.secret(key.privateKeyPem);
        const subject = { commonName: args.commonName, organization: args.organization };
        const certificateArgs = {
            isCaCertificate: true,
            maxPathLength: args.profile.maxPathLength,
            allowedUses: args.profile.allowedUses,
            validityPeriodHours: args.profile.validityHours,
            earlyRenewalHours: args.profile.earlyRenewalHours ?? Math.floor(args.profile.validityHours / 10),
            setSubjectKeyId: true,
        };

        if (args.issuer === undefined) {
            const certificate = new tls.SelfSignedCert(
                `${name}-certificate`,
                { ...certificateArgs, privateKeyPem: this.privateKeyPem, subject },
                { parent: this },
            );
            this.certificatePem = certificate.certPem;
            this.chainPem = certificate.certPem;
            this.trustAnchorPem = certificate.certPem;
        } else {
            const request = new tls.CertRequest(
                `${name}-request`,
                { privateKeyPem: this.privateKeyPem, subject },
                { parent: this },
            );
            const certificate = new tls.LocallySignedCert(
                `${name}-certificate`,
                {
                    ...certificateArgs,
                    certRequestPem: request.certRequestPem,
                    caPrivateKeyPem: args.issuer.privateKeyPem,
                    caCertPem: args.issuer.certificatePem,
                },
                { parent: this },
            );
            this.certificatePem = certificate.certPem;
            this.chainPem = pulumi.concat(certificate.certPem, args.issuer.chainPem);
            this.trustAnchorPem = new tls.SelfSignedCert(
                `${name}-trust-anchor`,
                { ...certificateArgs, privateKeyPem: this.privateKeyPem, subject },
                { parent: this },
            ).certPem;
        }
        this.registerOutputs({ certificatePem: this.certificatePem });
    }
}
