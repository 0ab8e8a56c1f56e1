/**
 * `scripts/run soak [--minutes N] [--associations N] [--rate N] [--results FILE]`: the soak (support/soak.ts) on this
 * machine's loopback, its figures printed and written to soak-results.json (the one committed is the README's run). Exits 1 when an
 * acknowledged instance is lost or served with other bytes, a replica exits, or a replica's memory grows past the
 * threshold; 2 on a bad argument. See the README's "Soak" under "Benchmark".
 */
import { writeFileSync } from "fs";
import { resolve } from "path";
import { assertPrerequisites } from "./support/prerequisites";
import { Resources } from "./support/processes";
import { defaultSoakSettings, formatSoak, runSoak, sampleInterval, SoakFigures, SoakSettings } from "./support/soak";
import { requirePinnedVersions } from "./support/stack";

const usage = "usage: scripts/run soak [--minutes N (default 10, at most 1440)] [--associations N (1 to 8, default 4)] [--rate N (C-STORE instances/s, 0 = unpaced; default 30)] [--results FILE (relative to the repository root)]";

/** The settings from the command line; throws with the usage on anything else. */
export function parseSoakArguments(args: string[]): { settings: SoakSettings; results: string } {
    const settings = { ...defaultSoakSettings };
    let results = "soak-results.json";
    const number = (flag: string, raw: string | undefined, min: number, max: number, integer: boolean) => {
        const value = Number(raw);
        if (raw === undefined || raw.trim() === "" || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
            throw new Error(`${flag} takes ${integer ? "an integer" : "a number"} from ${min} to ${max}, got ${JSON.stringify(raw)}\n${usage}`);
        }
        return value;
    };
    for (let index = 0; index < args.length; index += 2) {
        const [flag, value] = [args[index], args[index + 1]];
        if (flag === "--minutes") settings.durationMs = Math.round(number(flag, value, 0.25, 1440, false) * 60_000);
        else if (flag === "--associations") settings.associations = number(flag, value, 1, 8, true);
        else if (flag === "--rate") settings.storeRate = number(flag, value, 0, 10_000, false);
        else if (flag === "--results" && value) results = value;
        else throw new Error(`unknown argument ${JSON.stringify(flag)}\n${usage}`);
    }
    settings.sampleIntervalMs = sampleInterval(settings.durationMs);
    return { settings, results };
}

async function main(): Promise<void> {
    let parsed: ReturnType<typeof parseSoakArguments>;
    try {
        parsed = parseSoakArguments(process.argv.slice(2));
    } catch (error) {
        console.error((error as Error).message);
        process.exitCode = 2;
        return;
    }
    assertPrerequisites();
    // What runs, first, and only the pinned image's versions (as the benchmark and the suite do).
    const versions = await requirePinnedVersions((line) => console.log(line));
    const resources = new Resources();
    let figures: SoakFigures;
    try {
        figures = await runSoak(resources, { settings: parsed.settings, log: (line) => console.log(line) });
    } finally {
        await resources.release();
    }
    console.log(`\n${formatSoak(figures)}`);
    const file = resolve(__dirname, "../..", parsed.results);
    writeFileSync(file, `${JSON.stringify({ ...figures, versions }, null, 2)}\n`);
    console.log(`written to ${file}`);
    process.exitCode = figures.verdict.ok ? 0 : 1;
}

if (require.main === module) {
    main().catch((error) => {
        console.error(error instanceof Error ? error.message : error);
        process.exitCode = 1;
    });
}
