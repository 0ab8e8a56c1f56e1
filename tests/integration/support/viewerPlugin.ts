/**
 * The image's OHIF plugin, as far as a browser can tell, in front of a replica: what the plugin serves under its
 * router basename (the OHIF build and the `app-config.js` it generates from the `OHIF` section of the configuration),
 * and everything else answered by Orthanc itself, as one HTTP server on one port (the pod's HTTP port, which the
 * gateway forwards to).
 *
 * Read from orthanc-ohif at the plugin version orthancteam/orthanc 26.8.1 carries (branch OrthancOHIF-1.8, commit
 * 94f24c3 "1.8"; orthanc-builder 26.8.1 build-matrix.json names `OrthancOHIF-1.8`):
 * - Sources/Plugin.cpp, `OrthancPluginInitialize`: reads `OHIF.RouterBasename` (default "/ohif/", a trailing slash
 *   added), `OHIF.DataSource` ("dicom-web", the default, or "dicom-json"; anything else stops the plugin) and
 *   `OHIF.UserConfiguration` (a file replacing the embedded user part); registers `/ohif` and `/ohif/(.*)` as REST
 *   callbacks, so Orthanc's own authentication runs before them.
 * - Sources/Plugin.cpp, `ServeFile`: `app-config.js` is the user part, a newline, then the system part with
 *   ROUTER_BASENAME and USE_DICOM_WEB substituted; "", "tmtv", "viewer", "segmentation" and "microscopy" answer
 *   index.html (OHIF's modes); any other path is the asset of that name. Every answer carries COEP require-corp, COOP
 *   same-origin and CORP same-origin (for SharedArrayBuffer).
 * - Sources/app-config-user.js (the embedded user part) and Sources/app-config-system.js (the `dicomweb` data source
 *   with relative roots `../dicom-web`): modelled in `ohifAppConfig` below, value by value.
 *
 * What differs, and why: the plugin embeds a build of OHIF made with PUBLIC_URL=./ (Resources/CreateOHIFDist/build.sh);
 * npm's @ohif/app is built with PUBLIC_URL=/, so its absolute asset paths are rebased onto the router basename when
 * served (`rebaseOhifAsset`), as a build with PUBLIC_URL=/ohif/ would have written them. Left out of the user part:
 * the keyboard shortcuts (`hotkeys`) and `httpErrorHandler` (it only logs), which change nothing a screenshot shows.
 * The dicom-json data source (the plugin's own study JSON at /studies/{id}/ohif-dicom-json) is not modelled: the
 * rendered configuration selects dicom-web.
 */
import { once } from "events";
import { existsSync, readFileSync, statSync } from "fs";
import { createServer, IncomingMessage, request as httpRequest, ServerResponse } from "http";
import { extname, join, normalize, sep } from "path";
import { OrthancConfig } from "../../../components/tenant/orthancConfig";
import { Resources } from "./processes";

export interface OhifPluginSettings {
    /** Where the viewer is served, with a trailing slash. */
    routerBasename: string;
    dataSource: "dicom-web";
}

/** What the plugin makes of the configuration's `OHIF` section; throws where the plugin would refuse to start. */
export function ohifPluginSettings(config: OrthancConfig): OhifPluginSettings {
    const section = (config.OHIF ?? {}) as Record<string, unknown>;
    let routerBasename = section.RouterBasename === undefined ? "/ohif/" : String(section.RouterBasename);
    if (!routerBasename.endsWith("/")) {
        routerBasename += "/";
    }
    const dataSource = section.DataSource === undefined ? "dicom-web" : String(section.DataSource);
    if (dataSource === "dicom-json") {
        throw new Error('OHIF.DataSource "dicom-json" is not modelled by this stand-in (the rendered configuration selects "dicom-web")');
    }
    if (dataSource !== "dicom-web") {
        throw new Error(`OHIF.DataSource must be "dicom-web" or "dicom-json" (the plugin refuses to start otherwise), got ${JSON.stringify(dataSource)}`);
    }
    if (section.UserConfiguration !== undefined) {
        throw new Error("OHIF.UserConfiguration (a site's own app-config user part) is not modelled by this stand-in");
    }
    if (routerBasename !== "/ohif/") {
        // The plugin registers its callbacks at /ohif whatever the basename: another basename breaks its own links.
        throw new Error(`OHIF.RouterBasename ${routerBasename}: the plugin serves /ohif/ only`);
    }
    return { routerBasename, dataSource };
}

/** The DICOMweb roots the plugin's system part gives OHIF: relative, so they resolve against the viewer's own origin. */
export const ohifDicomWebRoot = "../dicom-web";

/** The `app-config.js` the plugin answers for these settings (the embedded user part, then the system part). */
export function ohifAppConfig(settings: OhifPluginSettings): string {
    const userPart = {
        extensions: [],
        modes: [],
        customizationService: {},
        showStudyList: true,
        maxNumberOfWebWorkers: 3,
        omitQuotationForMultipartRequest: true,
        showWarningMessageForCrossOrigin: true,
        showCPUFallbackMessage: true,
        showLoadingIndicator: true,
        strictZSpacingForVolumeViewport: true,
        maxNumRequests: { interaction: 100, thumbnail: 75, prefetch: 25 },
    };
    const dicomWeb = {
        friendlyName: "Orthanc DICOMweb",
        namespace: "@ohif/extension-default.dataSourcesModule.dicomweb",
        sourceName: "dicomweb",
        configuration: {
            name: "orthanc",
            wadoUriRoot: ohifDicomWebRoot,
            qidoRoot: ohifDicomWebRoot,
            wadoRoot: ohifDicomWebRoot,
            qidoSupportsIncludeField: false,
            supportsReject: false,
            imageRendering: "wadors",
            thumbnailRendering: "wadors",
            enableStudyLazyLoad: true,
            supportsFuzzyMatching: false,
            supportsWildcard: true,
            staticWado: true,
            singlepart: "bulkdata,video",
            acceptHeader: ["multipart/related; type=application/octet-stream; transfer-syntax=*"],
            bulkDataURI: { enabled: true, relativeResolution: "studies" },
        },
    };
    return [
        `window.config = ${JSON.stringify(userPart, null, 2)};`,
        `window.config.routerBasename = ${JSON.stringify(settings.routerBasename)};`,
        `window.config.dataSources = [${JSON.stringify(dicomWeb, null, 2)}];`,
        `window.config.defaultDataSourceName = "dicomweb";`,
        "",
    ].join("\n");
}

/** What the plugin answers for the path after its basename (query string removed). */
export type OhifPluginAnswer = { kind: "app-config" } | { kind: "asset"; path: string };

/** OHIF's modes, each a client-side route that loads index.html. */
const ohifModes = new Set(["", "tmtv", "viewer", "segmentation", "microscopy"]);

export function ohifPluginAnswer(uri: string): OhifPluginAnswer {
    if (uri === "app-config.js") {
        return { kind: "app-config" };
    }
    return { kind: "asset", path: ohifModes.has(uri) ? "index.html" : uri };
}

/** The MIME types Orthanc's `AutodetectMimeType` gives the extensions an OHIF build contains. */
const mimeTypes: Record<string, string> = {
    ".html": "text/html",
    ".js": "application/javascript",
    ".mjs": "application/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".xml": "application/xml",
    ".txt": "text/plain",
};

/** The build's PUBLIC_URL ("/", npm's @ohif/app) as it appears in each kind of file, and how often at least. */
const publicUrlSites: { extension: string; pattern: RegExp; rewrite: (basename: string) => string }[] = [
    { extension: ".html", pattern: /window\.PUBLIC_URL = '\/'/g, rewrite: (basename) => `window.PUBLIC_URL = '${basename}'` },
    { extension: ".html", pattern: / (href|src)="\/(?!\/)/g, rewrite: (basename) => ` $1="${basename}` },
    // webpack's public path, in the app bundle and in each worker bundle.
    { extension: ".js", pattern: /__webpack_require__\.p = "\/";/g, rewrite: (basename) => `__webpack_require__.p = "${basename}";` },
    { extension: ".css", pattern: /url\(\/(?!\/)/g, rewrite: (basename) => `url(${basename}` },
];

/** An asset of npm's @ohif/app (built for "/") as a build for `basename` would have it. */
export function rebaseOhifAsset(path: string, content: Buffer, basename: string): Buffer {
    const sites = publicUrlSites.filter((site) => site.extension === extname(path));
    if (sites.length === 0 || basename === "/") {
        return content;
    }
    let text = content.toString("utf8");
    for (const site of sites) {
        text = text.replace(site.pattern, site.rewrite(basename));
    }
    return Buffer.from(text, "utf8");
}

export interface OhifPlugin {
    readonly port: number;
    /** Requests the plugin answered (path and status), in order; Orthanc's own answers are not listed. */
    readonly served: { path: string; status: number }[];
}

/**
 * Starts the plugin stand-in on a free port of 127.0.0.1: `/ohif` and `/ohif/...` are the plugin's, once Orthanc has
 * authenticated the request; every other request goes to Orthanc unchanged.
 *
 * Authentication is Orthanc's own: a request for the plugin is first sent to Orthanc as it came (method, path,
 * headers). Orthanc answers 401 before routing when the credentials are wrong, and 404 when they are right (it has no
 * such route without the plugin); only then does the stand-in answer as the plugin's callback would.
 */
export async function startOhifPlugin(
    resources: Resources,
    options: {
        orthancPort: number;
        settings: OhifPluginSettings;
        dist: string;
        /**
         * Headers set on every answer, Orthanc's and the plugin's, as the gateway's web route sets them
         * (ingress.ts, webResponseHeaders): the TLS terminator in front cannot, so the stand-in does it for it.
         */
        responseHeaders?: Record<string, string>;
    },
): Promise<OhifPlugin> {
    const { orthancPort, settings, dist } = options;
    const setHeaders = (headers: Record<string, string | string[] | number | undefined>) => {
        const set = options.responseHeaders ?? {};
        const names = new Set(Object.keys(set).map((name) => name.toLowerCase()));
        return { ...Object.fromEntries(Object.entries(headers).filter(([name]) => !names.has(name.toLowerCase()))), ...set };
    };
    if (!existsSync(join(dist, "index.html"))) {
        throw new Error(`no OHIF build in ${dist}`);
    }
    const appConfig = Buffer.from(ohifAppConfig(settings), "utf8");
    const cache = new Map<string, Buffer>();
    const served: OhifPlugin["served"] = [];
    const pluginPrefix = settings.routerBasename.replace(/\/$/, "");

    const forward = (request: IncomingMessage, response: ServerResponse | null): Promise<IncomingMessage> =>
        new Promise((resolve, reject) => {
            const upstream = httpRequest(
                { host: "127.0.0.1", port: orthancPort, path: request.url, method: request.method, headers: request.headers },
                (answer) => {
                    if (response) {
                        response.writeHead(answer.statusCode ?? 502, setHeaders(answer.headers));
                        answer.pipe(response);
                    }
                    resolve(answer);
                },
            );
            upstream.on("error", reject);
            if (response) {
                request.pipe(upstream);
            } else {
                upstream.end();
            }
        });

    const answerPlugin = async (request: IncomingMessage, response: ServerResponse, uri: string) => {
        const orthanc = await forward(request, null);
        orthanc.resume();
        if (orthanc.statusCode === 401) {
            served.push({ path: request.url ?? "", status: 401 });
            response.writeHead(401, setHeaders({ "WWW-Authenticate": orthanc.headers["www-authenticate"] ?? "Basic" }));
            response.end();
            return;
        }
        if (orthanc.statusCode !== 404) {
            throw new Error(`Orthanc answered ${orthanc.statusCode} for ${request.url}, a path the OHIF plugin owns`);
        }
        const answer = ohifPluginAnswer(uri);
        let body: Buffer | undefined;
        let path = "app-config.js";
        if (answer.kind === "app-config") {
            body = appConfig;
        } else {
            path = answer.path;
            const file = normalize(join(dist, path));
            if (file.startsWith(dist + sep) && existsSync(file) && statSync(file).isFile()) {
                body = cache.get(file) ?? rebaseOhifAsset(path, readFileSync(file), settings.routerBasename);
                cache.set(file, body);
            }
        }
        const status = body ? 200 : 404;
        served.push({ path: request.url ?? "", status });
        response.writeHead(
            status,
            setHeaders({
                "Content-Type": body ? mimeTypes[extname(path)] ?? "application/octet-stream" : "text/plain",
                "Cross-Origin-Embedder-Policy": "require-corp",
                "Cross-Origin-Opener-Policy": "same-origin",
                "Cross-Origin-Resource-Policy": "same-origin",
            }),
        );
        response.end(body ?? "");
    };

    const server = createServer((request, response) => {
        const path = (request.url ?? "/").split("?")[0];
        const uri = path === pluginPrefix ? "" : path.startsWith(`${pluginPrefix}/`) ? decodeURIComponent(path.slice(pluginPrefix.length + 1)) : undefined;
        const handled = uri === undefined ? forward(request, response) : answerPlugin(request, response, uri);
        handled.catch((error: unknown) => {
            if (!response.headersSent) {
                response.writeHead(502, { "Content-Type": "text/plain" });
            }
            response.end(String(error));
        });
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const address = server.address();
    if (typeof address !== "object" || !address) {
        throw new Error("OHIF plugin stand-in has no address");
    }
    resources.defer(
        () =>
            new Promise<void>((resolve) => {
                server.closeAllConnections();
                server.close(() => resolve());
            }),
    );
    return { port: address.port, served };
}
