/**
 * Mocha root hooks of the integration suite (.mocharc.json requires this file). Before any test, whichever files run:
 * the prerequisites, then what the real stack runs, as Orthanc reports it for itself and each plugin; the suite stops
 * there unless those are the pinned image's versions (the sid root follows Debian sid, which may move on).
 */
import { differencesFromImage, formatVersions } from "./orthanc";
import { assertPrerequisites } from "./prerequisites";
import { Resources } from "./processes";
import { probeVersions, StackVersions } from "./stack";

/** What the hook runs before the suite: the real ones here, stand-ins in tests/integrationSuite.test.ts (no roots needed). */
export interface SuiteStart {
    assertPrerequisites(): void;
    probeVersions(resources: Resources): Promise<StackVersions>;
    log(line: string): void;
}

const realStart: SuiteStart = {
    assertPrerequisites: () => assertPrerequisites(),
    probeVersions: (resources) => probeVersions(resources),
    log: (line) => console.log(line),
};

export function rootHooks(start: SuiteStart = realStart) {
    return {
        async beforeAll(this: Pick<Mocha.Context, "timeout">): Promise<void> {
            this.timeout(120_000);
            start.assertPrerequisites();
            const resources = new Resources();
            try {
                const versions = await start.probeVersions(resources);
                start.log(`  real stack: ${formatVersions(versions)}; PostgreSQL ${versions.postgresql} (host)`);
                const differences = differencesFromImage(versions);
                if (differences.length > 0) {
                    throw new Error(`The sid root does not run the pinned image's versions:\n  - ${differences.join("\n  - ")}`);
                }
            } finally {
                await resources.release();
            }
        },
    };
}

export const mochaHooks = rootHooks();
