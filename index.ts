/**
 * korthweb: Orthanc for several imaging sites on one Kubernetes platform.
 *
 * This file only reads the stack configuration and wires the components; everything it creates is defined under
 * components/. The configuration is validated first, so a bad stack file fails before any resource is registered.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { kubernetesProviderSettings } from "./components/config/kubernetesProvider";
import { readStackFile, requireTenantIdentity, stackConfigFromPulumi } from "./components/config/load";
import { clusterDns, rootCaSuffix } from "./components/config/schema";
// Which configuration keys Pulumi stores encrypted; the SDK exports it from its runtime without a type declaration.
const { isConfigSecret } = require("@pulumi/pulumi/runtime/config") as { isConfigSecret: (key: string) => boolean };
import { CertManager } from "./components/platform/certManager";
import { CloudNativePgOperator } from "./components/platform/cloudnativePg";
import { ObjectStore, objectStoreTenants } from "./components/platform/objectStore";
import { IstioMesh } from "./components/platform/istio";
import { Observability } from "./components/platform/observability";
import { PreviewAccess } from "./components/platform/previewAccess";
import { bootstrapAdministrator, InClusterKeycloak } from "./components/identity/keycloak/keycloak";
import { CertificateAuthority } from "./components/pki/certificateAuthority";
import { certManagerDuration, rootCaProfile, serverProfile } from "./components/pki/profile";
import { OrthancTenant } from "./components/tenant/tenant";
import { backupStorage as backupStorageInstructions } from "./components/data/backup/backupPolicy";
import { orthancServiceAccount, tenantNames, tenantWebUrl } from "./components/naming/tenantNames";
import { storageSetup as storageSetupFor } from "./components/data/storage/storageSetup";

const config = stackConfigFromPulumi(pulumi.runtime.allConfig(), pulumi.getProject(), isConfigSecret, readStackFile(pulumi.getStack()));
requireTenantIdentity(config, pulumi.getProject());

// Where pods' DNS queries go, which every namespace's walls open.
const dns = clusterDns(config.kubernetes);
const kubernetes = kubernetesProviderSettings(config.kubernetes, { stack: pulumi.getStack(), isDryRun: pulumi.runtime.isDryRun(), cwd: process.cwd() });
const provider = new k8s.Provider("kubernetes", {
    context: kubernetes.context,
    kubeconfig: kubernetes.kubeconfigIsContents ? pulumi.secret(kubernetes.kubeconfig) : kubernetes.kubeconfig,
    clusterIdentifier: kubernetes.clusterIdentifier,
});
const platformOpts = { providers: { kubernetes: provider } };

const mesh = new IstioMesh("istio", { platform: config.kubernetes.platform }, platformOpts);
const certManager = new CertManager("cert-manager", {}, platformOpts);
const observability = config.observability.enabled
    ? new Observability(
          "observability",
          {
              istioNamespace: mesh.namespace,
              certManagerNamespace: certManager.namespace,
              backupSchedule: config.backup?.schedule,
              certificateRenewBeforeHours: parseInt(certManagerDuration(serverProfile(config.pki)).renewBefore, 10),
              alerting: config.observability.alerting,
              tenantNamespaces: config.tenants.flatMap((tenant) => {
                  const names = tenantNames(tenant.name, config.domain);
                  return [names.namespace, names.gatewayNamespace];
              }),
              apiServerAddresses: config.kubernetes.apiServerAddresses,
              network: { cni: config.kubernetes.cni, dns },
              dependsOn: mesh.crdsReady,
          },
          platformOpts,
      )
    : undefined;

// The tenants that sign in through the in-cluster Keycloak (identity.keycloak).
const keycloakTenants = config.tenants
    .filter((tenant) => tenant.identity?.keycloak !== undefined)
    .map((tenant) => {
        const names = tenantNames(tenant.name, config.domain);
        return { tenant: tenant.name, displayName: tenant.displayName, names, webUrl: tenantWebUrl(names, config.ingress.serviceType, tenant.nodePorts), identity: tenant.identity! };
    });

// Installed once, when a tenant's database runs on it, or Keycloak's does.
const cloudnativePg = config.tenants.some((tenant) => tenant.database.engine === "cloudnative-pg") || keycloakTenants.length > 0
    ? new CloudNativePgOperator(
          "cloudnative-pg",
          { certManagerReady: certManager.crdsReady, certManagerServiceAccount: certManager.controllerServiceAccount },
          platformOpts,
      )
    : undefined;

// The stack's own S3 server (the local stack), when korthweb:objectStore asks for it.
const objectStore = config.objectStore
    ? new ObjectStore(
          "object-store",
          {
              settings: config.objectStore,
              tenants: objectStoreTenants(config),
              istioNamespace: mesh.namespace,
              dns,
              // Meshed pods: after the injector.
              dependsOn: mesh.injectionReady,
              istioCrdsReady: mesh.crdsReady,
          },
          platformOpts,
      )
    : undefined;

const keycloak =
    keycloakTenants.length > 0 && cloudnativePg
        ? new InClusterKeycloak(
              "keycloak",
              {
                  tenants: keycloakTenants,
                  istioNamespace: mesh.namespace,
                  dns,
                  operator: { namespace: cloudnativePg.namespace, ready: cloudnativePg.ready },
                  // The schema refuses a Keycloak tenant without them.
                  apiServerAddresses: config.kubernetes.apiServerAddresses ?? [],
                  dependsOn: mesh.injectionReady,
                  istioCrdsReady: mesh.crdsReady,
              },
              platformOpts,
          )
        : undefined;

const previewAccess = config.preview.enabled ? new PreviewAccess("preview-access", {}, platformOpts) : undefined;
/** The ServiceAccount to mint pull-request preview tokens for (README, "Pull requests"); absent when disabled. */
export const previewServiceAccount = previewAccess && { namespace: previewAccess.namespace, name: previewAccess.serviceAccount };

const rootCa = new CertificateAuthority("root-ca", {
    commonName: `${config.pki.organization}${rootCaSuffix}`,
    organization: config.pki.organization,
    profile: rootCaProfile(config.pki),
});

// This stack's outputs as its last update left them: the storage guard compares each tenant's storage identity with
// them (components/data/storage/storageIdentity.ts). A stack never deployed has none (tests/upstream/stackReference.ts).
const previousStack = new pulumi.StackReference(`${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`);

const tenants = config.tenants.map(
    (tenant) =>
        new OrthancTenant(
            tenant.name,
            {
                tenant,
                domain: config.domain,
                ingress: config.ingress,
                pki: config.pki,
                rootCa,
                istioNamespace: mesh.namespace,
                monitoringNamespace: observability?.namespace,
                certManagerNamespace: certManager.namespace,
                cloudnativePg,
                backup: config.backup,
                apiServerAddresses: config.kubernetes.apiServerAddresses,
                network: { cni: config.kubernetes.cni, dns },
                previousOutputs: previousStack.outputs,
                istioCrdsReady: mesh.crdsReady,
                istioInjectionReady: mesh.injectionReady,
                certManagerCrdsReady: certManager.crdsReady,
                certManagerServiceAccount: certManager.controllerServiceAccount,
                objectStore: objectStore?.tenantKeys[tenant.name] ? { key: objectStore.tenantKeys[tenant.name], ready: objectStore.ready } : undefined,
                keycloakRealm: keycloak?.realms[tenant.name] ? { webClientSecret: keycloak.realms[tenant.name].webClientSecret, ready: keycloak.ready } : undefined,
            },
            platformOpts,
        ),
);

// Kiali sees the tenants' namespaces: installed once they exist.
observability?.installKiali(tenants);

export const rootCaCertificate = rootCa.certificatePem;
/**
 * Per tenant: where its files are stored (type, bucket or volume, root path, layout, digest of the encryption key).
 * Read back by the next update through `previousStack`: a change stops the stack (README, "Where the images are stored").
 */
/**
 * Per tenant storing outside PostgreSQL: what the store's owner sets up (encryption at rest, versioning, replication,
 * and for AWS the role's policy and the ServiceAccount its trust policy names). No credential in it.
 */
export const storageSetup = Object.fromEntries(
    config.tenants.flatMap((tenant) => {
        const setup = storageSetupFor(tenant, tenantNames(tenant.name, config.domain).namespace, orthancServiceAccount);
        return setup ? [[tenant.name, setup]] : [];
    }),
);
export const storageIdentity = pulumi.output(Object.fromEntries(tenants.map((tenant, index) => [config.tenants[index].name, tenant.storageIdentity])));
/**
 * Per backed-up tenant: its bucket and prefix, and what the bucket owner must attach and set (the key pair's IAM policy,
 * versioning, object lock, lifecycle rules; components/data/backup/backupPolicy.ts). No credential in it.
 */
export const backupStorage = backupStorageInstructions(config);
/** Per tenant: URLs, DICOM address, namespace, ingress address, admin credentials (password secret), CA certificates. */
export const tenantEndpoints = Object.fromEntries(tenants.map((tenant, index) => [config.tenants[index].name, tenant.outputs]));
/**
 * Per tenant and modality, what the modality needs on the DICOM port: its key and its current certificate, and its
 * tenant's trust anchor to verify the server (never the root, which would verify every tenant's servers); and, under `renewal`, its entry of tenantEndpoints' `modalities` (expiry, previous
 * certificate still admitted, notice). Secret as a whole; `scripts/run modality-cert` writes one modality's files and
 * prints the notices.
 */
export const modalityCertificates = pulumi.secret(
    Object.fromEntries(
        tenants.map((tenant, index) => [
            config.tenants[index].name,
            Object.fromEntries(
                Object.entries(tenant.modalityCertificates).map(([modality, issued]) => [
                    modality,
                    {
                        aeTitle: issued.aeTitle,
                        renewal: tenant.outputs.modalities.apply((statuses) => statuses[modality]),
                        calledAeTitle: config.tenants[index].orthanc.aeTitle,
                        dicomHost: tenant.outputs.dicomHost,
                        dicomPort: tenant.outputs.dicomPort,
                        certificate: issued.certificate,
                        privateKey: issued.privateKey,
                        // The tenant's anchor, not the root: every tenant's server certificate chains to the root.
                        serverCa: tenant.outputs.dicomClientTrustAnchor,
                    },
                ]),
            ),
        ]),
    ),
);
/**
 * Per tenant signing in through the in-cluster Keycloak: its realm's issuer, the first administrator and her first
 * password (temporary: Keycloak asks her for her own, and a one-time-password device, at first sign-in), and each API
 * client's secret; and the master realm's administrator, reached by port-forward only (README, "Who signs in").
 */
export const identityProviders = keycloak
    ? pulumi.secret({
          realms: Object.fromEntries(
              Object.entries(keycloak.realms).map(([tenant, realm]) => [
                  tenant,
                  { issuer: realm.issuer, administrator: realm.administrator, administratorPassword: realm.administratorPassword, apiClientSecrets: realm.apiClientSecrets },
              ]),
          ),
          keycloakAdministrator: { username: bootstrapAdministrator, password: keycloak.bootstrapAdminPassword },
      })
    : undefined;
