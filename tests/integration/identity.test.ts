/**
 * Who signs in, what each role may do, and the audit trail, on real components: the tenant's gatekeeper started as
 * the cluster starts it (`node server.ts config.json`, secrets in its environment, the file alone in a directory as
 * the ConfigMap mounts it), in front of Orthanc 1.13.0 from the sid root with the PostgreSQL plugins and DICOMweb, with
 * npm's oidc-provider as the tenant's identity provider (and a second one as another tenant's), the audit table in the
 * stack's real PostgreSQL, and OHIF in Chromium for the clinician.
 *
 * Stand-ins: the gateway (a Node TLS terminator with the tenant's server certificate, support/gatewayTerminator) and
 * the OHIF plugin (support/viewerPlugin), as in viewer.test.ts. The identity provider's sign-in page is oidc-provider's
 * development form (any password): what the provider checks at sign-in is not under test, what it issues is.
 */
import assert from "assert";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "fs";
import { join } from "path";
import type { Browser, BrowserContext, Page } from "puppeteer-core";
import { defaultRoles, type AuditRecord, type GatekeeperConfig } from "../../components/identity/contract";
import { auditDatabaseStatements, auditTable, PgClient, uploaderLabel } from "../../components/identity/gatekeeper/server";
import { dicomWebRoot } from "../../components/tenant/orthancConfig";
import { webGatewaySpec, webResponseHeaders } from "../../components/tenant/ingress";
import { serverProfile } from "../../components/pki/profile";
import { multipartDicom, parseMultipart, stow, type WebTarget, webRequest, type WebResponse } from "./support/dicomWeb";
import { gatewayServerTls, startTerminator } from "./support/gatewayTerminator";
import { startIdentityProvider, type TestIdentityProvider } from "./support/identityProvider";
import { generatePassword, instanceIdOf, type Replica } from "./support/orthanc";
import { buildTestPki, issue } from "./support/pki";
import { type Child, freePort, Resources, sleep, waitUntil } from "./support/processes";
import { startPostgres } from "./support/postgres";
import { startTenantStack, type TenantStack } from "./support/stack";
import { ohifDistDirectory } from "./support/viewerApp";
import { launchViewerBrowser } from "./support/viewerBrowser";
import { viewerSuiteTenant } from "./support/viewerSuite";
import { type BlockPattern, compareWithPattern, decodePng, type PatternInstance, writePatternInstance } from "./support/viewerImage";
import { ohifPluginSettings, startOhifPlugin } from "./support/viewerPlugin";

const gatekeeperSource = join(__dirname, "../../components/identity/gatekeeper/server.ts");
const pattern: BlockPattern = [
    [1000, 4000],
    [3000, 2000],
];

describe("Identity: the tenant's gatekeeper signs users and API clients in, decides by role, and audits each request", function () {
    this.timeout(180_000);
    const suite = new Resources();
    let stack: TenantStack;
    let replica: Replica;
    let idp: TestIdentityProvider;
    let otherIdp: TestIdentityProvider;
    let gatekeeper: Child;
    let browser: Browser;
    /** A server certificate of the test PKI (for PostgreSQL over TLS). */
    let serverCertificate: { certFile: string; keyFile: string };
    let publicUrl: string;
    let web: WebTarget;
    /** The audit database, its owner's connection (setup and inspection), and the gatekeeper's role. */
    const audit = { database: "audit_bhs", user: "gatekeeper_bhs", password: generatePassword() };
    let auditOwner: PgClient;
    /** Seeded by the admin straight into Orthanc (no gatekeeper, no record): the study everyone looks at. */
    let seed: PatternInstance & { studyId: string; instanceId: string };
    let technologistUpload: PatternInstance;
    let apiUpload: PatternInstance;
    const apiAudience = "https://web.bhs.orthweb.example/dicom-web";
    const otherAudience = "https://web.mhr.orthweb.example/dicom-web";
    const bridge = { clientId: "bhs-pacs-bridge", secret: generatePassword() };
    const otherBridge = { clientId: "mhr-pacs-bridge", secret: generatePassword() };
    const users = {
        clara: { name: "Clara Clinician", groups: ["orthanc-clinicians", "staff"] },
        theo: { name: "Theo Technologist", groups: ["orthanc-technologists"] },
        audrey: { name: "Audrey Auditor", groups: ["orthanc-auditors"] },
    };
    const testStart = new Date().toISOString();
    let stdoutSeen = 0;
    let databaseSeen = 0;

    before(async function () {
        const started = Date.now();
        const { config, tenant, names } = viewerSuiteTenant();
        const dir = suite.tempDir("identity");
        const [pki, tenantStack] = await Promise.all([buildTestPki(dir, config.pki, config.domain, [tenant]), startTenantStack(suite, tenant)]);
        stack = tenantStack;
        const rootCaPem = readFileSync(pki.root.certFile, "utf8");
        serverCertificate = pki.tenants[tenant.name].server;
        const idpCert = await issue(dir, "idp", { profile: serverProfile(config.pki), subject: { commonName: "localhost", organization: config.pki.organization }, issuer: pki.root, subjectAltNames: ["localhost"] });
        const idpTls = { keyPem: readFileSync(idpCert.keyFile, "utf8"), certPem: readFileSync(idpCert.certFile, "utf8"), caPem: rootCaPem };

        // Orthanc as rendered, plus the gatekeeper's own Orthanc user (the program adds it to RegisteredUsers).
        const gatekeeperOrthancPassword = generatePassword();
        replica = await stack.startReplica(suite, "a", (orthancConfig) => ({
            ...orthancConfig,
            RegisteredUsers: { ...(orthancConfig.RegisteredUsers as Record<string, string>), gatekeeper: gatekeeperOrthancPassword },
        }));
        const plugin = await startOhifPlugin(suite, { orthancPort: replica.httpPort, settings: ohifPluginSettings(stack.config), dist: ohifDistDirectory(), responseHeaders: webResponseHeaders });

        // The gateway in front of the gatekeeper: its port must be known for the public URL before the gatekeeper starts.
        const gatekeeperPort = await freePort();
        const tenantPki = pki.tenants[tenant.name];
        const gateway = await startTerminator(
            suite,
            gatewayServerTls(webGatewaySpec(names)),
            { keyPem: readFileSync(tenantPki.server.keyFile, "utf8"), certificateChainPem: readFileSync(tenantPki.serverChainFile, "utf8"), clientCaPem: readFileSync(tenantPki.trustAnchor.certFile, "utf8") },
            gatekeeperPort,
        );
        publicUrl = `https://${names.webHost}:${gateway.port}`;
        web = { port: gateway.port, credentials: null, tls: { ca: rootCaPem, host: names.webHost } };
        const webClient = { clientId: "orthanc-bhs", secret: generatePassword(), redirectUri: `${publicUrl}/oauth2/callback` };
        [idp, otherIdp] = await Promise.all([
            startIdentityProvider(suite, { tls: idpTls, users, webClient, apiClients: [bridge], resources: [apiAudience, otherAudience] }),
            startIdentityProvider(suite, { tls: idpTls, users: {}, apiClients: [otherBridge], resources: [otherAudience] }),
        ]);

        // The audit database: owned by its own role, the gatekeeper's role may INSERT and SELECT, nobody else connects.
        const ownerPassword = generatePassword();
        await stack.postgres.asSuperuser(`CREATE ROLE audit_owner LOGIN PASSWORD '${ownerPassword}'`);
        await stack.postgres.asSuperuser(`CREATE ROLE ${audit.user} LOGIN PASSWORD '${audit.password}'`);
        await stack.postgres.asSuperuser(`CREATE DATABASE ${audit.database} OWNER audit_owner`);
        auditOwner = await connectToAudit("audit_owner", ownerPassword);
        suite.defer(async () => auditOwner.close());
        for (const statement of auditDatabaseStatements({ database: audit.database, user: audit.user })) await auditOwner.query(statement);

        // The gatekeeper as the cluster starts it: the file alone in a directory (the ConfigMap's mount), its
        // configuration as JSON, its secrets in the environment.
        const mount = join(dir, "gatekeeper");
        mkdirSync(mount);
        copyFileSync(gatekeeperSource, join(mount, "server.ts"));
        const gatekeeperConfig: GatekeeperConfig = {
            tenant: tenant.name,
            port: gatekeeperPort,
            publicUrl,
            orthancUrl: `http://127.0.0.1:${plugin.port}`,
            orthancUsername: "gatekeeper",
            orthancIdleTimeoutSeconds: 600,
            oidc: { issuer: idp.issuer, clientId: webClient.clientId, audiences: [apiAudience, webClient.clientId], scopes: ["openid", "profile", "groups"], groupsClaim: "groups", nameClaim: "name" },
            roles: { ...defaultRoles, bridge: { groups: [], permissions: ["search", "view", "upload"] } },
            apiClients: [{ clientId: bridge.clientId, role: "bridge" }],
            session: { ttlSeconds: 3600 },
            shareLinks: { maxTtlSeconds: 3600 },
            audit: { database: { host: stack.postgres.host, port: stack.postgres.port, database: audit.database, user: audit.user, sslmode: "disable" }, retentionDays: 30 },
        };
        writeFileSync(join(mount, "config.json"), JSON.stringify(gatekeeperConfig, null, 2));
        gatekeeper = suite.start("gatekeeper", process.execPath, [join(mount, "server.ts"), join(mount, "config.json")], {
            env: {
                PATH: process.env.PATH,
                // The test root signs the identity provider's certificate; a site's provider has a public one.
                NODE_EXTRA_CA_CERTS: pki.root.certFile,
                GATEKEEPER_OIDC_CLIENT_SECRET: webClient.secret,
                GATEKEEPER_SESSION_KEY: Buffer.from(generatePassword().slice(0, 32)).toString("base64"),
                GATEKEEPER_ORTHANC_PASSWORD: gatekeeperOrthancPassword,
                GATEKEEPER_AUDIT_DATABASE_PASSWORD: audit.password,
            },
            logFile: join(dir, "gatekeeper.log"),
        });
        await waitUntil("the gatekeeper answers", gatekeeper, async () => (await fetch(`http://127.0.0.1:${gatekeeperPort}/healthz`).then((r) => r.status === 200, () => false)));

        // The study everyone looks at, stored by the admin straight into Orthanc: it leaves no record.
        const seedInstance = await writePatternInstance(dir, "seed", pattern);
        const seeded = await replica.request("/instances", { method: "POST", body: readFileSync(seedInstance.file) as unknown as string });
        assert.strictEqual(seeded.status, 200);
        const seededIds = (await seeded.json()) as { ID: string; ParentStudy: string };
        seed = { ...seedInstance, studyId: seededIds.ParentStudy, instanceId: seededIds.ID };
        [technologistUpload, apiUpload] = await Promise.all([writePatternInstance(dir, "technologist", pattern), writePatternInstance(dir, "api", pattern)]);
        browser = await launchViewerBrowser(suite, { trustedCaPems: [rootCaPem], hosts: [names.webHost, "localhost"] });
        console.log(`      gatekeeper, oidc-provider x2, Orthanc, PostgreSQL and ${await browser.version()} up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
        assert.deepStrictEqual(await newRecords(), [], "starting leaves no record");
    });

    afterEach(function () {
        if (this.currentTest?.state === "failed") console.log(`--- gatekeeper log:\n${gatekeeper?.logTail(40)}`);
    });

    after(async function () {
        await suite.release();
    });

    /** A connection to the audit database as `user`, over TCP with its password, as the gatekeeper connects. */
    function connectToAudit(user: string, password: string): Promise<PgClient> {
        return PgClient.connect({ host: stack.postgres.host, port: stack.postgres.port, database: audit.database, user, password });
    }

    /** The audit lines the gatekeeper printed on stdout (its log holds stderr too, whose lines are not JSON). */
    function stdoutRecords(): AuditRecord[] {
        return gatekeeper
            .readLog()
            .split("\n")
            .filter((line) => line.startsWith("{"))
            .map((line) => JSON.parse(line) as AuditRecord);
    }

    /**
     * The records written since the last call: what stdout shows and what the audit table holds must be the same,
     * in the same order (the database lags stdout by a batch: wait until it has caught up).
     */
    async function newRecords(): Promise<AuditRecord[]> {
        let printed: AuditRecord[] = [];
        let stored: AuditRecord[] = [];
        let rows: Record<string, string | null>[] = [];
        let previous = -1;
        // Settled: the table has caught up with stdout, and nothing more came in the last 300 ms (a request the closed
        // page left in flight would otherwise land in the next step's records).
        for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) {
            await sleep(300);
            printed = stdoutRecords().slice(stdoutSeen);
            rows = await auditOwner.query(`SELECT id, record::text AS record FROM ${auditTable} WHERE id > $1 ORDER BY id`, [String(databaseSeen)]);
            stored = rows.map((row) => JSON.parse(row.record!) as AuditRecord);
            if (stored.length === printed.length && printed.length === previous) break;
            previous = printed.length;
        }
        assert.deepStrictEqual(stored, printed, "the audit table holds what stdout shows");
        stdoutSeen += printed.length;
        databaseSeen = rows.length > 0 ? Number(rows[rows.length - 1].id) : databaseSeen;
        return printed;
    }

    /** Orthanc's id of the study holding `instance`, asked as the admin straight from Orthanc. */
    const studyOf = async (instance: PatternInstance) => (await replica.getJson<{ ID: string }>(`/instances/${await instanceIdOf(replica, instance.sopInstanceUid)}/study`)).ID;
    const bearer = (token: string) => ({ headers: { Authorization: `Bearer ${token}`, Accept: "application/dicom+json" } });
    const pick = (record: AuditRecord) => ({ action: record.action, subject: record.subject, status: record.status, outcome: record.outcome, reason: record.reason, path: record.path });

    it("refuses no token, an expired token, another tenant's token, ours for another tenant's audience and an ID token: 401 and one record each", async function () {
        const now = Math.floor(Date.now() / 1000);
        const expired = idp.signWithProviderKey({ aud: apiAudience, client_id: bridge.clientId, sub: bridge.clientId, iat: now - 3600, exp: now - 600, jti: "expired-1" });
        const otherTenants = await otherIdp.clientToken(otherBridge, otherAudience);
        const forOtherAudience = await idp.clientToken(bridge, otherAudience);
        // Signed by our provider for our audience, but an ID token (it carries the sign-in's nonce).
        const idToken = idp.signWithProviderKey({ aud: apiAudience, sub: "clara", nonce: "n-1", iat: now, exp: now + 300, jti: "id-1" });
        const cases: [string, Record<string, string>, string][] = [
            ["no token", {}, "no credentials"],
            ["expired", { Authorization: `Bearer ${expired}` }, "expired"],
            ["another tenant's issuer", { Authorization: `Bearer ${otherTenants}` }, "wrong issuer"],
            ["another tenant's audience", { Authorization: `Bearer ${forOtherAudience}` }, "wrong audience"],
            ["an ID token as a bearer token", { Authorization: `Bearer ${idToken}` }, "an ID token is not an access token"],
            ["the admin's basic credentials", { Authorization: `Basic ${Buffer.from(`${stack.admin.user}:${stack.admin.password}`).toString("base64")}` }, "not a bearer token"],
        ];
        for (const [what, headers] of cases) {
            const answer = await webRequest(web, `${dicomWebRoot}studies/${seed.studyInstanceUid}/metadata`, { headers });
            assert.strictEqual(answer.status, 401, `${what}: HTTP ${answer.status} ${answer.body.toString().slice(0, 200)}`);
            assert.doesNotMatch(answer.body.toString(), /KORTHWEB/, `${what}: no data`);
        }
        const records = await newRecords();
        assert.deepStrictEqual(
            records.map(pick),
            cases.map(([, , reason]) => ({ action: "refused", subject: undefined, status: 401, outcome: "refused", reason, path: `${dicomWebRoot}studies/${seed.studyInstanceUid}/metadata` })),
        );
        assert.ok(records.every((record) => record.tenant === "bhs" && record.resources.some((resource) => resource.id === seed.studyInstanceUid)));
        // A callback nobody started: a failed sign-in, recorded.
        const callback = await webRequest(web, "/oauth2/callback?code=made-up&state=made-up");
        assert.strictEqual(callback.status, 403);
        assert.deepStrictEqual((await newRecords()).map(pick), [
            { action: "sign-in-failed", subject: undefined, status: 403, outcome: "failed", reason: "no sign-in in progress", path: "/oauth2/callback" },
        ]);
    });

    it("an API client stores (STOW-RS) and retrieves (WADO-RS) with its client-credentials token; its upload carries its label", async function () {
        const token = await idp.clientToken(bridge, apiAudience);
        const file = readFileSync(apiUpload.file);
        // Refused before Orthanc sees it, and answered only once the whole upload (16 MB more) has been read: an answer
        // sent while the client still sends would reach it as a reset connection.
        const stored = await stow({ ...web, credentials: null }, dicomWebRoot, [file, Buffer.alloc(16 * 1024 * 1024)]).catch((error: Error) => error);
        assert.ok(!(stored instanceof Error) && stored.status === 401, `STOW-RS without the token: ${stored instanceof Error ? stored.message : stored.status}`);
        const { contentType, body } = multipartDicom([file]);
        const upload = await webRequest(web, `${dicomWebRoot}studies`, { method: "POST", headers: { ...bearer(token).headers, "Content-Type": contentType }, body });
        assert.strictEqual(upload.status, 200, upload.body.toString());
        // The answer's RetrieveURL (0008,1190) is the study's public address (the client sent Host without a port, as on 443).
        const retrieveUrl = (JSON.parse(upload.body.toString()) as Record<string, { Value?: string[] }>)["00081190"]?.Value?.[0];
        assert.strictEqual(retrieveUrl, `https://${web.tls!.host}${dicomWebRoot}studies/${apiUpload.studyInstanceUid}`, "STOW-RS RetrieveURL");
        const path = `${dicomWebRoot}studies/${apiUpload.studyInstanceUid}/series/${apiUpload.seriesInstanceUid}/instances/${apiUpload.sopInstanceUid}`;
        const retrieved = await webRequest(web, path, { headers: { Authorization: `Bearer ${token}`, Accept: 'multipart/related; type="application/dicom"' } });
        assert.strictEqual(retrieved.status, 200);
        const parts = parseMultipart(retrieved.headers["content-type"], retrieved.body);
        assert.ok(parts.length === 1 && parts[0].content.equals(file), "WADO-RS returns the stored file byte for byte");
        const records = await newRecords();
        assert.deepStrictEqual(records.map(pick), [
            { action: "refused", subject: undefined, status: 401, outcome: "refused", reason: "no credentials", path: `${dicomWebRoot}studies` },
            { action: "upload", subject: bridge.clientId, status: 200, outcome: "allowed", reason: undefined, path: `${dicomWebRoot}studies` },
            { action: "view", subject: bridge.clientId, status: 200, outcome: "allowed", reason: undefined, path },
        ]);
        assert.deepStrictEqual(records[1].resources, [
            { level: "study", id: apiUpload.studyInstanceUid },
            { level: "instance", id: apiUpload.sopInstanceUid },
        ]);
        assert.doesNotMatch(JSON.stringify(records), /KORTHWEB|VIEWER/, "no tag values in the trail");
        const studyId = await studyOf(apiUpload);
        assert.deepStrictEqual(await replica.getJson(`/studies/${studyId}/labels`), [uploaderLabel("bhs", `client:${bridge.clientId}`)]);

        // Orthanc turns ?_method=DELETE into a DELETE (HttpServer.cpp ExtractMethod): the gatekeeper refuses it before
        // judging it as the GET it seems, and an escaped path Orthanc would decode into an archive download.
        const faked = await webRequest(web, `/studies/${studyId}?_method=DELETE`, bearer(token));
        assert.strictEqual(faked.status, 400, faked.body.toString());
        const escaped = await webRequest(web, `/studies/${studyId}/%61rchive`, bearer(token));
        assert.strictEqual(escaped.status, 400, escaped.body.toString());
        assert.strictEqual(await studyOf(apiUpload), studyId, "the study is still there");
        assert.deepStrictEqual((await newRecords()).map(pick), [
            { action: "refused", subject: undefined, status: 400, outcome: "refused", reason: "method override", path: `/studies/${studyId}` },
            { action: "refused", subject: undefined, status: 400, outcome: "refused", reason: "ambiguous path", path: `/studies/${studyId}/%61rchive` },
        ]);
    });

    /** Signs `user` in through the identity provider's pages in a fresh browser context, starting at `path`. */
    async function signIn(user: keyof typeof users, path: string): Promise<{ page: Page; context: BrowserContext; close: () => Promise<void> }> {
        const context = await browser.createBrowserContext();
        const page = await context.newPage();
        await page.goto(`${publicUrl}${path}`, { waitUntil: "domcontentloaded" });
        assert.ok(page.url().startsWith(idp.issuer), `not sent to the identity provider: ${page.url()}`);
        await page.waitForSelector('input[name="login"]');
        await page.type('input[name="login"]', user);
        await page.type('input[name="password"]', "any");
        await Promise.all([page.waitForNavigation({ waitUntil: "domcontentloaded" }), page.click("button[type=submit]")]);
        // The consent page, the first time a user signs in to the client.
        if (page.url().startsWith(idp.issuer)) {
            await Promise.all([page.waitForNavigation({ waitUntil: "domcontentloaded" }), page.click("button[type=submit]")]);
        }
        assert.ok(page.url().startsWith(publicUrl), `not back at the tenant: ${page.url()}`);
        const cookies = await context.cookies();
        const session = cookies.find((cookie) => cookie.name === "__Host-gatekeeper-session");
        assert.ok(session && session.httpOnly && session.secure && session.sameSite === "Lax", `session cookie: ${JSON.stringify(session)}`);
        assert.doesNotMatch(session.value, /clara|theo|audrey|orthanc-/, "the cookie is sealed");
        return { page, context, close: () => context.close() };
    }

    /** A request from the signed-in page (its cookie, its origin), as OE2 or a script in the page would send it. */
    function fromPage(page: Page, path: string, init: { method?: string; body?: string; contentType?: string; base64Body?: boolean } = {}): Promise<{ status: number; text: string }> {
        return page.evaluate(async (url, options) => {
            const body = options.body === undefined ? undefined : options.base64Body ? Uint8Array.from(atob(options.body), (c) => c.charCodeAt(0)) : options.body;
            const response = await fetch(url, { method: options.method ?? "GET", body, headers: options.contentType ? { "Content-Type": options.contentType } : {} });
            return { status: response.status, text: await response.text() };
        }, path, init);
    }

    /**
     * Waits until OHIF's viewport shows the stored picture (the guided tour and the investigational-use banner, which
     * lie over it, dismissed as a user would); fails with what the comparison saw after 40 s.
     */
    async function assertViewportShowsPattern(page: Page): Promise<void> {
        const canvas = await page.waitForSelector("canvas.cornerstone-canvas", { visible: true, timeout: 60_000 });
        let comparison = compareWithPattern(decodePng(Buffer.from(await canvas!.screenshot({ type: "png" }))), pattern);
        for (const deadline = Date.now() + 40_000; !comparison.ok && Date.now() < deadline; ) {
            for (const button of await page.$$("::-p-text(Skip all), ::-p-text(Confirm and hide)")) await button.click().catch(() => undefined);
            await sleep(500);
            comparison = compareWithPattern(decodePng(Buffer.from(await canvas!.screenshot({ type: "png" }))), pattern);
        }
        assert.ok(comparison.ok, `the viewport does not show the study: ${comparison.problems.join("; ")}`);
    }

    it("a clinician signs in (authorization code flow) and OHIF shows the study; DELETE is refused (403)", async function () {
        const { page, close } = await signIn("clara", `/ohif/viewer?StudyInstanceUIDs=${seed.studyInstanceUid}`);
        assert.match(page.url(), /\/ohif\/viewer\?StudyInstanceUIDs=/);
        await assertViewportShowsPattern(page);
        const refused = await fromPage(page, `/studies/${seed.studyId}`, { method: "DELETE" });
        assert.strictEqual(refused.status, 403);
        const download = await fromPage(page, `/studies/${seed.studyId}/archive`);
        assert.strictEqual(download.status, 200, "clinicians download");
        await close();
        assert.strictEqual((await replica.request(`/studies/${seed.studyId}`)).status, 200, "the study is still there");

        const records = await newRecords();
        const [first, signedIn, ...rest] = records;
        assert.deepStrictEqual(pick(first), { action: "refused", subject: undefined, status: 302, outcome: "refused", reason: "sign-in required", path: "/ohif/viewer" });
        assert.deepStrictEqual({ ...pick(signedIn), name: signedIn.name }, { action: "sign-in", subject: "clara", status: 302, outcome: "allowed", reason: undefined, path: "/oauth2/callback", name: "Clara Clinician" });
        const deletion = rest.filter((record) => record.method === "DELETE");
        assert.deepStrictEqual(deletion.map(pick), [{ action: "refused", subject: "clara", status: 403, outcome: "refused", reason: "needs delete (or delete-own on an own upload)", path: `/studies/${seed.studyId}` }]);
        assert.deepStrictEqual(deletion[0].resources, [{ level: "study", id: seed.studyId }]);
        const viewing = rest.filter((record) => record.method !== "DELETE" && record.action !== "download");
        assert.ok(viewing.length > 0 && viewing.every((record) => record.subject === "clara" && ["search", "view"].includes(record.action) && record.outcome === "allowed"), JSON.stringify(viewing.map(pick)));
        assert.ok(viewing.some((record) => record.action === "view" && record.resources.some((resource) => resource.id === seed.sopInstanceUid)), "the frames OHIF read are recorded");
        assert.deepStrictEqual(rest.filter((record) => record.action === "download").map(pick), [{ action: "download", subject: "clara", status: 200, outcome: "allowed", reason: undefined, path: `/studies/${seed.studyId}/archive` }]);
        assert.ok(records.every((record) => !/[?]/.test(record.path)), "paths without their query");
    });

    it("a technologist uploads, may delete her own upload and not another's", async function () {
        const { page, close } = await signIn("theo", "/oauth2/sign-in?rd=/system");
        assert.ok(page.url().endsWith("/system"));
        const { contentType, body } = multipartDicom([readFileSync(technologistUpload.file)]);
        const upload = await fromPage(page, `${dicomWebRoot}studies`, { method: "POST", body: body.toString("base64"), base64Body: true, contentType });
        assert.strictEqual(upload.status, 200, upload.text);
        const ownStudy = await studyOf(technologistUpload);
        assert.deepStrictEqual(await replica.getJson(`/studies/${ownStudy}/labels`), [uploaderLabel("bhs", "user:theo")]);
        // Re-sending someone else's instance stores nothing new and does not make that study hers.
        const resent = multipartDicom([readFileSync(seed.file)]);
        const resend = await fromPage(page, `${dicomWebRoot}studies`, { method: "POST", body: resent.body.toString("base64"), base64Body: true, contentType: resent.contentType });
        assert.strictEqual(resend.status, 200, resend.text);
        assert.deepStrictEqual(await replica.getJson(`/studies/${seed.studyId}/labels`), []);
        const apiStudy = await studyOf(apiUpload);
        const forge = await fromPage(page, `/studies/${apiStudy}/labels/${uploaderLabel("bhs", "user:theo")}`, { method: "PUT", body: "" });
        assert.strictEqual(forge.status, 403, "she cannot make another's study hers");
        assert.strictEqual((await fromPage(page, `/studies/${apiStudy}`, { method: "DELETE" })).status, 403);
        assert.strictEqual((await fromPage(page, `/studies/${seed.studyId}`, { method: "DELETE" })).status, 403);
        assert.strictEqual((await fromPage(page, `/studies/${ownStudy}`, { method: "DELETE" })).status, 200);
        await close();
        assert.strictEqual((await replica.request(`/studies/${ownStudy}`)).status, 404, "her study is gone");
        assert.strictEqual((await replica.request(`/studies/${apiStudy}`)).status, 200, "the API client's study stays");

        const records = await newRecords();
        assert.deepStrictEqual(records.map(pick), [
            { action: "sign-in", subject: "theo", status: 302, outcome: "allowed", reason: undefined, path: "/oauth2/callback" },
            { action: "upload", subject: "theo", status: 200, outcome: "allowed", reason: undefined, path: `${dicomWebRoot}studies` },
            { action: "upload", subject: "theo", status: 200, outcome: "allowed", reason: undefined, path: `${dicomWebRoot}studies` },
            { action: "refused", subject: "theo", status: 403, outcome: "refused", reason: "needs admin", path: `/studies/${apiStudy}/labels/${uploaderLabel("bhs", "user:theo")}` },
            { action: "refused", subject: "theo", status: 403, outcome: "refused", reason: "needs delete (or delete-own on an own upload)", path: `/studies/${apiStudy}` },
            { action: "refused", subject: "theo", status: 403, outcome: "refused", reason: "needs delete (or delete-own on an own upload)", path: `/studies/${seed.studyId}` },
            { action: "delete", subject: "theo", status: 200, outcome: "allowed", reason: undefined, path: `/studies/${ownStudy}` },
        ]);
        assert.deepStrictEqual(records[1].resources, [{ level: "study", id: technologistUpload.studyInstanceUid }, { level: "instance", id: technologistUpload.sopInstanceUid }]);
    });

    it("a clinician's share link opens one study, view only, and is recorded", async function () {
        const token = await idp.clientToken(bridge, apiAudience);
        // API clients hold no `share`: refused.
        const byClient = await webRequest(web, "/share", { method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" }, body: Buffer.from(JSON.stringify({ study: seed.studyInstanceUid, ttlSeconds: 60 })) });
        assert.strictEqual(byClient.status, 403);
        const { page, close } = await signIn("clara", "/oauth2/sign-in?rd=/system");
        const tooLong = await fromPage(page, "/share", { method: "POST", body: JSON.stringify({ study: seed.studyInstanceUid, ttlSeconds: 7200 }), contentType: "application/json" });
        assert.strictEqual(tooLong.status, 400);
        const shared = await fromPage(page, "/share", { method: "POST", body: JSON.stringify({ study: seed.studyInstanceUid, ttlSeconds: 60 }), contentType: "application/json" });
        assert.strictEqual(shared.status, 200, shared.text);
        await close();
        const { url } = JSON.parse(shared.text) as { url: string };
        assert.ok(url.startsWith(`${publicUrl}/share/`));
        const landing = await webRequest(web, new URL(url).pathname);
        assert.strictEqual(landing.status, 302);
        assert.strictEqual(landing.headers.location, `/ohif/viewer?StudyInstanceUIDs=${seed.studyInstanceUid}`);
        const cookie = String(landing.headers["set-cookie"]).split(";")[0];
        const withLink = (path: string): Promise<WebResponse> => webRequest(web, path, { headers: { Cookie: cookie, Accept: "application/dicom+json" } });
        assert.strictEqual((await withLink(`${dicomWebRoot}studies/${seed.studyInstanceUid}/metadata`)).status, 200);
        assert.strictEqual((await withLink(`${dicomWebRoot}studies/${apiUpload.studyInstanceUid}/metadata`)).status, 403, "another study");
        assert.strictEqual((await withLink(`/studies/${seed.studyId}/archive`)).status, 403, "no download");
        const tampered = await webRequest(web, `${new URL(url).pathname.slice(0, -2)}xx`);
        assert.strictEqual(tampered.status, 403);
        const records = await newRecords();
        assert.deepStrictEqual(records.map(pick), [
            { action: "refused", subject: bridge.clientId, status: 403, outcome: "refused", reason: "needs share", path: "/share" },
            { action: "sign-in", subject: "clara", status: 302, outcome: "allowed", reason: undefined, path: "/oauth2/callback" },
            { action: "share", subject: "clara", status: 200, outcome: "allowed", reason: undefined, path: "/share" },
            { action: "view", subject: "share-link:clara", status: 302, outcome: "allowed", reason: undefined, path: "/share" },
            { action: "view", subject: "share-link:clara", status: 200, outcome: "allowed", reason: undefined, path: `${dicomWebRoot}studies/${seed.studyInstanceUid}/metadata` },
            { action: "refused", subject: "share-link:clara", status: 403, outcome: "refused", reason: "outside the shared study", path: `${dicomWebRoot}studies/${apiUpload.studyInstanceUid}/metadata` },
            { action: "refused", subject: "share-link:clara", status: 403, outcome: "refused", reason: "outside the shared study", path: `/studies/${seed.studyId}/archive` },
            { action: "refused", subject: undefined, status: 403, outcome: "refused", reason: "invalid or expired share link", path: "/share" },
        ]);

        // In a browser that never signed in: the link opens OHIF on the study, and everything it reads is that study's.
        const context = await browser.createBrowserContext();
        try {
            const page = await context.newPage();
            await page.goto(url, { waitUntil: "domcontentloaded" });
            assert.match(page.url(), new RegExp(`/ohif/viewer\\?StudyInstanceUIDs=${seed.studyInstanceUid.replace(/\./g, "\\.")}$`));
            await assertViewportShowsPattern(page);
        } finally {
            await context.close();
        }
        const viewing = await newRecords();
        assert.deepStrictEqual(pick(viewing[0]), { action: "view", subject: "share-link:clara", status: 302, outcome: "allowed", reason: undefined, path: "/share" });
        const [allowed, refused] = [viewing.filter((record) => record.outcome === "allowed"), viewing.filter((record) => record.outcome !== "allowed")];
        assert.ok(allowed.every((record) => record.subject === "share-link:clara" && ["view", "search"].includes(record.action)), JSON.stringify(viewing.map(pick)));
        assert.ok(allowed.some((record) => record.resources.some((resource) => resource.id === seed.sopInstanceUid)), "the frames OHIF read are recorded");
        const named = new Set(allowed.flatMap((record) => record.resources.filter((resource) => resource.level === "study").map((resource) => resource.id)));
        assert.deepStrictEqual([...named], [seed.studyInstanceUid]);
        // OHIF also looks for the patient's other studies (a QIDO-RS search without the shared UID): refused.
        assert.ok(refused.every((record) => record.reason === "outside the shared study" && record.path === `${dicomWebRoot}studies`), JSON.stringify(refused.map(pick)));
    });

    it("the auditor reads the trail through /audit and cannot fetch an image", async function () {
        const { page, context, close } = await signIn("audrey", `/audit?since=${encodeURIComponent(testStart)}`);
        const trail = JSON.parse(await page.$eval("body", (element) => (element as unknown as { innerText: string }).innerText)) as { records: AuditRecord[] };
        const stored = (await auditOwner.query(`SELECT record::text AS record FROM ${auditTable} ORDER BY id`)).map((row) => JSON.parse(row.record!) as AuditRecord);
        // Everything recorded before this test (newRecords saw it in the table), then her redirect to sign in and her
        // sign-in as far as the gatekeeper's writer has stored them yet (it writes in batches); her read comes after.
        assert.ok(trail.records.length >= stdoutSeen && trail.records.length <= stdoutSeen + 2, `${trail.records.length} records, ${stdoutSeen} before this test`);
        assert.deepStrictEqual(trail.records, stored.slice(0, trail.records.length), "the auditor sees the table as it is");
        assert.ok(trail.records.some((record) => record.subject === "clara" && record.method === "DELETE" && record.outcome === "refused"));
        const frame = await fromPage(page, `${dicomWebRoot}studies/${seed.studyInstanceUid}/series/${seed.seriesInstanceUid}/instances/${seed.sopInstanceUid}/frames/1`);
        assert.strictEqual(frame.status, 403);
        assert.strictEqual((await fromPage(page, `/instances/${seed.instanceId}/file`)).status, 403);
        // Signing out clears the session cookie and hands over to the provider's end-session page.
        await page.goto(`${publicUrl}/oauth2/sign-out`, { waitUntil: "domcontentloaded" });
        assert.ok(page.url().startsWith(`${idp.issuer}/session/end`), page.url());
        assert.ok(!(await context.cookies()).some((cookie) => cookie.name === "__Host-gatekeeper-session"));
        await close();
        const records = await newRecords();
        assert.deepStrictEqual(records.map(pick), [
            { action: "refused", subject: undefined, status: 302, outcome: "refused", reason: "sign-in required", path: "/audit" },
            { action: "sign-in", subject: "audrey", status: 302, outcome: "allowed", reason: undefined, path: "/oauth2/callback" },
            { action: "audit-read", subject: "audrey", status: 200, outcome: "allowed", reason: undefined, path: "/audit" },
            { action: "refused", subject: "audrey", status: 403, outcome: "refused", reason: "needs view", path: `${dicomWebRoot}studies/${seed.studyInstanceUid}/series/${seed.seriesInstanceUid}/instances/${seed.sopInstanceUid}/frames/1` },
            { action: "refused", subject: "audrey", status: 403, outcome: "refused", reason: "needs download", path: `/instances/${seed.instanceId}/file` },
            { action: "sign-out", subject: "audrey", status: 302, outcome: "allowed", reason: undefined, path: "/oauth2/sign-out" },
        ]);
    });

    it("the audit table: the gatekeeper's role may not rewrite it, Orthanc's role cannot reach it", async function () {
        const asGatekeeper = await connectToAudit(audit.user, audit.password);
        try {
            for (const statement of [`DELETE FROM ${auditTable}`, `UPDATE ${auditTable} SET subject = 'nobody'`, `TRUNCATE ${auditTable}`]) {
                await assert.rejects(asGatekeeper.query(statement), (error: Error & { code?: string }) => error.code === "42501", statement);
            }
            assert.ok(Number((await asGatekeeper.query(`SELECT count(*) AS n FROM ${auditTable}`))[0].n) > 0);
        } finally {
            asGatekeeper.close();
        }
        await assert.rejects(
            connectToAudit(stack.postgres.user, stack.postgres.password),
            (error: Error & { code?: string }) => error.code === "42501",
        );
        assert.deepStrictEqual(await newRecords(), [], "nothing else was recorded");
    });

    it("speaks to an audit database that admits TLS only (sslmode require); refuses plain and an unverifiable server (verify-full)", async function () {
        const resources = new Resources();
        try {
            const secure = await startPostgres(resources, { tls: serverCertificate, maxConnections: 10 });
            const password = generatePassword();
            await secure.asSuperuser(`CREATE ROLE tls_writer LOGIN PASSWORD '${password}'`);
            const options = { host: secure.host, port: secure.port, database: "postgres", user: "tls_writer", password };
            const client = await PgClient.connect({ ...options, sslmode: "require" });
            try {
                assert.deepStrictEqual(await client.query("SELECT ssl::text AS ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"), [{ ssl: "true" }]);
                assert.deepStrictEqual(await client.query("SELECT $1::text || $2::text AS joined", ["it's ", "bound"]), [{ joined: "it's bound" }]);
            } finally {
                client.close();
            }
            await assert.rejects(PgClient.connect({ ...options, sslmode: "disable" }), /no pg_hba.conf entry/);
            // This process trusts no test CA, and the certificate does not name 127.0.0.1.
            await assert.rejects(PgClient.connect({ ...options, sslmode: "verify-full" }), /certificate|self.signed|issuer/i);
        } finally {
            await resources.release();
        }
    });
});
