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

/** A digest as registries and charts write it: `sha256:<hex>`, or the bare 64 hex characters some charts take. */
const digestValue = /^(sha256:)?[0-9a-f]{64}$/;

/**
 * A tag that names no release: `latest` and other words without a digit (`stable`, `alpine`, `main`), or a bare major
 * version, alone or with word-only variants (`17`, `v2`, `17-alpine`, `18-bookworm`). Their publishers move them to
 * each new minor release, so two pulls of the same reference run different software. A tag with a minor version
 * (`17.6`, `18.4-system-trixie`) or a build revision (`12-debian-12-r51`) names one release; only a digest names one
 * image (components/versions.ts pins digests where an upstream record gives them).
 */
export function isFloatingTag(tag: string): boolean {
    const t = tag.trim();
    if (digestValue.test(t)) {
        return false;
    }
    return !/\d/.test(t) || /^v?\d+([-_.][A-Za-z]+)*$/.test(t);
}

/** A reference with a digest, or a tag that names a release (the tag is after the last `/`: registries have ports). */
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
    return tag !== "" && !isFloatingTag(tag);
}

const isPinnedTag = (tag: unknown) => (typeof tag === "string" && tag.trim() !== "" && !isFloatingTag(tag)) || (typeof tag === "number" && !Number.isInteger(tag));

/** Keys that hold an image tag on their own, in the charts korthweb installs. */
const tagKeys = /^(tag|imageTag|image_tag|imageVersion|image_version)$/;
/** Keys that hold an image digest beside a tag: with one set, the runtime pulls by the digest and the tag is a label. */
const digestKeys = /^(digest|imageDigest|image_digest)$/;

const hasDigestSibling = (parent: unknown) =>
    Object.entries((parent ?? {}) as Record<string, unknown>).some(([k, v]) => digestKeys.test(k) && typeof v === "string" && v.trim() !== "");

const unpinnedTagMessage = 'pin the image to a release tag (not "latest", a word or a bare major version such as "17") or a digest';

/**
 * Helm values: an image object (`{registry?, repository, tag?, digest?}`) must carry a tag or digest; every tag-like key
 * (`tag`, `image_version`, ...) must name a release unless a digest sits beside it; a string under an `image` key that
 * names a registry path must be a pinned reference unless a sibling key carries the tag.
 */
export function helmImageViolations(values: unknown): string[] {
    const violations: string[] = [];
    walk(plain(values), (key, value, path, parent) => {
        if (tagKeys.test(key) && (typeof value === "string" || typeof value === "number" || value === null) && !isPinnedTag(value) && !hasDigestSibling(parent)) {
            violations.push(`values.${path} is ${JSON.stringify(value)}: ${unpinnedTagMessage}`);
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
            const hasTagSibling = Object.keys(siblings).some((k) => tagKeys.test(k) || digestKeys.test(k));
            if (!hasTagSibling && !isPinnedImage(value)) {
                violations.push(`values.${path} is ${JSON.stringify(value)}: ${unpinnedTagMessage}`);
            }
        }
    });
    return violations;
}

/**
 * Images that CloudNativePG runs for the program: a `Cluster`'s `imageName`, an `ImageCatalog`'s images and the
 * containers a `Pooler`'s template names an image for (the operator fills in the others with its own pinned default).
 */
function cloudNativePgImages(resource: PolicyInput): { label: string; image: unknown }[] {
    const spec = plain(resource.props.spec) ?? {};
    if (isKind(resource, "postgresql.cnpg.io", "Cluster")) {
        return "imageName" in spec ? [{ label: "spec.imageName", image: spec.imageName }] : [];
    }
    if (isKind(resource, "postgresql.cnpg.io", "ImageCatalog") || isKind(resource, "postgresql.cnpg.io", "ClusterImageCatalog")) {
        return (spec.images ?? []).map((entry: any, index: number) => ({ label: `spec.images[${index}].image`, image: entry?.image }));
    }
    if (isKind(resource, "postgresql.cnpg.io", "Pooler")) {
        return containersOf(spec.template?.spec ?? {})
            .filter(({ container }) => "image" in container)
            .map(({ label, container }) => ({ label: `spec.template.spec.${label}`, image: container.image }));
    }
    return [];
}

export const imagesPinned: ResourceRule = (resource) => {
    if (isHelmRelease(resource)) {
        return helmImageViolations(resource.props.values).map((v) => `${describe(resource)}: ${v}`);
    }
    const unpinned = (image: unknown) =>
        `uses image ${JSON.stringify(image ?? null)}, not pinned to a release tag (not "latest", a word or a bare major version such as "17") or a digest`;
    const cnpg = cloudNativePgImages(resource)
        .filter(({ image }) => !isPinnedImage(image))
        .map(({ label, image }) => `${describe(resource)}: ${label} ${unpinned(image)}`);
    const pod = podSpec(resource);
    if (!pod) {
        return cnpg;
    }
    return containersOf(pod)
        .filter(({ container }) => !isPinnedImage(container.image))
        .map(({ label, container }) => `${describe(resource)}: ${label} ${unpinned(container.image)}`);
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

/**
 * Helm values must not weaken the charts' own security contexts: no context switched off (`enabled: false`, the Bitnami
 * charts' switch that drops the whole block from the pod: bitnami/charts postgresql-ha/16.3.2
 * `templates/postgresql/statefulset.yaml` renders `securityContext` only `if ...containerSecurityContext.enabled`), none loosened, and no root helper container switched on (Bitnami's `volumePermissions` init container runs as
 * user 0 by the chart's own default).
 */
export function helmSecurityContextViolations(values: unknown): string[] {
    const violations: string[] = [];
    walk(plain(values), (key, value, path) => {
        if (/^(securityContext|containerSecurityContext|podSecurityContext|security_context)$/.test(key) && value && typeof value === "object") {
            const context = value as Record<string, any>;
            if (context.enabled === false) violations.push(`values.${path}.enabled is false: the chart then renders no security context at all`);
            if (context.runAsNonRoot === false) violations.push(`values.${path}.runAsNonRoot is false`);
            if (context.runAsUser === 0) violations.push(`values.${path}.runAsUser is 0`);
            if (context.privileged === true) violations.push(`values.${path}.privileged is true`);
            if (context.allowPrivilegeEscalation === true) violations.push(`values.${path}.allowPrivilegeEscalation is true`);
            if (context.readOnlyRootFilesystem === false) violations.push(`values.${path}.readOnlyRootFilesystem is false`);
            const seccomp = context.seccompProfile?.type;
            if (seccomp !== undefined && !allowedSeccomp.includes(seccomp)) violations.push(`values.${path}.seccompProfile.type is ${seccomp}`);
            const added = ((context.capabilities?.add ?? []) as unknown[]).filter((c) => !allowedAddedCapabilities.includes(String(c).toUpperCase()));
            if (added.length > 0) violations.push(`values.${path}.capabilities.add includes ${added.join(", ")}`);
        }
        if (key === "volumePermissions" && value && typeof value === "object" && (value as any).enabled === true) {
            violations.push(`values.${path}.enabled is true: that init container runs as root`);
        }
        if (/^(hostNetwork|hostPID|hostIPC)$/.test(key) && value === true) {
            violations.push(`values.${path} is true`);
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

/**
 * A value that only refers to a credential kept elsewhere: a Kubernetes `$(VAR)`, or a shell's or envsubst's expansion
 * (`${VAR}`, `$VAR`, `$(cat /run/secrets/x)`), which a process resolves at run time.
 */
const isReference = (value: string) => value.trim().startsWith("$");
/** A credential-named option or variable (`--db-password`, `PGPASSWORD`, `auth.token`), but not one naming a file of it. */
const credentialOption = /^-{0,2}[A-Za-z0-9_.-]*(passw(or)?d|passphrase|secret|token|credential|api[-_]?key|private[-_]?key)[A-Za-z0-9_.-]*$/i;
const namesAFile = /([-_.](file|path|dir|ref|name))$/i;
/** `scheme://user:password@host` with a literal password. */
const urlWithPassword = /[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s/:@]+:([^\s/@]+)@/;

/**
 * Why a string that a process receives in the clear (an argument, a command, an environment value) carries a
 * credential, or undefined: a credential-named `--option=value`/`NAME=value`/`key: value`, such an option followed by a
 * literal in the next word (`--password hunter2`), a URL with a password, or a PEM private key. Words are split on
 * white space, so a `sh -c` script is read word by word too. A value that is only a reference (`$(VAR)`, `${VAR}`) is
 * not a credential.
 */
export function credentialInWords(words: string[]): string | undefined {
    const tokens = words.flatMap((word) => word.split(/\s+/)).filter((t) => t !== "");
    for (const word of words) {
        if (pemPrivateKey.test(word)) return "holds a PEM private key";
        const url = urlWithPassword.exec(word);
        if (url && !isReference(url[1])) return "holds a URL with a password";
    }
    for (let i = 0; i < tokens.length; i++) {
        const assignment = /^([^=:]+)[=:](.*)$/.exec(tokens[i]);
        if (assignment) {
            const [, name, value] = assignment;
            const literal = value.replace(/^["']|["']$/g, "");
            if (credentialOption.test(name) && !namesAFile.test(name) && literal !== "" && !isReference(literal)) {
                return `passes ${name} with a literal value`;
            }
            if (assignment[2] === "" && credentialOption.test(name) && !namesAFile.test(name)) {
                // `password:` followed by the value as the next word (YAML-like or `-p:` styles).
                const next = tokens[i + 1];
                if (next !== undefined && !next.startsWith("-") && !isReference(next)) return `passes ${name} with a literal value`;
            }
            continue;
        }
        if (tokens[i].startsWith("-") && credentialOption.test(tokens[i]) && !namesAFile.test(tokens[i])) {
            const next = tokens[i + 1];
            if (next !== undefined && !next.startsWith("-") && !isReference(next)) return `passes ${tokens[i]} with a literal value`;
        }
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
    if (isHelmRelease(resource)) {
        // Environment the program hands a chart: `env: {NAME: value}` maps and `[{name, value}]` lists.
        walk(plain(resource.props.values), (key, value, path) => {
            if (!/^(env|extraEnv|extraEnvVars)$/.test(key)) return;
            const pairs: [string, unknown][] = Array.isArray(value)
                ? value.filter((e) => e && typeof e === "object" && "value" in e).map((e: any) => [String(e.name ?? ""), e.value])
                : value && typeof value === "object"
                  ? Object.entries(value as Record<string, unknown>)
                  : [];
            for (const [name, literal] of pairs) {
                const why = secretMaterial(name, literal) ?? (typeof literal === "string" ? credentialInWords([literal]) : undefined);
                if (why) violations.push(`${describe(resource)}: values.${path} ${name} ${why}; reference a Secret instead`);
            }
        });
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
            const why = secretMaterial(env.name ?? "", env.value) ?? (typeof env.value === "string" ? credentialInWords([env.value]) : undefined);
            if (why) violations.push(`${describe(resource)}: ${label} env ${env.name} ${why}; use valueFrom.secretKeyRef`);
        }
    }
    return violations;
};

/** Keys under which charts take a container's command line. */
const commandLineKeys = /^(command|args|extraArgs|extraFlags|containerArgs)$/;

/**
 * No credential on a command line: a container's `command` and `args` are part of the workload's spec (readable by
 * anyone who may read it, and kept in Pulumi's state in the clear), and a running process's arguments are readable by
 * every process of the node that may read `/proc/<pid>/cmdline`. Helm values that set a command line are read the
 * same way. Credentials go in through a mounted Secret or `valueFrom.secretKeyRef`.
 */
export const noCredentialsOnCommandLines: ResourceRule = (resource) => {
    const violations: string[] = [];
    if (isHelmRelease(resource)) {
        walk(plain(resource.props.values), (key, value, path) => {
            if (!commandLineKeys.test(key)) return;
            const words = (Array.isArray(value) ? value : [value]).filter((w): w is string => typeof w === "string");
            const why = credentialInWords(words);
            if (why) violations.push(`${describe(resource)}: values.${path} ${why}; mount a Secret instead`);
        });
        return violations;
    }
    const pod = podSpec(resource);
    if (!pod) {
        return violations;
    }
    for (const { label, container } of containersOf(pod)) {
        for (const field of ["command", "args"]) {
            const words = ((container[field] ?? []) as unknown[]).filter((w): w is string => typeof w === "string");
            const why = credentialInWords(words);
            if (why) violations.push(`${describe(resource)}: ${label} ${field} ${why}; pass it through a mounted Secret or valueFrom.secretKeyRef`);
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
// Nothing that opens the walls to everyone

const isEmptyObject = (value: unknown) => value === undefined || value === null || (typeof value === "object" && Object.keys(value as object).length === 0);
const allAddresses = ["0.0.0.0/0", "::/0"];

/** A NetworkPolicy peer that admits every pod of every namespace, or every address. */
function isEveryPeer(peer: any): boolean {
    if (isEmptyObject(peer)) return true;
    const keys = Object.keys(peer);
    if (keys.every((k) => k === "namespaceSelector" || k === "podSelector")) {
        // namespaceSelector {} is every namespace; with a podSelector it is every pod there only if that one is empty too.
        return "namespaceSelector" in peer && isEmptySelector(peer.namespaceSelector) && isEmptySelector(peer.podSelector);
    }
    if (keys.length === 1 && keys[0] === "ipBlock") {
        return allAddresses.includes(peer.ipBlock?.cidr) && (peer.ipBlock?.except ?? []).length === 0;
    }
    return false;
}

/** A NetworkPolicy port entry that admits every port: no port, or a range from 1 to 65535. */
const isEveryPort = (port: any) => isEmptyObject(port) || port.port === undefined || (Number(port.port) <= 1 && Number(port.endPort) >= 65535);

/**
 * No NetworkPolicy rule admits everything: a rule whose peers (`from`/`to`: none, or one that selects every namespace or
 * address) and ports (none, or one without a port number) are unrestricted. NetworkPolicies add up, so one such rule
 * beside the default deny undoes it for the pods it selects (networking.k8s.io/v1: an empty or missing `from`/`to` matches every peer,
 * empty or missing `ports` every port, and an empty `namespaceSelector` every namespace). Rules that
 * open a port to the world (the gateway's 443 and 11112) name their ports and pass.
 */
export const noAllowAllNetworkPolicy: ResourceRule = (resource) => {
    if (!isKind(resource, "networking.k8s.io", "NetworkPolicy")) {
        return [];
    }
    const spec = plain(resource.props.spec) ?? {};
    const violations: string[] = [];
    for (const [direction, peersKey] of [["ingress", "from"], ["egress", "to"]] as const) {
        ((spec[direction] ?? []) as any[]).forEach((rule, index) => {
            const peers: any[] = rule?.[peersKey] ?? [];
            const ports: any[] = rule?.ports ?? [];
            const everyPeer = peers.length === 0 || peers.some(isEveryPeer);
            const everyPort = ports.length === 0 || ports.some(isEveryPort);
            if (everyPeer && everyPort) {
                violations.push(`${describe(resource)}: ${direction}[${index}] admits every ${direction === "ingress" ? "source" : "destination"} on every port; name the peers or the ports`);
            }
        });
    }
    return violations;
};

/** Whether an Istio list matches anything: unset or empty, or only the wildcard `*`. */
const matchesAnything = (values: unknown) => values === undefined || values === null || (Array.isArray(values) && (values.length === 0 || values.every((v) => v === "*")));

/** An AuthorizationPolicy `source` or `operation` that restricts nothing: every field unset, empty or `["*"]`. */
const restrictsNothing = (fields: any) => isEmptyObject(fields) || Object.values(fields).every(matchesAnything);

/**
 * No ALLOW AuthorizationPolicy admits every request: a rule without `when`, whose `from` is empty or has a source that
 * restricts nothing, and whose `to` is empty or has an operation that restricts nothing. Istio 1.30.3
 * (`pilot/pkg/security/authz/model/model.go`, `New` and `generatePermission`/`generatePrincipal`) turns such a rule into
 * `any: true` for both principal and permission; ALLOW policies add up, so it undoes the namespace's allow-nothing
 * policy for the workloads it selects. The program's rules name their sources or their ports.
 */
export const noAllowAllAuthorizationPolicy: ResourceRule = (resource) => {
    if (!isKind(resource, "security.istio.io", "AuthorizationPolicy")) {
        return [];
    }
    const spec = plain(resource.props.spec) ?? {};
    if ((spec.action ?? "ALLOW") !== "ALLOW") {
        return [];
    }
    const violations: string[] = [];
    ((spec.rules ?? []) as any[]).forEach((rule, index) => {
        const from: any[] = rule?.from ?? [];
        const to: any[] = rule?.to ?? [];
        const anySource = from.length === 0 || from.some((f) => restrictsNothing(f?.source));
        const anyOperation = to.length === 0 || to.some((t) => restrictsNothing(t?.operation));
        if (anySource && anyOperation && (rule?.when ?? []).length === 0) {
            violations.push(`${describe(resource)}: rules[${index}] allows every request from anyone; name the sources (principals, namespaces) or the operations (ports, paths)`);
        }
    });
    return violations;
};

/**
 * Every tenant namespace has an allow-nothing AuthorizationPolicy (no selector, no rules, action ALLOW): then a workload
 * that no ALLOW policy names answers nobody, rather than everybody.
 */
export const tenantNamespaceAuthorizationDenyByDefault: StackRule = (resources) => {
    const violations: { resource?: PolicyInput; message: string }[] = [];
    for (const ns of resources.filter(isTenantNamespace)) {
        const name = nameOf(ns);
        const allowNothing = resources.some((r) => {
            if (!isKind(r, "security.istio.io", "AuthorizationPolicy") || namespaceOf(r) !== name) return false;
            const spec = plain(r.props.spec) ?? {};
            return (
                (spec.action ?? "ALLOW") === "ALLOW" &&
                isEmptySelector(spec.selector) &&
                spec.targetRef === undefined &&
                (spec.targetRefs ?? []).length === 0 &&
                (spec.rules ?? []).length === 0
            );
        });
        if (!allowNothing) {
            violations.push({ resource: ns, message: `tenant namespace ${name} has no allow-nothing AuthorizationPolicy (no selector, no rules): a workload no policy names would answer everyone` });
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

/**
 * A MUTUAL server trusts whatever CA `caCertCredentialName` names, else the CA beside its own certificate
 * (`<credentialName>-cacert`); and it admits every certificate that CA signed unless `verifyCertificateHash`,
 * `verifyCertificateSpki` or `subjectAltNames` narrow it (Istio 1.30.3 `pilot/pkg/security/model/authentication.go`,
 * `ApplyCredentialSDSToServerCommonTLSContext`). Istio reads a name as a CA bundle only when it ends in `-cacert`
 * (`pilot/pkg/xds/sds.go`); any other is read as a key and certificate.
 */
export const dicomGatewayMutualTls: ResourceRule = (resource) =>
    gatewayServerViolations(resource, isDicomServer, "DICOM server", (tls) => {
        const problems: string[] = [];
        // The TLS version is gatewayTlsVersion's, for every server that terminates TLS, this one included.
        if (tls.mode !== "MUTUAL") problems.push(`tls.mode is ${tls.mode ?? "unset"}, not MUTUAL`);
        if (tls.mode === "MUTUAL") {
            const ca = tls.caCertCredentialName;
            if (typeof ca !== "string" || ca === "") {
                problems.push("tls.caCertCredentialName is unset: the server would trust the CA beside its own certificate");
            } else if (!ca.endsWith("-cacert")) {
                problems.push(`tls.caCertCredentialName ${ca} does not end in -cacert, so Istio would not read it as a CA bundle`);
            } else if (typeof tls.credentialName === "string" && ca === `${tls.credentialName}-cacert`) {
                problems.push(`tls.caCertCredentialName ${ca} is the server certificate's own CA, not a client CA`);
            }
            const pinned = ["verifyCertificateHash", "verifyCertificateSpki", "subjectAltNames"].filter(
                (key) => Array.isArray(tls[key]) && tls[key].length > 0 && tls[key].every((v: unknown) => typeof v === "string" && v.trim() !== "" && v !== "*"),
            );
            if (pinned.length === 0) {
                problems.push("no verifyCertificateHash, verifyCertificateSpki or subjectAltNames: every certificate the client CA signed would be admitted");
            }
        }
        return problems;
    });

/** The problems `problemsOf` finds in the `tls` of each server of an Istio Gateway that `which` selects, one message per server. */
function gatewayServerViolations(resource: PolicyInput, which: (server: any) => boolean, what: string, problemsOf: (tls: Record<string, any>) => string[]): string[] {
    if (!isKind(resource, "networking.istio.io", "Gateway")) {
        return [];
    }
    const servers: any[] = plain(resource.props.spec)?.servers ?? [];
    return servers.filter(which).flatMap((server) => {
        const problems = problemsOf(server.tls ?? {});
        const port = `${server.port?.name ?? "?"}:${server.port?.number ?? "?"}`;
        return problems.length > 0 ? [`${describe(resource)}: ${what} ${port}: ${problems.join("; ")}`] : [];
    });
}

/** TLS 1.2 or 1.3 at least, stated, and no lower maximum: TLS 1.0 and 1.1 are deprecated (RFC 8996). */
function tlsVersionProblems(tls: Record<string, any>): string[] {
    const problems: string[] = [];
    if (!strongTls.includes(tls.minProtocolVersion)) problems.push(`tls.minProtocolVersion is ${tls.minProtocolVersion ?? "unset"}, not TLSV1_2 or TLSV1_3`);
    if (tls.maxProtocolVersion !== undefined && !strongTls.includes(tls.maxProtocolVersion)) problems.push(`tls.maxProtocolVersion is ${tls.maxProtocolVersion}`);
    return problems;
}

/** A server that terminates TLS: protocol HTTPS or TLS, or any TLS mode other than a pass-through. */
function terminatesTls(server: any): boolean {
    const protocol = String(server?.port?.protocol ?? "").toUpperCase();
    const mode = String(server?.tls?.mode ?? "").toUpperCase();
    if (mode === "PASSTHROUGH" || mode === "AUTO_PASSTHROUGH") return false;
    return protocol === "HTTPS" || protocol === "TLS" || ["SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL", "ISTIO_MUTUAL"].includes(mode);
}

/**
 * Every Gateway server that terminates TLS, web as well as DICOM, states `minProtocolVersion` TLSV1_2 or TLSV1_3 (and
 * no lower maximum). Stated rather than inherited, so that the mesh's defaults on some cluster do not decide it.
 */
export const gatewayTlsVersion: ResourceRule = (resource) => gatewayServerViolations(resource, terminatesTls, "server", tlsVersionProblems);

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
