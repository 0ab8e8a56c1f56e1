/**
 * Synthetic CT instances written by DCMTK's `dump2dcm` from a text dump: each with its own study, series and SOP
 * instance UIDs and a block of random pixel data, so any mix-up between instances shows in a byte comparison.
 */
import assert from "assert";
import { randomBytes, randomUUID } from "crypto";
import { statSync, writeFileSync } from "fs";
import { join } from "path";
import { imageDump } from "../../../scripts/tools/instance";
import { mapLimit, runOk } from "./processes";

export interface TestInstance {
    readonly file: string;
    readonly sopInstanceUid: string;
    readonly studyInstanceUid: string;
    readonly seriesInstanceUid: string;
    /** Size of the DICOM file in bytes. */
    readonly size: number;
}

/**
 * A UID under the 2.25 root (ITU-T X.667): a random UUID as a decimal integer, unique without a registered root.
 *
 * The suite writes its own UIDs rather than letting dump2dcm make them (+Ug, --generate-new-uids), so it knows what
 * it sent without reading the files back. Note that dump2dcm's `-g` is not that option: it removes group lengths.
 */
export function newUid(): string {
    return `2.25.${BigInt(`0x${randomUUID().replace(/-/g, "")}`).toString()}`;
}

function dump(
    instance: Omit<TestInstance, "file" | "size">,
    rows: number,
    columns: number,
    pixelFile: string,
    index: number,
    frames?: number,
    patient: Pick<GenerateOptions, "patientId" | "patientName" | "patientBirthDate"> = {},
): string {
    return imageDump({
        uids: instance,
        studyDate: "20260101",
        patientName: patient.patientName ?? "KORTHWEB^INTEGRATION",
        patientId: patient.patientId ?? "KORTHWEB-IT",
        patientBirthDate: patient.patientBirthDate,
        instanceNumber: index + 1,
        rows,
        columns,
        frames,
        pixelFile,
    });
}

export interface GenerateOptions {
    /** All instances in one study and one series (a modality's exam) instead of one study each. */
    oneStudy?: boolean;
    /**
     * Multi-frame instances (Multi-frame Grayscale Word Secondary Capture) of this many 512x512 frames; `pixelBytes`
     * is then ignored.
     */
    frames?: number;
    /** PatientID of the instances (KORTHWEB-IT when absent): studies of different patients, as several modalities send. */
    patientId?: string;
    /** PatientName (KORTHWEB^INTEGRATION when absent) and PatientBirthDate (none when absent). */
    patientName?: string;
    patientBirthDate?: string;
}

/**
 * Writes `count` instances into `dir`, each in its own study, with about `pixelBytes` of 16-bit pixel data
 * (256 columns; rows rounded up). Files are Explicit VR Little Endian (`+te`). `options` change that (the benchmark's data).
 */
export async function generateInstances(
    dir: string,
    count: number,
    pixelBytes: number,
    label = "instance",
    options: GenerateOptions = {},
): Promise<TestInstance[]> {
    const columns = options.frames === undefined ? 256 : 512;
    const rows = options.frames === undefined ? Math.max(1, Math.ceil(pixelBytes / (columns * 2))) : 512;
    const frames = options.frames ?? 1;
    const study = options.oneStudy ? { studyInstanceUid: newUid(), seriesInstanceUid: newUid() } : undefined;
    return mapLimit(Array.from({ length: count }, (_, index) => index), 4, async (index) => {
        const pixelFile = join(dir, `${label}-${index}.raw`);
        writeFileSync(pixelFile, randomBytes(rows * columns * 2 * frames));
        const uids = { sopInstanceUid: newUid(), ...(study ?? { studyInstanceUid: newUid(), seriesInstanceUid: newUid() }) };
        const dumpFile = join(dir, `${label}-${index}.dump`);
        writeFileSync(dumpFile, dump(uids, rows, columns, pixelFile, index, options.frames, options));
        const file = join(dir, `${label}-${index}.dcm`);
        await runOk("dump2dcm", ["+te", dumpFile, file]);
        return { file, ...uids, size: statSync(file).size };
    });
}

/** A DICOM Part 10 file cut in two: its file meta information (group 0002, by tag) and the data set that follows. */
export interface Part10File {
    /** Values of the file meta elements, keyed by tag as `gggg,eeee` (lower-case hex). */
    meta: Map<string, Buffer>;
    /** The bytes after the file meta information: the data set exactly as stored. */
    dataset: Buffer;
}

/** VRs whose explicit-VR length field is 4 bytes after 2 reserved ones (PS3.5 7.1.2). */
const longLengthVrs = new Set(["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"]);

/**
 * Splits a Part 10 file (128-byte preamble, "DICM", group 0002 in Explicit VR Little Endian; PS3.10 7.1) into its
 * file meta information and its data set. Throws on anything else.
 */
export function splitPart10(file: Buffer): Part10File {
    if (file.length < 132 || file.toString("latin1", 128, 132) !== "DICM") {
        throw new Error("not a DICOM Part 10 file (no DICM prefix)");
    }
    const meta = new Map<string, Buffer>();
    let offset = 132;
    while (offset + 8 <= file.length && file.readUInt16LE(offset) === 0x0002) {
        const tag = `0002,${file.readUInt16LE(offset + 2).toString(16).padStart(4, "0")}`;
        const vr = file.toString("latin1", offset + 4, offset + 6);
        let length: number;
        let valueOffset: number;
        if (longLengthVrs.has(vr)) {
            length = file.readUInt32LE(offset + 8);
            valueOffset = offset + 12;
        } else {
            length = file.readUInt16LE(offset + 6);
            valueOffset = offset + 8;
        }
        if (valueOffset + length > file.length) {
            throw new Error(`file meta element ${tag} runs past the end of the file`);
        }
        meta.set(tag, file.subarray(valueOffset, valueOffset + length));
        offset = valueOffset + length;
    }
    return { meta, dataset: file.subarray(offset) };
}

/** File meta elements that name the implementation that wrote the file, and the group length that follows from them. */
const writerTags = new Set(["0002,0000", "0002,0012", "0002,0013"]);

/**
 * Asserts that `got` is the Part 10 file `sent`: the preamble and the data set byte for byte, and every file meta
 * element except the ones naming the implementation that wrote the file.
 *
 * C-STORE carries the data set only; the receiver writes the file meta information (PS3.10 7.1), and DCMTK puts its
 * own ImplementationClassUID (0002,0012) and ImplementationVersionName (0002,0013) there, hence a different group
 * length (0002,0000). The files are written by the host's DCMTK and stored by the DCMTK Orthanc links in its root,
 * whose versions need not match.
 */
export function assertSamePart10(got: Buffer, sent: Buffer, where: string): void {
    assert.ok(got.subarray(0, 132).equals(sent.subarray(0, 132)), `${where}: preamble differs`);
    const [gotFile, sentFile] = [splitPart10(got), splitPart10(sent)];
    assert.ok(gotFile.dataset.equals(sentFile.dataset), `${where}: data set differs`);
    const metaOf = (file: Part10File) =>
        Object.fromEntries([...file.meta].map(([tag, value]) => [tag, writerTags.has(tag) ? "(writer's)" : value.toString("latin1")]));
    assert.deepStrictEqual(metaOf(gotFile), metaOf(sentFile), `${where}: file meta information differs`);
}
