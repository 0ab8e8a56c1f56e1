/**
 * Regenerates tests/upstream/orthancImageFacts.json from the orthancteam/orthanc image's start-up data files as
 * published in orthanc-server/orthanc-builder at the tag korthweb pins (docker/orthanc/, copied to
 * ../shared/reference/orthanc-image/). Run after changing the image pin:
 *
 *     node -r ts-node/register/transpile-only tests/upstream/orthancImageFactsGenerate.ts ../shared/reference/orthanc-image
 *
 * It keeps names only: which environment variable or section enables which plugin libraries, which plugins are on by
 * default, which names are deprecated settings, and the defaults the start-up fills in.
 */
import { readFileSync, writeFileSync } from "fs";
import * as path from "path";
import { orthancImage } from "../../components/versions";

const source = process.argv[2];
if (!source) {
    throw new Error("usage: orthancImageFactsGenerate.ts <directory with plugins-def.json, env-var-legacy.json, ...>");
}
const read = (file: string) => JSON.parse(readFileSync(path.join(source, file), "utf8"));
const pluginsDef = read("plugins-def.json") as Record<string, Record<string, unknown>>;
const plugins = Object.fromEntries(
    Object.entries(pluginsDef).map(([plugin, def]) => [
        plugin,
        {
            section: (def.section as string | undefined) ?? plugin,
            enablingEnvVar: def.enablingEnvVar,
            enablingEnvVarLegacy: def.enablingEnvVarLegacy,
            enablingEnvVarIsRequired: def.enablingEnvVarIsRequired === true,
            enablingRootSetting: def.enablingRootSetting,
            enabledByDefault: def.enabledByDefault === true,
            libs: def.libs,
            nonStandardDefaults: def.nonStandardDefaults ?? {},
        },
    ]),
);
const facts = {
    image: `${orthancImage.repository}:${orthancImage.tag}`,
    plugins,
    legacyEnvVars: Object.keys(read("env-var-legacy.json")).sort(),
    aliasEnvVars: read("env-var-non-standards.json"),
    defaults: read("orthanc-defaults.json"),
};
writeFileSync(path.join(__dirname, "orthancImageFacts.json"), `${JSON.stringify(facts, null, 1)}\n`);
