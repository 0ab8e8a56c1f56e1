/**
 * The smallest S3-compatible server the backup and restore commands need, on 127.0.0.1, for the integration suite.
 *
 * Why our own: no S3 server installs here from the registries the project uses (MinIO is in no Debian release; the npm
 * package `s3rver` would have to go into the shared node_modules for one suite). It speaks what the AWS CLI sends for
 * `aws s3 cp` (both ways, multipart and ranged GETs included), `aws s3 rm` and `aws s3api list-objects-v2`, path-style,
 * and it checks every request's AWS Signature Version 4 against the one key pair it knows, and every signed payload's
 * SHA-256: a request signed with other credentials, or a body altered on the way, is refused as S3 refuses it.
 * Objects live in memory.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "crypto";
import { createServer, IncomingMessage, Server, ServerResponse } from "http";
import { AddressInfo } from "net";

export interface StoredObject {
    body: Buffer;
    lastModified: Date;
    etag: string;
}

export interface S3Server {
    /** http://127.0.0.1:<port> */
    readonly endpoint: string;
    readonly bucket: string;
    readonly region: string;
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
    /** Keys under `prefix`, sorted. */
    keys(prefix?: string): string[];
    get(key: string): StoredObject | undefined;
    /** Puts an object directly (fixtures: dumps "written" days ago). */
    put(key: string, body: Buffer): void;
    /** Requests seen, as "METHOD operation", and how many were refused for their signature. */
    readonly log: string[];
    readonly refused: number;
    close(): Promise<void>;
}

const xml = (body: string) => `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;
const escapeXml = (value: string) => value.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** RFC 3986 encoding, as SigV4 canonicalises query strings. */
function uriEncode(value: string): string {
    return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");
const hmac = (key: Buffer | string, data: string) => createHmac("sha256", key).update(data).digest();

/** Checks the request's SigV4 Authorization header; returns why not, or undefined when it is valid. */
function signatureProblem(request: IncomingMessage, body: Buffer, accessKeyId: string, secretAccessKey: string, region: string): string | undefined {
    const authorization = request.headers.authorization ?? "";
    const match = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(authorization);
    if (!match) {
        return `no SigV4 Authorization header (${authorization.slice(0, 40)})`;
    }
    const [, keyId, date, signedRegion, signedHeaders, signature] = match;
    if (keyId !== accessKeyId) {
        return `unknown access key ${keyId}`;
    }
    if (signedRegion !== region) {
        return `signed for region ${signedRegion}`;
    }
    const amzDate = String(request.headers["x-amz-date"] ?? "");
    const payloadHash = String(request.headers["x-amz-content-sha256"] ?? "");
    if (/^[0-9a-f]{64}$/.test(payloadHash)) {
        if (sha256(body) !== payloadHash) {
            return "payload does not match its signed SHA-256";
        }
    } else if (payloadHash !== "UNSIGNED-PAYLOAD") {
        return `payload signing ${payloadHash || "(none)"} not supported by this server`;
    }
    const url = request.url ?? "/";
    const [path, query = ""] = url.split("?", 2);
    const canonicalQuery = query
        .split("&")
        .filter((pair) => pair !== "")
        .map((pair) => {
            const [name, value = ""] = pair.split("=", 2).map((part) => decodeURIComponent(part.replace(/\+/g, "%20")));
            return [uriEncode(name), uriEncode(value)];
        })
        .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
        .map(([name, value]) => `${name}=${value}`)
        .join("&");
    const headerNames = signedHeaders.split(";");
    const canonicalHeaders = headerNames
        .map((name) => {
            const value = request.headers[name];
            const text = Array.isArray(value) ? value.join(",") : (value ?? "");
            return `${name}:${text.trim().replace(/\s+/g, " ")}\n`;
        })
        .join("");
    const canonicalRequest = [request.method, path, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].join("\n");
    const scope = `${date}/${region}/s3/aws4_request`;
    const stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonicalRequest)].join("\n");
    const key = hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, date), region), "s3"), "aws4_request");
    const expected = createHmac("sha256", key).update(stringToSign).digest();
    if (!timingSafeEqual(expected, Buffer.from(signature, "hex"))) {
        return "signature does not match";
    }
    return undefined;
}

function readBody(request: IncomingMessage): Promise<Buffer> {
    return new Promise((resolve, reject) => {
        const chunks: Buffer[] = [];
        request.on("data", (chunk: Buffer) => chunks.push(chunk));
        request.on("end", () => resolve(Buffer.concat(chunks)));
        request.on("error", reject);
    });
}

function error(response: ServerResponse, status: number, code: string, message: string, method?: string): void {
    response.writeHead(status, { "Content-Type": "application/xml" });
    // HEAD answers carry no body.
    response.end(method === "HEAD" ? undefined : xml(`<Error><Code>${code}</Code><Message>${escapeXml(message)}</Message></Error>`));
}

export async function startS3Server(options: { bucket: string; region?: string }): Promise<S3Server> {
    const bucket = options.bucket;
    const region = options.region ?? "us-east-1";
    const accessKeyId = `AKIA${randomBytes(8).toString("hex").toUpperCase()}`;
    const secretAccessKey = randomBytes(30).toString("base64url");
    const objects = new Map<string, StoredObject>();
    const uploads = new Map<string, { key: string; parts: Map<number, Buffer> }>();
    const log: string[] = [];
    let refused = 0;

    const store = (key: string, body: Buffer) => objects.set(key, { body, lastModified: new Date(), etag: `"${createHash("md5").update(body).digest("hex")}"` });

    const handle = async (request: IncomingMessage, response: ServerResponse) => {
        const body = await readBody(request);
        const problem = signatureProblem(request, body, accessKeyId, secretAccessKey, region);
        const url = new URL(request.url ?? "/", "http://s3.local");
        const [, bucketName = "", ...keyParts] = url.pathname.split("/");
        const key = decodeURIComponent(keyParts.join("/"));
        const method = request.method ?? "GET";
        const params = url.searchParams;
        const operation =
            key === ""
                ? params.get("list-type") === "2"
                    ? "ListObjectsV2"
                    : `bucket ${method}`
                : params.has("uploads")
                  ? "CreateMultipartUpload"
                  : params.has("partNumber")
                    ? "UploadPart"
                    : params.has("uploadId")
                      ? method === "DELETE"
                          ? "AbortMultipartUpload"
                          : "CompleteMultipartUpload"
                      : ({ PUT: "PutObject", GET: "GetObject", HEAD: "HeadObject", DELETE: "DeleteObject" } as Record<string, string>)[method] ?? method;
        log.push(`${method} ${operation} ${key}`);
        if (problem) {
            refused++;
            return error(response, 403, "SignatureDoesNotMatch", problem, method);
        }
        if (decodeURIComponent(bucketName) !== bucket) {
            return error(response, 404, "NoSuchBucket", `no bucket ${bucketName}`, method);
        }
        switch (operation) {
            case "ListObjectsV2": {
                const prefix = params.get("prefix") ?? "";
                // The CLI asks for URL-encoded keys (encoding-type=url) and decodes them.
                const encodeKey = (name: string) => (params.get("encoding-type") === "url" ? uriEncode(name).replace(/%2F/g, "/") : name);
                const matching = [...objects.entries()].filter(([name]) => name.startsWith(prefix)).sort(([a], [b]) => (a < b ? -1 : 1));
                const contents = matching
                    .map(
                        ([name, object]) =>
                            `<Contents><Key>${escapeXml(encodeKey(name))}</Key><LastModified>${object.lastModified.toISOString()}</LastModified>` +
                            `<ETag>${escapeXml(object.etag)}</ETag><Size>${object.body.length}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
                    )
                    .join("");
                response.writeHead(200, { "Content-Type": "application/xml" });
                return response.end(
                    xml(
                        `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${bucket}</Name><Prefix>${escapeXml(prefix)}</Prefix>` +
                            `<KeyCount>${matching.length}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>${contents}</ListBucketResult>`,
                    ),
                );
            }
            case "PutObject":
                store(key, body);
                response.writeHead(200, { ETag: objects.get(key)!.etag });
                return response.end();
            case "CreateMultipartUpload": {
                const uploadId = randomBytes(12).toString("hex");
                uploads.set(uploadId, { key, parts: new Map() });
                response.writeHead(200, { "Content-Type": "application/xml" });
                return response.end(
                    xml(`<InitiateMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${escapeXml(key)}</Key><UploadId>${uploadId}</UploadId></InitiateMultipartUploadResult>`),
                );
            }
            case "UploadPart": {
                const upload = uploads.get(params.get("uploadId") ?? "");
                if (!upload) {
                    return error(response, 404, "NoSuchUpload", "no such upload");
                }
                upload.parts.set(Number(params.get("partNumber")), body);
                response.writeHead(200, { ETag: `"${createHash("md5").update(body).digest("hex")}"` });
                return response.end();
            }
            case "CompleteMultipartUpload": {
                const uploadId = params.get("uploadId") ?? "";
                const upload = uploads.get(uploadId);
                if (!upload) {
                    return error(response, 404, "NoSuchUpload", "no such upload");
                }
                const numbers = [...body.toString("utf8").matchAll(/<PartNumber>(\d+)<\/PartNumber>/g)].map((m) => Number(m[1]));
                if (numbers.some((n) => !upload.parts.has(n))) {
                    return error(response, 400, "InvalidPart", "a listed part was never uploaded");
                }
                store(upload.key, Buffer.concat(numbers.map((n) => upload.parts.get(n)!)));
                uploads.delete(uploadId);
                response.writeHead(200, { "Content-Type": "application/xml" });
                return response.end(
                    xml(
                        `<CompleteMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${escapeXml(upload.key)}</Key>` +
                            `<ETag>${escapeXml(objects.get(upload.key)!.etag)}</ETag></CompleteMultipartUploadResult>`,
                    ),
                );
            }
            case "AbortMultipartUpload":
                uploads.delete(params.get("uploadId") ?? "");
                response.writeHead(204);
                return response.end();
            case "GetObject":
            case "HeadObject": {
                const object = objects.get(key);
                if (!object) {
                    return error(response, 404, "NoSuchKey", `no key ${key}`, method);
                }
                const headers = {
                    ETag: object.etag,
                    "Last-Modified": object.lastModified.toUTCString(),
                    "Content-Type": "application/octet-stream",
                    "Accept-Ranges": "bytes",
                };
                const range = /^bytes=(\d+)-(\d*)$/.exec(String(request.headers.range ?? ""));
                if (range) {
                    const start = Number(range[1]);
                    const end = Math.min(range[2] === "" ? object.body.length - 1 : Number(range[2]), object.body.length - 1);
                    const slice = object.body.subarray(start, end + 1);
                    response.writeHead(206, { ...headers, "Content-Length": slice.length, "Content-Range": `bytes ${start}-${end}/${object.body.length}` });
                    return response.end(method === "HEAD" ? undefined : slice);
                }
                response.writeHead(200, { ...headers, "Content-Length": object.body.length });
                return response.end(method === "HEAD" ? undefined : object.body);
            }
            case "DeleteObject":
                objects.delete(key);
                response.writeHead(204);
                return response.end();
            default:
                return error(response, 501, "NotImplemented", `${operation} is not implemented by the suite's S3 server`, method);
        }
    };

    const server: Server = createServer((request, response) => {
        handle(request, response).catch((failure) => error(response, 500, "InternalError", String(failure)));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    return {
        endpoint: `http://127.0.0.1:${port}`,
        bucket,
        region,
        accessKeyId,
        secretAccessKey,
        keys: (prefix = "") => [...objects.keys()].filter((name) => name.startsWith(prefix)).sort(),
        get: (key) => objects.get(key),
        put: (key, body) => store(key, body),
        log,
        get refused() {
            return refused;
        },
        close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
}
