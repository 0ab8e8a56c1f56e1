/**
 * Orthanc replicas booted from the configuration the program renders for a tenant.
 *
 * `productionConfig` calls `orthancConfig` with the values the tenant component passes in the cluster; only
 * `adaptForLaptop` changes it, and only where a laptop must differ from a pod. Everything else (authentication,
 * PostgreSQL index and storage, Lock, SaveJobs, ...) is what the pods get.
 */
import { randomBytes } from "crypto";
import { writeFileSync } from "fs";
import { tmpdir } from "os";
import { basename, join, posix, relative } from "path";
import { TenantConfig } from "../../../components/config/schema";
import { OrthancConfig } from "../../../components/tenant/orthancConfig";
import { orthancWorkDirectory, tenantOrthancConfig } from "../../../components/tenant/orthancWorkload";
import { dcmtkEnvironment } from "./dcmtk";
import { Postgres } from "./postgres";
import { laptopPlugins, orthancRoot, orthancRootLayout } from "./prerequisites";
import { Child, freePort, portOpen, Resources, waitUntil } from "./processes";

export interface Credentials {
    user: string;
    password: string;
}

/** Generated like the program's random passwords: fresh per run, never a constant a test could pass by accident. */
export function generatePassword(): string {
    return randomBytes(24).toString("base64url");
}

/** The tenant's configuration exactly as the program renders it into the pods' Secret. */
export function productionConfig(tenant: TenantConfig, domain: string, adminPassword: string, databasePassword: string): OrthancConfig {
    return tenantOrthancConfig(tenant, domain, { adminPassword, databasePassword });
}

export interface LaptopSettings {
    /** Debian installs the plugin libraries in another directory than the image (a path inside the Orthanc root). */
    pluginDirectory: string;
    /**
     * Library names of the plugins to load from `pluginDirectory`. The rendered configuration names none: the image's
     * start-up builds `Plugins` from the plugins its environment variables enable.
     */
    plugins: readonly string[];
    /** The throwaway PostgreSQL instead of the tenant's Pgpool Service. */
    database: { host: string; port: number };
    /** Free ports: several replicas share one host instead of one pod each. */
    httpPort: number;
    dicomPort: number;
    /** A temp directory instead of the pod's emptyDir. */
    workDirectory: string;
    /** Set per pod in the cluster (ORTHANC__DATABASE_SERVER_IDENTIFIER); Debian's Orthanc reads no such variables. */
    serverIdentifier: string;
}

/**
 * The only place the suite departs from the rendered configuration. Every key it touches is listed here, and the
 * first test checks that nothing else differs.
 */
export function adaptForLaptop(config: OrthancConfig, laptop: LaptopSettings): OrthancConfig {
    const relocate = (path: unknown) => join(laptop.workDirectory, relative(orthancWorkDirectory, String(path)));
    for (const plugin of laptop.plugins) {
        if (basename(plugin) !== plugin) {
            throw new Error(`plugins are library names in ${laptop.pluginDirectory}, not paths: ${plugin}`);
        }
    }
    return {
        ...config,
        // The rendered configuration names no plugins (the image's start-up chooses them); Debian's Orthanc needs them named.
        Plugins: laptop.plugins.map((plugin) => posix.join(laptop.pluginDirectory, plugin)),
        HttpPort: laptop.httpPort,
        DicomPort: laptop.dicomPort,
        StorageDirectory: relocate(config.StorageDirectory),
        IndexDirectory: relocate(config.IndexDirectory),
        DatabaseServerIdentifier: laptop.serverIdentifier,
        PostgreSQL: { ...(config.PostgreSQL as Record<string, unknown>), Host: laptop.database.host, Port: laptop.database.port },
    };
}

/** Dotted paths of the leaves that differ between two configurations (for checking what adaptForLaptop touched). */
export function changedKeys(before: unknown, after: unknown, prefix = ""): string[] {
    const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);
    if (isObject(before) && isObject(after)) {
        const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
        return keys.flatMap((key) => changedKeys(before[key], after[key], prefix ? `${prefix}.${key}` : key));
    }
    return JSON.stringify(before) === JSON.stringify(after) ? [] : [prefix];
}

/** Credentials of the configuration's only registered user. */
export function adminCredentials(config: OrthancConfig): Credentials {
    const [user, password] = Object.entries(config.RegisteredUsers as Record<string, string>)[0];
    return { user, password };
}

export interface Replica {
    readonly name: string;
    readonly httpPort: number;
    readonly dicomPort: number;
    readonly aeTitle: string;
    /** The work directory of this run: a fresh one per start, so a restart cannot read anything a previous run left. */
    readonly workDirectory: string;
    /** The configuration file Orthanc was started with. */
    readonly config: OrthancConfig;
    readonly child: Child;
    /** An HTTP request to the REST API; `credentials` defaults to the admin's, `null` sends none. */
    request(path: string, options?: { credentials?: Credentials | null; method?: string; body?: string }): Promise<Response>;
    /** GET as admin, expecting 200 and JSON. */
    getJson<T = unknown>(path: string): Promise<T>;
    /** POST as admin, expecting 200 and JSON. */
    postJson<T = unknown>(path: string, body: unknown): Promise<T>;
    /** GET as admin, expecting 200; the body's bytes. */
    getBytes(path: string): Promise<Buffer>;
}

export interface ReplicaOptions {
    /** Identifies the replica in logs and in its DatabaseServerIdentifier. */
    name: string;
    /** The rendered (production) configuration, the same for every replica of a tenant. */
    config: OrthancConfig;
    /** The database of `adaptForLaptop`; only a custom `adapt` may do without one. */
    postgres?: Postgres;
    /** Test-only additions on top of the laptop configuration (e.g. DICOM TLS); the caller explains why. */
    extend?: (config: OrthancConfig, workDirectory: string) => OrthancConfig;
    /**
     * Replaces `adaptForLaptop` (the benchmark boots configurations that are not the program's: Korthweb's, and one
     * without PostgreSQL). `database` is the throwaway PostgreSQL's address when `postgres` is given.
     */
    adapt?: (config: OrthancConfig, laptop: Omit<LaptopSettings, "database"> & { database?: LaptopSettings["database"] }) => OrthancConfig;
    /** Orthanc's environment; `dcmtkEnvironment()` (TCP_NODELAY=1, as the pods set it) when absent. */
    env?: NodeJS.ProcessEnv;
}

/**
 * The command that runs `argv` chrooted in the Orthanc root, seeing the suite's temp directory (work directories,
 * configuration files, certificates) at the same path as the suite does.
 *
 * `unshare` gives the process a private mount namespace, in which the temp directory is bind-mounted into the root:
 * the mount exists only as long as the process and is never visible to the host, so a killed run leaves nothing
 * mounted. unshare, sh and chroot each exec the next, so the pid the suite tracks and signals is Orthanc's own. The
 * root shares the host's network namespace: Orthanc reaches the suite's PostgreSQL on 127.0.0.1. As root the suite
 * uses the real mount namespace privileges; otherwise an unprivileged user namespace maps the user to root.
 */
export function inOrthancRoot(argv: string[], root = orthancRoot()): [string, string[]] {
    const shared = tmpdir();
    const namespaces = process.getuid?.() === 0 ? ["--mount"] : ["--user", "--map-root-user", "--mount"];
    const script = 'root="$1"; shared="$2"; shift 2; mount --bind "$shared" "$root$shared" && exec chroot "$root" "$@"';
    return ["unshare", [...namespaces, "--propagation", "private", "--", "/bin/sh", "-c", script, "sh", root, shared, ...argv]];
}

/** What a replica runs on, from its REST API: Orthanc's version and its plugins' (for the suite's output). */
export async function describeVersions(replica: Replica): Promise<string> {
    const system = await replica.getJson<{ Version: string }>("/system");
    // The list also names "explorer.js" (the plugins' extensions of Orthanc Explorer), which is no plugin.
    const plugins = (await replica.getJson<string[]>("/plugins")).filter((plugin) => plugin !== "explorer.js");
    const versions = await Promise.all(
        plugins.map(async (plugin) => `${plugin} ${(await replica.getJson<{ Version: string }>(`/plugins/${plugin}`)).Version}`),
    );
    return `Orthanc ${system.Version} (${orthancRoot()}), plugins: ${versions.join(", ")}`;
}

/** Starts a replica and waits until its REST API answers the admin. */
export async function startReplica(resources: Resources, options: ReplicaOptions): Promise<Replica> {
    const workDirectory = resources.tempDir(`orthanc-${options.name}`);
    const laptop = {
        pluginDirectory: orthancRootLayout.pluginDirectory,
        plugins: laptopPlugins,
        database: options.postgres ? { host: options.postgres.host, port: options.postgres.port } : undefined,
        httpPort: await freePort(),
        dicomPort: await freePort(),
        workDirectory,
        serverIdentifier: `orthanc-${options.name}`,
    };
    let laptopConfig: OrthancConfig;
    if (options.adapt) {
        laptopConfig = options.adapt(options.config, laptop);
    } else if (laptop.database) {
        laptopConfig = adaptForLaptop(options.config, { ...laptop, database: laptop.database });
    } else {
        throw new Error(`replica ${options.name}: adaptForLaptop needs the PostgreSQL the replica uses`);
    }
    const config = options.extend ? options.extend(laptopConfig, workDirectory) : laptopConfig;
    const configFile = join(workDirectory, "orthanc.json");
    // The file holds the passwords, as the pods' Secret does.
    writeFileSync(configFile, JSON.stringify(config, null, 2), { mode: 0o600 });

    const [command, args] = inOrthancRoot([orthancRootLayout.binary, configFile]);
    const child = resources.start(`orthanc-${options.name}`, command, args, {
        // Orthanc's DICOM server is DCMTK too: it reads TCP_NODELAY from its environment.
        env: options.env ?? dcmtkEnvironment(),
        logFile: join(workDirectory, "orthanc.log"),
    });
    const httpPort = config.HttpPort as number;
    const admin = adminCredentials(config);
    const request: Replica["request"] = (path, requestOptions = {}) => {
        const credentials = requestOptions.credentials === undefined ? admin : requestOptions.credentials;
        const headers: Record<string, string> = {};
        if (credentials) {
            headers.Authorization = `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString("base64")}`;
        }
        return fetch(`http://127.0.0.1:${httpPort}${path}`, { method: requestOptions.method ?? "GET", headers, body: requestOptions.body });
    };
    const expectOk = async (response: Response, what: string) => {
        if (response.status !== 200) {
            throw new Error(`${what} on replica ${options.name}: HTTP ${response.status} ${await response.text()}`);
        }
        return response;
    };
    const replica: Replica = {
        name: options.name,
        httpPort,
        dicomPort: config.DicomPort as number,
        aeTitle: config.DicomAet as string,
        workDirectory,
        config,
        child,
        request,
        getJson: async (path) => (await expectOk(await request(path), `GET ${path}`)).json() as never,
        postJson: async (path, body) =>
            (await expectOk(await request(path, { method: "POST", body: JSON.stringify(body) }), `POST ${path}`)).json() as never,
        getBytes: async (path) => Buffer.from(await (await expectOk(await request(path), `GET ${path}`)).arrayBuffer()),
    };
    await waitUntil(
        "the REST API answers",
        child,
        async () => (await portOpen(httpPort)) && (await request("/system").then((r) => r.status === 200, () => false)),
    );
    return replica;
}
