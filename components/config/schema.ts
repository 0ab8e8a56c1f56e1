import { isIPv6 } from "net";
import { z } from "zod";
import { tenantNames } from "../naming/tenantNames";
import { certificateRequestProblems } from "../pki/certificateRequest";
import { defaultRoles, permissions, RoleConfig } from "../identity/contract";

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

/**
 * The settings that hold credentials, declared once, on the field itself with `credential(...)`: wherever such a
 * setting sits (nested objects, arrays), the program refuses it unless Pulumi stores it encrypted, and error messages
 * never print it (components/config/load.ts walks the schema for these marks). `when` narrows a setting to the values
 * that are credentials (a kubeconfig's contents, not its path).
 */
export const credentialSettings = z.registry<{ when?: (value: unknown) => boolean }>();
export function credential<T extends z.ZodType>(schema: T, meta: { when?: (value: unknown) => boolean } = {}): T {
    credentialSettings.add(schema, meta);
    return schema;
}

/**
 * Whether a kubeconfig setting holds a kubeconfig's contents rather than a path: more than one line, JSON or a YAML
 * flow collection, or a YAML `key: value` on one line. A path is one line without ": " (Windows' `C:\` is a path).
 */
export function isKubeconfigContents(value: string): boolean {
    return /[\r\n]/.test(value) || /^\s*[{[]/.test(value) || /:(\s|$)/.test(value);
}

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
/** Whether a host is a dotted-quad IPv4 address (what a NetworkPolicy can name) rather than a DNS name. */
export const isIpv4Address = (host: string): boolean => ipv4Pattern.test(host);

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
    /**
     * The modality's own certificate request (PEM, PKCS#10), when it keeps its private key: the tenant CA signs it and
     * the program never holds the key. Without it the program makes the key (a secret in the state and the outputs).
     */
    certificateRequest: z.string().optional(),
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

/**
 * The gatekeeper's audit database on a managed PostgreSQL, which the site's DBA creates (README, configuration
 * reference: `database.external.audit`; `scripts/run audit-sql <stack> <tenant>` prints the SQL): its own database, in
 * which this role may INSERT and SELECT only. Host, port and CA are the managed server's unless given.
 */
const externalAuditSchema = z.strictObject({
    host: z.string().regex(hostPattern, { error: "a DNS name or IPv4 address" }).optional(),
    port: z.int().min(1).max(65535).optional(),
    database: z.string().regex(sqlIdentifierPattern, { error: "a lowercase PostgreSQL identifier" }),
    user: z.string().regex(sqlIdentifierPattern, { error: "a lowercase PostgreSQL identifier" }),
    /** Set with `pulumi config set --secret --path 'tenants[N].database.external.audit.password' ...`: refused in plain text. */
    password: credential(z.string().min(16, { error: "at least 16 characters" })),
    /** verify-full: the server checked against the CA and `host`. require: encrypted, the server not checked. */
    sslmode: z.enum(["verify-full", "require"], { error: '"verify-full" (the default) or "require"' }).default("verify-full"),
    /** The CA that signed the audit server's certificate (PEM), when it is not database.external.caCertificate. */
    caCertificate: z.string().regex(pemCertificatePattern, { error: "a PEM certificate" }).optional(),
    /** Where `host` resolves, as CIDR blocks, when it is not the managed server (database.external.addresses). */
    addresses: z.array(z.string().regex(cidrPattern, { error: "an IPv4 CIDR block such as 10.0.5.0/28" })).min(1).optional(),
});
export type ExternalAuditConfig = z.infer<typeof externalAuditSchema>;

/** A managed PostgreSQL outside the cluster (a cloud's database service). */
const externalDatabaseSchema = z.strictObject({
    /** The server's name, as its certificate names it (TLS is verified against `caCertificate` and this name). */
    host: z.string().regex(hostPattern, { error: "a DNS name or IPv4 address" }),
    port: z.int().min(1).max(65535).default(5432),
    database: z.string().regex(sqlIdentifierPattern, { error: "a lowercase PostgreSQL identifier" }),
    user: z.string().regex(sqlIdentifierPattern, { error: "a lowercase PostgreSQL identifier" }),
    /** Set with `pulumi config set --secret --path 'tenants[N].database.external.password' ...`: refused in plain text. */
    password: credential(z.string().min(16, { error: "at least 16 characters" })),
    /** The CA that signed the server's certificate (PEM). */
    caCertificate: z.string().regex(pemCertificatePattern, { error: "a PEM certificate" }),
    /**
     * Where `host` resolves, as CIDR blocks: the NetworkPolicy opens Orthanc's egress to exactly these on `port`
     * (a NetworkPolicy cannot name hosts).
     */
    addresses: z.array(z.string().regex(cidrPattern, { error: "an IPv4 CIDR block such as 10.0.5.0/28" })).min(1),
    /** The gatekeeper's audit database, for tenants who sign in (identity.oidc); without it, identity.audit.stdoutOnly. */
    audit: externalAuditSchema.optional(),
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

/** PostgreSQL nodes synchronous replication needs: a primary and two standbys, one of which may be lost. */
export const minimumSynchronousReplicas = 3;

const postgresSchema = z.strictObject({
    /** PostgreSQL nodes (one primary, the rest streaming standbys managed by repmgr). */
    replicas: z.int().min(1).max(9).default(3),
    /**
     * synchronous (the default): every commit, and so every instance Orthanc acknowledges, waits until one standby has
     * it (quorum `ANY 1`), so losing the primary loses no acknowledged study; needs `replicas` >= 3, so that losing one
     * standby does not stop writes. asynchronous: commits wait for the primary alone; a failover loses what it had not
     * yet streamed, acknowledged studies included (README: Durability and failover). In-cluster engines only.
     */
    replication: z.enum(["synchronous", "asynchronous"]).default("synchronous"),
    /** Pgpool-II nodes in front of them. */
    pgpoolReplicas: z.int().min(1).max(9).default(2),
    volumeSize: z.string().regex(volumeSizePattern, { error: "a size such as 50Gi (Mi, Gi or Ti, no decimals)" }).default("20Gi"),
    /** Storage class of the data volumes; the cluster default when unset. */
    storageClass: z
        .string()
        .regex(/^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, { error: "a storage class name (a DNS subdomain such as gp3 or premium.ssd)" })
        .optional(),
});

/** Where a tenant's DICOM files live (components/data/storage/orthancStorage.ts; README, "Where the images are stored"). */
export const storageTypes = ["postgresql", "s3", "azure-blob", "google-cloud-storage", "filesystem"] as const;
/** The choices whose files the image's object-storage plugins keep. */
export const objectStorageTypes: readonly string[] = ["s3", "azure-blob", "google-cloud-storage"];
/** An object key prefix: '/'-separated segments, no leading or trailing '/' (the plugin refuses a leading one). */
const objectPrefixPattern = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/;
const storageClassPattern = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const storageSchema = z.strictObject({
    /**
     * postgresql: large objects in the tenant's database, as Korthweb stored them (the default: every stack deployed
     * before this setting stores its files there, and a default that moved would strand them). s3 (AWS or an
     * S3-compatible store), azure-blob, google-cloud-storage: the image's object-storage plugins; filesystem: a
     * ReadWriteMany volume every replica mounts. Immutable once files exist (components/data/storage/storageIdentity.ts).
     */
    type: z.enum(storageTypes, { error: `one of ${storageTypes.map((t) => `"${t}"`).join(", ")}` }).default("postgresql"),
    /** Object stores: the key prefix under which the tenant's files are written; the tenant's name when unset. Immutable. */
    rootPath: z.string().max(200).regex(objectPrefixPattern, { error: "a key prefix such as bhs or archive/bhs: '/'-separated segments, no leading or trailing '/'" }).optional(),
    /** Object stores: the plugin's key layout ("flat": the file's UUID; "legacy": xx/yy/UUID as Orthanc's own folders). Immutable. */
    structure: z.enum(["flat", "legacy"]).default("flat"),
    /**
     * Object stores: the plugin's client-side encryption (AES-256-GCM per file) with a master key the program
     * generates and keeps as a Pulumi secret. Losing that key loses every file (README). Off by default: the provider's
     * server-side encryption at rest applies either way.
     */
    clientSideEncryption: z.boolean().default(false),
    /**
     * The digest of the storage identity this configuration moves away from, as the refusal printed it: set once the
     * files are migrated (components/data/storage/storageIdentity.ts). Without it, a changed bucket, root path, structure,
     * key, volume or type stops the stack before anything is replaced.
     */
    replacesIdentity: z.string().regex(/^[0-9a-f]{16}$/, { error: "the 16 hex digits the refusal printed" }).optional(),
    /** Threads that read files from the storage (Orthanc 1.13.0 `StorageLoaderThreadsCount`, 4 by default there). */
    loaderThreads: z.int().min(1).max(64).optional(),
    /**
     * Object stores: the endpoint's addresses as CIDR blocks (an on-premises store with stable addresses): Orthanc's
     * NetworkPolicy opens exactly these. A cloud endpoint's addresses change: use korthweb:kubernetes.cni "cilium" or
     * `anyAddress` instead.
     */
    addresses: z.array(z.string().regex(cidrPattern, { error: "an IPv4 CIDR block such as 10.30.0.0/24" })).min(1).optional(),
    /** Object stores: Orthanc's NetworkPolicy admits any address on the endpoint's port (the mesh still admits the endpoint's name only). */
    anyAddress: z.literal(true, { error: "true, or leave it out" }).optional(),
    s3: z
        .strictObject({
            bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { error: "an S3 bucket name" }),
            region: z.string().regex(/^[a-z0-9-]{2,32}$/, { error: "a region such as eu-west-1" }),
            /**
             * The stack's own S3 server in the cluster (`korthweb:objectStore`, the local stack): the program derives
             * the endpoint and generates the tenant's key pair; endpoint, keys, role and addresses are left out.
             */
            inCluster: z.literal(true, { error: "true, or leave it out" }).optional(),
            /** https URL of an S3-compatible store (Ceph RGW, Garage, ...); unset for AWS S3 itself. */
            endpoint: z.url({ protocol: /^https$/, error: "an https URL such as https://s3.storage.example.org" }).optional(),
            /** virtual-host: <bucket>.<endpoint host> (AWS); path: <endpoint host>/<bucket> (most on-premises stores). */
            addressing: z.enum(["virtual-host", "path"]).default("virtual-host"),
            /** EKS IRSA: the IAM role Orthanc's ServiceAccount assumes (no static key). */
            roleArn: z.string().regex(/^arn:aws[a-z-]*:iam::[0-9]{12}:role\/[A-Za-z0-9+=,.@_\/-]{1,512}$/, { error: "an IAM role ARN such as arn:aws:iam::111122223333:role/orthanc-bhs" }).optional(),
            /** A static key pair, only for a store without workload identity (on premises). Secrets. */
            accessKeyId: credential(z.string().min(1)).optional(),
            secretAccessKey: credential(z.string().min(1)).optional(),
            /** SSE-KMS: the KMS key (ARN) the bucket's default encryption uses; recorded and granted, see README. */
            kmsKeyId: z.string().refine((value) => kmsKeyArnPattern.test(value), { error: "a KMS key ARN such as arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab (not an alias)" }).optional(),
        })
        .optional(),
    azureBlob: z
        .strictObject({
            account: z.string().regex(/^[a-z0-9]{3,24}$/, { error: "a storage account name: 3-24 of a-z, 0-9" }),
            container: z.string().regex(/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/, { error: "a container name: 3-63 of a-z, 0-9, single '-'" }),
            /** The plugin (2.5.3) authenticates by connection string only: a secret (account key or SAS). */
            connectionString: credential(z.string().min(1)),
            /**
             * Azure Workload Identity (a managed identity's client ID for the ServiceAccount annotation): accepted only
             * to be refused by name (`storageProblems`), since the plugin cannot use it.
             */
            workloadIdentityClientId: z.string().optional(),
        })
        .optional(),
    googleCloudStorage: z
        .strictObject({
            bucket: z.string().regex(/^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/, { error: "a bucket name" }),
            /** The plugin (2.5.3) authenticates with a service account key file only: its JSON, a secret. */
            serviceAccountKey: credential(z.string().min(1)),
            /**
             * GKE Workload Identity (the Google service account the Kubernetes one would impersonate): accepted only to
             * be refused by name (`storageProblems`), since the plugin cannot use it.
             */
            workloadIdentityServiceAccount: z.string().optional(),
        })
        .optional(),
    filesystem: z
        .strictObject({
            /** A storage class that provisions ReadWriteMany volumes (EFS, Azure Files, Filestore, CephFS, NFS). */
            storageClass: z.string().regex(storageClassPattern, { error: "a storage class name (a DNS subdomain such as efs-sc)" }),
            size: z.string().regex(volumeSizePattern, { error: "a size such as 500Gi (Mi, Gi or Ti, no decimals)" }),
        })
        .optional(),
});
export type StorageConfig = z.infer<typeof storageSchema>;

/** A role name: also what API clients name, and part of the audit trail. */
const roleNamePattern = /^[a-z][a-z0-9-]{0,39}$/;
const permissionList = permissions.map((p) => `"${p}"`).join(", ");

const roleSchema = z.strictObject({
    /** Values of the identity provider's groups claim that grant the role. */
    groups: z.array(z.string().min(1)).min(1, { error: "at least one group of the identity provider that grants the role (a role no group grants is never held)" }),
    permissions: z.array(z.enum(permissions, { error: `one of ${permissionList}` })).min(1, { error: `at least one of ${permissionList}` }),
});

/** The site's own identity provider (Entra ID, Okta, Google Workspace, an existing Keycloak): one OIDC web client per tenant. */
const oidcSchema = z.strictObject({
    /** The provider's issuer (its `/.well-known/openid-configuration` is under it); tokens' `iss` must equal it. */
    issuer: z.url({ protocol: /^https$/, error: "an https URL such as https://login.microsoftonline.com/<directory id>/v2.0" }),
    clientId: z.string().min(1),
    /** The web client's secret: `pulumi config set --secret --path 'tenants[N].identity.oidc.clientSecret' ...`. */
    clientSecret: credential(z.string().min(1)),
    /** The claim holding the user's groups (Okta and Keycloak mappers: `groups`; Entra ID: `groups` or `roles`). */
    groupsClaim: z.string().min(1).default("groups"),
    /** The claim shown as the user's name in the audit trail. */
    nameClaim: z.string().min(1).default("name"),
    /** Values accepted in bearer tokens' `aud` (API clients, viewers); the web client's id when empty. */
    audiences: z.array(z.string().min(1)).default([]),
    scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, { error: "an OAuth2 scope token (no spaces or quotes)" })).default(["openid", "profile", "email"]),
    /**
     * The issuer's addresses as CIDR blocks, for a provider whose addresses are stable (on premises): the gatekeeper's
     * NetworkPolicy opens exactly these on 443. A cloud provider's addresses change: kubernetes.cni "cilium" or `anyAddress`.
     */
    addresses: z.array(z.string().regex(cidrPattern, { error: "an IPv4 CIDR block such as 10.60.0.0/28" })).min(1).optional(),
    /** The gatekeeper's NetworkPolicy admits any address on the issuer's port (the mesh still admits the issuer's name only). */
    anyAddress: z.literal(true, { error: "true, or leave it out" }).optional(),
    /**
     * The CA (PEM) of a provider whose certificate no public CA signed (an on-premises ADFS or Keycloak): trusted by the
     * gatekeeper besides Node's bundled CAs (NODE_EXTRA_CA_CERTS).
     */
    caCertificate: z.string().regex(pemCertificatePattern, { error: "a PEM certificate" }).optional(),
});
export type OidcConfig = z.infer<typeof oidcSchema>;

/** How long audit records are kept unless the stack says: six years (HIPAA 164.316(b)(2)(i)). */
export const defaultAuditRetentionDays = 6 * 365;

/**
 * Who signs in to a tenant (README, "Who signs in"): exactly one of `oidc` (the site's identity provider), `keycloak`
 * (an in-cluster Keycloak with a realm for the tenant, for the local and dev stacks: a place to try sign-in and roles
 * without a provider of one's own, not an identity service for a hospital) or `disabled: true` (no gatekeeper:
 * everyone shares the generated admin password through the gateway; README warning).
 */
const identitySchema = z.strictObject({
    oidc: oidcSchema.optional(),
    keycloak: z
        .strictObject({
            /** The user name of the realm's first administrator; her first password is generated (stack output `identityProviders`). */
            administrator: z.string().regex(/^[a-z][a-z0-9._-]{2,39}$/, { error: "a user name: 3 to 40 of a-z, 0-9, '.', '_', '-', starting with a letter" }).default("administrator"),
        })
        .optional(),
    disabled: z.literal(true, { error: "true, or leave it out" }).optional(),
    /** Role name -> the groups that grant it and what it may do; the contract's defaults when unset. */
    roles: z.record(z.string().regex(roleNamePattern, { error: "a role name: a-z, 0-9 and '-', starting with a letter" }), roleSchema).optional(),
    /** Scripts and integrations (OAuth2 client credentials), each acting under one role. */
    apiClients: z.array(z.strictObject({ clientId: z.string().min(1), role: z.string().min(1) })).default([]),
    /** How long a browser session lasts at most. */
    sessionTtlSeconds: z.int().min(300).max(24 * 3600).default(8 * 3600),
    /** The longest validity a share link may be given. */
    shareLinkMaxTtlSeconds: z.int().min(60).max(30 * 24 * 3600).default(7 * 24 * 3600),
    audit: z
        .strictObject({
            /** How long audit records are kept: six years by default (HIPAA 164.316(b)(2)(i)); shorter where the law says. */
            retentionDays: z.int().min(30).max(3650).default(defaultAuditRetentionDays),
            /**
             * The trail goes to the gatekeeper's stdout only, for the platform's log collector to keep: no audit database,
             * no retention job, no `/audit` for the auditor (README warning). The one choice for a database engine whose
             * audit database the program does not render (`external` without database.external.audit).
             */
            stdoutOnly: z.literal(true, { error: "true, or leave it out" }).optional(),
        })
        .default({ retentionDays: defaultAuditRetentionDays }),
});
export type IdentityConfig = z.infer<typeof identitySchema>;

/** The roles a tenant's identity grants: its own map, else the contract's defaults. */
export function identityRoles(identity: IdentityConfig): Record<string, RoleConfig> {
    return identity.roles ?? structuredClone(defaultRoles);
}

/** What a tenant's identity settings must say to be usable; paths are relative to tenants[N].identity. */
export function identityProblems(identity: IdentityConfig, cni: string | undefined): PathProblem[] {
    const problems: PathProblem[] = [];
    const chosen = (["oidc", "keycloak", "disabled"] as const).filter((key) => identity[key] !== undefined);
    if (chosen.length !== 1) {
        problems.push({
            path: chosen.length === 0 ? [] : [chosen[1]],
            message:
                chosen.length === 0
                    ? "exactly one of oidc (the site's identity provider: issuer, clientId, clientSecret as a secret), keycloak: {} (an in-cluster Keycloak, for local and dev) or disabled: true"
                    : `left out: exactly one of oidc, keycloak, disabled (${chosen.join(" and ")} are set)`,
        });
    }
    if (identity.disabled) {
        for (const key of ["roles", "apiClients"] as const) {
            const value = identity[key];
            if (value !== undefined && !(Array.isArray(value) && value.length === 0)) problems.push({ path: [key], message: "left out: identity.disabled is true (no gatekeeper reads it)" });
        }
    }
    const roles = identityRoles(identity);
    identity.apiClients.forEach((client, index) => {
        if (!(client.role in roles)) problems.push({ path: ["apiClients", index, "role"], message: `a role of the tenant (${Object.keys(roles).join(", ")})` });
        if (identity.apiClients.findIndex((other) => other.clientId === client.clientId) !== index) {
            problems.push({ path: ["apiClients", index, "clientId"], message: "a client id no other API client of the tenant has" });
        }
    });
    if (identity.keycloak && !Object.values(roles).some((role) => role.permissions.includes("admin"))) {
        problems.push({
            path: ["roles"],
            message: 'a role with the "admin" permission: the in-cluster Keycloak puts the realm\'s first administrator in its groups',
        });
    }
    const oidc = identity.oidc;
    if (oidc) {
        const host = new URL(oidc.issuer).hostname;
        if (!isIpv4Address(host) && oidc.addresses === undefined && oidc.anyAddress === undefined && cni === undefined) {
            problems.push({
                path: ["oidc", "addresses"],
                message:
                    "a way out to the issuer, which a NetworkPolicy can only name by address: oidc.addresses (CIDR blocks of a provider whose addresses are stable), " +
                    'or korthweb:kubernetes.cni "cilium" (egress by name), or oidc.anyAddress: true (any address on the issuer\'s port, for the gatekeeper only)',
            });
        }
        if (oidc.anyAddress && oidc.addresses !== undefined) {
            problems.push({ path: ["oidc", "anyAddress"], message: "left out when oidc.addresses is given (any address already includes them)" });
        }
    }
    return problems;
}

/** Whether a tenant's gatekeeper runs (it signs users in) and keeps its trail in a database, not on stdout alone. */
export function keepsAuditInDatabase(identity: IdentityConfig | undefined): boolean {
    return identity !== undefined && !identity.disabled && !identity.audit.stdoutOnly;
}

/** The engines whose audit database the program renders (components/data/engines/bitnamiHaAudit.ts, cloudnativePgAudit.ts). */
export const auditDatabaseEngines: readonly DatabaseConfig["engine"][] = ["bitnami-ha", "cloudnative-pg"];

/**
 * Where a tenant's gatekeeper keeps its audit trail; paths are relative to tenants[N].identity. `externalAudit`: the
 * external engine names an audit database its DBA made (database.external.audit).
 */
export function auditProblems(identity: IdentityConfig, engine: DatabaseConfig["engine"], externalAudit = false): PathProblem[] {
    if (!keepsAuditInDatabase(identity) || auditDatabaseEngines.includes(engine) || externalAudit) return [];
    return [
        {
            path: ["audit", "stdoutOnly"],
            message:
                `true: the program renders the audit database only in the tenant's own PostgreSQL (database.engine ${auditDatabaseEngines.map((e) => `"${e}"`).join(" or ")}), ` +
                `not with database.engine "${engine}"${engine === "external" ? " (or name one your DBA created: database.external.audit)" : ""}; ` +
                `with audit.stdoutOnly the trail is on the gatekeeper's stdout only, for the platform's log collector to keep (README, "Who signs in")`,
        },
    ];
}

/** What the audit database on a managed server must not share with Orthanc's; paths are relative to tenants[N].database.external. */
export function externalAuditProblems(external: ExternalDatabaseConfig, identity: IdentityConfig | undefined): PathProblem[] {
    const audit = external.audit;
    if (audit === undefined) return [];
    const problems: PathProblem[] = [];
    if (!keepsAuditInDatabase(identity)) {
        problems.push({ path: ["audit"], message: "left out: only a gatekeeper writes there (identity.oidc or identity.keycloak, without identity.audit.stdoutOnly)" });
    }
    const sameServer = (audit.host ?? external.host) === external.host && (audit.port ?? external.port) === external.port;
    if (sameServer && audit.database === external.database) {
        problems.push({ path: ["audit", "database"], message: `a database of its own, not Orthanc's (database.external.database ${external.database}): Orthanc's role must not reach the trail` });
    }
    if (audit.user === external.user) {
        problems.push({ path: ["audit", "user"], message: `a role of its own, not Orthanc's (database.external.user ${external.user}), allowed INSERT and SELECT on the audit table only` });
    }
    if ((audit.host ?? external.host) === external.host && audit.port !== undefined && audit.port !== external.port) {
        problems.push({ path: ["audit", "port"], message: `database.external.port (${external.port}), or leave it out: on the managed server's host the mesh knows one port` });
    }
    if (audit.host !== undefined && audit.host !== external.host && audit.addresses === undefined) {
        problems.push({ path: ["audit", "addresses"], message: `where ${audit.host} resolves, as CIDR blocks: the gatekeeper's NetworkPolicy can only name addresses (database.external.addresses are ${external.host}'s)` });
    }
    return problems;
}

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
    /** Where the tenant's DICOM files are stored (README, "Where the images are stored"). */
    storage: storageSchema.default(storageSchema.parse({})),
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
    /**
     * Who signs in to the web UIs, viewers, REST and DICOMweb, and under which role (README, "Who signs in"). Every
     * stack the program deploys names it for every tenant (`missingIdentityProblems`); `disabled: true` is the explicit
     * opt-out.
     */
    identity: identitySchema.optional(),
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
    /**
     * The client networks each tenant's gateway LoadBalancer admits, as CIDR blocks (the Service's
     * `loadBalancerSourceRanges`, enforced by the cloud's load balancer or by kube-proxy on the nodes). Unset: any
     * address, as a load balancer admits by default.
     */
    loadBalancerSourceRanges: z.array(z.string().refine(isCidrBlock, { error: "a CIDR block with its host bits zero, such as 203.0.113.0/24 or 2001:db8::/32" })).min(1).optional(),
}).superRefine((ingress, ctx) => {
    if (ingress.loadBalancerSourceRanges !== undefined && ingress.serviceType !== "LoadBalancer") {
        ctx.addIssue({ code: "custom", path: ["loadBalancerSourceRanges"], message: `nothing unless korthweb:ingress.serviceType is "LoadBalancer" (it is "${ingress.serviceType}")` });
    }
});

/** Whether a text is an IPv4 or IPv6 CIDR block in its network form (no host bits set), as a Service's source ranges take it. */
export function isCidrBlock(text: string): boolean {
    const match = /^([^/]+)\/([0-9]{1,3})$/.exec(text);
    if (!match) return false;
    const prefix = Number(match[2]);
    let bits: bigint;
    let width: number;
    if (ipv4Pattern.test(match[1])) {
        bits = match[1].split(".").reduce((value, octet) => (value << 8n) | BigInt(octet), 0n);
        width = 32;
    } else if (isIPv6(match[1]) && !match[1].includes(".")) {
        const [head, tail = ""] = match[1].split("::");
        const groups = (part: string) => (part === "" ? [] : part.split(":"));
        const missing = 8 - groups(head).length - groups(tail).length;
        const all = match[1].includes("::") ? [...groups(head), ...Array(missing).fill("0"), ...groups(tail)] : groups(head);
        bits = all.reduce((value, group) => (value << 16n) | BigInt(`0x${group}`), 0n);
        width = 128;
    } else {
        return false;
    }
    if (prefix > width) return false;
    const hostBits = (1n << BigInt(width - prefix)) - 1n;
    return (bits & hostBits) === 0n;
}

/** A Kubernetes label key ([prefix/]name) and value, as a NetworkPolicy's podSelector takes them. */
const labelKeyPattern = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const labelValuePattern = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

/** The cluster DNS pods (by namespace and labels, where the query's destination port is the pod's) or addresses. */
const dnsSchema = z.strictObject({
    /** Namespace of the DNS pods. */
    namespace: z.string().regex(dnsLabelPattern, { error: "a namespace name (a DNS label)" }).max(63).optional(),
    /** Labels of the DNS pods in that namespace. */
    podLabels: z
        .record(z.string().regex(labelKeyPattern, { error: "a label key" }), z.string().regex(labelValuePattern, { error: "a label value" }))
        .optional(),
    /**
     * Addresses queried directly, as CIDR blocks: NodeLocal DNSCache's link-local address (169.254.20.10/32), whose
     * hostNetwork pods no podSelector can name. With kube-proxy in iptables mode pods keep querying the kube-dns
     * Service's address, which the node's cache also listens on (its NOTRACK rules skip the DNAT to the DNS pods), so a
     * NetworkPolicy sees that Service address: list it too (kubernetes.io, "Using NodeLocal DNSCache in Kubernetes
     * Clusters").
     */
    addresses: z.array(z.string().regex(cidrPattern, { error: "an IPv4 CIDR block such as 169.254.20.10/32" })).min(1).optional(),
    /** Ports the DNS pods (or addresses) answer on, UDP and TCP: the pods' own ports, which NetworkPolicies see. */
    ports: z.array(z.int().min(1).max(65535)).min(1).default([53]),
});
export type DnsConfig = z.infer<typeof dnsSchema>;

/** DNS pods of kind, minikube, EKS, GKE and AKS: CoreDNS (or kube-dns) labelled k8s-app=kube-dns in kube-system. */
export const kubernetesDefaultDns = { namespace: "kube-system", podLabels: { "k8s-app": "kube-dns" }, ports: [53] } as const;
/** OpenShift's DNS operator: pods of the dns-default DaemonSet in openshift-dns, listening on 5353 (its Service's 53). */
export const openshiftDns = { namespace: "openshift-dns", podLabels: { "dns.operator.openshift.io/daemonset-dns": "default" }, ports: [5353] } as const;

/** Where pods' DNS goes: the stack's setting, else the platform's default. */
export function clusterDns(kubernetes: { dns?: DnsConfig; platform?: string }): DnsConfig {
    const fallback = kubernetes.platform === "openshift" ? openshiftDns : kubernetesDefaultDns;
    return kubernetes.dns ?? { namespace: fallback.namespace, podLabels: { ...fallback.podLabels }, ports: [...fallback.ports] };
}

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
    kubeconfig: credential(z.string().min(1), { when: (value) => typeof value === "string" && isKubeconfigContents(value) }).optional(),
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
    /**
     * Where every pod sends its DNS queries, for the NetworkPolicies that open DNS and nothing else. Unset: the
     * cluster DNS pods of kind, minikube, EKS, GKE and AKS (`k8s-app: kube-dns` in kube-system, port 53), or OpenShift's
     * (`openshift-dns`, port 5353 behind the Service's 53) with `platform: openshift`.
     */
    dns: dnsSchema.optional(),
    /**
     * The cluster's CNI when korthweb may use its own policies: "cilium" lets backups reach their object storage by
     * name (a CiliumNetworkPolicy with toFQDNs), which a NetworkPolicy cannot. Calico's domain-based rules are a Calico
     * Enterprise and Calico Cloud feature (docs.tigera.io, "DNS policy"), not Calico Open Source's: not offered.
     */
    cni: z.enum(["cilium"], { error: '"cilium" (the only CNI whose FQDN policy korthweb renders; Calico\'s domain policies are Calico Enterprise only)' }).optional(),
});

/** An e-mail address as Alertmanager sends to it (a plain addr-spec, no display name). */
const emailPattern = /^[^\s@<>(),;:"]+@([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,}$/i;
/** host:port of an SMTP server. */
const smarthostPattern = /^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?:[0-9]{1,5}$/;
const httpsUrl = (example: string) => z.url({ protocol: /^https$/, error: `an https URL such as ${example}` });
const email = z.string().regex(emailPattern, { error: "an e-mail address such as oncall@example.org" });

/**
 * One place alerts go. Every credential in it (Slack webhook URL, PagerDuty routing key, Opsgenie API key, webhook
 * bearer token) is set with `pulumi config set --secret --path`: refused in plain text, and handed to Alertmanager in
 * a Secret, never in Helm values.
 */
const alertReceiverSchema = z.strictObject({
    /** Names the receiver in Alertmanager's configuration. */
    name: z.string().regex(dnsLabelPattern, { error: "a DNS label: lowercase letters, digits and '-', starting with a letter" }).max(40),
    /** Which alerts it gets: by severity (both when unset) and by tenant (every tenant when unset). */
    severities: z.array(z.enum(["critical", "warning"])).min(1).optional(),
    tenants: z.array(z.string()).min(1).optional(),
    /** E-mail through `alerting.smtp`. */
    email: z.strictObject({ to: z.array(email).min(1) }).optional(),
    /** An https endpoint that takes Alertmanager's webhook JSON; `bearerToken` (secret) is sent as Authorization. */
    webhook: z.strictObject({ url: httpsUrl("https://alerts.example.org/korthweb"), bearerToken: credential(z.string().min(1)).optional() }).optional(),
    /** A Slack incoming-webhook URL (secret: it is the credential). */
    slack: z.strictObject({ webhookUrl: credential(httpsUrl("https://hooks.slack.com/services/...")), channel: z.string().min(1).optional() }).optional(),
    /** A PagerDuty Events API v2 integration's routing key (secret). */
    pagerduty: z.strictObject({ routingKey: credential(z.string().min(1)) }).optional(),
    /** An Opsgenie API integration's key (secret); `apiUrl` for the EU instance (https://api.eu.opsgenie.com/). */
    opsgenie: z.strictObject({ apiKey: credential(z.string().min(1)), apiUrl: httpsUrl("https://api.eu.opsgenie.com/").optional() }).optional(),
});
export type AlertReceiverConfig = z.infer<typeof alertReceiverSchema>;

const alertingSchema = z.strictObject({
    /**
     * Alertmanager, which delivers the alerts. Turning it off is an explicit opt-out: Prometheus then evaluates every
     * rule and notifies nobody (README, "Alerts and where they go").
     */
    enabled: z.boolean().default(true),
    /** The SMTP server the e-mail receivers send through. */
    smtp: z
        .strictObject({
            smarthost: z.string().regex(smarthostPattern, { error: "host:port of the SMTP server, such as smtp.example.org:587" }),
            from: email,
            username: z.string().min(1).optional(),
            /** Secret. */
            password: credential(z.string().min(1)).optional(),
        })
        .optional(),
    receivers: z.array(alertReceiverSchema).default([]),
});
export type AlertingConfig = z.infer<typeof alertingSchema>;

const observabilitySchema = z.strictObject({
    /** Install Prometheus, Kiali and the Istio monitors. */
    enabled: z.boolean().default(true),
    /** Where alerts go (Alertmanager's receivers and routes). */
    alerting: alertingSchema.default(alertingSchema.parse({})),
});

/** An S3 bucket name (docs.aws.amazon.com, "Bucket naming rules"): 3-63 of a-z, 0-9, '.', '-'. */
const bucketSchema = z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { error: "an S3 bucket name" });
/** A key prefix: '/'-separated segments of a-z, 0-9, '.', '_', '-', without a leading or trailing '/'. */
const backupPrefixPattern = /^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*$/;
/**
 * A KMS key ARN (a multi-Region key's too): an IAM policy grants the use of a key by its ARN only, not by an alias, so
 * the rendered policy (components/data/backup/backupPolicy.ts) can name exactly the tenant's key.
 */
const kmsKeyArnPattern = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key\/(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/**
 * An IAM role ARN (docs.aws.amazon.com, IAM identifiers): the role's optional path, then its name of at most 64 of
 * letters, digits and `+=,.@_-`.
 */
const iamRoleArnPattern = /^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:role\/([\w+=,.@-]+\/)*[\w+=,.@-]{1,64}$/;
/** An IAM OIDC provider ARN, as EKS registers a cluster's issuer (`oidc.eks.<region>.amazonaws.com/id/<id>`). */
const oidcProviderArnPattern = /^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:oidc-provider\/[a-z0-9.-]+(\/[A-Za-z0-9._-]+)*$/;

/**
 * One tenant's own place and credentials in the object storage: a key pair, or an AWS IAM role its backup pods assume
 * through EKS IAM roles for service accounts (`roleArn`, no key in any Secret). Either is the tenant's alone (the stack
 * is refused when two tenants share an access key id, a role, a bucket and prefix, or a KMS key), scoped by the policy
 * korthweb renders for it (stack output `backupStorage`): its prefix only, no delete.
 */
const tenantBackupSchema = z.strictObject({
    /** The tenant's bucket; backup.s3.bucket when unset. A CloudNativePG tenant needs a bucket of its own. */
    bucket: bucketSchema.optional(),
    /** The key prefix of its backups, without a trailing '/'; the tenant's name when unset. */
    prefix: z.string().max(200).regex(backupPrefixPattern, { error: "a key prefix such as bhs or korthweb/bhs: '/'-separated segments of a-z, 0-9, '.', '_', '-'" }).optional(),
    /** Set both with `pulumi config set --secret --path 'backup.tenants.<tenant>.accessKeyId' ...`: refused in plain text. */
    accessKeyId: credential(z.string().min(1)).optional(),
    secretAccessKey: credential(z.string().min(1)).optional(),
    /**
     * Instead of the key pair: the IAM role the tenant's backup pods assume with their ServiceAccount's token (EKS
     * IRSA; the trust policy is in the stack output `backupStorage`). AWS S3 only; needs `backup.irsa`.
     */
    roleArn: z.string().regex(iamRoleArnPattern, { error: "an IAM role ARN such as arn:aws:iam::111122223333:role/korthweb-bhs-backup" }).optional(),
    /** SSE-KMS with this key (its ARN) for every object the tenant's backups write; the bucket's default encryption when unset. */
    kmsKeyId: z.string().regex(kmsKeyArnPattern, { error: "a KMS key ARN such as arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab (not an alias)" }).optional(),
});
export type TenantBackupConfig = z.infer<typeof tenantBackupSchema>;

/** S3-compatible object storage for backups: where it is, per stack; each tenant's bucket, prefix and key pair, per tenant. */
const backupSchema = z.strictObject({
    s3: z.strictObject({
        /** https URL of the S3 API (AWS, MinIO, Ceph RGW, ...). */
        endpoint: z.url({ protocol: /^https$/, error: "an https URL such as https://s3.eu-west-1.amazonaws.com" }),
        /** The bucket of the tenants that name none of their own. */
        bucket: bucketSchema.optional(),
        region: z.string().min(1).default("us-east-1"),
        /** Refused: one key pair for every tenant (see `backupProblems`). Per tenant under backup.tenants. */
        accessKeyId: credential(z.string().min(1)).optional(),
        secretAccessKey: credential(z.string().min(1)).optional(),
        /**
         * The endpoint's addresses as CIDR blocks, for a store whose addresses are stable (on premises): the backup pods'
         * NetworkPolicy opens exactly these on the endpoint's port. A cloud endpoint's addresses change: use
         * `kubernetes.cni` (by name) instead, or `anyAddress`.
         */
        addresses: z.array(z.string().regex(cidrPattern, { error: "an IPv4 CIDR block such as 10.30.0.0/24" })).min(1).optional(),
        /**
         * Opens the backup pods' NetworkPolicy to any address on the endpoint's port (the Bitnami backup job's sidecar
         * still admits only the endpoint's name; CloudNativePG's instances have none). Only where neither fixed
         * addresses nor an FQDN-aware CNI is available.
         */
        anyAddress: z.literal(true, { error: "true, or leave it out" }).optional(),
    }),
    /** Every tenant whose database the program backs up (engines bitnami-ha and cloudnative-pg), by name. */
    tenants: z.record(z.string(), tenantBackupSchema).default({}),
    /**
     * The EKS cluster's IAM OIDC provider, which the tenants' roles (`tenants.<tenant>.roleArn`) trust: its ARN names
     * the issuer (`arn:aws:iam::<account>:oidc-provider/oidc.eks.<region>.amazonaws.com/id/<id>`).
     */
    irsa: z
        .strictObject({
            oidcProviderArn: z.string().regex(oidcProviderArnPattern, {
                error: "an IAM OIDC provider ARN such as arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE",
            }),
        })
        .optional(),
    /** When backups run (cron, UTC). */
    schedule: z.string().regex(/^(\S+\s+){4}\S+$/, { error: "a five-field cron expression such as \"0 1 * * *\"" }).default("0 1 * * *"),
    /** How long backups are kept: the bucket's lifecycle rules expire them (README, "Database engines, backups and restore"). */
    retentionDays: z.int().min(1).max(3650).default(30),
    /**
     * Size of the volume a Bitnami tenant's backup run writes its dump to (claimed per run from the tenant's
     * postgres.storageClass, never the node's disk); each tenant's postgres.volumeSize when unset.
     */
    scratchSize: z.string().regex(volumeSizePattern, { error: "a size such as 50Gi (Mi, Gi or Ti, no decimals)" }).optional(),
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
        /**
         * The ServiceAccount pull-request previews run as (components/platform/previewAccess.ts): it may send dry-run
         * requests only, so previews run server-side. On in every stack; `false` for a cluster nobody previews.
         */
        preview: z.strictObject({ enabled: z.boolean().default(true) }).default({ enabled: true }),
        /**
         * An S3-compatible server run in the cluster (components/platform/objectStore.ts: Versity's S3 gateway on a
         * volume), for stacks without a cloud store: tenants with `storage.s3.inCluster` keep their files there.
         */
        objectStore: z
            .strictObject({
                /** Its volume (ReadWriteOnce, one replica). */
                size: z.string().regex(volumeSizePattern, { error: "a size such as 5Gi (Mi, Gi or Ti, no decimals)" }).default("5Gi"),
                /** The volume's storage class; the cluster's default when unset. */
                storageClass: z.string().regex(storageClassPattern, { error: "a storage class name (a DNS subdomain such as standard)" }).optional(),
                /** The region it answers as; each in-cluster tenant's s3.region must name it. */
                region: z.string().regex(/^[a-z0-9-]{2,32}$/, { error: "a region such as us-east-1" }).default("us-east-1"),
            })
            .optional(),
    })
    .superRefine((config, ctx) => {
        inClusterStorageProblems(config).forEach((problem) => ctx.addIssue({ code: "custom", ...problem }));
        alertReceiverProblems(config.observability.alerting, config.tenants.map((tenant) => tenant.name)).forEach((problem) => ctx.addIssue({ code: "custom", ...problem }));
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
            if (config.ingress.serviceType === "NodePort" && tenant.identity !== undefined && !tenant.identity.disabled && tenant.nodePorts?.https === undefined) {
                ctx.addIssue({
                    code: "custom",
                    path: ["tenants", index, "nodePorts", "https"],
                    message:
                        "a fixed node port (30000-32767) with korthweb:ingress.serviceType NodePort and sign-in: the sign-in's redirect URI and the gatekeeper's same-origin checks name the port people type, which an assigned port is not known before the Service exists",
                });
            }
            if (tenant.identity?.keycloak && tenant.name === "master") {
                // Keycloak's own administration realm: the import would skip the tenant's realm as existing, and the
                // tenant's gateway would be admitted to the administration realm's paths.
                ctx.addIssue({ code: "custom", path: ["tenants", index, "name"], message: 'a name other than "master" (Keycloak\'s administration realm) for a tenant that signs in through the in-cluster Keycloak' });
            }
            if (tenant.identity?.keycloak && config.kubernetes.apiServerAddresses === undefined) {
                ctx.addIssue({
                    code: "custom",
                    path: ["kubernetes", "apiServerAddresses"],
                    message: `the API server's addresses as CIDR blocks (kubectl get endpoints kubernetes -n default): tenants[${index}] signs in through the in-cluster Keycloak, whose database (CloudNativePG) talks to the API server, and a NetworkPolicy can only name addresses`,
                });
            }
            if (engine === "external" && external !== undefined) {
                externalAuditProblems(external, tenant.identity).forEach((problem) => ctx.addIssue({ code: "custom", path: ["tenants", index, "database", "external", ...problem.path], message: problem.message }));
            }
            if (engine === "cloudnative-pg" && config.kubernetes.apiServerAddresses === undefined) {
                ctx.addIssue({
                    code: "custom",
                    path: ["kubernetes", "apiServerAddresses"],
                    message: `the API server's addresses as CIDR blocks (kubectl get endpoints kubernetes -n default): tenants[${index}] uses the cloudnative-pg engine, whose database pods talk to the API server, and a NetworkPolicy can only name addresses`,
                });
            }
            if (engine !== "external" && tenant.postgres.replication === "synchronous" && tenant.postgres.replicas < minimumSynchronousReplicas) {
                ctx.addIssue({
                    code: "custom",
                    path: ["tenants", index, "postgres", "replicas"],
                    message:
                        `at least ${minimumSynchronousReplicas} with synchronous replication (a primary and two standbys: each commit waits for one, ` +
                        'and losing a standby must not stop writes); or postgres.replication: "asynchronous", which can lose acknowledged studies on failover',
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
                if (modality.certificateRequest !== undefined) {
                    const rule = { aeTitle: modality.aeTitle, modalityName: modality.name, organization: config.pki.organization };
                    for (const problem of certificateRequestProblems(modality.certificateRequest, rule)) {
                        ctx.addIssue({ code: "custom", path: at("certificateRequest"), message: problem });
                    }
                }
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
            if (tenant.identity) {
                identityProblems(tenant.identity, config.kubernetes.cni).forEach((problem) => ctx.addIssue({ code: "custom", path: ["tenants", index, "identity", ...problem.path], message: problem.message }));
                auditProblems(tenant.identity, tenant.database.engine, tenant.database.external?.audit !== undefined).forEach((problem) => ctx.addIssue({ code: "custom", path: ["tenants", index, "identity", ...problem.path], message: problem.message }));
            }
            storageProblems(tenant.storage, config.kubernetes.cni).forEach((problem) => ctx.addIssue({ code: "custom", path: ["tenants", index, "storage", ...problem.path], message: problem.message }));
            if (tenant.orthanc.maxReplicas < tenant.orthanc.minReplicas) {
                ctx.addIssue({
                    code: "custom",
                    path: ["tenants", index, "orthanc", "maxReplicas"],
                    message: `a number >= orthanc.minReplicas (${tenant.orthanc.minReplicas})`,
                });
            }
        });
        backupProblems(config).forEach((problem) => ctx.addIssue({ code: "custom", ...problem }));
        sharedAudienceProblems(config.tenants).forEach((problem) => ctx.addIssue({ code: "custom", ...problem }));
        const s3 = config.backup?.s3;
        // An endpoint given by IPv4 address is its own fixed address.
        const endpointIsAddress = s3 !== undefined && /^\d{1,3}(\.\d{1,3}){3}$/.test(new URL(s3.endpoint).hostname);
        if (s3 && !endpointIsAddress && s3.addresses === undefined && s3.anyAddress === undefined && config.kubernetes.cni === undefined) {
            ctx.addIssue({
                code: "custom",
                path: ["backup", "s3", "addresses"],
                message:
                    "a way out to the endpoint, which a NetworkPolicy can only name by address: backup.s3.addresses (CIDR blocks of a store whose addresses are stable, e.g. on premises), " +
                    'or korthweb:kubernetes.cni "cilium" (egress by name through Cilium\'s FQDN policy), or backup.s3.anyAddress: true (any address on the endpoint\'s port, for the backup pods only)',
            });
        }
        if (s3?.anyAddress && s3.addresses !== undefined) {
            ctx.addIssue({ code: "custom", path: ["backup", "s3", "anyAddress"], message: "left out when backup.s3.addresses is given (any address already includes them)" });
        }
        const dns = config.kubernetes.dns;
        if (dns && (dns.namespace === undefined) !== (dns.podLabels === undefined)) {
            ctx.addIssue({
                code: "custom",
                path: ["kubernetes", "dns", dns.namespace === undefined ? "namespace" : "podLabels"],
                message: "set together with " + (dns.namespace === undefined ? "podLabels" : "namespace") + " (the DNS pods), or neither",
            });
        }
        if (dns && dns.namespace === undefined && dns.addresses === undefined) {
            ctx.addIssue({
                code: "custom",
                path: ["kubernetes", "dns"],
                message: "the DNS pods (namespace and podLabels) or the addresses pods query (addresses, e.g. NodeLocal DNSCache's 169.254.20.10/32), with their ports",
            });
        }
    });

interface PathProblem {
    path: (string | number)[];
    message: string;
}

/** The settings block each storage type reads. */
const storageSettingsKey = { s3: "s3", "azure-blob": "azureBlob", "google-cloud-storage": "googleCloudStorage", filesystem: "filesystem" } as const;

/** What a tenant's storage choice must say to be usable and walled; paths are relative to tenants[N].storage. */
export function storageProblems(storage: StorageConfig, cni: string | undefined): PathProblem[] {
    const problems: PathProblem[] = [];
    const wanted = storage.type === "postgresql" ? undefined : storageSettingsKey[storage.type];
    for (const key of Object.values(storageSettingsKey)) {
        if (key !== wanted && storage[key] !== undefined) problems.push({ path: [key], message: `left out: storage.type is "${storage.type}" (it reads ${wanted ? `storage.${wanted}` : "no such block"})` });
    }
    if (wanted !== undefined && storage[wanted] === undefined) {
        const needs = { s3: "bucket and region", azureBlob: "account, container and connectionString (a secret)", googleCloudStorage: "bucket and serviceAccountKey (a secret)", filesystem: "storageClass (ReadWriteMany) and size" }[wanted];
        problems.push({ path: [wanted], message: `the ${storage.type} settings: ${needs}` });
    }
    const objectStore = objectStorageTypes.includes(storage.type);
    if (!objectStore) {
        for (const key of ["rootPath", "clientSideEncryption", "addresses", "anyAddress"] as const) {
            const value = storage[key];
            if (value !== undefined && value !== false) problems.push({ path: [key], message: `left out: only object stores (${objectStorageTypes.join(", ")}) read it, storage.type is "${storage.type}"` });
        }
    }
    const s3 = storage.type === "s3" && !storage.s3?.inCluster ? storage.s3 : undefined;
    if (s3) {
        if ((s3.accessKeyId === undefined) !== (s3.secretAccessKey === undefined)) {
            problems.push({ path: ["s3", s3.accessKeyId === undefined ? "accessKeyId" : "secretAccessKey"], message: "set together with " + (s3.accessKeyId === undefined ? "secretAccessKey" : "accessKeyId") + " (a static key pair), or neither" });
        }
        if (s3.roleArn !== undefined && s3.accessKeyId !== undefined) {
            problems.push({ path: ["s3", "accessKeyId"], message: "left out when s3.roleArn is given: the pod assumes the role (EKS IRSA), no static key" });
        }
        if (s3.endpoint === undefined && s3.accessKeyId !== undefined) {
            problems.push({ path: ["s3", "roleArn"], message: "the IAM role Orthanc assumes through EKS IRSA instead of a static key pair: AWS S3 offers workload identity (static keys are for stores without one)" });
        }
        if (s3.endpoint === undefined && s3.roleArn === undefined) {
            problems.push({ path: ["s3", "roleArn"], message: "the IAM role Orthanc assumes through EKS IRSA (AWS S3 without an endpoint), or s3.endpoint for an S3-compatible store" });
        }
        if (s3.endpoint !== undefined && s3.addressing === "virtual-host" && isIpv4Address(new URL(s3.endpoint).hostname)) {
            problems.push({ path: ["s3", "addressing"], message: '"path" for an endpoint given by address (a virtual-hosted bucket is a host name under the endpoint\'s)' });
        }
        if (s3.endpoint !== undefined && s3.roleArn === undefined && s3.accessKeyId === undefined) {
            problems.push({ path: ["s3", "accessKeyId"], message: "a key pair (accessKeyId and secretAccessKey, as secrets) for the S3-compatible store at s3.endpoint, or s3.roleArn where it honours web identity" });
        }
    }
    // orthanc-object-storage 2.5.3, the image's Azure and Google plugins (Azure/AzureBlobStoragePlugin.cpp: a
    // ConnectionString, or AccountName and AccountKey; Google/GoogleStoragePlugin.cpp: ServiceAccountFile, read by
    // CreateServiceAccountCredentialsFromJsonFilePath): no default credential chain, so no workload identity.
    if (storage.azureBlob?.workloadIdentityClientId !== undefined) {
        problems.push({
            path: ["azureBlob", "workloadIdentityClientId"],
            message: "left out: the image's Azure Blob plugin (orthanc-object-storage 2.5.3) authenticates by connection string only and cannot use Azure Workload Identity; give azureBlob.connectionString (a secret)",
        });
    }
    if (storage.googleCloudStorage?.workloadIdentityServiceAccount !== undefined) {
        problems.push({
            path: ["googleCloudStorage", "workloadIdentityServiceAccount"],
            message: "left out: the image's Google Cloud Storage plugin (orthanc-object-storage 2.5.3) reads a service account key file only and cannot use GKE Workload Identity; give googleCloudStorage.serviceAccountKey (a secret)",
        });
    }
    if (objectStore && !(storage.type === "s3" && storage.s3?.inCluster)) {
        const host = objectStorageHost(storage);
        const isAddress = host !== undefined && isIpv4Address(host);
        if (!isAddress && storage.addresses === undefined && storage.anyAddress === undefined && cni === undefined) {
            problems.push({
                path: ["addresses"],
                message:
                    "a way out to the store, which a NetworkPolicy can only name by address: storage.addresses (CIDR blocks of a store whose addresses are stable), " +
                    'or korthweb:kubernetes.cni "cilium" (egress by name through Cilium\'s FQDN policy), or storage.anyAddress: true (any address on the endpoint\'s port, for Orthanc only)',
            });
        }
        if (storage.anyAddress && storage.addresses !== undefined) {
            problems.push({ path: ["anyAddress"], message: "left out when storage.addresses is given (any address already includes them)" });
        }
    }
    return problems;
}

/** Where the stack's in-cluster S3 server answers (components/platform/objectStore.ts renders it by these names). */
export const inClusterObjectStore = { namespace: "object-store", release: "versitygw", port: 7070, adminPort: 7071 } as const;

/** The in-cluster server's URL: plain HTTP to the Service, which the mesh carries over mutual TLS. */
export function inClusterObjectStoreEndpoint(): string {
    return `http://${inClusterObjectStore.release}.${inClusterObjectStore.namespace}.svc.cluster.local:${inClusterObjectStore.port}`;
}

/** Tenants storing in the stack's own S3 server: it must run, and they take nothing a remote store needs. */
export function inClusterStorageProblems(config: { tenants: { storage: StorageConfig }[]; objectStore?: { region: string } }): PathProblem[] {
    const problems: PathProblem[] = [];
    config.tenants.forEach((tenant, index) => {
        const s3 = tenant.storage.type === "s3" ? tenant.storage.s3 : undefined;
        if (!s3?.inCluster) return;
        const at = (...path: (string | number)[]) => ["tenants", index, "storage", ...path];
        if (!config.objectStore) {
            problems.push({ path: at("s3", "inCluster"), message: "korthweb:objectStore set (the stack's own S3 server), or a remote store: s3.inCluster needs the server to run" });
        } else if (s3.region !== config.objectStore.region) {
            problems.push({ path: at("s3", "region"), message: `"${config.objectStore.region}", the region korthweb:objectStore answers as (s3.region is "${s3.region}")` });
        }
        for (const key of ["endpoint", "roleArn", "accessKeyId", "secretAccessKey", "kmsKeyId"] as const) {
            if (s3[key] !== undefined) problems.push({ path: at("s3", key), message: "left out with s3.inCluster: the program derives the endpoint and generates the key pair" });
        }
        for (const key of ["addresses", "anyAddress"] as const) {
            if (tenant.storage[key] !== undefined) problems.push({ path: at(key), message: "left out with s3.inCluster: Orthanc reaches the server inside the cluster" });
        }
    });
    return problems;
}

/** The host name (or address) Orthanc's object-storage plugin connects to; undefined for the other choices. */
export function objectStorageHost(storage: StorageConfig): string | undefined {
    switch (storage.type) {
        case "s3":
            if (!storage.s3) return undefined;
            if (storage.s3.inCluster) return new URL(inClusterObjectStoreEndpoint()).hostname;
            if (storage.s3.endpoint !== undefined) return new URL(storage.s3.endpoint).hostname;
            return `s3.${storage.s3.region}.amazonaws.com`;
        case "azure-blob":
            return storage.azureBlob ? `${storage.azureBlob.account}.blob.core.windows.net` : undefined;
        case "google-cloud-storage":
            return "storage.googleapis.com";
        default:
            return undefined;
    }
}

const receiverChannels = ["email", "webhook", "slack", "pagerduty", "opsgenie"] as const;

/** What each receiver must say to be usable: a channel, known tenants, an SMTP server for e-mail, a unique name. */
function alertReceiverProblems(alerting: AlertingConfig, tenantNames: string[]): PathProblem[] {
    const problems: PathProblem[] = [];
    const at = (...path: (string | number)[]) => ["observability", "alerting", ...path];
    const names = new Set<string>();
    alerting.receivers.forEach((receiver, index) => {
        if (names.has(receiver.name)) problems.push({ path: at("receivers", index, "name"), message: "a name no other receiver has" });
        names.add(receiver.name);
        if (!receiverChannels.some((channel) => receiver[channel] !== undefined)) {
            problems.push({ path: at("receivers", index), message: `at least one of ${receiverChannels.join(", ")}` });
        }
        receiver.tenants?.forEach((tenant, t) => {
            if (!tenantNames.includes(tenant)) problems.push({ path: at("receivers", index, "tenants", t), message: `a tenant of this stack (${tenantNames.join(", ")})` });
        });
        if (receiver.email && !alerting.smtp) {
            problems.push({ path: at("smtp"), message: `the SMTP server (smarthost, from) that receivers[${index}].email sends through` });
        }
    });
    if (alerting.smtp?.password !== undefined && alerting.smtp.username === undefined) {
        problems.push({ path: at("smtp", "username"), message: "the user the SMTP password belongs to" });
    }
    return problems;
}

/** Engines whose backups the program runs (the external engine's are its provider's). */
export const backedUpEngines: readonly string[] = ["bitnami-ha", "cloudnative-pg"];

/**
 * As whom a tenant's backups reach the object storage: its key pair (kept in a Secret of its namespace), or the IAM
 * role its pods' ServiceAccount token is exchanged for (no key anywhere).
 */
export type BackupIdentity = { kind: "keyPair"; accessKeyId: string; secretAccessKey: string } | { kind: "role"; roleArn: string };

/** A tenant's backup settings with the stack's defaults applied: where its objects go and as whom. */
export interface TenantBackupTarget {
    bucket: string;
    /** Ends with '/': every object of the tenant's backups is under it. */
    prefix: string;
    identity: BackupIdentity;
    kmsKeyId?: string;
}

/** The tenant's identity: its role when it names one, else its key pair (the schema refuses both and neither). */
export function backupIdentity(own: TenantBackupConfig): BackupIdentity {
    if (own.roleArn !== undefined) return { kind: "role", roleArn: own.roleArn };
    if (own.accessKeyId === undefined || own.secretAccessKey === undefined) {
        throw new Error("a tenant's backup settings name neither a role nor a whole key pair (the schema refuses this)");
    }
    return { kind: "keyPair", accessKeyId: own.accessKeyId, secretAccessKey: own.secretAccessKey };
}

/** The tenant's backup target, or undefined when the stack does not back it up (or names no bucket for it). */
export function tenantBackupTarget(backup: { s3: { bucket?: string }; tenants: Record<string, TenantBackupConfig> } | undefined, tenant: string): TenantBackupTarget | undefined {
    const own = backup?.tenants[tenant];
    const bucket = own?.bucket ?? backup?.s3.bucket;
    if (!own || bucket === undefined) return undefined;
    return { bucket, prefix: `${own.prefix ?? tenant}/`, identity: backupIdentity(own), kmsKeyId: own.kmsKeyId };
}

/**
 * `tenantBackupTarget` for a tenant whose database is backed up: the schema refuses a stack where such a tenant has no
 * backup.tenants entry, so a caller that got here without one must not fall back to anything.
 */
export function requireTenantBackupTarget(backup: BackupConfig, tenant: string): TenantBackupTarget {
    const target = tenantBackupTarget(backup, tenant);
    if (!target) {
        throw new Error(`backup.tenants.${tenant}: the tenant has no backup settings of its own`);
    }
    return target;
}

/** Whether the endpoint is AWS's S3 (`*.amazonaws.com`, `*.amazonaws.com.cn`): the only one that honours an IAM role. */
export function isAwsEndpoint(endpoint: string): boolean {
    return /(^|\.)amazonaws\.com(\.cn)?$/.test(new URL(endpoint).hostname);
}

/** The account of an IAM ARN (`arn:<partition>:iam::<account>:...`). */
const arnAccount = (arn: string) => arn.split(":")[4];
const arnPartition = (arn: string) => arn.split(":")[1];

/**
 * A tenant's identity: a whole key pair or a role, not both, not neither. A role is honoured by AWS S3 only (an
 * S3-compatible store on premises, Azure Blob or GCS has no IAM role to assume: README, "Database engines, backups
 * and restore"), is trusted through the cluster's OIDC provider (`backup.irsa`, in the role's account), and needs STS
 * (`sts.<region>.amazonaws.com`, whose addresses change) reached by name or on any address.
 */
function backupIdentityProblems(backup: z.infer<typeof backupSchema>, tenant: string, own: TenantBackupConfig, cni: string | undefined): PathProblem[] {
    const at = (...path: string[]) => ["backup", "tenants", tenant, ...path];
    const keys = (["accessKeyId", "secretAccessKey"] as const).filter((key) => own[key] !== undefined);
    if (own.roleArn !== undefined) {
        if (keys.length > 0) {
            return [{ path: at("roleArn"), message: `either a key pair or a role, not both: leave out backup.tenants.${tenant}.${keys.join(" and ")}, or roleArn` }];
        }
        const problems: PathProblem[] = [];
        if (!isAwsEndpoint(backup.s3.endpoint)) {
            problems.push({ path: at("roleArn"), message: `a key pair instead: an IAM role is honoured by AWS S3 only (*.amazonaws.com), and backup.s3.endpoint is ${backup.s3.endpoint}` });
        }
        const provider = backup.irsa?.oidcProviderArn;
        if (provider === undefined) {
            problems.push({ path: ["backup", "irsa", "oidcProviderArn"], message: `the cluster's IAM OIDC provider, which backup.tenants.${tenant}.roleArn trusts (EKS IAM roles for service accounts)` });
        } else if (arnAccount(provider) !== arnAccount(own.roleArn) || arnPartition(provider) !== arnPartition(own.roleArn)) {
            problems.push({ path: at("roleArn"), message: `a role in the OIDC provider's account (${arnPartition(provider)}:${arnAccount(provider)}): a role trusts a provider of its own account` });
        }
        if (!backup.s3.anyAddress && cni !== "cilium") {
            problems.push({ path: at("roleArn"), message: "STS reached by name (kubernetes.cni \"cilium\") or backup.s3.anyAddress: the role is assumed at sts.<region>.amazonaws.com, whose addresses change" });
        }
        return problems;
    }
    if (keys.length === 0) {
        return [{ path: at(), message: "the tenant's own credentials: accessKeyId and secretAccessKey (secrets), or roleArn" }];
    }
    if (keys.length === 1) {
        const missing = keys[0] === "accessKeyId" ? "secretAccessKey" : "accessKeyId";
        return [{ path: at(missing), message: `the other half of the tenant's key pair (backup.tenants.${tenant}.${keys[0]} is set), as a secret` }];
    }
    return [];
}

/**
 * What keeps one tenant's backups out of another's reach: its own key pair or role, bucket or prefix and KMS key,
 * named per tenant. The messages never print a credential.
 */
function backupProblems(config: { tenants: { name: string; database: { engine: string } }[]; backup?: z.infer<typeof backupSchema>; kubernetes?: { cni?: string } }): PathProblem[] {
    const backup = config.backup;
    if (!backup) return [];
    const problems: PathProblem[] = [];
    const at = (...path: (string | number)[]) => ["backup", ...path];
    for (const key of ["accessKeyId", "secretAccessKey"] as const) {
        if (backup.s3[key] !== undefined) {
            problems.push({
                path: at("s3", key),
                message: `left out: one key pair for every tenant lets each tenant's backups read, overwrite and delete the others'; give each tenant its own as backup.tenants.<tenant>.${key}`,
            });
        }
    }
    const backedUp = config.tenants.filter((tenant) => backedUpEngines.includes(tenant.database.engine));
    for (const name of Object.keys(backup.tenants)) {
        const tenant = config.tenants.find((t) => t.name === name);
        if (!tenant || !backedUpEngines.includes(tenant.database.engine)) {
            problems.push({ path: at("tenants", name), message: `a tenant whose database the program backs up (${backedUp.map((t) => t.name).join(", ") || "none in this stack"})` });
        }
    }
    const keyOwners = new Map<string, string>();
    const roleOwners = new Map<string, string>();
    const kmsOwners = new Map<string, string>();
    const places: { tenant: string; bucket: string; prefix: string }[] = [];
    for (const tenant of backedUp) {
        const own = backup.tenants[tenant.name];
        if (!own) {
            problems.push({
                path: at("tenants", tenant.name),
                message: `the tenant's own backup credentials (accessKeyId and secretAccessKey as secrets, or roleArn; bucket, prefix and kmsKeyId optional): its ${tenant.database.engine} database is backed up, and no tenant may use another's`,
            });
            continue;
        }
        const identityProblems = backupIdentityProblems(backup, tenant.name, own, config.kubernetes?.cni);
        problems.push(...identityProblems);
        if (identityProblems.length > 0) continue;
        const target = tenantBackupTarget(backup, tenant.name);
        if (!target) {
            problems.push({ path: at("tenants", tenant.name, "bucket"), message: "the tenant's bucket, or backup.s3.bucket for every tenant that names none" });
            continue;
        }
        if (target.identity.kind === "keyPair") {
            const keyOwner = keyOwners.get(target.identity.accessKeyId);
            if (keyOwner !== undefined) {
                problems.push({ path: at("tenants", tenant.name, "accessKeyId"), message: `a key pair of the tenant's own (backup.tenants.${keyOwner}.accessKeyId is the same access key id)` });
            }
            keyOwners.set(target.identity.accessKeyId, tenant.name);
        } else {
            const roleOwner = roleOwners.get(target.identity.roleArn);
            if (roleOwner !== undefined) {
                problems.push({ path: at("tenants", tenant.name, "roleArn"), message: `a role of the tenant's own (backup.tenants.${roleOwner}.roleArn is the same role)` });
            }
            roleOwners.set(target.identity.roleArn, tenant.name);
        }
        if (own.kmsKeyId !== undefined) {
            const kmsOwner = kmsOwners.get(own.kmsKeyId);
            if (kmsOwner !== undefined) {
                problems.push({ path: at("tenants", tenant.name, "kmsKeyId"), message: `a KMS key of the tenant's own (backup.tenants.${kmsOwner}.kmsKeyId is the same key)` });
            }
            kmsOwners.set(own.kmsKeyId, tenant.name);
        }
        for (const other of places) {
            if (other.bucket !== target.bucket) continue;
            if (tenant.database.engine === "cloudnative-pg" || config.tenants.find((t) => t.name === other.tenant)?.database.engine === "cloudnative-pg") {
                // Barman checks its bucket with HeadBucket (barman/cloud_providers/aws_s3.py `_check_bucket_existence`),
                // which s3:ListBucket on the whole bucket allows: in a shared bucket it could list the other's key names.
                problems.push({
                    path: at("tenants", tenant.name, "bucket"),
                    message: `a bucket no other tenant uses (${other.tenant} uses ${target.bucket}): a CloudNativePG tenant's Barman needs to list its whole bucket`,
                });
            } else if (other.prefix.startsWith(target.prefix) || target.prefix.startsWith(other.prefix)) {
                problems.push({
                    path: at("tenants", tenant.name, "prefix"),
                    message: `a prefix that neither contains nor lies under ${other.tenant}'s (${other.bucket}/${other.prefix}) in the same bucket`,
                });
            }
        }
        places.push({ tenant: tenant.name, bucket: target.bucket, prefix: target.prefix });
    }
    return problems;
}

/**
 * Where alerts would go nowhere: Alertmanager on without a receiver for some tenant and severity. Checked where the
 * program reads its stack (`stackConfigFromPulumi`), like credentials in plain text, so that the pure parser stays
 * usable for configurations that say nothing about alerting.
 */
export function alertDeliveryProblems(config: StackConfig): PathProblem[] {
    const { enabled, alerting } = config.observability;
    if (!enabled || !alerting.enabled) return [];
    const unrouted: string[] = [];
    for (const tenant of config.tenants) {
        for (const severity of ["critical", "warning"] as const) {
            const routed = alerting.receivers.some(
                (receiver) => (receiver.tenants ?? [tenant.name]).includes(tenant.name) && (receiver.severities ?? [severity]).includes(severity),
            );
            if (!routed) unrouted.push(`${tenant.name}/${severity}`);
        }
    }
    if (unrouted.length === 0) return [];
    return [
        {
            path: ["observability", "alerting", "receivers"],
            message:
                alerting.receivers.length === 0
                    ? "at least one receiver (email, webhook, slack, pagerduty or opsgenie), or observability.alerting.enabled: false to run without Alertmanager (alerts then reach nobody)"
                    : `a receiver for every tenant and severity; none gets ${unrouted.join(", ")}`,
        },
    ];
}

/**
 * Tenants whose gatekeepers would accept each other's tokens: the same issuer and an audience in common (a tenant's
 * audiences are its `audiences`, else its client id). A token of one tenant must be refused by every other.
 */
function sharedAudienceProblems(tenants: { name: string; identity?: IdentityConfig }[]): PathProblem[] {
    const problems: PathProblem[] = [];
    const seen: { tenant: string; issuer: string; audiences: string[] }[] = [];
    tenants.forEach((tenant, index) => {
        const oidc = tenant.identity?.oidc;
        if (!oidc) return;
        const audiences = oidc.audiences.length > 0 ? oidc.audiences : [oidc.clientId];
        for (const other of seen) {
            const shared = audiences.filter((audience) => other.audiences.includes(audience));
            if (other.issuer === oidc.issuer && shared.length > 0) {
                problems.push({
                    path: ["tenants", index, "identity", "oidc", oidc.audiences.length > 0 ? "audiences" : "clientId"],
                    message: `a client id and audiences of the tenant's own: ${other.tenant} has the same issuer and accepts ${shared.join(", ")}, so each would accept the other's tokens`,
                });
            }
        }
        seen.push({ tenant: tenant.name, issuer: oidc.issuer, audiences });
    });
    return problems;
}

/**
 * Tenants that say nothing about sign-in. Checked where the program reads its stack (`stackConfigFromPulumi`), like
 * alert delivery, so that the pure parser stays usable for configurations that are not about identity: a deployed
 * tenant either signs its users in or says `identity: {disabled: true}`.
 */
export function missingIdentityProblems(config: StackConfig): PathProblem[] {
    return config.tenants.flatMap((tenant, index) =>
        tenant.identity === undefined
            ? [
                  {
                      path: ["tenants", index, "identity"],
                      message:
                          "who signs in: oidc (the site's identity provider: issuer, clientId, clientSecret as a secret), keycloak: {} (an in-cluster Keycloak, for local and dev), " +
                          "or disabled: true (everyone shares the generated admin password through the gateway; README, \"Who signs in\")",
                  },
              ]
            : [],
    );
}

/** Bytes of a memory quantity in Mi or Gi (the only units `memoryPattern` admits). */
function quantityBytes(quantity: string): number {
    const units: Record<string, number> = { Mi: 2 ** 20, Gi: 2 ** 30 };
    const match = /^([0-9]+)(Mi|Gi)$/.exec(quantity);
    return match ? Number(match[1]) * units[match[2]] : Number.NaN;
}

export type StackConfig = z.infer<typeof stackConfigSchema>;
export type TenantConfig = StackConfig["tenants"][number];
/** How commits wait for standbys (`postgres.replication`). */
export type ReplicationMode = TenantConfig["postgres"]["replication"];
export type IngressConfig = StackConfig["ingress"];
export type PkiConfig = StackConfig["pki"];
export type KubernetesConfig = StackConfig["kubernetes"];
