/**
 * What istiod's validating webhook refuses, for the Istio kinds korthweb renders (ServiceEntry, Gateway,
 * VirtualService, AuthorizationPolicy, PeerAuthentication). istiod runs these checks on every create and update of an
 * Istio object (the `istio-validator` webhook the base/istiod charts install); a refused object is never created and
 * everything that waits on it never deploys. CRD schemas (what @kubernetes-models/istio checks) catch types and enums,
 * not these rules.
 *
 * Modelled from istio/istio at tag 1.30.3, by function:
 * - pkg/config/validation/validation.go: ValidateServiceEntry, ValidateGateway (validateServer, validateServerPort,
 *   validateServerBind, validateTLSOptions), ValidateVirtualService (validateGatewayNames, validateTCPRoute,
 *   validateTCPMatch, validateRouteDestinations, validateDestination, validatePortSelector, validateWeight),
 *   ValidateAuthorizationPolicy (validateOneOfSelectorType, validateWorkloadSelector, `when` conditions through
 *   security.ValidateAttribute, the warning for DENY rules with only HTTP attributes), ValidatePeerAuthentication,
 *   ValidateTelemetry (validateTelemetryAccessLogging, validateTelemetryProviders),
 *   validateExportTo, validateWorkloadEntry (STATIC endpoints), ValidatePortName, ValidateProtocol.
 * - pkg/config/validation/virtualservice.go: validateHTTPRoute (destinations, timeout, response header operations
 *   with ValidateHTTPHeaderOperationName and ValidateHTTPHeaderValue from validation.go; the HTTP features korthweb
 *   does not use are refused as "not modelled", so that a new use is noticed and modelled).
 * - pkg/config/validation/agent/validation.go: ValidatePort, ValidateFQDN, ValidateDNS1123Labels,
 *   ValidateWildcardDomain, ValidatePartialWildCard, ValidateNamespaceSlashWildcardHostname, ValidateIPSubnet,
 *   ValidateIPAddress, ValidateDuration.
 * - pkg/config/labels/instance.go (IsDNS1123Label, IsWildcardDNS1123Label), pkg/config/protocol/instance.go (Parse,
 *   IsTLS, IsHTTP, IsTCP), pkg/config/security/security.go (ValidatePorts, ValidateIPs, CheckEmptyValues),
 *   pkg/config/visibility/visibility.go (Instance.Validate).
 * Warnings (which the webhook returns without refusing) are reported apart from errors.
 *
 * One rule is Envoy's, not the webhook's: `verifyCertificateHash` entries are hex SHA-256 digests (the Gateway CRD's
 * description in manifests/charts/base/files/crd-all.gen.yaml at 1.30.3, and Envoy's CertificateValidationContext,
 * api/envoy/extensions/transport_sockets/tls/v3/common.proto, which takes them with or without colons); istiod passes
 * them through unchecked and a malformed one would reject the gateway's listener instead.
 */

export interface IstioObject {
    apiVersion: string;
    kind: string;
    metadata: { name: string; namespace: string; annotations?: Record<string, string> };
    spec: Record<string, any>;
}

export interface AdmissionResult {
    errors: string[];
    warnings: string[];
}

const dns1123Label = /^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const wildcardPrefix = /^(\*|(\*|\*-)?[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)$/;

export const isDns1123Label = (value: string) => value.length <= 63 && dns1123Label.test(value);
const isWildcardDns1123Label = (value: string) => value.length <= 63 && wildcardPrefix.test(value);

/** protocol.Parse: case-insensitive; anything else is UnsupportedProtocol. */
const protocols: Record<string, string> = {
    tcp: "TCP",
    udp: "UDP",
    grpc: "GRPC",
    "grpc-web": "GRPC-Web",
    http: "HTTP",
    http_proxy: "HTTP_PROXY",
    http2: "HTTP2",
    https: "HTTPS",
    tls: "TLS",
    mongo: "Mongo",
    redis: "Redis",
    mysql: "MySQL",
};
export const parseProtocol = (value: string | undefined): string => protocols[(value ?? "").toLowerCase()] ?? "Unsupported";
const isTls = (p: string) => p === "HTTPS" || p === "TLS";
const isHttp = (p: string) => ["HTTP", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-Web"].includes(p);
const isTcp = (p: string) => ["TCP", "HTTPS", "TLS", "Mongo", "Redis", "MySQL"].includes(p);

const ipv4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
/** netip.ParseAddr, for the IPv4 and plain IPv6 forms korthweb could write. */
export function isIpAddress(value: string): boolean {
    if (ipv4.test(value)) return true;
    return /^[0-9a-fA-F:]+$/.test(value) && value.includes(":") && (value.match(/::/g) ?? []).length <= 1;
}

/** agent.ValidateIPSubnet: a CIDR (netip.ParsePrefix, which accepts host bits) or an address. */
function validateIpSubnet(value: string): string | undefined {
    if ((value.match(/\//g) ?? []).length === 1) {
        const [address, bits] = value.split("/");
        const max = address.includes(":") ? 128 : 32;
        return isIpAddress(address) && /^\d+$/.test(bits) && Number(bits) <= max ? undefined : `${value} is not a valid CIDR block`;
    }
    return isIpAddress(value) ? undefined : `${value} is not a valid IP`;
}

const validatePort = (port: unknown): string | undefined =>
    Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65535 ? undefined : `port number ${port} must be in the range 1..65535`;

function dns1123Preconditions(name: string): string | undefined {
    if (name.length > 255) return `domain name "${name}" too long (max 255)`;
    if (name.length === 0) return "empty domain name not allowed";
    return undefined;
}

function validateDns1123Labels(domain: string): string | undefined {
    const parts = domain.split(".");
    if (/^[0-9]+$/.test(parts[parts.length - 1])) return `domain name "${domain}" invalid (top level domain cannot be all-numeric)`;
    for (const [i, label] of parts.entries()) {
        if (i === parts.length - 1 && label === "") return undefined;
        if (!isDns1123Label(label)) return `domain name "${domain}" invalid (label "${label}" invalid)`;
    }
    return undefined;
}

/** agent.ValidateFQDN: no wildcard at all. */
export const validateFqdn = (fqdn: string) => dns1123Preconditions(fqdn) ?? validateDns1123Labels(fqdn);

/** agent.ValidateWildcardDomain: a wildcard only in the first label. */
export function validateWildcardDomain(domain: string): string | undefined {
    const pre = dns1123Preconditions(domain);
    if (pre) return pre;
    const [first, rest] = [domain.split(".")[0], domain.includes(".") ? domain.slice(domain.indexOf(".") + 1) : undefined];
    if (!isWildcardDns1123Label(first)) return `domain name "${domain}" invalid (label "${first}" invalid)`;
    return rest === undefined ? undefined : validateDns1123Labels(rest);
}

const validatePartialWildcard = (host: string) =>
    host.includes("*") && host.length !== 1 && !host.startsWith("*.") ? `partial wildcard "${host}" not allowed` : undefined;

/** agent.ValidateNamespaceSlashWildcardHostname for a Gateway server's host (isGateway true, no Gateway API). */
function validateGatewayServerHost(hostname: string): string[] {
    const errors: string[] = [];
    const slash = hostname.indexOf("/");
    let name = hostname;
    if (slash >= 0) {
        const namespace = hostname.slice(0, slash);
        name = hostname.slice(slash + 1);
        if (namespace === "" || name === "") errors.push("config namespace and dnsName in host entry cannot be empty");
        if (namespace !== "*" && namespace !== "." && !isDns1123Label(namespace)) errors.push(`invalid namespace value "${namespace}" in gateway`);
    }
    if (name !== "*" && !name.includes(".")) errors.push("short names (non FQDN) are not allowed");
    const domainError = validateWildcardDomain(name);
    if (domainError && !isIpAddress(name)) errors.push(domainError);
    const partial = validatePartialWildcard(name);
    if (partial) errors.push(partial);
    return errors;
}

/** validateExportTo: `.`, `*`, a namespace, or (ServiceEntry only) `~`; no duplicates; `*` and `~` alone. */
function validateExportTo(namespace: string, exportTo: string[] | undefined, isServiceEntry: boolean): string[] {
    if (!exportTo || exportTo.length === 0) return [];
    const errors: string[] = [];
    const seen = new Set<string>();
    for (const entry of exportTo) {
        const key = entry === "." ? namespace : entry;
        if (seen.has(key)) {
            errors.push(key !== entry ? `duplicate entries in exportTo: . and current namespace ${namespace}` : `duplicate entries in exportTo for entry ${entry}`);
        } else if (isServiceEntry && entry === "~") {
            seen.add(key);
        } else if (key === "~") {
            errors.push("exportTo ~ (none) is not allowed for Istio configuration objects");
        } else if (key !== "*" && !isDns1123Label(key)) {
            errors.push("only .,*, or a valid DNS 1123 label is allowed as exportTo entry");
        } else {
            seen.add(key);
        }
    }
    if (seen.has("*") && exportTo.length > 1) errors.push("cannot have both public (*) and non-public exportTo values for a resource");
    if (seen.has("~") && exportTo.length > 1) errors.push("cannot export service entry to no one (~) and someone");
    return errors;
}

const present = <T>(...values: (T | undefined)[]) => values.filter((v): v is T => v !== undefined);

/** ValidateServiceEntry. `resolution` defaults to NONE (the enum's zero value). */
export function validateServiceEntry(object: IstioObject): AdmissionResult {
    const spec = object.spec;
    const errors: string[] = [];
    const warnings: string[] = [];
    const hosts: string[] = spec.hosts ?? [];
    const addresses: string[] = spec.addresses ?? [];
    const endpoints: Record<string, any>[] = spec.endpoints ?? [];
    const ports: Record<string, any>[] = spec.ports ?? [];
    const resolution: string = spec.resolution ?? "NONE";
    if (spec.workloadSelector && spec.endpoints) errors.push("only one of WorkloadSelector or Endpoints is allowed in Service Entry");
    if (hosts.length === 0) errors.push("service entry must have at least one host");
    for (const hostname of hosts) {
        if (hostname === "*") {
            errors.push(`invalid host ${hostname}`);
        } else {
            errors.push(...present(validateWildcardDomain(hostname)));
            if (resolution !== "DYNAMIC_DNS") warnings.push(...present(validatePartialWildcard(hostname)));
        }
    }
    errors.push(...present(...addresses.map(validateIpSubnet)));
    if (addresses.some((a) => a.includes("/")) && resolution !== "NONE" && resolution !== "STATIC") {
        errors.push("CIDR addresses are allowed only for NONE/STATIC resolution types");
    }
    const names = new Set<string>();
    const numbers = new Set<number>();
    for (const port of ports) {
        if (names.has(port.name)) errors.push(`service entry port name "${port.name}" already defined`);
        if (numbers.has(port.number)) errors.push(`service entry port ${port.number} already defined`);
        names.add(port.name);
        numbers.add(port.number);
        if (port.targetPort) errors.push(...present(validatePort(port.targetPort)));
        if (addresses.length === 0 && (!port.protocol || port.protocol === "TCP")) {
            warnings.push("addresses are required for ports serving TCP (or unset) protocol when IP Autoallocation is not enabled");
        }
        if (!isDns1123Label(port.name ?? "")) errors.push(`invalid port name: ${port.name}`);
        if (port.protocol && parseProtocol(port.protocol) === "Unsupported") errors.push(`unsupported protocol: ${port.protocol}`);
        errors.push(...present(validatePort(port.number)));
    }
    const endpointPorts = (endpoint: Record<string, any>) => {
        for (const [name, port] of Object.entries<number>(endpoint.ports ?? {})) {
            if (!names.has(name)) errors.push(`endpoint port ${port} is not defined by the service entry`);
            errors.push(...present(isDns1123Label(name) ? undefined : `invalid port name: ${name}`, validatePort(port)));
        }
    };
    switch (resolution) {
        case "NONE":
            if (endpoints.length !== 0) errors.push("no endpoints should be provided for resolution type none");
            break;
        case "STATIC":
            for (const endpoint of endpoints) {
                if (!endpoint.address) errors.push("address is required");
                else if (!isIpAddress(endpoint.address) && !endpoint.address.startsWith("unix://")) errors.push(`endpoint address "${endpoint.address}" is not a valid IP address`);
                endpointPorts(endpoint);
            }
            break;
        case "DNS":
        case "DNS_ROUND_ROBIN":
            if (endpoints.length === 0) {
                const bad = hosts.map(validateFqdn).find((e) => e !== undefined);
                if (bad) errors.push(`hosts must be FQDN or contain only prefix wildcards if no endpoints are provided for resolution mode ${resolution}, ${bad}`);
            }
            if (resolution === "DNS_ROUND_ROBIN" && endpoints.length > 1) errors.push(`there must only be 0 or 1 endpoint for resolution mode ${resolution}`);
            for (const endpoint of endpoints) {
                if (!isIpAddress(endpoint.address ?? "") && validateFqdn(endpoint.address ?? "")) errors.push(`endpoint address "${endpoint.address}" is not a valid FQDN or an IP address`);
                endpointPorts(endpoint);
            }
            if (addresses.length > 0 && hosts.length > 1 && ports.some((p) => isTcp(parseProtocol(p.protocol)))) {
                warnings.push("service entry can not have more than one host specified simultaneously with address and tcp port");
            }
            break;
        case "DYNAMIC_DNS":
            if (hosts.some((h) => !h.startsWith("*"))) errors.push(`host must be wildcarded for resolution mode ${resolution}`);
            if (addresses.length !== 0) errors.push(`addresses cannot be set for resolution type ${resolution}`);
            if (endpoints.length !== 0) errors.push(`endpoints cannot be set for resolution type ${resolution}`);
            if (ports.some((p) => !["HTTP", "TLS", "GRPC", "HTTP2"].includes(parseProtocol(p.protocol)))) {
                errors.push(`only HTTP, TLS, GRPC, and HTTP2 protocols are supported for resolution type ${resolution}`);
            }
            break;
        default:
            errors.push(`unsupported resolution type ${resolution}`);
    }
    if (resolution !== "NONE" && hosts.length > 1 && ports.some((p) => !isHttp(parseProtocol(p.protocol)) && !isTls(parseProtocol(p.protocol)))) {
        errors.push("multiple hosts provided with non-HTTP, non-TLS ports");
    }
    errors.push(...validateExportTo(object.metadata.namespace, spec.exportTo, true));
    return { errors, warnings };
}

/** validateTLSOptions, for the fields korthweb can set. */
function validateServerTls(tls: Record<string, any>): string[] {
    const errors: string[] = [];
    const mode = tls.mode ?? "PASSTHROUGH";
    if (mode === "ISTIO_MUTUAL") {
        for (const field of ["serverCertificate", "privateKey", "caCertificates", "credentialName"]) {
            if (tls[field]) errors.push(`ISTIO_MUTUAL TLS cannot have associated ${field}`);
        }
        if ((tls.tlsCertificates ?? []).length > 0 || (tls.credentialNames ?? []).length > 0) errors.push("ISTIO_MUTUAL TLS cannot have associated certificates");
        return errors;
    }
    const sources = [tls.serverCertificate && tls.privateKey, tls.credentialName, (tls.credentialNames ?? []).length > 0, (tls.tlsCertificates ?? []).length > 0].filter(Boolean);
    if (sources.length > 1) errors.push("only one of credential_name, credential_names, server_certificate/private_key, tls_certificates should be specified");
    const terminating = ["SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"].includes(mode);
    // A terminating server whose certificates come from credentialName(s) is done here: the CRL checks below are
    // never reached for it.
    if (terminating && (tls.credentialName || (tls.credentialNames ?? []).length > 0)) {
        return errors;
    }
    if (terminating) {
        const prefix = mode === "SIMPLE" ? "SIMPLE TLS" : "MUTUAL TLS";
        if (mode !== "SIMPLE" && !tls.caCertificates) errors.push(`${prefix} requires a client CA bundle`);
        if (!tls.serverCertificate) errors.push(`${prefix} requires a server certificate`);
        if (!tls.privateKey) errors.push(`${prefix} requires a private key`);
    }
    if (tls.caCrl && tls.credentialName) errors.push("CRL is not supported with credentialName. CRL has to be specified in the credential");
    if (tls.caCrl && mode === "SIMPLE") errors.push("CRL is not supported with SIMPLE TLS");
    return errors;
}

/** Envoy, not istiod: a client certificate hash is a hex SHA-256, with or without colons. */
const sha256Hex = /^([0-9a-fA-F]{64}|([0-9a-fA-F]{2}:){31}[0-9a-fA-F]{2})$/;

/** ValidateGateway (classic Istio Gateway; not converted from the Gateway API). */
export function validateGateway(object: IstioObject): AdmissionResult {
    const errors: string[] = [];
    if (!isDns1123Label(object.metadata.name)) errors.push(`invalid gateway name: "${object.metadata.name}"`);
    const servers: Record<string, any>[] = object.spec.servers ?? [];
    if (servers.length === 0) errors.push("gateway must have at least one server");
    const portNames = new Set<string>();
    for (const server of servers) {
        const hosts: string[] = server.hosts ?? [];
        if (hosts.length === 0) errors.push("server config must contain at least one host");
        hosts.forEach((h) => errors.push(...validateGatewayServerHost(h)));
        const port = server.port;
        let portValid = false;
        if (!port) {
            errors.push("port is required");
        } else {
            const before = errors.length;
            if (parseProtocol(port.protocol) === "Unsupported") errors.push(`invalid protocol "${port.protocol}"`);
            errors.push(...present(validatePort(port.number)));
            if (port.targetPort > 0) errors.push("targetPort has no impact on Gateways");
            if (!port.name) errors.push("port name must be set");
            portValid = errors.length === before;
            if (portNames.has(port.name)) errors.push(`port names in servers must be unique: duplicate name ${port.name}`);
            portNames.add(port.name);
        }
        if (server.bind && !isIpAddress(server.bind)) errors.push(`${server.bind} is not a valid IP`);
        if (server.tls) errors.push(...validateServerTls(server.tls));
        if (portValid) {
            const protocol = parseProtocol(port.protocol);
            if (isTls(protocol) && !server.tls) errors.push("server must have TLS settings for HTTPS/TLS protocols");
            else if (!isTls(protocol) && server.tls) {
                const redirectOnly = Object.keys(server.tls).every((k) => k === "httpsRedirect");
                if (!isHttp(protocol) || !redirectOnly) errors.push(isHttp(protocol) ? "server cannot have TLS settings for plain text HTTP ports" : "server cannot have TLS settings for non HTTPS/TLS ports");
            }
        }
        for (const hash of server.tls?.verifyCertificateHash ?? []) {
            if (!sha256Hex.test(hash)) errors.push(`verifyCertificateHash ${JSON.stringify(hash)} is not a hex SHA-256 (Envoy)`);
        }
    }
    return { errors, warnings: [] };
}

/** validateGatewayNames. */
function validateGatewayNames(names: string[]): string[] {
    const errors: string[] = [];
    for (const name of names) {
        const slash = name.indexOf("/");
        if (slash < 0) {
            errors.push(...present(validateFqdn(name)));
            continue;
        }
        const [namespace, gateway] = [name.slice(0, slash), name.slice(slash + 1)];
        if (!namespace || !gateway) errors.push("config namespace and gateway name cannot be empty");
        if (!isDns1123Label(namespace)) errors.push(`invalid value for namespace: "${namespace}"`);
        if (!isDns1123Label(gateway)) errors.push(`invalid value for gateway name: "${gateway}"`);
    }
    return errors;
}

/** validateDestination and validateWeight for one route destination. */
function validateRouteDestination(route: Record<string, any>): string[] {
    const errors: string[] = [];
    const destination = route.destination;
    if (!destination) return ["destination is required"];
    if (destination.host === "*") errors.push(`invalid destination host ${destination.host}`);
    else errors.push(...present(validateWildcardDomain(destination.host ?? "")));
    if (destination.subset !== undefined && !isDns1123Label(destination.subset)) errors.push(`subset name is invalid: ${destination.subset}`);
    if (destination.port) errors.push(...present(validatePort(destination.port.number)));
    if ((route.weight ?? 0) < 0) errors.push(`weight ${route.weight} < 0`);
    return errors;
}

function validateDestinations(routes: Record<string, any>[]): string[] {
    const errors = routes.flatMap(validateRouteDestination);
    if (routes.length > 1 && routes.reduce((sum, r) => sum + (r.weight ?? 0), 0) === 0) errors.push("total destination weight = 0");
    return errors;
}

/** Go's time.ParseDuration units, for the route timeout (ValidateDuration: >= 1ms, whole milliseconds). */
function durationMs(value: string): number | undefined {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value);
    if (!match) return undefined;
    return Number(match[1]) * { ms: 1, s: 1000, m: 60000, h: 3600000 }[match[2] as "ms" | "s" | "m" | "h"];
}

const modelledHttpRouteFields = new Set(["name", "match", "route", "timeout", "headers"]);

/**
 * validateHTTPRoute's header manipulation (virtualservice.go): ValidateHTTPHeaderOperationName (not empty, not Host,
 * no ":" prefix) for response headers, ValidateHTTPHeaderValue (no control characters; `%` starts one of Envoy's
 * %VARIABLE% substitutions, `%%` is a literal: the model refuses any other `%`). Request headers are not modelled.
 */
function validateHeaderOperations(headers: Record<string, any>): string[] {
    const errors: string[] = [];
    if (headers.request !== undefined) errors.push("request header operations not modelled here");
    const response = headers.response ?? {};
    const names = [...Object.keys(response.set ?? {}), ...Object.keys(response.add ?? {}), ...(response.remove ?? [])];
    for (const name of names) {
        if (name === "") errors.push("header name cannot be empty");
        else if (name.toLowerCase() === "host") errors.push(`invalid header "${name}": cannot set Host header`);
        else if (name.startsWith(":")) errors.push(`invalid header "${name}": header cannot have ":" prefix`);
    }
    for (const value of [...Object.values<string>(response.set ?? {}), ...Object.values<string>(response.add ?? {})]) {
        if (/[\u0000-\u0008\u000A-\u001F\u007F]/.test(value)) errors.push(`header value configuration ${value} is invalid`);
        else if (value.replace(/%%/g, "").includes("%")) errors.push(`header value ${value}: % substitutions not modelled here`);
    }
    return errors;
}

/** ValidateVirtualService, for hosts, gateways, exportTo, TCP routes and the HTTP route fields korthweb uses. */
export function validateVirtualService(object: IstioObject): AdmissionResult {
    const spec = object.spec;
    const errors: string[] = [];
    const hosts: string[] = spec.hosts ?? [];
    const gateways: string[] = spec.gateways ?? [];
    if (hosts.length === 0) {
        if (gateways.length) errors.push("delegate virtual service must have no gateways specified");
        if ((spec.tls ?? []).length) errors.push("delegate virtual service must have no tls route specified");
        if ((spec.tcp ?? []).length) errors.push("delegate virtual service must have no tcp route specified");
    }
    errors.push(...validateGatewayNames(gateways));
    const appliesToMesh = gateways.length === 0 || gateways.includes("mesh");
    for (const host of hosts) {
        const error = validateWildcardDomain(host);
        if (error) {
            if (!isIpAddress(host)) errors.push(error);
        } else if (appliesToMesh && host === "*") {
            errors.push("wildcard host * is not allowed for virtual services bound to the mesh gateway");
        }
    }
    hosts.forEach((h, i) => hosts.slice(i + 1).forEach((o) => o === h && errors.push(`duplicate hosts in virtual service: ${h} & ${o}`)));
    if (!(spec.http ?? []).length && !(spec.tcp ?? []).length && !(spec.tls ?? []).length) errors.push("http, tcp or tls must be provided in virtual service");
    for (const http of spec.http ?? []) {
        const unmodelled = Object.keys(http).filter((k) => !modelledHttpRouteFields.has(k));
        if (unmodelled.length) errors.push(`HTTP route fields not modelled here: ${unmodelled.join(", ")}`);
        errors.push(...validateDestinations(http.route ?? []));
        if (http.headers !== undefined) errors.push(...validateHeaderOperations(http.headers));
        if (http.timeout !== undefined) {
            const ms = durationMs(http.timeout);
            if (ms === undefined || ms < 1) errors.push("duration must be greater than 1ms");
            else if (!Number.isInteger(ms)) errors.push("only durations to ms precision are supported");
        }
    }
    for (const tcp of spec.tcp ?? []) {
        for (const match of tcp.match ?? []) {
            (match.destinationSubnets ?? []).forEach((s: string) => errors.push(...present(validateIpSubnet(s))));
            if (match.port) errors.push(...present(validatePort(match.port)));
            errors.push(...validateGatewayNames(match.gateways ?? []));
        }
        if (!(tcp.route ?? []).length) errors.push("TCP route is required");
        errors.push(...validateDestinations(tcp.route ?? []));
    }
    if ((spec.tls ?? []).length) errors.push("TLS routes not modelled here");
    errors.push(...validateExportTo(object.metadata.namespace, spec.exportTo, false));
    return { errors, warnings: [] };
}

/** validateWorkloadSelector. */
function validateSelector(selector: Record<string, any> | undefined): AdmissionResult {
    if (!selector) return { errors: [], warnings: [] };
    const errors: string[] = [];
    const labels = selector.matchLabels ?? {};
    for (const [k, v] of Object.entries<string>(labels)) {
        if (k === "") errors.push(`empty key is not supported in selector: "${k}=${v}"`);
        if (k.includes("*") || v.includes("*")) errors.push(`wildcard is not supported in selector: "${k}=${v}"`);
    }
    return { errors, warnings: Object.keys(labels).length === 0 ? ["workload selector specified without labels"] : [] };
}

const emptyIn = (key: string, values: string[] | undefined) => ((values ?? []).includes("") ? [`empty value not allowed, found in ${key}`] : []);

/** validateOneOfSelectorType and validateWorkloadSelector, shared by policies that select workloads. */
function validateTargetSelection(spec: Record<string, any>): AdmissionResult {
    const selector = validateSelector(spec.selector);
    const errors = [...selector.errors];
    if ([spec.selector !== undefined, spec.targetRef !== undefined, (spec.targetRefs ?? []).length > 0].filter(Boolean).length > 1) {
        errors.push("only one of targetRefs or workloadSelector can be set");
    }
    return { errors, warnings: selector.warnings };
}

/** ValidateAuthorizationPolicy (ALLOW and DENY; CUSTOM is refused by the model: korthweb has no external authorizer). */
export function validateAuthorizationPolicy(object: IstioObject): AdmissionResult {
    const spec = object.spec;
    const selector = validateTargetSelection(spec);
    const errors: string[] = [...selector.errors];
    const action = spec.action ?? "ALLOW";
    if (action === "CUSTOM") errors.push("CUSTOM action not modelled here");
    if (spec.provider && action !== "CUSTOM") errors.push(`\`provider\` must not be with non CUSTOM action, found ${action}`);
    if (action === "DENY" && spec.rules === undefined) errors.push("DENY action without `rules` is meaningless as it will never be triggered");
    const warnings: string[] = [];
    const sourceFields = ["principals", "requestPrincipals", "namespaces", "ipBlocks", "remoteIpBlocks", "serviceAccounts", "trustDomains"];
    const operationFields = ["ports", "methods", "paths", "hosts"];
    (spec.rules ?? []).forEach((rule: Record<string, any> | null, i: number) => {
        if (!rule) {
            errors.push(`\`rule\` must not be nil, found at rule ${i}`);
            return;
        }
        if (rule.from !== undefined && rule.from.length === 0) errors.push(`\`from\` must not be empty, found at rule ${i}`);
        for (const from of rule.from ?? []) {
            const src = from?.source;
            if (!src) {
                errors.push(`\`from.source\` must not be nil, found at rule ${i}`);
                continue;
            }
            const count = (field: string) => (src[field] ?? []).length + (src[`not${field[0].toUpperCase()}${field.slice(1)}`] ?? []).length;
            if (count("principals") + count("namespaces") > 0 && count("serviceAccounts") > 0) {
                errors.push(`cannot set serviceAccounts with namespaces or principals, found at rule ${i}`);
            }
            if (sourceFields.every((f) => count(f) === 0)) errors.push(`\`from.source\` must not be empty, found at rule ${i}`);
            for (const field of ["ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks"]) {
                for (const ip of src[field] ?? []) if (validateIpSubnet(ip)) errors.push(`bad IP address or CIDR range (${ip})`);
            }
            for (const field of Object.keys(src)) errors.push(...emptyIn(field, src[field]));
        }
        if (rule.to !== undefined && rule.to.length === 0) errors.push(`\`to\` must not be empty, found at rule ${i}`);
        for (const to of rule.to ?? []) {
            const op = to?.operation;
            if (!op) {
                errors.push(`\`to.operation\` must not be nil, found at rule ${i}`);
                continue;
            }
            const any = operationFields.some((f) => (op[f] ?? []).length + (op[`not${f[0].toUpperCase()}${f.slice(1)}`] ?? []).length > 0);
            if (!any) errors.push(`\`to.operation\` must not be empty, found at rule ${i}`);
            for (const port of [...(op.ports ?? []), ...(op.notPorts ?? [])]) {
                if (typeof port !== "string" || !/^\d+$/.test(port) || Number(port) > 65535) errors.push(`bad port (${port})`);
            }
            for (const field of Object.keys(op)) errors.push(...emptyIn(field, op[field]));
        }
        for (const condition of rule.when ?? []) {
            if (!condition.key) errors.push("`key` must not be empty");
            else if (!(condition.values ?? []).length && !(condition.notValues ?? []).length) errors.push(`at least one of \`values\` or \`notValues\` must be set for key ${condition.key}`);
            else {
                for (const [field, label] of [["values", "value"], ["notValues", "notValue"]] as const) {
                    const error = validateAttribute(condition.key, condition[field] ?? []);
                    if (error) errors.push(`invalid \`${label}\` for \`key\` ${condition.key}: ${error}`);
                }
            }
        }
        // A DENY rule whose operations are HTTP-only (no ports) refuses every TCP connection under its scope.
        const tcpInFrom = (rule.from ?? []).some((f: any) => f?.source && ["principals", "notPrincipals", "ipBlocks", "notIpBlocks", "namespaces", "notNamespaces", "remoteIpBlocks", "notRemoteIpBlocks", "serviceAccounts", "notServiceAccounts"].some((k) => f.source[k] !== undefined));
        const tcpInTo = (rule.to ?? []).some((t: any) => t?.operation && (t.operation.ports !== undefined || t.operation.notPorts !== undefined));
        const fromExists = (rule.from ?? []).some((f: any) => f?.source);
        const toExists = (rule.to ?? []).some((t: any) => t?.operation);
        if (((fromExists && !toExists && !tcpInFrom) || (toExists && !tcpInTo)) && action === "DENY") {
            warnings.push("configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to the use of only HTTP attributes in a DENY rule; it is recommended to explicitly specify the port");
        }
    });
    return { errors, warnings: [...selector.warnings, ...warnings] };
}

/**
 * security.ValidateAttribute (pkg/config/security/security.go) for the `when` keys the model knows: no empty value, and
 * `request.headers[...]` in the a[b] form (validateMapKey). Other keys are refused as not modelled.
 */
function validateAttribute(key: string, values: string[]): string | undefined {
    if (values.includes("")) return `empty value not allowed, found in ${key}`;
    if (key.startsWith("request.headers")) {
        const open = key.indexOf("[");
        return key.endsWith("]") && open > 0 && open < key.length - 2 ? undefined : `bad key (${key}): should have format a[b]`;
    }
    return `when key ${key} not modelled here`;
}

/** ValidatePeerAuthentication. */
export function validatePeerAuthentication(object: IstioObject): AdmissionResult {
    const spec = object.spec;
    const errors: string[] = [];
    const emptySelector = !spec.selector || Object.keys(spec.selector.matchLabels ?? {}).length === 0;
    const portLevel = spec.portLevelMtls;
    if (emptySelector && portLevel && Object.keys(portLevel).length !== 0) errors.push("mesh/namespace peer authentication cannot have port level mTLS");
    if (portLevel && Object.keys(portLevel).length === 0) errors.push("port level mTLS, if defined, must have at least one element");
    for (const port of Object.keys(portLevel ?? {})) if (validatePort(Number(port))) errors.push("port must be in range 1..65535");
    const selector = validateSelector(spec.selector);
    return { errors: [...errors, ...selector.errors], warnings: selector.warnings };
}

/**
 * ValidateTelemetry (validation.go): one selector kind at most, the workload selector's rules, and every access-log
 * provider named. Metrics, tracing and access-log filters are not modelled: the model refuses them, so they get noticed.
 */
export function validateTelemetry(object: IstioObject): AdmissionResult {
    const spec = object.spec;
    const selector = validateTargetSelection(spec);
    const errors: string[] = [...selector.errors];
    if (spec.metrics !== undefined || spec.tracing !== undefined) errors.push("metrics and tracing not modelled here");
    for (const logging of spec.accessLogging ?? []) {
        if (!logging) continue;
        if (logging.filter !== undefined) errors.push("access-log filters not modelled here");
        if ((logging.providers ?? []).some((p: { name?: string } | null) => !p || !p.name)) errors.push("providers.name may not be empty");
    }
    return { errors, warnings: selector.warnings };
}

const validators: Record<string, (object: IstioObject) => AdmissionResult> = {
    "telemetry.istio.io/Telemetry": validateTelemetry,
    "networking.istio.io/ServiceEntry": validateServiceEntry,
    "networking.istio.io/Gateway": validateGateway,
    "networking.istio.io/VirtualService": validateVirtualService,
    "security.istio.io/AuthorizationPolicy": validateAuthorizationPolicy,
    "security.istio.io/PeerAuthentication": validatePeerAuthentication,
};

/** What istiod's webhook answers for an Istio object; an unmodelled kind is an error, so that a new one is noticed. */
export function istioAdmission(object: IstioObject): AdmissionResult {
    const group = object.apiVersion.split("/")[0];
    const validate = validators[`${group}/${object.kind}`];
    return validate ? validate(object) : { errors: [`${group}/${object.kind}: not modelled`], warnings: [] };
}

export const isIstioApiVersion = (apiVersion: string) => /\.istio\.io\//.test(apiVersion);
