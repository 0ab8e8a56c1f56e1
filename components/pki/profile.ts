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
    /** For CAs: how many CA levels may follow below this one. */
    maxPathLength?: number;
    allowedUses: KeyUsage[];
    validityHours: number;
}

const caUses: KeyUsage[] = ["cert_signing", "crl_signing", "digital_signature"];

export function rootCaProfile(pki: PkiConfig): CertificateProfile {
    // The root signs one level of tenant CAs and nothing below them.
    return { keyAlgorithm: "RSA", rsaBits: 4096, isCa: true, maxPathLength: 1, allowedUses: caUses, validityHours: pki.rootCaValidityHours };
}

export function tenantCaProfile(pki: PkiConfig): CertificateProfile {
    // A tenant CA signs leaves only, so a leaked leaf key can never mint a CA that other tenants would chain to.
    return { keyAlgorithm: "RSA", rsaBits: 4096, isCa: true, maxPathLength: 0, allowedUses: caUses, validityHours: pki.tenantCaValidityHours };
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
