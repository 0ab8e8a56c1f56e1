/**
 * One small synthetic CT instance with fresh UIDs, written by DCMTK's `dump2dcm` from a text dump: what
 * `scripts/run smoke` stores in each tenant (patient KORTHWEB^SMOKE, ID KORTHWEB-SMOKE) and then looks for.
 */
import { execFile } from "child_process";
import { randomBytes, randomUUID } from "crypto";
import { writeFileSync } from "fs";
import { join } from "path";

export interface SmokeInstance {
    file: string;
    studyInstanceUid: string;
    seriesInstanceUid: string;
    sopInstanceUid: string;
}

/** A UID under the 2.25 root (ITU-T X.667): a random UUID as a decimal integer. */
export function newUid(): string {
    return `2.25.${BigInt(`0x${randomUUID().replace(/-/g, "")}`).toString()}`;
}

const side = 16;

/** CT Image Storage: proposed by storescu and accepted by Orthanc's default transfer syntaxes. */
const ctImageStorage = "1.2.840.10008.5.1.4.1.1.2";
/** Multi-frame Grayscale Word Secondary Capture Image Storage: a storage class that carries several frames. */
const multiFrameGrayscaleWordStorage = "1.2.840.10008.5.1.4.1.1.7.3";

export interface ImageDumpInput {
    uids: Omit<SmokeInstance, "file">;
    /** YYYYMMDD. */
    studyDate: string;
    description?: string;
    patientName: string;
    patientId: string;
    /** YYYYMMDD; no PatientBirthDate element when absent. */
    patientBirthDate?: string;
    instanceNumber: number;
    rows: number;
    columns: number;
    /** Several frames make it a multi-frame Secondary Capture instead of a CT image. */
    frames?: number;
    /** dump2dcm reads the OW pixel data (16 bits per sample) from this file. */
    pixelFile: string;
}

/** The text dump of a synthetic grayscale image, for DCMTK's `dump2dcm`. The integration suite makes its data with it too. */
export function imageDump(input: ImageDumpInput): string {
    const { uids, frames } = input;
    return [
        `(0008,0016) UI [${frames === undefined ? ctImageStorage : multiFrameGrayscaleWordStorage}]`,
        `(0008,0018) UI [${uids.sopInstanceUid}]`,
        `(0008,0020) DA [${input.studyDate}]`,
        "(0008,0060) CS [CT]",
        ...(input.description === undefined ? [] : [`(0008,1030) LO [${input.description}]`]),
        `(0010,0010) PN [${input.patientName}]`,
        `(0010,0020) LO [${input.patientId}]`,
        ...(input.patientBirthDate === undefined ? [] : [`(0010,0030) DA [${input.patientBirthDate}]`]),
        `(0020,000d) UI [${uids.studyInstanceUid}]`,
        `(0020,000e) UI [${uids.seriesInstanceUid}]`,
        "(0020,0011) IS [1]",
        `(0020,0013) IS [${input.instanceNumber}]`,
        "(0028,0002) US 1",
        "(0028,0004) CS [MONOCHROME2]",
        ...(frames === undefined ? [] : [`(0028,0008) IS [${frames}]`]),
        `(0028,0010) US ${input.rows}`,
        `(0028,0011) US ${input.columns}`,
        "(0028,0100) US 16",
        "(0028,0101) US 16",
        "(0028,0102) US 15",
        "(0028,0103) US 0",
        `(7fe0,0010) OW =${input.pixelFile}`,
        "",
    ].join("\n");
}

/** The text dump of the smoke instance. */
export function instanceDump(uids: Omit<SmokeInstance, "file">, pixelFile: string, date: Date): string {
    return imageDump({
        uids,
        studyDate: date.toISOString().slice(0, 10).replace(/-/g, ""),
        description: "korthweb smoke test",
        patientName: "KORTHWEB^SMOKE",
        patientId: "KORTHWEB-SMOKE",
        instanceNumber: 1,
        rows: side,
        columns: side,
        pixelFile,
    });
}

/** Writes `<dir>/smoke.dcm` (Explicit VR Little Endian) with new UIDs. */
export function generateInstance(dir: string): Promise<SmokeInstance> {
    const uids = { studyInstanceUid: newUid(), seriesInstanceUid: newUid(), sopInstanceUid: newUid() };
    const pixelFile = join(dir, "smoke.raw");
    const dumpFile = join(dir, "smoke.dump");
    const file = join(dir, "smoke.dcm");
    writeFileSync(pixelFile, randomBytes(side * side * 2));
    writeFileSync(dumpFile, instanceDump(uids, pixelFile, new Date()));
    return new Promise((resolve, reject) => {
        execFile("dump2dcm", ["+te", dumpFile, file], { timeout: 30_000 }, (error, _stdout, stderr) => {
            if (error) {
                const missing = (error as NodeJS.ErrnoException).code === "ENOENT";
                reject(new Error(missing ? "dump2dcm not found: install DCMTK (apt-get install dcmtk)" : `dump2dcm failed: ${stderr.trim() || error.message}`));
            } else {
                resolve({ file, ...uids });
            }
        });
    });
}
