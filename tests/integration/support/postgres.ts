/**
 * A throwaway PostgreSQL: a fresh cluster in a temp directory, listening on a free port of 127.0.0.1, with Orthanc's
 * database and role created the way the tenant's chart values create them.
 */
import { randomBytes } from "crypto";
import { chmodSync, chownSync, copyFileSync, appendFileSync, writeFileSync } from "fs";
import { join } from "path";
import { orthancDatabase } from "../../../components/data/engines/bitnamiHaValues";
import { postgresAccount, postgresBinDirectory } from "./prerequisites";
import { Child, freePort, Resources, run, runOk, waitUntil } from "./processes";

export interface Postgres {
    readonly host: "127.0.0.1";
    readonly port: number;
    /** Orthanc's database and role (`orthancDatabase`), with the generated password. */
    readonly database: string;
    readonly user: string;
    readonly password: string;
    readonly child: Child;
    /** Runs SQL as the cluster's superuser over its Unix socket (setup and inspection only); returns unaligned rows. */
    asSuperuser(sql: string): Promise<string>;
    /** Runs SQL as Orthanc's role over TCP with its password, exactly as Orthanc connects. */
    asOrthancRole(sql: string): Promise<string>;
    /**
     * With the `tls` option: presents another server certificate to new connections (a reload, as a managed service
     * rotates it). Without it: throws.
     */
    useServerCertificate(certificate: ServerCertificate): Promise<void>;
}

/** A server certificate and its key, as files. */
export interface ServerCertificate {
    certFile: string;
    keyFile: string;
}

export interface PostgresOptions {
    /**
     * TLS as a managed PostgreSQL serves it: `ssl = on` with this certificate, and TCP clients accepted only over TLS
     * (`hostssl` lines alone in pg_hba.conf: a connection without TLS finds no entry and is refused).
     */
    tls?: ServerCertificate;
    /**
     * `max_connections`; 50 when absent. 50 holds the suite's most replicas at once on one database (three, with the
     * rendered IndexConnectionsCount of 5 and the storage plugin's own connection each) with room for the suite's own
     * sessions. A configuration without IndexConnectionsCount opens plugin 10.3's default of 50 per process and needs
     * more (the benchmark's `korthweb`).
     */
    maxConnections?: number;
    /**
     * The cluster's directory (its data directory and socket go inside), made by the caller on a filesystem of its
     * choosing (a small volume that fills); a fresh temp directory when absent.
     */
    directory?: string;
}

/** When the suite runs as root (PostgreSQL refuses to), the `postgres` account and the command that switches to it. */
export function asPostgresAccount(): { uid: number; gid: number; prefix: string[] } | undefined {
    if (process.getuid?.() !== 0) {
        return undefined;
    }
    const account = postgresAccount();
    if (!account) {
        throw new Error("no `postgres` account (Debian package postgresql creates it)");
    }
    // setpriv execs the program in place, so the pid we track (and signal) is the postmaster's own.
    return { ...account, prefix: ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] };
}

function quoteLiteral(value: string): string {
    return `'${value.replace(/'/g, "''")}'`;
}

function quoteIdentifier(value: string): string {
    return `"${value.replace(/"/g, '""')}"`;
}

/**
 * What Bitnami's image does on first boot with postgresql.username/database (postgresql_create_admin_user in
 * libpostgresql.sh): a login role with CREATEDB and nothing more, owner of its database and of its public schema
 * (which PostgreSQL 15 no longer lets every role create in). Returns the role's generated password.
 */
export async function createOrthancDatabase(asSuperuser: (sql: string, database?: string) => Promise<string>): Promise<string> {
    const password = randomBytes(24).toString("base64url");
    const role = quoteIdentifier(orthancDatabase.user);
    await asSuperuser(`CREATE DATABASE ${quoteIdentifier(orthancDatabase.name)}`);
    await asSuperuser(`CREATE ROLE ${role} WITH LOGIN CREATEDB PASSWORD ${quoteLiteral(password)}`);
    await asSuperuser(`GRANT ALL PRIVILEGES ON DATABASE ${quoteIdentifier(orthancDatabase.name)} TO ${role}`);
    await asSuperuser(`ALTER DATABASE ${quoteIdentifier(orthancDatabase.name)} OWNER TO ${role}`);
    await asSuperuser(`ALTER SCHEMA public OWNER TO ${role}`, orthancDatabase.name);
    return password;
}

export async function startPostgres(resources: Resources, options: PostgresOptions = {}): Promise<Postgres> {
    const bin = postgresBinDirectory();
    if (!bin) {
        throw new Error("PostgreSQL server binaries not found (Debian package postgresql)");
    }
    const account = asPostgresAccount();
    const dir = options.directory ?? resources.tempDir("postgres");
    const dataDir = join(dir, "data");
    if (account) {
        chownSync(dir, account.uid, account.gid);
    }
    const wrap = (command: string, args: string[]): [string, string[]] =>
        account ? [account.prefix[0], [...account.prefix.slice(1), command, ...args]] : [command, args];

    // Local (socket) connections are trusted for the suite's own setup; TCP, which Orthanc uses, needs the password.
    await runOk(
        ...wrap(join(bin, "initdb"), [
            "-D", dataDir, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
            "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions",
        ]),
    );

    // TLS settings live in a file of their own, included from postgresql.conf, so a reload can swap the certificate.
    const tlsConfFile = join(dataDir, "tls.conf");
    let certificates = 0;
    const writeTlsConf = (certificate: ServerCertificate) => {
        // PostgreSQL reads the key only when the server's account owns it and nobody else can read it.
        certificates += 1;
        const certFile = join(dataDir, `server-${certificates}.crt`);
        const keyFile = join(dataDir, `server-${certificates}.key`);
        copyFileSync(certificate.certFile, certFile);
        copyFileSync(certificate.keyFile, keyFile);
        for (const file of [certFile, keyFile]) {
            chmodSync(file, 0o600);
            if (account) {
                chownSync(file, account.uid, account.gid);
            }
        }
        writeFileSync(tlsConfFile, `ssl = on\nssl_cert_file = '${certFile}'\nssl_key_file = '${keyFile}'\n`);
        return certFile;
    };
    if (options.tls) {
        writeTlsConf(options.tls);
        appendFileSync(join(dataDir, "postgresql.conf"), "\ninclude 'tls.conf'\n");
        // Only the suite's own setup uses the socket; over TCP, TLS and the password or nothing.
        writeFileSync(join(dataDir, "pg_hba.conf"), "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n");
    }

    const port = await freePort();
    const [command, args] = wrap(join(bin, "postgres"), [
        "-D", dataDir, "-p", String(port),
        "-c", "listen_addresses=127.0.0.1",
        // The socket lives in our temp directory: no clash with a system cluster in /var/run/postgresql.
        "-c", `unix_socket_directories=${dir}`,
        "-c", `max_connections=${options.maxConnections ?? 50}`,
    ]);
    const child = resources.start("postgres", command, args, {
        logFile: join(dir, "postgres.log"),
        // SIGINT is PostgreSQL's "fast" shutdown; SIGQUIT (immediate) makes the postmaster take its backends down
        // when the suite itself is being killed.
        stopSignal: "SIGINT",
        emergencySignal: "SIGQUIT",
    });

    const psql = (user: string, database: string, host: string, sql: string, env: NodeJS.ProcessEnv) =>
        run("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-h", host, "-p", String(port), "-U", user, "-d", database, "-c", sql], {
            env: { ...process.env, PGCONNECT_TIMEOUT: "5", ...env },
        });
    const asSuperuser = async (sql: string, database = "postgres") => {
        const result = await psql("postgres", database, dir, sql, {});
        if (result.code !== 0) {
            throw new Error(`psql (superuser) failed: ${result.stderr}`);
        }
        return result.stdout.trim();
    };
    await waitUntil("PostgreSQL accepts connections", child, async () => (await psql("postgres", "postgres", dir, "SELECT 1", {})).code === 0);

    const password = await createOrthancDatabase(asSuperuser);

    const asOrthancRole = async (sql: string) => {
        const result = await psql(orthancDatabase.user, orthancDatabase.name, "127.0.0.1", sql, { PGPASSWORD: password });
        if (result.code !== 0) {
            throw new Error(`psql (${orthancDatabase.user}) failed: ${result.stderr}`);
        }
        return result.stdout.trim();
    };
    const useServerCertificate = async (certificate: ServerCertificate) => {
        if (!options.tls) {
            throw new Error("this PostgreSQL was started without TLS");
        }
        const certFile = writeTlsConf(certificate);
        await asSuperuser("SELECT pg_reload_conf()");
        // The postmaster applies a reload asynchronously; a new session shows the setting once it has.
        await waitUntil("PostgreSQL presents the new certificate", child, async () => (await asSuperuser("SHOW ssl_cert_file")) === certFile, 10_000);
    };
    return {
        host: "127.0.0.1",
        port,
        database: orthancDatabase.name,
        user: orthancDatabase.user,
        password,
        child,
        asSuperuser: (sql) => asSuperuser(sql),
        asOrthancRole,
        useServerCertificate,
    };
}
