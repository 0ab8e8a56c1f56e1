/**
 * A managed PostgreSQL outside the cluster (`database.engine: "external"`): what Orthanc needs to reach it over TLS
 * verified end to end, and the tenant's walls opened to it and nothing else.
 *
 * How the PostgreSQL plugins connect (orthanc-server/orthanc-databases, read on the mirror
 * orthanc-mirrors/orthanc-databases at the 5.0 release commit 3b035c0 and on branch OrthancPostgreSQL-10.3, commit
 * 7f22af5, the plugin in image 26.8.1; Framework/PostgreSQL/PostgreSQLParameters.cpp and PostgreSQLDatabase.cpp, the
 * same in both):
 * - With `ConnectionUri` in the `PostgreSQL` section, the plugin hands that string to libpq's `PQconnectdb` as it is,
 *   and ignores `Host`, `Port`, `Database`, `Username`, `Password` and `EnableSsl` (and, in 10.3, `ApplicationName`).
 * - Without it, the plugin writes a keyword string itself, with `sslmode=require` when `EnableSsl` is true and
 *   `sslmode=disable` otherwise: encryption, but no check of who the server is (the plugin's own comment says so).
 *   Nothing else of libpq's TLS settings can be given that way.
 * So verifying the server (libpq's `sslmode=verify-full`: the chain against a CA file, the name against the
 * certificate) is possible only through `ConnectionUri`, in 5.0 as in 10.3; tests/integration/external.test.ts
 * proves it on 5.0.
 *
 * The TLS session runs from Orthanc's libpq to the server. The Istio sidecar sees a TCP connection to a MESH_EXTERNAL
 * service and passes it through (no Istio mutual TLS towards a host without a sidecar).
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { ExternalDatabaseConfig, TenantConfig } from "../../config/schema";
import { TenantNames } from "../../naming/tenantNames";
import type { DatabaseEndpoint, DatabaseWalls } from "../endpoint";
import { NamedSpec, tcp } from "../../k8s/walls";

/** The server's settings without the password, which callers pass on its own (it is a Pulumi secret). */
export type ExternalServer = Omit<ExternalDatabaseConfig, "password">;

/** Where the server's CA lives in the tenant namespace and in Orthanc's pod. A CA certificate is public: a ConfigMap. */
export const externalCa = {
    configMapName: "orthanc-database-ca",
    key: "ca.crt",
    volumeName: "database-ca",
    /** Outside `/run/secrets` and `/etc/orthanc`, whose `*.json` files the image merges into its configuration. */
    mountDirectory: "/etc/korthweb/database-ca",
} as const;

/** The CA file as Orthanc's pod sees it. */
export const externalCaFile = `${externalCa.mountDirectory}/${externalCa.key}`;

/** libpq gives up on a connection attempt after this many seconds (it waits on TCP otherwise, minutes when dropped). */
export const externalConnectTimeoutSeconds = 10;

/** Percent-encoding for a URI path or query value, keeping `/` readable (libpq decodes %XX everywhere). */
const encodePath = (value: string) => encodeURIComponent(value).replace(/%2F/g, "/");

/**
 * libpq's connection URI for Orthanc: the server verified against the CA file and `host`, as the certificate names it
 * (`sslmode=verify-full`). The password is percent-encoded: any character is safe in it, and a `$` cannot be taken
 * for a variable by the image's envsubst.
 */
export function externalConnectionUri(server: ExternalServer, password: string, caFile: string = externalCaFile): string {
    const credentials = `${encodeURIComponent(server.user)}:${encodeURIComponent(password)}`;
    const query = [`sslmode=verify-full`, `sslrootcert=${encodePath(caFile)}`, `connect_timeout=${externalConnectTimeoutSeconds}`].join("&");
    return `postgresql://${credentials}@${server.host}:${server.port}/${encodePath(server.database)}?${query}`;
}

/** The `PostgreSQL` settings the owner merges over the section `orthancConfig` renders. */
export interface ExternalPostgresSettings {
    /** Supersedes Host, Port, Database, Username, Password and EnableSsl in both plugin versions. */
    ConnectionUri: string;
    /** Ignored while ConnectionUri is set; true so that the section never reads as "no TLS". */
    EnableSsl: true;
}

/** What Orthanc's pod needs to verify the managed server: the CA, where it is mounted. Independent of the password. */
export interface ExternalCaMount {
    /** The CA file's path in the pod (what `sslrootcert` names). */
    caFile: string;
    /** The CA object the component creates in the tenant namespace. */
    caConfigMap: { metadata: { name: string; namespace: string }; data: Record<string, string> };
    /** Add to the Orthanc pod's volumes. */
    volume: k8s.types.input.core.v1.Volume;
    /** Add to the Orthanc container's volume mounts. */
    volumeMount: k8s.types.input.core.v1.VolumeMount;
}

export interface ExternalDatabaseTls extends ExternalCaMount {
    /** Merge into the rendered configuration: `PostgreSQL: { ...rendered.PostgreSQL, ...postgresql }`. */
    postgresql: ExternalPostgresSettings;
}

/**
 * Everything Orthanc's configuration and pod need for TLS to the managed server, as plain data. Call it where the
 * password is known (inside an `apply` of the endpoint's password) and keep the result secret: the URI holds it.
 */
export function externalDatabaseTls(namespace: string, server: ExternalServer, password: string): ExternalDatabaseTls {
    return { ...externalCaMount(namespace, server), postgresql: { ConnectionUri: externalConnectionUri(server, password), EnableSsl: true } };
}

/** The CA part of `externalDatabaseTls`, which needs no password. */
export function externalCaMount(namespace: string, server: Pick<ExternalServer, "caCertificate">): ExternalCaMount {
    return {
        caFile: externalCaFile,
        caConfigMap: externalCaConfigMap(namespace, server),
        volume: {
            name: externalCa.volumeName,
            configMap: { name: externalCa.configMapName, items: [{ key: externalCa.key, path: externalCa.key }], defaultMode: 0o444 },
        },
        volumeMount: { name: externalCa.volumeName, mountPath: externalCa.mountDirectory, readOnly: true },
    };
}

export function externalCaConfigMap(namespace: string, server: Pick<ExternalServer, "caCertificate">): ExternalCaMount["caConfigMap"] {
    return { metadata: { name: externalCa.configMapName, namespace }, data: { [externalCa.key]: server.caCertificate } };
}

const ipv4Pattern = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function ipv4ToNumber(address: string): number | undefined {
    const match = ipv4Pattern.exec(address);
    if (!match) {
        return undefined;
    }
    const octets = match.slice(1).map(Number);
    return octets.every((octet) => octet <= 255) ? octets.reduce((value, octet) => value * 256 + octet, 0) : undefined;
}

/** Whether an IPv4 address lies in a CIDR block. */
export function ipv4InCidr(address: string, cidr: string): boolean {
    const [network, bits] = cidr.split("/");
    const a = ipv4ToNumber(address);
    const n = ipv4ToNumber(network);
    const prefix = Number(bits);
    if (a === undefined || n === undefined || !(prefix >= 0 && prefix <= 32)) {
        return false;
    }
    const size = 2 ** (32 - prefix);
    return Math.floor(a / size) === Math.floor(n / size);
}

/** The ServiceEntry's name in the tenant namespace. */
export const externalServiceEntryName = "external-database";

/**
 * The mesh's registry entry for the server, so that REGISTRY_ONLY lets Orthanc's connection out. The port is TCP:
 * the sidecar forwards the bytes of libpq's own TLS session. `addresses` makes the sidecar match exactly those
 * destinations on that port (a TCP entry without addresses would claim the port for every destination).
 * - A DNS name: resolution NONE. istiod refuses CIDR `addresses` with any resolution but NONE or STATIC (istio 1.30.3
 *   pkg/config/validation/validation.go, ValidateServiceEntry; tests/upstream/istioValidation.ts), so DNS is not
 *   possible. With NONE the sidecar forwards the connection to the address libpq connected to (its original
 *   destination): libpq resolves the name itself, and the connection leaves only if that address lies in `addresses`,
 *   the same blocks the NetworkPolicy opens. The host name still verifies the server (libpq's verify-full).
 * - An IPv4 address: resolution STATIC with that address as the endpoint; the entry's host is a name of the tenant's
 *   own, as for modality addresses (security.ts), since `hosts` are names.
 */
export function externalServiceEntrySpec(names: TenantNames, server: ExternalServer): Record<string, unknown> {
    const ports = [{ number: server.port, name: `tcp-postgresql-${server.port}`, protocol: "TCP" }];
    const common = { addresses: [...server.addresses], ports, location: "MESH_EXTERNAL", exportTo: ["."] };
    if (ipv4ToNumber(server.host) !== undefined) {
        return { hosts: [`database.external.${names.namespace}.internal`], ...common, resolution: "STATIC", endpoints: [{ address: server.host }] };
    }
    return { hosts: [server.host], ...common, resolution: "NONE" };
}

/**
 * The external engine's part of the tenant's walls: Orthanc's egress to exactly `addresses` on `port`, and the
 * ServiceEntry. No NetworkPolicy of its own (nothing of the engine runs in the namespace) and no AuthorizationPolicy:
 * Istio enforces those on the receiving workload's proxy, and the server has none; Orthanc's own inbound rules do not
 * change. What leaves is bounded by the NetworkPolicy and the ServiceEntry, and who answers is proven by the server's
 * certificate, which libpq checks.
 */
export function externalWalls(names: TenantNames, _orthancPods: Record<string, string>, server: ExternalServer): DatabaseWalls {
    if (ipv4ToNumber(server.host) !== undefined && !server.addresses.some((cidr) => ipv4InCidr(server.host, cidr))) {
        throw new Error(`database.external.host ${server.host} is outside database.external.addresses (${server.addresses.join(", ")})`);
    }
    const entry: NamedSpec = { namespace: names.namespace, name: externalServiceEntryName, spec: externalServiceEntrySpec(names, server) };
    return {
        orthancEgress: [{ to: server.addresses.map((cidr) => ({ ipBlock: { cidr } })), ports: [tcp(server.port)] }],
        network: [],
        authorization: [],
        serviceEntries: [entry],
    };
}

export interface ExternalDatabaseArgs {
    tenant: TenantConfig;
    /** The tenant namespace, created by the tenant. */
    namespace: string;
    /** What the CA object waits for: the namespace, the tenant's walls. */
    dependsOn: pulumi.Input<pulumi.Resource>[];
}

/**
 * The tenant's managed PostgreSQL: nothing runs in the cluster for it. The component puts the server's CA in the
 * tenant namespace and hands the tenant the endpoint; the password comes from the stack configuration (set as a
 * secret, refused in plain text by the loader) and stays a secret.
 */
export class ExternalDatabase extends pulumi.ComponentResource {
    readonly endpoint: DatabaseEndpoint;

    constructor(name: string, args: ExternalDatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
        super("korthweb:database:ExternalDatabase", name, {}, opts);
        const external = args.tenant.database.external;
        if (args.tenant.database.engine !== "external" || external === undefined) {
            throw new Error(`tenant ${args.tenant.name}: ExternalDatabase needs database.engine "external" and database.external`);
        }
        const ca = externalCaMount(args.namespace, external);
        const caConfigMap = new k8s.core.v1.ConfigMap(
            `${name}-ca`,
            { metadata: ca.caConfigMap.metadata, data: ca.caConfigMap.data },
            { parent: this, dependsOn: args.dependsOn },
        );
        this.endpoint = {
            host: external.host,
            port: external.port,
            database: external.database,
            user: external.user,
            password: pulumi.secret(external.password),
            ready: [caConfigMap],
            orthanc: {
                postgresql: (password) => ({ ...externalDatabaseTls(args.namespace, external, password).postgresql }),
                pod: { volumes: [ca.volume], volumeMounts: [ca.volumeMount] },
            },
        };
        this.registerOutputs({ host: this.endpoint.host });
    }
}
