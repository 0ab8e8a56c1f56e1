/**
 * Every image the program sets, in every rendered stack, is one of components/versions.ts' pins, rendered with its
 * digest; every pin has a digest or is on the explicit list of images pinned by tag alone (named in the README), and
 * likewise for the charts' archive digests. The digests are the ones upstream records name
 * (tests/upstream/imagePinFacts.json, regenerated from the repositories by tests/upstream/imagePinFactsGenerate.ts).
 * The program renders the digests of components/image-lock.json (written by `scripts/run lock-images`), which names
 * exactly the pinned tags and agrees with every digest an upstream record names.
 * The Bitnami chart's own image check, modelled in tests/upstream/bitnamiImageCheck.ts, passes the values without
 * `allowInsecureImages`. The preview workflow installs the Pulumi CLI with an install script pinned by commit and
 * sha256 (its refusal of another script is tested in tests/workflows.test.ts).
 */
import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import {
    bitnamiImageValues,
    ChartPin,
    chartReference,
    charts,
    chartsWithoutDigest,
    ImageLock,
    imageLock,
    ImagePin,
    imageReference,
    imagesWithoutDigest,
    kialiImageValues,
    lockedDigest,
    ociChartReference,
    pinnedImages,
    recordedReference,
    tagReference,
} from "../components/versions";
import { plain } from "./support/mocks";
import { allStacks, releases, renderStack } from "./support/stacks";
import { bitnamiImageCheck, checkedImages } from "./upstream/bitnamiImageCheck";
import { cnpgImageNameError, cnpgImageReference, cnpgVersionFromTag } from "./upstream/imagePinCnpgImageName";
import imagePinFacts from "./upstream/imagePinFacts.json";

const repoRoot = path.resolve(__dirname, "..");
const digestPattern = /^sha256:[0-9a-f]{64}$/;

interface FoundImage {
    where: string;
    reference: string;
}

/**
 * The image references a rendered object sets, in the forms the program uses: a container's or a CloudNativePG
 * Cluster's string (`image`, `imageName`), a Bitnami chart's `{registry, repository, tag, digest}`, and kiali-server's
 * `image_name`/`image_digest`/`image_version` (rendered as its v2.20.0 deployment template does).
 */
function imagesIn(value: unknown, where: string): FoundImage[] {
    if (Array.isArray(value)) return value.flatMap((v, i) => imagesIn(v, `${where}[${i}]`));
    if (value === null || typeof value !== "object") return [];
    const node = value as Record<string, unknown>;
    const found: FoundImage[] = [];
    if (typeof node.repository === "string" && typeof node.registry === "string") {
        const tail = typeof node.digest === "string" && node.digest ? `:${node.tag}@${node.digest}` : `:${node.tag}`;
        found.push({ where, reference: `${node.registry}/${node.repository}${tail}` });
    }
    if (typeof node.image_name === "string") {
        const reference = node.image_digest ? `${node.image_name}@${node.image_digest}:${node.image_version}` : `${node.image_name}:${node.image_version}`;
        found.push({ where, reference });
    }
    for (const [key, child] of Object.entries(node)) {
        if ((key === "image" || key === "imageName") && typeof child === "string") found.push({ where: `${where}.${key}`, reference: child });
        else found.push(...imagesIn(child, `${where}.${key}`));
    }
    return found;
}

/** The forms one pin may take in rendered objects: Bitnami's keeps the tag beside the digest, kiali's drops the tag. */
function renderedForms(pin: ImagePin): string[] {
    const name = `${pin.registry}/${pin.repository}`;
    const digest = lockedDigest(pin);
    return digest ? [imageReference(pin), `${name}@${digest}`] : [imageReference(pin)];
}

function pinOf(reference: string): [string, ImagePin] | undefined {
    return Object.entries(pinnedImages).find(([, pin]) => renderedForms(pin).includes(reference));
}

/** How a lock is out of step with components/versions.ts: what the lock lacks, names beyond the pins, a contradicted record. */
function lockProblems(lock: ImageLock): string[] {
    const problems: string[] = [];
    const compare = (kind: "images" | "charts", pinned: [string, string | undefined][]) => {
        const names = new Set(pinned.map(([reference]) => reference));
        for (const [reference, recorded] of pinned) {
            const entry = lock[kind][reference];
            if (!entry) problems.push(`no entry for ${reference}`);
            else if (recorded && entry.digest !== recorded) problems.push(`${reference} locked to ${entry.digest}, the upstream record names ${recorded}`);
        }
        for (const reference of Object.keys(lock[kind])) if (!names.has(reference)) problems.push(`an entry for ${reference}, which nothing pins`);
    };
    compare("images", (Object.values(pinnedImages) as ImagePin[]).map((pin) => [tagReference(pin), pin.digest]));
    compare("charts", (Object.values(charts) as ChartPin[]).flatMap((pin) => (ociChartReference(pin) ? [[ociChartReference(pin)!, undefined] as [string, undefined]] : [])));
    return problems;
}

describe("image and chart pins", () => {
    for (const stack of allStacks) {
        it(`stack ${stack}: every image set is a pin of components/versions.ts, with its locked digest where the lock has one`, async () => {
            const rendered = await renderStack(stack);
            const found = rendered.resources.flatMap((r) => imagesIn(plain(r.inputs), `${r.type} ${r.name}`));
            assert.ok(found.length > 0);
            for (const { where, reference } of found) {
                const pin = pinOf(reference);
                assert.ok(pin, `${where}: ${reference} is no pin of components/versions.ts (or lacks the lock's digest)`);
            }
        });
    }

    it("set the CloudNativePG PostgreSQL image by digest, with the tag its webhook needs to read the version", async () => {
        const rendered = await renderStack("cnpg");
        const clusters = rendered.resources.filter((r) => r.type === "kubernetes:postgresql.cnpg.io/v1:Cluster");
        assert.ok(clusters.length > 0);
        for (const cluster of clusters) {
            const imageName: string = plain(cluster.inputs).spec.imageName;
            assert.match(imageName, /^ghcr\.io\/cloudnative-pg\/postgresql:18\.4-\d{12}-system-trixie@sha256:[0-9a-f]{64}$/);
            assert.equal(cnpgImageNameError(imageName), undefined);
            const reference = cnpgImageReference(imageName);
            assert.equal(`sha256:${reference.digest}`, pinnedImages.cnpgPostgres.digest);
            assert.deepEqual(cnpgVersionFromTag(reference.tag), { major: 18, minor: 4 });
        }
        // The model refuses what the operator refuses: the digest alone, or no tag at all.
        assert.match(cnpgImageNameError(`ghcr.io/cloudnative-pg/postgresql@${pinnedImages.cnpgPostgres.digest}`) ?? "", /just the image sha/);
        assert.match(cnpgImageNameError("ghcr.io/cloudnative-pg/postgresql") ?? "", /'latest'/);
    });

    it("lock exactly the pinned image tags and OCI chart versions (a tag changed without `scripts/run lock-images` fails here)", () => {
        assert.deepEqual(lockProblems(imageLock), []);
        // The same check, fed a lock out of step with the pins: a re-tagged image, an entry left for an old tag, a
        // chart version changed, a lock that contradicts the upstream record.
        const stale = structuredClone(imageLock);
        const orthanc = tagReference(pinnedImages.orthanc);
        stale.images[orthanc.replace(/:[^:]+$/, ":26.7.0")] = stale.images[orthanc];
        delete stale.images[orthanc];
        const chart = ociChartReference(charts.postgresqlHa)!;
        stale.charts[chart.replace(/:[^:]+$/, ":16.3.1")] = stale.charts[chart];
        delete stale.charts[chart];
        stale.images[tagReference(pinnedImages.cnpgPostgres)].digest = `sha256:${"0".repeat(64)}`;
        assert.deepEqual(lockProblems(stale), [
            `no entry for ${orthanc}`,
            `${tagReference(pinnedImages.cnpgPostgres)} locked to sha256:${"0".repeat(64)}, the upstream record names ${pinnedImages.cnpgPostgres.digest}`,
            `an entry for ${orthanc.replace(/:[^:]+$/, ":26.7.0")}, which nothing pins`,
            `no entry for ${chart}`,
            `an entry for ${chart.replace(/:[^:]+$/, ":16.3.1")}, which nothing pins`,
        ]);
        // And rendering refuses such a lock rather than rendering a pin by tag.
        assert.throws(() => lockedDigest(pinnedImages.orthanc, stale), /image-lock\.json has no entry for docker\.io\/orthancteam\/orthanc:26\.8\.1 .*scripts\/run lock-images/);
        assert.throws(() => lockedDigest(pinnedImages.cnpgPostgres, stale), /the upstream record names sha256:42708a75/);
        assert.throws(() => chartReference(charts.postgresqlHa, stale), /no entry for the chart oci:\/\/registry-1\.docker\.io\/bitnamicharts\/postgresql-ha:16\.3\.2/);
    });

    it("render a locked digest: images as tag@digest, the OCI chart as oci://...@sha256: (Helm 3.20.2 checks it against the version's tag)", () => {
        const digest = `sha256:${"ab".repeat(32)}`; // made up for this test: no registry's answer
        const locked = structuredClone(imageLock);
        locked.images[tagReference(pinnedImages.orthanc)].digest = digest;
        locked.charts[ociChartReference(charts.postgresqlHa)!].digest = digest;
        assert.equal(lockedDigest(pinnedImages.orthanc, locked), digest);
        assert.equal(chartReference(charts.postgresqlHa, locked), `oci://registry-1.docker.io/bitnamicharts/postgresql-ha@${digest}`);
        assert.equal(chartReference(charts.kiali, locked), "kiali-server", "an HTTP repository's chart keeps its name");
        const withoutDigest = structuredClone(imageLock);
        withoutDigest.charts[ociChartReference(charts.postgresqlHa)!].digest = null;
        assert.equal(chartReference(charts.postgresqlHa, withoutDigest), charts.postgresqlHa.chart);
        // The three forms the components render read the program's own lock (the stacks above are already rendered).
        const entries = [pinnedImages.orthanc, pinnedImages.pgpool, pinnedImages.kiali].map((pin) => imageLock.images[tagReference(pin)]);
        const saved = entries.map((entry) => entry.digest);
        try {
            for (const entry of entries) entry.digest = digest;
            assert.equal(imageReference(pinnedImages.orthanc), `docker.io/orthancteam/orthanc:26.8.1@${digest}`);
            assert.deepEqual(bitnamiImageValues(pinnedImages.pgpool), { ...pinnedImages.pgpool, digest });
            assert.deepEqual(kialiImageValues(pinnedImages.kiali), { image_name: "quay.io/kiali/kiali", image_digest: "sha256", image_version: "ab".repeat(32) });
        } finally {
            entries.forEach((entry, i) => (entry.digest = saved[i]));
        }
    });

    it("name in the README every pin the committed lock holds without a digest, with the lock's reason", () => {
        const readme = fs.readFileSync(path.join(repoRoot, "README.md"), "utf8");
        const start = readme.indexOf("\n## Versions");
        const versions = readme.slice(start, readme.indexOf("\n## ", start + 1)).replace(/\s+/g, " ");
        for (const pin of Object.values(pinnedImages) as ImagePin[]) {
            const entry = imageLock.images[tagReference(pin)];
            if (entry.digest) {
                assert.match(entry.digest, digestPattern, tagReference(pin));
            } else {
                assert.ok(entry.error, `${tagReference(pin)}: no digest and no reason`);
                assert.ok(versions.includes(`${pin.repository}:${pin.tag}`), `README "Versions" does not name ${pin.repository}:${pin.tag} as not yet locked`);
            }
        }
        for (const [reference, entry] of Object.entries(imageLock.charts)) {
            if (entry.digest) assert.match(entry.digest, digestPattern, reference);
            else assert.ok(entry.error && versions.includes(reference.replace(/^oci:\/\/[^/]+\//, "").replace(":", " ")), `README "Versions" does not name ${reference} as not yet locked`);
        }
        assert.match(versions, /scripts\/run lock-images/);
        assert.match(versions, /KORTHWEB_ALLOW_UNLOCKED_IMAGES=1/);
    });

    it("give every image the digest an upstream record names, or list it on imagesWithoutDigest, with a reason the README repeats", () => {
        const readme = fs.readFileSync(path.join(repoRoot, "README.md"), "utf8");
        const start = readme.indexOf("\n## Versions");
        const end = readme.indexOf("\n## ", start + 1);
        const versions = readme.slice(start, end < 0 ? undefined : end).replace(/\s+/g, " ");
        assert.ok(start >= 0, "README has a Versions section");
        for (const [name, pin] of Object.entries(pinnedImages) as [keyof typeof pinnedImages, ImagePin][]) {
            const reason = imagesWithoutDigest[name];
            if (pin.digest) {
                assert.match(pin.digest, digestPattern, `${name}'s digest`);
                assert.equal(reason, undefined, `${name} has a digest and is listed as having none`);
            } else {
                assert.ok(reason, `${name} (${imageReference(pin)}) has no digest and is not on imagesWithoutDigest`);
                assert.ok(versions.includes(`${pin.repository}:${pin.tag}`), `README "Versions" does not name ${pin.repository}:${pin.tag} as pinned by tag alone`);
            }
        }
        for (const [name, pin] of Object.entries(charts) as [keyof typeof charts, ChartPin][]) {
            const reason = chartsWithoutDigest[name];
            if (pin.archiveSha256) {
                assert.match(pin.archiveSha256, /^[0-9a-f]{64}$/, `${name}'s archive digest`);
                assert.equal(reason, undefined, `${name} has a digest and is listed as having none`);
            } else {
                assert.ok(reason, `chart ${name} has no archive digest and is not on chartsWithoutDigest`);
                assert.ok(versions.includes(`${pin.chart.split("/").pop()} ${pin.version}`), `README "Versions" does not name ${pin.chart} ${pin.version}`);
            }
        }
    });

    it("record each digest as the upstream facts found it (regenerate tests/upstream/imagePinFacts.json after a change)", () => {
        const facts = imagePinFacts as unknown as {
            images: Record<string, { image: string; withoutDigest?: string; evidence: { repository: string; path?: string; finding: string }[] }>;
            charts: Record<string, { chart: string; version: string; archiveSha256?: string; withoutDigest?: string; evidence?: { path?: string; finding: string }[] }>;
        };
        for (const [name, pin] of Object.entries(pinnedImages) as [keyof typeof pinnedImages, ImagePin][]) {
            assert.equal(facts.images[name].image, recordedReference(pin));
            assert.equal(facts.images[name].withoutDigest, imagesWithoutDigest[name], `${name}: the facts checked another reason`);
            if (pin.digest) {
                assert.ok(
                    facts.images[name].evidence.some((e) => e.path && e.finding.includes(`@${pin.digest}`)),
                    `${name}: no upstream file recorded naming ${pin.digest}`,
                );
            }
        }
        assert.deepEqual(Object.keys(facts.charts).sort(), Object.keys(charts).sort());
        for (const [name, pin] of Object.entries(charts) as [keyof typeof charts, ChartPin][]) {
            const fact = facts.charts[name];
            assert.deepEqual([fact.chart, fact.version, fact.archiveSha256, fact.withoutDigest], [pin.chart, pin.version, pin.archiveSha256, chartsWithoutDigest[name]]);
            if (pin.archiveSha256) assert.ok(fact.evidence?.some((e) => e.path?.endsWith("index.yaml") && e.finding.includes(pin.archiveSha256!)));
        }
    });
});

describe("the Bitnami chart's image check (tests/upstream/bitnamiImageCheck.ts)", () => {
    const facts = imagePinFacts.bitnamiChartImages;
    const check = (values: Record<string, unknown>) =>
        bitnamiImageCheck({
            chartImages: facts.images,
            images: checkedImages(values, facts.checkedValues),
            allowInsecureImages: ((values.global as any)?.security as any)?.allowInsecureImages === true,
        });

    it("passes the program's values without allowInsecureImages: bitnamilegacy replacements only warn", async () => {
        const rendered = await renderStack("dev");
        const postgres = releases(rendered).filter((r) => r.inputs.chart === chartReference(charts.postgresqlHa));
        assert.ok(postgres.length > 0);
        for (const release of postgres) {
            const values = plain(release.inputs.values) as Record<string, any>;
            assert.notEqual(values.global?.security?.allowInsecureImages, true, `${release.name}: allowInsecureImages is set; the chart's check would pass without it`);
            assert.equal(check(values), "warns", `${release.name}: the chart refuses the images`);
        }
    });

    it("is a model that refuses an image from elsewhere without the flag, and admits the chart's own images", () => {
        const image = (registry: string, repository: string, tag: string) => ({ registry, repository, tag });
        const own = { postgresql: { image: image("docker.io", "bitnami/postgresql-repmgr", "17.6.0-debian-12-r2") } };
        const paths = ["postgresql.image"];
        const run = (values: Record<string, unknown>, allowInsecureImages = false) =>
            bitnamiImageCheck({ chartImages: facts.images, images: checkedImages(values, paths), allowInsecureImages });
        assert.equal(run(own), "passes");
        const forked = { postgresql: { image: image("docker.io", "someone/postgresql-repmgr", "17.6.0-debian-12-r2") } };
        assert.equal(run(forked), "fails");
        assert.equal(run(forked, true), "warns");
        assert.equal(run({ postgresql: { image: image("registry.example", "bitnamilegacy/postgresql-repmgr", "17.6.0-debian-12-r2") } }), "fails");
    });
});

describe("the Pulumi CLI download", () => {
    const script = path.join(repoRoot, "scripts", "install-pulumi-cli");

    it("runs Pulumi's install script only at the commit and sha256 pinned, as the upstream facts recorded them", () => {
        const text = fs.readFileSync(script, "utf8");
        const facts = imagePinFacts.pulumiInstallScript;
        assert.match(text, new RegExp(`^install_script_commit=${facts.ref}$`, "m"));
        assert.match(text, new RegExp(`^install_script_sha256=${facts.sha256}$`, "m"));
        for (const workflow of fs.readdirSync(path.join(repoRoot, ".github", "workflows"))) {
            const yaml = fs.readFileSync(path.join(repoRoot, ".github", "workflows", workflow), "utf8");
            assert.doesNotMatch(yaml, /\|\s*(ba)?sh\b/, `${workflow} pipes a download into a shell`);
        }
    });
});
