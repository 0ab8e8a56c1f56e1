import { strict as assert } from "assert";
import { generateKeyPairSync, randomBytes, sign, createHmac, type KeyObject } from "crypto";
import { readFileSync } from "fs";
import { join } from "path";
import { createServer as createTcpServer, type AddressInfo } from "net";
import { createServer as createHttpServer, type IncomingMessage, type Server } from "http";
import { type AuditRecord, defaultRoles, gatekeeperSecretEnv, permissions } from "../components/identity/contract";
import {
    auditActionFor,
    auditDatabaseStatements,
    auditInsertSql,
    buildAuditRecord,
    canonicalPath,
    checkJwt,
    deriveKeys,
    dicomWebPrefix,
    healthPath,
    IssuerKeys,
    type Jwk,
    permissionsOfGroups,
    requiredPermission,
    type Requirement,
    resourcesOfRequest,
    seal,
    secretEnv,
    shareAllows,
    signShareToken,
    storedResources,
    studiesCreated,
    unseal,
    uploaderLabel,
    verifyShareToken,
    upstreamHeaders,
    requestProblem,
    modifyDeletes,
    modifyPath,
    safeReturnPath,
    PgClient,
    trimAuditQueue,
    providerAnswers,
    issuerDiscoveryUrl,
    startGatekeeper,
} from "../components/identity/gatekeeper/server";
import { dicomWebRoot } from "../components/tenant/orthancConfig";

const study = "1.2.826.0.1.3680043.8.498.1";
const series = "1.2.826.0.1.3680043.8.498.2";
const instance = "1.2.826.0.1.3680043.8.498.3";
const orthancId = "6e2c0ec2-5d99c8ca-c1c21cee-79a09605-68391d12";

describe("gatekeeper: what each request needs (requiredPermission)", function () {
    const table: [string, string, Requirement][] = [
        // DICOMweb: QIDO-RS searches, WADO-RS reads, STOW-RS stores.
        ["GET", "/dicom-web/studies", "search"],
        ["GET", "/dicom-web/series", "search"],
        ["GET", "/dicom-web/instances", "search"],
        ["GET", `/dicom-web/studies/${study}/series`, "search"],
        ["GET", `/dicom-web/studies/${study}/instances`, "search"],
        ["GET", `/dicom-web/studies/${study}/series/${series}/instances`, "search"],
        ["GET", `/dicom-web/studies/${study}`, "view"],
        ["HEAD", `/dicom-web/studies/${study}/metadata`, "view"],
        ["GET", `/dicom-web/studies/${study}/series/${series}/metadata`, "view"],
        ["GET", `/dicom-web/studies/${study}/series/${series}/instances/${instance}/frames/1`, "view"],
        ["GET", `/dicom-web/studies/${study}/series/${series}/instances/${instance}/rendered`, "view"],
        ["POST", "/dicom-web/studies", "upload"],
        ["POST", `/dicom-web/studies/${study}`, "upload"],
        ["DELETE", `/dicom-web/studies/${study}`, "admin"],
        ["POST", "/dicom-web/servers/pacs/stow", "admin"],
        ["GET", "/dicom-web/servers", "admin"],
        ["GET", "/wado", "view"],
        // Orthanc's REST API.
        ["GET", "/studies", "search"],
        ["GET", "/patients", "search"],
        ["POST", "/tools/find", "search"],
        ["POST", "/tools/count-resources", "search"],
        ["POST", "/tools/lookup", "search"],
        ["GET", "/tools/labels", "search"],
        ["GET", `/studies/${orthancId}`, "view"],
        ["GET", `/instances/${orthancId}/frames/0/rendered`, "view"],
        ["GET", `/instances/${orthancId}/preview`, "view"],
        ["GET", `/instances/${orthancId}/tags`, "view"],
        ["GET", `/studies/${orthancId}/ohif-dicom-json`, "view"],
        ["GET", `/studies/${orthancId}/labels`, "view"],
        ["GET", `/studies/${orthancId}/archive`, "download"],
        ["POST", `/studies/${orthancId}/archive`, "download"],
        ["GET", `/series/${orthancId}/media`, "download"],
        ["GET", `/instances/${orthancId}/file`, "download"],
        ["GET", `/instances/${orthancId}/attachments/dicom/data`, "download"],
        ["POST", "/tools/create-archive", "download"],
        ["POST", "/tools/create-media-extended", "download"],
        ["POST", "/instances", "upload"],
        ["POST", `/studies/${orthancId}/modify`, "edit"],
        ["POST", `/patients/${orthancId}/anonymize`, "edit"],
        ["POST", "/tools/bulk-modify", "edit"],
        ["PUT", `/studies/${orthancId}/labels/reviewed`, "edit"],
        ["DELETE", `/studies/${orthancId}/labels/reviewed`, "edit"],
        ["PUT", `/instances/${orthancId}/metadata/1024`, "edit"],
        // The uploader's label is the gatekeeper's proof of ownership: nobody but an administrator writes one.
        ["PUT", `/studies/${orthancId}/labels/uploaded-by-0123abcd`, "admin"],
        ["DELETE", `/studies/${orthancId}/labels/uploaded-by-0123abcd`, "admin"],
        ["DELETE", `/studies/${orthancId}`, "delete-own"],
        ["DELETE", `/series/${orthancId}`, "delete-own"],
        ["DELETE", `/instances/${orthancId}`, "delete-own"],
        ["DELETE", `/patients/${orthancId}`, "delete"],
        ["POST", "/tools/bulk-delete", "delete"],
        // The viewers' files and the gatekeeper's own routes.
        ["GET", "/ui/app/index.html", "signed-in"],
        ["GET", "/ui/api/configuration", "signed-in"],
        ["GET", "/ui/api/pre-login-configuration", "signed-in"],
        ["GET", "/ui/landing/index.html", "signed-in"],
        ["GET", "/ui/api/studies", "admin"],
        ["GET", "/ui/other", "admin"],
        ["GET", "/", "signed-in"],
        ["GET", "/stone-webviewer/index.html", "signed-in"],
        ["GET", "/ohif/viewer", "signed-in"],
        ["GET", "/ohif", "signed-in"],
        ["GET", "/system", "signed-in"],
        ["GET", "/favicon.ico", "signed-in"],
        ["GET", "/app/images/favicon.ico", "signed-in"],
        ["GET", "/plugins/dicom-web", "signed-in"],
        ["PUT", "/ui/api/configuration", "admin"],
        ["GET", "/oauth2/sign-in", "public"],
        ["GET", "/oauth2/callback", "public"],
        ["GET", healthPath, "public"],
        ["GET", "/share/abc.def", "public"],
        ["POST", "/share", "share"],
        ["GET", "/audit", "audit"],
        ["POST", "/audit", "admin"],
        // Everything else: administrators only.
        ["GET", "/jobs", "admin"],
        ["GET", "/modalities", "admin"],
        ["POST", "/modalities/pacs/store", "admin"],
        ["PUT", "/tools/log-level", "admin"],
        ["POST", "/tools/execute-script", "admin"],
        ["GET", "/changes", "admin"],
        ["GET", "/statistics", "admin"],
        ["POST", "/tools/reset", "admin"],
        ["GET", "/app/explorer.html", "admin"],
        ["GET", "/ohifx", "admin"],
        ["POST", "/ohif/viewer", "admin"],
    ];
    for (const [method, path, expected] of table) {
        it(`${method} ${path} -> ${expected}`, function () {
            assert.equal(requiredPermission(method, path), expected);
        });
    }

    it("names every permission of the contract in some rule (none is dead)", function () {
        const used = new Set(table.map(([, , requirement]) => requirement));
        for (const permission of permissions) assert.ok(used.has(permission), permission);
    });

    it("audit actions: edits are changes, both deletes are deletions, sends are exports", function () {
        assert.equal(auditActionFor("edit", "POST", `/studies/${orthancId}/modify`), "change");
        assert.equal(auditActionFor("delete-own", "DELETE", `/studies/${orthancId}`), "delete");
        assert.equal(auditActionFor("audit", "GET", "/audit"), "audit-read");
        assert.equal(auditActionFor("admin", "POST", "/modalities/pacs/store"), "export");
        assert.equal(auditActionFor("admin", "POST", "/peers/other/store"), "export");
        assert.equal(auditActionFor("admin", "GET", "/jobs"), "admin");
        assert.equal(auditActionFor("view", "GET", "/wado"), "view");
    });

    it("refuses paths Orthanc's web server would read as another path (dot segments, encoded separators)", function () {
        for (const raw of ["/ohif/../instances/x/file", "/ohif/%2e%2e/instances/x/file", "/ohif/..%2Finstances", "//studies", "/ohif/./x", "/ohif\\..\\x", "studies", "/a/%00"]) {
            assert.equal(canonicalPath(raw), undefined, raw);
        }
        assert.equal(canonicalPath("/dicom-web/studies?PatientName=DOE*"), "/dicom-web/studies");
    });

    it("the DICOMweb prefix is the rendered DicomWeb.Root, and the secret variables are the contract's", function () {
        assert.equal(`${dicomWebPrefix}/`, dicomWebRoot);
        assert.deepEqual(secretEnv, gatekeeperSecretEnv);
    });

    it("imports nothing but Node's built-ins at run time (it runs alone from a ConfigMap)", function () {
        const source = readFileSync(join(__dirname, "../components/identity/gatekeeper/server.ts"), "utf8");
        const imports = [...source.matchAll(/^import\s+(type\s+)?[^;]*?from\s+"([^"]+)";/gms)];
        assert.ok(imports.length > 3);
        for (const [statement, typeOnly, from] of imports) {
            assert.ok(typeOnly !== undefined || from.startsWith("node:"), statement);
        }
        assert.doesNotMatch(source, /^\s*(export\s+)?(const\s+)?enum\s|^\s*(export\s+)?namespace\s/m);
    });
});

// Each case below was a way past the table (a review of the gatekeeper, checked against Orthanc's HttpServer.cpp
// ExtractMethod, civetweb's decoding, the DICOMweb plugin's QIDO filters and OrthancRestAnonymizeModify.cpp).
describe("gatekeeper: requests refused before any decision", function () {
    it("refuses a body on GET, HEAD, DELETE and OPTIONS: forwarded unframed, it would be Orthanc's next request", () => {
        for (const method of ["GET", "HEAD", "DELETE", "OPTIONS"]) {
            assert.equal(requestProblem(method, new URLSearchParams(""), { "transfer-encoding": "chunked" }), `a body on ${method}`);
            assert.equal(requestProblem(method, new URLSearchParams(""), { "content-length": "12" }), `a body on ${method}`);
            assert.equal(requestProblem(method, new URLSearchParams(""), { "content-length": "0" }), undefined);
        }
        assert.equal(requestProblem("POST", new URLSearchParams(""), { "transfer-encoding": "chunked" }), undefined);
    });

    it("refuses Orthanc's method overrides, which would turn a GET judged as a view into a DELETE or PUT", () => {
        assert.equal(requestProblem("GET", new URLSearchParams("_method=DELETE"), {}), "method override");
        assert.equal(requestProblem("GET", new URLSearchParams("a=1&_METHOD=PUT"), {}), "method override");
        assert.equal(requestProblem("HEAD", new URLSearchParams(""), { "x-http-method-override": "DELETE" }), "method override");
        assert.equal(requestProblem("GET", new URLSearchParams("method=x"), {}), undefined);
    });

    it("refuses percent-escapes and characters outside RFC 3986 paths, which Orthanc would read as another path", () => {
        for (const path of ["/studies/X/%61rchive", "/instances/X/%66ile", "/studies/V/labels/%75ploaded-by-x", "/studies/V#/labels/x", "/studies/a b"]) {
            assert.equal(canonicalPath(path), undefined, path);
        }
        assert.equal(canonicalPath(`${dicomWebRoot}studies/1.2.3/series?includefield=00080021`), `${dicomWebRoot}studies/1.2.3/series`);
    });

    it("lets edit modify with the originals kept, and asks for delete when KeepSource is anything but true", () => {
        assert.ok(modifyPath.test("/studies/0a1b/modify") && modifyPath.test("/tools/bulk-anonymize") && !modifyPath.test("/studies/0a1b/archive"));
        assert.equal(modifyDeletes('{"Replace": {"PatientName": "X"}}'), false);
        assert.equal(modifyDeletes('{"Replace": {}, "KeepSource": true}'), false);
        for (const value of ["false", "0", '"false"', "null"]) {
            assert.equal(modifyDeletes(`{"Replace": {}, "KeepSource": ${value}}`), true, value);
        }
        assert.equal(modifyDeletes('{"KeepSource": true, "KeepSource": false}'), true, "the last of repeated keys, as JsonCpp reads it");
    });

    it("returns a browser after sign-in to a path of its own origin only", () => {
        const origin = "https://web.bhs.orthweb.example";
        assert.equal(safeReturnPath("/ohif/viewer?StudyInstanceUIDs=1.2", origin), "/ohif/viewer?StudyInstanceUIDs=1.2");
        for (const value of ["/\t/evil.example", "//evil.example", "/\\evil.example", "https://evil.example/", "/\n/x", null, ""]) {
            assert.equal(safeReturnPath(value, origin), "/ui/", String(value));
        }
    });
});

describe("gatekeeper: the audit database client authenticates the server too", function () {
    /** A server on loopback that answers the startup message with `replies` (PostgreSQL's wire format), whatever it is sent. */
    async function fakePostgres(replies: Buffer[]): Promise<{ port: number; close: () => void }> {
        const server = createTcpServer((socket) => {
            socket.once("data", () => socket.write(Buffer.concat(replies)));
            socket.on("error", () => undefined);
        });
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        return { port: (server.address() as AddressInfo).port, close: () => server.close() };
    }
    const message = (type: string, body: Buffer) => {
        const length = Buffer.alloc(4);
        length.writeInt32BE(body.length + 4);
        return Buffer.concat([Buffer.from(type), length, body]);
    };
    const auth = (kind: number, rest = Buffer.alloc(0)) => {
        const code = Buffer.alloc(4);
        code.writeInt32BE(kind);
        return message("R", Buffer.concat([code, rest]));
    };
    const ready = message("Z", Buffer.from("I"));
    const connectTo = (port: number) => PgClient.connect({ host: "127.0.0.1", port, database: "audit", user: "gatekeeper_audit", password: "p" });

    for (const [what, replies, refusal] of [
        ["a password in clear", [auth(3)], /method 3 not supported/],
        ["an MD5 password", [auth(5, Buffer.from("salt"))], /method 5 not supported/],
        ["AuthenticationOk without SCRAM's proof", [auth(0), ready], /did not prove/],
    ] as const) {
        it(`refuses a server that asks for ${what}`, async () => {
            const server = await fakePostgres([...replies]);
            try {
                await assert.rejects(connectTo(server.port), refusal);
            } finally {
                server.close();
            }
        });
    }
});

describe("gatekeeper: the audit queue while the database is away", function () {
    const record = (id: string, subject?: string) => ({ path: `/${id}`, subject }) as unknown as AuditRecord;
    it("drops anonymous refusals first, then the oldest, and keeps the order", () => {
        const queue = [record("a", "clara"), record("x1"), record("b", "theo"), record("x2"), record("c", "audrey")];
        assert.deepEqual(trimAuditQueue(queue, 4).map((r) => r.path), ["/a", "/b", "/x2", "/c"]);
        assert.deepEqual(trimAuditQueue(queue, 3).map((r) => r.path), ["/a", "/b", "/c"]);
        assert.deepEqual(trimAuditQueue(queue, 2).map((r) => r.path), ["/b", "/c"]);
        assert.equal(trimAuditQueue(queue, 5).length, 5);
    });
    it("a flood of anonymous refusals cannot push out what signed-in users did", () => {
        const queue = [record("signed-in", "clara"), ...Array.from({ length: 20_000 }, (_, i) => record(`anonymous-${i}`))];
        const kept = trimAuditQueue(queue, 10_000);
        assert.equal(kept.length, 10_000);
        assert.equal(kept[0].path, "/signed-in");
    });
});

describe("gatekeeper: what Orthanc receives (upstreamHeaders)", function () {
    it("keeps the client's Host and other headers, replaces its credentials and drops cookies, hop-by-hop and X-Forwarded-*", () => {
        const incoming = {
            host: "web.bhs.orthweb.example",
            accept: "application/dicom+json",
            origin: "https://web.bhs.orthweb.example",
            authorization: "Bearer client-token",
            cookie: "__Host-gatekeeper-session=sealed",
            token: "t",
            "api-key": "k",
            connection: "keep-alive",
            "x-forwarded-host": "attacker.example",
            "x-forwarded-for": "10.0.0.1",
        };
        assert.deepEqual(upstreamHeaders(incoming, "Basic Z2F0ZWtlZXBlcjpw"), {
            host: "web.bhs.orthweb.example",
            accept: "application/dicom+json",
            origin: "https://web.bhs.orthweb.example",
            authorization: "Basic Z2F0ZWtlZXBlcjpw",
        });
    });
});

describe("gatekeeper: roles, resources, uploads", function () {
    it("maps groups to the union of their roles' permissions; unknown groups grant nothing", function () {
        assert.deepEqual([...permissionsOfGroups(defaultRoles, ["orthanc-clinicians"])].sort(), ["download", "search", "share", "view"]);
        assert.deepEqual([...permissionsOfGroups(defaultRoles, ["orthanc-auditors", "staff"])], ["audit"]);
        assert.equal(permissionsOfGroups(defaultRoles, ["orthanc-admins", "Orthanc-Clinicians"]).size, 0);
        const both = permissionsOfGroups(defaultRoles, ["orthanc-clinicians", "orthanc-technologists"]);
        assert.ok(both.has("upload") && both.has("download") && !both.has("delete") && !both.has("admin"));
    });

    it("reads ids from paths and WADO-URI's UID arguments, never other query values", function () {
        assert.deepEqual(resourcesOfRequest(`/dicom-web/studies/${study}/series/${series}/instances/${instance}/frames/1`, new URLSearchParams()), [
            { level: "study", id: study },
            { level: "series", id: series },
            { level: "instance", id: instance },
        ]);
        assert.deepEqual(resourcesOfRequest(`/studies/${orthancId}/archive`, new URLSearchParams()), [{ level: "study", id: orthancId }]);
        assert.deepEqual(resourcesOfRequest("/wado", new URLSearchParams(`requestType=WADO&studyUID=${study}&objectUID=${instance}&PatientName=DOE`)), [
            { level: "study", id: study },
            { level: "instance", id: instance },
        ]);
        assert.deepEqual(resourcesOfRequest("/dicom-web/studies", new URLSearchParams("PatientName=DOE^JOHN")), []);
    });

    it("reads what an upload stored from Orthanc's answers (POST /instances, STOW-RS)", function () {
        const rest = storedResources("/instances", [
            { ID: "i1", ParentSeries: "s1", ParentStudy: "st1", ParentPatient: "p1", Status: "Success" },
            { ID: "i2", ParentSeries: "s1", ParentStudy: "st1", ParentPatient: "p1", Status: "AlreadyStored" },
        ]);
        assert.deepEqual(rest.resources, [{ level: "study", id: "st1" }, { level: "series", id: "s1" }, { level: "instance", id: "i1" }, { level: "instance", id: "i2" }]);
        assert.deepEqual(rest.instances, [{ instanceId: "i1", studyId: "st1", isNew: true }, { instanceId: "i2", studyId: "st1", isNew: false }]);
        const stow = storedResources("stow", {
            "00081190": { vr: "UR", Value: [`https://web.bhs.example/dicom-web/studies/${study}`] },
            "00081199": { vr: "SQ", Value: [{ "00081155": { vr: "UI", Value: [instance] } }, { "00081155": { vr: "UI", Value: ["1.2.3"] } }] },
        });
        assert.deepEqual(stow.resources, [{ level: "study", id: study }, { level: "instance", id: instance }, { level: "instance", id: "1.2.3" }]);
        assert.deepEqual(stow.stowInstanceUids, [instance, "1.2.3"]);
        assert.deepEqual(stow.instances, []);
    });

    it("labels only the studies an upload created: not a re-sent instance, not one added to someone else's study", function () {
        const created = (isNew: boolean, studyId = "st1", instanceId = "i1") => ({ instanceId, studyId, isNew });
        assert.deepEqual(studiesCreated([created(true)], { st1: 1 }), ["st1"]);
        assert.deepEqual(studiesCreated([created(false)], { st1: 1 }), [], "AlreadyStored: someone else's");
        assert.deepEqual(studiesCreated([created(true)], { st1: 5 }), [], "added to a study that held others");
        assert.deepEqual(studiesCreated([created(true), created(false, "st1", "i2")], { st1: 2 }), []);
        assert.deepEqual(studiesCreated([created(true), created(true, "st1", "i2"), created(true, "st2", "i3")], { st1: 2, st2: 1 }), ["st1", "st2"]);
        assert.deepEqual(studiesCreated([created(true)], {}), [], "a study Orthanc could not count");
    });

    // Orthanc refuses labels other than 1 to 64 of [A-Za-z0-9_-] (OrthancServer/Sources/ServerToolbox.cpp, IsValidLabel).
    it("uploader labels are valid Orthanc labels, one per tenant and subject", function () {
        const label = uploaderLabel("bhs", "user|with spaces & symbols");
        assert.match(label, /^[A-Za-z0-9_-]{1,64}$/);
        assert.notEqual(label, uploaderLabel("bhs", "user|with spaces & symbolz"));
        assert.notEqual(label, uploaderLabel("mhr", "user|with spaces & symbols"));
        assert.equal(requiredPermission("PUT", `/studies/${orthancId}/labels/${label}`), "admin");
    });
});

interface Signer {
    jwk: Jwk;
    alg: string;
    sign(data: Buffer): Buffer;
}

function signer(alg: "RS256" | "ES256" | "PS256", kid: string, keys: { privateKey: KeyObject; publicKey: KeyObject }): Signer {
    return {
        alg,
        jwk: { ...(keys.publicKey.export({ format: "jwk" }) as Jwk), kid, use: "sig" },
        sign: (data) =>
            alg === "ES256"
                ? sign("sha256", data, { key: keys.privateKey, dsaEncoding: "ieee-p1363" })
                : alg === "PS256"
                  ? sign("sha256", data, { key: keys.privateKey, padding: 6, saltLength: 32 })
                  : sign("sha256", data, keys.privateKey),
    };
}

function jwt(by: Signer, claims: Record<string, unknown>, header: Record<string, unknown> = {}): string {
    const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const body = `${encode({ alg: by.alg, kid: by.jwk.kid, typ: "JWT", ...header })}.${encode(claims)}`;
    return `${body}.${by.sign(Buffer.from(body)).toString("base64url")}`;
}

describe("gatekeeper: whether the identity provider answers (providerAnswers)", function () {
    const issuer = "https://idp.bhs.example/realms/bhs";
    it("asks for the issuer's discovery document and counts only a document naming that issuer as an answer", async function () {
        const asked: string[] = [];
        const answering = (document: unknown) => async (url: string) => (asked.push(url), document);
        assert.equal(await providerAnswers(issuer, answering({ issuer })), true);
        assert.deepEqual(asked, ["https://idp.bhs.example/realms/bhs/.well-known/openid-configuration"]);
        assert.equal(issuerDiscoveryUrl(`${issuer}/`), asked[0]);
        // An in-cluster provider's document, read at its address inside the mesh, still names the public issuer.
        const backchannel = "http://keycloak-http.keycloak.svc.cluster.local/realms/bhs/.well-known/openid-configuration";
        assert.equal(await providerAnswers(issuer, answering({ issuer }), backchannel), true);
        assert.equal(asked.at(-1), backchannel);
        assert.equal(await providerAnswers(issuer, answering({ issuer: "https://idp.mhr.example/realms/mhr" })), false, "another issuer's document");
        assert.equal(await providerAnswers(issuer, answering(null)), false, "no document");
        assert.equal(await providerAnswers(issuer, async () => Promise.reject(new Error("fetch failed"))), false, "no connection, a timeout or an HTTP error");
    });
});

describe("gatekeeper: tokens", function () {
    const rsaKeys = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const rsa = signer("RS256", "rsa-1", rsaKeys);
    const pss = signer("PS256", "rsa-1", rsaKeys);
    const ec = signer("ES256", "ec-1", generateKeyPairSync("ec", { namedCurve: "P-256" }));
    const stranger = signer("ES256", "ec-1", generateKeyPairSync("ec", { namedCurve: "P-256" }));
    const issuer = "https://idp.bhs.example/realms/bhs";
    const now = 1_800_000_000;
    const expect = { issuer, audiences: ["https://web.bhs.example"], now, skewSeconds: 30 };
    const claims = { iss: issuer, aud: "https://web.bhs.example", sub: "alice", exp: now + 300, iat: now };
    const keys = [rsa.jwk, ec.jwk];

    it("accepts RS256, PS256 and ES256 tokens of the issuer for an accepted audience", function () {
        for (const by of [rsa, { ...pss, jwk: { ...rsa.jwk } }, ec]) {
            const check = checkJwt(jwt(by, claims), keys, expect);
            assert.ok(check.ok, JSON.stringify(check));
        }
        assert.ok(checkJwt(jwt(ec, { ...claims, aud: ["other", "https://web.bhs.example"] }), keys, expect).ok);
    });

    const refusals: [string, () => string, string][] = [
        ["another issuer (another tenant's)", () => jwt(ec, { ...claims, iss: "https://idp.mhr.example/realms/mhr" }), "wrong issuer"],
        ["another audience (another tenant's)", () => jwt(ec, { ...claims, aud: "https://web.mhr.example" }), "wrong audience"],
        ["no audience", () => jwt(ec, { ...claims, aud: undefined }), "wrong audience"],
        ["expired beyond the skew", () => jwt(ec, { ...claims, exp: now - 31 }), "expired"],
        ["no expiry", () => jwt(ec, { ...claims, exp: undefined }), "no expiry"],
        ["not yet valid", () => jwt(ec, { ...claims, nbf: now + 60 }), "not yet valid"],
        ["signed by another key with a known kid", () => jwt(stranger, claims), "bad signature"],
        ["a kid the JWKS lacks", () => jwt(ec, claims, { kid: "ec-2" }), "unknown signing key"],
        ["alg none", () => `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.`, "algorithm none not accepted"],
        [
            "HS256 keyed with the public key (algorithm confusion)",
            () => {
                const body = `${Buffer.from(JSON.stringify({ alg: "HS256", kid: "rsa-1" })).toString("base64url")}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;
                return `${body}.${createHmac("sha256", rsaKeys.publicKey.export({ format: "pem", type: "spki" })).update(body).digest("base64url")}`;
            },
            "algorithm HS256 not accepted",
        ],
        ["ES256 header on the RSA key", () => jwt({ ...ec, jwk: rsa.jwk }, claims, { kid: "rsa-1" }), "bad signature"],
        ["a tampered payload", () => { const [h, , s] = jwt(ec, claims).split("."); return `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: "root" })).toString("base64url")}.${s}`; }, "bad signature"],
        ["not a JWT", () => "abc.def", "malformed token"],
    ];
    for (const [what, token, reason] of refusals) {
        it(`refuses ${what}`, function () {
            const check = checkJwt(token(), keys, expect);
            assert.equal(check.ok, false);
            assert.equal(!check.ok && check.reason, reason);
        });
    }

    it("accepts an expiry within the skew", function () {
        assert.ok(checkJwt(jwt(ec, { ...claims, exp: now - 29 }), keys, expect).ok);
    });

    it("fetches the JWKS again for an unknown kid, at most once per interval, and never for a stranger's issuer", async function () {
        const fetched: string[] = [];
        let jwks: Jwk[] = [rsa.jwk];
        const fetchJson = async (url: string) => {
            fetched.push(url);
            return url.endsWith("/.well-known/openid-configuration") ? { issuer, jwks_uri: `${issuer}/jwks` } : { keys: jwks };
        };
        const keysOf = new IssuerKeys(issuer, fetchJson, 10_000);
        const t0 = now * 1000;
        assert.ok((await keysOf.check(jwt(rsa, claims), expect.audiences, t0)).ok);
        assert.equal(fetched.length, 2);
        // The provider rotated in the EC key: one refetch finds it.
        jwks = [rsa.jwk, ec.jwk];
        assert.ok((await keysOf.check(jwt(ec, claims), expect.audiences, t0 + 20_000)).ok);
        assert.equal(fetched.length, 3);
        // Made-up kids within the interval cost nothing more.
        for (let i = 0; i < 5; i += 1) {
            const check = await keysOf.check(jwt(ec, claims, { kid: `junk-${i}` }), expect.audiences, t0 + 21_000);
            assert.ok(!check.ok && check.reason === "unknown signing key");
        }
        assert.equal(fetched.length, 3);
        const foreign = await keysOf.check(jwt(ec, { ...claims, iss: "https://elsewhere.example" }, { kid: "other" }), expect.audiences, t0 + 60_000);
        assert.ok(!foreign.ok && foreign.reason === "wrong issuer");
        assert.equal(fetched.length, 3);
    });

    it("while the provider is down, tries again once per interval, not once per request", async function () {
        let attempts = 0;
        const keysOf = new IssuerKeys(issuer, async () => {
            attempts += 1;
            throw new Error("connection refused");
        }, 10_000);
        const t0 = now * 1000;
        for (let i = 0; i < 5; i += 1) {
            await assert.rejects(keysOf.check(jwt(rsa, claims), expect.audiences, t0 + i * 1000), /connection refused/);
        }
        assert.equal(attempts, 1);
        await assert.rejects(keysOf.check(jwt(rsa, claims), expect.audiences, t0 + 11_000), /connection refused/);
        assert.equal(attempts, 2);
    });

    it("reads the discovery document at the in-cluster address when given one, and still holds it to the public issuer", async function () {
        const internal = "http://keycloak-http.keycloak.svc.cluster.local/keycloak/realms/bhs/.well-known/openid-configuration";
        const fetched: string[] = [];
        const keysOf = new IssuerKeys(issuer, async (url: string) => {
            fetched.push(url);
            // Keycloak's dynamic backchannel: the keys at the address asked, the issuer the public one.
            return url === internal ? { issuer, jwks_uri: "http://keycloak-http.keycloak.svc.cluster.local/keycloak/realms/bhs/certs" } : { keys: [rsa.jwk] };
        }, 10_000, internal);
        assert.ok((await keysOf.check(jwt(rsa, claims), expect.audiences, now * 1000)).ok);
        assert.deepEqual(fetched, [internal, "http://keycloak-http.keycloak.svc.cluster.local/keycloak/realms/bhs/certs"]);
        const misnamed = new IssuerKeys(issuer, async () => ({ issuer: "http://keycloak-http.keycloak.svc.cluster.local/keycloak/realms/bhs", jwks_uri: "x" }), 10_000, internal);
        await assert.rejects(misnamed.metadata(), /names issuer http:\/\/keycloak-http/);
    });

    it("refuses a discovery document that names another issuer", async function () {
        const keysOf = new IssuerKeys(issuer, async () => ({ issuer: "https://evil.example", jwks_uri: "https://evil.example/jwks" }));
        await assert.rejects(keysOf.check(jwt(ec, claims), expect.audiences, now * 1000), /names issuer https:\/\/evil\.example/);
    });
});

describe("gatekeeper: sealed cookies and share links", function () {
    const keys = deriveKeys(randomBytes(32));
    const other = deriveKeys(randomBytes(32));

    it("seals a session that only the same key and purpose open; tampering is detected", function () {
        const session = { tenant: "bhs", sub: "alice", name: "Alice", groups: ["orthanc-clinicians"], exp: 1 };
        const sealed = seal(keys.cookie, "session:bhs", session);
        assert.doesNotMatch(Buffer.from(sealed, "base64url").toString("latin1"), /alice|clinicians/);
        assert.deepEqual(unseal(keys.cookie, "session:bhs", sealed), session);
        assert.equal(unseal(keys.cookie, "session:mhr", sealed), undefined);
        assert.equal(unseal(keys.cookie, "login:bhs", sealed), undefined);
        assert.equal(unseal(other.cookie, "session:bhs", sealed), undefined);
        const bytes = Buffer.from(sealed, "base64url");
        bytes[14] ^= 1;
        assert.equal(unseal(keys.cookie, "session:bhs", bytes.toString("base64url")), undefined);
        assert.equal(unseal(keys.cookie, "session:bhs", "garbage"), undefined);
    });

    it("refuses a session key that is not 32 bytes", function () {
        assert.throws(() => deriveKeys(randomBytes(16)), /32 bytes/);
    });

    it("share links: signed, one tenant, expire; scoped to one study, view and search only", function () {
        const grant = { tenant: "bhs", study, exp: 2000, by: "alice" };
        const token = signShareToken(keys.share, grant);
        assert.deepEqual(verifyShareToken(keys.share, token, "bhs", 1999), grant);
        assert.equal(verifyShareToken(keys.share, token, "bhs", 2000), undefined);
        assert.equal(verifyShareToken(keys.share, token, "mhr", 1999), undefined);
        assert.equal(verifyShareToken(other.share, token, "bhs", 1999), undefined);
        const [body, mac] = token.split(".");
        const forged = Buffer.from(JSON.stringify({ ...grant, study: "1.2.3" })).toString("base64url");
        assert.equal(verifyShareToken(keys.share, `${forged}.${mac}`, "bhs", 1999), undefined);
        assert.equal(verifyShareToken(keys.share, `${body}.${mac}.x`, "bhs", 1999), undefined);

        const none = new URLSearchParams();
        assert.ok(shareAllows(grant, "GET", `/dicom-web/studies/${study}/series/${series}/instances/${instance}/frames/1`, none));
        assert.ok(shareAllows(grant, "GET", `/dicom-web/studies/${study}/series`, none));
        assert.ok(shareAllows(grant, "GET", "/dicom-web/studies", new URLSearchParams(`StudyInstanceUID=${study}`)));
        assert.ok(shareAllows(grant, "GET", "/ohif/viewer", none));
        assert.ok(!shareAllows(grant, "GET", "/dicom-web/studies", none));
        assert.ok(!shareAllows(grant, "GET", "/dicom-web/studies", new URLSearchParams(`StudyInstanceUID=${study}&StudyInstanceUID=1.2.3`)));
        // The plugin reads a tag by its number too, the last filter winning: no other key widens the search.
        assert.ok(!shareAllows(grant, "GET", "/dicom-web/studies", new URLSearchParams(`StudyInstanceUID=${study}&0020000D=1.2.3&includefield=all`)));
        assert.ok(!shareAllows(grant, "GET", `/dicom-web/studies/${study}/series`, new URLSearchParams("PatientID=x")));
        assert.ok(shareAllows(grant, "GET", `/dicom-web/studies/${study}/series`, new URLSearchParams("includefield=00080021&includefield=00080031")));
        assert.ok(!shareAllows(grant, "GET", `/dicom-web/studies/${study}0/metadata`, none));
        assert.ok(!shareAllows(grant, "GET", `/studies/${orthancId}/archive`, none));
        assert.ok(!shareAllows(grant, "POST", `/dicom-web/studies/${study}`, none));
        assert.ok(!shareAllows(grant, "DELETE", `/studies/${orthancId}`, none));
    });
});

describe("gatekeeper: audit records and the audit database", function () {
    it("keeps the path without its query, ids only, one line", function () {
        const record = buildAuditRecord({
            tenant: "bhs",
            now: new Date("2026-12-06T23:00:00Z"),
            action: "search",
            subject: "alice\nforged line",
            source: "10.0.0.1",
            method: "GET",
            path: "/dicom-web/studies?PatientName=DOE^JOHN",
            status: 200,
            outcome: "allowed",
        });
        assert.deepEqual(record, {
            time: "2026-12-06T23:00:00.000Z",
            tenant: "bhs",
            action: "search",
            subject: "alice?forged line",
            source: "10.0.0.1",
            method: "GET",
            path: "/dicom-web/studies",
            resources: [],
            status: 200,
            outcome: "allowed",
        });
        assert.doesNotMatch(JSON.stringify(record), /DOE/);
    });

    it("grants the gatekeeper INSERT and SELECT on the table, nothing else, and shuts everyone else out", function () {
        const statements = auditDatabaseStatements({ database: "audit_bhs", user: "gatekeeper_bhs" });
        const grants = statements.filter((statement) => /^GRANT/.test(statement));
        assert.deepEqual(grants, [
            'GRANT CONNECT ON DATABASE "audit_bhs" TO "gatekeeper_bhs"',
            'GRANT USAGE ON SCHEMA public TO "gatekeeper_bhs"',
            'GRANT INSERT, SELECT ON gatekeeper_audit TO "gatekeeper_bhs"',
        ]);
        assert.ok(statements.includes('REVOKE ALL ON DATABASE "audit_bhs" FROM PUBLIC'));
        assert.match(auditDatabaseStatements({ database: 'a"b', user: "u" })[0], /"a""b"/);
        // Records travel as one bound parameter ($1), never spliced into the statement.
        assert.match(auditInsertSql, /jsonb_array_elements\(\$1::jsonb\)/);
    });
});

describe("gatekeeper: a silent Orthanc, a client that goes away (real sockets on loopback)", function () {
    const issuer = "https://idp.bhs.example/realms/bhs";
    const key = signer("ES256", "ec-1", generateKeyPairSync("ec", { namedCurve: "P-256" }));
    const servers: Server[] = [];
    const listen = async (server: Server) => {
        servers.push(server);
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        return (server.address() as AddressInfo).port;
    };
    after(async () => {
        for (const server of servers) {
            server.closeAllConnections?.();
            await new Promise((resolve) => server.close(resolve));
        }
    });

    /** A provider (discovery and keys, over plain HTTP as an in-mesh backchannel), an Orthanc that never answers, a gatekeeper before it. */
    async function start(idleSeconds: number) {
        const provider = await listen(
            createHttpServer((request, response) => {
                response.setHeader("Content-Type", "application/json");
                response.end(JSON.stringify(request.url!.endsWith("/openid-configuration") ? { issuer, jwks_uri: `http://127.0.0.1:${provider}/certs`, authorization_endpoint: `${issuer}/auth`, token_endpoint: `http://127.0.0.1:${provider}/token` } : { keys: [key.jwk] }));
            }),
        );
        const received: IncomingMessage[] = [];
        const orthanc = await listen(createHttpServer((request) => received.push(request)));
        const gatekeeper = await startGatekeeper(
            {
                tenant: "bhs",
                port: 0,
                publicUrl: "https://web.bhs.example",
                orthancUrl: `http://127.0.0.1:${orthanc}`,
                orthancUsername: "gatekeeper",
                orthancIdleTimeoutSeconds: idleSeconds,
                oidc: { issuer, discoveryUrl: `http://127.0.0.1:${provider}/.well-known/openid-configuration`, clientId: "orthanc", audiences: ["orthanc"], scopes: ["openid"], groupsClaim: "groups", nameClaim: "name" },
                roles: defaultRoles,
                apiClients: [{ clientId: "ris", role: "clinician" }],
                session: { ttlSeconds: 3600 },
                shareLinks: { maxTtlSeconds: 3600 },
                audit: { retentionDays: 30 },
            },
            { oidcClientSecret: "x", sessionKey: randomBytes(32), orthancPassword: "p" },
            { audit: () => undefined, log: () => undefined },
        );
        servers.push(gatekeeper.server);
        const now = Math.floor(Date.now() / 1000);
        const token = jwt(key, { iss: issuer, aud: "orthanc", azp: "ris", sub: "service-account-ris", exp: now + 300, iat: now });
        return { received, url: `http://127.0.0.1:${gatekeeper.port}`, headers: { Authorization: `Bearer ${token}` } };
    }

    it("answers 504 when Orthanc stays silent past orthancIdleTimeoutSeconds, and closes its request to Orthanc", async function () {
        const { received, url, headers } = await start(0.3);
        const started = Date.now();
        const answer = await fetch(`${url}/studies`, { headers });
        assert.equal(answer.status, 504);
        assert.ok(Date.now() - started < 3000, "within the idle timeout, not the client's patience");
        assert.equal(received.length, 1);
        assert.ok(received[0].socket.destroyed || (await new Promise((resolve) => received[0].socket.once("close", () => resolve(true)))));
    });

    it("closes its request to Orthanc as soon as the client goes away", async function () {
        const { received, url, headers } = await start(30);
        const client = new AbortController();
        const answer = fetch(`${url}/studies`, { headers, signal: client.signal }).catch(() => "aborted");
        while (received.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
        const closed = new Promise((resolve) => received[0].socket.once("close", () => resolve(Date.now())));
        const abortedAt = Date.now();
        client.abort();
        assert.equal(await answer, "aborted");
        assert.ok(((await closed) as number) - abortedAt < 2000, "long before Orthanc's 30 s");
    });
});
