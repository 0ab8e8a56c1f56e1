/**
 * Whether a series' labels satisfy the `{...}` label matchers (=, !=, =~, !~; regexes anchored, as PromQL's) after
 * `metric`: a rule's selector against the series an exporter serves. (This file once also modelled the sidecar's
 * istio_tcp_connections_closed_total, istio/proxy 1.30.3, which IdentityProviderUnreachable no longer reads.)
 */
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
