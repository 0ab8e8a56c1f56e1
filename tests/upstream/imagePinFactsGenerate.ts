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
 * recorded. Mirrors used: aws/aws-cli, orthanc-server/orthanc-builder, kiali/kiali, bitnami/charts,
 * cloudnative-pg/cloudnative-pg.
 */
import { execFileSync } from "child_process";
import { writeFileSync } from "fs";
import * as path from "path";
import { charts, ImagePin, pinnedImages } from "../../components/versions";

const mirrors = process.argv[2];
if (!mirrors) throw new Error("usage: imagePinFactsGenerate.ts <directory holding owner+name/repo mirrors>");

const git = (repo: string, ...args: string[]) =>
    execFileSync("git", [`--git-dir=${path.join(mirrors, repo.replace("/", "+"), "repo")}`, ...args], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
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
        const reference = `${pin.registry}/${pin.repository}:${pin.tag}`;
        expect(show(repo, operator, "pkg/versions/versions.go").includes(`DefaultImageName = "${reference}"`), `${operator}'s default image is ${reference}`);
        return [{ repository: repo, ref: operator, path: "pkg/versions/versions.go", finding: `DefaultImageName = "${reference}": the image operator ${operator} runs by default` }];
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
    return [
        { repository: repo, ref, path: "bitnami/postgresql-ha/Chart.yaml", finding: `annotations.images: docker.io/bitnami/${name}:${pin.tag}, the build this chart release runs` },
        {
            repository: "shared/NOTES.md",
            ref: "Charts",
            finding: `since 28 Aug 2025 Bitnami serves these builds as docker.io/bitnamilegacy/${name} with the same tags (seen by the project; no registry is reachable here to check)`,
        },
    ];
}

const images = Object.fromEntries(
    Object.entries(pinnedImages).map(([key, pin]) => [
        key,
        { image: `${pin.registry}/${pin.repository}:${pin.tag}`, evidence: evidenceFor[key as keyof typeof pinnedImages](pin) },
    ]),
);
writeFileSync(path.join(__dirname, "imagePinFacts.json"), `${JSON.stringify({ images }, null, 1)}\n`);
console.log(Object.values(images).map((i) => i.image).join("\n"));
