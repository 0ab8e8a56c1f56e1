/**
 * A tenant's gatekeeper: the identity-aware reverse proxy between the tenant's gateway and Orthanc's web port.
 *
 * `node server.ts /etc/gatekeeper/config.json` runs it (Node 24 strips the types; nothing but Node's built-ins is
 * imported at run time, so the file alone, mounted from a ConfigMap, is the program). The configuration is the
 * contract's `GatekeeperConfig`; secrets come from the environment variables of `gatekeeperSecretEnv`.
 *
 * Per request: who is asking (a bearer token checked against the tenant's issuer, a sealed session cookie from the
 * authorization code flow, or a share link's cookie), what the request needs (`requiredPermission`, one table), whether
 * the caller's roles grant it, then Orthanc is asked with the gatekeeper's own basic credentials (the client's
 * Authorization header never reaches Orthanc), and one audit record is written to stdout and to the audit database.
 *
 * The exported functions are pure (or take their clock, keys and fetch as arguments) so that the unit suite
 * (tests/gatekeeper.test.ts) imports this file without starting anything: the server starts only when this file is
 * the program Node runs.
 *
 * Written in erasable TypeScript (no enums, namespaces or parameter properties; type-only imports marked `type`).
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, createPublicKey, hkdfSync, pbkdf2Sync, randomBytes, timingSafeEqual, verify as verifySignature, constants as cryptoConstants, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { connect as netConnect, isIP, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import type { AuditAction, AuditRecord, GatekeeperConfig, Permission, RoleConfig } from "../contract";

// ---------------------------------------------------------------------------------------------------------------
// What each request needs

/** What a request needs: a permission, any signed-in caller (the viewers' static files), or nobody (sign-in itself). */
export type Requirement = Permission | "signed-in" | "public";

/** The DICOMweb plugin's root, as the rendered configuration sets it (`DicomWeb.Root`, without its trailing slash). */
export const dicomWebPrefix = "/dicom-web";

/** Where the gatekeeper answers its probes (readiness, liveness): no identity needed, no record written. */
export const healthPath = "/healthz";

/** Labels the gatekeeper puts on a study naming who uploaded it (Orthanc labels: 1 to 64 of [A-Za-z0-9_-]). */
export const uploaderLabelPrefix = "uploaded-by-";

const level = "(patients|studies|series|instances)";
const seg = "[^/]+";

type Rule = [methods: string, pattern: RegExp, requirement: Requirement];

/**
 * The table `requiredPermission` reads, first match wins. Methods are `|`-separated; HEAD counts as GET. Anything no
 * rule names needs `admin`: a route Orthanc or a plugin adds later is closed until someone decides otherwise.
 */
const rules: Rule[] = [
    ["GET", /^\/oauth2\/(sign-in|callback|sign-out)$/, "public"],
    ["GET", new RegExp(`^${healthPath}$`), "public"],
    ["GET", /^\/share\/[A-Za-z0-9_.-]+$/, "public"],
    ["POST", /^\/share$/, "share"],
    ["GET", /^\/audit$/, "audit"],
    // The viewers' own files (and what their pages ask before any study): no patient data. For Orthanc Explorer 2, the
    // same paths the authorization plugin 0.11.4 leaves unchecked for it (its app, landing pages and two configuration
    // answers); OE2's other /ui/api routes are administrators'.
    ["GET", /^\/ui\/(app|landing)(\/.*)?$/, "signed-in"],
    ["GET", /^\/ui\/api\/(pre-login-configuration|configuration)$/, "signed-in"],
    ["GET", new RegExp(`^/(stone-webviewer|ohif)(/.*)?$`), "signed-in"],
    // Orthanc redirects its root to the explorer.
    ["GET", /^\/$/, "signed-in"],
    // Orthanc answers /favicon.ico with a redirect to its explorer's icon, which browsers then ask for.
    ["GET", /^\/(system|favicon\.ico|app\/images\/favicon\.ico)$/, "signed-in"],
    ["GET", /^\/plugins(\/[^/]+)?$/, "signed-in"],
    // DICOMweb (PS3.18): STOW-RS, QIDO-RS, WADO-RS.
    ["POST", new RegExp(`^${dicomWebPrefix}/studies(/${seg})?$`), "upload"],
    ["GET", new RegExp(`^${dicomWebPrefix}/(studies|series|instances)$`), "search"],
    ["GET", new RegExp(`^${dicomWebPrefix}/studies/${seg}/(series|instances)$`), "search"],
    ["GET", new RegExp(`^${dicomWebPrefix}/studies/${seg}/series/${seg}/instances$`), "search"],
    ["GET", new RegExp(`^${dicomWebPrefix}/studies/${seg}(/.*)?$`), "view"],
    ["POST", new RegExp(`^${dicomWebPrefix}/servers/${seg}/(stow|retrieve)$`), "admin"],
    // WADO-URI.
    ["GET", /^\/wado$/, "view"],
    // Orthanc's REST API.
    ["GET", new RegExp(`^/${level}$`), "search"],
    ["GET", /^\/tools\/labels$/, "search"],
    ["POST", /^\/tools\/(find|count-resources|lookup)$/, "search"],
    ["POST", /^\/instances$/, "upload"],
    ["GET|POST", new RegExp(`^/(patients|studies|series)/${seg}/(archive|media)$`), "download"],
    ["GET", new RegExp(`^/instances/${seg}/(file|attachments(/.*)?)$`), "download"],
    ["GET", new RegExp(`^/${level}/${seg}/attachments(/.*)?$`), "download"],
    ["POST", /^\/tools\/(create-archive|create-media|create-media-extended)$/, "download"],
    // Labels naming an uploader are the gatekeeper's: writing one would make anyone the "uploader" of any study.
    ["PUT|DELETE", new RegExp(`^/${level}/${seg}/labels/${uploaderLabelPrefix}${seg}$`), "admin"],
    ["PUT|DELETE", new RegExp(`^/${level}/${seg}/(labels|metadata)/${seg}$`), "edit"],
    ["POST", new RegExp(`^/${level}/${seg}/(modify|anonymize)$`), "edit"],
    ["POST", /^\/tools\/(bulk-modify|bulk-anonymize)$/, "edit"],
    ["DELETE", new RegExp(`^/(studies|series|instances)/${seg}$`), "delete-own"],
    ["DELETE", new RegExp(`^/patients/${seg}$`), "delete"],
    ["POST", /^\/tools\/bulk-delete$/, "delete"],
    ["GET", new RegExp(`^/${level}/${seg}(/.*)?$`), "view"],
];

/** The table with its methods split once, when the module loads, rather than on every request. */
const ruleTable = rules.map(([methods, pattern, requirement]) => [new Set(methods.split("|")), pattern, requirement] as const);

/**
 * What `method` on `path` (without its query string) needs. `delete-own` means: `delete`, or `delete-own` on a study
 * carrying the caller's uploader label (the server checks the label). Everything unlisted needs `admin`.
 */
export function requiredPermission(method: string, path: string): Requirement {
    const upper = method.toUpperCase();
    const verb = upper === "HEAD" ? "GET" : upper;
    for (const [methods, pattern, requirement] of ruleTable) {
        if (methods.has(verb) && pattern.test(path)) {
            return requirement;
        }
    }
    return "admin";
}

const exportPath = new RegExp(`^(/modalities/${seg}/(store|move)|/peers/${seg}/store|${dicomWebPrefix}/servers/${seg}/stow)$`);

/** The audit action of an allowed request. */
export function auditActionFor(requirement: Requirement, method: string, path: string): AuditAction {
    switch (requirement) {
        case "search":
        case "view":
        case "download":
        case "upload":
        case "share":
            return requirement;
        case "edit":
            return "change";
        case "delete":
        case "delete-own":
            return "delete";
        case "audit":
            return "audit-read";
        default:
            return method.toUpperCase() === "POST" && exportPath.test(path) ? "export" : "admin";
    }
}

/**
 * The path of a raw request URL, or undefined when it could mean another path to Orthanc than to this table: dot
 * segments, empty segments, encoded dots, slashes or backslashes (Orthanc's web server normalizes those after we
 * decided).
 */
export function canonicalPath(rawUrl: string): string | undefined {
    const path = rawUrl.split("?")[0];
    // Orthanc's web server decodes percent-escapes after we decided (`/studies/X/%61rchive` would be judged as a view
    // and served as an archive), and ids, UIDs and labels never need one: any `%`, and anything outside RFC 3986's
    // path characters (a `#`, a space), makes the path ambiguous.
    if (!path.startsWith("/") || path.includes("//") || !/^[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$/.test(path)) {
        return undefined;
    }
    if (path.split("/").some((segment) => segment === "." || segment === "..")) {
        return undefined;
    }
    return path;
}

/** Methods whose requests carry no body (RFC 9110 gives a body on them no meaning; Orthanc reads none). */
const bodilessMethods = ["GET", "HEAD", "DELETE", "OPTIONS"];

/**
 * Why a request must be refused before any decision, or undefined:
 * - a body on GET, HEAD, DELETE or OPTIONS: forwarded without framing of its own, it would reach Orthanc's kept-alive
 *   connection as the next request, with the gatekeeper's credentials;
 * - a method override: Orthanc turns `?_method=DELETE|PUT` and `X-HTTP-Method-Override` into that method
 *   (OrthancFramework HttpServer.cpp `ExtractMethod`), so a request judged as a GET would delete or write.
 */
export function requestProblem(method: string, query: URLSearchParams, headers: IncomingHttpHeaders): string | undefined {
    const verb = method.toUpperCase();
    if (bodilessMethods.includes(verb) && (headers["transfer-encoding"] !== undefined || Number(headers["content-length"] ?? 0) !== 0)) {
        return `a body on ${verb}`;
    }
    if (headers["x-http-method-override"] !== undefined) return "method override";
    if ([...query.keys()].some((key) => key.toLowerCase() === "_method")) return "method override";
    return undefined;
}

/**
 * Why a modify or anonymize body needs `delete` besides `edit`: `KeepSource` other than true makes Orthanc delete the
 * originals (OrthancRestAnonymizeModify.cpp). False when `edit` suffices. A body that is not a JSON object is left
 * to Orthanc, which refuses it.
 */
export function modifyDeletes(body: string): boolean {
    let parsed: unknown;
    try {
        parsed = JSON.parse(body);
    } catch {
        return false;
    }
    return parsed !== null && typeof parsed === "object" && !Array.isArray(parsed) && "KeepSource" in parsed && (parsed as { KeepSource: unknown }).KeepSource !== true;
}

/** Modify and anonymize routes (`edit`), whose body may ask Orthanc to delete what it modified. */
export const modifyPath = new RegExp(`^(/(patients|studies|series|instances)/${seg}/(modify|anonymize)|/tools/(bulk-modify|bulk-anonymize))$`);

/**
 * Where to send a browser after sign-in: a path of our own origin, else the explorer. `value` comes from the URL
 * (`rd`), so control characters (browsers drop a tab: `/\t/evil.example` is `//evil.example`) and anything that
 * resolves to another origin are refused.
 */
export function safeReturnPath(value: string | null | undefined, publicOrigin: string): string {
    if (!value || !value.startsWith("/") || /[\x00-\x20\x7f\\]/.test(value)) return "/ui/";
    let url: URL;
    try {
        url = new URL(value, publicOrigin);
    } catch {
        return "/ui/";
    }
    return url.origin === publicOrigin ? `${url.pathname}${url.search}${url.hash}` : "/ui/";
}

/** Query keys a share link's viewer sends (OHIF's study and series searches); anything else could widen the search. */
const shareQueryKeys = new Set(["StudyInstanceUID", "SeriesInstanceUID", "includefield", "limit", "offset", "fuzzymatching"]);

export type ResourceRef = AuditRecord["resources"][number];

const levelOf: Record<string, ResourceRef["level"]> = { patients: "patient", studies: "study", series: "series", instances: "instance" };

/** Orthanc ids and DICOM UIDs a request names (path, and WADO-URI's UID arguments); never other query values. */
export function resourcesOfRequest(path: string, query: URLSearchParams): ResourceRef[] {
    const resources: ResourceRef[] = [];
    const segments = path.split("/").slice(1);
    const start = path.startsWith(`${dicomWebPrefix}/`) ? dicomWebPrefix.split("/").length - 1 : 0;
    for (let i = start; i + 1 < segments.length; i += 1) {
        const found = levelOf[segments[i]];
        if (found && /^[0-9A-Za-z.-]{1,64}$/.test(segments[i + 1])) {
            resources.push({ level: found, id: segments[i + 1] });
            i += 1;
        } else if (start === 0) {
            break;
        }
    }
    if (path === "/wado") {
        for (const [name, found] of [["studyUID", "study"], ["seriesUID", "series"], ["objectUID", "instance"]] as const) {
            const uid = query.get(name);
            if (uid && /^[0-9.]{1,64}$/.test(uid)) resources.push({ level: found, id: uid });
        }
    }
    return resources;
}

/** An instance an upload stored: Orthanc's ids, and whether this request created it (not "AlreadyStored"). */
export interface StoredInstance {
    instanceId: string;
    studyId: string;
    isNew: boolean;
}

/**
 * What an upload stored, from Orthanc's answer: POST /instances answers `{ID, ParentSeries, ParentStudy, Status}` (an
 * array for a zip), Status "Success" for a new instance and "AlreadyStored" for a known one; STOW-RS answers DICOM JSON
 * whose RetrieveURL (0008,1190) names the study and whose ReferencedSOPSequence (0008,1199) items name each instance
 * (ReferencedSOPInstanceUID, 0008,1155), new or not (the server looks those up).
 */
export function storedResources(path: string, answer: unknown): { resources: ResourceRef[]; instances: StoredInstance[]; stowInstanceUids: string[] } {
    const resources: ResourceRef[] = [];
    const instances: StoredInstance[] = [];
    const stowInstanceUids: string[] = [];
    if (path === "/instances") {
        for (const item of Array.isArray(answer) ? answer : [answer]) {
            const stored = item as { ID?: unknown; ParentStudy?: unknown; ParentSeries?: unknown; Status?: unknown };
            if (typeof stored?.ParentStudy === "string") resources.push({ level: "study", id: stored.ParentStudy });
            if (typeof stored?.ParentSeries === "string") resources.push({ level: "series", id: stored.ParentSeries });
            if (typeof stored?.ID === "string") resources.push({ level: "instance", id: stored.ID });
            if (typeof stored?.ID === "string" && typeof stored.ParentStudy === "string") {
                instances.push({ instanceId: stored.ID, studyId: stored.ParentStudy, isNew: stored.Status === "Success" });
            }
        }
        return { resources: dedupe(resources), instances, stowInstanceUids };
    }
    const dataset = (answer ?? {}) as Record<string, { Value?: unknown[] }>;
    const studyUrl = dataset["00081190"]?.Value?.[0];
    const studyUid = typeof studyUrl === "string" ? /\/studies\/([0-9.]+)$/.exec(studyUrl)?.[1] : undefined;
    if (studyUid) resources.push({ level: "study", id: studyUid });
    for (const item of (dataset["00081199"]?.Value ?? []) as Record<string, { Value?: unknown[] }>[]) {
        const uid = item?.["00081155"]?.Value?.[0];
        if (typeof uid === "string") {
            resources.push({ level: "instance", id: uid });
            stowInstanceUids.push(uid);
        }
    }
    return { resources: dedupe(resources), instances, stowInstanceUids };
}

/**
 * The studies an upload created: every instance each holds now is one this request stored as new. Only those get the
 * uploader's label: re-sending someone else's instances (AlreadyStored), or adding one to someone else's study, must not
 * make that study the sender's to delete.
 */
export function studiesCreated(instances: readonly StoredInstance[], instancesInStudy: Readonly<Record<string, number>>): string[] {
    const created: string[] = [];
    for (const studyId of new Set(instances.map((instance) => instance.studyId))) {
        const mine = instances.filter((instance) => instance.studyId === studyId);
        const newOnes = new Set(mine.filter((instance) => instance.isNew).map((instance) => instance.instanceId));
        if (newOnes.size === mine.length && newOnes.size === instancesInStudy[studyId]) created.push(studyId);
    }
    return created;
}

function dedupe(resources: ResourceRef[]): ResourceRef[] {
    const seen = new Set<string>();
    return resources.filter((resource) => !seen.has(`${resource.level}/${resource.id}`) && Boolean(seen.add(`${resource.level}/${resource.id}`))).slice(0, 1000);
}

/**
 * The label naming `owner` as a study's uploader: a hash (subjects may hold any character; labels may not). The server
 * passes `<kind>:<subject>` (`user:` or `client:`), so that no user whose subject is an API client's id owns its uploads.
 */
export function uploaderLabel(tenant: string, owner: string): string {
    return uploaderLabelPrefix + createHash("sha256").update(`${tenant}\u0000${owner}`).digest("hex").slice(0, 40);
}

/** The union of the permissions of every role whose groups meet `groups`. */
export function permissionsOfGroups(roles: Record<string, RoleConfig>, groups: readonly string[]): Set<Permission> {
    const granted = new Set<Permission>();
    for (const role of Object.values(roles)) {
        if (role.groups.some((group) => groups.includes(group))) role.permissions.forEach((permission) => granted.add(permission));
    }
    return granted;
}

/** The groups a claim carries: an array of strings, or one string (some providers send a single group so). */
export function groupsOf(claims: Record<string, unknown>, claim: string): string[] {
    const value = claims[claim];
    if (Array.isArray(value)) return value.filter((group): group is string => typeof group === "string");
    return typeof value === "string" ? [value] : [];
}

// ---------------------------------------------------------------------------------------------------------------
// Tokens

export type Jwk = Record<string, unknown> & { kty: string; kid?: string; use?: string; alg?: string };

/** Signature algorithms accepted, and how each is checked with node:crypto. `none` and HMAC never are. */
const algorithms: Record<string, { hash: string; keyType: "rsa" | "ec"; curve?: string; pss?: boolean }> = {
    RS256: { hash: "sha256", keyType: "rsa" },
    RS384: { hash: "sha384", keyType: "rsa" },
    RS512: { hash: "sha512", keyType: "rsa" },
    PS256: { hash: "sha256", keyType: "rsa", pss: true },
    ES256: { hash: "sha256", keyType: "ec", curve: "prime256v1" },
    ES384: { hash: "sha384", keyType: "ec", curve: "secp384r1" },
};

export interface TokenExpectations {
    issuer: string;
    audiences: readonly string[];
    /** Seconds since the epoch. */
    now: number;
    /** Clock skew tolerated on exp and nbf. */
    skewSeconds: number;
}

export type TokenCheck =
    | { ok: true; claims: Record<string, unknown> }
    /** `unknownKey`: the token names a key the JWKS does not have (the caller may refresh the JWKS once and retry). */
    | { ok: false; reason: string; unknownKey?: boolean };

function decodeSegment(segment: string): Record<string, unknown> | undefined {
    try {
        const value: unknown = JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
        return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
    } catch {
        return undefined;
    }
}

/**
 * The public key of a JWK, built once per JWK object: the issuer's key set is replaced whole when it is fetched again,
 * so a key of an old set is dropped with it. `null`: a key Node cannot read (skipped, as before).
 */
const publicKeys = new WeakMap<Jwk, KeyObject | null>();
function publicKeyOf(jwk: Jwk): KeyObject | null {
    let key = publicKeys.get(jwk);
    if (key === undefined) {
        try {
            key = createPublicKey({ key: jwk as never, format: "jwk" });
        } catch {
            key = null;
        }
        publicKeys.set(jwk, key);
    }
    return key;
}

/**
 * Checks a JWS-compact JWT: algorithm, issuer (exact, before any key is looked up: a stranger's token costs no JWKS
 * fetch), key (by `kid`, of the algorithm's type and curve), signature, audience, expiry and not-before.
 */
export function checkJwt(token: string, keys: readonly Jwk[], expect: TokenExpectations): TokenCheck {
    const parts = token.split(".");
    if (parts.length !== 3) return { ok: false, reason: "malformed token" };
    const header = decodeSegment(parts[0]);
    const claims = decodeSegment(parts[1]);
    if (!header || !claims) return { ok: false, reason: "malformed token" };
    const alg = algorithms[String(header.alg)];
    if (!alg) return { ok: false, reason: `algorithm ${String(header.alg)} not accepted` };
    if (claims.iss !== expect.issuer) return { ok: false, reason: "wrong issuer" };
    const candidates = keys.filter(
        (key) => (header.kid === undefined || key.kid === header.kid) && (key.use === undefined || key.use === "sig") && (key.alg === undefined || key.alg === header.alg),
    );
    let verified = false;
    const data = Buffer.from(`${parts[0]}.${parts[1]}`);
    const signature = Buffer.from(parts[2], "base64url");
    for (const jwk of candidates) {
        const key = publicKeyOf(jwk);
        if (!key) continue;
        if (key.asymmetricKeyType !== alg.keyType || (alg.curve && key.asymmetricKeyDetails?.namedCurve !== alg.curve)) continue;
        const options = alg.keyType === "ec"
            ? { key, dsaEncoding: "ieee-p1363" as const }
            : alg.pss ? { key, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: cryptoConstants.RSA_PSS_SALTLEN_DIGEST } : key;
        if (verifySignature(alg.hash, data, options, signature)) {
            verified = true;
            break;
        }
    }
    if (!verified) {
        return candidates.length === 0 ? { ok: false, reason: "unknown signing key", unknownKey: true } : { ok: false, reason: "bad signature" };
    }
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!audiences.some((audience) => typeof audience === "string" && expect.audiences.includes(audience))) return { ok: false, reason: "wrong audience" };
    if (typeof claims.exp !== "number") return { ok: false, reason: "no expiry" };
    if (claims.exp + expect.skewSeconds <= expect.now) return { ok: false, reason: "expired" };
    if (typeof claims.nbf === "number" && claims.nbf - expect.skewSeconds > expect.now) return { ok: false, reason: "not yet valid" };
    return { ok: true, claims };
}

/** Orthanc stayed silent longer than `orthancIdleTimeoutSeconds`: answered 504, not 502. */
export class OrthancTimeout extends Error {
    constructor(ms: number) {
        super(`no answer within ${ms / 1000} s`);
    }
}

/** What the gatekeeper reads from the issuer's discovery document. */
export interface Discovery {
    issuer: string;
    authorization_endpoint: string;
    token_endpoint: string;
    jwks_uri: string;
    userinfo_endpoint?: string;
    end_session_endpoint?: string;
}

/** Where an issuer publishes its discovery document (OpenID Connect Discovery 1.0, section 4). */
export function issuerDiscoveryUrl(issuer: string): string {
    return `${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
}

/**
 * The tenant's issuer: discovery once, the JWKS on first use and again when a token names an unknown key, at most
 * once per `refreshIntervalMs` (a flood of made-up `kid`s costs the provider one fetch per interval).
 */
export class IssuerKeys {
    readonly issuer: string;
    readonly refreshIntervalMs: number;
    private readonly fetchJson: (url: string, init?: RequestInit) => Promise<unknown>;
    private discovery?: Promise<Discovery>;
    private keys: Jwk[] = [];
    private fetchedAt = -Infinity;
    private pending?: Promise<void>;

    readonly discoveryUrl: string;

    constructor(issuer: string, fetchJson: (url: string, init?: RequestInit) => Promise<unknown>, refreshIntervalMs = 10_000, discoveryUrl?: string) {
        this.issuer = issuer;
        this.fetchJson = fetchJson;
        this.refreshIntervalMs = refreshIntervalMs;
        this.discoveryUrl = discoveryUrl ?? issuerDiscoveryUrl(issuer);
    }

    /** The discovery document as the provider serves it now, refused unless it names this issuer. Not cached. */
    async fetchDiscovery(): Promise<Discovery> {
        const document = (await this.fetchJson(this.discoveryUrl)) as Discovery;
        if (document.issuer !== this.issuer) {
            throw new Error(`the discovery document names issuer ${document.issuer}, configured ${this.issuer}`);
        }
        return document;
    }

    metadata(): Promise<Discovery> {
        this.discovery ??= this.fetchDiscovery();
        this.discovery.catch(() => (this.discovery = undefined));
        return this.discovery;
    }

    private refresh(now: number): Promise<void> {
        if (now - this.fetchedAt < this.refreshIntervalMs) return this.pending ?? Promise.resolve();
        this.fetchedAt = now;
        this.pending = (async () => {
            const jwks = (await this.fetchJson((await this.metadata()).jwks_uri)) as { keys?: Jwk[] };
            this.keys = Array.isArray(jwks.keys) ? jwks.keys : [];
        })();
        // A failed fetch waits out the interval like a successful one: while the provider is down, every request with
        // a bearer token would otherwise start discovery and a JWKS fetch of its own.
        this.pending.catch(() => undefined);
        return this.pending;
    }

    async check(token: string, audiences: readonly string[], now = Date.now(), skewSeconds = 30): Promise<TokenCheck> {
        const expect = { issuer: this.issuer, audiences, now: Math.floor(now / 1000), skewSeconds };
        // Checked against the keys at hand first: a token of another issuer or audience is refused without a fetch.
        const first = checkJwt(token, this.keys, expect);
        if (first.ok || !first.unknownKey) return first;
        await this.refresh(now);
        return checkJwt(token, this.keys, expect);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Whether the identity provider answers, for Prometheus

/**
 * The gauge the IdentityProviderUnreachable alert reads: 1 when the gatekeeper's last request for the issuer's
 * discovery document succeeded, 0 when it failed. Asked on a timer, not only when someone signs in: once discovery is
 * cached, an outage of the provider would otherwise go unseen by the gatekeeper (and every browser) until sign-in fails.
 */
export const identityProviderUpMetric = "korthweb_gatekeeper_identity_provider_up";
/** The path of the metrics page on the gatekeeper's metrics port (`GatekeeperConfig.metrics`). */
export const metricsPath = "/metrics";

/** The metrics page (Prometheus text format 0.0.4); empty until the first check has ended. */
export function providerMetricsText(up: boolean | undefined): string {
    if (up === undefined) return "";
    return [
        `# HELP ${identityProviderUpMetric} 1 when the issuer's discovery document answered the gatekeeper's last request with the configured issuer, else 0.`,
        `# TYPE ${identityProviderUpMetric} gauge`,
        `${identityProviderUpMetric} ${up ? 1 : 0}`,
        "",
    ].join("\n");
}

/**
 * Whether the discovery document, read where the gatekeeper reads it (`url`: under the issuer, or the in-cluster
 * provider's address), names the issuer (what sign-in needs first).
 */
export function providerAnswers(issuer: string, fetchJson: (url: string) => Promise<unknown>, url: string = issuerDiscoveryUrl(issuer)): Promise<boolean> {
    return new IssuerKeys(issuer, fetchJson, undefined, url).fetchDiscovery().then(
        () => true,
        () => false,
    );
}

/**
 * Asks for the discovery document every `providerCheckSeconds`, where sign-in reads it, and serves the answer on 127.0.0.1:`port`: the sidecar's agent fetches
 * it over the pod's loopback; nothing outside the pod reaches it (the sidecar delivers inbound traffic to the pod's address).
 */
async function startProviderCheck(settings: NonNullable<GatekeeperConfig["metrics"]>, issuer: IssuerKeys, log: (line: string) => void): Promise<{ port: number; close(): Promise<void> }> {
    let up: boolean | undefined;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const check = async () => {
        const answered = await issuer.fetchDiscovery().then(
            () => true,
            () => false,
        );
        if (answered !== up) log(answered ? `identity provider ${issuer.issuer} answers` : `identity provider ${issuer.issuer} does not answer ${issuer.discoveryUrl}`);
        up = answered;
        if (!stopped) timer = setTimeout(check, settings.providerCheckSeconds * 1000).unref();
    };
    void check();
    const server = createServer((request, response) => {
        const found = request.method === "GET" && (request.url ?? "").split("?")[0] === metricsPath;
        response.writeHead(found ? 200 : 404, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
        response.end(found ? providerMetricsText(up) : "");
    });
    await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(settings.port, "127.0.0.1", () => resolve());
    });
    const address = server.address();
    return {
        port: typeof address === "object" && address ? address.port : settings.port,
        close: async () => {
            stopped = true;
            clearTimeout(timer);
            server.closeAllConnections();
            await new Promise<void>((resolve) => server.close(() => resolve()));
        },
    };
}

// ---------------------------------------------------------------------------------------------------------------
// Sealed cookies and share links

/** Two keys from the session secret: one encrypts cookies, one signs share links. */
export function deriveKeys(sessionKey: Buffer): { cookie: Buffer; share: Buffer } {
    if (sessionKey.length !== 32) throw new Error(`the session key must be 32 bytes (base64), got ${sessionKey.length}`);
    const derive = (info: string) => Buffer.from(hkdfSync("sha256", sessionKey, Buffer.alloc(0), info, 32));
    return { cookie: derive("korthweb gatekeeper cookie"), share: derive("korthweb gatekeeper share link") };
}

/** AES-256-GCM of JSON, bound to `purpose` (additional data: a login cookie cannot pass for a session). */
export function seal(key: Buffer, purpose: string, payload: unknown): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", key, iv);
    cipher.setAAD(Buffer.from(purpose));
    const sealed = Buffer.concat([cipher.update(JSON.stringify(payload), "utf8"), cipher.final()]);
    return Buffer.concat([iv, sealed, cipher.getAuthTag()]).toString("base64url");
}

/** The payload `seal` sealed with this key and purpose, or undefined (tampered, another key, another purpose). */
export function unseal<T = unknown>(key: Buffer, purpose: string, value: string): T | undefined {
    try {
        const bytes = Buffer.from(value, "base64url");
        if (bytes.length < 12 + 16 + 1) return undefined;
        const decipher = createDecipheriv("aes-256-gcm", key, bytes.subarray(0, 12));
        decipher.setAAD(Buffer.from(purpose));
        decipher.setAuthTag(bytes.subarray(bytes.length - 16));
        return JSON.parse(Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()]).toString("utf8")) as T;
    } catch {
        return undefined;
    }
}

/** What a browser session holds (sealed in its cookie). `exp` in seconds since the epoch. */
export interface Session {
    sub: string;
    name?: string;
    groups: string[];
    exp: number;
}

/** A share link's scope: one study (its StudyInstanceUID), view only, until `exp`. */
export interface ShareGrant {
    tenant: string;
    study: string;
    exp: number;
    by: string;
}

export function signShareToken(key: Buffer, grant: ShareGrant): string {
    const body = Buffer.from(JSON.stringify(grant)).toString("base64url");
    return `${body}.${createHmac("sha256", key).update(body).digest("base64url")}`;
}

export function verifyShareToken(key: Buffer, token: string, tenant: string, now: number): ShareGrant | undefined {
    const [body, mac, extra] = token.split(".");
    if (!body || !mac || extra !== undefined) return undefined;
    const expected = createHmac("sha256", key).update(body).digest();
    const given = Buffer.from(mac, "base64url");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    const grant = decodeSegment(body) as ShareGrant | undefined;
    if (!grant || grant.tenant !== tenant || typeof grant.study !== "string" || typeof grant.exp !== "number" || grant.exp <= now) return undefined;
    return grant;
}

/**
 * Whether a share link's holder may make this request: the viewers' files, and searching or viewing the one study
 * through DICOMweb (OHIF's calls for a study: a QIDO-RS search by its UID, its series, metadata and frames).
 */
/** A DICOMweb path of one study, the study's UID captured. */
const studyPath = new RegExp(`^${dicomWebPrefix}/studies/([^/]+)(/|$)`);

/** `requirement`: what `requiredPermission` says of the request, when the caller has it already. */
export function shareAllows(grant: ShareGrant, method: string, path: string, query: URLSearchParams, requirement: Requirement = requiredPermission(method, path)): boolean {
    if (requirement === "signed-in") return true;
    if (requirement !== "view" && requirement !== "search") return false;
    // Only the keys the viewer sends, once each (includefield aside): the DICOMweb plugin also reads a tag by its
    // number (`0020000D=` would widen a search the StudyInstanceUID key seems to narrow), the last value winning.
    const keys = [...query.keys()];
    if (keys.some((key) => !shareQueryKeys.has(key)) || keys.some((key, index) => key !== "includefield" && keys.indexOf(key) !== index)) return false;
    if (path === `${dicomWebPrefix}/studies`) return query.get("StudyInstanceUID") === grant.study;
    const match = studyPath.exec(path);
    return match !== null && match[1] === grant.study;
}

export function parseCookies(header: string | undefined): Record<string, string> {
    const cookies: Record<string, string> = {};
    for (const part of (header ?? "").split(";")) {
        const index = part.indexOf("=");
        if (index > 0) cookies[part.slice(0, index).trim()] = part.slice(index + 1).trim();
    }
    return cookies;
}

/** `__Host-` cookies: Secure, Path=/ and no Domain, so no other host (another tenant's) can set or read them. */
export const cookieNames = { session: "__Host-gatekeeper-session", login: "__Host-gatekeeper-login", share: "__Host-gatekeeper-share" } as const;

export function cookieHeader(name: string, value: string, maxAgeSeconds: number): string {
    return `${name}=${value}; Path=/; Max-Age=${maxAgeSeconds}; HttpOnly; Secure; SameSite=Lax`;
}

// ---------------------------------------------------------------------------------------------------------------
// Audit records

/** An audit record before it is stamped and cleaned: its time as a Date, its resources optional. */
export type AuditInput = Omit<AuditRecord, "time" | "resources"> & { now: Date; resources?: ResourceRef[] };

/** Control characters out (the database's jsonb refuses NUL; a log line must stay one line). */
function clean(value: string): string {
    return value.replace(/[\u0000-\u001f\u007f]/g, "?").slice(0, 2048);
}

/** One audit record: the path without its query (QIDO-RS queries carry patient names), ids only, never tag values. */
export function buildAuditRecord(input: AuditInput): AuditRecord {
    const record: AuditRecord = {
        time: input.now.toISOString(),
        tenant: input.tenant,
        action: input.action,
        source: clean(input.source),
        method: clean(input.method),
        path: clean(input.path.split("?")[0]),
        resources: (input.resources ?? []).map((resource) => ({ level: resource.level, id: clean(resource.id) })),
        status: input.status,
        outcome: input.outcome,
    };
    if (input.subject !== undefined) record.subject = clean(input.subject);
    if (input.name !== undefined) record.name = clean(input.name);
    if (input.reason !== undefined) record.reason = clean(input.reason);
    return record;
}

/** The audit table's name in the audit database. */
export const auditTable = "gatekeeper_audit";

function quoteIdentifier(name: string): string {
    return `"${name.replace(/"/g, '""')}"`;
}

/**
 * The statements that prepare the audit database, run by its owner (never by the gatekeeper): the table, and a
 * gatekeeper role that may INSERT and SELECT only. UPDATE, DELETE and TRUNCATE stay with the owner (the retention job).
 * Nobody else may connect (Orthanc's role included). The role itself is created with its password by whoever provisions
 * the database (`CREATE ROLE ... LOGIN PASSWORD ...`, or the operator's managed roles).
 */
export function auditDatabaseStatements(options: { database: string; user: string }): string[] {
    const user = quoteIdentifier(options.user);
    const database = quoteIdentifier(options.database);
    return [
        `REVOKE ALL ON DATABASE ${database} FROM PUBLIC`,
        `GRANT CONNECT ON DATABASE ${database} TO ${user}`,
        "REVOKE ALL ON SCHEMA public FROM PUBLIC",
        `GRANT USAGE ON SCHEMA public TO ${user}`,
        `CREATE TABLE IF NOT EXISTS ${auditTable} (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time timestamptz NOT NULL,
    tenant text NOT NULL,
    action text NOT NULL,
    subject text,
    outcome text NOT NULL,
    status integer NOT NULL,
    record jsonb NOT NULL
)`,
        `CREATE INDEX IF NOT EXISTS ${auditTable}_time ON ${auditTable} (time)`,
        `REVOKE ALL ON ${auditTable} FROM PUBLIC`,
        `GRANT INSERT, SELECT ON ${auditTable} TO ${user}`,
    ];
}

/** One INSERT for a batch of records, passed as one JSON array parameter ($1): no literal is ever spliced into SQL. */
export const auditInsertSql = `INSERT INTO ${auditTable} (time, tenant, action, subject, outcome, status, record)
SELECT (r->>'time')::timestamptz, r->>'tenant', r->>'action', r->>'subject', r->>'outcome', (r->>'status')::integer, r
FROM jsonb_array_elements($1::jsonb) AS r`;

/** Records since $1 (ISO time), oldest first, at most $2. */
export const auditSelectSql = `SELECT record::text AS record FROM ${auditTable} WHERE time >= $1::timestamptz ORDER BY id LIMIT $2::integer`;

// ---------------------------------------------------------------------------------------------------------------
// PostgreSQL, spoken directly (no driver can be vendored into a ConfigMap): startup, SCRAM-SHA-256 (or MD5/cleartext
// when the server asks), the extended query protocol with text parameters, optional TLS.

export interface PgOptions {
    host: string;
    port: number;
    database: string;
    user: string;
    password: string;
    sslmode?: "disable" | "require" | "verify-full";
}

export class PgError extends Error {
    readonly code?: string;
    constructor(message: string, code?: string) {
        super(message);
        this.code = code;
    }
}

function pgMessage(type: string, body: Buffer): Buffer {
    const header = Buffer.alloc(5);
    header.write(type, 0, "latin1");
    header.writeInt32BE(body.length + 4, 1);
    return Buffer.concat([header, body]);
}

const cstring = (value: string) => Buffer.concat([Buffer.from(value, "utf8"), Buffer.from([0])]);
const int16 = (value: number) => { const b = Buffer.alloc(2); b.writeInt16BE(value); return b; };
const int32 = (value: number) => { const b = Buffer.alloc(4); b.writeInt32BE(value); return b; };

/** One connection; queries run one at a time, in order. */
export class PgClient {
    private socket?: Socket;
    private buffer = Buffer.alloc(0);
    private waiter?: () => void;
    private closedError?: Error;
    private queue: Promise<unknown> = Promise.resolve();

    static async connect(options: PgOptions): Promise<PgClient> {
        const client = new PgClient();
        try {
            await client.open(options);
        } catch (error) {
            // A refused server gets no half-open connection kept for it.
            client.socket?.destroy();
            throw error;
        }
        return client;
    }

    get broken(): boolean {
        return this.closedError !== undefined;
    }

    private attach(socket: Socket): void {
        this.socket = socket;
        socket.on("data", (chunk: Buffer) => {
            this.buffer = Buffer.concat([this.buffer, chunk]);
            this.waiter?.();
        });
        const fail = (error?: Error) => {
            this.closedError ??= error ?? new Error("connection closed");
            this.waiter?.();
        };
        socket.on("error", fail);
        socket.on("close", () => fail());
    }

    private async read(): Promise<{ type: string; body: Buffer }> {
        for (;;) {
            if (this.buffer.length >= 5) {
                const length = this.buffer.readInt32BE(1);
                if (this.buffer.length >= 1 + length) {
                    const message = { type: String.fromCharCode(this.buffer[0]), body: this.buffer.subarray(5, 1 + length) };
                    this.buffer = this.buffer.subarray(1 + length);
                    return message;
                }
            }
            if (this.closedError) throw this.closedError;
            await new Promise<void>((resolve) => (this.waiter = resolve));
            this.waiter = undefined;
        }
    }

    private async readByte(): Promise<number> {
        for (;;) {
            if (this.buffer.length >= 1) {
                const byte = this.buffer[0];
                this.buffer = this.buffer.subarray(1);
                return byte;
            }
            if (this.closedError) throw this.closedError;
            await new Promise<void>((resolve) => (this.waiter = resolve));
            this.waiter = undefined;
        }
    }

    private send(data: Buffer): void {
        this.socket!.write(data);
    }

    private async open(options: PgOptions): Promise<void> {
        const plain = netConnect({ host: options.host, port: options.port });
        await new Promise<void>((resolve, reject) => {
            plain.once("connect", resolve);
            plain.once("error", reject);
        });
        this.attach(plain);
        if ((options.sslmode ?? "disable") !== "disable") {
            this.send(Buffer.concat([int32(8), int32(80877103)]));
            if ((await this.readByte()) !== "S".charCodeAt(0)) throw new PgError("the server does not offer TLS (sslmode " + options.sslmode + ")");
            plain.removeAllListeners("data");
            const secure = tlsConnect({ socket: plain, servername: isIP(options.host) ? undefined : options.host, host: options.host, rejectUnauthorized: options.sslmode === "verify-full" });
            await new Promise<void>((resolve, reject) => {
                secure.once("secureConnect", resolve);
                secure.once("error", reject);
            });
            this.attach(secure);
        }
        const parameters = Buffer.concat([
            ...["user", options.user, "database", options.database, "client_encoding", "UTF8", "application_name", "gatekeeper"].map(cstring),
            Buffer.from([0]),
        ]);
        this.send(Buffer.concat([int32(parameters.length + 8), int32(196608), parameters]));
        // SCRAM-SHA-256 only, and the server must prove it knows the password before we take its "authenticated":
        // a password in clear or MD5 would hand it to whoever answers, and an early AuthenticationOk skips the proof.
        let scram: { clientFirstBare: string; nonce: string; serverSignature?: Buffer; serverVerified?: boolean } | undefined;
        for (;;) {
            const message = await this.read();
            if (message.type === "E") throw pgError(message.body);
            if (message.type === "Z") return;
            if (message.type !== "R") continue;
            const kind = message.body.readInt32BE(0);
            if (kind === 0) {
                if (!scram?.serverVerified) throw new PgError("authentication: the server did not prove it knows the password (SCRAM-SHA-256 only)");
                continue;
            }
            if (kind === 10) {
                const mechanisms = message.body.subarray(4).toString("utf8").split("\u0000");
                if (!mechanisms.includes("SCRAM-SHA-256")) throw new PgError(`no supported SASL mechanism among ${mechanisms.join(", ")}`);
                const nonce = randomBytes(18).toString("base64");
                scram = { clientFirstBare: `n=,r=${nonce}`, nonce };
                const first = Buffer.from(`n,,${scram.clientFirstBare}`);
                this.send(pgMessage("p", Buffer.concat([cstring("SCRAM-SHA-256"), int32(first.length), first])));
            } else if (kind === 11 && scram) {
                const serverFirst = message.body.subarray(4).toString("utf8");
                const fields = Object.fromEntries(serverFirst.split(",").map((field) => [field[0], field.slice(2)]));
                if (!fields.r?.startsWith(scram.nonce)) throw new PgError("SCRAM: the server's nonce does not extend ours");
                // The server chooses the cost, and the derivation blocks the event loop: PostgreSQL's default is 4096.
                const iterations = Number(fields.i);
                if (!Number.isInteger(iterations) || iterations < 4096 || iterations > 100_000) throw new PgError(`SCRAM: ${fields.i} iterations refused (4096 to 100000)`);
                const salted = pbkdf2Sync(options.password.normalize("NFKC"), Buffer.from(fields.s, "base64"), iterations, 32, "sha256");
                const hmac = (key: Buffer, text: string) => createHmac("sha256", key).update(text).digest();
                const clientKey = hmac(salted, "Client Key");
                const storedKey = createHash("sha256").update(clientKey).digest();
                const finalWithoutProof = `c=biws,r=${fields.r}`;
                const authMessage = `${scram.clientFirstBare},${serverFirst},${finalWithoutProof}`;
                const signature = hmac(storedKey, authMessage);
                const proof = Buffer.from(clientKey.map((byte, i) => byte ^ signature[i]));
                scram.serverSignature = hmac(hmac(salted, "Server Key"), authMessage);
                this.send(pgMessage("p", Buffer.from(`${finalWithoutProof},p=${proof.toString("base64")}`)));
            } else if (kind === 12 && scram?.serverSignature) {
                const verifier = /v=([^,]+)/.exec(message.body.subarray(4).toString("utf8"))?.[1];
                const given = Buffer.from(verifier ?? "", "base64");
                if (given.length !== scram.serverSignature.length || !timingSafeEqual(given, scram.serverSignature)) {
                    throw new PgError("SCRAM: the server could not prove it knows the password");
                }
                scram.serverVerified = true;
            } else {
                throw new PgError(`authentication method ${kind} not supported`);
            }
        }
    }

    /** Runs one statement with text parameters; rows as column name -> text (or null). */
    query(sql: string, parameters: (string | null)[] = []): Promise<Record<string, string | null>[]> {
        const run = this.queue.then(() => this.run(sql, parameters));
        this.queue = run.catch(() => undefined);
        return run;
    }

    private async run(sql: string, parameters: (string | null)[]): Promise<Record<string, string | null>[]> {
        if (this.closedError) throw this.closedError;
        const values = parameters.map((value) => {
            if (value === null) return int32(-1);
            const bytes = Buffer.from(value, "utf8");
            return Buffer.concat([int32(bytes.length), bytes]);
        });
        this.send(
            Buffer.concat([
                pgMessage("P", Buffer.concat([cstring(""), cstring(sql), int16(0)])),
                pgMessage("B", Buffer.concat([cstring(""), cstring(""), int16(0), int16(values.length), ...values, int16(0)])),
                pgMessage("D", Buffer.concat([Buffer.from("P"), cstring("")])),
                pgMessage("E", Buffer.concat([cstring(""), int32(0)])),
                pgMessage("S", Buffer.alloc(0)),
            ]),
        );
        let columns: string[] = [];
        const rows: Record<string, string | null>[] = [];
        let failure: PgError | undefined;
        for (;;) {
            const message = await this.read();
            if (message.type === "E") {
                failure = pgError(message.body);
            } else if (message.type === "T") {
                columns = [];
                let offset = 2;
                for (let i = 0; i < message.body.readInt16BE(0); i += 1) {
                    const end = message.body.indexOf(0, offset);
                    columns.push(message.body.subarray(offset, end).toString("utf8"));
                    offset = end + 1 + 18;
                }
            } else if (message.type === "D") {
                const row: Record<string, string | null> = {};
                let offset = 2;
                for (let i = 0; i < message.body.readInt16BE(0); i += 1) {
                    const length = message.body.readInt32BE(offset);
                    offset += 4;
                    row[columns[i]] = length < 0 ? null : message.body.subarray(offset, offset + length).toString("utf8");
                    offset += Math.max(length, 0);
                }
                rows.push(row);
            } else if (message.type === "Z") {
                if (failure) throw failure;
                return rows;
            }
        }
    }

    close(): void {
        if (this.socket && !this.closedError) this.socket.end(pgMessage("X", Buffer.alloc(0)));
        this.closedError ??= new Error("connection closed");
    }
}

function pgError(body: Buffer): PgError {
    const fields: Record<string, string> = {};
    let offset = 0;
    while (offset < body.length && body[offset] !== 0) {
        const end = body.indexOf(0, offset + 1);
        fields[String.fromCharCode(body[offset])] = body.subarray(offset + 1, end).toString("utf8");
        offset = end + 1;
    }
    return new PgError(`PostgreSQL: ${fields.M ?? "error"}`, fields.C);
}

/**
 * Writes audit records to the database in batches, in order, one connection, reconnecting after a failure. The
 * records are on stdout already: a database outage delays them here (kept in memory up to `maxQueued`), it does not
 * stop the gatekeeper.
 */
/**
 * The queue cut to `max` records while the audit database is away: records of nobody (refusals of anonymous callers,
 * which anyone can make in any number) go first, oldest first, then the oldest of the rest. Order is kept; everything
 * dropped is still on stdout.
 */
export function trimAuditQueue(queue: readonly AuditRecord[], max: number): AuditRecord[] {
    let excess = queue.length - max;
    if (excess <= 0) return [...queue];
    const dropped = new Set<number>();
    for (let i = 0; i < queue.length && excess > 0; i += 1) {
        if (queue[i].subject === undefined) {
            dropped.add(i);
            excess -= 1;
        }
    }
    for (let i = 0; i < queue.length && excess > 0; i += 1) {
        if (!dropped.has(i)) {
            dropped.add(i);
            excess -= 1;
        }
    }
    return queue.filter((_, i) => !dropped.has(i));
}

export class AuditWriter {
    private readonly connectOptions: PgOptions;
    private readonly log: (line: string) => void;
    private readonly maxQueued: number;
    private client?: PgClient;
    private queued: AuditRecord[] = [];
    private flushing?: Promise<void>;

    constructor(options: PgOptions, log: (line: string) => void, maxQueued = 10_000) {
        this.connectOptions = options;
        this.log = log;
        this.maxQueued = maxQueued;
    }

    private async connection(): Promise<PgClient> {
        if (!this.client || this.client.broken) this.client = await PgClient.connect(this.connectOptions);
        return this.client;
    }

    write(record: AuditRecord): void {
        this.queued.push(record);
        if (this.queued.length > this.maxQueued) {
            this.queued = trimAuditQueue(this.queued, this.maxQueued);
            this.log("audit database: queue full, anonymous refusals then the oldest records dropped from the database (they are on stdout)");
        }
        this.flush();
    }

    /** Resolves once everything written so far is in the database (or failed once). */
    flush(): Promise<void> {
        this.flushing ??= (async () => {
            while (this.queued.length > 0) {
                const batch = this.queued.slice(0, 200);
                try {
                    await (await this.connection()).query(auditInsertSql, [JSON.stringify(batch)]);
                    // By identity, not position: a full queue may have been trimmed meanwhile.
                    const written = new Set(batch);
                    this.queued = this.queued.filter((record) => !written.has(record));
                } catch (error) {
                    this.log(`audit database: ${error instanceof Error ? error.message : String(error)}; retrying`);
                    this.client?.close();
                    await new Promise((resolve) => setTimeout(resolve, 1000));
                    break;
                }
            }
        })().finally(() => {
            this.flushing = undefined;
            if (this.queued.length > 0) setTimeout(() => this.flush(), 0);
        });
        return this.flushing;
    }

    async read(since: string, limit: number): Promise<AuditRecord[]> {
        await this.flush();
        const rows = await (await this.connection()).query(auditSelectSql, [since, String(limit)]);
        return rows.map((row) => JSON.parse(row.record ?? "null") as AuditRecord);
    }

    close(): void {
        this.client?.close();
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The server

/** Environment variable names (the contract's `gatekeeperSecretEnv`, repeated: this file imports nothing at run time). */
export const secretEnv = {
    oidcClientSecret: "GATEKEEPER_OIDC_CLIENT_SECRET",
    sessionKey: "GATEKEEPER_SESSION_KEY",
    orthancPassword: "GATEKEEPER_ORTHANC_PASSWORD",
    auditDatabasePassword: "GATEKEEPER_AUDIT_DATABASE_PASSWORD",
} as const;

interface Principal {
    kind: "user" | "client" | "share";
    subject: string;
    name?: string;
    permissions: Set<Permission>;
    /** How the caller proved who it is: a cookie (then unsafe methods must come from our own origin) or a token. */
    viaCookie: boolean;
    share?: ShareGrant;
}

const hopByHop = new Set(["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"]);
/** Never forwarded to Orthanc: the caller's credentials and our cookies. */
const credentialHeaders = new Set(["authorization", "cookie", "token", "api-key"]);

/**
 * The headers of a request forwarded to Orthanc: the client's, less hop-by-hop headers, its credentials, our cookies
 * and any X-Forwarded-* it claims, with the gatekeeper's own Authorization. The client's Host is kept, as the gateway
 * kept it before the gatekeeper stood between them: the DICOMweb plugin builds the RetrieveURLs of its answers from it,
 * and Orthanc's cross-site filter compares a browser's Origin with it.
 */
export function upstreamHeaders(incoming: IncomingHttpHeaders, authorization: string): IncomingHttpHeaders {
    const headers: IncomingHttpHeaders = {};
    for (const [name, value] of Object.entries(incoming)) {
        if (!hopByHop.has(name) && !credentialHeaders.has(name) && !name.startsWith("x-forwarded-")) headers[name] = value;
    }
    headers.authorization = authorization;
    return headers;
}

export interface RunningGatekeeper {
    server: Server;
    port: number;
    /** The loopback port of the metrics page, when the configuration asks for one. */
    metricsPort?: number;
    close(): Promise<void>;
}

export interface GatekeeperSecrets {
    oidcClientSecret: string;
    sessionKey: Buffer;
    orthancPassword: string;
    auditDatabasePassword?: string;
}

export function secretsFromEnvironment(env: NodeJS.ProcessEnv, config: GatekeeperConfig): GatekeeperSecrets {
    const required = (name: string) => {
        const value = env[name];
        if (!value) throw new Error(`environment variable ${name} is not set`);
        return value;
    };
    return {
        oidcClientSecret: required(secretEnv.oidcClientSecret),
        sessionKey: Buffer.from(required(secretEnv.sessionKey), "base64"),
        orthancPassword: required(secretEnv.orthancPassword),
        auditDatabasePassword: config.audit.database ? required(secretEnv.auditDatabasePassword) : undefined,
    };
}

async function fetchJson(url: string, init?: RequestInit): Promise<unknown> {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
    if (!response.ok) throw new Error(`${init?.method ?? "GET"} ${url}: HTTP ${response.status} ${(await response.text()).slice(0, 200)}`);
    return response.json();
}

/** Reads and drops what remains of a request's body, up to `limit` bytes or `timeoutMs`, whichever comes first. */
function drain(request: IncomingMessage, limit: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
        if (request.readableEnded || request.destroyed) return resolve();
        let size = 0;
        const done = () => {
            clearTimeout(timer);
            resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        request.on("data", (chunk: Buffer) => {
            size += chunk.length;
            if (size > limit) done();
        });
        request.once("end", done);
        request.once("error", done);
        request.once("close", done);
        request.resume();
    });
}

/** Starts the gatekeeper; resolves once it listens. */
export async function startGatekeeper(config: GatekeeperConfig, secrets: GatekeeperSecrets, output: { audit: (line: string) => void; log: (line: string) => void }): Promise<RunningGatekeeper> {
    const keys = deriveKeys(secrets.sessionKey);
    const issuer = new IssuerKeys(config.oidc.issuer, fetchJson, undefined, config.oidc.discoveryUrl);
    const audiences = config.oidc.audiences.length > 0 ? config.oidc.audiences : [config.oidc.clientId];
    const publicUrl = config.publicUrl.replace(/\/$/, "");
    const publicOrigin = new URL(publicUrl).origin;
    const redirectUri = `${publicUrl}/oauth2/callback`;
    const orthanc = new URL(config.orthancUrl);
    const orthancIdleTimeoutMs = (config.orthancIdleTimeoutSeconds ?? 600) * 1000;
    const orthancAuthorization = `Basic ${Buffer.from(`${config.orthancUsername}:${secrets.orthancPassword}`).toString("base64")}`;
    const database = config.audit.database;
    const writer = database
        ? new AuditWriter({ host: database.host, port: database.port, database: database.database, user: database.user, password: secrets.auditDatabasePassword ?? "", sslmode: database.sslmode }, output.log)
        : undefined;
    // From the configuration once: each API client's permissions, and the groups any role is granted by.
    const clientPermissions = new Map(config.apiClients.map((client) => [client.clientId, new Set<Permission>(config.roles[client.role]?.permissions ?? [])]));
    const mappedGroups = new Set(Object.values(config.roles).flatMap((role) => role.groups));

    const audit = (input: Omit<AuditInput, "tenant" | "now">) => {
        const record = buildAuditRecord({ ...input, tenant: config.tenant, now: new Date() });
        output.audit(JSON.stringify(record));
        writer?.write(record);
    };

    const sourceOf = (request: IncomingMessage) => {
        const forwarded = String(request.headers["x-forwarded-for"] ?? "").split(",").map((hop) => hop.trim()).filter(Boolean);
        return forwarded[forwarded.length - 1] ?? request.socket.remoteAddress ?? "unknown";
    };

    const send = (response: ServerResponse, status: number, body: unknown, headers: Record<string, string | string[]> = {}) => {
        const text = typeof body === "string" ? body : JSON.stringify(body);
        response.writeHead(status, { "Content-Type": typeof body === "string" ? "text/plain; charset=utf-8" : "application/json", "Cache-Control": "no-store", ...headers });
        response.end(text);
    };

    const orthancCall = (method: string, path: string, body?: string): Promise<{ status: number; body: string }> =>
        new Promise((resolve, reject) => {
            const call = httpRequest(
                { protocol: orthanc.protocol, hostname: orthanc.hostname, port: orthanc.port, path, method, headers: { Authorization: orthancAuthorization, ...(body ? { "Content-Type": "text/plain" } : {}) } },
                (answer) => {
                    const chunks: Buffer[] = [];
                    answer.on("data", (chunk: Buffer) => chunks.push(chunk));
                    answer.on("end", () => resolve({ status: answer.statusCode ?? 502, body: Buffer.concat(chunks).toString("utf8") }));
                    answer.on("error", reject);
                },
            );
            call.setTimeout(orthancIdleTimeoutMs, () => call.destroy(new OrthancTimeout(orthancIdleTimeoutMs)));
            call.on("error", reject);
            call.end(body);
        });

    const permissionsOfClaims = (claims: Record<string, unknown>): { kind: "user" | "client"; permissions: Set<Permission> } => {
        const clientId = [claims.client_id, claims.azp, claims.appid].find((value): value is string => typeof value === "string" && clientPermissions.has(value));
        if (clientId) return { kind: "client", permissions: clientPermissions.get(clientId)! };
        return { kind: "user", permissions: permissionsOfGroups(config.roles, groupsOf(claims, config.oidc.groupsClaim)) };
    };

    /** Who is asking: a principal, nobody, or a refusal (a token that does not hold). */
    const identify = async (request: IncomingMessage): Promise<{ principal?: Principal; refusal?: string }> => {
        const authorization = request.headers.authorization;
        if (authorization !== undefined) {
            const bearer = /^Bearer\s+([A-Za-z0-9_.~+/=-]+)$/i.exec(authorization)?.[1];
            if (!bearer) return { refusal: "not a bearer token" };
            let check: TokenCheck;
            try {
                check = await issuer.check(bearer, audiences);
            } catch (error) {
                output.log(`issuer: ${error instanceof Error ? error.message : String(error)}`);
                return { refusal: "issuer unreachable" };
            }
            if (!check.ok) return { refusal: check.reason };
            const claims = check.claims;
            // An ID token (it carries the sign-in's nonce) proves a sign-in to the web client; it is not an access token.
            if (claims.nonce !== undefined) return { refusal: "an ID token is not an access token" };
            const { kind, permissions } = permissionsOfClaims(claims);
            const subject = String(kind === "client" ? claims.client_id ?? claims.azp ?? claims.sub : claims.sub);
            const name = claims[config.oidc.nameClaim];
            return { principal: { kind, subject, name: typeof name === "string" ? name : undefined, permissions, viaCookie: false } };
        }
        const cookies = parseCookies(request.headers.cookie);
        const now = Math.floor(Date.now() / 1000);
        const session = cookies[cookieNames.session] ? unseal<Session & { tenant: string }>(keys.cookie, `session:${config.tenant}`, cookies[cookieNames.session]) : undefined;
        if (session && session.tenant === config.tenant && session.exp > now) {
            return { principal: { kind: "user", subject: session.sub, name: session.name, permissions: permissionsOfGroups(config.roles, session.groups), viaCookie: true } };
        }
        const share = cookies[cookieNames.share] ? unseal<ShareGrant>(keys.cookie, `share:${config.tenant}`, cookies[cookieNames.share]) : undefined;
        if (share && share.tenant === config.tenant && share.exp > now) {
            return { principal: { kind: "share", subject: `share-link:${share.by}`, permissions: new Set(), viaCookie: true, share } };
        }
        return {};
    };

    const beginSignIn = async (response: ServerResponse, returnTo: string) => {
        const metadata = await issuer.metadata();
        const state = randomBytes(24).toString("base64url");
        const nonce = randomBytes(24).toString("base64url");
        const verifier = randomBytes(32).toString("base64url");
        const exp = Math.floor(Date.now() / 1000) + 600;
        const login = seal(keys.cookie, `login:${config.tenant}`, { state, nonce, verifier, returnTo, exp });
        const target = new URL(metadata.authorization_endpoint);
        target.search = new URLSearchParams({
            response_type: "code",
            client_id: config.oidc.clientId,
            redirect_uri: redirectUri,
            scope: config.oidc.scopes.join(" "),
            state,
            nonce,
            code_challenge: createHash("sha256").update(verifier).digest("base64url"),
            code_challenge_method: "S256",
        }).toString();
        response.writeHead(302, { Location: target.toString(), "Set-Cookie": cookieHeader(cookieNames.login, login, 600), "Cache-Control": "no-store" });
        response.end();
    };

    const safeReturn = (value: string | null) => safeReturnPath(value, publicOrigin);

    const finishSignIn = async (request: IncomingMessage, response: ServerResponse, query: URLSearchParams, source: string) => {
        const base = { source, method: request.method ?? "GET", path: "/oauth2/callback" };
        const fail = (reason: string, subject?: string) => {
            audit({ ...base, action: "sign-in-failed", subject, status: 403, outcome: "failed", reason });
            send(response, 403, `Sign-in failed: ${reason}.`, { "Set-Cookie": cookieHeader(cookieNames.login, "", 0) });
        };
        const login = unseal<{ state: string; nonce: string; verifier: string; returnTo: string; exp: number }>(
            keys.cookie, `login:${config.tenant}`, parseCookies(request.headers.cookie)[cookieNames.login] ?? "",
        );
        const state = query.get("state") ?? "";
        if (!login || login.exp < Date.now() / 1000) return fail("no sign-in in progress");
        if (state.length !== login.state.length || !timingSafeEqual(Buffer.from(state), Buffer.from(login.state))) return fail("state mismatch");
        if (query.get("error")) return fail(`identity provider: ${query.get("error")}`);
        const iss = query.get("iss");
        if (iss !== null && iss !== config.oidc.issuer) return fail("wrong issuer");
        const metadata = await issuer.metadata();
        const basic = Buffer.from(`${encodeURIComponent(config.oidc.clientId)}:${encodeURIComponent(secrets.oidcClientSecret)}`).toString("base64");
        let tokens: { id_token?: string; access_token?: string };
        try {
            tokens = (await fetchJson(metadata.token_endpoint, {
                method: "POST",
                headers: { Authorization: `Basic ${basic}`, "Content-Type": "application/x-www-form-urlencoded" },
                body: new URLSearchParams({ grant_type: "authorization_code", code: query.get("code") ?? "", redirect_uri: redirectUri, code_verifier: login.verifier }).toString(),
            })) as typeof tokens;
        } catch (error) {
            output.log(`token endpoint: ${error instanceof Error ? error.message : String(error)}`);
            return fail("code exchange refused");
        }
        const check = await issuer.check(tokens.id_token ?? "", [config.oidc.clientId]);
        if (!check.ok) return fail(`ID token: ${check.reason}`);
        let claims = check.claims;
        if (claims.nonce !== login.nonce) return fail("nonce mismatch");
        if (Array.isArray(claims.aud) && claims.aud.length > 1 && claims.azp !== config.oidc.clientId) return fail("ID token for another client");
        // Providers that follow OIDC Core 5.4 strictly put scope claims (groups, name) in UserInfo, not the ID token.
        if ((claims[config.oidc.groupsClaim] === undefined || claims[config.oidc.nameClaim] === undefined) && metadata.userinfo_endpoint && tokens.access_token) {
            try {
                const info = (await fetchJson(metadata.userinfo_endpoint, { headers: { Authorization: `Bearer ${tokens.access_token}` } })) as Record<string, unknown>;
                if (info.sub === claims.sub) claims = { ...info, ...claims, [config.oidc.groupsClaim]: claims[config.oidc.groupsClaim] ?? info[config.oidc.groupsClaim], [config.oidc.nameClaim]: claims[config.oidc.nameClaim] ?? info[config.oidc.nameClaim] };
            } catch (error) {
                output.log(`userinfo: ${error instanceof Error ? error.message : String(error)}`);
            }
        }
        const subject = String(claims.sub);
        const name = typeof claims[config.oidc.nameClaim] === "string" ? (claims[config.oidc.nameClaim] as string) : undefined;
        // Only groups that grant a role are kept: the cookie stays small whatever the provider sends.
        const groups = groupsOf(claims, config.oidc.groupsClaim).filter((group) => mappedGroups.has(group));
        const exp = Math.floor(Date.now() / 1000) + config.session.ttlSeconds;
        const session = seal(keys.cookie, `session:${config.tenant}`, { tenant: config.tenant, sub: subject, name, groups, exp });
        audit({ ...base, action: "sign-in", subject, name, status: 302, outcome: "allowed" });
        response.writeHead(302, {
            Location: safeReturn(login.returnTo),
            "Set-Cookie": [cookieHeader(cookieNames.session, session, config.session.ttlSeconds), cookieHeader(cookieNames.login, "", 0)],
            "Cache-Control": "no-store",
        });
        response.end();
    };

    const isOwnUpload = async (path: string, principal: Principal): Promise<boolean> => {
        const [, levelName, id] = path.split("/");
        const study = levelName === "studies" ? await orthancCall("GET", `/studies/${id}`) : await orthancCall("GET", `/${levelName}/${id}/study`);
        if (study.status !== 200) return false;
        const labels = (JSON.parse(study.body) as { Labels?: string[] }).Labels ?? [];
        return labels.includes(uploaderLabel(config.tenant, `${principal.kind}:${principal.subject}`));
    };

    /** Orthanc's clock (UTC, `YYYYMMDDTHHMMSS`): instances it receives from now on carry a ReceptionDate not before it. */
    const orthancNow = async () => {
        const now = await orthancCall("GET", "/tools/now");
        return now.status === 200 ? now.body.trim().slice(0, 15) : undefined;
    };

    /** Puts the uploader's label on the studies this upload created (`studiesCreated`). */
    const labelUploads = async (found: ReturnType<typeof storedResources>, principal: Principal, before: string | undefined) => {
        const instances = [...found.instances];
        for (const uid of found.stowInstanceUids) {
            const lookup = await orthancCall("POST", "/tools/lookup", uid);
            const instanceId = lookup.status === 200 ? (JSON.parse(lookup.body) as { ID: string; Type: string }[]).find((entry) => entry.Type === "Instance")?.ID : undefined;
            if (!instanceId) continue;
            const [study, received] = await Promise.all([orthancCall("GET", `/instances/${instanceId}/study`), orthancCall("GET", `/instances/${instanceId}/metadata/ReceptionDate`)]);
            if (study.status !== 200) continue;
            // STOW-RS does not say whether an instance was new: Orthanc keeps the first ReceptionDate of a known one.
            const isNew = before !== undefined && received.status === 200 && received.body.trim().slice(0, 15) >= before;
            instances.push({ instanceId, studyId: (JSON.parse(study.body) as { ID: string }).ID, isNew });
        }
        const counts: Record<string, number> = {};
        for (const studyId of new Set(instances.map((instance) => instance.studyId))) {
            const statistics = await orthancCall("GET", `/studies/${studyId}/statistics`);
            if (statistics.status === 200) counts[studyId] = Number((JSON.parse(statistics.body) as { CountInstances: unknown }).CountInstances);
        }
        const label = uploaderLabel(config.tenant, `${principal.kind}:${principal.subject}`);
        for (const studyId of studiesCreated(instances, counts)) {
            const put = await orthancCall("PUT", `/studies/${studyId}/labels/${label}`, "");
            if (put.status !== 200) output.log(`uploader label on study ${studyId}: HTTP ${put.status}`);
        }
    };

    /** Forwards to Orthanc; streams the answer, or (`buffer`) returns it for the caller to send after its own work. */
    const proxy = (request: IncomingMessage, response: ServerResponse, target: string, buffer: boolean, body?: Buffer): Promise<{ status: number; body?: Buffer; headers?: IncomingHttpHeaders }> =>
        new Promise((resolve) => {
            const headers = upstreamHeaders(request.headers, orthancAuthorization);
            if (body !== undefined) headers["content-length"] = String(body.length);
            const upstream = httpRequest({ protocol: orthanc.protocol, hostname: orthanc.hostname, port: orthanc.port, path: target, method: request.method, headers }, (answer) => {
                answer.on("error", () => response.destroy());
                const status = answer.statusCode ?? 502;
                const answerHeaders: IncomingHttpHeaders = {};
                for (const [name, value] of Object.entries(answer.headers)) {
                    if (!hopByHop.has(name) && name !== "www-authenticate" && name !== "set-cookie") answerHeaders[name] = value;
                }
                if (!buffer) {
                    response.writeHead(status, answerHeaders);
                    answer.pipe(response);
                    resolve({ status });
                    return;
                }
                const chunks: Buffer[] = [];
                answer.on("data", (chunk: Buffer) => chunks.push(chunk));
                answer.on("end", () => resolve({ status, body: Buffer.concat(chunks), headers: answerHeaders }));
            });
            // A silent Orthanc (a stalled database, a hung plugin) would hold the request and its socket forever.
            upstream.setTimeout(orthancIdleTimeoutMs, () => upstream.destroy(new OrthancTimeout(orthancIdleTimeoutMs)));
            // A client that went away (or the gateway's own timeout) ends the request to Orthanc too.
            response.on("close", () => {
                if (!response.writableFinished) upstream.destroy();
            });
            upstream.on("error", (error) => {
                output.log(`orthanc: ${error.message}`);
                const status = error instanceof OrthancTimeout ? 504 : 502;
                // After the headers, the client must not take a cut answer for a whole one.
                if (!response.headersSent && !response.destroyed) send(response, status, status === 504 ? "Orthanc did not answer in time." : "Orthanc did not answer.");
                else response.destroy();
                resolve({ status });
            });
            if (body !== undefined) upstream.end(body);
            else request.pipe(upstream);
        });

    const readBody = (request: IncomingMessage, limit: number): Promise<string> =>
        new Promise((resolve, reject) => {
            const chunks: Buffer[] = [];
            let size = 0;
            request.on("data", (chunk: Buffer) => {
                size += chunk.length;
                if (size > limit) {
                    reject(new Error("body too large"));
                    request.destroy();
                } else chunks.push(chunk);
            });
            request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
            request.on("error", reject);
        });

    const handle = async (request: IncomingMessage, response: ServerResponse) => {
        /**
         * Answers a refusal once the request's body (an upload) has been read and dropped: answering and closing while
         * the client still sends would reset the connection, and the client would see that instead of our answer.
         */
        const answerRefusal = async (status: number, text: string, headers: Record<string, string> = {}) => {
            await drain(request, 64 * 1024 * 1024, 10_000);
            send(response, status, text, headers);
        };
        const method = (request.method ?? "GET").toUpperCase();
        const rawUrl = request.url ?? "/";
        const source = sourceOf(request);
        const path = canonicalPath(rawUrl);
        const query = new URLSearchParams(rawUrl.includes("?") ? rawUrl.slice(rawUrl.indexOf("?") + 1) : "");
        const problem = requestProblem(method, query, request.headers);
        if (problem !== undefined) {
            audit({ source, method, path: rawUrl.split("?")[0], status: 400, outcome: "refused", action: "refused", reason: problem });
            return answerRefusal(400, `Refused: ${problem}.`);
        }
        if (path === undefined) {
            audit({ source, method, path: rawUrl.split("?")[0], status: 400, outcome: "refused", action: "refused", reason: "ambiguous path" });
            return answerRefusal(400, "Ambiguous path.");
        }
        const requirement = requiredPermission(method, path);
        const resources = resourcesOfRequest(path, query);
        /** A step that needs the identity provider: when it cannot be reached, a failed sign-in, recorded. */
        const providerStep = (step: () => Promise<void>) =>
            step().catch((error: unknown) => {
                output.log(`identity provider: ${error instanceof Error ? error.message : String(error)}`);
                audit({ source, method, path, status: 502, outcome: "failed", action: "sign-in-failed", reason: "identity provider unreachable" });
                if (!response.headersSent) send(response, 502, "The identity provider cannot be reached; try again later.");
            });

        if (requirement === "public") {
            if (path === healthPath) return send(response, 200, "ok");
            if (path === "/oauth2/sign-in") return providerStep(() => beginSignIn(response, safeReturn(query.get("rd"))));
            if (path === "/oauth2/callback") return providerStep(() => finishSignIn(request, response, query, source));
            if (path === "/oauth2/sign-out") {
                const { principal } = await identify(request);
                audit({ source, method, path, action: "sign-out", subject: principal?.subject, name: principal?.name, status: 302, outcome: "allowed" });
                const metadata = await issuer.metadata().catch(() => undefined);
                const target = metadata?.end_session_endpoint ? `${metadata.end_session_endpoint}?client_id=${encodeURIComponent(config.oidc.clientId)}` : "/";
                response.writeHead(302, { Location: target, "Set-Cookie": [cookieHeader(cookieNames.session, "", 0), cookieHeader(cookieNames.share, "", 0)], "Cache-Control": "no-store" });
                return response.end();
            }
            // A share link: its token becomes a cookie scoped to the study, and the viewer opens it.
            const grant = verifyShareToken(keys.share, path.slice("/share/".length), config.tenant, Math.floor(Date.now() / 1000));
            if (!grant) {
                audit({ source, method, path: "/share", status: 403, outcome: "refused", action: "refused", reason: "invalid or expired share link" });
                return send(response, 403, "This share link is not valid.");
            }
            audit({ source, method, path: "/share", action: "view", subject: `share-link:${grant.by}`, resources: [{ level: "study", id: grant.study }], status: 302, outcome: "allowed" });
            response.writeHead(302, {
                Location: `/ohif/viewer?StudyInstanceUIDs=${encodeURIComponent(grant.study)}`,
                "Set-Cookie": cookieHeader(cookieNames.share, seal(keys.cookie, `share:${config.tenant}`, grant), grant.exp - Math.floor(Date.now() / 1000)),
                "Cache-Control": "no-store",
            });
            return response.end();
        }

        const { principal, refusal } = await identify(request);
        if (!principal) {
            const browser = method === "GET" && /text\/html/.test(String(request.headers.accept ?? "")) && refusal === undefined;
            if (browser) {
                return providerStep(async () => {
                    await beginSignIn(response, rawUrl);
                    audit({ source, method, path, resources, status: 302, outcome: "refused", action: "refused", reason: "sign-in required" });
                });
            }
            audit({ source, method, path, resources, status: 401, outcome: "refused", action: "refused", reason: refusal ?? "no credentials" });
            return answerRefusal(401, "Sign-in required.", { "WWW-Authenticate": `Bearer realm="${config.tenant}"${refusal ? ', error="invalid_token"' : ""}` });
        }
        const who = { subject: principal.subject, name: principal.name };
        const refuse = (reason: string) => {
            audit({ ...who, source, method, path, resources, status: 403, outcome: "refused", action: "refused", reason });
            return answerRefusal(403, `Not allowed: ${reason}.`);
        };
        // Cookies travel with cross-site requests a page elsewhere makes: a changing request must come from our origin.
        if (principal.viaCookie && !["GET", "HEAD"].includes(method) && request.headers.origin !== undefined && request.headers.origin !== publicOrigin) {
            return refuse("cross-origin request");
        }
        let allowed: boolean;
        if (principal.share) {
            if (!shareAllows(principal.share, method, path, query, requirement)) return refuse("outside the shared study");
            allowed = true;
        } else if (requirement === "signed-in") {
            allowed = true;
        } else if (requirement === "delete-own") {
            allowed = principal.permissions.has("delete") || (principal.permissions.has("delete-own") && (await isOwnUpload(path, principal)));
        } else {
            allowed = principal.permissions.has(requirement);
        }
        if (!allowed) return refuse(`needs ${requirement === "delete-own" ? "delete (or delete-own on an own upload)" : requirement}`);
        const action = auditActionFor(requirement, method, path);

        if (path === "/audit") {
            if (!writer) return send(response, 503, "No audit database is configured.");
            const since = query.get("since") ?? new Date(Date.now() - 86_400_000).toISOString();
            const limit = Math.min(Math.max(Number(query.get("limit") ?? 1000) || 1000, 1), 10_000);
            if (Number.isNaN(Date.parse(since))) return send(response, 400, "since: an ISO 8601 time.");
            const records = await writer.read(since, limit);
            audit({ ...who, source, method, path, status: 200, outcome: "allowed", action });
            return send(response, 200, { records });
        }
        if (path === "/share") {
            let body: { study?: unknown; ttlSeconds?: unknown };
            try {
                body = JSON.parse(await readBody(request, 4096)) as typeof body;
            } catch {
                return send(response, 400, 'Expected JSON {"study": "<StudyInstanceUID>", "ttlSeconds": n}.');
            }
            const ttl = Number(body.ttlSeconds);
            if (typeof body.study !== "string" || !/^[0-9.]{1,64}$/.test(body.study) || !Number.isInteger(ttl) || ttl < 1 || ttl > config.shareLinks.maxTtlSeconds) {
                return send(response, 400, `study: a StudyInstanceUID; ttlSeconds: 1 to ${config.shareLinks.maxTtlSeconds}.`);
            }
            const exp = Math.floor(Date.now() / 1000) + ttl;
            const token = signShareToken(keys.share, { tenant: config.tenant, study: body.study, exp, by: principal.subject });
            audit({ ...who, source, method, path, resources: [{ level: "study", id: body.study }], status: 200, outcome: "allowed", action });
            return send(response, 200, { url: `${publicUrl}/share/${token}`, expires: new Date(exp * 1000).toISOString() });
        }

        let body: Buffer | undefined;
        if (modifyPath.test(path) && !principal.permissions.has("delete")) {
            try {
                body = Buffer.from(await readBody(request, 1024 * 1024), "utf8");
            } catch {
                return send(response, 413, "A modification request is at most 1 MiB.");
            }
            if (modifyDeletes(body.toString("utf8"))) return refuse("needs delete (KeepSource other than true deletes the originals)");
        }
        const upload = requirement === "upload";
        const before = upload && path.startsWith(dicomWebPrefix) ? await orthancNow() : undefined;
        const answer = await proxy(request, response, rawUrl, upload, body);
        let stored: ResourceRef[] = [];
        if (upload && answer.body) {
            if (answer.status === 200) {
                try {
                    const found = storedResources(path.startsWith(dicomWebPrefix) ? "stow" : path, JSON.parse(answer.body.toString("utf8")));
                    stored = found.resources;
                    await labelUploads(found, principal, before);
                } catch (error) {
                    output.log(`upload answer: ${error instanceof Error ? error.message : String(error)}`);
                }
            }
            response.writeHead(answer.status, { ...answer.headers, "content-length": String(answer.body.length) });
            response.end(answer.body);
        }
        // The viewers' own files carry no patient data: allowed ones are not recorded (refusals are, above).
        if (requirement !== "signed-in") {
            audit({ ...who, source, method, path, resources: dedupe([...resources, ...stored]), status: answer.status, outcome: answer.status < 400 ? "allowed" : "failed", action });
        }
    };

    const server = createServer((request, response) => {
        handle(request, response).catch((error: unknown) => {
            output.log(`request ${request.method} ${(request.url ?? "").split("?")[0]}: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
            if (!response.headersSent) send(response, 500, "The gatekeeper failed.");
            else response.destroy();
        });
    });
    await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(config.port, () => resolve());
    });
    const address = server.address();
    const port = typeof address === "object" && address ? address.port : config.port;
    const metrics = config.metrics ? await startProviderCheck(config.metrics, issuer, output.log) : undefined;
    return {
        server,
        port,
        metricsPort: metrics?.port,
        close: async () => {
            await metrics?.close();
            server.closeAllConnections();
            await new Promise<void>((resolve) => server.close(() => resolve()));
            await writer?.flush();
            writer?.close();
        },
    };
}

/** Reads the configuration file and the environment, starts, and stops cleanly on SIGTERM (the pod's shutdown). */
async function main(): Promise<void> {
    const file = process.argv[2];
    if (!file) throw new Error("usage: node server.ts /path/to/config.json");
    const config = JSON.parse(readFileSync(file, "utf8")) as GatekeeperConfig;
    const running = await startGatekeeper(config, secretsFromEnvironment(process.env, config), {
        audit: (line) => process.stdout.write(`${line}\n`),
        log: (line) => process.stderr.write(`gatekeeper: ${line}\n`),
    });
    process.stderr.write(`gatekeeper: tenant ${config.tenant} listening on ${running.port}, Orthanc at ${config.orthancUrl}\n`);
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
        process.once(signal, () => {
            running.close().then(() => process.exit(0), () => process.exit(1));
        });
    }
}

// The server starts only when this file is the program (`node server.ts config.json`), never when a test imports it.
if (/(^|[/\\])server\.ts$/.test(process.argv[1] ?? "")) {
    main().catch((error: unknown) => {
        process.stderr.write(`gatekeeper: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exit(1);
    });
}
