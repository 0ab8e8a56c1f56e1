/**
 * Mocha root hooks of the integration suite (.mocharc.json requires this file). Before any test, whichever files run:
 * the prerequisites, then what the real stack runs, as Orthanc reports it for itself and each plugin; the suite stops
 * there unless those are the pinned image's versions (the sid root follows Debian sid, which may move on).
 */
import { differencesFromImage, formatVersions } from "./orthanc";
import { assertPrerequisites } from "./prerequisites";
import { Resources } from "./processes";
import { probeVersions } from "./stack";

export const mochaHooks = {
    async beforeAll(this: Mocha.Context): Promise<void> {
        this.timeout(120_000);
        assertPrerequisites();
        const resources = new Resources();
        try {
            const versions = await probeVersions(resources);
            console.log(`  real stack: ${formatVersions(versions)}; PostgreSQL ${versions.postgresql} (host)`);
            const differences = differencesFromImage(versions);
            if (differences.length > 0) {
                throw new Error(`The sid root does not run the pinned image's versions:\n  - ${differences.join("\n  - ")}`);
            }
        } finally {
            await resources.release();
        }
    },
};
