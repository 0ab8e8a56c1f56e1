/**
 * The suite's corpus of bad DICOM (issue 17): files a broken modality, a faulty converter or an attacker sends, made
 * from the suite's own valid instances by editing their bytes, so the corpus lives in the repository as the code that
 * writes it. Each case says what a site must get from Orthanc: refused (nothing stored), or stored as sent.
 */
import { randomBytes } from "crypto";
import { readFileSync, writeFileSync } from "fs";
import { join } from "path";
import { imageDump } from "../../../scripts/tools/instance";
import { newUid, splitPart10 } from "./dicom";
import { runOk } from "./processes";

export type Expectation =
    /** Refused: an error status, and not one instance more in the archive. */
    | "refused"
    /** Stored, and served back byte for byte. */
    | "stored"
    /** Either of the above, never anything in between (Orthanc's choice, which the test reports). */
    | "refused-or-stored";

export interface BadFile {
    readonly name: string;
    /** Why a site meets it. */
    readonly why: string;
    readonly bytes: Buffer;
    readonly expect: Expectation;
}

const explicitLittleEndian = "1.2.840.10008.1.2.1";
const explicitBigEndian = "1.2.840.10008.1.2.2";

/** Writes a DICOM file with dump2dcm from the dump `lines` (latin1), returning its bytes. */
async function fromDump(dir: string, name: string, lines: string, pixelBytes: number): Promise<Buffer> {
    const pixelFile = join(dir, `${name}.raw`);
    writeFileSync(pixelFile, randomBytes(pixelBytes));
    const dumpFile = join(dir, `${name}.dump`);
    writeFileSync(dumpFile, Buffer.from(lines.replace("@PIXELS@", pixelFile), "latin1"));
    const file = join(dir, `${name}.dcm`);
    // -q: dump2dcm warns about the value lengths the corpus breaks on purpose.
    await runOk("dump2dcm", ["-q", "+te", "+E", "+l", String(lines.length + 1), dumpFile, file]);
    return readFileSync(file);
}

/** A valid CT image's dump, with `extra` lines and `rows` x 256 16-bit pixels, its UIDs fresh. */
function ctDump(rows: number, options: { extra?: string[]; omitSopInstanceUid?: boolean } = {}): string {
    const dump = imageDump({
        uids: { sopInstanceUid: newUid(), studyInstanceUid: newUid(), seriesInstanceUid: newUid() },
        studyDate: "20260101",
        patientName: "KORTHWEB^BADINPUT",
        patientId: "KORTHWEB-BAD",
        instanceNumber: 1,
        rows,
        columns: 256,
        pixelFile: "@PIXELS@",
    })
        .split("\n")
        .filter((line) => !(options.omitSopInstanceUid && line.startsWith("(0008,0018)")));
    return [...(options.extra ?? []), ...dump].join("\n");
}

/** The offset of the data set in a Part 10 file: everything before it is preamble, prefix and file meta. */
function datasetOffset(file: Buffer): number {
    return file.length - splitPart10(file).dataset.length;
}

/** The corpus, written into `dir`. `oversizedMiB` sizes the one large instance. */
export async function badDicomCorpus(dir: string, oversizedMiB = 48): Promise<BadFile[]> {
    const valid = await fromDump(dir, "valid", ctDump(16), 16 * 256 * 2);
    const start = datasetOffset(valid);
    const pixelTag = Buffer.from([0xe0, 0x7f, 0x10, 0x00]);
    const pixelElement = valid.lastIndexOf(pixelTag);

    const overrun = Buffer.from(valid);
    // The pixel data's 4-byte length (after tag, "OW" and 2 reserved bytes) claims 1 GiB more than the file holds.
    overrun.writeUInt32LE(overrun.readUInt32LE(pixelElement + 8) + 0x40000000, pixelElement + 8);

    // The file meta says Big Endian, the data set is Little Endian: every length is read wrong.
    const wrongSyntax = Buffer.from(valid);
    const syntaxAt = wrongSyntax.indexOf(Buffer.from(explicitLittleEndian, "latin1"));
    wrongSyntax.write(explicitBigEndian, syntaxAt, "latin1");

    return [
        { name: "not-dicom", why: "a JPEG or a PDF sent as DICOM", bytes: randomBytes(4096), expect: "refused" },
        { name: "prefix-only", why: "a preamble and DICM, then nothing", bytes: valid.subarray(0, 132), expect: "refused" },
        { name: "truncated-meta", why: "a transfer cut inside the file meta", bytes: valid.subarray(0, start - 10), expect: "refused" },
        { name: "truncated-pixels", why: "a transfer cut inside the pixel data", bytes: valid.subarray(0, Math.floor((pixelElement + valid.length) / 2)), expect: "refused" },
        { name: "length-overrun", why: "an element longer than the file", bytes: overrun, expect: "refused" },
        { name: "wrong-transfer-syntax", why: "a file meta that names another transfer syntax than the data set's", bytes: wrongSyntax, expect: "refused" },
        {
            name: "no-sop-instance-uid",
            why: "a converter that forgets the SOP Instance UID",
            bytes: await fromDump(dir, "no-sop", ctDump(4, { omitSopInstanceUid: true }), 4 * 256 * 2),
            expect: "refused",
        },
        {
            name: "unknown-character-set",
            why: "a modality that declares a character set no standard defines, with Latin-1 bytes in the name",
            bytes: await fromDump(dir, "charset", ctDump(4, { extra: ["(0008,0005) CS [ISO_IR 999]", "(0008,1030) LO [Cr\xe2ne \xe9t\xe9]"] }), 4 * 256 * 2),
            expect: "stored",
        },
        {
            name: "huge-values",
            why: "a 60 KiB value where the standard allows 64 characters, and a 2 MiB text",
            bytes: await fromDump(dir, "huge", ctDump(4, { extra: [`(0008,1030) LO [${"A".repeat(60 * 1024)}]`, `(0040,a160) UT [${"B".repeat(2 * 1024 * 1024)}]`] }), 4 * 256 * 2),
            expect: "refused-or-stored",
        },
        {
            name: "oversized",
            why: `a ${oversizedMiB} MiB instance (a large multi-frame or whole-slide image)`,
            bytes: await fromDump(dir, "oversized", ctDump((oversizedMiB * 1024 * 1024) / (256 * 2)), oversizedMiB * 1024 * 1024),
            expect: "stored",
        },
    ];
}
