/**
 * Orthanc replicas booted from the configuration the program renders for a tenant.
 *
 * `productionConfig` calls `orthancConfig` with the values the tenant component passes in the cluster; only
 * `adaptForLaptop` changes it, and only where a laptop must differ from a pod. Everything else (authentication,
 * PostgreSQL index and storage, Lock, SaveJobs, ...) is what the pods get.
 */
import assert from "assert";
import { randomBytes } from "crypto";
import { writeFileSync } from "fs";
import { tmpdir } from "os";
import { basename, join, posix, relative } from "path";
import { TenantConfig } from "../../../components/config/schema";
import { OrthancConfig, orthancConfigFiles } from "../../../components/tenant/orthancConfig";
import { orthancDeploymentSpec, orthancWorkDirectory, tenantOrthancConfig } from "../../../components/tenant/orthancWorkload";
import { orthancImage } from "../../../components/versions";
import { Postgres } from "./postgres";
// stack.ts builds on this file; its testStackConfig is only called at run time, so the cycle is harmless.
import { testStackConfig } from "./stack";
import { imageVersions, laptopPlugins, orthancRoot, OrthancRootName, orthancRootLayout } from "./prerequisites";
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

/**
 * The Orthanc container's environment as the rendered Deployment sets it (`orthancDeploymentSpec`), for a pod named
 * `podName`: literal values as they are, `metadata.name` references as the pod's name. Orthanc's DICOM server is DCMTK,
 * which reads TCP_NODELAY from here; the image's own variables (ORTHANC__*, plugin switches) are passed too, and Debian's
 * Orthanc ignores them. Any other kind of reference is an error: the suite would have to learn what a pod gets.
 */
export function podEnvironment(tenant: TenantConfig, podName: string): Record<string, string> {
    const spec = orthancDeploymentSpec(tenant.name, tenant.orthanc, "laptop");
    const container = (spec.template as { spec: { containers: { env?: unknown[] }[] } }).spec.containers[0];
    const env: Record<string, string> = {};
    for (const entry of (container.env ?? []) as { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[]) {
        if (typeof entry.value === "string") {
            env[entry.name] = entry.value;
        } else if (entry.valueFrom?.fieldRef?.fieldPath === "metadata.name") {
            env[entry.name] = podName;
        } else {
            throw new Error(`the pod's ${entry.name} comes from ${JSON.stringify(entry.valueFrom)}: the suite does not know what a pod gets`);
        }
    }
    return env;
}

/**
 * What Orthanc's process runs with on the laptop: the pod's environment and a PATH, nothing of the suite's own (a
 * TCP_NODELAY exported in the shell that runs the suite must not stand in for the pod's).
 */
export function orthancProcessEnvironment(pod: Record<string, string>): NodeJS.ProcessEnv {
    return { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", ...pod };
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
    /** A temp directory instead of the configuration Secret's mount: the files the configuration names (the Lua filter). */
    configDirectory: string;
    /**
     * Set per pod in the cluster by ORTHANC__DATABASE_SERVER_IDENTIFIER (the pod name), which the image's start-up
     * writes into the configuration and Debian's Orthanc does not read: adaptForLaptop writes it itself.
     */
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
        // The pod reads the files beside the configuration from the Secret's mount; startReplica writes them here.
        ...(config.LuaScripts === undefined ? {} : { LuaScripts: (config.LuaScripts as string[]).map((path) => join(laptop.configDirectory, basename(path))) }),
    };
}

/** Writes the files the configuration Secret carries beside the configuration (the Lua filter) into `directory`. */
export function writeConfigFiles(directory: string): void {
    for (const [name, text] of Object.entries(orthancConfigFiles())) writeFileSync(join(directory, name), text, { mode: 0o600 });
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
    /** The Orthanc root it runs in (a path). */
    readonly root: string;
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
    /**
     * Orthanc's environment; when absent, the pod's: `podEnvironment` of `tenant` (the suite's first tenant when
     * absent too) for a pod named after the replica. Another configuration (Korthweb's) brings its own side's.
     */
    env?: NodeJS.ProcessEnv;
    /** The tenant whose pod the replica stands for. */
    tenant?: TenantConfig;
    /** The Orthanc root to run in: `sid` (the image's versions) unless said otherwise. */
    root?: OrthancRootName;
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
export function inOrthancRoot(argv: string[], root: string): [string, string[]] {
    const shared = tmpdir();
    const namespaces = process.getuid?.() === 0 ? ["--mount"] : ["--user", "--map-root-user", "--mount"];
    const script = 'root="$1"; shared="$2"; shift 2; mount --bind "$shared" "$root$shared" && exec chroot "$root" "$@"';
    return ["unshare", [...namespaces, "--propagation", "private", "--", "/bin/sh", "-c", script, "sh", root, shared, ...argv]];
}

/** What a replica runs, as Orthanc reports it: its version (`/system`) and each plugin's (`/plugins/<id>`). */
export interface ReportedVersions {
    orthanc: string;
    plugins: Record<string, string>;
    /** The Orthanc root it runs in (a path). */
    root: string;
}

export async function reportedVersions(replica: Replica): Promise<ReportedVersions> {
    const system = await replica.getJson<{ Version: string }>("/system");
    // The list also names "explorer.js" (the plugins' extensions of Orthanc Explorer), which is no plugin.
    const names = (await replica.getJson<string[]>("/plugins")).filter((plugin) => plugin !== "explorer.js");
    const plugins: Record<string, string> = {};
    for (const name of names) {
        plugins[name] = (await replica.getJson<{ Version: string }>(`/plugins/${name}`)).Version;
    }
    return { orthanc: system.Version, plugins, root: replica.root };
}

export function formatVersions(versions: ReportedVersions): string {
    const plugins = Object.entries(versions.plugins).map(([name, version]) => `${name} ${version}`);
    return `Orthanc ${versions.orthanc}, plugins: ${plugins.join(", ")} (root ${versions.root})`;
}

/** For the suite's output: what a replica runs on. */
export async function describeVersions(replica: Replica): Promise<string> {
    return formatVersions(await reportedVersions(replica));
}

/**
 * How `versions` differ from the pinned image's (`imageVersions`), one line each; none when they are the image's. The
 * expected versions were read for one image tag: a new pin must come with them re-read.
 */
export function differencesFromImage(versions: ReportedVersions): string[] {
    const differences: string[] = [];
    if (orthancImage.tag !== imageVersions.imageTag) {
        differences.push(`the pinned image is ${orthancImage.tag}, the expected versions are ${imageVersions.imageTag}'s: re-read its build-matrix.json`);
    }
    if (versions.orthanc !== imageVersions.orthanc) {
        differences.push(`Orthanc ${versions.orthanc}, the image has ${imageVersions.orthanc}`);
    }
    for (const [plugin, version] of Object.entries(imageVersions.plugins)) {
        if (versions.plugins[plugin] !== version) {
            differences.push(`plugin ${plugin} ${versions.plugins[plugin] ?? "not loaded"}, the image has ${version}`);
        }
    }
    return differences;
}

/** Starts a replica and waits until its REST API answers the admin. */
export async function startReplica(resources: Resources, options: ReplicaOptions): Promise<Replica> {
    const env = options.env ?? orthancProcessEnvironment(podEnvironment(options.tenant ?? testStackConfig().tenants[0], `orthanc-${options.name}`));
    const workDirectory = resources.tempDir(`orthanc-${options.name}`);
    const laptop = {
        pluginDirectory: orthancRootLayout.pluginDirectory,
        plugins: laptopPlugins,
        database: options.postgres ? { host: options.postgres.host, port: options.postgres.port } : undefined,
        httpPort: await freePort(),
        dicomPort: await freePort(),
        workDirectory,
        configDirectory: resources.tempDir(`orthanc-config-${options.name}`),
        // What the image's start-up writes from the pod's ORTHANC__DATABASE_SERVER_IDENTIFIER.
        serverIdentifier: env.ORTHANC__DATABASE_SERVER_IDENTIFIER ?? `orthanc-${options.name}`,
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
    // The files the configuration Secret carries beside the configuration (the Lua filter), as the pods get them.
    writeConfigFiles(laptop.configDirectory);
    const configFile = join(workDirectory, "orthanc.json");
    // The file holds the passwords, as the pods' Secret does.
    writeFileSync(configFile, JSON.stringify(config, null, 2), { mode: 0o600 });

    const root = orthancRoot(options.root);
    const [command, args] = inOrthancRoot([orthancRootLayout.binary, configFile], root);
    const child = resources.start(`orthanc-${options.name}`, command, args, { env, logFile: join(workDirectory, "orthanc.log") });
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
        root,
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

/**
 * Orthanc's id of the instance with SOP Instance UID `sopInstanceUid` (POST /tools/lookup, whose body is the bare UID,
 * not JSON), or undefined when the replica does not know it.
 */
export async function lookupInstance(replica: Replica, sopInstanceUid: string): Promise<string | undefined> {
    return lookupResource(replica, sopInstanceUid, "Instance");
}

/** Orthanc's id of the resource of `level` with DICOM UID `uid`, or undefined when the replica does not know it. */
export async function lookupResource(replica: Replica, uid: string, level: "Patient" | "Study" | "Series" | "Instance"): Promise<string | undefined> {
    const response = await replica.request("/tools/lookup", { method: "POST", body: uid });
    assert.strictEqual(response.status, 200, `lookup on replica ${replica.name}: HTTP ${response.status}`);
    return ((await response.json()) as { ID: string; Type: string }[]).find((entry) => entry.Type === level)?.ID;
}

/** `lookupInstance`, failing when the replica does not know the instance. */
export async function instanceIdOf(replica: Replica, sopInstanceUid: string): Promise<string> {
    const id = await lookupInstance(replica, sopInstanceUid);
    assert.ok(id, `replica ${replica.name} does not know SOP instance ${sopInstanceUid}`);
    return id;
}
