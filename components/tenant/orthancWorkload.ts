/**
 * Orthanc's Kubernetes workload for a tenant: Deployment, Service, autoscaler and disruption budget, as pure builders.
 */
import type * as k8s from "@pulumi/kubernetes";
import { TenantConfig } from "../config/schema";
import { imageReference, orthancImage } from "../versions";
import { orthancPorts, orthancServiceName } from "./ingress";
import { orthancPodLabels, orthancSelector, orthancServiceAccount } from "./security";

/** Where the configuration Secret is mounted; the image's entrypoint reads every JSON file in this directory. */
export const orthancConfigDirectory = "/run/secrets/orthanc";
export const orthancConfigFile = "orthanc.json";
export const orthancConfigSecretName = "orthanc-config";
/** Writable scratch space (emptyDir): the root filesystem is read-only. Orthanc keeps no state here. */
export const orthancWorkDirectory = "/var/lib/orthanc/work";
/** Plugin libraries in the orthancteam/orthanc image. */
export const orthancPluginDirectory = "/usr/share/orthanc/plugins-available";
export const orthancPlugins = [
    `${orthancPluginDirectory}/libOrthancPostgreSQLIndex.so`,
    `${orthancPluginDirectory}/libOrthancPostgreSQLStorage.so`,
];
/** The image runs Orthanc as this unprivileged user when not started as root. */
const orthancUid = 1000;

/**
 * Readiness asks Orthanc's REST API, authenticated with the credentials of the mounted configuration file, so the
 * password is neither in the pod spec nor in an environment variable.
 */
export function readinessCommand(): string[] {
    const script = [
        "import base64, json, urllib.request",
        `user, password = next(iter(json.load(open("${orthancConfigDirectory}/${orthancConfigFile}"))["RegisteredUsers"].items()))`,
        'token = base64.b64encode(f"{user}:{password}".encode()).decode()',
        `request = urllib.request.Request("http://127.0.0.1:${orthancPorts.http}/system", headers={"Authorization": "Basic " + token})`,
        "urllib.request.urlopen(request, timeout=4)",
    ].join("; ");
    return ["python3", "-c", script];
}

export function orthancDeploymentSpec(tenantName: string, tenant: TenantConfig["orthanc"], configChecksum: string): k8s.types.input.apps.v1.DeploymentSpec {
    const labels = orthancPodLabels(tenantName);
    return {
        replicas: tenant.minReplicas,
        selector: { matchLabels: orthancSelector(tenantName) },
        strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
        template: {
            metadata: {
                labels: { ...labels, version: orthancImage.tag },
                // A new configuration (e.g. a rotated password) rolls the pods.
                annotations: { "korthweb.io/config-checksum": configChecksum },
            },
            spec: {
                serviceAccountName: orthancServiceAccount,
                automountServiceAccountToken: false,
                securityContext: {
                    runAsNonRoot: true,
                    runAsUser: orthancUid,
                    runAsGroup: orthancUid,
                    fsGroup: orthancUid,
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
                containers: [
                    {
                        name: "orthanc",
                        image: imageReference(orthancImage),
                        args: [orthancConfigDirectory],
                        ports: [
                            { name: "http", containerPort: orthancPorts.http, protocol: "TCP" },
                            { name: "dicom", containerPort: orthancPorts.dicom, protocol: "TCP" },
                        ],
                        env: [
                            // Each replica writes its own rows in the shared database; the pod name is unique.
                            { name: "ORTHANC__DATABASE_SERVER_IDENTIFIER", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
                            // DCMTK otherwise waits on Nagle's algorithm per PDU: ~15 instances/s instead of hundreds.
                            { name: "TCP_NODELAY", value: "1" },
                        ],
                        resources: {
                            requests: { cpu: tenant.cpuRequest, memory: tenant.memoryRequest },
                            limits: { memory: tenant.memoryLimit },
                        },
                        securityContext: {
                            allowPrivilegeEscalation: false,
                            readOnlyRootFilesystem: true,
                            runAsNonRoot: true,
                            capabilities: { drop: ["ALL"] },
                            seccompProfile: { type: "RuntimeDefault" },
                        },
                        volumeMounts: [
                            { name: "config", mountPath: orthancConfigDirectory, readOnly: true },
                            { name: "work", mountPath: orthancWorkDirectory },
                            { name: "tmp", mountPath: "/tmp" },
                        ],
                        // First start migrates the database schema, which can take minutes on a large index.
                        startupProbe: { tcpSocket: { port: "http" }, periodSeconds: 5, failureThreshold: 60 },
                        // Liveness does not depend on the database: an outage of PostgreSQL must not restart every pod.
                        livenessProbe: { tcpSocket: { port: "http" }, periodSeconds: 20, timeoutSeconds: 5, failureThreshold: 3 },
                        readinessProbe: { exec: { command: readinessCommand() }, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
                    },
                ],
                volumes: [
                    { name: "config", secret: { secretName: orthancConfigSecretName, defaultMode: 0o440 } },
                    { name: "work", emptyDir: { sizeLimit: "2Gi" } },
                    { name: "tmp", emptyDir: { sizeLimit: "1Gi" } },
                ],
            },
        },
    };
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

export { orthancServiceName };
