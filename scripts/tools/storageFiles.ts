/**
 * `scripts/run migrate-storage copy|check`: moves a tenant's files out of PostgreSQL (large objects) into the directory
 * Orthanc's `filesystem` storage reads, and checks a file store against its index. Runbook: docs/storage-migration.md.
 *
 *   node -r ts-node/register/transpile-only scripts/tools/storageFiles.ts copy  --url http://orthanc:8042 --directory /srv/files
 *   node -r ts-node/register/transpile-only scripts/tools/storageFiles.ts check --url http://orthanc:8042 --directory /srv/files [--content] [--remove-orphans]
 *
 * Environment: ORTHANC_USER and ORTHANC_PASSWORD, an Orthanc user allowed to read attachments (the tenant's admin).
 * Options: --concurrency N (4), --page N (resources listed per request, 1000).
 *
 * Why by attachment, not by instance: the index keeps each attachment's uuid, size and MD5 whatever the storage, and
 * Orthanc's filesystem storage finds a file at StorageDirectory/<uuid[0:2]>/<uuid[2:4]>/<uuid>
 * (OrthancFramework/Sources/FileStorage/FilesystemStorage.cpp, FilesystemStorage::GetPath). Copying every attachment's
 * stored bytes (`.../attachments/<name>/compressed-data`, exactly what the storage area holds, compressed or not) to
 * that path and switching the configuration leaves the index as it is: same uuids, revisions, MD5s, nothing
 * re-ingested. Attachments at every level are copied (the DICOMweb plugin caches series metadata as one).
 *
 * copy   reads every attachment through the REST API of an Orthanc that still runs the old storage (it serves reads
 *        meanwhile), writes it to <uuid>.partial beside its final path, checks size and MD5 against the index, fsyncs
 *        and renames it into place. A file already in place with the index's size and MD5 is skipped, so an
 *        interrupted run is resumed by running it again; a partial file is overwritten. A uuid never changes content
 *        (Orthanc writes a new attachment under a new uuid), so a file copied once stays right.
 * check  lists every attachment the index knows and every file of the directory; reports index rows whose file is
 *        missing (or, with --content, differs from the index's size and MD5) and files no attachment names (orphans,
 *        partial copies). Exit status 0 only when both lists are empty. With --remove-orphans it deletes the orphans it
 *        reports (and then counts them as settled): only while no Orthanc writes to the directory (before the switch,
 *        or with every replica read-only), since Orthanc writes a file before the index row that names it.
 * One line per finding or copied file, then a summary line starting with `summary:`.
 */
import { createHash } from "crypto";
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from "fs";
import { join } from "path";

export interface AttachmentInfo {
    /** Where the attachment hangs: e.g. /instances/<id>/attachments/dicom. */
    path: string;
    uuid: string;
    compressedSize: number;
    /** Absent when Orthanc was told not to store MD5s (StoreMD5ForAttachments: false). */
    compressedMd5?: string;
}

/** Where Orthanc's filesystem storage keeps the attachment `uuid` under `directory`. */
export function attachmentFile(directory: string, uuid: string): string {
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(uuid)) {
        throw new Error(`not an attachment uuid: ${uuid}`);
    }
    return join(directory, uuid.slice(0, 2), uuid.slice(2, 4), uuid);
}

export const partialSuffix = ".partial";

export class OrthancReader {
    constructor(
        private readonly url: string,
        private readonly user: string,
        private readonly password: string,
    ) {}

    private async get(path: string): Promise<Response> {
        const response = await fetch(`${this.url.replace(/\/$/, "")}${path}`, {
            headers: { Authorization: `Basic ${Buffer.from(`${this.user}:${this.password}`).toString("base64")}` },
        });
        if (response.status !== 200) {
            throw new Error(`GET ${path}: HTTP ${response.status} ${await response.text()}`);
        }
        return response;
    }

    async json<T>(path: string): Promise<T> {
        return (await (await this.get(path)).json()) as T;
    }

    async bytes(path: string): Promise<Buffer> {
        return Buffer.from(await (await this.get(path)).arrayBuffer());
    }

    /** Whether the resource at `path` has gone (deleted since it was listed): a 404, where any other answer is an error. */
    async gone(path: string): Promise<boolean> {
        const response = await fetch(`${this.url.replace(/\/$/, "")}${path}`, {
            headers: { Authorization: `Basic ${Buffer.from(`${this.user}:${this.password}`).toString("base64")}` },
        });
        await response.arrayBuffer();
        return response.status === 404;
    }

    /** Every attachment of every resource, level by level, `page` resources per listing request. */
    async *attachments(page: number): AsyncGenerator<AttachmentInfo> {
        for (const level of ["patients", "studies", "series", "instances"]) {
            for (let since = 0; ; since += page) {
                const ids = await this.json<string[]>(`/${level}?since=${since}&limit=${page}`);
                for (const id of ids) {
                    // A resource deleted since the listing has no attachments left to copy.
                    const names = await this.json<string[]>(`/${level}/${id}/attachments`).catch(() => [] as string[]);
                    for (const name of names) {
                        const path = `/${level}/${id}/attachments/${name}`;
                        const info = await this.json<{ Uuid: string; CompressedSize: number; CompressedMD5?: string }>(`${path}/info`).catch(() => undefined);
                        if (info) {
                            yield { path, uuid: info.Uuid, compressedSize: info.CompressedSize, compressedMd5: info.CompressedMD5 };
                        }
                    }
                }
                if (ids.length < page) break;
            }
        }
    }
}

const md5 = (bytes: Buffer) => createHash("md5").update(bytes).digest("hex");

/** Whether `bytes` are what the index says the attachment holds. */
export function matchesIndex(bytes: Buffer, attachment: AttachmentInfo): boolean {
    return bytes.length === attachment.compressedSize && (attachment.compressedMd5 === undefined || md5(bytes) === attachment.compressedMd5);
}

function fileMatches(file: string, attachment: AttachmentInfo): boolean {
    return existsSync(file) && statSync(file).size === attachment.compressedSize && matchesIndex(readFileSync(file), attachment);
}

/** Writes `bytes` durably at `file`: a partial file beside it, fsynced, renamed into place, the directory fsynced. */
function writeDurably(file: string, bytes: Buffer): void {
    const directory = join(file, "..");
    // recursive: another writer (a replica, a second copy) may create the same directory at the same time.
    mkdirSync(directory, { recursive: true });
    const partial = `${file}${partialSuffix}`;
    const fd = openSync(partial, "w", 0o640);
    try {
        writeSync(fd, bytes);
        fsyncSync(fd);
    } finally {
        closeSync(fd);
    }
    renameSync(partial, file);
    const dirFd = openSync(directory, "r");
    try {
        fsyncSync(dirFd);
    } finally {
        closeSync(dirFd);
    }
}

async function forEachLimited<T>(items: AsyncIterable<T>, limit: number, work: (item: T) => Promise<void>): Promise<void> {
    const running = new Set<Promise<void>>();
    for await (const item of items) {
        const task: Promise<void> = work(item).finally(() => running.delete(task));
        running.add(task);
        if (running.size >= limit) await Promise.race(running);
    }
    await Promise.all(running);
}

export interface CopySummary {
    copied: number;
    present: number;
    /** Attachments deleted while the copy ran. */
    gone: number;
    bytes: number;
}

export async function copyAttachments(reader: OrthancReader, directory: string, options: { concurrency: number; page: number; log: (line: string) => void }): Promise<CopySummary> {
    const summary: CopySummary = { copied: 0, present: 0, gone: 0, bytes: 0 };
    await forEachLimited(reader.attachments(options.page), options.concurrency, async (attachment) => {
        const file = attachmentFile(directory, attachment.uuid);
        if (fileMatches(file, attachment)) {
            summary.present += 1;
            return;
        }
        let bytes: Buffer;
        try {
            bytes = await reader.bytes(`${attachment.path}/compressed-data`);
        } catch (error) {
            // Deleted between the listing and now: nothing to copy (the cut-over's final run and check settle it).
            if (await reader.gone(`${attachment.path}/info`)) {
                summary.gone += 1;
                options.log(`gone ${attachment.uuid} ${attachment.path}`);
                return;
            }
            throw error;
        }
        if (!matchesIndex(bytes, attachment)) {
            throw new Error(`${attachment.path} (${attachment.uuid}): ${bytes.length} bytes read, MD5 ${md5(bytes)}; the index says ${attachment.compressedSize} bytes, MD5 ${attachment.compressedMd5}`);
        }
        writeDurably(file, bytes);
        // Read back what the file system holds, not what was handed to it.
        if (!fileMatches(file, attachment)) {
            throw new Error(`${file}: the file written differs from ${attachment.path}`);
        }
        summary.copied += 1;
        summary.bytes += bytes.length;
        options.log(`copied ${attachment.uuid} ${attachment.path} ${bytes.length}`);
    });
    return summary;
}

export interface CheckReport {
    attachments: number;
    files: number;
    /** Index rows without their file, or (with content) whose file differs from the index's size and MD5. */
    missing: AttachmentInfo[];
    differing: AttachmentInfo[];
    /** Files no attachment of the index names (including partial copies), relative to the directory. */
    orphans: string[];
}

/** Every regular file under `directory`, relative to it. */
export function filesUnder(directory: string): string[] {
    const found: string[] = [];
    const walk = (relative: string) => {
        for (const entry of readdirSync(join(directory, relative), { withFileTypes: true })) {
            const path = relative ? join(relative, entry.name) : entry.name;
            if (entry.isDirectory()) walk(path);
            else found.push(path);
        }
    };
    if (existsSync(directory)) walk("");
    return found.sort();
}

export async function checkAttachments(reader: OrthancReader, directory: string, options: { content: boolean; page: number }): Promise<CheckReport> {
    const report: CheckReport = { attachments: 0, files: 0, missing: [], differing: [], orphans: [] };
    const expected = new Set<string>();
    for await (const attachment of reader.attachments(options.page)) {
        report.attachments += 1;
        const file = attachmentFile(directory, attachment.uuid);
        expected.add(file);
        if (!existsSync(file)) report.missing.push(attachment);
        else if (options.content && !fileMatches(file, attachment)) report.differing.push(attachment);
    }
    for (const relative of filesUnder(directory)) {
        report.files += 1;
        if (!expected.has(join(directory, relative))) report.orphans.push(relative);
    }
    return report;
}

function option(args: string[], name: string): string | undefined {
    const index = args.indexOf(name);
    return index >= 0 ? args[index + 1] : undefined;
}

async function main(args: string[]): Promise<number> {
    const [command] = args;
    const url = option(args, "--url");
    const directory = option(args, "--directory");
    const user = process.env.ORTHANC_USER;
    const password = process.env.ORTHANC_PASSWORD;
    if ((command !== "copy" && command !== "check") || !url || !directory || !user || !password) {
        console.error("usage: storageFiles.ts copy|check --url <Orthanc REST API> --directory <storage directory> [--content] [--remove-orphans] [--concurrency N] [--page N]");
        console.error("       with ORTHANC_USER and ORTHANC_PASSWORD in the environment");
        return 2;
    }
    const page = Number(option(args, "--page") ?? 1000);
    const reader = new OrthancReader(url, user, password);
    if (command === "copy") {
        const summary = await copyAttachments(reader, directory, { concurrency: Number(option(args, "--concurrency") ?? 4), page, log: (line) => console.log(line) });
        console.log(`summary: copied ${summary.copied} (${summary.bytes} bytes), already in place ${summary.present}, deleted meanwhile ${summary.gone}`);
        return 0;
    }
    const report = await checkAttachments(reader, directory, { content: args.includes("--content"), page });
    const removeOrphans = args.includes("--remove-orphans");
    for (const attachment of report.missing) console.log(`missing ${attachment.uuid} ${attachment.path}`);
    for (const attachment of report.differing) console.log(`differs ${attachment.uuid} ${attachment.path}`);
    for (const orphan of report.orphans) {
        if (removeOrphans) rmSync(join(directory, orphan));
        console.log(`${removeOrphans ? "removed orphan" : "orphan"} ${orphan}`);
    }
    console.log(
        `summary: ${report.attachments} attachments, ${report.files} files, ${report.missing.length} missing, ${report.differing.length} differing, ` +
            `${report.orphans.length} orphans${removeOrphans ? " (removed)" : ""}`,
    );
    return report.missing.length + report.differing.length + (removeOrphans ? 0 : report.orphans.length) === 0 ? 0 : 1;
}

if (require.main === module) {
    main(process.argv.slice(2)).then(
        (code) => process.exit(code),
        (error: Error) => {
            console.error(`error: ${error.message}`);
            process.exit(1);
        },
    );
}
