/**
 * Orthanc's Kubernetes workload for a tenant: Deployment, Service, autoscaler and disruption budget, as pure builders.
 */
import type * as k8s from "@pulumi/kubernetes";
import { TenantConfig } from "../config/schema";
import { imageReference, ImagePin, orthancImage } from "../versions";
import type { OrthancPodAdditions } from "../data/endpoint";
import { mergeOrthancConfig, storageOrthancConfig } from "../data/storage/orthancStorage";
import { orthancPorts } from "./ingress";
import { orthancPodLabels, orthancSelector, orthancServiceAccount, tenantNames } from "../naming/tenantNames";
import { OrthancConfig, orthancConfig } from "./orthancConfig";
import { orthancDatabase, orthancIndexConnections, pgpoolHost, postgresService } from "../data/engines/bitnamiHaValues";
import { gatekeeperOrthancUser } from "../identity/names";

/**
 * How the orthancteam/orthanc image works, as far as the pod spec depends on it. Its entrypoint merges every
 * `/run/secrets/*.json` (then `ORTHANC__*` variables, which win) into `/tmp/orthanc.json` and starts Orthanc on that file.
 */
export const orthancImageLayout = {
    /** The configuration Secret is mounted here, as a directory. */
    secretsDirectory: "/run/secrets",
    /** The entrypoint links the plugins it enables here when the directory exists, instead of into the image. */
    pluginLinkDirectory: "/run/orthanc/plugins",
    /** The image's unprivileged user, owner of the paths the entrypoint writes. */
    uid: 999,
    /** Probe script of the image: asks the REST API with the credentials of the merged configuration file. */
    probeScript: "/probes/test-aliveness.py",
    /**
     * glibc's gethostid() reads its first four bytes, and DCMTK puts that number in every UID Orthanc generates
     * (dcmdata/libsrc/dcuid.cc, dcmGenerateUniqueIdentifier: root.hostid.pid.time.counter). The image ships the text
     * `not-generated` (orthanc-builder 26.8.1 docker/orthanc/Dockerfile), the same in every replica.
     */
    hostIdFile: "/etc/hostid",
} as const;

const hostIdVolumePath = "/run/hostid";

/** What Pod Security's `restricted` level asks of every container, and a read-only root. */
export const restrictedContainerSecurity: k8s.types.input.core.v1.SecurityContext = {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
};

/**
 * Writes four random bytes, the pod's own host id, into the `hostid` volume; Orthanc's container mounts that file over
 * /etc/hostid read-only. The entrypoint leaves a host id other than `not-generated` alone (docker-entrypoint.sh).
 */
export function hostIdInitContainer(image: ImagePin = orthancImage): k8s.types.input.core.v1.Container {
    return {
        name: "hostid",
        image: imageReference(image),
        command: ["/bin/sh", "-c", `head -c 4 /dev/urandom > ${hostIdVolumePath}/hostid`],
        resources: { requests: { cpu: "10m", memory: "16Mi" }, limits: { memory: "16Mi" } },
        securityContext: restrictedContainerSecurity,
        volumeMounts: [{ name: "hostid", mountPath: hostIdVolumePath }],
    };
}

export const orthancConfigFile = "orthanc.json";
/** The image's variables for DICOMweb and the two diagnostic viewers, Stone Web Viewer and OHIF. */
export const orthancViewerPlugins = ["DICOM_WEB_PLUGIN_ENABLED", "STONE_WEB_VIEWER_PLUGIN_ENABLED", "OHIF_PLUGIN_ENABLED"] as const;
export const orthancConfigSecretName = "orthanc-config";
/** Writable scratch space (emptyDir): the root filesystem is read-only. Orthanc keeps no state here. */
export const orthancWorkDirectory = "/var/lib/orthanc/work";

/** The only HTTP user of a tenant's Orthanc. */
export const orthancAdminUser = "admin";

/**
 * The configuration a tenant's pods get: `orthancConfig` filled in with the tenant's settings, the in-cluster
 * database address and the image's paths. The tenant component and the integration suite both call this.
 */
/** Where Orthanc's database is, when it is not the Bitnami engine's Pgpool in the tenant namespace. */
export interface OrthancDatabaseTarget {
    host: string;
    port: number;
    database: string;
    user: string;
    /** Settings merged over the rendered `PostgreSQL` section (e.g. a verify-full connection URI). */
    postgresql?: Record<string, unknown>;
}

export function tenantOrthancConfig(
    tenant: TenantConfig,
    domain: string,
    credentials: { adminPassword: string; databasePassword: string; gatekeeperPassword?: string },
    target?: OrthancDatabaseTarget,
): OrthancConfig {
    const names = tenantNames(tenant.name, domain);
    const config = orthancConfig({
        displayName: tenant.displayName,
        aeTitle: tenant.orthanc.aeTitle,
        httpPort: orthancPorts.http,
        dicomPort: orthancPorts.dicom,
        adminUser: orthancAdminUser,
        adminPassword: credentials.adminPassword,
        otherUsers: credentials.gatekeeperPassword !== undefined ? { [gatekeeperOrthancUser]: credentials.gatekeeperPassword } : undefined,
        database: {
            host: target?.host ?? pgpoolHost(names.namespace),
            port: target?.port ?? postgresService.port,
            name: target?.database ?? orthancDatabase.name,
            user: target?.user ?? orthancDatabase.user,
            password: credentials.databasePassword,
            connections: orthancIndexConnections,
        },
        workDirectory: orthancWorkDirectory,
        modalities: tenant.modalities.map(({ name, aeTitle, host, port }) => ({ name, aeTitle, host, port })),
        configDirectory: orthancImageLayout.secretsDirectory,
    });
    const withTarget = target?.postgresql ? { ...config, PostgreSQL: { ...(config.PostgreSQL as Record<string, unknown>), ...target.postgresql } } : config;
    // Where the files go (components/data/storage/orthancStorage.ts): PostgreSQL keeps the index only unless they go there.
    return mergeOrthancConfig(withTarget, storageOrthancConfig(tenant.storage, tenant));
}

export function orthancDeploymentSpec(
    tenantName: string,
    tenant: TenantConfig["orthanc"],
    configChecksum: string,
    additions: OrthancPodAdditions = { volumes: [], volumeMounts: [] },
): k8s.types.input.apps.v1.DeploymentSpec {
    const labels = orthancPodLabels(tenantName);
    const image = additions.image ?? orthancImage;
    return {
        // One pod starts a new version alone, so that one process migrates the database schema; the autoscaler,
        // created once that pod is ready, then brings the count to minReplicas and owns it (the Deployment ignores
        // later changes to it). See orthancDeploymentName.
        replicas: 1,
        selector: { matchLabels: orthancSelector(tenantName) },
        strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
        template: {
            metadata: {
                labels: { ...labels, version: image.tag },
                // A new configuration (e.g. a rotated password) rolls the pods.
                annotations: { "korthweb.io/config-checksum": configChecksum },
            },
            spec: {
                serviceAccountName: orthancServiceAccount,
                automountServiceAccountToken: false,
                // Kubernetes would inject <SERVICE>_PORT-style variables for every Service of the namespace; the image
                // takes some of those names (e.g. from a Service called "dicom" or "http") for deprecated settings
                // and refuses to start on them.
                enableServiceLinks: false,
                securityContext: {
                    runAsNonRoot: true,
                    runAsUser: orthancImageLayout.uid,
                    runAsGroup: orthancImageLayout.uid,
                    fsGroup: orthancImageLayout.uid,
                    seccompProfile: { type: "RuntimeDefault" },
                },
                topologySpreadConstraints: ["kubernetes.io/hostname", "topology.kubernetes.io/zone"].map((topologyKey) => ({
                    maxSkew: 1,
                    topologyKey,
                    // Prefer spreading, but still schedule on a one-node development cluster.
                    whenUnsatisfiable: "ScheduleAnyway",
                    labelSelector: { matchLabels: orthancSelector(tenantName) },
                })),
                affinity: {
                    podAntiAffinity: {
                        preferredDuringSchedulingIgnoredDuringExecution: [
                            {
                                weight: 100,
                                podAffinityTerm: { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: orthancSelector(tenantName) } },
                            },
                        ],
                    },
                },
                terminationGracePeriodSeconds: 60,
                initContainers: [hostIdInitContainer(image)],
                containers: [
                    {
                        name: "orthanc",
                        image: imageReference(image),
                        ports: [
                            { name: "http", containerPort: orthancPorts.http, protocol: "TCP" },
                            { name: "dicom", containerPort: orthancPorts.dicom, protocol: "TCP" },
                        ],
                        env: [
                            // Each replica writes its own rows in the shared database; the pod name is unique.
                            { name: "ORTHANC__DATABASE_SERVER_IDENTIFIER", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
                            // DCMTK otherwise waits on Nagle's algorithm per PDU: ~15 instances/s instead of hundreds.
                            { name: "TCP_NODELAY", value: "1" },
                            // The pod's own /etc/hostid is mounted read-only (hostIdInitContainer): the entrypoint must
                            // not try to write one.
                            { name: "GENERATE_HOST_ID_IF_MISSING", value: "false" },
                            // The image enables these viewers only by their variables (a section is not enough).
                            ...orthancViewerPlugins.map((name) => ({ name, value: "true" })),
                            ...(additions.env ?? []),
                        ],
                        resources: {
                            requests: { cpu: tenant.cpuRequest, memory: tenant.memoryRequest },
                            limits: { memory: tenant.memoryLimit },
                        },
                        securityContext: restrictedContainerSecurity,
                        volumeMounts: [
                            { name: "config", mountPath: orthancImageLayout.secretsDirectory, readOnly: true },
                            { name: "hostid", mountPath: orthancImageLayout.hostIdFile, subPath: "hostid", readOnly: true },
                            { name: "work", mountPath: orthancWorkDirectory },
                            { name: "plugins", mountPath: orthancImageLayout.pluginLinkDirectory },
                            // The merged configuration lands in /tmp.
                            { name: "tmp", mountPath: "/tmp" },
                            ...additions.volumeMounts,
                        ],
                        // First start migrates the database schema, which can take minutes on a large index.
                        startupProbe: { tcpSocket: { port: "http" }, periodSeconds: 5, failureThreshold: 60 },
                        // Liveness does not depend on the database: an outage of PostgreSQL must not restart every pod.
                        livenessProbe: { tcpSocket: { port: "http" }, periodSeconds: 20, timeoutSeconds: 5, failureThreshold: 3 },
                        // Ready when Orthanc answers an authenticated REST request. The image's script takes the
                        // credentials from the configuration file, so none are in the pod spec.
                        readinessProbe: {
                            exec: { command: [orthancImageLayout.probeScript] },
                            periodSeconds: 10,
                            timeoutSeconds: 5,
                            failureThreshold: 3,
                        },
                    },
                ],
                volumes: [
                    { name: "config", secret: { secretName: orthancConfigSecretName, defaultMode: 0o440 } },
                    { name: "work", emptyDir: { sizeLimit: "2Gi" } },
                    // The start-up copies every enabled plugin here (viewers included: a few hundred MB).
                    { name: "plugins", emptyDir: { sizeLimit: "1Gi" } },
                    { name: "tmp", emptyDir: { sizeLimit: "1Gi" } },
                    { name: "hostid", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
                    ...additions.volumes,
                ],
            },
        },
    };
}

/**
 * The Deployment is named after the Orthanc image it runs, and replaced delete-before-create: a new image first stops
 * every pod of the old one (the Kubernetes provider deletes with foreground propagation and waits until the pods are
 * gone), then starts one pod of the new one, which migrates the PostgreSQL plugin's schema alone, as the Orthanc Book
 * asks (stop all replicas, upgrade, restart). A configuration change keeps the name and rolls one pod at a time.
 */
export function orthancDeploymentName(image: { tag: string } = orthancImage): string {
    return `orthanc-${image.tag.replace(/[^a-z0-9]+/gi, "-").toLowerCase()}`;
}

export function orthancServiceSpec(tenantName: string): k8s.types.input.core.v1.ServiceSpec {
    return {
        type: "ClusterIP",
        selector: orthancSelector(tenantName),
        ports: [
            // Istio picks the protocol from the name: HTTP for the REST API, raw TCP for DICOM.
            { name: "http-orthanc", port: orthancPorts.http, targetPort: "http", protocol: "TCP" },
            { name: "tcp-dicom", port: orthancPorts.dicom, targetPort: "dicom", protocol: "TCP" },
        ],
    };
}

export function orthancAutoscalerSpec(tenant: TenantConfig["orthanc"], deploymentName: string): k8s.types.input.autoscaling.v2.HorizontalPodAutoscalerSpec {
    return {
        scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: deploymentName },
        minReplicas: tenant.minReplicas,
        maxReplicas: tenant.maxReplicas,
        metrics: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 70 } } }],
        // Scale down slowly: a study transfer in flight holds its association on one pod.
        behavior: { scaleDown: { stabilizationWindowSeconds: 600, policies: [{ type: "Pods", value: 1, periodSeconds: 120 }] } },
    };
}

export function orthancDisruptionBudgetSpec(tenantName: string): k8s.types.input.policy.v1.PodDisruptionBudgetSpec {
    return { maxUnavailable: 1, selector: { matchLabels: orthancSelector(tenantName) } };
}

