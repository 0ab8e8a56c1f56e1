/**
 * The three Orthanc set-ups the benchmark compares, each started on this machine the way the integration suite starts
 * the tenant's replicas (the sid root's Orthanc 1.13.0 with the PostgreSQL plugins 10.3 and DICOMweb 1.24, chrooted; a
 * throwaway PostgreSQL of the host's):
 *
 * - `rendered`: the program's tenant configuration (tenantOrthancConfig through the suite's stack support), changed by
 *   adaptForLaptop only; Orthanc's environment is the rendered pod's (TCP_NODELAY=1), and so is the DCMTK client's.
 * - `rendered-filesystem`: `rendered` with the tenant's `filesystem` storage (storageOrthancConfig merged over it, as the
 *   suite's storage tests run it): the replicas share one temp directory standing for the ReadWriteMany volume, and
 *   PostgreSQL keeps the index only. A directory of this machine's disk, not a network file system: the figures show
 *   what leaving PostgreSQL's large objects gains, not what an EFS or NFS volume costs.
 * - `korthweb`: Korthweb's orthanc.json, read at run time from the shared reference folder, changed only where the
 *   laptop demands it (the same keys as adaptForLaptop) on a PostgreSQL of its own; Korthweb's environment, which has
 *   no TCP_NODELAY, for Orthanc and for the client. Its configuration sets no IndexConnectionsCount, so plugin 10.3
 *   opens its default of 50 index connections per process, plus one for storage: its PostgreSQL allows that many for
 *   every replica (a default PostgreSQL's 100 does not hold two replicas).
 * - `ceiling`: the same Orthanc and rendered configuration with its index (SQLite) and storage (files) in a temp
 *   directory and no PostgreSQL plugin: what this machine can do at best. One process: it alone owns its SQLite index.
 */
import { existsSync, readFileSync } from "fs";
import { join, posix, resolve } from "path";
import { dcmtkEnvironment } from "../support/dcmtk";
import { adaptForLaptop, adminCredentials, Credentials, generatePassword, podEnvironment, productionConfig, Replica, startReplica } from "../support/orthanc";
import { Postgres, startPostgres } from "../support/postgres";
import { Resources } from "../support/processes";
import { startTenantStack, testDomain, testStackConfig } from "../support/stack";
import { onSharedDirectory } from "../support/storageFilesystem";
import { OrthancConfig } from "../../../components/tenant/orthancConfig";
import { orthancConnections } from "../../upstream/postgres";

export type ConfigurationName = "rendered" | "rendered-filesystem" | "korthweb" | "ceiling";
export const configurationNames: readonly ConfigurationName[] = ["rendered", "rendered-filesystem", "korthweb", "ceiling"];

export interface RunningConfiguration {
    name: ConfigurationName;
    /** One line on what runs, for the output. */
    description: string;
    replicas: Replica[];
    postgres?: Postgres;
    /** The DCMTK client's environment (TCP_NODELAY or not, as the configuration's side has it). */
    clientEnv: NodeJS.ProcessEnv;
    /** DICOMweb root and credentials. */
    dicomWebRoot: string;
    credentials: Credentials;
}

export interface StartOptions {
    replicas: number;
    /** A JSON object deep-merged into the rendered configuration after adaptForLaptop (one setting at a time). */
    renderedOverrides?: Record<string, unknown>;
    /** PostgreSQL settings (`name=value`) applied with ALTER SYSTEM before the replicas start. */
    postgresSettings?: string[];
}

const repoRoot = resolve(__dirname, "../../..");

/** Korthweb's Orthanc configuration: ../shared relative to the repository root (BENCH_KORTHWEB_CONFIG overrides). */
export function korthwebConfigFile(): string {
    return process.env.BENCH_KORTHWEB_CONFIG || resolve(repoRoot, "../shared/reference/korthweb/application__base__orthanc__orthanc.json");
}

export function readKorthwebConfig(): OrthancConfig {
    const file = korthwebConfigFile();
    if (!existsSync(file)) {
        throw new Error(
            `Korthweb's Orthanc configuration is missing: ${file}\n` +
                "The benchmark compares against it and copies nothing; put the shared reference folder next to the repository " +
                "(../shared/reference/korthweb/) or set BENCH_KORTHWEB_CONFIG to the file.",
        );
    }
    return JSON.parse(readFileSync(file, "utf8")) as OrthancConfig;
}

/** The environment without TCP_NODELAY, as Korthweb's pod and a default DCMTK client have it. */
export function withoutNoDelay(): NodeJS.ProcessEnv {
    const env = { ...process.env };
    delete env.TCP_NODELAY;
    return env;
}

function deepMerge(base: Record<string, unknown>, overrides: Record<string, unknown>): Record<string, unknown> {
    const result: Record<string, unknown> = { ...base };
    for (const [key, value] of Object.entries(overrides)) {
        const current = result[key];
        result[key] =
            value && typeof value === "object" && !Array.isArray(value) && current && typeof current === "object" && !Array.isArray(current)
                ? deepMerge(current as Record<string, unknown>, value as Record<string, unknown>)
                : value;
    }
    return result;
}

async function tunePostgres(postgres: Postgres, settings: string[] | undefined): Promise<void> {
    for (const setting of settings ?? []) {
        const [name, ...rest] = setting.split("=");
        await postgres.asSuperuser(`ALTER SYSTEM SET ${name.trim()} = '${rest.join("=").trim().replace(/'/g, "''")}'`);
    }
    if (settings?.length) {
        await postgres.asSuperuser("SELECT pg_reload_conf()");
    }
}

const replicaNames = (prefix: string, count: number) => Array.from({ length: count }, (_, index) => `${prefix}${index + 1}`);

export async function startConfiguration(resources: Resources, name: ConfigurationName, options: StartOptions): Promise<RunningConfiguration> {
    if (name === "rendered" || name === "rendered-filesystem") {
        const stack = await startTenantStack(resources);
        await tunePostgres(stack.postgres, options.postgresSettings);
        const storage = name === "rendered-filesystem" ? onSharedDirectory(resources.tempDir("bench-volume"), stack.tenant) : (config: OrthancConfig) => config;
        const extend = (config: OrthancConfig) => (options.renderedOverrides ? deepMerge(storage(config), options.renderedOverrides) : storage(config));
        const replicas = await Promise.all(replicaNames(`${name}-`, options.replicas).map((replica) => stack.startReplica(resources, replica, extend)));
        const files = name === "rendered-filesystem" ? "files in one shared directory, index only in PostgreSQL" : "files as PostgreSQL large objects";
        return {
            name,
            description: `tenantOrthancConfig, ${options.replicas} replicas on one PostgreSQL, ${files}, the pod's TCP_NODELAY=${podEnvironment(stack.tenant, "orthanc").TCP_NODELAY}`,
            replicas,
            postgres: stack.postgres,
            clientEnv: dcmtkEnvironment(),
            dicomWebRoot: (replicas[0].config.DicomWeb as { Root: string }).Root,
            credentials: stack.admin,
        };
    }
    if (name === "korthweb") {
        const korthweb = readKorthwebConfig();
        // Room for every replica's connections (plugin 10.3 opens them all at start-up) and the benchmark's own sessions.
        const connectionsPerReplica = orthancConnections(korthweb.PostgreSQL as Parameters<typeof orthancConnections>[0]);
        const postgres = await startPostgres(resources, { maxConnections: options.replicas * connectionsPerReplica + 10 });
        await tunePostgres(postgres, options.postgresSettings);
        const replicas = await Promise.all(
            replicaNames("korthweb-", options.replicas).map((replica) =>
                startReplica(resources, {
                    name: replica,
                    config: korthweb,
                    postgres,
                    env: withoutNoDelay(),
                    adapt: (config, laptop) => ({
                        ...config,
                        // Debian's plugin directory; the Web Viewer plugin is not in the Orthanc root (it serves a
                        // viewer, no part of storing or retrieving); DICOMweb is added so that the STOW-RS and WADO-RS
                        // workloads have something to talk to (Korthweb's list does not load it).
                        Plugins: ["libOrthancPostgreSQLIndex.so", "libOrthancPostgreSQLStorage.so", "libOrthancDicomWeb.so"].map((plugin) =>
                            posix.join(laptop.pluginDirectory, plugin),
                        ),
                        HttpPort: laptop.httpPort,
                        DicomPort: laptop.dicomPort,
                        // Orthanc's defaults are relative to its working directory; a temp directory instead.
                        StorageDirectory: join(laptop.workDirectory, "storage"),
                        IndexDirectory: join(laptop.workDirectory, "index"),
                        // ${DB_ADDR}, ${DB_USERNAME}, ${DB_PASSWORD} filled with the throwaway database's; its port
                        // and database name instead of Korthweb's 5432 and orthancdb.
                        PostgreSQL: {
                            ...(config.PostgreSQL as Record<string, unknown>),
                            Host: laptop.database!.host,
                            Port: laptop.database!.port,
                            Database: postgres.database,
                            Username: postgres.user,
                            Password: postgres.password,
                        },
                    }),
                }),
            ),
        );
        return {
            name,
            description:
                `Korthweb's orthanc.json, ${options.replicas} replicas on one PostgreSQL (max_connections ${options.replicas * connectionsPerReplica + 10}: ` +
                `${connectionsPerReplica} per replica), no TCP_NODELAY`,
            replicas,
            postgres,
            clientEnv: withoutNoDelay(),
            dicomWebRoot: "/dicom-web/",
            credentials: adminCredentials(korthweb),
        };
    }
    // The ceiling: the rendered configuration without PostgreSQL, index and storage in the replica's temp directory.
    // Rendered as startTenantStack renders it; the database password goes nowhere.
    const config = productionConfig(testStackConfig().tenants[0], testDomain, generatePassword(), generatePassword());
    const replica = await startReplica(resources, {
        name: "ceiling",
        config,
        adapt: (config, laptop) => {
            const { PostgreSQL: _dropped, ...rest } = adaptForLaptop(config, {
                ...laptop,
                plugins: ["libOrthancDicomWeb.so"],
                database: { host: "127.0.0.1", port: 0 },
            });
            return rest;
        },
    });
    return {
        name,
        description: "rendered configuration without PostgreSQL: SQLite index + files on local disk, 1 process, the pod's environment",
        replicas: [replica],
        clientEnv: dcmtkEnvironment(),
        dicomWebRoot: (replica.config.DicomWeb as { Root: string }).Root,
        credentials: adminCredentials(config),
    };
}
