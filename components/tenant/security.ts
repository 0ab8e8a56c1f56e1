/**
 * A tenant's two walls: Istio authorization (identity-based, enforced by the sidecars and the gateway) and Kubernetes
 * NetworkPolicies (address-based, enforced by the CNI), in both of the tenant's namespaces. Both say the same thing:
 * clients reach the gateway on its two TLS ports, the gateway reaches Orthanc, Orthanc reaches Pgpool, Pgpool and the
 * PostgreSQL nodes reach each other, and nothing else, in particular nothing from another tenant.
 */
import type * as k8s from "@pulumi/kubernetes";
import { clusterDns, DnsConfig } from "../config/schema";
import { gatewaySelector, gatewayStatusPort, ingressPorts, orthancPorts } from "./ingress";
import { orthancSelector, TenantNames } from "../naming/tenantNames";
import type { DatabaseWalls } from "../data/endpoint";
import { denyByDefault, monitoringNamespaceSelector, NamedSpec, namespaceFloor, namespaceNamed, principal, tcp } from "../k8s/walls";

export interface PolicyContext {
    tenant: string;
    names: TenantNames;
    istioNamespace: string;
    /**
     * Namespace of Prometheus, allowed to scrape the proxies' metrics ports; only when the program creates it
     * (observability on), and then selected by its name and the label the program sets on it.
     */
    monitoringNamespace?: string;
    /** Where Orthanc may open associations (C-MOVE destinations): the configured modalities' addresses. */
    modalityDestinations: ModalityDestination[];
    /** The tenant's database engine's part of both walls. */
    database: DatabaseWalls;
    /** Where pods' DNS queries go (korthweb:kubernetes.dns, resolved by `clusterDns`); the kube-system default when unset. */
    dns?: DnsConfig;
    /**
     * The tenant's gatekeeper (components/identity/identity.ts), when its users sign in: Orthanc's web port then
     * admits the gatekeeper instead of the gateway, which keeps the DICOM port only, and the gateway reaches the
     * gatekeeper. Absent (identity disabled): the gateway reaches Orthanc's web port itself, as before.
     */
    gatekeeper?: WebFront;
}

/** What stands in front of Orthanc's web port besides the tenant's own workloads: its pods, mesh identity and port. */
export interface WebFront {
    podLabels: Record<string, string>;
    principal: string;
    port: number;
    /** The in-cluster Keycloak, when the tenant's realm is there: the gateway routes the realm's paths to its pods. */
    signInPods?: { namespace: string; podLabels: Record<string, string>; port: number };
}

export interface ModalityDestination {
    name: string;
    host: string;
    port: number;
}

/** Modalities that have an address Orthanc sends to. */
export function modalityDestinations(modalities: { name: string; host?: string; port?: number }[]): ModalityDestination[] {
    return modalities.flatMap(({ name, host, port }) => (host !== undefined && port !== undefined ? [{ name, host, port }] : []));
}

/**
 * The mesh allows egress only to services it knows (REGISTRY_ONLY): the database engine's entries (a managed database,
 * object storage for backups) and one per modality address, each visible in the tenant namespace alone.
 */
export function egressServiceEntries(ctx: PolicyContext): NamedSpec[] {
    return [...ctx.database.serviceEntries, ...modalityEntries(ctx)];
}

function modalityEntries(ctx: PolicyContext): NamedSpec[] {
    return ctx.modalityDestinations.map((destination) => ({
        namespace: ctx.names.namespace,
        name: `modality-${destination.name}`,
        spec: {
            hosts: [`${destination.name}.modalities.${ctx.names.namespace}.internal`],
            addresses: [`${destination.host}/32`],
            ports: [{ number: destination.port, name: `tcp-dicom-${destination.port}`, protocol: "TCP" }],
            location: "MESH_EXTERNAL",
            resolution: "STATIC",
            endpoints: [{ address: destination.host }],
            exportTo: ["."],
        },
    }));
}

/** The gateway chart's service account is named after the release. */
export function gatewayPrincipal(names: TenantNames): string {
    return principal(names.gatewayNamespace, names.gatewayRelease);
}

const ports = (...numbers: number[]) => numbers.map(String);

/** An ALLOW policy with no rules matches nothing: every workload of the namespace denies what other policies don't allow. */

export function authorizationPolicies(ctx: PolicyContext): NamedSpec[] {
    const { names } = ctx;
    const tenantNamespace = names.namespace;
    // Who reaches Orthanc's REST API from outside the namespace: the gatekeeper when users sign in, else the gateway.
    const webCaller = ctx.gatekeeper?.principal ?? gatewayPrincipal(names);
    const fromGateway = ctx.gatekeeper
        ? [
              { from: [{ source: { principals: [gatewayPrincipal(names)] } }], to: [{ operation: { ports: ports(orthancPorts.dicom) } }] },
              { from: [{ source: { principals: [ctx.gatekeeper.principal] } }], to: [{ operation: { ports: ports(orthancPorts.http) } }] },
          ]
        : [{ from: [{ source: { principals: [gatewayPrincipal(names)] } }], to: [{ operation: { ports: ports(orthancPorts.http, orthancPorts.dicom) } }] }];
    return [
        denyByDefault(names.gatewayNamespace),
        {
            // Clients outside the mesh reach the gateway only on its two TLS ports.
            namespace: names.gatewayNamespace,
            name: "allow-clients-to-gateway",
            spec: {
                selector: { matchLabels: gatewaySelector(names) },
                action: "ALLOW",
                rules: [{ to: [{ operation: { ports: ports(ingressPorts.https, ingressPorts.dicomTls) } }] }],
            },
        },
        {
            // Cross-site request forgery: a page on another site makes the browser send the user's cached Basic
            // credentials (or, with a later sign-in, cookies) along with a form POST or a no-cors fetch, which Orthanc
            // accepts whatever its Origin. Every method that changes something is refused at the gateway when the
            // browser says the request comes from another site. See `crossSiteWriteRules`.
            namespace: names.gatewayNamespace,
            name: "deny-cross-site-writes",
            spec: { selector: { matchLabels: gatewaySelector(names) }, action: "DENY", rules: crossSiteWriteRules(names.webHost) },
        },
        denyByDefault(tenantNamespace),
        {
            namespace: tenantNamespace,
            name: "allow-gateway-to-orthanc",
            spec: {
                selector: { matchLabels: orthancSelector(ctx.tenant) },
                action: "ALLOW",
                rules: [
                    ...fromGateway,
                    {
                        // The tenant's own workloads, e.g. an operator's job in the namespace.
                        from: [{ source: { namespaces: [tenantNamespace] } }],
                        to: [{ operation: { ports: ports(orthancPorts.http, orthancPorts.dicom) } }],
                    },
                ],
            },
        },
        {
            // What no internet-facing caller may do, whatever its credentials: change a replica's in-memory modalities
            // and peers (Orthanc keeps REST changes until restart), stop or reset it, raise its log level (trace logs
            // carry datasets), run Lua or browse WebDAV. The tenant's own workloads keep these: that is the
            // administrator's path, reached with kubectl, not through the gateway. DENY is evaluated before ALLOW.
            namespace: tenantNamespace,
            name: "deny-gateway-admin-paths",
            spec: {
                selector: { matchLabels: orthancSelector(ctx.tenant) },
                action: "DENY",
                // On the port of the REST API only: on a TCP port (DICOM, 4242) Istio drops a DENY rule's HTTP fields
                // and would refuse every association the gateway forwards (tests/upstream/authorizationPolicy.ts).
                rules: gatewayDeniedOperations.map((operation) => ({
                    from: [{ source: { principals: [webCaller] } }],
                    to: [{ operation: { ...operation, ports: ports(orthancPorts.http) } }],
                })),
            },
        },
        ...ctx.database.authorization,
    ];
}

/**
 * The REST paths refused through the gateway, in Istio's path syntax (exact, `prefix*`, `*suffix`), matched against the
 * normalized path without its query string. Prefixes, because Orthanc routes `/tools/shutdown/` as `/tools/shutdown`.
 * Only PUT and DELETE under /modalities and /peers change a replica's configuration; POST there runs an operation on a
 * configured entry (echo, query, move, OE2's "send to modality"), which sites use and which reaches only configured
 * addresses (the walls), so it stays open. With no peer configurable through the gateway, POST under /peers has no target.
 */
export const gatewayDeniedOperations: { methods?: string[]; paths: string[] }[] = [
    { methods: ["PUT", "DELETE"], paths: ["/modalities*", "/peers*"] },
    { paths: ["/tools/shutdown*", "/tools/reset*", "/tools/log-level*", "/tools/execute-script*", "/webdav*"] },
];

/** Methods that change nothing (RFC 9110 safe methods); every other method counts as a write. */
export const safeMethods = ["GET", "HEAD", "OPTIONS"];

/**
 * The DENY rules against cross-site writes at the tenant's gateway, on its HTTPS port only (on the DICOM port, a TCP
 * chain, Istio would drop the HTTP fields and refuse every association).
 * - A browser that sends `Sec-Fetch-Site` (every current one) is believed: `cross-site` and `same-site` writes are
 *   refused. Same-site matters here: other tenants' web hosts are same-site with this one.
 * - A browser without it (older ones) is judged by `Origin`: present and not this web host over https (any port, for
 *   NodePort access) is refused, `null` included.
 * Requests with neither header (scripts, DICOMweb clients, curl) and same-origin ones (Orthanc Explorer 2, Stone, OHIF)
 * pass. The Origin check is skipped when Sec-Fetch-Site is present: a page whose Referrer-Policy is `no-referrer` sends
 * `Origin: null` on its own same-origin POSTs (Fetch standard, "append a request Origin header").
 * Orthanc's method faking (`GET ...?_method=DELETE`, HttpServer.cpp ExtractMethod) is a write Istio cannot see (paths
 * are matched without the query string): Orthanc's own filter refuses it (orthancConfig.ts, crossSiteFilterLua).
 */
export function crossSiteWriteRules(webHost: string): Record<string, unknown>[] {
    const writes = [{ operation: { ports: ports(ingressPorts.https), notMethods: safeMethods } }];
    const origin = `https://${webHost.toLowerCase()}`;
    return [
        { to: writes, when: [{ key: "request.headers[sec-fetch-site]", values: ["cross-site", "same-site"] }] },
        {
            to: writes,
            when: [
                { key: "request.headers[sec-fetch-site]", notValues: ["*"] },
                { key: "request.headers[origin]", values: ["*"], notValues: [origin, `${origin}:*`] },
            ],
        },
    ];
}

export function networkPolicies(ctx: PolicyContext): NamedSpec<k8s.types.input.networking.v1.NetworkPolicySpec>[] {
    const { names } = ctx;
    const gatewayPods = gatewaySelector(names);
    const orthancPods = orthancSelector(ctx.tenant);
    const tenantNamespace = names.namespace;
    const gatewayNamespace = names.gatewayNamespace;
    // Both namespaces start from the same floor: nothing in or out but names, istiod and Prometheus' scrapes.
    const floor = (namespace: string): NamedSpec<k8s.types.input.networking.v1.NetworkPolicySpec>[] => [
        // Every pod resolves names and fetches its mesh configuration and certificates from istiod; nothing else.
        ...namespaceFloor(namespace, ctx.istioNamespace, ctx.dns ?? clusterDns({})),
        ...(ctx.monitoringNamespace === undefined
            ? []
            : [
                  {
                      // Prometheus scrapes the proxies' merged metrics (15020) and Envoy's own (15090); nothing else.
                      namespace,
                      name: "allow-monitoring-scrapes",
                      spec: {
                          podSelector: {},
                          policyTypes: ["Ingress"],
                          ingress: [{ from: [monitoringNamespaceSelector(ctx.monitoringNamespace)], ports: [tcp(15020), tcp(15090)] }],
                      },
                  },
              ]),
    ];
    return [
        ...floor(gatewayNamespace),
        {
            namespace: gatewayNamespace,
            name: "allow-clients-to-gateway",
            spec: {
                podSelector: { matchLabels: gatewayPods },
                policyTypes: ["Ingress", "Egress"],
                ingress: [{ ports: [tcp(ingressPorts.https), tcp(ingressPorts.dicomTls), tcp(gatewayStatusPort)] }],
                egress: ctx.gatekeeper
                    ? [
                          { to: [{ ...namespaceNamed(tenantNamespace), podSelector: { matchLabels: orthancPods } }], ports: [tcp(orthancPorts.dicom)] },
                          { to: [{ ...namespaceNamed(tenantNamespace), podSelector: { matchLabels: ctx.gatekeeper.podLabels } }], ports: [tcp(ctx.gatekeeper.port)] },
                          ...(ctx.gatekeeper.signInPods
                              ? [{ to: [{ ...namespaceNamed(ctx.gatekeeper.signInPods.namespace), podSelector: { matchLabels: ctx.gatekeeper.signInPods.podLabels } }], ports: [tcp(ctx.gatekeeper.signInPods.port)] }]
                              : []),
                      ]
                    : [{ to: [{ ...namespaceNamed(tenantNamespace), podSelector: { matchLabels: orthancPods } }], ports: [tcp(orthancPorts.http), tcp(orthancPorts.dicom)] }],
            },
        },
        ...floor(tenantNamespace),
        {
            namespace: tenantNamespace,
            name: "allow-orthanc",
            spec: {
                podSelector: { matchLabels: orthancPods },
                policyTypes: ["Ingress", "Egress"],
                ingress: ctx.gatekeeper
                    ? [
                          // The tenant's gateway on the DICOM port only: the web port is the gatekeeper's, a workload of
                          // the namespace like the tenant's own.
                          { from: [{ ...namespaceNamed(gatewayNamespace), podSelector: { matchLabels: gatewayPods } }], ports: [tcp(orthancPorts.dicom)] },
                          { from: [{ podSelector: {} }], ports: [tcp(orthancPorts.http), tcp(orthancPorts.dicom)] },
                      ]
                    : [
                          {
                              // The tenant's gateway, and the tenant's own workloads.
                              from: [{ ...namespaceNamed(gatewayNamespace), podSelector: { matchLabels: gatewayPods } }, { podSelector: {} }],
                              ports: [tcp(orthancPorts.http), tcp(orthancPorts.dicom)],
                          },
                      ],
                egress: ctx.database.orthancEgress,
            },
        },
        ...(ctx.modalityDestinations.length === 0
            ? []
            : [
                  {
                      // C-MOVE: Orthanc opens associations to the configured modality addresses, and nowhere else.
                      namespace: tenantNamespace,
                      name: "allow-orthanc-to-modalities",
                      spec: {
                          podSelector: { matchLabels: orthancPods },
                          policyTypes: ["Egress"],
                          egress: ctx.modalityDestinations.map((destination) => ({
                              to: [{ ipBlock: { cidr: `${destination.host}/32` } }],
                              ports: [tcp(destination.port)],
                          })),
                      },
                  },
              ]),
        ...ctx.database.network,
    ];
}
