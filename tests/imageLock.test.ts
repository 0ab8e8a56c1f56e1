/**
 * `scripts/run lock-images` (scripts/tools/imageLock.ts) against a stub registry on loopback: a small Node HTTP server
 * speaking what the tool relies on of the OCI Distribution API (distribution-spec v1.1 `GET /v2/<name>/manifests/
 * <reference>`, content negotiation by Accept, `Docker-Content-Digest`) and of the Docker Registry token flow (a 401
 * with `WWW-Authenticate: Bearer realm,service,scope`, then `GET <realm>?service=&scope=` for `{"token"}`), as Docker
 * Hub, ghcr.io and quay.io serve anonymous pulls. What a real registry answers is modelled here, not run: none is
 * reachable from this machine.
 */
import { strict as assert } from "assert";
import { createHash } from "crypto";
import * as http from "http";
import { AddressInfo } from "net";
import { ImageLock } from "../components/versions";
import {
    bearerChallenge,
    chartManifestRequest,
    fetchManifestDigest,
    Lockable,
    lockables,
    lockImages,
    manifestRequest,
} from "../scripts/tools/imageLock";
import { charts, pinnedImages, tagReference } from "../components/versions";

const sha256 = (body: string) => `sha256:${createHash("sha256").update(body).digest("hex")}`;

interface StoredManifest {
    mediaType: string;
    body: string;
    /** What the stub announces as Docker-Content-Digest instead of the body's digest (a lying or broken registry). */
    announce?: string;
    /** Served whatever the Accept header lists, as a registry that predates negotiation serves schema 1. */
    ignoresAccept?: boolean;
}

/** The stub: repositories by name, each a map of tags; the token service at /token; every request recorded. */
class StubRegistry {
    readonly requests: string[] = [];
    readonly server: http.Server;
    /** Repositories that require a token (the others answer anonymously, as some registries do). */
    readonly private = new Set<string>();

    constructor(readonly manifests: Record<string, Record<string, StoredManifest>>) {
        this.server = http.createServer((request, response) => this.answer(request, response));
    }

    get url(): string {
        return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    }

    private answer(request: http.IncomingMessage, response: http.ServerResponse): void {
        const url = new URL(request.url!, this.url);
        this.requests.push(`${request.method} ${url.pathname}${url.search}${request.headers.authorization ? " (token)" : ""}`);
        if (url.pathname === "/token") {
            const scope = /^repository:(.+):pull$/.exec(url.searchParams.get("scope") ?? "");
            if (url.searchParams.get("service") !== "stub-registry" || !scope) return void response.writeHead(400).end();
            return void response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token: `pull:${scope[1]}` }));
        }
        const match = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname);
        if (!match) return void response.writeHead(404).end();
        const [, repository, tag] = match;
        if (this.private.has(repository) && request.headers.authorization !== `Bearer pull:${repository}`) {
            response.writeHead(401, {
                "www-authenticate": `Bearer realm="${this.url}/token",service="stub-registry",scope="repository:${repository}:pull"`,
                "content-type": "application/json",
            });
            return void response.end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED" }] }));
        }
        const manifest = this.manifests[repository]?.[tag];
        const accepted = (request.headers.accept ?? "").split(",").map((type) => type.trim());
        if (!manifest || !(manifest.ignoresAccept || accepted.includes(manifest.mediaType))) {
            // Docker Hub answers an index the client did not accept with a 404 as well (MANIFEST_UNKNOWN).
            response.writeHead(404, { "content-type": "application/json" });
            return void response.end(JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] }));
        }
        response.writeHead(200, { "content-type": manifest.mediaType, "docker-content-digest": manifest.announce ?? sha256(manifest.body) });
        response.end(manifest.body);
    }
}

const ociIndex = "application/vnd.oci.image.index.v1+json";
const dockerList = "application/vnd.docker.distribution.manifest.list.v2+json";
const ociManifest = "application/vnd.oci.image.manifest.v1+json";
const dockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
const manifest = (mediaType: string, note: string): StoredManifest => ({ mediaType, body: JSON.stringify({ schemaVersion: 2, mediaType, note }) });

describe("scripts/run lock-images against a stub registry", () => {
    const stored = {
        "library/postgres": { "17": manifest(ociIndex, "official image, multi-platform") },
        "orthancteam/orthanc": { "26.8.1": manifest(dockerList, "a Docker manifest list") },
        "kiali/kiali": { "v2.20.0": manifest(dockerManifest, "one platform") },
        "bitnamicharts/postgresql-ha": { "16.3.2": manifest(ociManifest, "a Helm chart: config application/vnd.cncf.helm.config.v1+json") },
        "someone/liar": { "1": { ...manifest(ociManifest, "announces another digest"), announce: `sha256:${"1".repeat(64)}` } },
        "someone/old": { "1": { mediaType: "application/vnd.docker.distribution.manifest.v1+prettyjws", body: "{}", ignoresAccept: true } },
        "someone/negotiating": { "1": manifest("application/vnd.docker.distribution.manifest.v1+prettyjws", "schema 1, served only on request") },
    };
    const registry = new StubRegistry(stored);
    const endpoint = () => registry.url;
    const today = "2026-12-06";

    before((done) => {
        for (const repository of ["library/postgres", "orthancteam/orthanc", "bitnamicharts/postgresql-ha", "someone/liar", "someone/old"]) registry.private.add(repository);
        registry.server.listen(0, "127.0.0.1", done);
    });
    after((done) => void registry.server.close(() => done()));
    beforeEach(() => registry.requests.splice(0));

    it("asks docker.io at registry-1.docker.io, with library/ for an official image; other registries as named; an OCI chart by its version", () => {
        assert.deepEqual(manifestRequest("docker.io", "postgres", "17"), { registry: "docker.io", apiHost: "registry-1.docker.io", repository: "library/postgres", tag: "17" });
        assert.equal(manifestRequest("docker.io", "orthancteam/orthanc", "26.8.1").repository, "orthancteam/orthanc");
        assert.equal(manifestRequest("quay.io", "kiali/kiali", "v2.20.0").apiHost, "quay.io");
        assert.deepEqual(chartManifestRequest(charts.postgresqlHa), {
            registry: "registry-1.docker.io",
            apiHost: "registry-1.docker.io",
            repository: "bitnamicharts/postgresql-ha",
            tag: charts.postgresqlHa.version,
        });
        assert.deepEqual(
            bearerChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/postgres:pull"'),
            { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/postgres:pull" },
        );
        assert.equal(bearerChallenge('Basic realm="x"'), undefined);
    });

    it("locks every image and the OCI chart components/versions.ts pins, by the names the lock uses", () => {
        const items = lockables();
        assert.deepEqual(
            items.map((item) => item.reference),
            [...Object.values(pinnedImages).map(tagReference), "oci://registry-1.docker.io/bitnamicharts/postgresql-ha:16.3.2", "oci://ghcr.io/versity/versitygw/charts/versitygw:0.3.4"],
        );
        assert.equal(items.find((item) => item.reference.includes("cloudnative-pg"))!.recordedDigest, pinnedImages.cnpgPostgres.digest);
    });

    it("takes an anonymous token when asked, and locks the sha256 of the manifest served, whichever of the four types it is", async () => {
        for (const [registryName, repository, tag, expected] of [
            ["docker.io", "postgres", "17", stored["library/postgres"]["17"]],
            ["docker.io", "orthancteam/orthanc", "26.8.1", stored["orthancteam/orthanc"]["26.8.1"]],
            ["quay.io", "kiali/kiali", "v2.20.0", stored["kiali/kiali"]["v2.20.0"]],
            ["registry-1.docker.io", "bitnamicharts/postgresql-ha", "16.3.2", stored["bitnamicharts/postgresql-ha"]["16.3.2"]],
        ] as const) {
            const answer = await fetchManifestDigest(manifestRequest(registryName, repository, tag), endpoint);
            assert.deepEqual(answer, { digest: sha256(expected.body), mediaType: expected.mediaType }, `${repository}:${tag}`);
        }
        assert.deepEqual(registry.requests.slice(0, 3), [
            "GET /v2/library/postgres/manifests/17",
            "GET /token?service=stub-registry&scope=repository%3Alibrary%2Fpostgres%3Apull",
            "GET /v2/library/postgres/manifests/17 (token)",
        ]);
        assert.ok(registry.requests.includes("GET /v2/kiali/kiali/manifests/v2.20.0"), "a registry that needs no token is asked once");
    });

    it("refuses an unknown tag (404), a digest header the body does not hash to, and a manifest type it did not ask for", async () => {
        const ask = (repository: string, tag: string) => fetchManifestDigest(manifestRequest("docker.io", repository, tag), endpoint);
        await assert.rejects(ask("orthancteam/orthanc", "26.9.9"), /registry-1\.docker\.io has no manifest for orthancteam\/orthanc:26\.9\.9 \(404\)/);
        await assert.rejects(ask("someone/liar", "1"), /announced sha256:1{64} for someone\/liar:1, but the manifest it sent hashes to sha256:[0-9a-f]{64}/);
        // Schema 1 is not asked for: a registry that negotiates answers 404 (as Docker Hub does for a type not accepted),
        // one that does not is refused for the type it served.
        await assert.rejects(ask("someone/negotiating", "1"), /no manifest for someone\/negotiating:1 \(404\)/);
        await assert.rejects(ask("someone/old", "1"), /served someone\/old:1 as 'application\/vnd\.docker\.distribution\.manifest\.v1\+prettyjws', none of the manifest types asked for/);
    });

    it("writes an entry per pin, keeps a locked digest without asking, keeps a failure's reason, and drops entries nothing pins", async () => {
        const item = (repository: string, tag: string, recordedDigest?: string): Lockable => ({
            kind: "images",
            reference: `docker.io/${repository}:${tag}`,
            request: manifestRequest("docker.io", repository, tag),
            recordedDigest,
        });
        const kept = `sha256:${"2".repeat(64)}`;
        const previous: ImageLock = {
            comment: "kept as is",
            images: {
                "docker.io/kiali/kiali:v2.20.0": { digest: kept, registry: "registry-1.docker.io", date: "2026-01-01", source: "registry" },
                "docker.io/orthancteam/orthanc:26.7.0": { digest: kept, registry: "registry-1.docker.io", date: "2026-01-01", source: "registry" },
            },
            charts: {},
        };
        const orthanc = sha256(stored["orthancteam/orthanc"]["26.8.1"].body);
        const report = await lockImages([item("orthancteam/orthanc", "26.8.1"), item("kiali/kiali", "v2.20.0"), item("orthancteam/orthanc", "26.9.9")], previous, { endpoint, today });
        assert.deepEqual(report.lock, {
            comment: "kept as is",
            images: {
                "docker.io/orthancteam/orthanc:26.8.1": { digest: orthanc, registry: "registry-1.docker.io", date: today, source: "registry", mediaType: dockerList },
                "docker.io/kiali/kiali:v2.20.0": previous.images["docker.io/kiali/kiali:v2.20.0"],
                "docker.io/orthancteam/orthanc:26.9.9": {
                    digest: null,
                    registry: "registry-1.docker.io",
                    date: today,
                    error: "registry-1.docker.io has no manifest for orthancteam/orthanc:26.9.9 (404)",
                },
            },
            charts: {},
        });
        assert.deepEqual(report.unlocked, ["docker.io/orthancteam/orthanc:26.9.9"]);
        assert.ok(!registry.requests.some((request) => request.includes("kiali")), "a locked digest is kept without a request");
        assert.match(report.lines[2], /^FAILED {3}docker\.io\/orthancteam\/orthanc:26\.9\.9: .*\(404\)$/);
    });

    it("with --refresh, reports a digest that moved, and never replaces one an upstream record names", async () => {
        const served = sha256(stored["orthancteam/orthanc"]["26.8.1"].body);
        const old = `sha256:${"3".repeat(64)}`;
        const reference = "docker.io/orthancteam/orthanc:26.8.1";
        const previous: ImageLock = { images: { [reference]: { digest: old, registry: "registry-1.docker.io", date: "2026-01-01", source: "registry" } }, charts: {} };
        const request = manifestRequest("docker.io", "orthancteam/orthanc", "26.8.1");
        const moved = await lockImages([{ kind: "images", reference, request }], previous, { endpoint, today, refresh: true });
        assert.equal(moved.lock.images[reference].digest, served);
        assert.match(moved.lines[0], new RegExp(`^CHANGED +${reference} ${served} \\(was ${old}: the tag was pushed again; review before committing\\)$`));
        const recorded = await lockImages([{ kind: "images", reference, request, recordedDigest: old }], previous, { endpoint, today, refresh: true });
        assert.deepEqual(recorded.lock.images[reference], previous.images[reference], "the recorded digest stays");
        assert.match(recorded.lines[0], /FAILED .*the registry answers sha256:[0-9a-f]{64}, but the upstream record .* names sha256:3{64}/);
    });
});
