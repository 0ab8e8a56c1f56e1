/**
 * The stack's own S3-compatible server in the cluster (`korthweb:objectStore`, the local stack), so that a laptop
 * stores files through the same object-storage plugin and S3 path as a cloud stack: Versity's S3 gateway (versitygw,
 * Apache-2.0, maintained; MinIO's community images are no longer published) from its own chart, on one volume.
 *
 * Read at the pinned versions (versity/versitygw v1.7.0; tests/upstream/versitygw.ts models what the chart renders):
 * - chart/ (0.3.4): one Deployment, Service, ServiceAccount and PVC named after the release; `auth.existingSecret`
 *   gives the root key pair from a Secret (keys rootAccessKeyId, rootSecretAccessKey); `iam.enabled` with type
 *   internal keeps accounts in /mnt/iam on the volume; `admin.enabled` serves the admin API on its own port;
 *   securityContext defaults to non-root, read-only root filesystem, no capabilities, and the values below keep that.
 * - cmd/versitygw/admin.go: `versitygw admin create-user` (role user) and `create-bucket --owner`, signed with the
 *   root key; a user account reaches the buckets it owns, not another tenant's.
 *
 * Each tenant gets a generated key pair (Pulumi secrets) and a bucket it owns, made by a Job at every change of the
 * tenant list; Orthanc reads its key from the tenant's storage Secret (components/storage/tenantStorage.ts). The
 * namespace is in the mesh: only the tenants' Orthanc pods reach the S3 port and only the setup Job the admin port,
 * by NetworkPolicy and by Istio identity.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { clusterDns, DnsConfig, inClusterObjectStore, StackConfig } from "../config/schema";
import { pinnedRelease } from "../k8s/helm";
import { denyByDefault, strictMtlsSpec } from "../k8s/walls";
import { namespace as createNamespace } from "../k8s/namespace";
import { inClusterObjectStorePodLabels } from "../data/storage/storageWalls";
import { orthancSelector, orthancServiceAccount, tenantNames } from "../naming/tenantNames";
import { NamedSpec, namespaceFloor, namespaceNamed, principal, tcp } from "../k8s/walls";
import { charts, imageReference, versitygwImage } from "../versions";

/** Object names in the object store's namespace. */
export const objectStoreNames = {
    rootSecret: "versitygw-root",
    tenantSecret: "versitygw-tenants",
    setupJob: "versitygw-buckets",
    setupServiceAccount: "versitygw-buckets",
} as const;

/** The chart's container user (values.yaml securityContext runAsUser/runAsGroup 1000). */
const gatewayUid = 1000;

const hardenedContainer = {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ["ALL"] },
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    runAsUser: gatewayUid,
    runAsGroup: gatewayUid,
    seccompProfile: { type: "RuntimeDefault" },
};

/** A tenant that stores in the server: its bucket. */
export interface ObjectStoreTenant {
    name: string;
    bucket: string;
}

export interface ObjectStoreSettings {
    size: string;
    storageClass?: string;
    region: string;
}

/** The tenants with `storage.s3.inCluster`, and their buckets. */
export function objectStoreTenants(config: Pick<StackConfig, "tenants">): ObjectStoreTenant[] {
    return config.tenants.flatMap((tenant) => (tenant.storage.type === "s3" && tenant.storage.s3?.inCluster ? [{ name: tenant.name, bucket: tenant.storage.s3.bucket }] : []));
}

const imageRepository = `${versitygwImage.registry}/${versitygwImage.repository}`;

/** The chart's values: pinned image, root key from the program's Secret, accounts on the volume, hardened, bounded. */
export function objectStoreValues(settings: ObjectStoreSettings): Record<string, unknown> {
    return {
        fullnameOverride: inClusterObjectStore.release,
        // The chart writes `repository:tag`: the tag carries the locked digest (`v1.7.0@sha256:...`) once there is one.
        image: { repository: imageRepository, tag: imageReference(versitygwImage).slice(imageRepository.length + 1) },
        auth: { existingSecret: objectStoreNames.rootSecret },
        // Object metadata in files beside the data, not in extended attributes: the posix backend otherwise refuses to
        // start where the volume has no user xattrs (cmd/versitygw/posix.go: XattrMeta.Test), which a laptop's
        // hostPath-backed storage class need not offer.
        gateway: { port: inClusterObjectStore.port, region: settings.region, backend: { type: "posix", args: "/mnt/data", sidecarDir: "/mnt/metadata" } },
        iam: { enabled: true, type: "internal" },
        admin: { enabled: true, port: inClusterObjectStore.adminPort },
        persistence: { enabled: true, create: true, size: settings.size, accessMode: "ReadWriteOnce", ...(settings.storageClass ? { storageClassName: settings.storageClass } : {}) },
        // One writer on a ReadWriteOnce volume: the old pod goes before the new one mounts it.
        strategy: { type: "Recreate" },
        podSecurityContext: { fsGroup: gatewayUid, runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
        securityContext: hardenedContainer,
        resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "512Mi" } },
        // The program's own policies below; the chart's would admit whole namespaces.
        networkPolicy: { enabled: false },
        serviceAccount: { create: true },
    };
}

/**
 * The setup Job's script: an account per tenant (created, or its secret updated), and its bucket owned by it (created
 * unless the listing already shows it), then the sidecar told to quit so that the Job completes.
 */
export function bucketSetupScript(tenants: ObjectStoreTenant[]): string {
    const admin = `versitygw admin --endpoint-url http://${inClusterObjectStore.release}:${inClusterObjectStore.adminPort}`;
    const lines = [
        "set -eu",
        `trap 'wget -q -O /dev/null --post-data "" http://localhost:15020/quitquitquit || true' EXIT`,
        "tries=0",
        `until ${admin} list-users > /dev/null; do`,
        "    tries=$((tries + 1))",
        '    if [ "$tries" -ge 60 ]; then echo "setup: the admin API does not answer" >&2; exit 1; fi',
        "    sleep 2",
        "done",
    ];
    for (const tenant of tenants) {
        const variables = tenantKeyVariables(tenant.name);
        // Unquoted expansions (the generated keys are letters and digits only), so that every credential on the
        // command line is visibly a reference to the environment.
        const access = `$${variables.accessKeyId}`;
        const secret = `$${variables.secretAccessKey}`;
        lines.push(
            `${admin} create-user --access ${access} --secret ${secret} --role user || ${admin} update-user --access ${access} --secret ${secret} --role user`,
            `if ! ${admin} list-buckets | grep -qw '${tenant.bucket}'; then ${admin} create-bucket --bucket '${tenant.bucket}' --owner ${access}; fi`,
            `echo "setup: ${tenant.name} owns ${tenant.bucket}"`,
        );
    }
    return lines.join("\n");
}

/** The environment names the script reads a tenant's key pair from. */
export function tenantKeyVariables(tenant: string): { accessKeyId: string; secretAccessKey: string } {
    const variable = tenant.toUpperCase().replace(/-/g, "_");
    return { accessKeyId: `${variable}_ACCESS_KEY_ID`, secretAccessKey: `${variable}_SECRET_ACCESS_KEY` };
}

export function bucketSetupJobSpec(tenants: ObjectStoreTenant[]): k8s.types.input.batch.v1.JobSpec {
    const secretEnv = (name: string, secret: string, key: string) => ({ name, valueFrom: { secretKeyRef: { name: secret, key } } });
    return {
        backoffLimit: 4,
        activeDeadlineSeconds: 600,
        template: {
            metadata: {
                labels: { app: objectStoreNames.setupJob },
                annotations: { "proxy.istio.io/config": JSON.stringify({ holdApplicationUntilProxyStarts: true }) },
            },
            spec: {
                serviceAccountName: objectStoreNames.setupServiceAccount,
                automountServiceAccountToken: false,
                enableServiceLinks: false,
                restartPolicy: "Never",
                securityContext: { runAsNonRoot: true, runAsUser: gatewayUid, runAsGroup: gatewayUid, seccompProfile: { type: "RuntimeDefault" } },
                containers: [
                    {
                        name: "buckets",
                        image: imageReference(versitygwImage),
                        command: ["/bin/sh", "-c", bucketSetupScript(tenants)],
                        env: [
                            secretEnv("ADMIN_ACCESS_KEY_ID", objectStoreNames.rootSecret, "rootAccessKeyId"),
                            secretEnv("ADMIN_SECRET_ACCESS_KEY", objectStoreNames.rootSecret, "rootSecretAccessKey"),
                            ...tenants.flatMap((tenant) => {
                                const names = tenantKeyVariables(tenant.name);
                                return [secretEnv(names.accessKeyId, objectStoreNames.tenantSecret, names.accessKeyId), secretEnv(names.secretAccessKey, objectStoreNames.tenantSecret, names.secretAccessKey)];
                            }),
                        ],
                        resources: { requests: { cpu: "10m", memory: "32Mi" }, limits: { memory: "128Mi" } },
                        securityContext: hardenedContainer,
                    },
                ],
            },
        },
    };
}

/**
 * The walls of the server's namespace: nothing in or out but DNS and istiod; the tenants' Orthanc pods on the S3 port,
 * the setup Job on the admin port; the same twice, by NetworkPolicy and by Istio identity (an ALLOW policy per port).
 */
export function objectStoreWalls(
    tenants: ObjectStoreTenant[],
    istioNamespace: string,
    dns: DnsConfig = clusterDns({}),
): { network: NamedSpec<k8s.types.input.networking.v1.NetworkPolicySpec>[]; authorization: NamedSpec[] } {
    const ns = inClusterObjectStore.namespace;
    const orthancPeers = tenants.map((tenant) => ({ ...namespaceNamed(tenantNames(tenant.name, "").namespace), podSelector: { matchLabels: orthancSelector(tenant.name) } }));
    const setupPods = { podSelector: { matchLabels: { app: objectStoreNames.setupJob } } };
    return {
        network: [
            ...namespaceFloor(ns, istioNamespace, dns),
            {
                namespace: ns,
                name: "allow-s3-clients",
                spec: {
                    podSelector: { matchLabels: { ...inClusterObjectStorePodLabels } },
                    policyTypes: ["Ingress"],
                    ingress: [
                        ...(orthancPeers.length > 0 ? [{ from: orthancPeers, ports: [tcp(inClusterObjectStore.port)] }] : []),
                        { from: [setupPods], ports: [tcp(inClusterObjectStore.adminPort)] },
                    ],
                },
            },
            {
                namespace: ns,
                name: "allow-setup-to-admin",
                spec: {
                    podSelector: setupPods.podSelector,
                    policyTypes: ["Egress"],
                    egress: [{ to: [{ podSelector: { matchLabels: { ...inClusterObjectStorePodLabels } } }], ports: [tcp(inClusterObjectStore.adminPort)] }],
                },
            },
        ],
        authorization: [
            denyByDefault(ns),
            {
                namespace: ns,
                name: "allow-orthanc-to-s3",
                spec: {
                    selector: { matchLabels: { ...inClusterObjectStorePodLabels } },
                    action: "ALLOW",
                    rules: [
                        ...(tenants.length > 0
                            ? [
                                  {
                                      from: [{ source: { principals: tenants.map((tenant) => principal(tenantNames(tenant.name, "").namespace, orthancServiceAccount)) } }],
                                      to: [{ operation: { ports: [String(inClusterObjectStore.port)] } }],
                                  },
                              ]
                            : []),
                        {
                            from: [{ source: { principals: [principal(ns, objectStoreNames.setupServiceAccount)] } }],
                            to: [{ operation: { ports: [String(inClusterObjectStore.adminPort)] } }],
                        },
                    ],
                },
            },
        ],
    };
}

export interface ObjectStoreArgs {
    settings: ObjectStoreSettings;
    tenants: ObjectStoreTenant[];
    istioNamespace: string;
    dns?: DnsConfig;
    dependsOn: pulumi.Input<pulumi.Resource>[];
    /** Istio's CRDs: the policies below are their objects. */
    istioCrdsReady: pulumi.Input<pulumi.Resource>[];
}

/** A tenant's generated key pair (Pulumi secrets). */
export interface ObjectStoreKey {
    accessKeyId: pulumi.Output<string>;
    secretAccessKey: pulumi.Output<string>;
}

export class ObjectStore extends pulumi.ComponentResource {
    /** Per tenant storing here: its key pair, for its storage Secret. */
    readonly tenantKeys: Record<string, ObjectStoreKey> = {};
    /** What a tenant's Orthanc waits for: the buckets exist. */
    readonly ready: pulumi.Resource[] = [];

    constructor(name: string, args: ObjectStoreArgs, opts?: pulumi.ComponentResourceOptions) {
        super("korthweb:platform:ObjectStore", name, {}, opts);
        const ns = createNamespace(`${name}-namespace`, { name: inClusterObjectStore.namespace, enforce: "restricted", istioInjection: true }, { parent: this, dependsOn: args.dependsOn });
        const inNamespace = { parent: this, dependsOn: [ns] };
        const generated = (resource: string, length: number) =>
            pulumi.secret(new random.RandomPassword(resource, { length, special: false, upper: true, lower: false, numeric: true }, { parent: this }).result);
        const generatedSecret = (resource: string) => pulumi.secret(new random.RandomPassword(resource, { length: 40, special: false }, { parent: this }).result);
        const root = new k8s.core.v1.Secret(
            `${name}-root`,
            {
                metadata: { name: objectStoreNames.rootSecret, namespace: inClusterObjectStore.namespace },
                stringData: { rootAccessKeyId: generated(`${name}-root-access-key-id`, 20), rootSecretAccessKey: generatedSecret(`${name}-root-secret-access-key`) },
            },
            inNamespace,
        );
        const tenantData: Record<string, pulumi.Output<string>> = {};
        for (const tenant of args.tenants) {
            const key = { accessKeyId: generated(`${name}-${tenant.name}-access-key-id`, 20), secretAccessKey: generatedSecret(`${name}-${tenant.name}-secret-access-key`) };
            this.tenantKeys[tenant.name] = key;
            const variables = tenantKeyVariables(tenant.name);
            tenantData[variables.accessKeyId] = key.accessKeyId;
            tenantData[variables.secretAccessKey] = key.secretAccessKey;
        }
        const tenantSecret = new k8s.core.v1.Secret(`${name}-tenants`, { metadata: { name: objectStoreNames.tenantSecret, namespace: inClusterObjectStore.namespace }, stringData: tenantData }, inNamespace);
        const walls = objectStoreWalls(args.tenants, args.istioNamespace, args.dns);
        const istioOpts = { parent: this, dependsOn: [ns, ...args.istioCrdsReady] };
        const wallResources = [
            new k8s.apiextensions.CustomResource(
                `${name}-strict-mtls`,
                { apiVersion: "security.istio.io/v1", kind: "PeerAuthentication", metadata: { name: "default", namespace: inClusterObjectStore.namespace }, spec: strictMtlsSpec() },
                istioOpts,
            ),
            ...walls.network.map((policy) => new k8s.networking.v1.NetworkPolicy(`${name}-np-${policy.name}`, { metadata: { name: policy.name, namespace: policy.namespace }, spec: policy.spec }, inNamespace)),
            ...walls.authorization.map(
                (policy) =>
                    new k8s.apiextensions.CustomResource(
                        `${name}-authz-${policy.name}`,
                        { apiVersion: "security.istio.io/v1", kind: "AuthorizationPolicy", metadata: { name: policy.name, namespace: policy.namespace }, spec: policy.spec },
                        istioOpts,
                    ),
            ),
        ];
        const release = pinnedRelease(
            `${name}-versitygw`,
            { pin: charts.versitygw, releaseName: inClusterObjectStore.release, namespace: inClusterObjectStore.namespace, values: objectStoreValues(args.settings) },
            { parent: this, dependsOn: [ns, root, ...wallResources] },
        );
        const setupAccount = new k8s.core.v1.ServiceAccount(
            `${name}-setup-account`,
            { metadata: { name: objectStoreNames.setupServiceAccount, namespace: inClusterObjectStore.namespace }, automountServiceAccountToken: false },
            inNamespace,
        );
        this.ready.push(
            new k8s.batch.v1.Job(
                `${name}-buckets`,
                { metadata: { name: objectStoreNames.setupJob, namespace: inClusterObjectStore.namespace }, spec: bucketSetupJobSpec(args.tenants) },
                // A changed tenant list is a changed script: the Job is replaced and runs again (it is idempotent).
                { parent: this, dependsOn: [release, tenantSecret, setupAccount], deleteBeforeReplace: true },
            ),
        );
        this.registerOutputs({});
    }
}
