/**
 * What a sidecar reports when its workload's TCP connection ends, as istio/proxy 1.30.3 (the proxy of Istio 1.30.3)
 * does it: source/extensions/filters/http/istio_stats/istio_stats.cc, `IstioStatsFilter::reportHelper(end_stream)`
 * adds `istio_tcp_connections_closed_total` with the filter's tags; `IstioStatsFilter()` tags an outbound listener's
 * filter (Reporter::ClientSidecar) `reporter="source"`; `populatePeerInfo` tags the client side with
 * `source_workload` = the proxy's own workload name and `source_workload_namespace` = its namespace;
 * `populateFlagsAndConnectionSecurity` tags `response_flags` with Envoy's short form of the connection's response
 * flags (`ResponseFlagUtils::toShortString`: "-" for none, "UF" for an upstream connection failure, "UH" for no healthy
 * upstream, several joined by ","). The envoy-stats PodMonitor adds `namespace` and `pod_name` from the pod
 * (components/platform/observability.ts). A model of those labels, not the proxy.
 */
export interface TcpConnection {
    /** The workload name the injector gives the proxy: the Deployment's name. */
    workload: string;
    namespace: string;
    /** Envoy's response flags of the connection, short form (empty: none). */
    flags: string[];
}

export function tcpConnectionClosedSeries(connection: TcpConnection, pod: string): Record<string, string> {
    return {
        __name__: "istio_tcp_connections_closed_total",
        reporter: "source",
        source_workload: connection.workload,
        source_workload_namespace: connection.namespace,
        request_protocol: "tcp",
        response_flags: connection.flags.length > 0 ? connection.flags.join(",") : "-",
        namespace: connection.namespace,
        pod_name: pod,
    };
}

/** Whether a series' labels satisfy the `{...}` label matchers (=, !=, =~, !~; regexes anchored, as PromQL's) after `metric`. */
export function selectorMatches(expr: string, metric: string, labels: Record<string, string>): boolean {
    const at = expr.indexOf(`${metric}{`);
    if (at < 0) throw new Error(`${metric}{...} not in ${expr}`);
    const body = expr.slice(at + metric.length + 1, expr.indexOf("}", at));
    const matchers = [...body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)];
    return (
        labels.__name__ === metric &&
        matchers.every(([, name, op, raw]) => {
            const value = labels[name] ?? "";
            const pattern = raw.replace(/\\\\/g, "\\");
            switch (op) {
                case "=":
                    return value === pattern;
                case "!=":
                    return value !== pattern;
                case "=~":
                    return new RegExp(`^(?:${pattern})$`).test(value);
                default:
                    return !new RegExp(`^(?:${pattern})$`).test(value);
            }
        })
    );
}
