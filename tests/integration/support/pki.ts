/**
 * The program's certificate hierarchy, made with OpenSSL from the same profiles (`components/pki/profile.ts`) that
 * @pulumi/tls and cert-manager receive in the cluster:
 *
 *   root (self-signed)
 *    └─ tenant CA (signed by the root; what servers present in their chain)
 *         ├─ server leaf (CN web.<tenant>.<domain>, SANs web. and dicom.<tenant>.<domain>, server_auth: the gateway's
 *         │   certificate, as gateway.ts asks cert-manager for it)
 *         └─ client leaf (client_auth, a modality's certificate)
 *   tenant trust anchor: self-signed, same key and subject as the tenant CA. OpenSSL does not accept an intermediate
 *   alone as a trust anchor, and trusting root + intermediate would admit every other tenant's clients, so a tenant's
 *   DICOM port trusts this and nothing else.
 */
import { randomBytes } from "crypto";
import { writeFileSync, readFileSync } from "fs";
import { join } from "path";
import { PkiConfig } from "../../../components/config/schema";
import { tenantNames } from "../../../components/naming/tenantNames";
import { CertificateProfile, dicomClientProfile, KeyUsage, rootCaProfile, serverProfile, tenantCaProfile } from "../../../components/pki/profile";
import { run, runOk } from "./processes";

/** How each @pulumi/tls usage is spelt in OpenSSL's extension configuration, and in which extension it goes. */
const opensslUsages: Record<KeyUsage, { extension: "keyUsage" | "extendedKeyUsage"; name: string }> = {
    cert_signing: { extension: "keyUsage", name: "keyCertSign" },
    crl_signing: { extension: "keyUsage", name: "cRLSign" },
    digital_signature: { extension: "keyUsage", name: "digitalSignature" },
    key_encipherment: { extension: "keyUsage", name: "keyEncipherment" },
    server_auth: { extension: "extendedKeyUsage", name: "serverAuth" },
    client_auth: { extension: "extendedKeyUsage", name: "clientAuth" },
};

/**
 * OpenSSL extension lines (an `x509 -extfile` section body) for a profile. Critical flags follow what Go's x509,
 * under @pulumi/tls, writes: basicConstraints and keyUsage critical, extendedKeyUsage not.
 *
 * The authority key identifier carries the key id only: with `issuer` too, a certificate would name its issuer's
 * issuer and serial, and so chain to the root-signed tenant CA but not to the self-signed trust anchor.
 */
export function opensslExtensions(profile: CertificateProfile, subjectAltNames: string[] = []): string {
    const lines: string[] = [];
    if (profile.isCa) {
        const pathLength = profile.maxPathLength === undefined ? "" : `, pathlen:${profile.maxPathLength}`;
        lines.push(`basicConstraints = critical, CA:TRUE${pathLength}`);
    } else {
        lines.push("basicConstraints = critical, CA:FALSE");
    }
    const usages = (extension: "keyUsage" | "extendedKeyUsage") =>
        profile.allowedUses.filter((use) => opensslUsages[use].extension === extension).map((use) => opensslUsages[use].name);
    const keyUsage = usages("keyUsage");
    if (keyUsage.length > 0) {
        lines.push(`keyUsage = critical, ${keyUsage.join(", ")}`);
    }
    const extendedKeyUsage = usages("extendedKeyUsage");
    if (extendedKeyUsage.length > 0) {
        lines.push(`extendedKeyUsage = ${extendedKeyUsage.join(", ")}`);
    }
    lines.push("subjectKeyIdentifier = hash");
    lines.push("authorityKeyIdentifier = keyid");
    if (subjectAltNames.length > 0) {
        lines.push(`subjectAltName = ${subjectAltNames.map((name) => `DNS:${name}`).join(", ")}`);
    }
    return lines.join("\n") + "\n";
}

/** `-days` for a profile: whole days, rounded up so a certificate never lives shorter than its profile says. */
export function opensslDays(profile: CertificateProfile): number {
    return Math.ceil(profile.validityHours / 24);
}

export interface Issued {
    readonly name: string;
    readonly keyFile: string;
    readonly certFile: string;
}

interface IssueOptions {
    profile: CertificateProfile;
    subject: { commonName: string; organization: string; organizationalUnit?: string };
    /** The signing CA; the certificate is self-signed when absent. */
    issuer?: Issued;
    /** Reuse this key instead of generating one (the trust anchor shares the tenant CA's key). */
    keyFile?: string;
    subjectAltNames?: string[];
}

/** Issues one certificate in `dir` as `<name>.key` / `<name>.crt`. */
export async function issue(dir: string, name: string, options: IssueOptions): Promise<Issued> {
    const keyFile = options.keyFile ?? join(dir, `${name}.key`);
    if (!options.keyFile) {
        await runOk("openssl", ["genpkey", "-algorithm", options.profile.keyAlgorithm, "-pkeyopt", `rsa_keygen_bits:${options.profile.rsaBits}`, "-out", keyFile]);
    }
    const requestFile = join(dir, `${name}.csr`);
    const unit = options.subject.organizationalUnit === undefined ? "" : `/OU=${options.subject.organizationalUnit}`;
    const subject = `/O=${options.subject.organization}${unit}/CN=${options.subject.commonName}`;
    await runOk("openssl", ["req", "-new", "-key", keyFile, "-subj", subject, "-out", requestFile]);
    const extensionFile = join(dir, `${name}.ext`);
    writeFileSync(extensionFile, `[profile]\n${opensslExtensions(options.profile, options.subjectAltNames)}`);
    const certFile = join(dir, `${name}.crt`);
    const signer = options.issuer ? ["-CA", options.issuer.certFile, "-CAkey", options.issuer.keyFile] : ["-signkey", keyFile];
    await runOk("openssl", [
        "x509", "-req", "-in", requestFile, "-out", certFile, "-sha256",
        "-days", String(opensslDays(options.profile)),
        "-set_serial", `0x${randomBytes(16).toString("hex")}`,
        "-extfile", extensionFile, "-extensions", "profile",
        ...signer,
    ]);
    return { name, keyFile, certFile };
}

export interface TenantPki {
    /** Signed by the root: what the tenant's servers present after their leaf. */
    readonly ca: Issued;
    /** Self-signed twin of `ca`: the only certificate the tenant's DICOM port trusts. */
    readonly trustAnchor: Issued;
    readonly server: Issued;
    /** Server leaf followed by the tenant CA, as a TLS server sends it. */
    readonly serverChainFile: string;
    readonly client: Issued;
}

export interface TestPki {
    readonly root: Issued;
    readonly tenants: Record<string, TenantPki>;
    /** A client certificate no CA of ours signed. */
    readonly selfSignedClient: Issued;
}

/** Builds the root, and for each tenant its CA, trust anchor, DICOM server leaf and one modality client leaf. */
export async function buildTestPki(dir: string, pki: PkiConfig, domain: string, tenants: { name: string; displayName: string }[]): Promise<TestPki> {
    const organization = pki.organization;
    const root = await issue(dir, "root", { profile: rootCaProfile(pki), subject: { commonName: `${organization} Root CA (it)`, organization } });
    const built = await Promise.all(
        tenants.map(async (tenant): Promise<[string, TenantPki]> => {
            const subject = { commonName: `${tenant.displayName} CA`, organization };
            const ca = await issue(dir, `${tenant.name}-ca`, { profile: tenantCaProfile(pki), subject, issuer: root });
            const trustAnchor = await issue(dir, `${tenant.name}-trust-anchor`, { profile: tenantCaProfile(pki), subject, keyFile: ca.keyFile });
            const { webHost, dicomHost } = tenantNames(tenant.name, domain);
            const server = await issue(dir, `${tenant.name}-server`, {
                profile: serverProfile(pki),
                subject: { commonName: webHost, organization },
                issuer: ca,
                subjectAltNames: [webHost, dicomHost],
            });
            const client = await issue(dir, `${tenant.name}-modality`, {
                profile: dicomClientProfile(pki),
                subject: { commonName: `${tenant.name} modality`, organization },
                issuer: ca,
            });
            const serverChainFile = join(dir, `${tenant.name}-server-chain.crt`);
            writeFileSync(serverChainFile, readFileSync(server.certFile, "utf8") + readFileSync(ca.certFile, "utf8"));
            return [tenant.name, { ca, trustAnchor, server, serverChainFile, client }];
        }),
    );
    const selfSignedClient = await issue(dir, "self-signed-modality", {
        profile: dicomClientProfile(pki),
        subject: { commonName: "self-signed modality", organization },
    });
    return { root, tenants: Object.fromEntries(built), selfSignedClient };
}

/**
 * A modality's client certificate from its tenant CA, with the subject the program gives it (CN = the modality's AE
 * title, OU = its name). Issuing twice for the same modality gives two certificates with different keys, as a new
 * `certificateGeneration` does.
 */
export function issueModalityCertificate(
    dir: string,
    pki: PkiConfig,
    tenantCa: Issued,
    fileName: string,
    modality: { name: string; aeTitle: string },
): Promise<Issued> {
    return issue(dir, fileName, {
        profile: dicomClientProfile(pki),
        subject: { commonName: modality.aeTitle, organization: pki.organization, organizationalUnit: modality.name },
        issuer: tenantCa,
    });
}

/** `openssl verify` of `certFile` for `purpose`, trusting `trustedFile` only, with `untrustedFile` as chain help. */
export async function opensslVerify(
    certFile: string,
    options: { purpose: "sslserver" | "sslclient"; trustedFile: string; untrustedFile?: string },
): Promise<{ ok: boolean; output: string }> {
    const args = ["verify", "-x509_strict", "-purpose", options.purpose, "-CAfile", options.trustedFile];
    if (options.untrustedFile) {
        args.push("-untrusted", options.untrustedFile);
    }
    const result = await run("openssl", [...args, certFile]);
    return { ok: result.code === 0 && /: OK\s*$/.test(result.stdout), output: (result.stdout + result.stderr).trim() };
}
