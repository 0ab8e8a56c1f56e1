/**
 * When the Kubernetes provider counts an object as created, and what a custom resource's status can show.
 *
 * pulumi/pulumi-kubernetes: the package pins @pulumi/kubernetes 4.34.2, whose provider plugin is downloaded at run
 * time; the mirror read here ends before that release (newest tag v4.32.0, master of 1 July 2026), so this follows
 * v4.32.0 and master, identical in these files:
 * - provider/pkg/await/await.go (Creation): after the API server accepts an object the provider waits up to
 *   `pulumi.com/timeoutSeconds` (else the resource's customTimeouts, else 10 minutes) for its ready condition; the
 *   built-in awaiters (awaiters.go `awaiters`: Deployments, StatefulSets, DaemonSets, Jobs, Services, Pods, PVCs,
 *   Ingresses, ...) apply unless the object carries `pulumi.com/waitFor`.
 * - provider/pkg/metadata/overrides.go (ReadyCondition, TimeoutDuration): without `pulumi.com/waitFor` an object of
 *   any other kind (every custom resource) is ready at once, unless the provider runs with PULUMI_K8S_AWAIT_ALL=true.
 *   The annotation is a JSON array of strings or one string; each starts with `jsonpath=` or `condition=`, anything
 *   else is an error; several must all hold.
 * - provider/pkg/jsonpath/jsonpath.go (Parse, Matches): `jsonpath={<path>}` (present) or `jsonpath={<path>}=<value>`
 *   (the first selected value, printed, equals `<value>`); one `=` at most outside `==`, no shell quotes, the path in
 *   braces.
 * - provider/pkg/await/condition/custom.go (NewCustom) and kubectl.go (checkCondition): `condition=<Type>` or
 *   `condition=<Type>=<Status>` (default True, both compared case-insensitively) against `.status.conditions`,
 *   ignoring a condition whose observedGeneration (else `.status.observedGeneration`) is behind the object's
 *   generation.
 *
 * What the custom resources' status can reach, by kind:
 * - CloudNativePG v1.30.0 `Cluster` (cloudnative-pg/cloudnative-pg api/v1/cluster_types.go, pkg/resources/status/
 *   transactions.go `SetClusterReadyCondition`): condition `Ready` is True exactly when the phase is "Cluster in
 *   healthy state" (every instance up, after initdb and the standbys' joins), False otherwise; other conditions are
 *   ContinuousArchiving, LastBackupSucceeded, ConsistentSystemID. The status has no observedGeneration.
 * - CloudNativePG v1.30.0 `Pooler` (api/v1/pooler_types.go `PoolerStatus`, internal/controller/pooler_status.go):
 *   no conditions; `phase` is one of active, paused, inactive, failed: inactive while the Cluster or its TLS and
 *   auth secrets are missing (pooler_controller.go `waitForPrerequisites`), then active, written in the same reconcile
 *   that creates the Deployment and before it (`updatePoolerStatus` runs before `updateOwnedObjects`), so active alone
 *   does not mean the Deployment exists; `instances` is the Deployment's `status.replicas` once it does (the controller
 *   owns Deployments, so their changes requeue it), pods created, not pods ready. No field shows PgBouncer ready.
 * - CloudNativePG v1.30.0 `Database` (api/v1/database_types.go `DatabaseStatus`): `applied` true once reconciled.
 * - Barman Cloud plugin v0.13.0 `ObjectStore` (cloudnative-pg/plugin-barman-cloud api/v1/objectstore_types.go):
 *   status holds only recovery windows after backups; it is configuration, in effect once stored.
 * - Istio's configuration kinds: no status istiod writes by default; in effect once admitted.
 */

export interface WaitForCheck {
    kind: "condition" | "jsonpath";
    /** Condition type, or the JSONPath inside the braces. */
    target: string;
    /** Wanted condition status or value; undefined for a JSONPath that must merely select something. */
    value?: string;
}

/** Parses `pulumi.com/waitFor` as the provider does; throws the provider's kind of error. */
export function parseWaitFor(annotation: string): WaitForCheck[] {
    let values: string[];
    try {
        const parsed = JSON.parse(annotation);
        values = Array.isArray(parsed) ? parsed : [annotation];
    } catch {
        values = [annotation];
    }
    if (values.length === 0) throw new Error("at least one condition must be specified");
    return values.map((expr) => {
        if (expr.startsWith("jsonpath=")) return parseJsonPath(expr);
        if (expr.startsWith("condition=")) {
            const body = expr.slice("condition=".length);
            const at = body.indexOf("=");
            return at < 0 ? { kind: "condition", target: body, value: "True" } : { kind: "condition", target: body.slice(0, at), value: body.slice(at + 1) };
        }
        throw new Error(`expected a "jsonpath=" or "condition=" prefix, got ${JSON.stringify(expr)}`);
    });
}

function parseJsonPath(expr: string): WaitForCheck {
    const raw = expr.slice("jsonpath=".length);
    if (raw === "") throw new Error("expected a non-empty JSONPath expression");
    const parts = raw.replace(/==/g, "\u0000").split("=").map((p) => p.replace(/\u0000/g, "=="));
    if (parts.length > 2) throw new Error(`format should be {.path}=value or {.path}, got ${JSON.stringify(raw)}`);
    if (parts.length === 2 && parts[1] === "") throw new Error(`${parts[0]}= requires a value`);
    const path = parts[0];
    if (path.startsWith("'") && path.endsWith("'")) throw new Error(`${path} should omit shell quotes`);
    const braces = /\{\s*(.*?)\s*\}/.exec(path);
    if (!braces) throw new Error(`${path} should be wrapped in brackets { ... }`);
    return { kind: "jsonpath", target: braces[1], value: parts[1] };
}

/** Kinds the provider awaits by itself (awaiters.go), by apiVersion/kind. */
const builtInAwaited = new Set(["apps/v1/Deployment", "apps/v1/StatefulSet", "apps/v1/DaemonSet", "batch/v1/Job", "v1/Service", "v1/Pod", "v1/PersistentVolumeClaim", "networking.k8s.io/v1/Ingress"]);

/** Whether the provider waits for anything beyond the API server's acceptance when it creates the object. */
export function awaitedOnCreate(object: { apiVersion: string; kind: string; annotations?: Record<string, string> }, env: { PULUMI_K8S_AWAIT_ALL?: string } = {}): boolean {
    if (object.annotations?.["pulumi.com/skipAwait"] === "true") return false;
    if (object.annotations?.["pulumi.com/waitFor"]) return true;
    return builtInAwaited.has(`${object.apiVersion}/${object.kind}`) || env.PULUMI_K8S_AWAIT_ALL === "true";
}

/** Seconds the provider waits (TimeoutDuration: customTimeouts, then the annotation, then 10 minutes). */
export function awaitTimeoutSeconds(annotations: Record<string, string> | undefined, customTimeoutSeconds = 0): number {
    if (customTimeoutSeconds) return customTimeoutSeconds;
    const annotated = annotations?.["pulumi.com/timeoutSeconds"];
    return annotated !== undefined && /^-?\d+$/.test(annotated) ? Number(annotated) : 600;
}

/** What a kind's status can show: condition types with their statuses, and top-level status fields with their values. */
export interface StatusModel {
    /** Nothing to wait on: the object is in effect once the API server stores it. */
    configuration?: true;
    conditions?: Record<string, string[]>;
    /**
     * `.status.<field>`: the values it takes, "integer" for a count, or a count that settles at a field of the spec
     * (with its CRD default) and is omitted from the status while 0 (`omitempty`: a JSONPath then selects nothing).
     */
    fields?: Record<string, string[] | "integer" | { settlesAtSpec: string; specDefault: number }>;
}

export const statusModels: Record<string, StatusModel> = {
    "postgresql.cnpg.io/v1/Cluster": {
        conditions: { Ready: ["True", "False"], ContinuousArchiving: ["True", "False"], LastBackupSucceeded: ["True", "False"], ConsistentSystemID: ["True", "False"] },
        fields: { readyInstances: "integer", instances: "integer" },
    },
    // `instances` is the Deployment's status.replicas, and the Deployment's replicas are spec.instances (cloudnative-pg
    // v1.30.0 pkg/specs/pgbouncer/deployments.go; api/v1/pooler_types.go: default 1, status field `omitempty`).
    "postgresql.cnpg.io/v1/Pooler": {
        fields: { phase: ["active", "paused", "inactive", "failed"], instances: { settlesAtSpec: "instances", specDefault: 1 } },
    },
    "postgresql.cnpg.io/v1/ScheduledBackup": { configuration: true },
    // `applied` (api/v1/database_types.go `DatabaseStatus`, a *bool printed true/false): the primary's instance manager
    // sets it true once CREATE/ALTER DATABASE succeeded, false with a message when it failed (an owner role not there
    // yet), and tries again (internal/management/controller/database_controller.go, common.go `markAsReady`).
    "postgresql.cnpg.io/v1/Database": { fields: { applied: ["true", "false"] } },
    "barmancloud.cnpg.io/v1/ObjectStore": { configuration: true },
    // Cilium's operator validates each policy (operator/pkg/networkpolicy, `validate-network-policy`, default true) and
    // sets its condition Valid to True ("Policy validation succeeded") or False with the error.
    "cilium.io/v2/CiliumNetworkPolicy": { conditions: { Valid: ["True", "False"] } },
    "security.istio.io/v1/PeerAuthentication": { configuration: true },
    "security.istio.io/v1/AuthorizationPolicy": { configuration: true },
    "networking.istio.io/v1/ServiceEntry": { configuration: true },
    "networking.istio.io/v1/Gateway": { configuration: true },
    "networking.istio.io/v1/VirtualService": { configuration: true },
};

/**
 * Why a check can never hold on this kind's status, or undefined when upstream's status can satisfy it. `spec` is the
 * object's spec as rendered, for the status fields that settle at one of its fields.
 */
export function unsatisfiable(model: StatusModel, check: WaitForCheck, spec: Record<string, unknown> = {}): string | undefined {
    if (check.kind === "condition") {
        const statuses = model.conditions?.[Object.keys(model.conditions ?? {}).find((t) => t.toLowerCase() === check.target.toLowerCase()) ?? ""];
        if (!statuses) return `no condition ${check.target} in the status`;
        return statuses.some((s) => s.toLowerCase() === check.value!.toLowerCase()) ? undefined : `condition ${check.target} is never ${check.value}`;
    }
    const field = /^\.status\.([A-Za-z]+)$/.exec(check.target)?.[1];
    const values = field === undefined ? undefined : model.fields?.[field];
    if (!values) return `${check.target} is not a status field of this kind`;
    if (check.value === undefined) return undefined;
    if (values === "integer") return /^\d+$/.test(check.value) ? undefined : `${check.target} is a count, never ${check.value}`;
    if (!Array.isArray(values)) {
        const settled = spec[values.settlesAtSpec] ?? values.specDefault;
        if (check.value === "0") return `${check.target} is omitted from the status at 0 and selects nothing`;
        return check.value === String(settled) ? undefined : `${check.target} settles at spec.${values.settlesAtSpec} (${settled}), never ${check.value}`;
    }
    return values.includes(check.value) ? undefined : `${check.target} is one of ${values.join(", ")}, never ${check.value}`;
}
