/**
 * The platform's security rules as pure functions, so the unit tests run them without the Pulumi engine.
 *
 * A resource rule takes one resource (`{type, name, props}`: the Pulumi type token and its inputs) and returns the
 * violations it finds, one message each; a stack rule takes every resource of the stack. `policies.ts` wraps them for
 * CrossGuard. No rule imports a provider SDK: they read the type token (`kubernetes:<group>/<version>:<Kind>`) and the
 * raw properties, so they see exactly what the engine hands a policy.
 *
 * Secret values. The engine hands a policy secrets already unwrapped, so outside the tests a secret in a ConfigMap is a
 * plain string and only its content or key name can give it away. Under the test mocks a secret stays wrapped as
 * `{[secretSignatureKey]: secretSignature, value}`; the rules treat such a wrapper in a ConfigMap or a pod spec as secret
 * material outright, and read through it everywhere else.
 */

export interface PolicyInput {
    /** Pulumi type token, e.g. `kubernetes:apps/v1:Deployment`. */
    type: string;
    /** Logical (Pulumi) name of the resource. */
    name: string;
    urn?: string;
    /** Inputs (resource rules) or outputs (stack rules) of the resource. */
    props: Record<string, any>;
}

export type ResourceRule = (resource: PolicyInput) => string[];
export type StackRule = (resources: PolicyInput[]) => { resource?: PolicyInput; message: string }[];

// ---------------------------------------------------------------------------------------------------------------------
// Reading resources

/** The marker Pulumi puts on serialised secrets (the same constants as @pulumi/pulumi/runtime/rpc). */
const secretSignatureKey = "4dabf18193072939515e22adb298388d";
const secretSignature = "1b47061264138c4ac30d75fd1eb44270";

export function isWrappedSecret(value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as any)[secretSignatureKey] === secretSignature;
}

/** A deep copy with every secret wrapper replaced by its value. */
export function plain<T = any>(value: unknown): T {
    if (isWrappedSecret(value)) {
        return plain((value as any).value);
    }
    if (Array.isArray(value)) {
        return value.map((v) => plain(v)) as T;
    }
    if (value !== null && typeof value === "object") {
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)])) as T;
    }
    return value as T;
}

/** Whether a secret wrapper occurs anywhere in `value`. */
export function containsWrappedSecret(value: unknown): boolean {
    if (isWrappedSecret(value)) {
        return true;
    }
    if (Array.isArray(value)) {
        return value.some(containsWrappedSecret);
    }
    if (value !== null && typeof value === "object") {
        return Object.values(value).some(containsWrappedSecret);
    }
    return false;
}

export interface KubernetesType {
    /** `v1` for the core group, else `<group>/<version>`. */
    apiVersion: string;
    group: string;
    kind: string;
}

/** apiVersion and kind of a Kubernetes resource, from its Pulumi type token; undefined for anything else. */
export function kubernetesType(type: string): KubernetesType | undefined {
    const match = /^kubernetes:([^/:]+)\/([^:]+):(.+)$/.exec(type);
    if (!match) {
        return undefined;
    }
    const [, group, version, kind] = match;
    return { apiVersion: group === "core" ? version : `${group}/${version}`, group: group === "core" ? "" : group, kind };
}

const isKind = (resource: PolicyInput, group: string | RegExp, kind: string) => {
    const k = kubernetesType(resource.type);
    return !!k && k.kind === kind && (typeof group === "string" ? k.group === group : group.test(k.group));
};

export const isHelmRelease = (resource: PolicyInput) => /^kubernetes:helm\.sh\/v\d+:(Release|Chart)$/.test(resource.type);

const describe = (resource: PolicyInput) => {
    const props = plain(resource.props);
    const k = kubernetesType(resource.type);
    const where = props?.metadata?.namespace ? `${props.metadata.namespace}/` : "";
    const object = props?.metadata?.name ? ` (${k?.kind ?? resource.type} ${where}${props.metadata.name})` : "";
    return `${resource.name}${object}`;
};

/** Kinds whose objects carry a pod template, and where their pod spec is. */
const podSpecLocations: Record<string, string[]> = {
    Pod: ["spec"],
    PodTemplate: ["template", "spec"],
    Deployment: ["spec", "template", "spec"],
    StatefulSet: ["spec", "template", "spec"],
    DaemonSet: ["spec", "template", "spec"],
    ReplicaSet: ["spec", "template", "spec"],
    ReplicationController: ["spec", "template", "spec"],
    Job: ["spec", "template", "spec"],
    CronJob: ["spec", "jobTemplate", "spec", "template", "spec"],
};

/** The pod spec of a workload the program defines, or undefined when the resource is not a workload. */
export function podSpec(resource: PolicyInput): Record<string, any> | undefined {
    const k = kubernetesType(resource.type);
    if (!k || !(k.kind in podSpecLocations) || !["", "apps", "batch"].includes(k.group)) {
        return undefined;
    }
    let spec: any = plain(resource.props);
    for (const key of podSpecLocations[k.kind]) {
        spec = spec?.[key];
    }
    return spec ?? {};
}

export interface ContainerRef {
    /** `containers[0] orthanc`, for messages. */
    label: string;
    container: Record<string, any>;
}

export function containersOf(pod: Record<string, any>): ContainerRef[] {
    const refs: ContainerRef[] = [];
    for (const field of ["initContainers", "containers", "ephemeralContainers"]) {
        (pod[field] ?? []).forEach((container: any, index: number) =>
            refs.push({ label: `${field}[${index}] ${container?.name ?? "(unnamed)"}`, container: container ?? {} }),
        );
    }
    return refs;
}

/** Calls `visit` on every value of a values tree, with its path (`a.b[0].c`). */
function walk(value: unknown, visit: (key: string, value: unknown, path: string, parent: unknown) => void, path = ""): void {
    if (Array.isArray(value)) {
        value.forEach((item, index) => {
            const itemPath = `${path}[${index}]`;
            visit(String(index), item, itemPath, value);
            walk(item, visit, itemPath);
        });
    } else if (value !== null && typeof value === "object") {
        for (const [key, item] of Object.entries(value)) {
            const itemPath = path ? `${path}.${key}` : key;
            visit(key, item, itemPath, value);
            walk(item, visit, itemPath);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// Images pinned

/** A reference with a digest, or a tag other than `latest` (the tag is after the last `/`: registries have ports). */
export function isPinnedImage(reference: unknown): boolean {
    if (typeof reference !== "string" || reference.trim() === "" || /\s/.test(reference)) {
        return false;
    }
    if (/@sha256:[0-9a-f]{64}$/.test(reference)) {
        return true;
    }
    const lastComponent = reference.slice(reference.lastIndexOf("/") + 1);
    const colon = lastComponent.indexOf(":");
    if (colon < 0) {
        return false;
    }
    const tag = lastComponent.slice(colon + 1);
    return tag !== "" && tag.toLowerCase() !== "latest";
}

const isPinnedTag = (tag: unknown) =>
    (typeof tag === "string" && tag.trim() !== "" && tag.trim().toLowerCase() !== "latest") || typeof tag === "number";

/** Keys that hold an image tag on their own, in the charts korthweb installs. */
const tagKeys = /^(tag|imageTag|image_tag|imageVersion|image_version)$/;

/**
 * Helm values: an image object (`{registry?, repository, tag?, digest?}`) must carry a tag or digest; every tag-like key
 * (`tag`, `image_version`, ...) must be set and not `latest`; a string under an `image` key that names a registry path
 * must be a pinned reference unless a sibling key carries the tag.
 */
export function helmImageViolations(values: unknown): string[] {
    const violations: string[] = [];
    walk(plain(values), (key, value, path, parent) => {
        if (tagKeys.test(key) && (typeof value === "string" || value === null) && !isPinnedTag(value)) {
            violations.push(`values.${path} is ${JSON.stringify(value)}: pin the image to a version or digest, never "latest" or empty`);
        }
        if (value !== null && typeof value === "object" && !Array.isArray(value) && typeof (value as any).repository === "string") {
            const image = value as Record<string, unknown>;
            if (!isPinnedTag(image.tag) && !(typeof image.digest === "string" && image.digest !== "")) {
                if (!("tag" in image)) {
                    violations.push(`values.${path} overrides the image repository ${image.repository} without a tag or digest`);
                }
            }
        }
        if (/^image$|Image$/.test(key) && typeof value === "string" && /[/:]/.test(value)) {
            const siblings = (parent ?? {}) as Record<string, unknown>;
            const hasTagSibling = Object.keys(siblings).some((k) => tagKeys.test(k) || k === "digest");
            if (!hasTagSibling && !isPinnedImage(value)) {
                violations.push(`values.${path} is ${JSON.stringify(value)}: not pinned to a tag or digest`);
            }
        }
    });
    return violations;
}

export const imagesPinned: ResourceRule = (resource) => {
    if (isHelmRelease(resource)) {
        return helmImageViolations(resource.props.values).map((v) => `${describe(resource)}: ${v}`);
    }
    const pod = podSpec(resource);
    if (!pod) {
        return [];
    }
    return containersOf(pod)
        .filter(({ container }) => !isPinnedImage(container.image))
        .map(({ label, container }) => `${describe(resource)}: ${label} uses image ${JSON.stringify(container.image ?? null)}, not pinned to a tag (other than "latest") or a digest`);
};

// ---------------------------------------------------------------------------------------------------------------------
// Requests and memory limits

const hasQuantity = (value: unknown) => (typeof value === "string" && value.trim() !== "") || (typeof value === "number" && value > 0);

export function resourcesViolations(resources: any): string[] {
    const missing: string[] = [];
    if (!hasQuantity(resources?.requests?.cpu)) missing.push("requests.cpu");
    if (!hasQuantity(resources?.requests?.memory)) missing.push("requests.memory");
    if (!hasQuantity(resources?.limits?.memory)) missing.push("limits.memory");
    return missing;
}

export const containerResources: ResourceRule = (resource) => {
    if (isHelmRelease(resource)) {
        // Every `resources` block the program passes to a chart must be complete; blocks it leaves to the chart are the
        // chart's (see policy/README.md).
        const violations: string[] = [];
        walk(plain(resource.props.values), (key, value, path) => {
            if (key === "resources" && value !== null && typeof value === "object" && !Array.isArray(value)) {
                const missing = resourcesViolations(value);
                if (missing.length > 0) {
                    violations.push(`${describe(resource)}: values.${path} lacks ${missing.join(", ")}`);
                }
            }
        });
        return violations;
    }
    const pod = podSpec(resource);
    if (!pod) {
        return [];
    }
    return containersOf(pod).flatMap(({ label, container }) => {
        const missing = resourcesViolations(container.resources);
        return missing.length > 0 ? [`${describe(resource)}: ${label} lacks resources ${missing.join(", ")}`] : [];
    });
};

// ---------------------------------------------------------------------------------------------------------------------
// Hardened security context

const allowedSeccomp = ["RuntimeDefault", "Localhost"];
/** Capabilities a container may add back after dropping ALL. */
const allowedAddedCapabilities = ["NET_BIND_SERVICE"];

export function securityContextViolations(pod: Record<string, any>): string[] {
    const violations: string[] = [];
    const podContext = pod.securityContext ?? {};
    for (const field of ["hostNetwork", "hostPID", "hostIPC"]) {
        if (pod[field] === true) violations.push(`pod sets ${field}`);
    }
    for (const { label, container } of containersOf(pod)) {
        const context = container.securityContext ?? {};
        const problems: string[] = [];
        if ((context.runAsNonRoot ?? podContext.runAsNonRoot) !== true) problems.push("runAsNonRoot is not true");
        if ((context.runAsUser ?? podContext.runAsUser) === 0) problems.push("runAsUser is 0 (root)");
        if (context.allowPrivilegeEscalation !== false) problems.push("allowPrivilegeEscalation is not false");
        if (context.privileged === true) problems.push("privileged is true");
        if (context.readOnlyRootFilesystem !== true) problems.push("readOnlyRootFilesystem is not true");
        const drop: unknown[] = context.capabilities?.drop ?? [];
        if (!drop.some((c) => typeof c === "string" && c.toUpperCase() === "ALL")) problems.push('capabilities.drop does not include "ALL"');
        const added = ((context.capabilities?.add ?? []) as unknown[]).filter((c) => !allowedAddedCapabilities.includes(String(c).toUpperCase()));
        if (added.length > 0) problems.push(`capabilities.add includes ${added.join(", ")}`);
        const seccomp = context.seccompProfile?.type ?? podContext.seccompProfile?.type;
        if (!allowedSeccomp.includes(seccomp)) problems.push(`seccompProfile is ${seccomp ?? "unset"}, not RuntimeDefault or Localhost`);
        if (problems.length > 0) violations.push(`${label}: ${problems.join("; ")}`);
    }
    return violations;
}

/** Helm values must not weaken the charts' own security contexts. */
export function helmSecurityContextViolations(values: unknown): string[] {
    const violations: string[] = [];
    walk(plain(values), (key, value, path) => {
        if (/^(securityContext|containerSecurityContext|podSecurityContext|security_context)$/.test(key) && value && typeof value === "object") {
            const context = value as Record<string, any>;
            if (context.runAsNonRoot === false) violations.push(`values.${path}.runAsNonRoot is false`);
            if (context.runAsUser === 0) violations.push(`values.${path}.runAsUser is 0`);
            if (context.privileged === true) violations.push(`values.${path}.privileged is true`);
            if (context.allowPrivilegeEscalation === true) violations.push(`values.${path}.allowPrivilegeEscalation is true`);
        }
    });
    return violations;
}

export const containerSecurityContext: ResourceRule = (resource) => {
    if (isHelmRelease(resource)) {
        return helmSecurityContextViolations(resource.props.values).map((v) => `${describe(resource)}: ${v}`);
    }
    const pod = podSpec(resource);
    return pod ? securityContextViolations(pod).map((v) => `${describe(resource)}: ${v}`) : [];
};

// ---------------------------------------------------------------------------------------------------------------------
// No secret material in ConfigMaps or literal environment values

/** Names that say "this is a credential". `key` alone and `*.key`/`*_key` files count; `*-keys` lists do not. */
const secretName = /(passw(or)?d|passphrase|secret|token|credential|api[-_]?key|private[-_]?key|^key$|[._-]key$|\.pem$)/i;
const pemPrivateKey = /-----BEGIN ([A-Z0-9 ]+ )?PRIVATE KEY( BLOCK)?-----/;

/** Why a literal (name, value) pair looks like secret material, or undefined. */
export function secretMaterial(name: string, value: unknown): string | undefined {
    if (isWrappedSecret(value)) {
        return "holds a Pulumi secret";
    }
    if (typeof value !== "string") {
        return undefined;
    }
    if (pemPrivateKey.test(value)) {
        return "holds a PEM private key";
    }
    if (secretName.test(name) && value.trim() !== "") {
        return "is named like a credential and has a literal value";
    }
    return undefined;
}

export const noSecretMaterial: ResourceRule = (resource) => {
    const violations: string[] = [];
    if (isKind(resource, "", "ConfigMap")) {
        for (const field of ["data", "binaryData"]) {
            const raw = resource.props[field];
            if (isWrappedSecret(raw)) {
                violations.push(`${describe(resource)}: ${field} is a Pulumi secret; keep it in a Secret`);
                continue;
            }
            for (const [key, value] of Object.entries(raw ?? {})) {
                const why = secretMaterial(key, value);
                if (why) violations.push(`${describe(resource)}: ${field}.${key} ${why}; keep it in a Secret`);
            }
        }
        return violations;
    }
    if (!podSpec(resource)) {
        return violations;
    }
    // A pod spec is readable by anyone who may read the workload: no secret belongs anywhere in it.
    if (containsWrappedSecret(resource.props.spec ?? resource.props.template)) {
        violations.push(`${describe(resource)}: its pod spec carries a Pulumi secret; reference a Secret (valueFrom.secretKeyRef or a volume) instead`);
    }
    for (const { label, container } of containersOf(podSpec(resource)!)) {
        for (const env of container.env ?? []) {
            if (env?.value === undefined) continue;
            const why = secretMaterial(env.name ?? "", env.value);
            if (why) violations.push(`${describe(resource)}: ${label} env ${env.name} ${why}; use valueFrom.secretKeyRef`);
        }
    }
    return violations;
};

// ---------------------------------------------------------------------------------------------------------------------
// Mutual TLS

const weakMtlsModes = ["PERMISSIVE", "DISABLE"];

/** No PeerAuthentication anywhere may accept plaintext, for the whole namespace or any port. */
export const peerAuthenticationStrict: ResourceRule = (resource) => {
    if (!isKind(resource, "security.istio.io", "PeerAuthentication")) {
        return [];
    }
    const spec = plain(resource.props.spec) ?? {};
    const violations: string[] = [];
    const mode = spec.mtls?.mode;
    if (typeof mode === "string" && weakMtlsModes.includes(mode.toUpperCase())) {
        violations.push(`${describe(resource)}: mtls.mode is ${mode}; only STRICT is allowed`);
    }
    for (const [port, setting] of Object.entries<any>(spec.portLevelMtls ?? {})) {
        const portMode = setting?.mode;
        if (typeof portMode === "string" && weakMtlsModes.includes(portMode.toUpperCase())) {
            violations.push(`${describe(resource)}: portLevelMtls[${port}].mode is ${portMode}; only STRICT is allowed`);
        }
    }
    return violations;
};

/**
 * Tenant namespace: a Namespace named `<tenant>-orthweb`, or labelled `korthweb.io/tenant`, or joined to the mesh
 * (`istio-injection: enabled`). The union is deliberate: dropping one marker does not take a namespace out of the rules.
 */
export function isTenantNamespace(resource: PolicyInput): boolean {
    if (!isKind(resource, "", "Namespace")) {
        return false;
    }
    const metadata = plain(resource.props.metadata) ?? {};
    const labels = metadata.labels ?? {};
    return (
        (typeof metadata.name === "string" && metadata.name.endsWith("-orthweb")) ||
        "korthweb.io/tenant" in labels ||
        labels["istio-injection"] === "enabled"
    );
}

const namespaceOf = (resource: PolicyInput): string | undefined => plain(resource.props.metadata)?.namespace;
const nameOf = (resource: PolicyInput): string | undefined => plain(resource.props.metadata)?.name;

const isEmptySelector = (selector: any) =>
    selector === undefined ||
    selector === null ||
    (Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0);

/** Every tenant namespace: sidecar injection on, and a namespace-wide PeerAuthentication in STRICT mode. */
export const tenantNamespaceStrictMtls: StackRule = (resources) => {
    const violations: { resource?: PolicyInput; message: string }[] = [];
    for (const ns of resources.filter(isTenantNamespace)) {
        const name = nameOf(ns);
        const labels = plain(ns.props.metadata)?.labels ?? {};
        if (labels["istio-injection"] !== "enabled") {
            violations.push({ resource: ns, message: `tenant namespace ${name} does not have istio-injection=enabled: its pods would run without a sidecar and mutual TLS` });
        }
        const strict = resources.some(
            (r) =>
                isKind(r, "security.istio.io", "PeerAuthentication") &&
                namespaceOf(r) === name &&
                isEmptySelector(plain(r.props.spec)?.selector) &&
                plain(r.props.spec)?.mtls?.mode === "STRICT",
        );
        if (!strict) {
            violations.push({ resource: ns, message: `tenant namespace ${name} has no namespace-wide PeerAuthentication with mtls.mode STRICT` });
        }
    }
    return violations;
};

/** Every tenant namespace: a default-deny NetworkPolicy (all pods, Ingress and Egress, no rules). */
export const tenantNamespaceNetworkPolicy: StackRule = (resources) => {
    const violations: { resource?: PolicyInput; message: string }[] = [];
    for (const ns of resources.filter(isTenantNamespace)) {
        const name = nameOf(ns);
        const policies = resources.filter((r) => isKind(r, "networking.k8s.io", "NetworkPolicy") && namespaceOf(r) === name);
        if (policies.length === 0) {
            violations.push({ resource: ns, message: `tenant namespace ${name} has no NetworkPolicy` });
            continue;
        }
        const defaultDeny = policies.some((p) => {
            const spec = plain(p.props.spec) ?? {};
            const types: string[] = spec.policyTypes ?? [];
            return (
                isEmptySelector(spec.podSelector) &&
                types.includes("Ingress") &&
                types.includes("Egress") &&
                (spec.ingress ?? []).length === 0 &&
                (spec.egress ?? []).length === 0
            );
        });
        if (!defaultDeny) {
            violations.push({ resource: ns, message: `tenant namespace ${name} has no default-deny NetworkPolicy (podSelector {}, policyTypes Ingress and Egress, no rules)` });
        }
    }
    return violations;
};

// ---------------------------------------------------------------------------------------------------------------------
// DICOM gateway servers

const strongTls = ["TLSV1_2", "TLSV1_3"];

/** A server carrying DICOM: TLS protocol, the DICOM TLS port 11112, or a port named after DICOM. */
export function isDicomServer(server: any): boolean {
    const port = server?.port ?? {};
    return String(port.protocol ?? "").toUpperCase() === "TLS" || port.number === 11112 || /dicom/i.test(String(port.name ?? ""));
}

export const dicomGatewayMutualTls: ResourceRule = (resource) => {
    if (!isKind(resource, "networking.istio.io", "Gateway")) {
        return [];
    }
    const servers: any[] = plain(resource.props.spec)?.servers ?? [];
    return servers.filter(isDicomServer).flatMap((server) => {
        const tls = server.tls ?? {};
        const port = `${server.port?.name ?? "?"}:${server.port?.number ?? "?"}`;
        const problems: string[] = [];
        if (tls.mode !== "MUTUAL") problems.push(`tls.mode is ${tls.mode ?? "unset"}, not MUTUAL`);
        if (!strongTls.includes(tls.minProtocolVersion)) problems.push(`tls.minProtocolVersion is ${tls.minProtocolVersion ?? "unset"}, not TLSV1_2 or TLSV1_3`);
        if (tls.maxProtocolVersion !== undefined && !strongTls.includes(tls.maxProtocolVersion)) problems.push(`tls.maxProtocolVersion is ${tls.maxProtocolVersion}`);
        return problems.length > 0 ? [`${describe(resource)}: DICOM server ${port}: ${problems.join("; ")}`] : [];
    });
};

// ---------------------------------------------------------------------------------------------------------------------
// Disruption budgets

export function selectorMatches(selector: any, labels: Record<string, string>): boolean {
    if (!selector || isEmptySelector(selector)) {
        // A PDB with an empty selector matches every pod of its namespace (policy/v1).
        return true;
    }
    const byLabels = Object.entries<string>(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
    const byExpressions = (selector.matchExpressions ?? []).every((e: any) => {
        const has = e.key in labels;
        switch (e.operator) {
            case "In":
                return has && (e.values ?? []).includes(labels[e.key]);
            case "NotIn":
                return !has || !(e.values ?? []).includes(labels[e.key]);
            case "Exists":
                return has;
            case "DoesNotExist":
                return !has;
            default:
                return false;
        }
    });
    return byLabels && byExpressions;
}

/**
 * Every Deployment that runs more than one replica (`spec.replicas`, or the `minReplicas` of an autoscaler targeting it)
 * has a PodDisruptionBudget in its namespace whose selector matches its pod template's labels.
 */
export const disruptionBudgetForReplicatedDeployments: StackRule = (resources) => {
    const violations: { resource?: PolicyInput; message: string }[] = [];
    for (const deployment of resources.filter((r) => isKind(r, "apps", "Deployment"))) {
        const props = plain(deployment.props);
        const namespace = props.metadata?.namespace;
        const autoscalerMin = resources
            .filter((r) => isKind(r, "autoscaling", "HorizontalPodAutoscaler") && namespaceOf(r) === namespace)
            .map((r) => plain(r.props.spec) ?? {})
            .filter((spec) => spec.scaleTargetRef?.kind === "Deployment" && spec.scaleTargetRef?.name === props.metadata?.name)
            .map((spec) => Number(spec.minReplicas ?? 1));
        const replicas = Math.max(Number(props.spec?.replicas ?? 1), ...autoscalerMin);
        if (replicas <= 1) {
            continue;
        }
        const podLabels = props.spec?.template?.metadata?.labels ?? {};
        const budget = resources.some(
            (r) => isKind(r, "policy", "PodDisruptionBudget") && namespaceOf(r) === namespace && selectorMatches(plain(r.props.spec)?.selector, podLabels),
        );
        if (!budget) {
            violations.push({ resource: deployment, message: `${describe(deployment)} runs ${replicas} replicas but no PodDisruptionBudget in ${namespace} selects its pods` });
        }
    }
    return violations;
};

// ---------------------------------------------------------------------------------------------------------------------
// Helm releases

/** An exact semantic version (optionally `v`-prefixed): no ranges, wildcards or empty strings. */
export const exactVersion = /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;

export const helmReleasePinnedAndNamed: ResourceRule = (resource) => {
    if (!isHelmRelease(resource)) {
        return [];
    }
    const props = plain(resource.props);
    const violations: string[] = [];
    if (typeof props.version !== "string" || !exactVersion.test(props.version)) {
        violations.push(`${resource.name}: chart ${props.chart} version ${JSON.stringify(props.version ?? null)} is not an exact version`);
    }
    if (typeof props.name !== "string" || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(props.name) || props.name.length > 53) {
        violations.push(`${resource.name}: the release has no fixed, valid name (${JSON.stringify(props.name ?? null)}); Pulumi would add a random suffix`);
    }
    return violations;
};
