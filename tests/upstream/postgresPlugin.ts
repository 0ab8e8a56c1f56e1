/**
 * What Orthanc's PostgreSQL plugins hand libpq, from their configuration section. Read on the mirror
 * orthanc-mirrors/orthanc-databases of orthanc-server/orthanc-databases:
 * - release 5.0 (commit 3b035c0, Debian trixie's orthanc-postgresql, the integration suite's) and branch
 *   OrthancPostgreSQL-10.3 (commit 7f22af5, the plugin in image orthancteam/orthanc 26.8.1);
 * - Framework/PostgreSQL/PostgreSQLParameters.cpp: the constructor reads `ConnectionUri` first; only without it does
 *   it read `Host`, `Port`, `Database`, `Username`, `Password` and `EnableSsl` (default false). `Format` returns the URI
 *   as it is, or else a keyword string starting with `sslmode=require` (EnableSsl) or `sslmode=disable`, then user,
 *   host, port, password and dbname (and, in 10.3, application_name); no other TLS keyword is ever written;
 * - Framework/PostgreSQL/PostgreSQLDatabase.cpp: `Open` passes that string to `PQconnectdb` and, when the connection
 *   fails, logs "PostgreSQL error: " with libpq's message and throws DatabaseUnavailable;
 * - PostgreSQL/Plugins/IndexPlugin.cpp and StoragePlugin.cpp: both plugins build their parameters from the same
 *   `PostgreSQL` section.
 * Both versions are identical in all of this. libpq (PostgreSQL docs, "SSL Support" and "Connection Strings"): with
 * `sslmode=require` and no root certificate file, the server is not verified; `verify-full` checks the chain against
 * `sslrootcert` and the host name against the certificate.
 */

export interface PluginSection {
    ConnectionUri?: string;
    Host?: string;
    Port?: number;
    Database?: string;
    Username?: string;
    Password?: string;
    EnableSsl?: boolean;
}

/** The libpq settings the plugin's connection string amounts to (sslmode, sslrootcert, host), for either form. */
export function pluginLibpqSettings(section: PluginSection): { form: "uri" | "keywords"; sslmode: string; sslrootcert?: string; host: string } {
    if (section.ConnectionUri !== undefined) {
        const url = new URL(section.ConnectionUri);
        // libpq's own default when the URI names no sslmode.
        return {
            form: "uri",
            sslmode: url.searchParams.get("sslmode") ?? "prefer",
            sslrootcert: url.searchParams.get("sslrootcert") ?? undefined,
            host: url.hostname,
        };
    }
    return { form: "keywords", sslmode: section.EnableSsl === true ? "require" : "disable", host: section.Host ?? "localhost" };
}
