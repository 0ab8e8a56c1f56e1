/**
 * DICOMweb as a viewer or a PACS speaks it (STOW-RS, QIDO-RS, WADO-RS), over plain HTTP to a replica or over HTTPS
 * through the tenant's gateway. Node's http/https rather than fetch: through the gateway the client must trust the
 * test root alone and name the tenant's web host (SNI, Host), which fetch cannot be told.
 */
import { randomBytes } from "crypto";
import { request as httpRequest, IncomingHttpHeaders } from "http";
import { request as httpsRequest } from "https";
import { Credentials } from "./orthanc";

/** Where DICOMweb answers: an HTTP port of 127.0.0.1, or an HTTPS one verified against `tls.ca` as `tls.host`. */
export interface WebTarget {
    port: number;
    credentials: Credentials | null;
    tls?: { ca: string; host: string };
}

export interface WebResponse {
    status: number;
    headers: IncomingHttpHeaders;
    body: Buffer;
}

/** One HTTP request to 127.0.0.1; the whole body is read. */
export function webRequest(
    target: WebTarget,
    path: string,
    options: { method?: string; headers?: Record<string, string>; body?: Buffer } = {},
): Promise<WebResponse> {
    const headers: Record<string, string> = { ...options.headers };
    if (target.credentials) {
        headers.Authorization = `Basic ${Buffer.from(`${target.credentials.user}:${target.credentials.password}`).toString("base64")}`;
    }
    if (options.body) {
        headers["Content-Length"] = String(options.body.length);
    }
    const common = { host: "127.0.0.1", port: target.port, path, method: options.method ?? "GET", headers };
    return new Promise((resolve, reject) => {
        const onResponse = (response: import("http").IncomingMessage) => {
            const chunks: Buffer[] = [];
            response.on("data", (chunk: Buffer) => chunks.push(chunk));
            response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }));
            response.on("error", reject);
        };
        const request = target.tls
            ? httpsRequest({ ...common, headers: { Host: target.tls.host, ...headers }, servername: target.tls.host, ca: target.tls.ca, agent: false }, onResponse)
            : httpRequest({ ...common, agent: false }, onResponse);
        request.setTimeout(30_000, () => request.destroy(new Error(`${common.method} ${path}: no answer within 30 s`)));
        request.on("error", reject);
        request.end(options.body);
    });
}

/** A multipart/related body of DICOM files, and its Content-Type (PS3.18 10.5, STOW-RS). */
export function multipartDicom(files: Buffer[]): { contentType: string; body: Buffer } {
    const boundary = `korthweb-${randomBytes(12).toString("hex")}`;
    const parts = files.flatMap((file) => [Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), file, Buffer.from("\r\n")]);
    return {
        contentType: `multipart/related; type="application/dicom"; boundary=${boundary}`,
        body: Buffer.concat([...parts, Buffer.from(`--${boundary}--\r\n`)]),
    };
}

/** The parts of a multipart body (RFC 2046), each with its headers (lower-case names) and exact content bytes. */
export function parseMultipart(contentType: string | undefined, body: Buffer): { headers: Record<string, string>; content: Buffer }[] {
    const boundaryParam = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType ?? "");
    if (!/^multipart\/related/i.test(contentType ?? "") || !boundaryParam) {
        throw new Error(`not a multipart/related answer: Content-Type ${contentType}`);
    }
    const delimiter = Buffer.from(`--${boundaryParam[1] ?? boundaryParam[2]}`);
    const parts: { headers: Record<string, string>; content: Buffer }[] = [];
    let start = body.indexOf(delimiter);
    while (start >= 0) {
        const afterDelimiter = start + delimiter.length;
        if (body.subarray(afterDelimiter, afterDelimiter + 2).toString() === "--") {
            return parts;
        }
        const headersEnd = body.indexOf("\r\n\r\n", afterDelimiter);
        const next = body.indexOf(Buffer.concat([Buffer.from("\r\n"), delimiter]), headersEnd);
        if (headersEnd < 0 || next < 0) {
            break;
        }
        const headers = Object.fromEntries(
            body
                .subarray(afterDelimiter, headersEnd)
                .toString("latin1")
                .split("\r\n")
                .filter((line) => line.includes(":"))
                .map((line) => [line.slice(0, line.indexOf(":")).trim().toLowerCase(), line.slice(line.indexOf(":") + 1).trim()]),
        );
        parts.push({ headers, content: body.subarray(headersEnd + 4, next) });
        start = next + 2;
    }
    throw new Error("multipart body without its closing delimiter");
}

/** STOW-RS: stores `files` with one POST to {root}studies. */
export function stow(target: WebTarget, root: string, files: Buffer[]): Promise<WebResponse> {
    const { contentType, body } = multipartDicom(files);
    return webRequest(target, `${root}studies`, {
        method: "POST",
        headers: { "Content-Type": contentType, Accept: "application/dicom+json" },
        body,
    });
}

/** A DICOM JSON attribute's first value (PS3.18 F.2), by tag as `ggggeeee` (upper-case hex). */
export function firstValue(dataset: Record<string, { Value?: unknown[] }>, tag: string): unknown {
    return dataset[tag]?.Value?.[0];
}
