/**
 * Which access-log formats the mesh's proxies use, from istiod's meshConfig and the Telemetry objects: a pure model.
 *
 * Read at istio/istio 1.30.3:
 * - `pilot/pkg/model/telemetry.go` (Telemetries.AccessLogging): with no Telemetry access logging and no
 *   `defaultProviders.accessLogging`, proxies fall back to the legacy `accessLogFile` (pilot/pkg/networking/core/
 *   accesslog.go); otherwise the providers named (by a Telemetry, else by the defaults) log, each in its own format.
 * - `pilot/pkg/model/telemetry_logging.go`: a provider's `logFormat.labels` is its JSON format, its `text` a text
 *   format; without either, and for the legacy `accessLogFile` without `accessLogFormat`, Istio's built-in format,
 *   whose path operator is `%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%` (with the query string) in both JSON and text. The
 *   built-in provider `envoy` logs in that format too.
 */

/** The path operator of Istio 1.30.3's built-in access-log formats (text and JSON). */
export const builtinPathOperator = "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%";

export interface AccessLogFormat {
    source: string;
    /** The format's operators and literals, flattened: a JSON format's values, or a text format. */
    text: string;
}

const builtin = (source: string): AccessLogFormat => ({ source: `${source} (Istio's built-in format)`, text: builtinPathOperator });

function providerFormat(mesh: Record<string, any>, name: string): AccessLogFormat {
    if (name === "envoy") return builtin("provider envoy");
    const provider = (mesh.extensionProviders ?? []).find((p: any) => p.name === name);
    if (!provider) throw new Error(`Telemetry names provider ${name}, which meshConfig.extensionProviders does not define`);
    const file = provider.envoyFileAccessLog;
    if (!file) throw new Error(`provider ${name} is not an envoyFileAccessLog (not modelled)`);
    const format = file.logFormat ?? {};
    if (format.labels) return { source: `provider ${name}`, text: Object.values(format.labels).join(" ") };
    if (format.text) return { source: `provider ${name}`, text: format.text };
    return builtin(`provider ${name}`);
}

/** The formats the mesh's proxies log in, given istiod's meshConfig and the Telemetry specs of the root namespace. */
export function effectiveAccessLogFormats(mesh: Record<string, any>, rootTelemetries: Record<string, any>[]): AccessLogFormat[] {
    const named = rootTelemetries.flatMap((t) => (t.accessLogging ?? []).flatMap((l: any) => (l.disabled ? [] : (l.providers ?? []).map((p: any) => p.name))));
    const defaults: string[] = mesh.defaultProviders?.accessLogging ?? [];
    if (rootTelemetries.some((t) => (t.accessLogging ?? []).length > 0) || defaults.length > 0) {
        const names = named.length > 0 ? named : defaults;
        return [...new Set(names)].map((name) => providerFormat(mesh, name));
    }
    if (!mesh.accessLogFile) return [];
    return [mesh.accessLogFormat ? { source: "meshConfig.accessLogFormat", text: mesh.accessLogFormat } : builtin("meshConfig.accessLogFile")];
}

/** Envoy operators that log a request's path with its query string. */
export const pathWithQueryOperators = [/%REQ\((X-ENVOY-ORIGINAL-PATH\?)?:PATH\)%/, /%REQ\(:PATH\)%/];
