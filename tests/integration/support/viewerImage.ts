/**
 * A known picture for the viewer to show, and the comparison of a screenshot with it.
 *
 * The picture is a grid of uniform blocks, each with its own grey level. A viewer windows and scales what it shows
 * (OHIF fits the image to the viewport and maps the window to 0..255), so the comparison asks what survives that:
 * sampled at the blocks' centres, the screenshot's blocks are each uniform, clearly apart from one another, and in the
 * same order of brightness as the stored levels. A blank viewport, a black one, or another image fails.
 */
import { writeFileSync } from "fs";
import { join } from "path";
import { inflateSync } from "zlib";
import { imageDump } from "../../../scripts/tools/instance";
import { newUid } from "./dicom";
import { runOk } from "./processes";

/** Grey levels (16-bit stored values) of a square image's blocks, row by row. */
export type BlockPattern = readonly (readonly number[])[];

/** Rows (= columns) of the generated images. */
export const patternImageSize = 256;

export interface PatternInstance {
    readonly file: string;
    readonly studyInstanceUid: string;
    readonly seriesInstanceUid: string;
    readonly sopInstanceUid: string;
}

/** The 16-bit little-endian pixel data of `pattern` on a `size` x `size` image. */
export function patternPixels(pattern: BlockPattern, size = patternImageSize): Buffer {
    const pixels = Buffer.alloc(size * size * 2);
    const blockRows = pattern.length;
    for (let y = 0; y < size; y++) {
        const row = pattern[Math.floor((y * blockRows) / size)];
        for (let x = 0; x < size; x++) {
            pixels.writeUInt16LE(row[Math.floor((x * row.length) / size)], (y * size + x) * 2);
        }
    }
    return pixels;
}

/**
 * One CT instance, in a study of its own, whose pixels are `pattern`; written by DCMTK's dump2dcm. The window
 * (WindowCenter/WindowWidth) spans the levels with a margin, so no block is clipped to black or white.
 */
export async function writePatternInstance(dir: string, label: string, pattern: BlockPattern): Promise<PatternInstance> {
    const levels = pattern.flat();
    const [low, high] = [Math.min(...levels), Math.max(...levels)];
    const margin = Math.max(1, (high - low) / 4);
    const pixelFile = join(dir, `${label}.raw`);
    writeFileSync(pixelFile, patternPixels(pattern));
    const uids = { studyInstanceUid: newUid(), seriesInstanceUid: newUid(), sopInstanceUid: newUid() };
    const dump =
        imageDump({
            uids,
            studyDate: "20260101",
            description: `korthweb viewer ${label}`,
            patientName: "KORTHWEB^VIEWER",
            patientId: "KORTHWEB-VIEWER",
            instanceNumber: 1,
            rows: patternImageSize,
            columns: patternImageSize,
            pixelFile,
        }) + `(0028,1050) DS [${(low + high) / 2}]\n(0028,1051) DS [${high - low + 2 * margin}]\n`;
    const dumpFile = join(dir, `${label}.dump`);
    writeFileSync(dumpFile, dump);
    const file = join(dir, `${label}.dcm`);
    await runOk("dump2dcm", ["+te", dumpFile, file]);
    return { file, ...uids };
}

/** An 8-bit RGBA picture. */
export interface Picture {
    width: number;
    height: number;
    /** width * height * 4 bytes. */
    rgba: Buffer;
}

/**
 * Decodes a PNG as Chromium writes screenshots: 8 bits per sample, greyscale, RGB or RGBA, not interlaced (PNG
 * specification, ISO/IEC 15948, sections 11.2.2 and 9).
 */
export function decodePng(png: Buffer): Picture {
    if (!png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) {
        throw new Error("not a PNG");
    }
    let offset = 8;
    let width = 0;
    let height = 0;
    let channels = 0;
    const data: Buffer[] = [];
    while (offset < png.length) {
        const length = png.readUInt32BE(offset);
        const type = png.toString("latin1", offset + 4, offset + 8);
        const body = png.subarray(offset + 8, offset + 8 + length);
        if (type === "IHDR") {
            width = body.readUInt32BE(0);
            height = body.readUInt32BE(4);
            const [bitDepth, colourType, , , interlace] = body.subarray(8, 13);
            channels = ({ 0: 1, 2: 3, 6: 4 } as Record<number, number>)[colourType] ?? 0;
            if (bitDepth !== 8 || channels === 0 || interlace !== 0) {
                throw new Error(`PNG with bit depth ${bitDepth}, colour type ${colourType}, interlace ${interlace} is not supported`);
            }
        } else if (type === "IDAT") {
            data.push(body);
        }
        offset += 12 + length;
    }
    const raw = inflateSync(Buffer.concat(data));
    const stride = width * channels;
    const pixels = Buffer.alloc(height * stride);
    for (let y = 0; y < height; y++) {
        const filter = raw[y * (stride + 1)];
        const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
        for (let x = 0; x < stride; x++) {
            const left = x >= channels ? pixels[y * stride + x - channels] : 0;
            const up = y > 0 ? pixels[(y - 1) * stride + x] : 0;
            const upLeft = x >= channels && y > 0 ? pixels[(y - 1) * stride + x - channels] : 0;
            let predictor = 0;
            if (filter === 1) predictor = left;
            else if (filter === 2) predictor = up;
            else if (filter === 3) predictor = (left + up) >> 1;
            else if (filter === 4) {
                const p = left + up - upLeft;
                const [pa, pb, pc] = [Math.abs(p - left), Math.abs(p - up), Math.abs(p - upLeft)];
                predictor = pa <= pb && pa <= pc ? left : pb <= pc ? up : upLeft;
            } else if (filter !== 0) throw new Error(`PNG filter ${filter}`);
            pixels[y * stride + x] = (line[x] + predictor) & 0xff;
        }
    }
    const rgba = Buffer.alloc(width * height * 4);
    for (let i = 0; i < width * height; i++) {
        for (let c = 0; c < 3; c++) {
            rgba[i * 4 + c] = pixels[i * channels + (channels === 1 ? 0 : c)];
        }
        rgba[i * 4 + 3] = channels === 4 ? pixels[i * channels + 3] : 255;
    }
    return { width, height, rgba };
}

export interface BlockSample {
    /** Block row and column in the pattern. */
    row: number;
    column: number;
    /** Stored level of the block. */
    level: number;
    /** Mean and standard deviation of the screenshot's grey ((R+G+B)/3) over the sampled square. */
    mean: number;
    deviation: number;
}

export interface Comparison {
    ok: boolean;
    /** What did not hold; empty when ok. */
    problems: string[];
    samples: BlockSample[];
}

/** Thresholds of the comparison, in 8-bit grey levels. */
export const comparisonLimits = {
    /** Neighbours in the order of levels must differ by at least this much on screen. */
    minStep: 12,
    /** A block must be this uniform on screen (a displayed image is; a UI or noise is not). */
    maxDeviation: 6,
} as const;

/**
 * Compares a screenshot of a viewport with `pattern`, assumed square, centred and fitted to the viewport's shorter
 * side (how OHIF first shows a single image). Each block is sampled over a square around its centre, half the block's
 * size, so that a fit smaller than the viewport (down to half of it) or a few pixels' offset still samples inside it.
 */
export function compareWithPattern(picture: Picture, pattern: BlockPattern): Comparison {
    const side = Math.min(picture.width, picture.height);
    const [originX, originY] = [(picture.width - side) / 2, (picture.height - side) / 2];
    const samples: BlockSample[] = [];
    for (const [row, levels] of pattern.entries()) {
        for (const [column, level] of levels.entries()) {
            const [blockWidth, blockHeight] = [side / levels.length, side / pattern.length];
            // Centre of the block when the image fills `side`, pulled towards the image's centre by a quarter, so that a
            // smaller fit (down to half the side) still lands inside the block.
            const cx = originX + side / 2 + ((column + 0.5) * blockWidth - side / 2) * 0.75;
            const cy = originY + side / 2 + ((row + 0.5) * blockHeight - side / 2) * 0.75;
            const half = Math.max(1, Math.floor(Math.min(blockWidth, blockHeight) / 8));
            const values: number[] = [];
            for (let y = Math.round(cy) - half; y <= Math.round(cy) + half; y++) {
                for (let x = Math.round(cx) - half; x <= Math.round(cx) + half; x++) {
                    const i = (y * picture.width + x) * 4;
                    values.push((picture.rgba[i] + picture.rgba[i + 1] + picture.rgba[i + 2]) / 3);
                }
            }
            const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
            const deviation = Math.sqrt(values.reduce((sum, value) => sum + (value - mean) ** 2, 0) / values.length);
            samples.push({ row, column, level, mean, deviation });
        }
    }
    const problems: string[] = [];
    for (const sample of samples) {
        if (sample.deviation > comparisonLimits.maxDeviation) {
            problems.push(`block (${sample.row},${sample.column}) is not uniform on screen: deviation ${sample.deviation.toFixed(1)}`);
        }
    }
    const byLevel = [...samples].sort((a, b) => a.level - b.level);
    for (let i = 1; i < byLevel.length; i++) {
        const [lower, higher] = [byLevel[i - 1], byLevel[i]];
        const step = higher.mean - lower.mean;
        if (step < comparisonLimits.minStep) {
            problems.push(
                `block (${higher.row},${higher.column}) (level ${higher.level}) shows ${higher.mean.toFixed(1)}, ` +
                    `not brighter by ${comparisonLimits.minStep} than block (${lower.row},${lower.column}) (level ${lower.level}) at ${lower.mean.toFixed(1)}`,
            );
        }
    }
    return { ok: problems.length === 0, problems, samples };
}
