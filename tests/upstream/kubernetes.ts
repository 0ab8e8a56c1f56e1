/**
 * Kubernetes behaviour the program relies on, modelled from kubernetes/kubernetes:
 * - pkg/kubelet/envvars/envvars.go (FromServices, makeLinkVariables): unless a pod sets `enableServiceLinks: false`,
 *   the kubelet gives every container, for each Service of the pod's namespace that has a cluster IP, the variables
 *   <NAME>_SERVICE_HOST, <NAME>_SERVICE_PORT, <NAME>_SERVICE_PORT_<PORT NAME>, <NAME>_PORT and
 *   <NAME>_PORT_<port>_<PROTO>{,_PROTO,_PORT,_ADDR}, where NAME is the Service name upper-cased with `-` and `.` as `_`.
 * - pkg/apis/rbac/v1/evaluation_helpers.go (ResourceNameMatches): a rule with resourceNames matches only a request that
 *   names one of them; a request without a name (list) matches only rules without resourceNames.
 */

export interface ServiceLike {
    name: string;
    type?: string;
    clusterIP?: string;
    ports: { name?: string; port: number; protocol?: string }[];
}

export function serviceLinkVariables(services: ServiceLike[]): string[] {
    return services
        .filter((service) => service.clusterIP !== "None")
        .flatMap((service) => {
            const prefix = envName(service.name);
            const names = [`${prefix}_SERVICE_HOST`, `${prefix}_SERVICE_PORT`];
            for (const port of service.ports) {
                if (port.name) names.push(`${prefix}_SERVICE_PORT_${envName(port.name)}`);
            }
            service.ports.forEach((port, index) => {
                if (index === 0) names.push(`${prefix}_PORT`);
                const portPrefix = `${prefix}_PORT_${port.port}_${(port.protocol ?? "TCP").toUpperCase()}`;
                names.push(portPrefix, `${portPrefix}_PROTO`, `${portPrefix}_PORT`, `${portPrefix}_ADDR`);
            });
            return names;
        });
}

function envName(name: string): string {
    const upper = name.replace(/[.-]/g, "_").toUpperCase();
    return /^[0-9]/.test(upper) ? `_${upper}` : upper;
}

export interface PolicyRule {
    apiGroups?: string[];
    resources?: string[];
    verbs?: string[];
    resourceNames?: string[];
}

/**
 * Whether one RBAC rule allows a request (pkg/apis/rbac/v1/evaluation_helpers.go: VerbMatches, APIGroupMatches,
 * ResourceMatches, ResourceNameMatches): each of its verbs, groups and resources equals the request's or is `*`, and a
 * rule with resourceNames allows only a request naming one of them (none of list or watch, which name nothing).
 */
export function ruleAllows(rule: PolicyRule, request: { verb: string; apiGroup: string; resource: string; name?: string }): boolean {
    const matches = (items: string[] | undefined, requested: string) => (items ?? []).some((item) => item === "*" || item === requested);
    return (
        matches(rule.verbs, request.verb) &&
        matches(rule.apiGroups, request.apiGroup) &&
        matches(rule.resources, request.resource) &&
        (!rule.resourceNames?.length || (request.name !== undefined && rule.resourceNames.includes(request.name)))
    );
}

/** Whether RBAC rules allow a request on a core-group resource; `name` is absent for list and watch. */
export function rbacAllows(rules: PolicyRule[], request: { verb: string; resource: string; name?: string }): boolean {
    // Rules written without apiGroups here mean the core group.
    return rules.some((rule) => ruleAllows({ apiGroups: [""], ...rule }, { ...request, apiGroup: "" }));
}
