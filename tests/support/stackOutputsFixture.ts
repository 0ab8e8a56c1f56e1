/**
 * Stack outputs as `pulumi stack output --json --show-secrets` prints them for a two-tenant stack: `bhs` behind node
 * ports with two modalities, `mhr` behind a load balancer with none. The PEM texts are placeholders: the tools copy
 * them, they never parse them.
 */
export function stackOutputsFixture() {
    const certificate = (aeTitle: string, key: string) => ({
        aeTitle,
        calledAeTitle: "ORTHANC",
        dicomHost: "dicom.bhs.local.orthweb.example",
        dicomPort: 11112,
        certificate: `-----BEGIN CERTIFICATE-----\n${aeTitle} certificate\n-----END CERTIFICATE-----\n`,
        privateKey: `-----BEGIN PRIVATE KEY-----\n${key}\n-----END PRIVATE KEY-----\n`,
        serverCa: "-----BEGIN CERTIFICATE-----\nroot CA\n-----END CERTIFICATE-----\n",
    });
    return {
        rootCaCertificate: "-----BEGIN CERTIFICATE-----\nroot CA\n-----END CERTIFICATE-----\n",
        tenantEndpoints: {
            bhs: {
                namespace: "bhs-orthweb",
                gatewayNamespace: "bhs-gateway",
                webUrl: "https://web.bhs.local.orthweb.example",
                dicomHost: "dicom.bhs.local.orthweb.example",
                dicomPort: 11112,
                ingressAddress: "10.96.0.20",
                nodePorts: { https: 30443, dicom: 31112 },
                adminUser: "admin",
                adminPassword: "bhs-password",
                caCertificate: "bhs CA",
                dicomClientTrustAnchor: "bhs trust anchor",
                modalities: { tester: { aeTitle: "TESTER", fingerprint: "ab" }, "ct-2": { aeTitle: "CT 2", fingerprint: "cd" } },
            },
            mhr: {
                namespace: "mhr-orthweb",
                gatewayNamespace: "mhr-gateway",
                webUrl: "https://web.mhr.local.orthweb.example",
                dicomHost: "dicom.mhr.local.orthweb.example",
                dicomPort: 11112,
                ingressAddress: "203.0.113.7",
                nodePorts: {},
                adminUser: "admin",
                adminPassword: "mhr-password",
                caCertificate: "mhr CA",
                dicomClientTrustAnchor: "mhr trust anchor",
                modalities: {},
            },
        },
        modalityCertificates: {
            bhs: { tester: certificate("TESTER", "tester key"), "ct-2": certificate("CT 2", "ct-2 key") },
            mhr: {},
        },
    };
}
