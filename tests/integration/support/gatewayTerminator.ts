/**
 * The tenant's Istio gateway, as far as a client can tell: TLS terminated with the tenant's server certificate, for the
 * DICOM port client certificates from the tenant CA only and, among those, only the configured modalities' own
 * (`verifyCertificateHash`), then plain bytes to Orthanc. Small Node `tls` servers in front of a replica, set up from
 * the program's pure builders (`webGatewaySpec`, `dicomGatewaySpec`) rather than by hand, so a change in what the
 * program tells the gateway shows here.
 *
 * What Envoy does and this does not: routing by host (one tenant per terminator), SNI matching, access logs. The
 * allow-list is checked after the handshake (Node has no hook inside it) and a refused client is disconnected before
 * a byte reaches Orthanc; Envoy fails the handshake itself. Either way the modality gets no association.
 */
import { writeFileSync, readFileSync } from "fs";
import { connect, Socket } from "net";
import { join } from "path";
import { createServer, TLSSocket, SecureVersion } from "tls";
import type { Unwrap } from "@pulumi/pulumi";
import { StackConfig, TenantConfig } from "../../../components/config/schema";
import { dicomGatewaySpec, ingressPorts, webGatewaySpec } from "../../../components/tenant/ingress";
import { tenantNames, TenantNames } from "../../../components/naming/tenantNames";
import { certificateFingerprint } from "../../../components/tenant/pki";
import type { TenantOutputs } from "../../../components/tenant/tenant";
import { Replica } from "./orthanc";
import { buildTestPki, Issued, issueModalityCertificate, TestPki } from "./pki";
import { Resources } from "./processes";
import { startTenantStack, TenantStack, testStackConfig } from "./stack";

/** The `tls` block of an Istio Gateway server, as the builders write it. */
interface GatewayServerTls {
    mode: "SIMPLE" | "MUTUAL";
    credentialName: string;
    caCertCredentialName?: string;
    verifyCertificateHash?: string[];
    minProtocolVersion?: "TLSV1_2" | "TLSV1_3";
}

/** The first server's `tls` block of a Gateway spec the program builds. */
export function gatewayServerTls(spec: Record<string, unknown>): GatewayServerTls {
    const servers = spec.servers as { tls: GatewayServerTls }[];
    return servers[0].tls;
}

/** What the gateway pods would read from their Secrets: the server chain and key, and the DICOM client CA. */
export interface GatewayCredentials {
    keyPem: string;
    /** Server leaf followed by the tenant CA. */
    certificateChainPem: string;
    /** The tenant CA's trust anchor (the `-cacert` Secret); read only with mode MUTUAL. */
    clientCaPem: string;
}

/** Why a connection was let through or not. */
export type TerminatorEvent =
    | { outcome: "accepted"; fingerprint?: string }
    /** `error`: OpenSSL's reason, or the client certificate's verification error code (e.g. UNABLE_TO_GET_ISSUER_CERT_LOCALLY). */
    | { outcome: "refused"; reason: "handshake"; error: string }
    | { outcome: "refused"; reason: "fingerprint not allowed"; fingerprint: string };

export interface Terminator {
    readonly port: number;
    /** Every connection's outcome, in order. */
    readonly events: TerminatorEvent[];
    /** The Node TLS settings derived from the Gateway server (for tests of the derivation itself). */
    readonly settings: { requestCert: boolean; rejectUnauthorized: boolean; minVersion: SecureVersion; verifyCertificateHash: string[] };
    close(): Promise<void>;
}

const minVersions: Record<NonNullable<GatewayServerTls["minProtocolVersion"]>, SecureVersion> = { TLSV1_2: "TLSv1.2", TLSV1_3: "TLSv1.3" };

/** Envoy's reading of verify_certificate_hash entries: hex, with or without colons, in any case. */
function normalizeFingerprint(fingerprint: string): string {
    return fingerprint.replace(/:/g, "").toLowerCase();
}

/**
 * Starts a TLS terminator on a free port of 127.0.0.1 that forwards to `upstreamPort` (released with `resources`).
 *
 * SIMPLE: any client. MUTUAL: a client certificate that chains to `clientCaPem` (Node verifies it in the handshake,
 * as Envoy does with the `-cacert` Secret), then, when `verifyCertificateHash` is not empty, a certificate whose
 * SHA-256 is in it (the semantics tests/upstream/istio.ts `clientAccepted` models).
 */
export async function startTerminator(
    resources: Resources,
    serverTls: GatewayServerTls,
    credentials: GatewayCredentials,
    upstreamPort: number,
): Promise<Terminator> {
    if (serverTls.mode !== "SIMPLE" && serverTls.mode !== "MUTUAL") {
        throw new Error(`TLS mode ${String(serverTls.mode)} is not modelled`);
    }
    const mutual = serverTls.mode === "MUTUAL";
    const settings: Terminator["settings"] = {
        requestCert: mutual,
        rejectUnauthorized: mutual,
        minVersion: minVersions[serverTls.minProtocolVersion ?? "TLSV1_2"],
        verifyCertificateHash: (mutual ? serverTls.verifyCertificateHash ?? [] : []).map(normalizeFingerprint),
    };
    const events: TerminatorEvent[] = [];
    const open = new Set<Socket>();
    const track = (socket: Socket) => {
        open.add(socket);
        socket.once("close", () => open.delete(socket));
    };
    const server = createServer(
        {
            key: credentials.keyPem,
            cert: credentials.certificateChainPem,
            ...(mutual ? { ca: credentials.clientCaPem } : {}),
            requestCert: settings.requestCert,
            rejectUnauthorized: settings.rejectUnauthorized,
            minVersion: settings.minVersion,
        },
        (client: TLSSocket) => {
            track(client);
            // A peer that resets its connection must not crash the suite (an unhandled 'error' event would).
            client.on("error", () => undefined);
            const fingerprint = mutual ? normalizeFingerprint(client.getPeerCertificate().fingerprint256 ?? "") : undefined;
            if (fingerprint !== undefined && settings.verifyCertificateHash.length > 0 && !settings.verifyCertificateHash.includes(fingerprint)) {
                events.push({ outcome: "refused", reason: "fingerprint not allowed", fingerprint });
                client.destroy();
                return;
            }
            events.push({ outcome: "accepted", fingerprint });
            const upstream = connect({ host: "127.0.0.1", port: upstreamPort });
            track(upstream);
            client.pipe(upstream).pipe(client);
            client.on("error", () => upstream.destroy());
            upstream.on("error", () => client.destroy());
            client.on("close", () => upstream.destroy());
            upstream.on("close", () => client.destroy());
        },
    );
    server.on("tlsClientError", (error, socket) => {
        // With rejectUnauthorized, Node ends a handshake whose client certificate failed verification by destroying
        // the socket: the error is a bare "socket hang up", and the verification's reason is on the socket.
        const authorizationError = (socket as TLSSocket & { authorizationError?: string | Error }).authorizationError;
        events.push({ outcome: "refused", reason: "handshake", error: authorizationError ? String(authorizationError) : error.message });
        socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => resolve());
    });
    const address = server.address();
    if (typeof address !== "object" || !address) {
        throw new Error("terminator has no address");
    }
    const close = () =>
        new Promise<void>((resolve) => {
            for (const socket of open) {
                socket.destroy();
            }
            server.close(() => resolve());
        });
    resources.defer(close);
    return { port: address.port, events, settings, close };
}

/** A modality's entry in the `modalityCertificates` stack output (index.ts). */
export interface ModalityCertificateOutput {
    aeTitle: string;
    calledAeTitle: string;
    dicomHost: string;
    dicomPort: number;
    certificate: string;
    privateKey: string;
    serverCa: string;
}

/** The program's stack outputs (index.ts), as `pulumi stack output --json --show-secrets` prints them. */
export interface StackOutputs {
    rootCaCertificate: string;
    tenantEndpoints: Record<string, Unwrap<TenantOutputs>>;
    modalityCertificates: Record<string, Record<string, ModalityCertificateOutput>>;
}

/** Where a tenant's gateway really listens on this machine, as host:port (what DNS and node ports do in a cluster). */
export interface GatewayTarget {
    web: string;
    dicom: string;
}

export interface LocalTenantOptions {
    /** The stack configuration; its first tenant is started. Default: testStackConfig(). */
    stackConfig?: StackConfig;
    /** Orthanc replicas on the tenant's database (default 1); the gateway is in front of the first. */
    replicas?: number;
    /** A certificate hierarchy already built for `stackConfig`'s tenants (RSA 4096 CA keys take seconds). */
    pki?: TestPki | Promise<TestPki>;
}

/** A modality's certificate as the program issues it, on disk for DCMTK. */
export interface LocalModality extends Issued {
    aeTitle: string;
    fingerprint: string;
}

export interface LocalTenant {
    readonly config: StackConfig;
    readonly tenant: TenantConfig;
    readonly names: TenantNames;
    readonly stack: TenantStack;
    readonly replicas: Replica[];
    readonly pki: TestPki;
    /** One certificate per configured modality of the tenant, from its CA: what the DICOM gateway accepts. */
    readonly modalities: Record<string, LocalModality>;
    readonly dicomGateway: Terminator;
    readonly webGateway: Terminator;
    /** The stack outputs, shaped as index.ts exports them, and the file they are written to (mode 0600). */
    readonly outputs: StackOutputs;
    readonly outputsFile: string;
    /** tenant -> where its gateway listens. */
    readonly targets: Record<string, GatewayTarget>;
    /** The environment that points a CLI at this tenant: KORTHWEB_STACK_OUTPUTS and KORTHWEB_SMOKE_TARGETS. */
    readonly env: { KORTHWEB_STACK_OUTPUTS: string; KORTHWEB_SMOKE_TARGETS: string };
}

/** What tenant `tenant`'s gateway pods would serve, from the test PKI. */
export function gatewayCredentials(pki: TestPki, tenant: string): GatewayCredentials {
    const tenantPki = pki.tenants[tenant];
    return {
        keyPem: readFileSync(tenantPki.server.keyFile, "utf8"),
        certificateChainPem: readFileSync(tenantPki.serverChainFile, "utf8"),
        clientCaPem: readFileSync(tenantPki.trustAnchor.certFile, "utf8"),
    };
}

/**
 * Starts a tenant behind its gateway on this machine: PostgreSQL, Orthanc replicas with the rendered configuration,
 * a certificate for each configured modality from the tenant CA, and the two terminators the gateway's Gateway
 * servers describe (HTTPS for web.<tenant>, mutual TLS with the modalities' fingerprints for the DICOM port), plus the
 * stack outputs a deployment would export for it. Everything is released with `resources`.
 */
export async function startLocalTenantBehindGateway(resources: Resources, options: LocalTenantOptions = {}): Promise<LocalTenant> {
    const config = options.stackConfig ?? testStackConfig();
    const tenant = config.tenants[0];
    const names = tenantNames(tenant.name, config.domain);
    const dir = resources.tempDir(`gateway-${tenant.name}`);
    const pkiPromise = options.pki ?? buildTestPki(dir, config.pki, config.domain, config.tenants);
    // The stack starts while OpenSSL makes keys.
    const [pki, stack] = await Promise.all([pkiPromise, startTenantStack(resources, tenant)]);
    const replicas = await Promise.all(
        Array.from({ length: options.replicas ?? 1 }, (_, index) => stack.startReplica(resources, String.fromCharCode(97 + index))),
    );
    const tenantPki = pki.tenants[tenant.name];
    const modalities: Record<string, LocalModality> = Object.fromEntries(
        await Promise.all(
            tenant.modalities.map(async (modality): Promise<[string, LocalModality]> => {
                const issued = await issueModalityCertificate(dir, config.pki, tenantPki.ca, `${tenant.name}-${modality.name}-g${modality.certificateGeneration}`, modality);
                const fingerprint = certificateFingerprint(readFileSync(issued.certFile, "utf8"));
                return [modality.name, { ...issued, aeTitle: modality.aeTitle, fingerprint }];
            }),
        ),
    );

    const credentials = gatewayCredentials(pki, tenant.name);
    const fingerprints = Object.values(modalities).map((modality) => modality.fingerprint);
    const [dicomGateway, webGateway] = await Promise.all([
        startTerminator(resources, gatewayServerTls(dicomGatewaySpec(names, fingerprints)), credentials, replicas[0].dicomPort),
        startTerminator(resources, gatewayServerTls(webGatewaySpec(names)), credentials, replicas[0].httpPort),
    ]);

    const rootCaCertificate = readFileSync(pki.root.certFile, "utf8");
    const outputs: StackOutputs = {
        rootCaCertificate,
        tenantEndpoints: {
            [tenant.name]: {
                namespace: names.namespace,
                gatewayNamespace: names.gatewayNamespace,
                webUrl: `https://${names.webHost}`,
                dicomHost: names.dicomHost,
                dicomPort: ingressPorts.dicomTls,
                ingressAddress: "127.0.0.1",
                nodePorts: {},
                adminUser: stack.admin.user,
                adminPassword: stack.admin.password,
                caCertificate: readFileSync(tenantPki.ca.certFile, "utf8"),
                dicomClientTrustAnchor: credentials.clientCaPem,
                modalities: Object.fromEntries(
                    Object.entries(modalities).map(([name, modality]) => [name, { aeTitle: modality.aeTitle, fingerprint: modality.fingerprint }]),
                ),
            },
        },
        modalityCertificates: {
            [tenant.name]: Object.fromEntries(
                Object.entries(modalities).map(([name, modality]): [string, ModalityCertificateOutput] => [
                    name,
                    {
                        aeTitle: modality.aeTitle,
                        calledAeTitle: tenant.orthanc.aeTitle,
                        dicomHost: names.dicomHost,
                        dicomPort: ingressPorts.dicomTls,
                        certificate: readFileSync(modality.certFile, "utf8"),
                        privateKey: readFileSync(modality.keyFile, "utf8"),
                        serverCa: credentials.clientCaPem,
                    },
                ]),
            ),
        },
    };
    const outputsFile = join(dir, "stack-outputs.json");
    // Keys and the admin password, as `pulumi stack output --show-secrets` would print them.
    writeFileSync(outputsFile, JSON.stringify(outputs, null, 2), { mode: 0o600 });
    const targets = { [tenant.name]: { web: `127.0.0.1:${webGateway.port}`, dicom: `127.0.0.1:${dicomGateway.port}` } };
    return {
        config,
        tenant,
        names,
        stack,
        replicas,
        pki,
        modalities,
        dicomGateway,
        webGateway,
        outputs,
        outputsFile,
        targets,
        env: { KORTHWEB_STACK_OUTPUTS: outputsFile, KORTHWEB_SMOKE_TARGETS: JSON.stringify(targets) },
    };
}
