import * as pulumi from "@pulumi/pulumi";
import { BackupConfig, IngressConfig, PkiConfig, TenantConfig } from "../config/schema";
import { namespace } from "../k8s/namespace";
import { CertificateAuthority } from "../pki/certificateAuthority";
import { TenantGateway } from "./gateway";
import { ingressPorts } from "./ingress";
import { orthancSelector, tenantNames, tenantWebUrl } from "../naming/tenantNames";
import { OrthancServer } from "./orthanc";
import { ModalityCertificate, renewalNotice, TenantPki } from "./pki";
import { ClusterNetwork, combineWalls, dataWalls, defaultClusterNetwork, InClusterStore, StorageIdentity, tenantData } from "../data";
import { modalityDestinations } from "./security";
import { TenantWalls } from "./walls";
import { gatekeeperFront, gatekeeperWebBackend, identityWalls, keycloakGatekeeperWalls, TenantIdentity } from "../identity/identity";

export interface OrthancTenantArgs {
    tenant: TenantConfig;
    domain: string;
    ingress: IngressConfig;
    pki: PkiConfig;
    /** Signs the tenant's intermediate CA. */
    rootCa: CertificateAuthority;
    istioNamespace: string;
    /** Namespace whose Prometheus may scrape the tenant's proxies; absent when the program runs no Prometheus. */
    monitoringNamespace?: string;
    /** Where the tenant CA's ClusterIssuer reads its key. */
    certManagerNamespace: string;
    /** The CloudNativePG operator, when the platform runs it (a tenant uses the cloudnative-pg engine). */
    cloudnativePg?: { namespace: string; ready: pulumi.Input<pulumi.Resource>[] };
    /** Where scheduled backups go; none when absent. */
    backup?: BackupConfig;
    /** The API server's addresses (korthweb:kubernetes.apiServerAddresses). */
    apiServerAddresses?: string[];
    /** The cluster's DNS and CNI (korthweb:kubernetes.dns, kubernetes.cni); the kube-system DNS and no CNI policy when absent. */
    network?: ClusterNetwork;
    /** This stack's outputs as its previous update left them (a StackReference to itself), for the storage guard. */
    previousOutputs: pulumi.Input<Record<string, unknown>>;
    /** Istio CRDs and validating webhook ready. */
    istioCrdsReady: pulumi.Input<pulumi.Resource>[];
    /** Sidecar injector and CNI agent ready: pods created before would run without a sidecar. */
    istioInjectionReady: pulumi.Input<pulumi.Resource>[];
    certManagerCrdsReady: pulumi.Input<pulumi.Resource>[];
    /** cert-manager's controller identity, which the tenant's issuance policy admits (CertManager.controllerServiceAccount). */
    certManagerServiceAccount: { name: string; namespace: string };
    /** The stack's in-cluster S3 server, for a tenant with `storage.s3.inCluster`: its key pair and the bucket setup. */
    objectStore?: InClusterStore;
    /** The tenant's realm of the in-cluster Keycloak, for a tenant with `identity.keycloak`. */
    keycloakRealm?: { webClientSecret: pulumi.Output<string>; ready: pulumi.Resource[] };
}

/** What a tenant exports: where to reach it and how to trust it. */
export interface TenantOutputs {
    namespace: string;
    gatewayNamespace: string;
    webUrl: string;
    dicomHost: string;
    dicomPort: number;
    ingressAddress: pulumi.Output<string>;
    /** With serviceType NodePort: the node ports that lead to 443 and 11112. */
    nodePorts: pulumi.Output<{ https?: number; dicom?: number }>;
    /** Break-glass: admitted on Orthanc's web port from inside the cluster only when the tenant signs users in. */
    adminUser: string;
    adminPassword: pulumi.Output<string>;
    /** Where the tenant's users sign in, and the redirect URI to register with the provider; absent when disabled. */
    signIn?: { issuer: string; clientId: string; redirectUri: string };
    /** The tenant CA, signed by the root: what a client needs to verify the tenant's servers (with the root). */
    caCertificate: pulumi.Output<string>;
    /** What the DICOM port trusts for client certificates: the tenant CA alone. */
    dicomClientTrustAnchor: pulumi.Output<string>;
    /**
     * Every modality the DICOM port accepts (keys are in `modalityCertificates`): AE title, its current certificate's
     * fingerprint and expiry, when the next one is issued, the previous certificate while it is still admitted, and
     * what the operator must do (`notice`, absent when nothing).
     */
    modalities: pulumi.Output<Record<string, ModalityStatus>>;
}

export interface ModalityStatus {
    aeTitle: string;
    fingerprint: string;
    // Optional for outputs made without the program (the integration suite's stand-in stack).
    expires?: string;
    nextCertificateFrom?: string;
    previous?: { fingerprint: string; expires: string; admittedUntil: string };
    notice?: string;
}

/** The resolved status of a modality's certificates, as the stack outputs show it. */
export function modalityStatus(issued: ModalityCertificate, overlapHours: number): pulumi.Output<ModalityStatus> {
    const previous = issued.previous
        ? pulumi.all([issued.previous.fingerprint, issued.previous.expires]).apply(([fingerprint, expires]) => ({ fingerprint, expires, admittedUntil: issued.previous!.admittedUntil }))
        : pulumi.output(undefined);
    return pulumi.all([issued.fingerprint, issued.expires, previous]).apply(([fingerprint, expires, previous]) => {
        const notice = renewalNotice({ expires, nextCertificateFrom: issued.nextCertificateFrom, previous }, overlapHours);
        return {
            aeTitle: issued.aeTitle,
            fingerprint,
            expires,
            nextCertificateFrom: issued.nextCertificateFrom,
            ...(previous ? { previous } : {}),
            ...(notice ? { notice } : {}),
        };
    });
}

/**
 * One isolated Orthanc site: its two namespaces and the wiring of its children: PKI, walls, database, Orthanc and the
 * ingress gateway. Each child receives what it needs from here; none reaches into a sibling.
 */
export class OrthancTenant extends pulumi.ComponentResource {
    readonly outputs: TenantOutputs;
    /** Where the tenant's files are (bucket, prefix, layout, key digest): exported as `storageIdentity` and guarded. */
    readonly storageIdentity: pulumi.Output<StorageIdentity>;
    /** Per modality: its key (secret), certificate and AE title. */
    readonly modalityCertificates: Record<string, ModalityCertificate>;

    constructor(name: string, args: OrthancTenantArgs, opts?: pulumi.ComponentResourceOptions) {
        super("korthweb:tenant:OrthancTenant", name, {}, opts);
        const { tenant } = args;
        const names = tenantNames(tenant.name, args.domain);
        const webUrl = tenantWebUrl(names, args.ingress.serviceType, tenant.nodePorts);
        const ns = names.namespace;
        // Users sign in through the tenant's gatekeeper unless the stack turns it off (README, "Who signs in").
        const identity = tenant.identity && !tenant.identity.disabled ? tenant.identity : undefined;
        const network = args.network ?? defaultClusterNetwork;

        // Baseline, not restricted: the Istio CNI removes the need for NET_ADMIN, but the containers Istio injects set
        // no seccomp profile, which "restricted" requires. Warnings and audit stay at "restricted".
        const tenantLabels = { "korthweb.io/tenant": tenant.name };
        const tenantNamespace = namespace(
            `${name}-namespace`,
            { name: ns, enforce: "baseline", istioInjection: true, labels: tenantLabels },
            // Deleting the namespace deletes the database volumes: protected like the database (README, "Deleting a tenant").
            { parent: this, protect: tenant.protectData },
        );
        // The chart's pods ask for Istio's gateway injection template themselves; the namespace label keeps any other
        // pod placed there in the mesh too.
        const gatewayNamespace = namespace(
            `${name}-gateway-namespace`,
            { name: names.gatewayNamespace, enforce: "baseline", istioInjection: true, labels: tenantLabels },
            { parent: this },
        );

        const pki = new TenantPki(
            `${name}-pki`,
            {
                tenant: tenant.name,
                displayName: tenant.displayName,
                pki: args.pki,
                rootCa: args.rootCa,
                certManagerNamespace: args.certManagerNamespace,
                certManagerReady: args.certManagerCrdsReady,
                names,
                gatewayNamespaceReady: [gatewayNamespace],
                certManagerServiceAccount: args.certManagerServiceAccount,
                modalities: tenant.modalities,
            },
            { parent: this },
        );
        const walls = new TenantWalls(
            `${name}-walls`,
            {
                context: {
                    tenant: tenant.name,
                    names,
                    istioNamespace: args.istioNamespace,
                    monitoringNamespace: args.monitoringNamespace,
                    modalityDestinations: modalityDestinations(tenant.modalities),
                    dns: args.network?.dns,
                    database: combineWalls(
                        dataWalls(names, orthancSelector(tenant.name), tenant, {
                            cnpgOperatorNamespace: args.cloudnativePg?.namespace,
                            apiServerAddresses: args.apiServerAddresses,
                            backup: args.backup,
                            network: args.network,
                            monitoringNamespace: args.monitoringNamespace,
                        }),
                        ...(identity ? [identity.oidc ? identityWalls(tenant.name, names, identity.oidc, network) : keycloakGatekeeperWalls(tenant.name, names)] : []),
                    ),
                    gatekeeper: identity ? gatekeeperFront(tenant.name, names, identity.keycloak !== undefined) : undefined,
                },
                namespaces: [tenantNamespace, gatewayNamespace],
                istioCrdsReady: args.istioCrdsReady,
            },
            { parent: this },
        );
        const workloadOpts = { parent: this, dependsOn: [tenantNamespace, ...walls.ready, ...args.istioInjectionReady] };

        // --- Data (database and file store, components/data/) and Orthanc.
        const data = tenantData(
            name,
            {
                tenant,
                domain: args.domain,
                namespace: ns,
                dependsOn: workloadOpts.dependsOn,
                cloudnativePg: args.cloudnativePg,
                backup: args.backup,
                previousOutputs: args.previousOutputs,
                objectStore: args.objectStore,
            },
            { parent: this },
        );
        const gatekeeper = identity
            ? new TenantIdentity(
                  `${name}-identity`,
                  { tenant: tenant.name, names, webUrl, identity, auditDatabase: data.database.audit, keycloakRealm: args.keycloakRealm, dependsOn: workloadOpts.dependsOn },
                  { parent: this },
              )
            : undefined;
        const orthanc = new OrthancServer(
            `${name}-orthanc`,
            {
                tenant,
                domain: args.domain,
                namespace: ns,
                database: data.database,
                storage: data.storage,
                dependsOn: workloadOpts.dependsOn,
                gatekeeperPassword: gatekeeper?.orthancPassword,
            },
            { parent: this },
        );

        // --- Ingress: the tenant's own gateway, in its own namespace.
        const gateway = new TenantGateway(
            `${name}-gateway`,
            {
                tenant: tenant.name,
                names,
                ingress: args.ingress,
                nodePorts: tenant.nodePorts,
                pki: args.pki,
                issuerRef: pki.issuerRef,
                dicomClientTrustAnchor: pki.ca.trustAnchorPem,
                allowedClientFingerprints: pki.allowedClientFingerprints,
                namespace: gatewayNamespace,
                dependsOn: [...walls.ready, ...args.istioInjectionReady, pki.issuer],
                crdsReady: [...args.istioCrdsReady, ...args.certManagerCrdsReady],
                webBackend: gatekeeper ? gatekeeperWebBackend(tenant.name, names, identity?.keycloak !== undefined) : undefined,
            },
            { parent: this },
        );

        this.outputs = {
            namespace: ns,
            gatewayNamespace: names.gatewayNamespace,
            webUrl,
            dicomHost: names.dicomHost,
            dicomPort: ingressPorts.dicomTls,
            ingressAddress: gateway.address,
            nodePorts: gateway.nodePorts,
            adminUser: orthanc.adminUser,
            adminPassword: orthanc.adminPassword,
            ...(gatekeeper ? { signIn: gatekeeper.signIn } : {}),
            caCertificate: pki.ca.certificatePem,
            dicomClientTrustAnchor: pki.ca.trustAnchorPem,
            modalities: pulumi.output(
                Object.fromEntries(
                    Object.entries(pki.modalityCertificates).map(([modality, c]) => [modality, modalityStatus(c, args.pki.modalityCertificateOverlapHours)]),
                ),
            ),
        };
        this.modalityCertificates = pki.modalityCertificates;
        this.storageIdentity = data.storage.identity;
        this.registerOutputs({ ...this.outputs });
    }
}
