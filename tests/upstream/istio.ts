/**
 * Istio 1.30 behaviour korthweb relies on for its gateways, modelled from istio/istio at tag 1.30.3:
 * - pilot/pkg/security/model/authentication.go (ApplyCredentialSDSToServerCommonTLSContext): a MUTUAL server's client
 *   CA is `caCertCredentialName` as written, else `<credentialName>-cacert`.
 * - pilot/pkg/xds/sds.go (SecretGen.generate, filterAuthorizedResources) and pilot/pkg/credentials/kube/secrets.go
 *   (GetCaCert, ExtractRoot, GetCertInfo, ExtractCertInfo, Authorize): secrets are read from the namespace of the
 *   gateway pod's own identity, never another namespace for a classic Gateway; a name ending in "-cacert" is read as a
 *   CA bundle (keys `cacert` with `crl`, else `ca.crt` with `ca.crl`) from that secret, or, only if it does not exist,
 *   from the secret without the suffix, and needs no authorization; any other name is read as a certificate and key
 *   (`cert`/`key`, else `tls.crt`/`tls.key`) and only after a SubjectAccessReview: may the pod's service account
 *   `list` `secrets` in its namespace (no object name).
 * - manifests/charts/gateway (templates/role.yaml, _helpers.tpl, service.yaml): with `rbac.enabled` (the default) the
 *   release's service account, named after the release, may get/watch/list every Secret of the release namespace;
 *   pods are labelled app=<release>, istio=<release without "istio-">; `service.type: "None"` creates no Service.
 * - pilot/pkg/model/push_context.go (initGateways, mergeGateways) with PILOT_SCOPE_GATEWAY_TO_NAMESPACE=true: a gateway
 *   pod uses only the Gateway objects of its own namespace whose selector its labels match.
 * - pilot/pkg/model/gateway.go (resolvePorts): when a Service selecting the gateway pod has a port equal to a server's
 *   port number, Envoy listens on that Service port's targetPort; otherwise on the number itself.
 * - authentication.go (ApplyCredentialSDSToServerCommonTLSContext) puts a server's `subjectAltNames`,
 *   `verifyCertificateSpki` and `verifyCertificateHash` in the default part of the combined validation context, beside
 *   the SDS client CA; Envoy (api/envoy/extensions/transport_sockets/tls/v3/common.proto, CertificateValidationContext)
 *   then accepts a client certificate only if it chains to that CA and, when the hash list is not empty, its SHA-256
 *   is in the list. An empty list adds no restriction.
 */
import { PolicyRule, rbacAllows } from "./kubernetes";

export interface SecretLike {
    namespace: string;
    name: string;
    /** Keys present (values are not needed to resolve). */
    keys: string[];
}

export interface GatewayServerTls {
    mode: string;
    credentialName?: string;
    caCertCredentialName?: string;
}

export interface ResolvedServerTls {
    /** Secret that provides the server certificate and key. */
    certificateSecret?: string;
    /** Secret and key that provide the CA client certificates are verified against. */
    clientCa?: { secret: string; key: string; crlKey?: string };
    errors: string[];
}

const caSuffix = "-cacert";

/**
 * What a gateway pod in `podNamespace`, running as `serviceAccount` with `roleRules` in that namespace, gets for one
 * Gateway server's TLS settings.
 */
export function resolveServerTls(
    tls: GatewayServerTls,
    pod: { namespace: string; serviceAccount: string; roleRules: PolicyRule[] },
    secrets: SecretLike[],
): ResolvedServerTls {
    const resolved: ResolvedServerTls = { errors: [] };
    const inNamespace = (name: string) => secrets.find((s) => s.namespace === pod.namespace && s.name === name);
    const authorized = rbacAllows(pod.roleRules, { verb: "list", resource: "secrets" });
    const read = (name: string): { kind: "certificate"; secret: string } | { kind: "ca"; secret: string; key: string; crlKey?: string } | string => {
        if (name.includes("/")) {
            return `${name}: a classic Gateway cannot reference another namespace`;
        }
        if (name.endsWith(caSuffix)) {
            const secret = inNamespace(name) ?? inNamespace(name.slice(0, -caSuffix.length));
            if (!secret) return `${name}: no such secret in ${pod.namespace}`;
            if (secret.keys.includes("cacert")) return { kind: "ca", secret: secret.name, key: "cacert", crlKey: secret.keys.includes("crl") ? "crl" : undefined };
            if (secret.keys.includes("ca.crt")) return { kind: "ca", secret: secret.name, key: "ca.crt", crlKey: secret.keys.includes("ca.crl") ? "ca.crl" : undefined };
            return `${secret.name}: has neither cacert nor ca.crt`;
        }
        if (!authorized) {
            return `${name}: service account ${pod.serviceAccount} may not list secrets in ${pod.namespace}`;
        }
        const secret = inNamespace(name);
        if (!secret) return `${name}: no such secret in ${pod.namespace}`;
        const has = (...keys: string[]) => keys.every((key) => secret.keys.includes(key));
        if (has("cert", "key") || has("tls.crt", "tls.key")) return { kind: "certificate", secret: name };
        return `${name}: read as a certificate and key, but has neither cert/key nor tls.crt/tls.key`;
    };

    if (tls.credentialName) {
        const certificate = read(tls.credentialName);
        if (typeof certificate === "string") resolved.errors.push(certificate);
        else if (certificate.kind === "certificate") resolved.certificateSecret = certificate.secret;
        else resolved.errors.push(`${tls.credentialName}: a CA bundle where a certificate and key belong`);
    }
    if (tls.mode === "MUTUAL") {
        const caName = tls.caCertCredentialName ?? `${tls.credentialName}${caSuffix}`;
        const ca = read(caName);
        if (typeof ca === "string") resolved.errors.push(ca);
        else if (ca.kind === "ca") resolved.clientCa = { secret: ca.secret, key: ca.key, crlKey: ca.crlKey };
        else resolved.errors.push(`${caName}: read as a certificate and key, so the server gets no client CA and refuses every client`);
    }
    return resolved;
}

/** The Role the gateway chart gives its service account in the release namespace (rbac.enabled, the default). */
export function gatewayChartRoleRules(values: Record<string, any>): PolicyRule[] {
    return values.rbac?.enabled === false ? [] : [{ apiGroups: [""], resources: ["secrets"], verbs: ["get", "watch", "list"] }];
}

/** The gateway chart's pod labels, service account and Service type for a release. */
export function gatewayChartObjects(releaseName: string, values: Record<string, any>) {
    return {
        podLabels: { app: values.labels?.app ?? releaseName, istio: values.labels?.istio ?? releaseName.replace(/^istio-/, ""), ...values.labels },
        serviceAccount: values.serviceAccount?.name || releaseName,
        /** `undefined` when the chart creates no Service. */
        serviceType: values.service?.type === "None" ? undefined : (values.service?.type ?? "LoadBalancer"),
    };
}

export interface GatewayObject {
    namespace: string;
    name: string;
    selector: Record<string, string>;
}

/** The Gateway objects a gateway pod serves. */
export function gatewaysServedBy<G extends GatewayObject>(
    pod: { namespace: string; labels: Record<string, string> },
    gateways: G[],
    scopeGatewayToNamespace: boolean,
): G[] {
    return gateways.filter(
        (gateway) =>
            (!scopeGatewayToNamespace || gateway.namespace === pod.namespace) &&
            Object.entries(gateway.selector).every(([key, value]) => pod.labels[key] === value),
    );
}

/** The port Envoy listens on for a Gateway server, given the Services that select the gateway pod. */
export function listenerPort(serverPort: number, servicePorts: { port: number; targetPort: number }[]): number {
    return servicePorts.find((port) => port.port === serverPort)?.targetPort ?? serverPort;
}

export interface ClientCertificate {
    /** The secret whose CA bundle signed it (the model does not verify signatures; the caller states the issuer). */
    issuedUnder: { namespace: string; secret: string };
    fingerprint: string;
}

/** Whether a MUTUAL server accepts a client certificate. */
export function clientAccepted(
    server: { tls: GatewayServerTls & { verifyCertificateHash?: string[] } },
    resolved: ResolvedServerTls,
    podNamespace: string,
    client: ClientCertificate,
): boolean {
    if (!resolved.clientCa || client.issuedUnder.namespace !== podNamespace || client.issuedUnder.secret !== resolved.clientCa.secret) {
        return false;
    }
    const hashes = (server.tls.verifyCertificateHash ?? []).map((hash) => hash.replace(/:/g, "").toLowerCase());
    return hashes.length === 0 || hashes.includes(client.fingerprint.toLowerCase());
}
