/**
 * Orthanc's configuration for a tenant, as a pure function of the tenant's settings and credentials.
 *
 * The program delivers its result as a Secret; the integration suite boots a real Orthanc with it. Both call this
 * function, so what is proven on a real Orthanc + PostgreSQL is what the pods get.
 *
 * It sets no `Plugins`: the image's start-up builds that list from the plugins it enables (GDCM and Orthanc Explorer 2
 * by default, PostgreSQL because its section is defined, others by their environment variables), and a configuration
 * that sets `Plugins` itself decides alone what is loaded (tests/upstream/orthancImage.ts).
 */

export interface OrthancConfigInput {
    /** Shown in Orthanc Explorer and reported by /system. */
    displayName: string;
    /** Called AE title modalities address. */
    aeTitle: string;
    /** Ports Orthanc listens on inside the pod (the Service and the mesh map them to 443 and 11112 outside). */
    httpPort: number;
    dicomPort: number;
    /** The only HTTP user; its password is generated per tenant. */
    adminUser: string;
    adminPassword: string;
    /** Further HTTP users: the tenant's gatekeeper, which every signed-in request reaches Orthanc as. */
    otherUsers?: Record<string, string>;
    database: {
        host: string;
        port: number;
        name: string;
        user: string;
        password: string;
        /** Connections this replica keeps to the index; the database side is sized for it. */
        connections: number;
    };
    /** A writable directory (the pod's emptyDir); Orthanc keeps nothing there that must survive. */
    workDirectory: string;
    /** The modalities allowed to store, query and retrieve, by calling AE title. */
    modalities: { name: string; aeTitle: string; host?: string; port?: number }[];
    /** Where the pod finds the files of `orthancConfigFiles` (the configuration Secret's mount). */
    configDirectory: string;
}

/** The Lua script that refuses cross-site writes, a file beside the configuration (`orthancConfigFiles`). */
export const crossSiteFilterFile = "cross-site-filter.lua";

/**
 * Orthanc's own refusal of cross-site writes, behind the gateway's (components/tenant/security.ts,
 * crossSiteWriteRules), with the same decision: a write whose `Sec-Fetch-Site` says another site (`cross-site`,
 * `same-site`) is refused; without that header, one whose `Origin` is present and not the request's own host is.
 * Requests with neither (scripts, DICOMweb clients) pass.
 *
 * Orthanc 1.13.0 (OrthancServer/Sources/main.cpp, MyIncomingHttpRequestFilter::IsAllowed) calls the Lua function
 * `IncomingHttpRequestFilter(method, uri, ip, username, httpHeaders)` for every request of a registered user before
 * any handler, plugins' routes and the multipart upload form included (OrthancFramework HttpServer.cpp), with the
 * header names in lower case and `method` after Orthanc's method faking (`GET ...?_method=DELETE` or
 * `X-HTTP-Method-Override` arrive as DELETE or PUT): this is what catches a cross-site `<img>` whose URL deletes, which
 * the gateway cannot see (Istio matches paths without the query string). `false` answers 403. A bearer token that a
 * plugin validates skips the filter (HttpServer.cpp); a page cannot send one.
 */
export const crossSiteFilterLua = `-- korthweb: refuse writes a browser says come from another site (components/tenant/orthancConfig.ts).
function IncomingHttpRequestFilter(method, uri, ip, username, httpHeaders)
  if method == 'GET' then
    return true
  end
  local site = httpHeaders['sec-fetch-site']
  if site ~= nil then
    return site ~= 'cross-site' and site ~= 'same-site'
  end
  local origin = httpHeaders['origin']
  if origin == nil then
    return true
  end
  local host = httpHeaders['host']
  return host ~= nil and (origin == 'https://' .. host or origin == 'http://' .. host)
end
`;

/** Files the configuration names, by file name, delivered beside it in `configDirectory`. */
export function orthancConfigFiles(): Record<string, string> {
    return { [crossSiteFilterFile]: crossSiteFilterLua };
}

/** Where DICOMweb (QIDO-RS, WADO-RS, STOW-RS) answers, under the tenant's web host. */
export const dicomWebRoot = "/dicom-web/";

/**
 * A modality without an address retrieves with C-GET only. Orthanc still needs an address for every entry; this one
 * is never reached (the mesh and the NetworkPolicies open egress only to configured modality addresses).
 */
const unreachable = { host: "127.0.0.1", port: 104 } as const;

export type OrthancConfig = Record<string, unknown>;

/**
 * How long the configuration assumes a modality waits for a C-STORE response before it aborts the association (its
 * DIMSE timeout; 30 s is common, DCMTK's tools leave it unlimited). A request that cannot be served must be answered
 * with a failure before that, so that the modality knows it still holds the instance and retries.
 */
export const modalityDimseTimeoutSeconds = 30;

export function orthancConfig(input: OrthancConfigInput): OrthancConfig {
    return {
        Name: input.displayName,
        DicomAet: input.aeTitle,
        DicomPort: input.dicomPort,
        HttpPort: input.httpPort,
        // The pod is reached only through the mesh; the gateway terminates TLS and the sidecars encrypt pod to pod.
        RemoteAccessAllowed: true,
        SslEnabled: false,
        DicomTlsEnabled: false,
        AuthenticationEnabled: true,
        RegisteredUsers: { ...input.otherUsers, [input.adminUser]: input.adminPassword },
        // A modality gets to the DICOM port only with its own certificate, issued for it and accepted by the gateway.
        // Behind that, Orthanc answers only the registered modalities, by calling AE title; it cannot check their
        // address, which is the gateway's.
        DicomCheckCalledAet: false,
        DicomAlwaysAllowEcho: true,
        DicomAlwaysAllowStore: false,
        DicomAlwaysAllowFind: false,
        DicomAlwaysAllowFindWorklist: false,
        DicomAlwaysAllowGet: false,
        DicomAlwaysAllowMove: false,
        DicomCheckModalityHost: false,
        DicomModalities: Object.fromEntries(
            input.modalities.map((modality) => [
                modality.name,
                {
                    AET: modality.aeTitle,
                    Host: modality.host ?? unreachable.host,
                    Port: modality.port ?? unreachable.port,
                    AllowEcho: true,
                    AllowStore: true,
                    AllowFind: true,
                    AllowGet: true,
                    AllowMove: modality.host !== undefined,
                },
            ]),
        ),
        // The modalities are the stack configuration's: none is added through the REST API behind its back.
        DicomModalitiesInDatabase: false,
        // WebDAV (on by default) would be a second, unaudited way to browse and upload; Lua over REST and the REST API's
        // writes to the pod's file system are off by default since Orthanc 1.5.8 and 1.12.0, and said so here so that
        // no image default can turn them on.
        WebDavEnabled: false,
        ExecuteLuaEnabled: false,
        RestApiWriteToFileSystemEnabled: false,
        // Cross-site request forgery, refused by Orthanc itself as well as by the gateway (crossSiteFilterLua). Lua
        // scripts from the configuration run whatever ExecuteLuaEnabled says (that one is /tools/execute-script).
        LuaScripts: [`${input.configDirectory}/${crossSiteFilterFile}`],
        // Patient names and IDs must not end up in pod logs, which leave the tenant's boundary (log shipping).
        DeidentifyLogs: true,
        StorageDirectory: `${input.workDirectory}/storage`,
        IndexDirectory: `${input.workDirectory}/index`,
        // Several replicas share one database. Jobs are per process (a job saved by one replica and resumed by
        // another would run twice), so they are not persisted; the database is not locked by the first replica.
        SaveJobs: false,
        // No DatabaseServerIdentifier: each pod sets its own (ORTHANC__DATABASE_SERVER_IDENTIFIER, the pod name), and a
        // key defined here as well makes the image warn that the variable overwrites it.
        // Storage commitment and modality worklists are out of scope; keep the HTTP server's defaults otherwise.
        HttpRequestTimeout: 60,
        DicomScpTimeout: 60,
        StableAge: 60,
        // DICOMweb for viewers and PACS, under the tenant's web host. URLs in its answers are https: the gateway
        // terminates TLS, Orthanc itself speaks plain HTTP inside the mesh.
        DicomWeb: { Enable: true, Root: dicomWebRoot, EnableWado: true, Ssl: true, StudiesMetadata: "Full", SeriesMetadata: "Full" },
        // Orthanc Explorer 2 is the tenant's UI (on by default in the image); the viewers read through DICOMweb.
        OrthancExplorer2: { Enable: true, IsDefaultOrthancUI: true },
        OHIF: { DataSource: "dicom-web" },
        PostgreSQL: {
            EnableIndex: true,
            // DICOM files in PostgreSQL too: pods keep no state, so any replica serves any study.
            EnableStorage: true,
            Host: input.database.host,
            Port: input.database.port,
            Database: input.database.name,
            Username: input.database.user,
            Password: input.database.password,
            // Pod-to-database traffic is already mutual TLS in the mesh.
            EnableSsl: false,
            Lock: false,
            // Plugin 10.3's default, said here because the connections below are meant to run side by side: under
            // SERIALIZABLE (the only mode before plugin 7.0) concurrent writers fail to serialize and retry.
            TransactionMode: "ReadCommitted",
            IndexConnectionsCount: input.database.connections,
            // A request that finds no open connection (Pgpool out of children, PostgreSQL restarting) retries inside the
            // request, here for 10 x 2 s: long enough to ride out a restart, short enough that the C-STORE is refused
            // before the modality's DIMSE timeout (modalityDimseTimeoutSeconds) rather than left hanging. A pod whose
            // database is not up within 20 s of its start exits and kubelet starts it again.
            MaximumConnectionRetries: 10,
            ConnectionRetryInterval: 2,
        },
    };
}
