import { z } from "zod";
import { tenantNames } from "../tenant/naming";

/**
 * The stack configuration of korthweb: one typed, validated object with every default in this file.
 *
 * Stack files (Pulumi.<stack>.yaml) only hold what differs from these defaults. Parsing is pure, so the validation
 * rules are tested table-driven without Pulumi, and a bad stack file fails before any resource is registered.
 */

/** RFC 1123 label, as Kubernetes requires for namespace names. */
const dnsLabelPattern = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
/** Lowercase DNS name with at least two labels; certificates and Gateway hosts are issued for names under it. */
const domainPattern = /^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** Kubernetes quantity for a volume, in binary units so the size is unambiguous. */
const volumeSizePattern = /^[1-9][0-9]*(Mi|Gi|Ti)$/;
const cpuPattern = /^([1-9][0-9]*m|[0-9]+(\.[0-9]+)?)$/;
const memoryPattern = /^[1-9][0-9]*(Mi|Gi)$/;
/** DICOM application entity titles: up to 16 characters of the default character repertoire, no backslash. */
const aeTitlePattern = /^[A-Z0-9_ -]{1,16}$/;

export const maxTenantNameLength = 20;
/** X.509's upper bound for a common name and an organization name (RFC 5280, ub-common-name); cert-manager refuses more. */
export const maxCommonNameLength = 64;
/** The tenant CA is named "<displayName> CA"; the root "<organization> Root CA". */
const tenantCaSuffix = " CA";
export const rootCaSuffix = " Root CA";
/** Kubernetes' NodePort range (kube-apiserver --service-node-port-range default). */
const nodePortRange = { min: 30000, max: 32767 } as const;
/** Kubernetes annotation key: an optional DNS-subdomain prefix and a name of at most 63 characters. */
const annotationKeyPattern = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
/** The longest derived host name is dicom.<tenant>.<domain>; a DNS name holds 253 characters. */
const maxDomainLength = 253 - tenantNames("x".repeat(maxTenantNameLength), "").dicomHost.length;
const hour = 1;
const day = 24 * hour;
const year = 365 * day;

const orthancSchema = z.strictObject({
    /** Lower bound of the HorizontalPodAutoscaler; also the Deployment's replica count. At least 2 for availability. */
    minReplicas: z.int().min(2, { error: "at least 2 (one replica is a single point of failure)" }).max(50).default(2),
    maxReplicas: z.int().min(2).max(50).default(6),
    /** Called AE title modalities use. */
    aeTitle: z.string().regex(aeTitlePattern, { error: "1-16 of A-Z, 0-9, '_', '-' and space" }).default("ORTHANC"),
    // Orthanc holds a whole instance in memory while it receives, stores (the PostgreSQL storage plugin writes it as
    // one large object) and serves it, several at once with concurrent associations and REST downloads, plus the
    // decoded frames for previews. Multi-frame CT/MR, tomosynthesis and whole studies in a ZIP run to hundreds of MB,
    // so Korthweb's 128Mi limit was killed on the first large study. 1Gi requested, 3Gi limit: room for a few
    // concurrent large instances; raise it for tomosynthesis or whole-slide imaging.
    cpuRequest: z.string().regex(cpuPattern, { error: "a CPU quantity such as 500m or 2" }).default("500m"),
    memoryRequest: z.string().regex(memoryPattern, { error: "a memory quantity in Mi or Gi such as 1Gi" }).default("1Gi"),
    memoryLimit: z.string().regex(memoryPattern, { error: "a memory quantity in Mi or Gi such as 3Gi" }).default("3Gi"),
});

/** Dotted-quad IPv4 address: the mesh's egress and the NetworkPolicy are opened to exactly this address. */
const ipv4Pattern = /^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])$/;

const modalitySchema = z.strictObject({
    /** Short name: names its certificate, its Orthanc entry and its stack output. */
    name: z.string().regex(dnsLabelPattern, { error: "a DNS label: lowercase letters, digits and '-', starting with a letter" }).max(40),
    /** The modality's own (calling) AE title: what Orthanc knows it by. */
    aeTitle: z.string().regex(aeTitlePattern, { error: "1-16 of A-Z, 0-9, '_', '-' and space" }),
    /**
     * Where Orthanc sends what the modality retrieves with C-MOVE. Without it the modality retrieves with C-GET only.
     * An IPv4 address, because the NetworkPolicy that opens the way can only name addresses.
     */
    host: z.string().regex(ipv4Pattern, { error: "an IPv4 address such as 10.20.30.40" }).optional(),
    port: z.int().min(1).max(65535).optional(),
    /**
     * Bump to issue a new key and certificate (e.g. the old one was stolen): the old certificate is refused from the
     * next `pulumi up` on, and no other modality's certificate changes.
     */
    certificateGeneration: z.int().min(1).max(1000).default(1),
});
export type ModalityConfig = z.infer<typeof modalitySchema>;

/** A PostgreSQL identifier korthweb accepts for a database or role: lowercase, so no quoting is ever needed. */
const sqlIdentifierPattern = /^[a-z_][a-z0-9_]{0,62}$/;
/** A DNS name or an IPv4 address. */
const hostPattern = /^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** Where API servers listen: 443 on managed clusters, 6443 on kubeadm, kind, k3d. */
export const apiServerPorts = [443, 6443];
/** An IPv4 CIDR block, such as 10.0.5.0/28. */
const cidrPattern = /^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\/([0-9]|[12][0-9]|3[0-2])$/;
const pemCertificatePattern = /^-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----\s*$/;

/** A managed PostgreSQL outside the cluster (a cloud's database service). */
const externalDatabaseSchema = z.strictObject({
    /** The server's name, as its certificate names it (TLS is verified against `caCertificate` and this name). */
    host: z.string().regex(hostPattern, { error: "a DNS name or IPv4 address" }),
    port: z.int().min(1).max(65535).default(5432),
    database: z.string().regex(sqlIdentifierPattern, { error: "a lowercase PostgreSQL identifier" }),
    user: z.string().regex(sqlIdentifierPattern, { error: "a lowercase PostgreSQL identifier" }),
    /** Set with `pulumi config set --secret --path 'tenants[N].database.external.password' ...`: refused in plain text. */
    password: z.string().min(16, { error: "at least 16 characters" }),
    /** The CA that signed the server's certificate (PEM). */
    caCertificate: z.string().regex(pemCertificatePattern, { error: "a PEM certificate" }),
    /**
     * Where `host` resolves, as CIDR blocks: the NetworkPolicy opens Orthanc's egress to exactly these on `port`
     * (a NetworkPolicy cannot name hosts).
     */
    addresses: z.array(z.string().regex(cidrPattern, { error: "an IPv4 CIDR block such as 10.0.5.0/28" })).min(1),
});

const databaseSchema = z.strictObject({
    /**
     * bitnami-ha: Bitnami postgresql-ha in the tenant namespace (the default, as Korthweb ran it; its images are
     * frozen). cloudnative-pg: a CloudNativePG Cluster with a PgBouncer Pooler, from the operator the platform
     * installs. external: a managed PostgreSQL given below.
     */
    engine: z.enum(["bitnami-ha", "cloudnative-pg", "external"]).default("bitnami-ha"),
    external: externalDatabaseSchema.optional(),
});
export type DatabaseConfig = z.infer<typeof databaseSchema>;
export type ExternalDatabaseConfig = z.infer<typeof externalDatabaseSchema>;

const postgresSchema = z.strictObject({
    /** PostgreSQL nodes (one primary, the rest streaming standbys managed by repmgr). */
    replicas: z.int().min(1).max(9).default(3),
    /** Pgpool-II nodes in front of them. */
    pgpoolReplicas: z.int().min(1).max(9).default(2),
    volumeSize: z.string().regex(volumeSizePattern, { error: "a size such as 50Gi (Mi, Gi or Ti, no decimals)" }).default("20Gi"),
    /** Storage class of the data volumes; the cluster default when unset. */
    storageClass: z
        .string()
        .regex(/^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, { error: "a storage class name (a DNS subdomain such as gp3 or premium.ssd)" })
        .optional(),
});

const tenantSchema = z.strictObject({
    name: z
        .string()
        .regex(dnsLabelPattern, { error: "a DNS label: lowercase letters, digits and '-', starting with a letter" })
        .max(maxTenantNameLength, {
            error: `at most ${maxTenantNameLength} characters (it prefixes the namespace, gateway and host names)`,
        }),
    displayName: z
        .string()
        .trim()
        .min(1, { error: "a non-empty name" })
        // The image runs envsubst over its configuration files: "$word" would become whatever that variable holds.
        .regex(/^[^$]*$/, { error: "a name without '$' (the Orthanc image substitutes environment variables in its configuration)" })
        .max(maxCommonNameLength - tenantCaSuffix.length, {
            error: `at most ${maxCommonNameLength - tenantCaSuffix.length} characters (the tenant CA is named "<displayName>${tenantCaSuffix}", at most ${maxCommonNameLength})`,
        }),
    orthanc: orthancSchema.default(orthancSchema.parse({})),
    postgres: postgresSchema.default(postgresSchema.parse({})),
    database: databaseSchema.default(databaseSchema.parse({})),
    /**
     * Guards the tenant's data: its namespace, database release and credentials are protected in Pulumi, so removing the
     * tenant from the configuration fails instead of deleting studies. Set to false first to really delete a tenant.
     */
    protectData: z.boolean().default(true),
    /**
     * With `ingress.serviceType: NodePort`, the node ports of this tenant's gateway, so that a local cluster's port
     * mappings and the README's host lines stay valid across re-deployments. Kubernetes picks free ones when unset.
     */
    /**
     * The modalities that may connect to the DICOM port: each gets a client certificate from the tenant CA, and only
     * the certificates of the modalities listed here are accepted. Removing one refuses it from the next `pulumi up`.
     */
    modalities: z.array(modalitySchema).default([]),
    nodePorts: z
        .strictObject({
            https: z.int().min(nodePortRange.min).max(nodePortRange.max),
            dicom: z.int().min(nodePortRange.min).max(nodePortRange.max),
        })
        .optional(),
});

const ingressSchema = z.strictObject({
    /**
     * How each tenant's gateway Service is exposed. No default: a LoadBalancer Service on a cluster that has no load
     * balancer (kind, minikube, bare metal) never gets an address, and the deployment waits for it until it fails.
     * The stack states what its cluster provides.
     */
    serviceType: z.enum(["LoadBalancer", "NodePort", "ClusterIP"], {
        error: 'one of "LoadBalancer" (the cluster assigns external addresses: a cloud, MetalLB, k3d), "NodePort" (kind, minikube, bare metal), "ClusterIP"',
    }),
    /** Annotations for the gateway Services, e.g. to ask a cloud for an internal load balancer. */
    annotations: z
        .record(
            z.string().regex(annotationKeyPattern, { error: "an annotation key: [prefix/]name, the name at most 63 of A-Z, a-z, 0-9, '-', '_', '.'" }),
            z.string(),
        )
        .default({}),
});

const kubernetesSchema = z.strictObject({
    /**
     * The kubeconfig context this stack deploys to. Required by `up` (components/config/kubernetesProvider.ts): with
     * none, the current context would win, whichever cluster that is. Also the provider's clusterIdentifier.
     */
    context: z.string().min(1).optional(),
    /**
     * A kubeconfig's path (relative to the project) or contents (a secret then: they hold credentials). Unset: the
     * files of $KUBECONFIG, else ~/.kube/config, read on every run and never stored in the state.
     */
    kubeconfig: z.string().min(1).optional(),
    /**
     * Istio's platform profile, for clusters whose CNI lives elsewhere than /opt/cni/bin and /etc/cni/net.d: k3d and
     * k3s keep it under /var/lib/rancher, so Istio's CNI agent would never chain itself in and no meshed pod would
     * start. Unset for kind, minikube and most clouds.
     */
    platform: z.enum(["k3d", "k3s", "microk8s", "minikube", "openshift", "gke"]).optional(),
    /**
     * The API server's addresses (`kubectl get endpoints kubernetes -n default`), as CIDR blocks. Needed with the
     * cloudnative-pg engine: its database pods talk to the API server, and a NetworkPolicy can only name addresses.
     */
    apiServerAddresses: z.array(z.string().regex(cidrPattern, { error: "an IPv4 CIDR block such as 10.0.0.1/32" })).min(1).optional(),
});

const observabilitySchema = z.strictObject({
    /** Install Prometheus, Kiali and the Istio monitors. */
    enabled: z.boolean().default(true),
});

/** S3-compatible object storage for backups, per stack. */
const backupSchema = z.strictObject({
    s3: z.strictObject({
        /** https URL of the S3 API (AWS, MinIO, Ceph RGW, ...). */
        endpoint: z.url({ protocol: /^https$/, error: "an https URL such as https://s3.eu-west-1.amazonaws.com" }),
        bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { error: "an S3 bucket name" }),
        region: z.string().min(1).default("us-east-1"),
        /** Set both with `pulumi config set --secret --path 'backup.s3.accessKeyId' ...`: refused in plain text. */
        accessKeyId: z.string().min(1),
        secretAccessKey: z.string().min(1),
        /** Where the endpoint resolves, as CIDR blocks: backup jobs' egress is opened to exactly these on 443. */
        addresses: z.array(z.string().regex(cidrPattern, { error: "an IPv4 CIDR block such as 52.95.0.0/16" })).min(1),
    }),
    /** When backups run (cron, UTC). */
    schedule: z.string().regex(/^(\S+\s+){4}\S+$/, { error: "a five-field cron expression such as \"0 1 * * *\"" }).default("0 1 * * *"),
    /** How long backups are kept. */
    retentionDays: z.int().min(1).max(3650).default(30),
});
export type BackupConfig = z.infer<typeof backupSchema>;

const pkiSchema = z.strictObject({
    organization: z
        .string()
        .min(1)
        .max(maxCommonNameLength - rootCaSuffix.length, {
            error: `at most ${maxCommonNameLength - rootCaSuffix.length} characters (the root CA is named "<organization>${rootCaSuffix}", at most ${maxCommonNameLength})`,
        })
        .default("Korthweb"),
    rootCaValidityHours: z.int().min(30 * day).max(30 * year).default(10 * year),
    tenantCaValidityHours: z.int().min(30 * day).max(30 * year).default(5 * year),
    /** Server certificates are short-lived and renewed by cert-manager. */
    serverCertificateDurationHours: z.int().min(1 * day).max(397 * day).default(90 * day),
    /**
     * Modalities' client certificates. Renewed by `pulumi up` in their last tenth; the new one must then be installed
     * on the modality (scripts/run modality-cert), so they are long-lived.
     */
    modalityCertificateValidityHours: z.int().min(30 * day).max(5 * year).default(2 * year),
    /**
     * How long a modality's previous certificate stays admitted once `pulumi up` has issued the next one: the time to
     * install the new one (components/pki/renewal.ts). At most half the validity, so only one previous overlaps.
     */
    modalityCertificateOverlapHours: z.int().min(1 * day).default(30 * day),
}).superRefine((pki, ctx) => {
    if (pki.modalityCertificateOverlapHours * 2 > pki.modalityCertificateValidityHours) {
        ctx.addIssue({
            code: "custom",
            path: ["modalityCertificateOverlapHours"],
            message: `at most half of pki.modalityCertificateValidityHours (${pki.modalityCertificateValidityHours / 2})`,
        });
    }
    // Every certificate must expire before its issuer's certificate: cert-manager v1.21.1 does not shorten a
    // certificate to its CA's notAfter (pkg/util/pki/certificatetemplate.go, CertificateTemplateOverrideDuration sets
    // notAfter = notBefore + duration; pkg/util/pki/csr.go, SignCSRTemplate and SignCertificate sign that template
    // as is), and Go's x509 under @pulumi/tls does not either. `pulumi up` renews a CA when its remaining life equals
    // the longest life of what it issues (caRenewalHours, components/pki/profile.ts), so what it issued before fits;
    // that needs the issued life to be at most half the CA's, or the CA would be renewed on nearly every `up`.
    const issuedBy: [keyof typeof pki, keyof typeof pki, string][] = [
        ["tenantCaValidityHours", "rootCaValidityHours", "the root CA's"],
        ["serverCertificateDurationHours", "tenantCaValidityHours", "the tenant CA's"],
        ["modalityCertificateValidityHours", "tenantCaValidityHours", "the tenant CA's"],
    ];
    for (const [issued, issuer, what] of issuedBy) {
        const limit = (pki[issuer] as number) / 2;
        if ((pki[issued] as number) > limit) {
            ctx.addIssue({
                code: "custom",
                path: [issued],
                message: `at most half of pki.${issuer} (${limit}): ${what} certificate is renewed when its remaining life equals the longest it issues, and must outlive what it signed`,
            });
        }
    }
});

export const stackConfigSchema = z
    .strictObject({
        domain: z
            .string()
            .regex(domainPattern, { error: "a lowercase DNS name with at least two labels, such as orthweb.example.org" })
            .max(maxDomainLength, {
                error: `at most ${maxDomainLength} characters, so that every tenant's host names fit in 253`,
            }),
        tenants: z.array(tenantSchema).min(1, { error: "at least one tenant" }),
        kubernetes: kubernetesSchema.default(kubernetesSchema.parse({})),
        // Parsed from {} when absent, so that a missing serviceType is reported by its own key.
        ingress: ingressSchema.prefault({} as z.input<typeof ingressSchema>),
        observability: observabilitySchema.default(observabilitySchema.parse({})),
        pki: pkiSchema.default(pkiSchema.parse({})),
        /** Scheduled backups of every tenant's database the program runs; none when absent. */
        backup: backupSchema.optional(),
    })
    .superRefine((config, ctx) => {
        const seen = new Set<string>();
        const nodePortsSeen = new Map<number, string>();
        config.tenants.forEach((tenant, index) => {
            // cert-manager refuses a Certificate whose common name exceeds 64 characters, halfway through a deployment.
            const { webHost } = tenantNames(tenant.name, config.domain);
            if (webHost.length > maxCommonNameLength) {
                ctx.addIssue({
                    code: "custom",
                    path: ["tenants", index, "name"],
                    message: `a shorter tenant name or domain: the web host ${webHost} is the server certificate's common name, at most ${maxCommonNameLength} characters`,
                });
            }
            if (quantityBytes(tenant.orthanc.memoryRequest) > quantityBytes(tenant.orthanc.memoryLimit)) {
                // The API server accepts the Deployment but refuses every pod: the rollout would wait forever.
                ctx.addIssue({
                    code: "custom",
                    path: ["tenants", index, "orthanc", "memoryRequest"],
                    message: `a quantity <= orthanc.memoryLimit (${tenant.orthanc.memoryLimit})`,
                });
            }
            const { engine, external } = tenant.database;
            if ((engine === "external") !== (external !== undefined)) {
                ctx.addIssue({
                    code: "custom",
                    path: ["tenants", index, "database", engine === "external" ? "external" : "engine"],
                    message: engine === "external" ? "the managed database's settings (host, database, user, password, caCertificate, addresses)" : '"external" when database.external is given',
                });
            }
            if (engine === "cloudnative-pg" && config.kubernetes.apiServerAddresses === undefined) {
                ctx.addIssue({
                    code: "custom",
                    path: ["kubernetes", "apiServerAddresses"],
                    message: `the API server's addresses as CIDR blocks (kubectl get endpoints kubernetes -n default): tenants[${index}] uses the cloudnative-pg engine, whose database pods talk to the API server, and a NetworkPolicy can only name addresses`,
                });
            }
            if (engine === "cloudnative-pg" && tenant.postgres.replicas < 2) {
                ctx.addIssue({
                    code: "custom",
                    path: ["tenants", index, "postgres", "replicas"],
                    message: "at least 2 with the cloudnative-pg engine (a synchronous standby)",
                });
            }
            const modalityNames = new Set<string>();
            const aeTitles = new Set<string>([tenant.orthanc.aeTitle]);
            tenant.modalities.forEach((modality, m) => {
                const at = (key: string) => ["tenants", index, "modalities", m, key];
                if (modalityNames.has(modality.name)) {
                    ctx.addIssue({ code: "custom", path: at("name"), message: "a name not used by another modality of the tenant" });
                }
                modalityNames.add(modality.name);
                if (aeTitles.has(modality.aeTitle)) {
                    ctx.addIssue({
                        code: "custom",
                        path: at("aeTitle"),
                        message: `an AE title used by no other modality of the tenant and not Orthanc's own (${tenant.orthanc.aeTitle})`,
                    });
                }
                aeTitles.add(modality.aeTitle);
                if ((modality.host === undefined) !== (modality.port === undefined)) {
                    ctx.addIssue({
                        code: "custom",
                        path: at(modality.host === undefined ? "host" : "port"),
                        message: "set together with " + (modality.host === undefined ? "port" : "host") + " (where C-MOVE sends to), or neither",
                    });
                }
            });
            if (tenant.nodePorts !== undefined) {
                if (config.ingress.serviceType !== "NodePort") {
                    ctx.addIssue({
                        code: "custom",
                        path: ["tenants", index, "nodePorts"],
                        message: `nothing unless korthweb:ingress.serviceType is "NodePort" (it is "${config.ingress.serviceType}")`,
                    });
                }
                for (const [port, value] of Object.entries(tenant.nodePorts)) {
                    const owner = nodePortsSeen.get(value);
                    if (owner !== undefined) {
                        ctx.addIssue({
                            code: "custom",
                            path: ["tenants", index, "nodePorts", port],
                            message: `a node port not used elsewhere (${owner} has it already)`,
                        });
                    }
                    nodePortsSeen.set(value, `tenants[${index}].nodePorts.${port}`);
                }
            }
            if (seen.has(tenant.name)) {
                ctx.addIssue({
                    code: "custom",
                    path: ["tenants", index, "name"],
                    message: "a name not used by another tenant (names must be unique)",
                });
            }
            seen.add(tenant.name);
            if (tenant.orthanc.maxReplicas < tenant.orthanc.minReplicas) {
                ctx.addIssue({
                    code: "custom",
                    path: ["tenants", index, "orthanc", "maxReplicas"],
                    message: `a number >= orthanc.minReplicas (${tenant.orthanc.minReplicas})`,
                });
            }
        });
    });

/** Bytes of a memory quantity in Mi or Gi (the only units `memoryPattern` admits). */
function quantityBytes(quantity: string): number {
    const units: Record<string, number> = { Mi: 2 ** 20, Gi: 2 ** 30 };
    const match = /^([0-9]+)(Mi|Gi)$/.exec(quantity);
    return match ? Number(match[1]) * units[match[2]] : Number.NaN;
}

export type StackConfig = z.infer<typeof stackConfigSchema>;
export type TenantConfig = StackConfig["tenants"][number];
export type IngressConfig = StackConfig["ingress"];
export type PkiConfig = StackConfig["pki"];
