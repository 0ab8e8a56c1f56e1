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
import { ExternalAuditConfig, ExternalDatabaseConfig, TenantConfig } from "../../config/schema";
import { gatekeeperSelector } from "../../identity/names";
import { auditDatabaseStatements } from "../../identity/gatekeeper/server";
import { auditRetentionSql, identifier, signsInThroughGatekeeper } from "./auditDatabase";
import { TenantNames } from "../../naming/tenantNames";
import type { DatabaseEndpoint, DatabaseWalls } from "../endpoint";
import { NamedSpec, tcp } from "../../k8s/walls";

/** The server's settings without the password, which callers pass on its own (it is a Pulumi secret). */
export type ExternalServer = Omit<ExternalDatabaseConfig, "password" | "audit">;

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
export function externalServiceEntrySpec(
    names: TenantNames,
    server: ExternalServer,
    /** The mesh's name for a server given by address (the audit server's differs from Orthanc's). */
    internalHost = `database.external.${names.namespace}.internal`,
): Record<string, unknown> {
    const ports = [{ number: server.port, name: `tcp-postgresql-${server.port}`, protocol: "TCP" }];
    const common = { addresses: [...server.addresses], ports, location: "MESH_EXTERNAL", exportTo: ["."] };
    if (ipv4ToNumber(server.host) !== undefined) {
        return { hosts: [internalHost], ...common, resolution: "STATIC", endpoints: [{ address: server.host }] };
    }
    return { hosts: [server.host], ...common, resolution: "NONE" };
}

/** A server given by address must lie in the addresses its NetworkPolicy opens; the settings are named in the error. */
function requireHostInAddresses(server: ExternalServer, hostSetting: string, addressesSetting: string): void {
    if (ipv4ToNumber(server.host) !== undefined && !server.addresses.some((cidr) => ipv4InCidr(server.host, cidr))) {
        throw new Error(`${hostSetting} ${server.host} is outside ${addressesSetting} (${server.addresses.join(", ")})`);
    }
}

/**
 * The external engine's part of the tenant's walls: Orthanc's egress to exactly `addresses` on `port`, and the
 * ServiceEntry. No NetworkPolicy of its own (nothing of the engine runs in the namespace) and no AuthorizationPolicy:
 * Istio enforces those on the receiving workload's proxy, and the server has none; Orthanc's own inbound rules do not
 * change. What leaves is bounded by the NetworkPolicy and the ServiceEntry, and who answers is proven by the server's
 * certificate, which libpq checks.
 */
export function externalWalls(names: TenantNames, _orthancPods: Record<string, string>, server: ExternalServer): DatabaseWalls {
    requireHostInAddresses(server, "database.external.host", "database.external.addresses");
    const entry: NamedSpec = { namespace: names.namespace, name: externalServiceEntryName, spec: externalServiceEntrySpec(names, server) };
    return {
        orthancEgress: [{ to: server.addresses.map((cidr) => ({ ipBlock: { cidr } })), ports: [tcp(server.port)] }],
        network: [],
        authorization: [],
        serviceEntries: [entry],
    };
}

/**
 * The gatekeeper's audit database on a managed server (`database.external.audit`), which the site's DBA created: its
 * server as a whole, host, port, CA and addresses falling back to the managed server's.
 */
export function externalAuditServer(external: ExternalServer & { audit?: ExternalAuditConfig }): (ExternalServer & { sslmode: ExternalAuditConfig["sslmode"] }) | undefined {
    const audit = external.audit;
    if (audit === undefined) return undefined;
    return {
        host: audit.host ?? external.host,
        port: audit.port ?? external.port,
        database: audit.database,
        user: audit.user,
        caCertificate: audit.caCertificate ?? external.caCertificate,
        addresses: audit.addresses ?? external.addresses,
        sslmode: audit.sslmode,
    };
}

/** The audit server's ServiceEntry, when it is not the managed server Orthanc's entry already names. */
export const externalAuditServiceEntryName = "external-audit-database";
export const externalAuditEgressName = "allow-gatekeeper-to-audit-database";

/**
 * The audit trail's part of the walls: the gatekeeper's egress to exactly the audit server's addresses on its port,
 * and a ServiceEntry of its own when the audit server is another host or port than Orthanc's (the mesh's
 * REGISTRY_ONLY lets nothing else out). As for Orthanc, no AuthorizationPolicy: the server has no sidecar; its
 * certificate (verify-full) and the role's password stand there.
 */
export function externalAuditWalls(tenant: string, names: TenantNames, external: ExternalServer & { audit?: ExternalAuditConfig }): DatabaseWalls {
    const server = externalAuditServer(external);
    if (server === undefined) return { orthancEgress: [], network: [], authorization: [], serviceEntries: [] };
    requireHostInAddresses(server, "database.external.audit.host", "its addresses");
    const shared = server.host === external.host && server.port === external.port;
    return {
        orthancEgress: [],
        network: [
            {
                namespace: names.namespace,
                name: externalAuditEgressName,
                spec: {
                    podSelector: { matchLabels: { ...gatekeeperSelector(tenant) } },
                    policyTypes: ["Egress"],
                    egress: [{ to: server.addresses.map((cidr) => ({ ipBlock: { cidr } })), ports: [tcp(server.port)] }],
                },
            },
        ],
        authorization: [],
        serviceEntries: shared
            ? []
            : [{ namespace: names.namespace, name: externalAuditServiceEntryName, spec: externalServiceEntrySpec(names, server, `audit-database.external.${names.namespace}.internal`) }],
    };
}

/**
 * What the site's DBA runs for `database.external.audit` (`scripts/run audit-sql <stack> <tenant>` prints it), in psql,
 * the passwords as psql variables (`-v owner_password=... -v gatekeeper_password=...`), never in the text:
 * - `admin`: as the managed server's administrator (CREATEROLE and CREATEDB are enough: no superuser): an owner role of
 *   the database's own (`<database>_owner`), the gatekeeper's role, and the database, owned by the first.
 * - `owner`: as that owner, in the audit database: the gatekeeper's own statements (the table; INSERT and SELECT only
 *   for its role; CONNECT taken from PUBLIC, so from Orthanc's role).
 * - `orthanc`: as Orthanc's role (database.external.user), in its database: CONNECT taken from PUBLIC, so that the
 *   audit roles get no way in.
 * - `retention`: daily, as the owner, in the audit database (pg_cron where the provider offers it): the program runs no
 *   job against a managed server, so the DBA keeps `identity.audit.retentionDays`.
 */
export function externalAuditDbaSql(audit: { database: string; user: string }, orthancDatabaseName: string, retentionDays: number): { owner: string; admin: string; ownerSql: string; orthanc: string; retention: string } {
    const owner = identifier(`${audit.database}_owner`);
    const roleOptions = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE";
    return {
        owner,
        admin: [
            `CREATE ROLE ${owner} WITH ${roleOptions} PASSWORD :'owner_password';`,
            `CREATE ROLE ${identifier(audit.user)} WITH ${roleOptions} PASSWORD :'gatekeeper_password';`,
            // An administrator without superuser may create a database for another owner only as a member of it.
            `GRANT ${owner} TO CURRENT_USER;`,
            `CREATE DATABASE ${identifier(audit.database)} OWNER ${owner};`,
            "",
        ].join("\n"),
        ownerSql: [...auditDatabaseStatements({ database: audit.database, user: audit.user }).map((statement) => `${statement};`), ""].join("\n"),
        orthanc: `REVOKE CONNECT ON DATABASE ${identifier(orthancDatabaseName)} FROM PUBLIC;\n`,
        retention: `${auditRetentionSql(retentionDays)};\n`,
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
        const audit = externalAuditServer(external);
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
            ...(audit && signsInThroughGatekeeper(args.tenant)
                ? {
                      audit: {
                          connection: { host: audit.host, port: audit.port, database: audit.database, user: audit.user, sslmode: audit.sslmode },
                          password: pulumi.secret(external.audit!.password),
                          ready: [],
                          // The gatekeeper checks the server against this CA (Node's own CAs sign no managed database's).
                          ...(audit.sslmode === "verify-full" ? { caCertificate: audit.caCertificate } : {}),
                      },
                  }
                : {}),
            orthanc: {
                postgresql: (password) => ({ ...externalDatabaseTls(args.namespace, external, password).postgresql }),
                pod: { volumes: [ca.volume], volumeMounts: [ca.volumeMount] },
            },
        };
        this.registerOutputs({ host: this.endpoint.host });
    }
}
