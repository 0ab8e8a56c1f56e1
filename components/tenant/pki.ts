import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { createHash } from "crypto";
import { ModalityConfig, PkiConfig } from "../config/schema";
import { CertificateAuthority } from "../pki/certificateAuthority";
import { certManagerDuration, certManagerUsages, dicomClientProfile, serverProfile, tenantCaProfile } from "../pki/profile";
import { certificatePeriods } from "../pki/renewal";
import { TenantNames } from "../naming/tenantNames";
import { createIssuancePolicy, IssuancePolicy, issuancePolicy } from "../platform/certManager";

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
    /** cert-manager's and approver-policy's CRDs and webhooks ready. */
    certManagerReady: pulumi.Input<pulumi.Resource>[];
    /** The tenant's names: the gateway namespace and host names its issuer may sign for, and nothing else. */
    names: TenantNames;
    /** The gateway namespace, created: the policy's Role and binding live there. */
    gatewayNamespaceReady: pulumi.Input<pulumi.Resource>[];
    /** The identity cert-manager turns Certificates into CertificateRequests under (CertManager.controllerServiceAccount). */
    certManagerServiceAccount: { name: string; namespace: string };
    /** Modalities that get a client certificate from the tenant CA. */
    modalities: ModalityConfig[];
    /** The clock that picks the renewal periods (components/pki/renewal.ts); the time of the run when absent. */
    now?: Date;
}

/** One client certificate of a modality. */
export interface IssuedCertificate {
    /** PEM certificate, signed by the tenant CA. */
    certificate: pulumi.Output<string>;
    /**
     * PEM private key; a Pulumi secret, in the state only. Absent for a modality that brought its own certificate
     * request: the program never holds that key.
     */
    privateKey?: pulumi.Output<string>;
    /** SHA-256 of the certificate's DER encoding, hex: what the gateway's allow-list holds. */
    fingerprint: pulumi.Output<string>;
    /** The certificate's notAfter (RFC 3339), as the provider recorded it. */
    expires: pulumi.Output<string>;
}

/** A modality's credentials for the DICOM port. */
export interface ModalityCertificate extends IssuedCertificate {
    aeTitle: string;
    /** When the first `pulumi up` from then on issues the next certificate (ISO 8601). */
    nextCertificateFrom: string;
    /**
     * The certificate of the previous renewal period, still admitted next to the current one until `admittedUntil`
     * (ISO 8601): the modality must have the current one installed by then.
     */
    previous?: { fingerprint: pulumi.Output<string>; expires: pulumi.Output<string>; admittedUntil: string };
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
        // Nothing this issuer signs is approved but what its policy admits, requested from the gateway namespace under
        // cert-manager's identity (that is, through a Certificate there): created before the issuer, so the gateway's
        // Certificate, which waits on the issuer, is approved at once.
        const scope = issuanceScope(args.tenant, args.names, args.pki, this.issuerRef, args.certManagerServiceAccount);
        const issuance = createIssuancePolicy(name, scope, { parent: this, dependsOn: [...args.certManagerReady, ...args.gatewayNamespaceReady] });
        this.issuer = new k8s.apiextensions.CustomResource(
            `${name}-issuer`,
            {
                apiVersion: "cert-manager.io/v1",
                kind: "ClusterIssuer",
                metadata: { name: secretName, labels: { "korthweb.io/tenant": args.tenant } },
                spec: { ca: { secretName } },
            },
            { parent: this, dependsOn: [caSecret, ...issuance, ...args.certManagerReady] },
        );
        const profile = dicomClientProfile(args.pki);
        const periods = certificatePeriods(
            { validityHours: profile.validityHours, overlapHours: args.pki.modalityCertificateOverlapHours },
            args.now ?? new Date(),
        );
        this.modalityCertificates = Object.fromEntries(
            args.modalities.map((modality) => {
                // The generation is part of the names: a new one replaces this modality's certificates alone, and
                // admits no certificate of the generation before (the key may be stolen).
                const id = `${name}-modality-${modality.name}-g${modality.certificateGeneration}`;
                const programMadeRequest = (periodId: string, alias: (suffix: string) => { name: string }[]) => {
                    const key = new tls.PrivateKey(
                        `${periodId}-key`,
                        { algorithm: profile.keyAlgorithm, rsaBits: profile.rsaBits },
                        { parent: this, aliases: alias("key") },
                    );
                    const privateKey = pulumi.secret(key.privateKeyPem);
                    const request = new tls.CertRequest(
                        `${periodId}-request`,
                        { privateKeyPem: privateKey, subject: { commonName: modality.aeTitle, organization: args.pki.organization, organizationalUnit: modality.name } },
                        { parent: this, aliases: alias("request") },
                    );
                    return { privateKey, certRequestPem: request.certRequestPem };
                };
                const issue = (period: number, takesOverUnperiodicNames: boolean): IssuedCertificate => {
                    const periodId = `${id}-p${period}`;
                    const alias = (suffix: string) => (takesOverUnperiodicNames ? [{ name: `${id}-${suffix}` }] : []);
                    // The modality's own request (checked by the configuration's validation: subject, key, proof
                    // of possession), signed as it is each period; else a key and request of the program's.
                    const made = modality.certificateRequest === undefined ? programMadeRequest(periodId, alias) : undefined;
                    const certificate = new tls.LocallySignedCert(
                        `${periodId}-certificate`,
                        {
                            certRequestPem: made?.certRequestPem ?? modality.certificateRequest!,
                            caPrivateKeyPem: this.ca.privateKeyPem,
                            caCertPem: this.ca.certificatePem,
                            allowedUses: profile.allowedUses,
                            validityPeriodHours: profile.validityHours,
                            // Never re-issued under this name: the next period's certificate comes under its own.
                            earlyRenewalHours: 0,
                        },
                        {
                            parent: this,
                            aliases: alias("certificate"),
                            // A renewed tenant CA certificate (same key and subject) must not re-issue every modality's
                            // certificate (ca_cert_pem requires replacement in the provider): what it signed still
                            // verifies against the renewed one and the DICOM port's trust anchor.
                            ignoreChanges: ["caCertPem"],
                        },
                    );
                    return {
                        certificate: certificate.certPem,
                        privateKey: made?.privateKey,
                        fingerprint: certificate.certPem.apply(certificateFingerprint),
                        expires: certificate.validityEndTime,
                    };
                };
                // Today's certificate takes over the one of the names before renewal periods (no period in them), so
                // that moving to periods re-issues nothing.
                const current = issue(periods.current, true);
                const previous = periods.previous && issue(periods.previous.period, false);
                const entry: ModalityCertificate = {
                    aeTitle: modality.aeTitle,
                    ...current,
                    nextCertificateFrom: periods.nextStart.toISOString(),
                    previous: previous && { fingerprint: previous.fingerprint, expires: previous.expires, admittedUntil: periods.previous!.admittedUntil.toISOString() },
                };
                return [modality.name, entry];
            }),
        );
        this.registerOutputs({ caCertificate: this.ca.certificatePem });
    }

    /**
     * The fingerprints of every modality's current certificate and of those previous ones still admitted: the only
     * client certificates the DICOM port accepts.
     */
    get allowedClientFingerprints(): pulumi.Output<string[]> {
        return pulumi.all(Object.values(this.modalityCertificates).flatMap((m) => (m.previous ? [m.fingerprint, m.previous.fingerprint] : [m.fingerprint])));
    }
}

/** SHA-256 of a PEM certificate's DER encoding, lowercase hex without separators (Envoy's verify_certificate_hash). */
export function certificateFingerprint(pem: string): string {
    const base64 = pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, "").replace(/\s+/g, "");
    return createHash("sha256").update(Buffer.from(base64, "base64")).digest("hex");
}

/**
 * What a tenant's ClusterIssuer may sign: its gateway's server certificate (the tenant's two host names, the
 * organization, server usages, no CA, an RSA key of the profile's size, at most the profile's duration), requested in
 * its gateway namespace by cert-manager's controller.
 */
export function issuanceScope(
    tenant: string,
    names: TenantNames,
    pki: PkiConfig,
    issuerRef: { group: string; kind: string; name: string },
    requester: { name: string; namespace: string },
): IssuancePolicy {
    const server = serverProfile(pki);
    return issuancePolicy({
        name: `korthweb-${tenant}-gateway-server`,
        labels: { "korthweb.io/tenant": tenant },
        issuerRef,
        namespace: names.gatewayNamespace,
        requester,
        allowed: {
            commonName: { value: names.webHost, required: true },
            dnsNames: { values: [names.webHost, names.dicomHost], required: true },
            subject: { organizations: { values: [pki.organization] } },
            usages: certManagerUsages(server),
            isCA: false,
        },
        constraints: {
            maxDuration: certManagerDuration(server).duration,
            privateKey: { algorithm: server.keyAlgorithm, minSize: server.rsaBits },
        },
    });
}

/** Name of the tenant CA's Secret (in cert-manager's namespace) and of its ClusterIssuer. */
export function tenantCaSecretName(tenant: string): string {
    return `korthweb-${tenant}-ca`;
}

/** What `renewalNotice` reads of a modality's certificates, resolved. */
export interface RenewalState {
    expires: string;
    nextCertificateFrom: string;
    previous?: { admittedUntil: string };
}

/**
 * What the operator must do about a modality's certificate, or nothing. A previous certificate still admitted means
 * the current one is new: it must be installed before the previous is refused. A current certificate that expires
 * before its successor has been admitted for the overlap (one issued before renewal periods, taken over as the current
 * period's) would leave the modality without a valid certificate: a new generation issues a full-length one.
 */
export function renewalNotice(state: RenewalState, overlapHours: number): string | undefined {
    if (state.previous) {
        return `install the new certificate (scripts/run modality-cert) before ${state.previous.admittedUntil}: the previous one is refused from then on`;
    }
    const successorAdmitted = new Date(Date.parse(state.nextCertificateFrom) + overlapHours * 3_600_000);
    if (Date.parse(state.expires) < successorAdmitted.getTime()) {
        return `the certificate expires ${state.expires}, before its successor (issued from ${state.nextCertificateFrom}) has been admitted for the overlap: bump the modality's certificateGeneration to issue a full-length one`;
    }
    return undefined;
}
