/**
 * The Bitnami engine's database tier on this machine: a primary and standbys of the host's PostgreSQL managed by
 * repmgr (repmgrd for automatic failover) behind Pgpool-II, all Debian's packages, configured from the values the
 * program renders for the tenant (`postgresHaValues`) and, where the chart leaves a setting to its images, from the
 * images' defaults (cited below). Loopback only; every node listens on 127.0.0.1 with a port of its own.
 *
 * What the pods have and this has not: TLS and the mesh, Pgpool's pool_hba/pool_passwd (local TCP is trusted here),
 * Kubernetes restarting a killed pod. Authentication is not what the failover tests are about.
 *
 * The image's defaults followed (bitnami/containers, postgresql-repmgr 17 and pgpool 4, debian-12):
 * - repmgr.conf (librepmgr.sh `repmgr_generate_repmgr_config`): failover automatic, promote_command `repmgr standby
 *   promote`, follow_command `repmgr standby follow`, reconnect_attempts/interval from the chart's
 *   `postgresql.repmgrReconnectAttempts` 2 and `repmgrReconnectInterval` 3 (postgresql-ha 16.3.2 values.yaml),
 *   application_name = node name = pod name.
 * - pgpool.conf (libpgpool.sh `pgpool_create_config`, pgpool-env.sh defaults; the chart sets none of these):
 *   streaming replication mode, health_check_period 30, health_check_timeout 10, health_check_max_retries 5,
 *   health_check_retry_delay 5, connect_timeout 10000, failover_on_backend_error off, failover_on_backend_shutdown on,
 *   search_primary_node_timeout 0 (search for the new primary forever), a failover_command that only logs.
 */
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from "fs";
import { spawnSync } from "child_process";
import { join } from "path";
import { TenantConfig } from "../../../components/config/schema";
import { connectionBudget, orthancDatabase, postgresHaValues, postgresNodeNames, synchronousReplicationScript } from "../../../components/data/engines/bitnamiHaValues";
import { asPostgresAccount, createOrthancDatabase, Postgres } from "./postgres";
import { postgresBinDirectory } from "./prerequisites";
import { Child, freePort, Resources, run, runOk, sleep, waitUntil } from "./processes";

/** The chart's repmgr timing (postgresql-ha 16.3.2 values.yaml `postgresql.repmgr*`). */
const repmgrTiming = { reconnectAttempts: 2, reconnectInterval: 3, connectTimeout: 5 };
/** The pgpool image's health check and failover settings (pgpool-env.sh defaults; the chart passes none). */
const pgpoolHealthCheck = { period: 30, timeout: 10, maxRetries: 5, retryDelay: 5, connectTimeoutMs: 10_000 };

export interface PostgresNode {
    /** The pod name the chart gives the node: repmgr's node name and the standby's application_name. */
    readonly name: string;
    readonly port: number;
    readonly dataDir: string;
    /** Runs SQL as the superuser over the node's Unix socket; unaligned rows. */
    sql(sql: string, database?: string): Promise<string>;
    /** Whether the node answers and is not in recovery. */
    isPrimary(): Promise<boolean>;
    /** SIGKILL of the postmaster, as a node lost with its pod. */
    kill(): void;
    readonly logFile: string;
}

export interface ReplicatedPostgres {
    /** The chart values rendered for the tenant. */
    readonly values: { postgresql: Record<string, any>; pgpool: Record<string, any> };
    readonly nodes: PostgresNode[];
    readonly pgpool: Child;
    /** What Orthanc connects to: Pgpool, as the tenant's Service. */
    readonly endpoint: Postgres;
    /** The node that is primary now, waiting up to `timeoutMs` for one. */
    waitForPrimary(exclude: PostgresNode[], timeoutMs: number): Promise<PostgresNode>;
    /** Stops a standby's WAL receiver (primary_conninfo emptied), as a standby cut off from its primary. */
    pauseWalReceipt(node: PostgresNode): Promise<void>;
    /** repmgrd's log lines of every node, for the test's output. */
    repmgrLog(): string;
}

async function poll(what: string, timeoutMs: number, ready: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await ready())) {
        if (Date.now() > deadline) {
            throw new Error(`${what}: not within ${timeoutMs} ms`);
        }
        await sleep(200);
    }
}

function literal(value: string): string {
    return `'${value.replace(/'/g, "''")}'`;
}

/** The rendered first-boot script's SQL is run by the real script, with the environment the image gives it. */
async function runInitScript(script: string, node: PostgresNode, superuserPassword: string): Promise<void> {
    await runOk("bash", ["-c", `set -o errexit -o nounset -o pipefail\n${script}`], {
        env: { ...process.env, POSTGRESQL_POSTGRES_PASSWORD: superuserPassword, POSTGRESQL_PORT_NUMBER: String(node.port) },
    });
}

export async function startReplicatedPostgres(resources: Resources, tenant: TenantConfig): Promise<ReplicatedPostgres> {
    const bin = postgresBinDirectory();
    if (!bin) {
        throw new Error("PostgreSQL server binaries not found (Debian package postgresql)");
    }
    const account = asPostgresAccount();
    const asPostgres = (command: string, args: string[]): [string, string[]] => (account ? [account.prefix[0], [...account.prefix.slice(1), command, ...args]] : [command, args]);
    const owned = (path: string, mode = 0o700) => {
        mkdirSync(path, { recursive: true, mode });
        chmodSync(path, mode);
        if (account) {
            chownSync(path, account.uid, account.gid);
        }
        return path;
    };
    const dir = owned(resources.tempDir("replication"), 0o755);
    const values = postgresHaValues({
        replicas: tenant.postgres.replicas,
        replication: tenant.postgres.replication,
        pgpoolReplicas: tenant.postgres.pgpoolReplicas,
        volumeSize: tenant.postgres.volumeSize,
        connections: connectionBudget(tenant.orthanc.maxReplicas, tenant.postgres.pgpoolReplicas),
    }) as ReplicatedPostgres["values"];
    const names = postgresNodeNames(values.postgresql.replicaCount);
    const superuserPassword = `su-${Math.random().toString(36).slice(2)}`;

    const nodes: (PostgresNode & { repmgrConf: string })[] = [];
    for (const [index, name] of names.entries()) {
        const port = await freePort();
        const nodeDir = owned(join(dir, name), 0o755);
        const dataDir = join(nodeDir, "data");
        const socketDir = nodeDir;
        const logFile = join(nodeDir, "postgres.log");
        const repmgrConf = join(nodeDir, "repmgr.conf");
        const psql = (sql: string, database = "postgres") =>
            run("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-h", socketDir, "-p", String(port), "-U", "postgres", "-d", database, "-c", sql], {
                env: { ...process.env, PGCONNECT_TIMEOUT: "3" },
            });
        const node = {
            name,
            port,
            dataDir,
            logFile,
            repmgrConf,
            sql: async (sql: string, database?: string) => {
                const result = await psql(sql, database);
                if (result.code !== 0) {
                    throw new Error(`psql on ${name}: ${result.stderr}`);
                }
                return result.stdout.trim();
            },
            isPrimary: async () => {
                const result = await psql("SELECT pg_is_in_recovery()");
                return result.code === 0 && result.stdout.trim() === "f";
            },
            kill: () => {
                const pid = Number(readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
                process.kill(pid, "SIGKILL");
            },
        };
        const command = (program: string) => join(bin, program);
        writeFileSync(
            repmgrConf,
            [
                `node_id=${index + 1}`,
                `node_name=${literal(name)}`,
                `conninfo=${literal(`host=127.0.0.1 port=${port} user=repmgr dbname=repmgr connect_timeout=${repmgrTiming.connectTimeout}`)}`,
                `data_directory=${literal(dataDir)}`,
                `pg_bindir=${literal(bin)}`,
                "failover='automatic'",
                `promote_command=${literal(`${command("repmgr")} standby promote -f ${repmgrConf} --log-to-file`)}`,
                `follow_command=${literal(`${command("repmgr")} standby follow -f ${repmgrConf} --log-to-file --upstream-node-id=%n`)}`,
                `reconnect_attempts=${repmgrTiming.reconnectAttempts}`,
                `reconnect_interval=${repmgrTiming.reconnectInterval}`,
                "monitor_interval_secs=2",
                `log_file=${literal(join(nodeDir, "repmgrd.log"))}`,
                "log_level='INFO'",
                `pg_ctl_options=${literal(`-l ${logFile}`)}`,
                "",
            ].join("\n"),
        );
        if (account) {
            chownSync(repmgrConf, account.uid, account.gid);
        }
        nodes.push(node);
    }
    const pgCtl = (node: PostgresNode, ...args: string[]) => runOk(...asPostgres(join(bin, "pg_ctl"), ["-D", node.dataDir, ...args]));
    const writeNodeConf = (node: PostgresNode) => {
        const file = join(node.dataDir, "node.conf");
        writeFileSync(file, `port = ${node.port}\nunix_socket_directories = ${literal(join(node.dataDir, ".."))}\n`);
        if (account) {
            chownSync(file, account.uid, account.gid);
        }
    };
    const start = async (node: PostgresNode) => {
        writeNodeConf(node);
        await pgCtl(node, "-l", node.logFile, "-w", "-t", "60", "start");
    };
    // Whatever is still running goes at release, and at the suite's exit should it die first.
    const stopAll = () => {
        for (const node of nodes) {
            spawnSync(...asPostgres(join(bin, "pg_ctl"), ["-D", node.dataDir, "-m", "immediate", "stop"]), { stdio: "ignore" });
        }
    };
    process.once("exit", stopAll);
    resources.defer(async () => {
        stopAll();
        process.removeListener("exit", stopAll);
    });

    // The first primary's first boot, in the image's order: initdb, Orthanc's database and role, repmgr's user and
    // database, registration, then the chart's init scripts; standbys clone it afterwards.
    const [primary, ...standbys] = nodes;
    await runOk(
        ...asPostgres(join(bin, "initdb"), ["-D", primary.dataDir, "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions", "--auth-local=trust"]),
    );
    const settings = [
        "listen_addresses = '127.0.0.1'",
        `max_connections = ${values.postgresql.maxConnections}`,
        // librepmgr.sh repmgr_inject_postgresql_configuration and libpostgresql.sh postgresql_configure_replication_parameters.
        "shared_preload_libraries = 'repmgr'",
        "wal_level = 'replica'",
        "max_wal_senders = 16",
        "max_replication_slots = 10",
        "wal_keep_size = '128MB'",
        "hot_standby = on",
        "wal_log_hints = on",
        "include_if_exists = 'node.conf'",
    ];
    writeFileSync(join(primary.dataDir, "postgresql.conf"), `${readFileSync(join(primary.dataDir, "postgresql.conf"), "utf8")}\n${settings.join("\n")}\n`);
    // The superuser needs its password over TCP (the init script uses it); everyone else is trusted on loopback.
    writeFileSync(
        join(primary.dataDir, "pg_hba.conf"),
        ["local all all trust", "host all postgres 127.0.0.1/32 scram-sha-256", "host all all 127.0.0.1/32 trust", "host replication all 127.0.0.1/32 trust", ""].join("\n"),
    );
    await start(primary);
    await primary.sql(`ALTER ROLE postgres PASSWORD ${literal(superuserPassword)}`);
    await createOrthancDatabase((sql, database) => primary.sql(sql, database));
    await primary.sql("CREATE ROLE repmgr WITH LOGIN SUPERUSER REPLICATION");
    await primary.sql("CREATE DATABASE repmgr OWNER repmgr");
    await primary.sql("ALTER ROLE repmgr SET search_path TO repmgr, \"$user\", public");
    const repmgr = (node: { repmgrConf: string }, ...args: string[]) => runOk(...asPostgres(join(bin, "repmgr"), ["-f", node.repmgrConf, ...args]));
    await repmgr(primary, "primary", "register");
    const script: string | undefined = values.postgresql.initdbScripts?.[synchronousReplicationScript];
    if (script) {
        await runInitScript(script, primary, superuserPassword);
    }

    for (const standby of standbys) {
        await repmgr(standby, "-h", "127.0.0.1", "-p", String(primary.port), "-U", "repmgr", "-d", "repmgr", "standby", "clone", "--fast-checkpoint");
        await start(standby);
        // repmgr registers a standby only once the primary sees it stream (under its node name, the application_name).
        await poll(`${standby.name} streams from the primary`, 20_000, async () =>
            Number(await primary.sql(`SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND application_name = ${literal(standby.name)}`)) === 1,
        );
        await repmgr(standby, "standby", "register", "--wait-sync=30");
    }
    for (const node of nodes) {
        resources.start(`repmgrd-${node.name}`, ...asPostgres(join(bin, "repmgrd"), ["-f", node.repmgrConf, "--daemonize=false", "--no-pid-file"]), {
            logFile: join(node.dataDir, "..", "repmgrd.out"),
        });
    }

    // Pgpool-II, as the pgpool image configures it from the chart's values (see the file comment).
    const pgpoolDir = owned(join(dir, "pgpool"), 0o755);
    const pgpoolPort = await freePort();
    const pgpoolConf = join(pgpoolDir, "pgpool.conf");
    const pgpool = values.pgpool;
    // Numbers and on/off as they are, every other value quoted.
    const pgpoolSettings: Record<string, string | number> = {
        backend_clustering_mode: "streaming_replication",
        listen_addresses: "127.0.0.1",
        port: pgpoolPort,
        unix_socket_directories: pgpoolDir,
        pcp_listen_addresses: "",
        pcp_socket_dir: pgpoolDir,
        pcp_port: await freePort(),
        num_init_children: Number(pgpool.numInitChildren),
        reserved_connections: Number(pgpool.reservedConnections),
        max_pool: Number(pgpool.maxPool),
        enable_pool_hba: "off",
        pool_passwd: "",
        allow_clear_text_frontend_auth: "on",
        pid_file_name: join(pgpoolDir, "pgpool.pid"),
        logdir: pgpoolDir,
        load_balance_mode: pgpool.useLoadBalancing ? "on" : "off",
        sr_check_user: "repmgr",
        sr_check_password: "",
        sr_check_period: 30,
        sr_check_database: "postgres",
        health_check_period: pgpoolHealthCheck.period,
        health_check_timeout: pgpoolHealthCheck.timeout,
        health_check_user: "repmgr",
        health_check_password: "",
        health_check_max_retries: pgpoolHealthCheck.maxRetries,
        health_check_retry_delay: pgpoolHealthCheck.retryDelay,
        connect_timeout: pgpoolHealthCheck.connectTimeoutMs,
        failover_command: "echo failover: searching for the new primary",
        failover_on_backend_error: "off",
        failover_on_backend_shutdown: "on",
        search_primary_node_timeout: 0,
        use_watchdog: "off",
    };
    nodes.forEach((node, index) => {
        pgpoolSettings[`backend_hostname${index}`] = "127.0.0.1";
        pgpoolSettings[`backend_port${index}`] = node.port;
        pgpoolSettings[`backend_weight${index}`] = 1;
        pgpoolSettings[`backend_flag${index}`] = "ALLOW_TO_FAILOVER";
    });
    const setting = (value: string | number) => (typeof value === "number" || value === "on" || value === "off" ? String(value) : literal(value));
    writeFileSync(pgpoolConf, Object.entries(pgpoolSettings).map(([key, value]) => `${key} = ${setting(value)}\n`).join(""));
    const pcpConf = join(pgpoolDir, "pcp.conf");
    writeFileSync(pcpConf, "");
    const pgpoolChild = resources.start("pgpool", ...asPostgres("/usr/sbin/pgpool", ["-n", "-D", "-f", pgpoolConf, "-F", pcpConf]), {
        logFile: join(pgpoolDir, "pgpool.log"),
        stopSignal: "SIGINT",
    });
    const viaPgpool = (sql: string, user: string, database: string) =>
        run("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-h", "127.0.0.1", "-p", String(pgpoolPort), "-U", user, "-d", database, "-c", sql], {
            env: { ...process.env, PGCONNECT_TIMEOUT: "5" },
        });
    await waitUntil("Pgpool-II accepts connections", pgpoolChild, async () => (await viaPgpool("SELECT 1", "repmgr", "postgres")).code === 0, 30_000);

    const current = async (exclude: PostgresNode[]) => {
        for (const node of nodes.filter((n) => !exclude.includes(n))) {
            if (await node.isPrimary()) {
                return node;
            }
        }
        return undefined;
    };
    const endpoint: Postgres = {
        host: "127.0.0.1",
        port: pgpoolPort,
        database: orthancDatabase.name,
        user: orthancDatabase.user,
        password: "trusted-on-loopback",
        child: pgpoolChild,
        asSuperuser: async (sql) => {
            const node = await current([]);
            if (!node) {
                throw new Error("no primary");
            }
            return node.sql(sql);
        },
        asOrthancRole: async (sql) => {
            const result = await viaPgpool(sql, orthancDatabase.user, orthancDatabase.name);
            if (result.code !== 0) {
                throw new Error(`psql through Pgpool: ${result.stderr}`);
            }
            return result.stdout.trim();
        },
        useServerCertificate: async () => {
            throw new Error("no TLS here");
        },
    };
    return {
        values,
        nodes,
        pgpool: pgpoolChild,
        endpoint,
        waitForPrimary: async (exclude, timeoutMs) => {
            const deadline = Date.now() + timeoutMs;
            for (;;) {
                const node = await current(exclude);
                if (node) {
                    return node;
                }
                if (Date.now() > deadline) {
                    throw new Error(`no node was promoted within ${timeoutMs} ms; repmgrd:\n${repmgrLog()}`);
                }
                await sleep(500);
            }
        },
        pauseWalReceipt: async (node) => {
            await node.sql("ALTER SYSTEM SET primary_conninfo = ''");
            await node.sql("SELECT pg_reload_conf()");
            await poll(`${node.name} stops receiving WAL`, 10_000, async () => Number(await node.sql("SELECT count(*) FROM pg_stat_wal_receiver")) === 0);
        },
        repmgrLog,
    };

    function repmgrLog(): string {
        return nodes
            .map((node) => {
                try {
                    return readFileSync(join(node.dataDir, "..", "repmgrd.log"), "utf8")
                        .split("\n")
                        .filter((line) => /promot|follow|failover|elect|primary/i.test(line))
                        .slice(-15)
                        .map((line) => `    [${node.name}] ${line}`)
                        .join("\n");
                } catch {
                    return `    [${node.name}] (no repmgrd log)`;
                }
            })
            .join("\n");
    }
}
