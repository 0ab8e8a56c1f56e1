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

/** The reconnection settings of the plugins' section, with the plugin's defaults. */
export interface PluginRetrySection {
    MaximumConnectionRetries?: number;
    ConnectionRetryInterval?: number;
}

/**
 * How long a request waits, at most, for the plugin to open a database connection before it fails: orthanc-databases
 * branch OrthancPostgreSQL-10.3 (commit 7f22af5): Framework/PostgreSQL/PostgreSQLParameters.cpp reads
 * `MaximumConnectionRetries` (default 10) and `ConnectionRetryInterval` (default 5, seconds);
 * Framework/Common/RetryDatabaseFactory.cpp `Open` retries a connection that fails with DatabaseUnavailable (every
 * libpq failure, PostgreSQLDatabase.cpp `Open`: a refused connection, Pgpool's "Sorry, too many clients already")
 * that many times, sleeping the interval before each retry, then gives up; Framework/Common/DatabaseManager.cpp opens
 * through it whenever it holds no connection (at start-up, and on the first request after a connection was found
 * broken and closed), inside the request: the C-STORE or HTTP request waits meanwhile. The connection attempts
 * themselves are not counted (refused ones take milliseconds).
 */
export function pluginReconnectWindowSeconds(section: PluginRetrySection): number {
    return (section.MaximumConnectionRetries ?? 10) * (section.ConnectionRetryInterval ?? 5);
}
