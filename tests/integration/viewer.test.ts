/**
 * The display path, in a real browser: the OHIF viewer the image's OHIF plugin serves (npm's @ohif/app at the
 * plugin's version, configured as the plugin configures it from the rendered `OHIF` section), reached through the
 * tenant's gateway (HTTPS with the tenant's server certificate, support/gatewayTerminator) with the tenant's admin
 * credentials, reading the rendered configuration's Orthanc with Debian's DICOMweb plugin, shown in Debian's Chromium.
 * The study holds a known picture; a screenshot of the viewport must show it.
 *
 * What is a stand-in: the plugin itself (support/viewerPlugin: what it serves and generates, read from its sources)
 * and the gateway (a Node TLS terminator set up from the program's Gateway builder). Everything else is the real thing.
 */
import assert from "assert";
import { mkdirSync, readFileSync, writeFileSync } from "fs";
import { join, resolve } from "path";
import type { Browser, HTTPResponse, Page } from "puppeteer-core";
import { dicomWebRoot } from "../../components/tenant/orthancConfig";
import { webGatewaySpec, webResponseHeaders } from "../../components/tenant/ingress";
import type { TenantNames } from "../../components/naming/tenantNames";
import { stow, WebTarget, webRequest } from "./support/dicomWeb";
import { gatewayServerTls, startTerminator, Terminator } from "./support/gatewayTerminator";
import { Credentials, describeVersions, Replica } from "./support/orthanc";
import { buildTestPki } from "./support/pki";
import { Resources, sleep } from "./support/processes";
import { startTenantStack } from "./support/stack";
import { ohifApp, ohifDistDirectory } from "./support/viewerApp";
import { launchViewerBrowser } from "./support/viewerBrowser";
import { viewerSuiteTenant } from "./support/viewerSuite";
import { BlockPattern, compareWithPattern, Comparison, decodePng, PatternInstance, Picture, writePatternInstance } from "./support/viewerImage";
import { ohifAppConfig, ohifDicomWebRoot, OhifPlugin, OhifPluginSettings, ohifPluginSettings, startOhifPlugin } from "./support/viewerPlugin";

/** Four blocks, four grey levels; `mirrored` is the same picture flipped left to right (what a wrong orientation shows). */
const pattern: BlockPattern = [
    [1000, 4000],
    [3000, 2000],
];
const mirrored: BlockPattern = pattern.map((row) => [...row].reverse());

/** Where the screenshots are kept (git-ignored), printed by the test. */
const artifactDirectory = join(resolve(__dirname, "../.."), ".cache", "test-artifacts", "viewer");

describe("The viewer: OHIF as the image's plugin serves it shows a study through the tenant's gateway, in Chromium", function () {
    const suite = new Resources();
    let names: TenantNames;
    let replica: Replica;
    let admin: Credentials;
    let settings: OhifPluginSettings;
    let plugin: OhifPlugin;
    let gateway: Terminator;
    let rootCaPem: string;
    let browser: Browser;
    let shown: PatternInstance;
    let other: PatternInstance;

    const throughGateway = (credentials: Credentials | null): WebTarget => ({
        port: gateway.port,
        credentials,
        tls: { ca: rootCaPem, host: names.webHost },
    });
    const viewerUrl = (study: PatternInstance) =>
        `https://${names.webHost}:${gateway.port}${settings.routerBasename}viewer?StudyInstanceUIDs=${study.studyInstanceUid}`;

    before(async function () {
        const started = Date.now();
        const start = viewerSuiteTenant();
        const { config, tenant } = start;
        names = start.names;
        const dir = suite.tempDir("viewer");
        const [pki, stack] = await Promise.all([buildTestPki(dir, config.pki, config.domain, [tenant]), startTenantStack(suite, tenant)]);
        replica = await stack.startReplica(suite, "a");
        admin = stack.admin;
        settings = ohifPluginSettings(stack.config);
        // With the gateway's response headers: OHIF must render under the Content-Security-Policy the tenant gets.
        plugin = await startOhifPlugin(suite, { orthancPort: replica.httpPort, settings, dist: ohifDistDirectory(), responseHeaders: webResponseHeaders });
        const tenantPki = pki.tenants[tenant.name];
        gateway = await startTerminator(
            suite,
            gatewayServerTls(webGatewaySpec(names)),
            {
                keyPem: readFileSync(tenantPki.server.keyFile, "utf8"),
                certificateChainPem: readFileSync(tenantPki.serverChainFile, "utf8"),
                clientCaPem: readFileSync(tenantPki.trustAnchor.certFile, "utf8"),
            },
            plugin.port,
        );
        rootCaPem = readFileSync(pki.root.certFile, "utf8");
        [shown, other] = await Promise.all([writePatternInstance(dir, "pattern", pattern), writePatternInstance(dir, "mirrored", mirrored)]);
        const stored = await stow(throughGateway(admin), dicomWebRoot, [readFileSync(shown.file), readFileSync(other.file)]);
        assert.strictEqual(stored.status, 200, `STOW-RS through the gateway: HTTP ${stored.status} ${stored.body.toString()}`);
        browser = await launchViewerBrowser(suite, { trustedCaPems: [rootCaPem], hosts: [names.webHost] });
        console.log(
            `      ${ohifApp.name} ${ohifApp.version} and ${await browser.version()} against tenant ${tenant.name} ` +
                `behind its gateway in ${((Date.now() - started) / 1000).toFixed(1)} s\n      ${await describeVersions(replica)}`,
        );
    });

    afterEach(function () {
        if (this.currentTest?.state === "failed") {
            console.log(`--- log of replica ${replica?.name}:\n${replica?.child.logTail(30)}`);
            console.log(`--- plugin answers: ${JSON.stringify(plugin?.served.slice(-30))}`);
        }
    });

    after(async function () {
        await suite.release();
    });

    /**
     * Opens the viewer on `study` in a new page, answering the server's Basic challenge with `credentials`. The admin's
     * pages share the browser's default context (and its HTTP cache: OHIF loads faster the second time); any other
     * caller gets a context of its own, so that Chromium cannot resend credentials an earlier page gave.
     */
    async function openViewer(study: PatternInstance, credentials: Credentials | null): Promise<Viewer> {
        const context = credentials === admin ? browser.defaultBrowserContext() : await browser.createBrowserContext();
        const page = await context.newPage();
        const dicomWeb: { url: string; status: number }[] = [];
        // Chromium reports every request or script its Content-Security-Policy refused on the console.
        const refusedByCsp: string[] = [];
        page.on("console", (message) => {
            if (/Content Security Policy/i.test(message.text())) refusedByCsp.push(message.text());
        });
        page.on("response", (response) => {
            if (new URL(response.url()).pathname.startsWith(dicomWebRoot)) {
                dicomWeb.push({ url: response.url(), status: response.status() });
            }
        });
        if (credentials) {
            await page.authenticate({ username: credentials.user, password: credentials.password });
        }
        let response: HTTPResponse | null = null;
        let navigationError: string | undefined;
        try {
            response = await page.goto(viewerUrl(study), { waitUntil: "domcontentloaded" });
        } catch (error) {
            navigationError = String(error);
        }
        return { page, response, navigationError, dicomWeb, refusedByCsp, close: () => (context === browser.defaultBrowserContext() ? page.close() : context.close()) };
    }

    /**
     * OHIF's first-visit guided tour and its investigational-use banner lie over the viewport: dismissed as a user
     * would, with their own buttons, whenever they are up.
     */
    async function dismissOverlays(page: Page): Promise<void> {
        for (const button of await page.$$("::-p-text(Skip all), ::-p-text(Confirm and hide)")) {
            await button.click().catch(() => undefined);
        }
    }

    /**
     * Waits for the viewport to show a picture and keep it (two screenshots of the viewport's canvas alike, not one
     * flat grey), then returns the last screenshot. Gives up after `timeoutMs` with what is on screen.
     */
    async function settledViewport(viewer: Viewer, timeoutMs = 40_000): Promise<{ png: Buffer; picture: Picture }> {
        const { page } = viewer;
        const noViewport = async (error: unknown): Promise<never> => {
            const body = await page.$eval("body", (element) => (element as unknown as { innerText: string }).innerText).catch(() => "");
            const answers = viewer.dicomWeb.map((entry) => `${entry.status} ${new URL(entry.url).pathname}`);
            throw new Error(
                `no viewport within ${timeoutMs} ms (${String(error)}); the page says: ${body.replace(/\s+/g, " ").slice(0, 300)}; ` +
                    `DICOMweb answers: ${JSON.stringify(answers)}`,
            );
        };
        const canvas = await page.waitForSelector("canvas.cornerstone-canvas", { visible: true, timeout: timeoutMs }).catch(noViewport);
        assert.ok(canvas, "no viewport canvas");
        const deadline = Date.now() + timeoutMs;
        let previous: Buffer | undefined;
        for (;;) {
            await dismissOverlays(page);
            const png = Buffer.from(await canvas.screenshot({ type: "png" }));
            const picture = decodePng(png);
            if ((previous?.equals(png) && !flat(picture)) || Date.now() > deadline) {
                return { png, picture };
            }
            previous = png;
            await sleep(500);
        }
    }

    function flat(picture: Picture): boolean {
        let [low, high] = [255, 0];
        for (let i = 0; i < picture.rgba.length; i += 4) {
            const grey = (picture.rgba[i] + picture.rgba[i + 1] + picture.rgba[i + 2]) / 3;
            [low, high] = [Math.min(low, grey), Math.max(high, grey)];
        }
        return high - low < 8;
    }

    interface Viewer {
        page: Page;
        response: HTTPResponse | null;
        /** Why the navigation failed, when it did. */
        navigationError?: string;
        /** DICOMweb answers the page received. */
        dicomWeb: { url: string; status: number }[];
        /** What the Content-Security-Policy refused, as Chromium's console says. */
        refusedByCsp: string[];
        close(): Promise<void>;
    }

    const describeComparison = (comparison: Comparison) =>
        comparison.samples.map((s) => `(${s.row},${s.column}) level ${s.level}: ${s.mean.toFixed(1)}±${s.deviation.toFixed(1)}`).join("; ");

    it("serves the plugin's app-config.js for the rendered OHIF section, whose DICOMweb root is the rendered one, to the tenant's users only", async function () {
        assert.deepStrictEqual(settings, { routerBasename: "/ohif/", dataSource: "dicom-web" });
        // The plugin's roots are relative to the viewer's page: they must land on the DICOMweb root the configuration sets.
        const resolved = new URL(ohifDicomWebRoot, `https://${names.webHost}${settings.routerBasename}viewer`).pathname;
        assert.strictEqual(`${resolved}/`, dicomWebRoot, "the OHIF plugin's DICOMweb roots miss the rendered DicomWeb.Root");

        const config = await webRequest(throughGateway(admin), `${settings.routerBasename}app-config.js`);
        assert.strictEqual(config.status, 200);
        assert.strictEqual(config.body.toString(), ohifAppConfig(settings));
        assert.strictEqual(config.headers["cross-origin-embedder-policy"], "require-corp");
        for (const credentials of [null, { user: admin.user, password: `${admin.password}x` }]) {
            const refused = await webRequest(throughGateway(credentials), `${settings.routerBasename}viewer`);
            assert.strictEqual(refused.status, 401, `the viewer with ${credentials ? "a wrong password" : "no credentials"}`);
            assert.match(String(refused.headers["www-authenticate"]), /^Basic /);
        }
    });

    it("shows the study's pixels: a screenshot of the viewport matches the stored picture", async function () {
        const viewer = await openViewer(shown, admin);
        const { page, response, navigationError, dicomWeb, refusedByCsp, close } = viewer;
        assert.strictEqual(response?.status(), 200, `the viewer page: HTTP ${response?.status()} ${navigationError ?? ""}`);
        assert.equal(response?.headers()["content-security-policy"], webResponseHeaders["Content-Security-Policy"], "the viewer under the gateway's CSP");
        const { png, picture } = await settledViewport(viewer);
        mkdirSync(artifactDirectory, { recursive: true });
        const screenshot = join(artifactDirectory, "ohif-viewport.png");
        writeFileSync(screenshot, png);
        const pageShot = join(artifactDirectory, "ohif-page.png");
        await page.screenshot({ path: pageShot as `${string}.png` });
        console.log(`      screenshots: ${screenshot} (compared), ${pageShot}`);

        const comparison = compareWithPattern(picture, pattern);
        console.log(`      viewport ${picture.width}x${picture.height}, blocks: ${describeComparison(comparison)}`);
        assert.ok(comparison.ok, `the viewport does not show the stored picture: ${comparison.problems.join("; ")}\n${describeComparison(comparison)}`);
        // The pixels came through DICOMweb, through the gateway, as the tenant's admin.
        const frames = dicomWeb.filter((entry) => entry.url.includes(shown.sopInstanceUid) && entry.status === 200);
        assert.ok(frames.length > 0, `no WADO-RS answer for the instance: ${JSON.stringify(dicomWeb)}`);
        assert.deepEqual(refusedByCsp, [], "nothing the viewer loads is refused by the Content-Security-Policy");
        assert.ok(gateway.events.every((event) => event.outcome === "accepted"), JSON.stringify(gateway.events));
        assert.ok(plugin.served.some((entry) => entry.path === `${settings.routerBasename}app-config.js` && entry.status === 200));
        await close();
    });

    it("tells pictures apart: another study's (the same picture mirrored) does not pass for it, nor does a blank viewport", async function () {
        const viewer = await openViewer(other, admin);
        const { picture } = await settledViewport(viewer);
        await viewer.close();
        const asItself = compareWithPattern(picture, mirrored);
        assert.ok(asItself.ok, `the other study is not shown as stored: ${asItself.problems.join("; ")}\n${describeComparison(asItself)}`);
        const asFirst = compareWithPattern(picture, pattern);
        assert.ok(!asFirst.ok, `the mirrored picture passed for the first one: ${describeComparison(asFirst)}`);
        const blank: Picture = { width: picture.width, height: picture.height, rgba: Buffer.alloc(picture.rgba.length, 0) };
        assert.ok(!compareWithPattern(blank, pattern).ok, "a black viewport passed");
    });

    it("with a wrong password or none, the viewer does not load and no image is shown", async function () {
        for (const credentials of [{ user: admin.user, password: `${admin.password}x` }, null]) {
            const answered = plugin.served.length;
            const { page, response, navigationError, dicomWeb, close } = await openViewer(shown, credentials);
            const who = credentials ? "a wrong password" : "no credentials";
            // Headless Chromium has no password prompt: a challenge it cannot answer, or answered and was refused again,
            // ends the navigation (ERR_INVALID_AUTH_CREDENTIALS) or shows Orthanc's 401.
            const refused = response?.status() === 401 || /ERR_INVALID_AUTH_CREDENTIALS/.test(String(navigationError));
            assert.ok(refused, `the viewer page with ${who}: HTTP ${response?.status()} ${navigationError ?? ""}`);
            const refusals = plugin.served.slice(answered);
            assert.ok(refusals.length > 0 && refusals.every((entry) => entry.status === 401), `the plugin answered with ${who}: ${JSON.stringify(refusals)}`);
            assert.strictEqual(await page.$("canvas.cornerstone-canvas"), null, `a viewport with ${who}`);
            assert.deepStrictEqual(dicomWeb, [], `DICOMweb answered with ${who}`);
            await close();
        }
    });

    it("a browser that does not trust the stack's root CA refuses the tenant's server certificate", async function () {
        const resources = new Resources();
        try {
            const stranger = await launchViewerBrowser(resources, { trustedCaPems: [], hosts: [names.webHost] });
            const page = await stranger.newPage();
            await page.authenticate({ username: admin.user, password: admin.password });
            await assert.rejects(page.goto(viewerUrl(shown)), /ERR_CERT_AUTHORITY_INVALID/);
        } finally {
            await resources.release();
        }
    });
});
