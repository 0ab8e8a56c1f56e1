/**
 * A model of what the orthancteam/orthanc image does between container start and Orthanc's start, as far as korthweb
 * relies on it. Read at orthanc-server/orthanc-builder tag 26.8.1 (the pinned image tag), docker/orthanc/:
 * - docker-entrypoint.sh: writes /etc/hostid unless GENERATE_HOST_ID_IF_MISSING=false (the image ships it as
 *   "not-generated"), then runs the configuration generator under errexit and starts Orthanc on /tmp/orthanc.json.
 * - generateConfiguration.py and configurator.py (OrthancConfigurator): merges /etc/orthanc/*.json then
 *   /run/secrets/*.json (each through envsubst first), then the environment (ORTHANC_JSON, ORTHANC__* mapped to JSON
 *   paths, values through json.loads), then fills missing keys from orthanc-defaults.json and the enabled plugins'
 *   defaults; a leaf defined again by a later file or variable is overwritten with a warning naming both sources
 *   (`_mergeConfigs`: "... has already been defined in file:...; it will be overwritten by the value defined in
 *   env-var:..."), defaults never overwrite; refuses deprecated settings (exit 254) and authentication without a registered user (exit 253); enables
 *   plugins (getEnabledPlugins) and links their libraries into /run/orthanc/plugins when that directory exists, else
 *   into /usr/share/orthanc/plugins.
 * Which storage area Orthanc then writes to (`storageArea`): the object-storage plugins (orthanc-object-storage 2.5.4
 * and 2.5.3, Common/StoragePlugin.cpp) register theirs when their section is defined, the PostgreSQL storage library
 * only when `PostgreSQL.EnableStorage` is true (orthanc-databases OrthancPostgreSQL-10.3, PostgreSQL/Plugins/
 * StoragePlugin.cpp, from shared/vendor; the image loads it with the index whenever PostgreSQL is on), and Orthanc
 * refuses a second registration (OrthancServer/Plugins/Engine/OrthancPlugins.cpp, `_OrthancPluginService_RegisterStorageArea`
 * throws ErrorCode_StorageAreaAlreadyRegistered; read on jodogne/OrthancMirror's `default` branch as mirrored, June
 * 2024); with none, Orthanc's own file system storage under `StorageDirectory`.
 * The data (plugins, deprecated names, defaults) is tests/upstream/orthancImageFacts.json, generated from the image's
 * own data files. This is a model, not the image: the integration suite boots Debian's Orthanc, not this start-up.
 */
import facts from "./orthancImageFacts.json";

type Json = Record<string, unknown>;

interface PluginFacts {
    section: string;
    enablingEnvVar: string;
    enablingEnvVarLegacy?: string;
    enablingEnvVarIsRequired: boolean;
    enablingRootSetting?: string;
    enabledByDefault: boolean;
    libs: string[];
    nonStandardDefaults: Json;
}

const plugins = facts.plugins as Record<string, PluginFacts>;
const legacyEnvVars = new Set(facts.legacyEnvVars);
const aliasEnvVars = facts.aliasEnvVars as Record<string, string>;
/** Plugin libraries are linked here when the directory exists (the pod mounts an emptyDir), else into the image. */
export const pluginLinkDirectory = "/run/orthanc/plugins";
const imagePluginDirectory = "/usr/share/orthanc/plugins";
const availablePluginDirectory = "/usr/share/orthanc/plugins-available";

export interface ContainerStart {
    /** JSON configuration files mounted under /etc/orthanc or /run/secrets, as text. */
    configFiles: string[];
    /** The container's environment as the kubelet sets it. */
    env: Record<string, string>;
    /** Directories that exist in the container besides the image's own (the pod's volume mounts). */
    mountedDirectories: string[];
    readOnlyRootFilesystem: boolean;
    /** The image's tag: the `-full` build carries the Azure and Google storage plugins, the default one does not. */
    imageTag?: string;
}

/**
 * Plugin libraries only the `-full` image carries: orthanc-builder 26.8.1 docker/orthanc/Dockerfile copies
 * libOrthancAwsS3Storage.so into the default image and the Azure and Google storage plugins into the "full" stage only.
 */
export const fullImageOnlyLibraries = ["libOrthancAzureBlobStorage.so", "libOrthancGoogleCloudStorage.so"];

export interface ImageStartResult {
    /** 0 when Orthanc is started; the start-up's own exit status otherwise. */
    exitCode: number;
    reasons: string[];
    /** /tmp/orthanc.json, what Orthanc runs on. */
    config: Json;
    enabledPlugins: string[];
    /** Library file names Orthanc loads. */
    loadedLibraries: string[];
    /**
     * Keys defined twice (by two files, or a file and a variable), each as the image warns about it: the JSON path,
     * where it was defined, and what overwrote it. One setting, one place: a second definition is a silent override.
     */
    redefinedKeys: string[];
    /** Who stores the DICOM files: a plugin section's name, "PostgreSQL", or "filesystem:<StorageDirectory>". */
    storageArea: string;
}

/** Storage plugins by library, and whether each registers its storage area with this configuration. */
const storageRegistrations: Record<string, (config: Json) => string | undefined> = {
    "libOrthancPostgreSQLStorage.so": (config) => ((config.PostgreSQL as Json | undefined)?.EnableStorage === true ? "PostgreSQL" : undefined),
    "libOrthancAwsS3Storage.so": (config) => ("AwsS3Storage" in config ? "AwsS3Storage" : undefined),
    "libOrthancAzureBlobStorage.so": (config) => ("AzureBlobStorage" in config ? "AzureBlobStorage" : undefined),
    "libOrthancGoogleCloudStorage.so": (config) => ("GoogleCloudStorage" in config ? "GoogleCloudStorage" : undefined),
};

export function startImage(input: ContainerStart): ImageStartResult {
    const reasons: string[] = [];
    let exitCode = 0;
    const fail = (code: number, reason: string) => {
        reasons.push(reason);
        exitCode ||= code;
    };
    const writable = (path: string) =>
        input.mountedDirectories.some((dir) => path === dir || path.startsWith(`${dir}/`)) || !input.readOnlyRootFilesystem;

    if (input.env.GENERATE_HOST_ID_IF_MISSING !== "false" && !writable("/etc/hostid")) {
        fail(1, "cannot write /etc/hostid on a read-only root filesystem (set GENERATE_HOST_ID_IF_MISSING=false)");
    }

    let config: Json = {};
    const sources = new Map<string, string>();
    const redefinedKeys: string[] = [];
    const merge = (over: Json, source: string) => {
        config = mergeReportingRedefinitions(config, over, source, [], sources, redefinedKeys);
    };
    input.configFiles.forEach((text, index) => merge(JSON.parse(envsubst(text, input.env)) as Json, `file:${index}`));
    const envEnabled = new Map<string, string>();
    for (const [name, value] of Object.entries(input.env)) {
        if (legacyEnvVars.has(name) || Object.values(plugins).some((p) => p.enablingEnvVarLegacy === name)) {
            fail(254, `deprecated setting ${name}`);
        } else if (name === "ORTHANC_JSON") {
            merge(JSON.parse(value) as Json, "env-var: ORTHANC_JSON");
        } else if (name.startsWith("ORTHANC__") || name in aliasEnvVars) {
            merge(setPath({}, jsonPathOfEnvVar(name), jsonLoads(value)), `env-var:${name}`);
        } else {
            envEnabled.set(name, value);
        }
    }

    const enabledPlugins = Object.entries(plugins)
        .filter(([, plugin]) => pluginEnabled(plugin, config, envEnabled))
        .map(([name]) => name);
    config = fillMissing(config, facts.defaults as Json);
    for (const name of enabledPlugins) {
        const plugin = plugins[name];
        config = fillMissing(config, { [plugin.section]: plugin.nonStandardDefaults });
    }

    const users = config.RegisteredUsers as Json | undefined;
    const authenticates = config.RemoteAccessAllowed !== false && config.AuthenticationEnabled !== false;
    if (authenticates && (!users || Object.keys(users).length === 0)) {
        fail(253, "authentication is enabled and no user is registered");
    }

    const linkDirectory = input.mountedDirectories.includes(pluginLinkDirectory) ? pluginLinkDirectory : imagePluginDirectory;
    const linked = enabledPlugins.flatMap((name) => plugins[name].libs);
    if (linked.length > 0 && !writable(linkDirectory)) {
        fail(255, `cannot link the enabled plugins into ${linkDirectory}`);
    }
    const missing = linked.filter((lib) => fullImageOnlyLibraries.includes(lib) && !(input.imageTag ?? "").endsWith("-full"));
    if (missing.length > 0) {
        fail(1, `not in the image ${input.imageTag ?? "(default)"}, only in its -full build: ${missing.join(", ")}`);
    }
    const loadedLibraries = loadedBy(config.Plugins as string[], linkDirectory, linked);
    const duplicates = loadedLibraries.filter((lib, index) => loadedLibraries.indexOf(lib) !== index);
    if (duplicates.length > 0) {
        fail(1, `Orthanc refuses a plugin reached twice: ${duplicates.join(", ")}`);
    }
    const registered = loadedLibraries.map((lib) => storageRegistrations[lib]?.(config)).filter((area): area is string => area !== undefined);
    if (registered.length > 1) {
        fail(1, `Orthanc refuses a second storage area (ErrorCode_StorageAreaAlreadyRegistered): ${registered.join(", ")}`);
    }
    const storageArea = registered[0] ?? `filesystem:${String(config.StorageDirectory)}`;
    return { exitCode, reasons, config, enabledPlugins, loadedLibraries, redefinedKeys, storageArea };
}

/**
 * configurator.py `_mergeConfigs` with overwrite: objects merge key by key; any other value replaces what was there,
 * and a replaced leaf is reported with the source that first defined it.
 */
function mergeReportingRedefinitions(base: Json, over: Json, source: string, path: string[], sources: Map<string, string>, redefined: string[]): Json {
    const merged: Json = { ...base };
    for (const [key, value] of Object.entries(over)) {
        const keyPath = [...path, key];
        const name = keyPath.join(".");
        if (isObject(value) && key in merged) {
            merged[key] = mergeReportingRedefinitions(isObject(merged[key]) ? (merged[key] as Json) : {}, value, source, keyPath, sources, redefined);
            continue;
        }
        if (key in merged) {
            // The image names the source only when the leaf itself was set; the object that brought it is as telling.
            const definedBy = keyPath.map((_, length) => sources.get(keyPath.slice(0, keyPath.length - length).join("."))).find((found) => found);
            redefined.push(`${name} defined in ${definedBy ?? "an earlier source"}, overwritten by ${source}`);
        }
        sources.set(name, source);
        merged[key] = value;
    }
    return merged;
}

/** A plugin is on by its section, its variable (anything but "false"), its root setting, or by default. */
function pluginEnabled(plugin: PluginFacts, config: Json, env: Map<string, string>): boolean {
    const variable = env.get(plugin.enablingEnvVar);
    if (variable === "false") {
        return false;
    }
    if (variable !== undefined) {
        return true;
    }
    if (plugin.enablingEnvVarIsRequired) {
        return false;
    }
    return plugin.section in config || (plugin.enablingRootSetting !== undefined && plugin.enablingRootSetting in config) || plugin.enabledByDefault;
}

/** What Orthanc loads from its `Plugins` list: every library in a listed directory, or a listed file. */
function loadedBy(entries: string[] | undefined, linkDirectory: string, linked: string[]): string[] {
    return (entries ?? []).flatMap((entry) => {
        if (entry === linkDirectory) {
            return linked;
        }
        if (entry === pluginLinkDirectory || entry === imagePluginDirectory) {
            return [];
        }
        const file = entry.split("/").pop()!;
        const known = [linkDirectory, availablePluginDirectory].some((dir) => entry === `${dir}/${file}`);
        return known ? [file] : [];
    });
}

/**
 * The image's name mapping: aliases map directly; otherwise ORTHANC__ is dropped, `__` separates levels, and each
 * level's `_`-separated words keep their first letter and lower the rest (POSTGRESQL is spelled POSTGRE_S_Q_L first).
 */
export function jsonPathOfEnvVar(name: string): string[] {
    if (name in aliasEnvVars) {
        return aliasEnvVars[name].split(".");
    }
    const spelled = name
        .replace(/^ORTHANC__POSTGRESQL__/, "ORTHANC__POSTGRE_S_Q_L__")
        .replace(/^ORTHANC__MYSQL__/, "ORTHANC__MY_S_Q_L__")
        .replace(/^ORTHANC__OHIF__/, "ORTHANC__O_H_I_F__");
    return spelled
        .replace(/^ORTHANC__/, "")
        .split("__")
        .map((level) =>
            level
                .split("_")
                .map((word) => word.charAt(0) + word.slice(1).toLowerCase())
                .join(""),
        );
}

/** envsubst as the image runs it over mounted files: `$NAME` and `${NAME}` become the variable, or nothing when unset. */
export function envsubst(text: string, env: Record<string, string>): string {
    return text.replace(/\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g, (_match, braced, op, fallback, bare) => {
        const name = braced ?? bare;
        const value = env[name];
        if (op === ":-") return value ? value : fallback;
        if (op === "-") return value !== undefined ? value : fallback;
        return value ?? "";
    });
}

function jsonLoads(value: string): unknown {
    try {
        return JSON.parse(value);
    } catch {
        return value;
    }
}

const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);

/** Defaults only fill what is missing. */
function fillMissing(config: Json, defaults: Json): Json {
    const filled: Json = { ...config };
    for (const [key, value] of Object.entries(defaults)) {
        if (!(key in filled)) {
            filled[key] = value;
        } else if (isObject(filled[key]) && isObject(value)) {
            filled[key] = fillMissing(filled[key] as Json, value);
        }
    }
    return filled;
}

function setPath(config: Json, path: string[], value: unknown): Json {
    const [head, ...rest] = path;
    if (rest.length === 0) {
        return { ...config, [head]: value };
    }
    return { ...config, [head]: setPath(isObject(config[head]) ? (config[head] as Json) : {}, rest, value) };
}
