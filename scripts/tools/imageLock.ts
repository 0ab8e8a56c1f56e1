/**
 * `scripts/run lock-images [--refresh]`: a lockfile for the images and OCI charts components/versions.ts pins by tag.
 *
 *   node -r ts-node/register/transpile-only scripts/tools/imageLock.ts [--refresh]
 *
 * For every pinned image (`registry/repository:tag`) and every `oci://` chart (`...:version`) it asks the registry for
 * the manifest the tag names, over the OCI Distribution API (Docker Registry HTTP API v2): GET /v2/<repository>/
 * manifests/<tag>, accepting an OCI index, a Docker manifest list, an OCI manifest or a Docker manifest v2, with an
 * anonymous bearer token when the registry asks for one (401 with `WWW-Authenticate: Bearer realm=...,service=...,
 * scope=...`). The digest locked is the sha256 of the manifest received; the registry's `Docker-Content-Digest`, when
 * sent, must agree. docker.io is asked at registry-1.docker.io, with `library/` before an official image's name.
 *
 * It writes components/image-lock.json with exactly the references pinned today (an entry for a tag no longer pinned
 * goes), one per pin: the digest, the registry asked, the day. A pin already locked keeps its digest without a request
 * unless --refresh is given; a refreshed digest that differs is written and reported (the tag was pushed again: review
 * before committing). A digest an upstream record names (`ImagePin.digest`) is never replaced by another answer. What
 * could not be read stays without a digest, with the reason; the exit status is then 1. Behind an HTTP proxy, set
 * NODE_USE_ENV_PROXY=1 beside HTTPS_PROXY: Node's fetch ignores the proxy variables otherwise.
 */
import { createHash } from "crypto";
import { readFileSync, writeFileSync } from "fs";
import * as path from "path";
import {
    ChartPin,
    charts,
    ImageLock,
    ImagePin,
    LockEntry,
    ociChartReference,
    pinnedImages,
    tagReference,
} from "../../components/versions";
import { runTool } from "./stackOutputs";

/** The manifest types a tag may name, as the Accept header lists them: an index or list first (multi-platform images). */
export const manifestMediaTypes = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/** What to ask a registry for: the host its API answers on, the repository there, and the tag. */
export interface ManifestRequest {
    /** The registry as the pin names it (docker.io). */
    registry: string;
    /** The host its API answers on (registry-1.docker.io for docker.io). */
    apiHost: string;
    repository: string;
    tag: string;
}

/** docker.io's API host and its `library/` namespace for official images; other registries as named. */
export function manifestRequest(registry: string, repository: string, tag: string): ManifestRequest {
    if (registry === "docker.io" || registry === "index.docker.io") {
        return { registry, apiHost: "registry-1.docker.io", repository: repository.includes("/") ? repository : `library/${repository}`, tag };
    }
    return { registry, apiHost: registry, repository, tag };
}

/** An `oci://host/repository` chart at its version. */
export function chartManifestRequest(pin: ChartPin): ManifestRequest {
    const [host, ...rest] = pin.chart.replace(/^oci:\/\//, "").split("/");
    return manifestRequest(host, rest.join("/"), pin.version);
}

/** The parameters of a `WWW-Authenticate: Bearer k="v",...` challenge, or undefined for another scheme. */
export function bearerChallenge(header: string | null): Record<string, string> | undefined {
    const match = /^\s*Bearer\s+(.*)$/i.exec(header ?? "");
    if (!match) return undefined;
    return Object.fromEntries([...match[1].matchAll(/(\w+)="([^"]*)"/g)].map(([, key, value]) => [key, value]));
}

export interface ManifestDigest {
    digest: string;
    mediaType: string;
}

/** Where a registry host's API is reached: https://<host> for real registries; a test's stub elsewhere. */
export type Endpoint = (apiHost: string) => string;
const https: Endpoint = (apiHost) => `https://${apiHost}`;

async function anonymousToken(challenge: Record<string, string>, request: ManifestRequest): Promise<string> {
    if (!challenge.realm) throw new Error(`${request.apiHost} asks for a bearer token but names no realm`);
    const url = new URL(challenge.realm);
    if (challenge.service) url.searchParams.set("service", challenge.service);
    url.searchParams.set("scope", challenge.scope ?? `repository:${request.repository}:pull`);
    const response = await fetch(url);
    if (!response.ok) throw new Error(`the token service ${url.origin}${url.pathname} answered ${response.status}`);
    const body = (await response.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new Error(`the token service ${url.origin}${url.pathname} gave no token`);
    return token;
}

/**
 * The digest of the manifest a tag names: sha256 of the bytes served, which must be one of `manifestMediaTypes` and
 * agree with the registry's Docker-Content-Digest when it sends one.
 */
export async function fetchManifestDigest(request: ManifestRequest, endpoint: Endpoint = https): Promise<ManifestDigest> {
    const url = `${endpoint(request.apiHost)}/v2/${request.repository}/manifests/${encodeURIComponent(request.tag)}`;
    const headers: Record<string, string> = { Accept: manifestMediaTypes.join(", ") };
    let response = await fetch(url, { headers });
    if (response.status === 401) {
        const challenge = bearerChallenge(response.headers.get("www-authenticate"));
        if (!challenge) throw new Error(`${request.apiHost} refused the request (401) without a bearer challenge: anonymous pulls are not allowed`);
        headers.Authorization = `Bearer ${await anonymousToken(challenge, request)}`;
        response = await fetch(url, { headers });
    }
    const body = Buffer.from(await response.arrayBuffer());
    if (response.status === 404) throw new Error(`${request.apiHost} has no manifest for ${request.repository}:${request.tag} (404)`);
    if (!response.ok) throw new Error(`${request.apiHost} answered ${response.status} for ${request.repository}:${request.tag}`);
    const mediaType = (response.headers.get("content-type") ?? "").split(";")[0].trim();
    if (!manifestMediaTypes.includes(mediaType)) {
        throw new Error(`${request.apiHost} served ${request.repository}:${request.tag} as '${mediaType}', none of the manifest types asked for`);
    }
    const digest = `sha256:${createHash("sha256").update(body).digest("hex")}`;
    const announced = response.headers.get("docker-content-digest");
    if (announced && announced !== digest) {
        throw new Error(`${request.apiHost} announced ${announced} for ${request.repository}:${request.tag}, but the manifest it sent hashes to ${digest}`);
    }
    return { digest, mediaType };
}

/** One thing to lock: its name in the lock, what to ask, and the digest an upstream record names, if any. */
export interface Lockable {
    kind: "images" | "charts";
    reference: string;
    request: ManifestRequest;
    recordedDigest?: string;
}

/** Everything components/versions.ts pins that a registry can lock: every image, and every OCI chart. */
export function lockables(images: Record<string, ImagePin> = pinnedImages, chartPins: Record<string, ChartPin> = charts): Lockable[] {
    const imageItems = Object.values(images).map((pin): Lockable => ({
        kind: "images",
        reference: tagReference(pin),
        request: manifestRequest(pin.registry, pin.repository, pin.tag),
        recordedDigest: pin.digest,
    }));
    const chartItems = Object.values(chartPins).flatMap((pin): Lockable[] => {
        const reference = ociChartReference(pin);
        return reference ? [{ kind: "charts", reference, request: chartManifestRequest(pin) }] : [];
    });
    return [...imageItems, ...chartItems];
}

export interface LockReport {
    lock: ImageLock;
    /** One line per reference: what happened to it. */
    lines: string[];
    /** The references left without a digest. */
    unlocked: string[];
}

/**
 * The new lock: an entry per lockable, read from the registry unless already locked (and not refreshing). Entries for
 * references no longer pinned are dropped; a failed read keeps a digest the lock already had for the same reference.
 */
export async function lockImages(
    items: Lockable[],
    previous: ImageLock,
    { refresh = false, endpoint = https, today = new Date().toISOString().slice(0, 10) }: { refresh?: boolean; endpoint?: Endpoint; today?: string } = {},
): Promise<LockReport> {
    const lock: ImageLock = { comment: previous.comment, images: {}, charts: {} };
    const lines: string[] = [];
    const unlocked: string[] = [];
    for (const item of items) {
        const before: LockEntry | undefined = previous[item.kind][item.reference];
        if (before?.digest && !refresh) {
            lock[item.kind][item.reference] = before;
            lines.push(`kept     ${item.reference} ${before.digest}`);
            continue;
        }
        let entry: LockEntry;
        try {
            const { digest, mediaType } = await fetchManifestDigest(item.request, endpoint);
            if (item.recordedDigest && digest !== item.recordedDigest) {
                throw new Error(`the registry answers ${digest}, but the upstream record components/versions.ts cites names ${item.recordedDigest}: the tag was pushed again, or the record is wrong`);
            }
            entry = { digest, registry: item.request.apiHost, date: today, source: "registry", mediaType };
            const changed = before?.digest && before.digest !== digest;
            lines.push(`${changed ? "CHANGED " : "locked  "} ${item.reference} ${digest}${changed ? ` (was ${before.digest}: the tag was pushed again; review before committing)` : ""}`);
        } catch (error) {
            const reason = error instanceof Error ? (error.cause instanceof Error ? `${error.message}: ${error.cause.message}` : error.message) : String(error);
            lines.push(`FAILED   ${item.reference}: ${reason}`);
            if (before?.digest) {
                entry = before;
            } else {
                entry = { digest: null, registry: item.request.apiHost, date: today, error: reason };
                unlocked.push(item.reference);
            }
        }
        lock[item.kind][item.reference] = entry;
    }
    return { lock, lines, unlocked };
}

export const lockFile = path.resolve(__dirname, "..", "..", "components", "image-lock.json");

export function writeLock(file: string, lock: ImageLock): void {
    writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
}

async function main(): Promise<number> {
    const args = process.argv.slice(2);
    const unknown = args.filter((arg) => arg !== "--refresh");
    if (unknown.length > 0) throw new Error(`unknown argument ${unknown[0]}: usage: scripts/run lock-images [--refresh]`);
    const previous = JSON.parse(readFileSync(lockFile, "utf8")) as ImageLock;
    const report = await lockImages(lockables(), previous, { refresh: args.includes("--refresh") });
    for (const line of report.lines) process.stdout.write(`${line}\n`);
    writeLock(lockFile, report.lock);
    process.stdout.write(`wrote ${path.relative(process.cwd(), lockFile)}: review the diff and commit it.\n`);
    if (report.unlocked.length > 0) {
        process.stderr.write(`error: no digest for ${report.unlocked.join(", ")} (above); \`scripts/run up\` refuses them until they are locked.\n`);
        return 1;
    }
    return 0;
}

if (require.main === module) {
    runTool(main);
}
