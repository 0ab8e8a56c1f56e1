import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { pinnedRelease } from "../k8s/helm";
import { namespace } from "../k8s/namespace";
import { strictMtlsSpec } from "../k8s/walls";
import { charts } from "../versions";

export interface IstioMeshArgs {
    /** Namespace of the control plane; Korthweb's and Istio's default. */
    namespace?: string;
    /** Istio's platform profile (`global.platform`), where the cluster's CNI paths differ from the defaults. */
    platform?: string;
}

/**
 * The Istio control plane: CRDs (`base`), the CNI node agent and `istiod`, and mesh-wide STRICT mutual TLS.
 *
 * The CNI agent sets up traffic redirection on the node, so injected pods need no NET_ADMIN init container and tenant
 * namespaces can enforce the Pod Security "baseline" level.
 */
export class IstioMesh extends pulumi.ComponentResource {
    readonly namespace: string;
    readonly base: k8s.helm.v3.Release;
    readonly cni: k8s.helm.v3.Release;
    readonly istiod: k8s.helm.v3.Release;
    /** Wait on these before creating Istio custom resources: CRDs installed and the validating webhook answering. */
    readonly crdsReady: pulumi.Resource[];
    /** Wait on these before creating pods that get a sidecar: injector and CNI agent running. */
    readonly injectionReady: pulumi.Resource[];

    constructor(name: string, args: IstioMeshArgs = {}, opts?: pulumi.ComponentResourceOptions) {
        super("korthweb:platform:IstioMesh", name, {}, opts);
        this.namespace = args.namespace ?? "istio-system";

        // The CNI DaemonSet mounts host paths, which only the "privileged" level admits.
        const ns = namespace(
            `${name}-namespace`,
            { name: this.namespace, enforce: "privileged", istioInjection: false },
            { parent: this },
        );
        const inNamespace = { parent: this, dependsOn: [ns] };
        this.base = pinnedRelease(
            `${name}-base`,
            { pin: charts.istioBase, releaseName: "istio-base", namespace: this.namespace, values: baseValues(this.namespace) },
            inNamespace,
        );
        this.cni = pinnedRelease(
            `${name}-cni`,
            { pin: charts.istioCni, releaseName: "istio-cni", namespace: this.namespace, values: cniValues(args.platform) },
            { ...inNamespace, dependsOn: [ns, this.base] },
        );
        this.istiod = pinnedRelease(
            `${name}-istiod`,
            { pin: charts.istiod, releaseName: "istiod", namespace: this.namespace, values: istiodValues(args.platform) },
            { ...inNamespace, dependsOn: [ns, this.base, this.cni] },
        );
        this.crdsReady = [this.base, this.istiod];
        this.injectionReady = [this.istiod, this.cni];

        // Objects in the root namespace apply to the whole mesh.
        const meshWide = (suffix: string, apiVersion: string, kind: string, objectName: string, spec: Record<string, unknown>) =>
            new k8s.apiextensions.CustomResource(
                `${name}-${suffix}`,
                { apiVersion, kind, metadata: { name: objectName, namespace: this.namespace }, spec },
                { parent: this, dependsOn: this.crdsReady },
            );
        // No workload accepts plaintext.
        meshWide("strict-mtls", "security.istio.io/v1", "PeerAuthentication", "default", strictMtlsSpec());
        // Every proxy, gateways included, logs through the provider without query strings.
        meshWide("access-log", "telemetry.istio.io/v1", "Telemetry", "mesh-default", meshTelemetrySpec());

        this.registerOutputs({ namespace: this.namespace });
    }
}

export function baseValues(istioNamespace: string): Record<string, unknown> {
    return { defaultRevision: "default", global: { istioNamespace } };
}

// Since Istio 1.24 the istiod and cni charts read their settings at the top level (the old `pilot.`/`cni.` prefixes
// survive only as a legacy copy), so these values use the flat form.

export function cniValues(platform?: string): Record<string, unknown> {
    return {
        resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } },
        ...(platform ? { global: { platform } } : {}),
    };
}

export function istiodValues(platform?: string): Record<string, unknown> {
    return {
        // Redirection is done by the CNI agent; the injector then leaves out the privileged istio-init container.
        cni: { enabled: true },
        // istiod's chart autoscales by default and then ignores replicaCount: two at least.
        autoscaleMin: 2,
        resources: { requests: { cpu: "200m", memory: "512Mi" }, limits: { memory: "2Gi" } },
        seccompProfile: { type: "RuntimeDefault" },
        env: {
            // Without it a Gateway's selector matches gateway pods in every namespace, so one tenant's Gateway
            // could bind another tenant's gateway.
            PILOT_SCOPE_GATEWAY_TO_NAMESPACE: "true",
        },
        meshConfig: {
            // Access logs through a provider of our own rather than `accessLogFile`: Istio's built-in format logs the
            // path with its query string, and QIDO-RS queries carry patient names and birth dates there.
            extensionProviders: [{ name: accessLogProvider, envoyFileAccessLog: { path: "/dev/stdout", logFormat: { labels: accessLogFields() } } }],
            defaultProviders: { accessLogging: [accessLogProvider] },
            // Egress only to services known to the mesh: a compromised pod cannot call arbitrary hosts.
            outboundTrafficPolicy: { mode: "REGISTRY_ONLY" },
            enablePrometheusMerge: true,
            // Authorization matches paths after this normalization, and Orthanc routes `//tools/shutdown` and
            // `/tools%2Fshutdown` as `/tools/shutdown`: without merged slashes and decoded %2F a DENY on the path is
            // walked around. The normalized path is also what Orthanc receives.
            pathNormalization: { normalization: "DECODE_AND_MERGE_SLASHES" },
            defaultConfig: {
                // Orthanc must not receive traffic, nor open its database connections, before Envoy is ready.
                holdApplicationUntilProxyStarts: true,
            },
        },
        global: {
            proxy: { resources: { requests: { cpu: "50m", memory: "128Mi" }, limits: { memory: "512Mi" } } },
            ...(platform ? { platform } : {}),
        },
    };
}

/** The mesh's access-log provider (meshConfig.extensionProviders), named by the mesh-wide Telemetry. */
export const accessLogProvider = "korthweb-access-log";

/**
 * The JSON access log's fields, as Envoy format operators. The path is logged without its query string
 * (`%REQ_WITHOUT_QUERY%`, which istiod registers as a formatter extension when a format uses it); nothing else logged
 * carries the query string or a request body.
 */
export function accessLogFields(): Record<string, string> {
    return {
        start_time: "%START_TIME%",
        method: "%REQ(:METHOD)%",
        path: "%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)%",
        protocol: "%PROTOCOL%",
        response_code: "%RESPONSE_CODE%",
        response_flags: "%RESPONSE_FLAGS%",
        response_code_details: "%RESPONSE_CODE_DETAILS%",
        duration: "%DURATION%",
        bytes_received: "%BYTES_RECEIVED%",
        bytes_sent: "%BYTES_SENT%",
        authority: "%REQ(:AUTHORITY)%",
        request_id: "%REQ(X-REQUEST-ID)%",
        upstream_host: "%UPSTREAM_HOST%",
        upstream_cluster: "%UPSTREAM_CLUSTER_RAW%",
        downstream_remote_address: "%DOWNSTREAM_REMOTE_ADDRESS%",
        requested_server_name: "%REQUESTED_SERVER_NAME%",
    };
}

/** A Telemetry in the root namespace applies to every proxy of the mesh: the gateways' and the sidecars'. */
export function meshTelemetrySpec(): Record<string, unknown> {
    return { accessLogging: [{ providers: [{ name: accessLogProvider }] }] };
}

export { strictMtlsSpec };
