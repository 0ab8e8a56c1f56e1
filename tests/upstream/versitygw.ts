/**
 * What the versitygw chart renders for given values: a model of versity/versitygw at tag v1.7.0 (chart 0.3.4), files
 * chart/templates/_helpers.tpl (`versitygw.fullname`, `versitygw.selectorLabels`, `versitygw.credentialsSecretName`,
 * `versitygw.pvcName`), chart/templates/deployment.yaml, service.yaml, secret.yaml and pvc.yaml, with the defaults of
 * chart/values.yaml. Only what korthweb relies on is modelled: names, labels, the pod's and container's security
 * context, where the root key comes from, the variables that switch IAM and the admin API on, the ports, the volume.
 * Modelled, not rendered: no Helm binary here.
 */

export interface VersitygwRendering {
    fullname: string;
    serviceName: string;
    serviceAccountName: string;
    selectorLabels: Record<string, string>;
    /** The Secret the chart itself creates (none with auth.existingSecret). */
    chartSecret?: string;
    /** Where ROOT_ACCESS_KEY_ID / ROOT_SECRET_ACCESS_KEY come from. */
    rootKeyFrom: { secret: string; keys: [string, string] };
    env: Record<string, string>;
    servicePorts: { name: string; port: number }[];
    image: string;
    podSecurityContext: Record<string, unknown>;
    containerSecurityContext: Record<string, unknown>;
    resources: Record<string, unknown>;
    automountServiceAccountToken: boolean;
    /** The data volume: a claim's name, or an emptyDir. */
    volume: { claim?: string; emptyDir?: true };
    claim?: { accessMode: string; size: string; storageClassName?: string };
    strategy?: Record<string, unknown>;
    /** What the chart's own NetworkPolicy template would render: nothing when networkPolicy.enabled is false. */
    networkPolicy: boolean;
}

const chartName = "versitygw";

/** values.yaml defaults at v1.7.0, for the keys the model reads. */
const defaults = {
    image: { repository: "ghcr.io/versity/versitygw", tag: "latest" },
    podSecurityContext: { fsGroup: 1000 },
    securityContext: { capabilities: { drop: ["ALL"] }, readOnlyRootFilesystem: true, runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000 },
    gateway: { port: 7070, region: "us-east-1", backend: { type: "posix", args: "/mnt/data" }, quiet: false },
    admin: { enabled: false, port: 7071 },
    iam: { enabled: false, type: "internal" },
    persistence: { enabled: true, create: true, claimName: "", size: "10Gi", storageClassName: "", accessMode: "ReadWriteOnce" },
    resources: {},
    networkPolicy: { enabled: false },
    serviceAccount: { create: true, name: "" },
    auth: { existingSecret: "", accessKey: "", secretKey: "" },
};

type Values = Record<string, any>;

function merged(values: Values): Values {
    const out: Values = {};
    for (const [key, value] of Object.entries(defaults)) {
        const given = values[key];
        out[key] = given && typeof given === "object" && !Array.isArray(given) && typeof value === "object" ? { ...value, ...given } : given ?? value;
    }
    for (const [key, value] of Object.entries(values)) if (!(key in out)) out[key] = value;
    return out;
}

export function renderVersitygw(releaseName: string, values: Values): VersitygwRendering {
    const v = merged(values);
    // _helpers.tpl versitygw.fullname: fullnameOverride, else the release name when it contains the chart's name.
    const fullname = v.fullnameOverride || (releaseName.includes(v.nameOverride || chartName) ? releaseName : `${releaseName}-${v.nameOverride || chartName}`);
    const secret = v.auth.existingSecret || `${fullname}-credentials`;
    const env: Record<string, string> = {
        VGW_BACKEND: v.gateway.backend.type,
        VGW_BACKEND_ARGS: v.gateway.backend.args,
        VGW_PORT: `:${v.gateway.port}`,
        VGW_REGION: v.gateway.region,
        VGW_HEALTH: "/_/health",
    };
    if (v.gateway.quiet) env.VGW_QUIET = "true";
    // deployment.yaml: VGW_META_SIDECAR and a mount of the volume's `metadata` subPath, posix backend only.
    if (v.gateway.backend.sidecarDir) {
        if (v.gateway.backend.type !== "posix") throw new Error("gateway.backend.sidecarDir is only supported with the posix backend");
        env.VGW_META_SIDECAR = v.gateway.backend.sidecarDir;
    }
    if (v.admin.enabled) env.VGW_ADMIN_PORT = `:${v.admin.port}`;
    if (v.iam.enabled && v.iam.type === "internal") env.VGW_IAM_DIR = "/mnt/iam";
    // _helpers.tpl versitygw.pvcName: the claim given, else <fullname>-data (read at the tag).
    const claimName = v.persistence.claimName || `${fullname}-data`;
    return {
        fullname,
        serviceName: fullname,
        serviceAccountName: v.serviceAccount.create ? v.serviceAccount.name || fullname : v.serviceAccount.name || "default",
        selectorLabels: { "app.kubernetes.io/name": v.nameOverride || chartName, "app.kubernetes.io/instance": releaseName },
        chartSecret: v.auth.existingSecret ? undefined : secret,
        rootKeyFrom: { secret, keys: ["rootAccessKeyId", "rootSecretAccessKey"] },
        env,
        servicePorts: [{ name: "s3-api", port: v.gateway.port }, ...(v.admin.enabled ? [{ name: "admin", port: v.admin.port }] : [])],
        image: `${v.image.repository}:${v.image.tag}`,
        podSecurityContext: v.podSecurityContext,
        containerSecurityContext: v.securityContext,
        resources: v.resources,
        // deployment.yaml sets it false whatever the values say.
        automountServiceAccountToken: false,
        volume: v.persistence.enabled ? { claim: claimName } : { emptyDir: true },
        claim:
            v.persistence.enabled && v.persistence.create
                ? { accessMode: v.persistence.accessMode, size: v.persistence.size, ...(v.persistence.storageClassName ? { storageClassName: v.persistence.storageClassName } : {}) }
                : undefined,
        strategy: v.strategy,
        networkPolicy: v.networkPolicy.enabled === true,
    };
}
