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

/** The text dump of the instance; dump2dcm reads the OW pixel data from `pixelFile`. */
export function instanceDump(uids: Omit<SmokeInstance, "file">, pixelFile: string, date: Date): string {
    const day = date.toISOString().slice(0, 10).replace(/-/g, "");
    return [
        "(0008,0016) UI [1.2.840.10008.5.1.4.1.1.2]", // CT Image Storage
        `(0008,0018) UI [${uids.sopInstanceUid}]`,
        `(0008,0020) DA [${day}]`,
        "(0008,0060) CS [CT]",
        "(0008,1030) LO [korthweb smoke test]",
        "(0010,0010) PN [KORTHWEB^SMOKE]",
        "(0010,0020) LO [KORTHWEB-SMOKE]",
        `(0020,000d) UI [${uids.studyInstanceUid}]`,
        `(0020,000e) UI [${uids.seriesInstanceUid}]`,
        "(0020,0011) IS [1]",
        "(0020,0013) IS [1]",
        "(0028,0002) US 1",
        "(0028,0004) CS [MONOCHROME2]",
        `(0028,0010) US ${side}`,
        `(0028,0011) US ${side}`,
        "(0028,0100) US 16",
        "(0028,0101) US 16",
        "(0028,0102) US 15",
        "(0028,0103) US 0",
        `(7fe0,0010) OW =${pixelFile}`,
        "",
    ].join("\n");
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
