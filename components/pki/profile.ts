/**
 * Certificate profiles: key type, CA flags, usages and validity of every certificate korthweb makes.
 *
 * One definition serves the Pulumi program (through @pulumi/tls and cert-manager) and the integration tests (through
 * OpenSSL), so the chain proven against a real TLS stack is the chain the program issues.
 */
import { PkiConfig } from "../config/schema";

/** Key usages in @pulumi/tls' vocabulary; `certManagerUsages` and the tests translate from it. */
export type KeyUsage =
    | "cert_signing"
    | "crl_signing"
    | "digital_signature"
    | "key_encipherment"
    | "server_auth"
    | "client_auth";

export interface CertificateProfile {
    keyAlgorithm: "RSA";
    /** RSA key size. 2048 for leaves because DICOM modalities in the field rarely accept more; 4096 for CAs. */
    rsaBits: 2048 | 3072 | 4096;
    isCa: boolean;
    /**
     * For CAs: how many CA levels may follow below this one; none when absent. @pulumi/tls (terraform-provider-tls,
     * internal/provider/common_cert.go) copies it to Go's `x509.Certificate.MaxPathLen` but never sets
     * `MaxPathLenZero`, and Go writes no pathLenConstraint for 0 without it: 0 cannot be expressed, so no profile uses it.
     */
    maxPathLength?: number;
    allowedUses: KeyUsage[];
    validityHours: number;
    /** For CAs: `pulumi up` renews the certificate (same key) once this many hours of its life are left. */
    earlyRenewalHours?: number;
}

const caUses: KeyUsage[] = ["cert_signing", "crl_signing", "digital_signature"];

/**
 * Hours before its expiry at which `pulumi up` renews a CA: a tenth of its life, or the longest life of what it issues
 * if that is longer, so that every certificate it issued before its renewal expires before it does (pki validation
 * keeps that at most half its life).
 */
export function caRenewalHours(validityHours: number, issuedValidityHours: number[]): number {
    return Math.max(Math.floor(validityHours / 10), ...issuedValidityHours);
}

export function rootCaProfile(pki: PkiConfig): CertificateProfile {
    // The root signs one level of tenant CAs and nothing below them: its pathLenConstraint 1 is what makes a CA minted
    // under a tenant CA fail verification up to the root (the tenant CA itself carries no constraint, see maxPathLength).
    return {
        keyAlgorithm: "RSA",
        rsaBits: 4096,
        isCa: true,
        maxPathLength: 1,
        allowedUses: caUses,
        validityHours: pki.rootCaValidityHours,
        earlyRenewalHours: caRenewalHours(pki.rootCaValidityHours, [pki.tenantCaValidityHours]),
    };
}

export function tenantCaProfile(pki: PkiConfig): CertificateProfile {
    // Meant to sign leaves only; nothing in the certificate says so (no pathLenConstraint, see maxPathLength). What
    // holds: the root's constraint refuses any CA below this one for every peer that anchors at the root, and the DICOM
    // port, which anchors at this CA's self-signed twin, admits only the pinned fingerprints of its modalities.
    return {
        keyAlgorithm: "RSA",
        rsaBits: 4096,
        isCa: true,
        allowedUses: caUses,
        validityHours: pki.tenantCaValidityHours,
        earlyRenewalHours: caRenewalHours(pki.tenantCaValidityHours, [pki.serverCertificateDurationHours, pki.modalityCertificateValidityHours]),
    };
}

/** Leaf certificates differ only in what they authenticate. */
function leafProfile(pki: PkiConfig, role: "server_auth" | "client_auth"): CertificateProfile {
    return {
        keyAlgorithm: "RSA",
        rsaBits: 2048,
        isCa: false,
        allowedUses: ["digital_signature", "key_encipherment", role],
        validityHours: pki.serverCertificateDurationHours,
    };
}

export function serverProfile(pki: PkiConfig): CertificateProfile {
    return leafProfile(pki, "server_auth");
}

/** Modalities' client certificates, signed by the tenant CA. */
export function dicomClientProfile(pki: PkiConfig): CertificateProfile {
    return { ...leafProfile(pki, "client_auth"), validityHours: pki.modalityCertificateValidityHours };
}

const certManagerUsageNames: Record<KeyUsage, string> = {
    cert_signing: "cert sign",
    crl_signing: "crl sign",
    digital_signature: "digital signature",
    key_encipherment: "key encipherment",
    server_auth: "server auth",
    client_auth: "client auth",
};

export function certManagerUsages(profile: CertificateProfile): string[] {
    return profile.allowedUses.map((use) => certManagerUsageNames[use]);
}

/** cert-manager durations are Go durations; renew a server certificate when a third of its life is left. */
export function certManagerDuration(profile: CertificateProfile): { duration: string; renewBefore: string } {
    return {
        duration: `${profile.validityHours}h`,
        renewBefore: `${Math.max(1, Math.floor(profile.validityHours / 3))}h`,
    };
}
