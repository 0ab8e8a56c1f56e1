/**
 * What limits who can mint certificates below a tenant CA, proven with OpenSSL on the program's own profiles
 * (components/pki/profile.ts, issued as support/pki.ts does).
 *
 * Modelled, not run: that @pulumi/tls writes the same extensions. terraform-provider-tls (internal/provider/
 * common_cert.go, read at the newest stored commit before the one @pulumi/tls 5.6.1 bundles) copies max_path_length to
 * Go's `x509.Certificate.MaxPathLen` and never sets `MaxPathLenZero`, and Go's x509 writes no pathLenConstraint for 0
 * without it: the root's 1 is written, a tenant CA's 0 could not be, so the tenant CA profile asks for none.
 */
import assert from "assert";
import { readFileSync, writeFileSync } from "fs";
import { join } from "path";
import { parseStackConfig } from "../../components/config/load";
import { dicomClientProfile, rootCaProfile, tenantCaProfile } from "../../components/pki/profile";
import { issue, Issued, opensslVerify } from "./support/pki";
import { Resources, runOk } from "./support/processes";

const pki = parseStackConfig({ domain: "orthweb.example.org", ingress: { serviceType: "ClusterIP" }, tenants: [{ name: "bhs", displayName: "B" }] }).pki;
const organization = pki.organization;

describe("path length: what a tenant CA, and what a leaf, can sign (OpenSSL, the program's profiles)", function () {
    const resources = new Resources();
    let dir: string;
    let root: Issued, tenantCa: Issued, trustAnchor: Issued, leaf: Issued, subCa: Issued, underSubCa: Issued, underLeaf: Issued;
    const bundle = (name: string, ...issued: Issued[]) => {
        const file = join(dir, `${name}.pem`);
        writeFileSync(file, issued.map((i) => readFileSync(i.certFile, "utf8")).join(""));
        return file;
    };
    const basicConstraints = async (issued: Issued) => (await runOk("openssl", ["x509", "-noout", "-ext", "basicConstraints", "-in", issued.certFile])).stdout;

    before(async () => {
        dir = resources.tempDir("path-length");
        root = await issue(dir, "root", { profile: rootCaProfile(pki), subject: { commonName: "Root CA (it)", organization } });
        const subject = { commonName: "Tenant CA", organization };
        tenantCa = await issue(dir, "tenant-ca", { profile: tenantCaProfile(pki), subject, issuer: root });
        trustAnchor = await issue(dir, "tenant-anchor", { profile: tenantCaProfile(pki), subject, keyFile: tenantCa.keyFile });
        leaf = await issue(dir, "leaf", { profile: dicomClientProfile(pki), subject: { commonName: "CT1", organization }, issuer: tenantCa });
        // What a stolen tenant CA key could mint: a CA below it, and a leaf below that.
        subCa = await issue(dir, "sub-ca", { profile: tenantCaProfile(pki), subject: { commonName: "Sub CA", organization }, issuer: tenantCa });
        underSubCa = await issue(dir, "under-sub-ca", { profile: dicomClientProfile(pki), subject: { commonName: "CT9", organization }, issuer: subCa });
        // What a stolen leaf key could try: sign a certificate with it.
        underLeaf = await issue(dir, "under-leaf", { profile: dicomClientProfile(pki), subject: { commonName: "CT8", organization }, issuer: leaf });
    });
    after(() => resources.release());

    it("writes pathlen 1 into the root and no constraint into the tenant CA", async () => {
        assert.match(await basicConstraints(root), /CA:TRUE, pathlen:1/);
        const tenant = await basicConstraints(tenantCa);
        assert.match(tenant, /CA:TRUE/);
        assert.doesNotMatch(tenant, /pathlen/);
    });

    it("verifies a leaf of the tenant CA up to the root", async () => {
        const verified = await opensslVerify(leaf.certFile, { purpose: "sslclient", trustedFile: root.certFile, untrustedFile: bundle("chain-leaf", tenantCa) });
        assert.ok(verified.ok, verified.output);
    });

    it("refuses, up to the root, a CA minted under a tenant CA: the root's pathlen 1 is exceeded", async () => {
        const verified = await opensslVerify(underSubCa.certFile, {
            purpose: "sslclient",
            trustedFile: root.certFile,
            untrustedFile: bundle("chain-sub", subCa, tenantCa),
        });
        assert.ok(!verified.ok);
        assert.match(verified.output, /path length constraint exceeded/);
    });

    it("accepts that CA's leaf where the tenant CA's self-signed twin is the anchor (the DICOM port): only the pinned fingerprints refuse it there", async () => {
        const verified = await opensslVerify(underSubCa.certFile, { purpose: "sslclient", trustedFile: trustAnchor.certFile, untrustedFile: bundle("chain-sub-anchor", subCa) });
        assert.ok(verified.ok, verified.output);
    });

    it("refuses anything signed by a leaf (CA:FALSE), whichever the anchor", async () => {
        for (const [anchor, chain] of [
            [root, bundle("chain-under-leaf-root", leaf, tenantCa)],
            [trustAnchor, bundle("chain-under-leaf-anchor", leaf)],
        ] as const) {
            const verified = await opensslVerify(underLeaf.certFile, { purpose: "sslclient", trustedFile: anchor.certFile, untrustedFile: chain });
            assert.ok(!verified.ok);
            assert.match(verified.output, /invalid CA certificate/);
        }
    });
});
