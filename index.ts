/**
 * korthweb: Orthanc for several imaging sites on one Kubernetes platform.
 *
 * This file only reads the stack configuration and wires the components; everything it creates is defined under
 * components/. The configuration is validated first, so a bad stack file fails before any resource is registered.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { stackConfigFromPulumi } from "./components/config/load";
import { CertManager } from "./components/platform/certManager";
import { IstioMesh } from "./components/platform/istio";
import { Observability } from "./components/platform/observability";
import { CertificateAuthority } from "./components/pki/certificateAuthority";
import { rootCaProfile } from "./components/pki/profile";

const config = stackConfigFromPulumi(pulumi.runtime.allConfig(), pulumi.getProject());

const provider = new k8s.Provider("kubernetes", {
    context: config.kubernetes.context,
    kubeconfig: config.kubernetes.kubeconfig,
});
const platformOpts = { providers: { kubernetes: provider } };

const mesh = new IstioMesh("istio", {}, platformOpts);
const certManager = new CertManager("cert-manager", {}, platformOpts);
if (config.observability.enabled) {
    new Observability("observability", { istioNamespace: mesh.namespace, dependsOn: mesh.crdsReady }, platformOpts);
}

const rootCa = new CertificateAuthority("root-ca", {
    commonName: `${config.pki.organization} Root CA (${pulumi.getStack()})`,
    organization: config.pki.organization,
    profile: rootCaProfile(config.pki),
});

// Tenants: one OrthancTenant per entry of `korthweb:tenants` (components/tenant).
void certManager;

export const rootCaCertificate = rootCa.certificatePem;
