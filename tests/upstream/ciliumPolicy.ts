/**
 * What Cilium accepts, and does, with the CiliumNetworkPolicy korthweb renders for egress by name. No npm package
 * carries Cilium's models and its repository is too large to bring here, so the fields are modelled from Cilium's
 * policy types as stored in the search index (cilium/cilium main, read December 2026):
 * - pkg/policy/api/rule_validation.go (`Rule.Sanitize`, `EgressRule.sanitize`, `PortRule.sanitize`,
 *   `L7Rules.sanitize`, `PortProtocol.sanitize`): exactly one of endpointSelector and nodeSelector; at most one kind
 *   of peer per egress rule (toCIDR, toCIDRSet, toEndpoints, toEntities, toServices, toFQDNs, toGroups), toServices
 *   without toPorts; a port is a number 0-65535 or an IANA service name, with protocol TCP, UDP, SCTP or ANY; DNS
 *   rules need their ports listed and are the only L7 rules allowed on UDP or ANY; one L7 protocol per port rule;
 *   an egress rule's presence makes the endpoint default-deny in that direction.
 * - pkg/policy/api/fqdn.go (`FQDNSelector.sanitize`): matchName of `[-a-zA-Z0-9_.]`, matchPattern of the same and `*`.
 * - The CRD (pkg/k8s/apis/cilium.io/client/crds/v2/ciliumnetworkpolicies.yaml) types ports as strings.
 * pkg/fqdn/matchpattern: `*` stands for DNS characters within one label (no dot); `*` alone matches every name.
 * Behaviour (docs.cilium.io, "DNS Based" policies, and fqdn.go's `GetAsEndpointSelectors`): toFQDNs allows the IPs
 * that the selected pods' own DNS answers carried for the names, as Cilium's DNS proxy saw them; so the pods' DNS must
 * go through a `dns` rule of a policy that selects them. With `matchPattern: "*"` every name still resolves.
 * Policies add up: traffic any policy of the endpoint allows (CiliumNetworkPolicy or NetworkPolicy) is allowed.
 */

const l3Keys = ["toCIDR", "toCIDRSet", "toEndpoints", "toEntities", "toServices", "toFQDNs", "toGroups"];
const egressKeys = new Set([...l3Keys, "toPorts", "toRequires", "icmps", "authentication"]);
const protocols = new Set(["TCP", "UDP", "SCTP", "ANY"]);
const ianaServiceName = /^(?=.{1,15}$)(?=.*[a-z])[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/** Problems Cilium's agent (and its CRD) would report for a CiliumNetworkPolicy; empty when accepted. */
export function ciliumPolicyProblems(object: { apiVersion: string; kind: string; spec: Record<string, any> }): string[] {
    const problems: string[] = [];
    if (object.apiVersion !== "cilium.io/v2" || object.kind !== "CiliumNetworkPolicy") return [`${object.apiVersion}/${object.kind}: not a CiliumNetworkPolicy`];
    const spec = object.spec;
    if ((spec.endpointSelector === undefined) === (spec.nodeSelector === undefined)) problems.push("rule must have exactly one of EndpointSelector or NodeSelector");
    for (const [i, rule] of (spec.egress ?? []).entries()) {
        const at = `egress[${i}]`;
        for (const key of Object.keys(rule)) if (!egressKeys.has(key)) problems.push(`${at}: unknown field ${key}`);
        const peers = l3Keys.filter((k) => (rule[k] ?? []).length > 0);
        if (peers.length > 1) problems.push(`${at}: Combining ${peers[0]} and ${peers[1]} is not supported yet`);
        if (peers.includes("toServices") && (rule.toPorts ?? []).length > 0) problems.push(`${at}: Combining toServices and ToPorts is not supported yet`);
        for (const selector of rule.toFQDNs ?? []) {
            if (selector.matchName !== undefined && !/^[-a-zA-Z0-9_.]+$/.test(selector.matchName)) problems.push(`${at}: invalid characters in MatchName ${selector.matchName}`);
            if (selector.matchPattern !== undefined && !/^[-a-zA-Z0-9_.*]+$/.test(selector.matchPattern)) problems.push(`${at}: invalid characters in MatchPattern ${selector.matchPattern}`);
            if (selector.matchName === undefined && selector.matchPattern === undefined) problems.push(`${at}: an FQDN selector without matchName or matchPattern`);
        }
        for (const cidr of rule.toCIDR ?? []) if (!/^\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?$/.test(cidr)) problems.push(`${at}: unable to parse CIDR ${cidr}`);
        for (const portRule of rule.toPorts ?? []) {
            const dnsRules = portRule.rules?.dns ?? [];
            const l7Kinds = Object.keys(portRule.rules ?? {}).filter((k) => (portRule.rules[k] ?? []).length > 0);
            if (l7Kinds.length > 1) problems.push(`${at}: multiple L7 protocol rule types specified in single rule`);
            const ports: Record<string, any>[] = portRule.ports ?? [];
            if (dnsRules.length > 0 && ports.length === 0) problems.push(`${at}: Port 53 must be specified for DNS rules`);
            for (const p of ports) {
                if (typeof p.port !== "string") problems.push(`${at}: port ${JSON.stringify(p.port)} is not a string (the CRD's type)`);
                else if (!ianaServiceName.test(p.port) && !(/^\d+$/.test(p.port) && Number(p.port) <= 65535)) problems.push(`${at}: unable to parse port ${p.port}`);
                if (p.protocol !== undefined && !protocols.has(p.protocol)) problems.push(`${at}: invalid protocol ${p.protocol}`);
                if (l7Kinds.length > 0 && dnsRules.length === 0 && p.protocol !== "TCP") problems.push(`${at}: L7 rules can only apply to TCP except for DNS rules`);
            }
            for (const dns of dnsRules) {
                if (dns.matchPattern !== undefined && !/^[-a-zA-Z0-9_.*]+$/.test(dns.matchPattern)) problems.push(`${at}: invalid characters in DNS MatchPattern ${dns.matchPattern}`);
            }
        }
    }
    return problems;
}

/** Whether a CiliumNetworkPolicy lets its pods learn addresses by name: a DNS rule its pods' lookups go through. */
export function proxiesDns(spec: Record<string, any>, dnsPorts: number[]): boolean {
    return (spec.egress ?? []).some((rule: Record<string, any>) =>
        (rule.toPorts ?? []).some(
            (portRule: Record<string, any>) =>
                (portRule.rules?.dns ?? []).some((d: Record<string, string>) => d.matchPattern === "*") &&
                dnsPorts.every((port) => (portRule.ports ?? []).some((p: Record<string, string>) => p.port === String(port) && (p.protocol ?? "ANY") === "ANY")),
        ),
    );
}

/** The names a CiliumNetworkPolicy's toFQDNs admits `host` by, on `port`. */
export function admitsName(spec: Record<string, any>, host: string, port: number): boolean {
    const matches = (selector: Record<string, string>) =>
        selector.matchName?.toLowerCase() === host.toLowerCase() ||
        selector.matchPattern === "*" ||
        (selector.matchPattern !== undefined && new RegExp(`^${selector.matchPattern.replace(/\./g, "\\.").replace(/\*/g, "[-a-zA-Z0-9_]*")}$`, "i").test(host));
    return (spec.egress ?? []).some(
        (rule: Record<string, any>) =>
            (rule.toFQDNs ?? []).some(matches) &&
            (rule.toPorts ?? []).some((portRule: Record<string, any>) => (portRule.ports ?? []).some((p: Record<string, string>) => p.port === String(port))),
    );
}
