/**
 * Regenerates tests/upstream/imagePinFacts.json: for every image components/versions.ts pins, the upstream evidence
 * that the tag was built and published under that name, read from the projects' own repositories (mirrors brought by
 * the search tool's `fetch`, bare git directories). No registry is reachable here, so the evidence is the release's
 * source: a git tag, and the release workflow or documentation that names the image tag after it. Run after changing
 * a pin:
 *
 *     node -r ts-node/register/transpile-only tests/upstream/imagePinFactsGenerate.ts /work/.mirror
 *
 * Each check below reads the repository and throws when the evidence is missing, so a pin without it cannot be
 * recorded. Mirrors used: aws/aws-cli, orthanc-server/orthanc-builder, kiali/kiali, kiali/kiali-operator,
 * kiali/helm-charts, bitnami/charts, cloudnative-pg/cloudnative-pg, cloudnative-pg/artifacts, cloudnative-pg/charts,
 * prometheus-community/helm-charts, pulumi/get.pulumi.com, nodejs/docker-node, codecentric/helm-charts.
 *
 * Besides the tags it records, for digests: the upstream file that names each pinned image digest; for the images on
 * `imagesWithoutDigest`, that the repositories named there still name none (so a digest found later is not missed);
 * for each chart's `archiveSha256`, the repository index.yaml entry that records it; the postgresql-ha chart's own
 * image list (the input of its image check, tests/upstream/bitnamiImageCheck.ts); and the Pulumi install script's
 * digest at the commit scripts/install-pulumi-cli pins.
 */
import { execFileSync } from "child_process";
import { createHash } from "crypto";
import { readFileSync, writeFileSync } from "fs";
import * as path from "path";
import { parse } from "yaml";
import { ChartPin, charts, chartsWithoutDigest, ImagePin, imagesWithoutDigest, pinnedImages, recordedReference } from "../../components/versions";

const mirrors = process.argv[2];
if (!mirrors) throw new Error("usage: imagePinFactsGenerate.ts <directory holding owner+name/repo mirrors>");

const gitDir = (repo: string) => `--git-dir=${path.join(mirrors, repo.replace("/", "+"), "repo")}`;
const git = (repo: string, ...args: string[]) => execFileSync("git", [gitDir(repo), ...args], { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
const blobSha256 = (repo: string, ref: string, file: string) =>
    createHash("sha256").update(execFileSync("git", [gitDir(repo), "cat-file", "blob", `${ref}:${file}`], { maxBuffer: 256 * 1024 * 1024 })).digest("hex");
const commitOf = (repo: string, ref: string) => git(repo, "rev-parse", `${ref}^{commit}`).trim();
const show = (repo: string, ref: string, file: string) => git(repo, "show", `${ref}:${file}`);
const tagDate = (repo: string, tag: string) => git(repo, "log", "-1", "--format=%cs", `refs/tags/${tag}`).trim();
const tags = (repo: string) => git(repo, "tag").split("\n").filter(Boolean);

interface Evidence {
    repository: string;
    ref: string;
    path?: string;
    finding: string;
}

function expect(condition: boolean, what: string): void {
    if (!condition) throw new Error(`no evidence: ${what}`);
}

function requireTag(repo: string, tag: string): string {
    expect(tags(repo).includes(tag), `${repo} has no tag ${tag}`);
    return tagDate(repo, tag);
}

/** Newest x.y.z tag of a repository, for the record (what "newest" meant when the facts were generated). */
function newestVersionTag(repo: string): string {
    const versions = tags(repo).filter((t) => /^\d+\.\d+\.\d+$/.test(t));
    return versions.sort((a, b) => a.split(".").map(Number).reduce((d, n, i) => d || n - Number(b.split(".")[i]), 0)).pop()!;
}

const evidenceFor: Record<keyof typeof pinnedImages, (pin: ImagePin) => Evidence[]> = {
    awsCli: (pin) => {
        const repo = "aws/aws-cli";
        const date = requireTag(repo, pin.tag);
        expect(show(repo, pin.tag, "docker/Dockerfile").includes('ENTRYPOINT ["/usr/local/bin/aws"]'), "the Docker build at the tag");
        return [
            { repository: repo, ref: pin.tag, finding: `release tag ${pin.tag} (${date}); newest release tag in the mirror: ${newestVersionTag(repo)}` },
            { repository: repo, ref: pin.tag, path: "docker/Dockerfile", finding: "the image's build (Amazon Linux 2023, ENTRYPOINT aws) is part of the release" },
            {
                repository: "docs.aws.amazon.com",
                ref: "cli/latest/userguide/getting-started-docker.html",
                finding: '"Use specific versions and tags": the amazon/aws-cli images are tagged with the CLI version they carry (not checked by the generator)',
            },
        ];
    },
    orthanc: (pin) => {
        const repo = "orthanc-server/orthanc-builder";
        const date = requireTag(repo, pin.tag);
        const workflow = show(repo, pin.tag, ".github/workflows/build-all-dockers.yml");
        expect(workflow.includes("pushTag=${{ inputs.current_branch_tag }}") && workflow.includes("repository: orthancteam/orthanc"), "the workflow pushing the tag");
        return [
            { repository: repo, ref: pin.tag, finding: `git tag ${pin.tag} (${date})` },
            {
                repository: repo,
                ref: pin.tag,
                path: ".github/workflows/build-all-dockers.yml",
                finding: "for a git tag, the stable normal image's manifest is published as orthancteam/orthanc:<tag> (publish-manifest pushTag=current_branch_tag)",
            },
        ];
    },
    orthancFull: (pin) => {
        const repo = "orthanc-server/orthanc-builder";
        const tag = pin.tag.replace(/-full$/, "");
        const date = requireTag(repo, tag);
        const workflow = show(repo, tag, ".github/workflows/build-all-dockers.yml");
        expect(workflow.includes("image=full") && workflow.includes("pushTag=${{ inputs.current_branch_tag }}-full"), "the workflow pushing the -full tag");
        return [
            { repository: repo, ref: tag, finding: `git tag ${tag} (${date})` },
            {
                repository: repo,
                ref: tag,
                path: ".github/workflows/build-all-dockers.yml",
                finding: "for a git tag, the full image's manifest is published as orthancteam/orthanc:<tag>-full (publish-manifest image=full pushTag=current_branch_tag-full)",
            },
        ];
    },
    kiali: (pin) => {
        const repo = "kiali/kiali";
        const date = requireTag(repo, pin.tag);
        expect(show(repo, pin.tag, "Makefile").includes(`VERSION ?= ${pin.tag}`), "the Makefile's version at the tag");
        expect(show(repo, pin.tag, ".github/workflows/release.yml").includes('QUAY_TAG="$QUAY_REPO:$RELEASE_VERSION'), "the release workflow's Quay tag");
        return [
            { repository: repo, ref: pin.tag, path: "Makefile", finding: `git tag ${pin.tag} (${date}); VERSION ?= ${pin.tag}` },
            { repository: repo, ref: pin.tag, path: ".github/workflows/release.yml", finding: "releases push quay.io/kiali/kiali:<VERSION from the Makefile>" },
        ];
    },
    cnpgPostgres: (pin) => {
        const repo = "cloudnative-pg/cloudnative-pg";
        const operator = "v1.30.0";
        const versions = show(repo, operator, "pkg/versions/versions.go");
        const defaultImage = /DefaultImageName = "([^"]+)"/.exec(versions)?.[1] ?? "";
        const defaultMinor = /:(\d+\.\d+)-system-trixie$/.exec(defaultImage)?.[1];
        expect(defaultMinor !== undefined && pin.tag.startsWith(`${defaultMinor}-`) && pin.tag.endsWith("-system-trixie"), `${pin.tag} is a build of ${operator}'s default ${defaultImage}`);
        expect(show(repo, operator, "api/v1/cluster_types.go").includes("`<image>:<tag>@sha256:<digestValue>`"), "the Cluster's imageName takes a digest");
        return [
            { repository: repo, ref: operator, path: "pkg/versions/versions.go", finding: `DefaultImageName = "${defaultImage}": the image operator ${operator} runs by default; the pin is a dated build of it` },
            { repository: repo, ref: operator, path: "api/v1/cluster_types.go", finding: "Cluster.spec.imageName takes <image>:<tag>@sha256:<digestValue>" },
            catalogEvidence(pin),
        ];
    },
    node: (pin) => {
        const repo = "nodejs/docker-node";
        const ref = commitOf(repo, "HEAD");
        const [version, variant] = pin.tag.split(/-(.*)/s);
        const major = version.split(".")[0];
        const dockerfile = `${major}/${variant}/Dockerfile`;
        const text = show(repo, ref, dockerfile);
        expect(text.includes(`ENV NODE_VERSION=${version}`) && text.includes("adduser -u 1000"), `${dockerfile} builds Node ${version} with the node user (uid 1000)`);
        const line = (JSON.parse(show(repo, ref, "versions.json")) as Record<string, { lts?: string; end?: string }>)[major];
        expect(line?.lts !== undefined, `versions.json names Node ${major} an LTS line`);
        return [
            { repository: repo, ref, path: dockerfile, finding: `NODE_VERSION=${version}, user node uid 1000 (commit of ${git(repo, "log", "-1", "--format=%cs", ref).trim()})` },
            { repository: repo, ref, path: "versions.json", finding: `Node ${major}: LTS from ${line.lts}, end of life ${line.end}` },
        ];
    },
    versitygw: (pin) => {
        const repo = "versity/versitygw";
        const date = requireTag(repo, pin.tag);
        const workflow = show(repo, pin.tag, ".github/workflows/docker.yml");
        expect(workflow.includes("types: [published]") && workflow.includes("ghcr.io/${{ github.repository }}"), "the docker workflow pushing releases to ghcr.io");
        return [
            { repository: repo, ref: pin.tag, finding: `release tag ${pin.tag} (${date})` },
            {
                repository: repo,
                ref: pin.tag,
                path: ".github/workflows/docker.yml",
                finding: "a published release is pushed as ghcr.io/versity/versitygw:<release tag> (docker/metadata-action's default tag for the release's ref)",
            },
        ];
    },
    keycloak: (pin) => {
        const repo = "codecentric/helm-charts";
        const ref = `keycloakx-${charts.keycloakx.version}`;
        const values = show(repo, ref, "charts/keycloakx/values.yaml");
        const chart = show(repo, ref, "charts/keycloakx/Chart.yaml");
        expect(values.includes(`repository: ${pin.registry}/${pin.repository}`) && values.includes(`tag: "${pin.tag}"`) && chart.includes(`appVersion: ${pin.tag}`), `${ref} runs ${pin.registry}/${pin.repository}:${pin.tag}`);
        return [
            {
                repository: repo,
                ref,
                path: "charts/keycloakx/values.yaml",
                finding: `image.repository ${pin.registry}/${pin.repository}, image.tag "${pin.tag}", image.digest "" (Chart.yaml appVersion ${pin.tag})`,
            },
        ];
    },
    postgresqlRepmgr: (pin) => bitnami(pin),
    pgpool: (pin) => bitnami(pin),
    postgresExporter: (pin) => bitnami(pin),
    osShell: (pin) => bitnami(pin),
};

/** The Bitnami images are those the pinned postgresql-ha chart release names, republished under bitnamilegacy. */
function bitnami(pin: ImagePin): Evidence[] {
    const repo = "bitnami/charts";
    const ref = `postgresql-ha/${charts.postgresqlHa.version}`;
    const name = pin.repository.split("/")[1];
    const chart = show(repo, ref, "bitnami/postgresql-ha/Chart.yaml");
    expect(chart.includes(`image: docker.io/bitnami/${name}:${pin.tag}`), `${ref} Chart.yaml names docker.io/bitnami/${name}:${pin.tag}`);
    expect(!/sha256:[0-9a-f]{64}/.test(chart), `${ref} Chart.yaml names no digest`);
    return [
        { repository: repo, ref, path: "bitnami/postgresql-ha/Chart.yaml", finding: `annotations.images: docker.io/bitnami/${name}:${pin.tag}, the build this chart release runs` },
        {
            repository: "shared/NOTES.md",
            ref: "Charts",
            finding: `since 28 Aug 2025 Bitnami serves these builds as docker.io/bitnamilegacy/${name} with the same tags (seen by the project; no registry is reachable here to check)`,
        },
    ];
}

/**
 * CloudNativePG's image catalog (cloudnative-pg/artifacts, image-catalogs/catalog-system-trixie.yaml, signed beside it
 * in .sigstore.json): the newest commit whose catalog lists exactly `registry/repository:tag@digest`.
 */
function catalogEvidence(pin: ImagePin): Evidence {
    const repo = "cloudnative-pg/artifacts";
    const file = "image-catalogs/catalog-system-trixie.yaml";
    for (const commit of git(repo, "log", "--format=%H", "main", "--", file).split("\n").filter(Boolean)) {
        const catalog = parse(show(repo, commit, file)) as { kind: string; spec: { images: { major: number; image: string }[] } };
        const entry = catalog.spec.images.find((i) => i.image === recordedReference(pin));
        if (catalog.kind === "ClusterImageCatalog" && entry) {
            git(repo, "cat-file", "-e", `${commit}:${file}.sigstore.json`);
            const date = git(repo, "log", "-1", "--format=%cs", commit).trim();
            return { repository: repo, ref: commit, path: file, finding: `ClusterImageCatalog (${date}, signed in ${file}.sigstore.json) lists major ${entry.major}: ${entry.image}` };
        }
    }
    throw new Error(`no evidence: no ${file} in ${repo} lists ${recordedReference(pin)}`);
}

/** Where each image without a digest was looked for: the repositories whose files would record one. */
const searchedFor: Partial<Record<keyof typeof pinnedImages, [string, string][]>> = {
    postgresqlRepmgr: [["bitnami/charts", `postgresql-ha/${charts.postgresqlHa.version}`]],
    pgpool: [["bitnami/charts", `postgresql-ha/${charts.postgresqlHa.version}`]],
    postgresExporter: [["bitnami/charts", `postgresql-ha/${charts.postgresqlHa.version}`]],
    osShell: [["bitnami/charts", `postgresql-ha/${charts.postgresqlHa.version}`]],
    awsCli: [["aws/aws-cli", pinnedImages.awsCli.tag]],
    orthanc: [["orthanc-server/orthanc-builder", pinnedImages.orthanc.tag]],
    orthancFull: [["orthanc-server/orthanc-builder", pinnedImages.orthanc.tag]],
    kiali: [["kiali/kiali", pinnedImages.kiali.tag], ["kiali/kiali-operator", pinnedImages.kiali.tag]],
    node: [["nodejs/docker-node", "HEAD"]],
    versitygw: [["versity/versitygw", pinnedImages.versitygw.tag]],
    keycloak: [["codecentric/helm-charts", `keycloakx-${charts.keycloakx.version}`]],
};

function noDigestFound(name: keyof typeof pinnedImages, pin: ImagePin): Evidence[] {
    const places = searchedFor[name];
    if (!places) throw new Error(`${name}: say where its digest was looked for`);
    const image = pin.repository.split("/").pop()!;
    return places.map(([repo, ref]) => {
        // `git grep` exits 1 when nothing matches: that is the finding.
        let hits = "";
        try {
            hits = git(repo, "grep", "-n", "-E", `${image}(:[^ @"']*)?@sha256:[0-9a-f]{64}`, ref);
        } catch {
            hits = "";
        }
        expect(hits === "", `${repo} at ${ref} names a digest for ${image}: ${hits.split("\n")[0]}`);
        return { repository: repo, ref, finding: `no file names ${image}@sha256:<digest> (git grep at ${commitOf(repo, ref).slice(0, 12)})` };
    });
}

const images = Object.fromEntries(
    Object.entries(pinnedImages).map(([key, pin]) => {
        const name = key as keyof typeof pinnedImages;
        const reason = imagesWithoutDigest[name];
        expect((pin as ImagePin).digest === undefined ? reason !== undefined : reason === undefined, `${name}: a digest, or a reason on imagesWithoutDigest`);
        return [
            key,
            {
                image: recordedReference(pin),
                evidence: [...evidenceFor[name](pin), ...(reason ? noDigestFound(name, pin) : [])],
                ...(reason ? { withoutDigest: reason } : {}),
            },
        ];
    }),
);

/** The Helm repository index each chart's archive digest is read from: a GitHub-stored copy of the served index. */
const chartIndexes: Record<string, { repository: string; ref: string; path: string; archives?: string }> = {
    "https://kiali.org/helm-charts": { repository: "kiali/helm-charts", ref: "master", path: "docs/index.yaml", archives: "docs" },
    "https://cloudnative-pg.github.io/charts": { repository: "cloudnative-pg/charts", ref: "gh-pages", path: "index.yaml" },
    "https://codecentric.github.io/helm-charts": { repository: "codecentric/helm-charts", ref: "gh-pages", path: "index.yaml" },
};

interface IndexEntry {
    version: string;
    digest: string;
    urls: string[];
    created: string;
}

function chartEvidence(pin: ChartPin): Evidence[] {
    const source = chartIndexes[pin.repo ?? ""];
    expect(source !== undefined, `${pin.chart}: no stored index for ${pin.repo}`);
    const commit = commitOf(source.repository, source.ref);
    const index = parse(show(source.repository, commit, source.path), { maxAliasCount: -1 }) as { entries: Record<string, IndexEntry[]> };
    const entry = (index.entries[pin.chart] ?? []).find((e) => e.version === pin.version);
    expect(entry?.digest === pin.archiveSha256, `${source.repository} ${source.path} records ${pin.chart} ${pin.version} with digest ${entry?.digest}, not ${pin.archiveSha256}`);
    const evidence: Evidence[] = [
        { repository: source.repository, ref: commit, path: source.path, finding: `entries.${pin.chart}[version ${pin.version}].digest = ${entry!.digest} (created ${entry!.created}; ${entry!.urls[0]})` },
    ];
    if (source.archives) {
        const archive = `${source.archives}/${pin.chart}-${pin.version}.tgz`;
        expect(blobSha256(source.repository, commit, archive) === pin.archiveSha256, `${archive} hashes to the index's digest`);
        evidence.push({ repository: source.repository, ref: commit, path: archive, finding: `the archive served from the same branch hashes to ${pin.archiveSha256}` });
    }
    return evidence;
}

const chartFacts = Object.fromEntries(
    Object.entries(charts).map(([key, pin]: [string, ChartPin]) => {
        const reason = chartsWithoutDigest[key as keyof typeof charts];
        expect(pin.archiveSha256 === undefined ? reason !== undefined : reason === undefined, `chart ${key}: a digest, or a reason on chartsWithoutDigest`);
        if (key === "kubePrometheusStack") {
            // The reason given: the stored gh-pages index has no content to read.
            let readable = true;
            try {
                git("prometheus-community/helm-charts", "cat-file", "-e", "gh-pages:index.yaml");
            } catch {
                readable = false;
            }
            expect(!readable, "prometheus-community/helm-charts gh-pages:index.yaml is readable now: record kube-prometheus-stack's digest");
        }
        return [key, { chart: pin.chart, version: pin.version, ...(reason ? { withoutDigest: reason } : { archiveSha256: pin.archiveSha256, evidence: chartEvidence(pin) }) }];
    }),
);

/** postgresql-ha's `annotations.images`: what its common library's image check compares the values' images with. */
function bitnamiChartImages() {
    const repo = "bitnami/charts";
    const ref = `postgresql-ha/${charts.postgresqlHa.version}`;
    const chart = parse(show(repo, ref, "bitnami/postgresql-ha/Chart.yaml")) as { annotations: { images: string }; dependencies: { name: string; version: string }[] };
    const common = parse(show(repo, ref, "bitnami/common/Chart.yaml")) as { version: string };
    const check = show(repo, ref, "bitnami/common/templates/_errors.tpl");
    expect(check.includes('define "common.errors.insecureImages"') && check.includes('contains "docker.io/bitnamilegacy/"'), "common's image check knows bitnamilegacy");
    // The values whose images the chart checks, from the one place it calls the check.
    const notes = show(repo, ref, "bitnami/postgresql-ha/templates/NOTES.txt");
    const call = /include "common\.errors\.insecureImages" \(dict "images" \(list ([^)]*)\)/.exec(notes);
    expect(call !== null, "NOTES.txt calls common.errors.insecureImages");
    const checkedValues = call![1].split(/\s+/).map((v) => v.replace(/^\.Values\./, ""));
    return {
        repository: repo,
        ref,
        path: "bitnami/postgresql-ha/Chart.yaml",
        commonVersion: common.version,
        checkedIn: "bitnami/postgresql-ha/templates/NOTES.txt",
        checkedValues,
        images: chart.annotations.images,
    };
}

/** The install script scripts/install-pulumi-cli fetches, by commit, and the sha256 it must have. */
function pulumiInstallScript() {
    const script = readFileSync(path.join(__dirname, "..", "..", "scripts", "install-pulumi-cli"), "utf8");
    const commit = /^install_script_commit=([0-9a-f]{40})$/m.exec(script)?.[1];
    const sha256 = /^install_script_sha256=([0-9a-f]{64})$/m.exec(script)?.[1];
    expect(commit !== undefined && sha256 !== undefined, "scripts/install-pulumi-cli pins a commit and a sha256");
    const repo = "pulumi/get.pulumi.com";
    const actual = blobSha256(repo, commit!, "dist/install.sh");
    expect(actual === sha256, `dist/install.sh at ${commit} hashes to ${actual}, not ${sha256}`);
    const date = git(repo, "log", "-1", "--format=%cs", commit!).trim();
    return { repository: repo, ref: commit, path: "dist/install.sh", sha256, finding: `Pulumi's install script as committed ${date}; it downloads pulumi-v<version>-<os>-<arch>.tar.gz from the GitHub release and checks no checksum` };
}

writeFileSync(
    path.join(__dirname, "imagePinFacts.json"),
    `${JSON.stringify({ images, charts: chartFacts, bitnamiChartImages: bitnamiChartImages(), pulumiInstallScript: pulumiInstallScript() }, null, 1)}\n`,
);
console.log(Object.values(images).map((i) => i.image).join("\n"));
