/**
 * Cross-site request forgery against a real Orthanc 1.13.0 with the rendered configuration, driven by Debian's
 * Chromium: a page of another site makes the user's browser send a form upload, a no-cors POST and an `<img>` whose URL
 * deletes a study (Orthanc's method faking, `?_method=DELETE`), with the user's credentials. The rendered
 * configuration's Lua filter (components/tenant/orthancConfig.ts, crossSiteFilterLua) refuses them and nothing is
 * stored or deleted; the same pages on a replica without the filter succeed, which shows the attacks are real in this
 * browser. The same requests from Orthanc's own origin, and from scripts without Origin, succeed.
 *
 * The browser reaches Orthanc at http://localhost (a potentially trustworthy origin, so Chromium sends Fetch Metadata
 * as it does over https); the gateway is not in the loop here (its DENY is modelled in tests/crossSite.test.ts).
 * The user signs in to Orthanc first (puppeteer's `page.authenticate` answers the Basic challenge), then opens the
 * other site in the same tab: what Chromium then sends to Orthanc comes from its own HTTP auth cache (`pageAt`).
 */
import { strict as assert } from "assert";
import { once } from "events";
import { readFileSync } from "fs";
import { createServer } from "http";
import type { Browser, Page } from "puppeteer-core";
import { dicomWebRoot, OrthancConfig } from "../../components/tenant/orthancConfig";
import { generateInstances, TestInstance } from "./support/dicom";
import { stow, webRequest } from "./support/dicomWeb";
import { Credentials, describeVersions, lookupInstance, lookupResource, Replica } from "./support/orthanc";
import { assertPrerequisites } from "./support/prerequisites";
import { Resources } from "./support/processes";
import { startTenantStack } from "./support/stack";
import { assertViewerPrerequisites } from "./support/viewerApp";
import { launchViewerBrowser } from "./support/viewerBrowser";

/** The attacker's site: any host name but Orthanc's, resolved to 127.0.0.1 by the browser. */
const attackerHost = "attacker.test";

/** The replica without the filter: the rendered configuration less `LuaScripts`, nothing else. */
const withoutFilter = (config: OrthancConfig): OrthancConfig => {
    const { LuaScripts: _removed, ...rest } = config;
    return rest;
};

describe("Cross-site writes: Orthanc's filter refuses another site's form upload, JSON form and method-faking link, in Chromium", function () {
    const suite = new Resources();
    let admin: Credentials;
    let protectedReplica: Replica;
    let controlReplica: Replica;
    let attackerOrigin: string;
    let browser: Browser;
    let dir: string;
    let files = 0;

    before(async function () {
        assertPrerequisites();
        assertViewerPrerequisites();
        const stack = await startTenantStack(suite);
        admin = stack.admin;
        assert.ok(Array.isArray(stack.config.LuaScripts), "the rendered configuration names the filter");
        [protectedReplica, controlReplica] = await Promise.all([stack.startReplica(suite, "filtered"), stack.startReplica(suite, "unfiltered", withoutFilter)]);
        const server = createServer((_request, response) => {
            response.writeHead(200, { "Content-Type": "text/html" });
            response.end("<!doctype html><title>another site</title><p>Nothing to see here.</p>");
        });
        server.listen(0, "127.0.0.1");
        await once(server, "listening");
        suite.defer(() => new Promise<void>((resolve) => server.close(() => resolve())));
        attackerOrigin = `http://${attackerHost}:${(server.address() as { port: number }).port}`;
        dir = suite.tempDir("cross-site");
        browser = await launchViewerBrowser(suite, { trustedCaPems: [], hosts: [attackerHost, "localhost"] });
        console.log(`      ${await browser.version()}; ${await describeVersions(protectedReplica)}`);
    });

    after(async function () {
        await suite.release();
    });

    /** Orthanc's origin for the browser: localhost, potentially trustworthy like https (Chromium sends Fetch Metadata). */
    const base = (replica: Replica) => `http://localhost:${replica.httpPort}`;

    async function newInstance(): Promise<TestInstance> {
        const [instance] = await generateInstances(dir, 1, 1024, `instance-${files++}`);
        return instance;
    }

    async function patientsNamed(replica: Replica, name: string): Promise<number> {
        return (await replica.postJson<string[]>("/tools/find", { Level: "Instance", Query: { PatientName: name } })).length;
    }

    /**
     * A page of `origin` in a browser context of its own in which the user has signed in to `replica` first: Chromium
     * keeps the Basic credentials in its HTTP auth cache and sends them with later requests to Orthanc, whichever page
     * makes them. Chromium does not ask for credentials on another origin's subresources, so only the cache makes a
     * forged fetch or image carry them, as in a user's browser.
     */
    async function pageAt(origin: string, replica: Replica): Promise<Page> {
        const context = await browser.createBrowserContext();
        suite.defer(() => context.close());
        const page = await context.newPage();
        await page.authenticate({ username: admin.user, password: admin.password });
        const signedIn = await page.goto(`${base(replica)}/system`);
        assert.equal(signedIn?.status(), 200, `signing in to ${base(replica)}`);
        const response = await page.goto(origin === attackerOrigin ? `${origin}/` : `${origin}/system`);
        assert.equal(response?.status(), 200, `opening ${origin}`);
        return page;
    }

    /**
     * Submits a real HTML form from the page to `action` and returns the status of the answer (a top-level navigation):
     * multipart/form-data with one file, or text/plain with one field, whose `name=value` line is the whole body.
     */
    async function submitForm(page: Page, action: string, content: { file: Buffer } | { name: string; value: string }): Promise<number | undefined> {
        const [response] = await Promise.all([
            page.waitForNavigation({ timeout: 30_000 }),
            page.evaluate(
                (target: string, file: string | null, field: { name: string; value: string } | null) => {
                    // Runs in the page: the browser's DOM (the suite compiles without DOM types).
                    const { document, DataTransfer, File } = globalThis as any;
                    const form = document.createElement("form");
                    form.method = "POST";
                    form.action = target;
                    const input = document.createElement("input");
                    if (file !== null) {
                        form.enctype = "multipart/form-data";
                        input.type = "file";
                        input.name = "files[]";
                        const transfer = new DataTransfer();
                        transfer.items.add(new File([Uint8Array.from(atob(file), (c: string) => c.charCodeAt(0))], "study.dcm", { type: "application/dicom" }));
                        input.files = transfer.files;
                    } else {
                        form.enctype = "text/plain";
                        input.type = "hidden";
                        input.name = field!.name;
                        input.value = field!.value;
                    }
                    form.appendChild(input);
                    document.body.appendChild(form);
                    form.submit();
                },
                action,
                "file" in content ? content.file.toString("base64") : null,
                "file" in content ? null : content,
            ),
        ]);
        return response?.status();
    }

    /**
     * A form whose text/plain body is JSON: the field's name is everything up to a StudyDescription's opening quote,
     * the browser adds `=` and the value closes it. Orthanc parses the body as JSON whatever its Content-Type
     * (RestApiPostCall.h).
     */
    const jsonForm = (tags: Record<string, string>) => ({ name: `${JSON.stringify({ Tags: tags }).slice(0, -2)},"StudyDescription":"`, value: '"}}' });

    /** The page follows a link to `url` (a top-level GET navigation); the status of the answer. */
    async function followLink(page: Page, url: string): Promise<number | undefined> {
        const [response] = await Promise.all([
            page.waitForNavigation({ timeout: 30_000 }),
            page.evaluate((target: string) => {
                const { document } = globalThis as any;
                const link = document.createElement("a");
                link.href = target;
                document.body.appendChild(link);
                link.click();
            }, url),
        ]);
        return response?.status();
    }

    async function storedStudy(replica: Replica): Promise<{ instance: TestInstance; studyId: string }> {
        const instance = await newInstance();
        const stored = await stow({ port: replica.httpPort, credentials: admin }, dicomWebRoot, [readFileSync(instance.file)]);
        assert.equal(stored.status, 200, "STOW-RS by a script");
        const studyId = await lookupResource(replica, instance.studyInstanceUid, "Study");
        assert.ok(studyId);
        return { instance, studyId };
    }

    for (const [label, filtered] of [
        ["the rendered configuration refuses", true],
        ["without the filter (control), the same page succeeds at", false],
    ] as const) {
        it(`${label} another site's form upload, JSON form POST to /tools/create-dicom and link to ?_method=DELETE`, async function () {
            const replica = filtered ? protectedReplica : controlReplica;
            const page = await pageAt(attackerOrigin, replica);

            const upload = await newInstance();
            assert.equal(await submitForm(page, `${base(replica)}/instances`, { file: readFileSync(upload.file) }), filtered ? 403 : 200, "the form upload");
            assert.equal((await lookupInstance(replica, upload.sopInstanceUid)) !== undefined, !filtered, "the uploaded instance stored");

            const marker = `FORGED^${filtered ? "F" : "C"}${Date.now()}`;
            await page.goto(`${attackerOrigin}/`);
            const created = await submitForm(page, `${base(replica)}/tools/create-dicom`, jsonForm({ PatientName: marker, PatientID: "FORGED" }));
            assert.equal(created, filtered ? 403 : 200, "the JSON form POST");
            assert.equal(await patientsNamed(replica, marker), filtered ? 0 : 1, "instances created by the forged POST");

            const { studyId } = await storedStudy(replica);
            await page.goto(`${attackerOrigin}/`);
            assert.equal(await followLink(page, `${base(replica)}/studies/${studyId}?_method=DELETE`), filtered ? 403 : 200, "the link");
            assert.equal((await replica.request(`/studies/${studyId}`)).status, filtered ? 200 : 404, "the study after the link");
        });
    }

    it("Chromium sends no cached credentials with a no-cors fetch from another site: it never reaches Orthanc's handlers, even without the filter", async function () {
        const page = await pageAt(attackerOrigin, controlReplica);
        const marker = `SUBRESOURCE^${Date.now()}`;
        const status = await page.evaluate(
            async (target: string, text: string) => (await fetch(target, { method: "POST", mode: "no-cors", credentials: "include", body: text })).type,
            `${base(controlReplica)}/tools/create-dicom`,
            JSON.stringify({ Tags: { PatientName: marker } }),
        );
        assert.equal(status, "opaque");
        assert.equal(await patientsNamed(controlReplica, marker), 0, "even without the filter");
    });

    it("admits the same writes from Orthanc's own origin (Orthanc Explorer 2's upload, a same-origin fetch)", async function () {
        const page = await pageAt(base(protectedReplica), protectedReplica);
        const upload = await newInstance();
        assert.equal(await submitForm(page, `${base(protectedReplica)}/instances`, { file: readFileSync(upload.file) }), 200);
        assert.ok(await lookupInstance(protectedReplica, upload.sopInstanceUid), "the same-origin upload stored");
        await page.goto(`${base(protectedReplica)}/system`);
        const marker = `SAME^ORIGIN${Date.now()}`;
        const created = await page.evaluate(
            async (target: string, text: string) => (await fetch(target, { method: "POST", headers: { "Content-Type": "text/plain" }, body: text })).status,
            `${base(protectedReplica)}/tools/create-dicom`,
            JSON.stringify({ Tags: { PatientName: marker } }),
        );
        assert.equal(created, 200);
        assert.equal(await patientsNamed(protectedReplica, marker), 1);
        const { studyId } = await storedStudy(protectedReplica);
        const deleted = await page.evaluate(async (url: string) => (await fetch(url, { method: "DELETE" })).status, `${base(protectedReplica)}/studies/${studyId}`);
        assert.equal(deleted, 200);
        assert.equal((await protectedReplica.request(`/studies/${studyId}`)).status, 404);
    });

    it("admits scripts and DICOMweb clients without Origin, and judges browsers without Sec-Fetch-Site by Origin against Host", async function () {
        const target = { port: protectedReplica.httpPort, credentials: admin };
        const { studyId } = await storedStudy(protectedReplica);
        const create = (headers: Record<string, string>) =>
            webRequest(target, "/tools/create-dicom", { method: "POST", headers, body: Buffer.from(JSON.stringify({ Tags: { PatientName: "SCRIPT" } })) });
        assert.equal((await create({})).status, 200, "a script without Origin");
        assert.equal((await create({ Origin: `http://127.0.0.1:${protectedReplica.httpPort}` })).status, 200, "an older browser, same origin");
        assert.equal((await create({ Origin: `https://127.0.0.1:${protectedReplica.httpPort}` })).status, 200, "same host behind the gateway's TLS");
        assert.equal((await create({ Origin: "https://attacker.test" })).status, 403, "an older browser, another origin");
        assert.equal((await create({ Origin: "null" })).status, 403, "an opaque origin");
        assert.equal((await create({ "Sec-Fetch-Site": "same-site", Origin: "https://web.mhr.orthweb.example" })).status, 403, "another tenant's host");
        assert.equal((await create({ "Sec-Fetch-Site": "same-origin", Origin: "null" })).status, 200, "same origin under Referrer-Policy no-referrer");
        assert.equal((await webRequest(target, `/studies/${studyId}`, { method: "DELETE" })).status, 200, "a script's DELETE");
    });
});
