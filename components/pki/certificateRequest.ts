/**
 * A modality's own certificate request (PKCS#10, RFC 2986), read far enough to decide whether the tenant CA may sign
 * it: its subject, its public key, the extensions it asks for, and whether it is signed by the key it carries.
 *
 * Why the program reads it itself: terraform-provider-tls, which @pulumi/tls runs, signs whatever request it is given
 * (hashicorp/terraform-provider-tls d72d90e1, internal/provider/resource_locally_signed_cert.go: it parses the request
 * with Go's x509.ParseCertificateRequest, never calls CheckSignature, and copies its Subject, DNSNames, IPAddresses
 * and URIs into the certificate). So the subject, the names and the proof of possession are checked here, before any
 * resource is created. Node has no PKCS#10 parser; the request's DER is small and fixed in shape, so a minimal reader
 * suffices, and the key and signature go to Node's crypto.
 */
import { createPublicKey, KeyObject, verify } from "crypto";

interface Der {
    tag: number;
    /** The whole element, header included. */
    raw: Buffer;
    /** The contents. */
    body: Buffer;
}

/** Reads one DER element at `offset` of `data`; throws on anything malformed or truncated. */
function readDer(data: Buffer, offset: number): Der & { end: number } {
    if (offset + 2 > data.length) throw new Error("truncated");
    const tag = data[offset];
    let length = data[offset + 1];
    let header = 2;
    if (length & 0x80) {
        const bytes = length & 0x7f;
        if (bytes === 0 || bytes > 3 || offset + 2 + bytes > data.length) throw new Error("bad length");
        length = 0;
        for (let i = 0; i < bytes; i++) length = length * 256 + data[offset + 2 + i];
        header += bytes;
    }
    const end = offset + header + length;
    if (end > data.length) throw new Error("truncated");
    return { tag, raw: data.subarray(offset, end), body: data.subarray(offset + header, end), end };
}

/** The elements inside a constructed element's contents. */
function children(body: Buffer): Der[] {
    const out: Der[] = [];
    for (let offset = 0; offset < body.length; ) {
        const element = readDer(body, offset);
        out.push(element);
        offset = element.end;
    }
    return out;
}

function oid(body: Buffer): string {
    const parts: number[] = [Math.floor(body[0] / 40), body[0] % 40];
    let value = 0;
    for (const byte of body.subarray(1)) {
        value = value * 128 + (byte & 0x7f);
        if (!(byte & 0x80)) {
            parts.push(value);
            value = 0;
        }
    }
    return parts.join(".");
}

const tags = { sequence: 0x30, set: 0x31, oid: 0x06, bitString: 0x03, octetString: 0x04, attributes: 0xa0 };
/** Subject attribute types by OID, as a modality's request may use them. */
const attributeNames: Record<string, string> = { "2.5.4.3": "CN", "2.5.4.10": "O", "2.5.4.11": "OU" };
/** Signature algorithms a request may be signed with, and the hash Node's verify takes for each. */
const signatureHashes: Record<string, string> = {
    "1.2.840.113549.1.1.11": "sha256",
    "1.2.840.113549.1.1.12": "sha384",
    "1.2.840.113549.1.1.13": "sha512",
    "1.2.840.10045.4.3.2": "sha256",
    "1.2.840.10045.4.3.3": "sha384",
    "1.2.840.10045.4.3.4": "sha512",
};
const extensionRequestOid = "1.2.840.113549.1.9.14";
const extensionNames: Record<string, string> = { "2.5.29.17": "subjectAltName", "2.5.29.19": "basicConstraints", "2.5.29.15": "keyUsage", "2.5.29.37": "extendedKeyUsage" };

export interface CertificateRequestFacts {
    /** Subject attributes in order, each as [type, value]; a type other than CN, O and OU is given by its OID. */
    subject: [string, string][];
    key: KeyObject;
    /** `RSA 2048`, `EC prime256v1`, ...: the key's type and size as the error messages show it. */
    keyDescription: string;
    /** Extensions the request asks for (their names, or OIDs). */
    requestedExtensions: string[];
    /** Whether the request is signed by the private key of the public key it carries (proof of possession). */
    signatureValid: boolean;
}

/** Parses a PEM certificate request; throws with a short reason when it is not one. */
export function parseCertificateRequest(pem: string): CertificateRequestFacts {
    const match = /-----BEGIN CERTIFICATE REQUEST-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE REQUEST-----/.exec(pem);
    if (!match) throw new Error("not a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)");
    const der = Buffer.from(match[1].replace(/\s+/g, ""), "base64");
    const outer = readDer(der, 0);
    if (outer.tag !== tags.sequence || outer.end !== der.length) throw new Error("not a DER certificate request");
    const [info, algorithm, signature] = children(outer.body);
    if (info?.tag !== tags.sequence || algorithm?.tag !== tags.sequence || signature?.tag !== tags.bitString) {
        throw new Error("not a DER certificate request");
    }
    const [, name, spki, attributes] = children(info.body);
    if (name?.tag !== tags.sequence || spki?.tag !== tags.sequence) throw new Error("not a DER certificate request");

    const subject: [string, string][] = children(name.body).flatMap((rdn) =>
        children(rdn.body).map((pair): [string, string] => {
            const [type, value] = children(pair.body);
            const typeOid = oid(type.body);
            return [attributeNames[typeOid] ?? typeOid, value.body.toString("utf8")];
        }),
    );
    const key = createPublicKey({ key: spki.raw, format: "der", type: "spki" });
    const details = key.asymmetricKeyDetails ?? {};
    const keyDescription =
        key.asymmetricKeyType === "rsa" ? `RSA ${details.modulusLength}` : key.asymmetricKeyType === "ec" ? `EC ${details.namedCurve}` : `${key.asymmetricKeyType}`;

    const requestedExtensions: string[] = [];
    if (attributes?.tag === tags.attributes) {
        for (const attribute of children(attributes.body)) {
            const [type, values] = children(attribute.body);
            if (oid(type.body) !== extensionRequestOid) continue;
            for (const extensions of children(values.body)) {
                for (const extension of children(extensions.body)) {
                    const id = oid(children(extension.body)[0].body);
                    requestedExtensions.push(extensionNames[id] ?? id);
                }
            }
        }
    }

    const hash = signatureHashes[oid(children(algorithm.body)[0].body)];
    // A BIT STRING's first content byte counts unused bits: 0 for a signature.
    const signatureValid = hash !== undefined && signature.body[0] === 0 && verify(hash, info.raw, key, signature.body.subarray(1));
    return { subject, key, keyDescription, requestedExtensions, signatureValid };
}

/** What a modality's request must be. */
export interface ModalityRequestRule {
    aeTitle: string;
    modalityName: string;
    organization: string;
}

/** Keys a modality may bring: what DCMTK, Envoy and OpenSSL all take, no weaker than the program's own (RSA 2048). */
const acceptedKeys = /^(RSA (2048|3072|4096)|EC (prime256v1|secp384r1))$/;

/**
 * Why the tenant CA must not sign this request for this modality, or nothing. The subject is what the program gives
 * its own modality certificates (CN = the AE title, O = the organization, OU = the modality's name), O and OU optional;
 * no extension may be requested, since the provider would copy names into the certificate.
 */
export function certificateRequestProblems(pem: string, rule: ModalityRequestRule): string[] {
    let request: CertificateRequestFacts;
    try {
        request = parseCertificateRequest(pem);
    } catch (error) {
        return [`a PEM certificate request (PKCS#10) that parses: ${(error as Error).message}`];
    }
    const problems: string[] = [];
    if (!request.signatureValid) {
        problems.push("a request signed by its own key with SHA-256, -384 or -512 (the signature does not verify)");
    }
    if (!acceptedKeys.test(request.keyDescription)) {
        problems.push(`an RSA key of 2048, 3072 or 4096 bits or an EC key on P-256 or P-384 (it has ${request.keyDescription})`);
    }
    const allowed: Record<string, string> = { CN: rule.aeTitle, O: rule.organization, OU: rule.modalityName };
    const names = request.subject.map(([type]) => type);
    const wrong = request.subject.filter(([type, value]) => allowed[type] !== value).map(([type, value]) => `${type}=${value}`);
    if (names.filter((type) => type === "CN").length !== 1 || wrong.length > 0 || new Set(names).size !== names.length) {
        const found = request.subject.map(([type, value]) => `${type}=${value}`).join(", ") || "empty";
        problems.push(`subject CN=${rule.aeTitle} (the modality's aeTitle), optionally O=${rule.organization} and OU=${rule.modalityName}, each once (it is ${found})`);
    }
    if (request.requestedExtensions.length > 0) {
        problems.push(`no requested extensions, the certificate's are the program's (it asks for ${request.requestedExtensions.join(", ")})`);
    }
    return problems;
}
