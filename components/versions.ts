/**
 * Every version korthweb pins: Helm charts, their repositories and the container images we override.
 *
 * Upgrades happen here and nowhere else, so that a reviewer sees the whole change in one diff and the tests
 * (which read these constants) follow automatically.
 */
import imageLockFile from "./image-lock.json";

export interface ChartPin {
    /** Chart name inside its repository. */
    chart: string;
    /** Exact chart version: never a range, so a re-run installs byte-identical templates. */
    version: string;
    /** Helm repository URL, or undefined when `chart` is a full `oci://` reference. */
    repo?: string;
    /**
     * sha256 of the chart archive (.tgz) as the repository's index.yaml records it (tests/upstream/imagePinFacts.json
     * cites the index). A record to compare a download with, not a check Helm makes: Helm v3.20's repository
     * download never compares a chart with the index's digest (pkg/downloader/chart_downloader.go). Absent only for
     * the charts on `chartsWithoutDigest`.
     */
    archiveSha256?: string;
}

export interface ImagePin {
    registry: string;
    repository: string;
    /** What the image was published as, for people; with a digest the container runtime pulls by the digest alone. */
    tag: string;
    /**
     * The image's manifest digest, `sha256:<64 hex>`, as the upstream record cited in tests/upstream/imagePinFacts.json
     * names it. Absent only for the images on `imagesWithoutDigest`. The program renders the lock's digest
     * (components/image-lock.json), which must equal this one where both exist.
     */
    digest?: string;
}

/**
 * One entry of components/image-lock.json, written by `scripts/run lock-images` (scripts/tools/imageLock.ts): the
 * manifest digest the registry served for a pinned tag, or null with the reason none could be read.
 */
export interface LockEntry {
    digest: string | null;
    /** The registry host asked (docker.io's API is registry-1.docker.io). */
    registry: string;
    /** The day the digest was read, or reading it failed (YYYY-MM-DD). */
    date: string;
    /** Where the digest comes from: the registry's answer, or the upstream record it was taken from. */
    source?: string;
    /** The manifest's media type, as served. */
    mediaType?: string;
    /** Why there is no digest. */
    error?: string;
}

/** The lock: every pinned image by `registry/repository:tag`, every OCI chart by `oci://...:version`. */
export interface ImageLock {
    comment?: string;
    images: Record<string, LockEntry>;
    charts: Record<string, LockEntry>;
}

export const imageLock: ImageLock = imageLockFile;

/** `registry/repository:tag`: the name a pin has in the lock, and in a registry. */
export function tagReference(image: ImagePin): string {
    return `${image.registry}/${image.repository}:${image.tag}`;
}

/** The pin as upstream records name it, `:tag@digest` where one names its digest: what tests/upstream/imagePinFacts.json cites. */
export function recordedReference(image: ImagePin): string {
    return `${tagReference(image)}${image.digest ? `@${image.digest}` : ""}`;
}

const relock = "run `scripts/run lock-images` and commit components/image-lock.json";

/**
 * The digest the program renders for a pin: the lock's. A pin the lock does not name (a tag changed without a re-lock)
 * is an error, as `npm ci` refuses a lockfile out of step with package.json; so is a lock that disagrees with the
 * digest an upstream record names. Undefined only for an entry the lock holds without a digest (README "Versions").
 */
export function lockedDigest(image: ImagePin, lock: ImageLock = imageLock): string | undefined {
    const reference = tagReference(image);
    const entry = lock.images[reference];
    if (!entry) throw new Error(`components/image-lock.json has no entry for ${reference} (its tag changed in components/versions.ts?): ${relock}`);
    if (image.digest && entry.digest !== image.digest) {
        throw new Error(`components/image-lock.json locks ${reference} to ${entry.digest}, but the upstream record names ${image.digest}`);
    }
    return entry.digest ?? undefined;
}

/** `registry/repository:tag@digest` (or `:tag` for an image the lock holds no digest for), the form a Pod spec wants. */
export function imageReference(image: ImagePin): string {
    const digest = lockedDigest(image);
    return `${tagReference(image)}${digest ? `@${digest}` : ""}`;
}

/**
 * A Bitnami chart's image values: the common library (2.31.4, `common.images.image` in templates/_images.tpl) renders
 * `registry/repository@digest` when `digest` is set, else `:tag`.
 */
export function bitnamiImageValues(pin: ImagePin): Record<string, string> {
    const digest = lockedDigest(pin);
    return { registry: pin.registry, repository: pin.repository, tag: pin.tag, ...(digest ? { digest } : {}) };
}

/**
 * kiali-server's image values: its deployment template (v2.20.0 templates/deployment.yaml) writes
 * `image_name[@image_digest]:image_version`, so a digest goes in as image_digest "sha256" and image_version its hex.
 */
export function kialiImageValues(pin: ImagePin): Record<string, string> {
    const name = `${pin.registry}/${pin.repository}`;
    const digest = lockedDigest(pin);
    if (!digest) return { image_name: name, image_version: pin.tag };
    const [algorithm, hex] = digest.split(":");
    return { image_name: name, image_digest: algorithm, image_version: hex };
}

/** An OCI chart's name in the lock and in its registry: `oci://host/repository:version`. */
export function ociChartReference(pin: ChartPin): string | undefined {
    return pin.chart.startsWith("oci://") ? `${pin.chart}:${pin.version}` : undefined;
}

/**
 * The chart name Helm is given: an OCI chart as `oci://...@sha256:<digest>` once locked. Helm v3.20.2 (what
 * pulumi-kubernetes 4.34 embeds; pkg/registry/client.go `ValidateReference`) pulls such a reference by its digest and,
 * given the version too, refuses when the registry's tag names another digest; an HTTP repository's chart by name.
 */
export function chartReference(pin: ChartPin, lock: ImageLock = imageLock): string {
    const reference = ociChartReference(pin);
    if (!reference) return pin.chart;
    const entry = lock.charts[reference];
    if (!entry) throw new Error(`components/image-lock.json has no entry for the chart ${reference} (its version changed in components/versions.ts?): ${relock}`);
    return entry.digest ? `${pin.chart}@${entry.digest}` : pin.chart;
}

const istioRepo = "https://istio-release.storage.googleapis.com/charts";
/** One Istio version for every Istio chart: control plane, CNI and gateways must not skew. */
export const istioVersion = "1.30.3";

export const charts = {
    istioBase: { chart: "base", version: istioVersion, repo: istioRepo },
    istiod: { chart: "istiod", version: istioVersion, repo: istioRepo },
    istioCni: { chart: "cni", version: istioVersion, repo: istioRepo },
    istioGateway: { chart: "gateway", version: istioVersion, repo: istioRepo },
    certManager: { chart: "cert-manager", version: "v1.21.1", repo: "https://charts.jetstack.io" },
    // Approves a tenant's certificate requests only as its CertificateRequestPolicy allows (cert-manager's own
    // auto-approver is off). v0.27.0 is the newest release tag of cert-manager/approver-policy as read.
    approverPolicy: { chart: "cert-manager-approver-policy", version: "v0.27.0", repo: "https://charts.jetstack.io" },
    kubePrometheusStack: {
        chart: "kube-prometheus-stack",
        version: "88.5.3",
        repo: "https://prometheus-community.github.io/helm-charts",
    },
    kiali: {
        chart: "kiali-server",
        version: "2.20.0",
        repo: "https://kiali.org/helm-charts",
        archiveSha256: "d33ecd833e13bf3d0511b0e2d6ced7e06aac1064f842032ba9eb3dfc0bc9e33e",
    },
    // CloudNativePG 1.30.0 and its Barman Cloud plugin 0.13.0 (backups, WAL archiving), installed once on the
    // platform when a tenant uses the cloud-native-pg engine.
    cloudnativePg: {
        chart: "cloudnative-pg",
        version: "0.29.0",
        repo: "https://cloudnative-pg.github.io/charts",
        archiveSha256: "668e065ff53508d58238788fd35b355a925060843629a951df0e6a9362e6d32f",
    },
    barmanCloudPlugin: {
        chart: "plugin-barman-cloud",
        version: "0.7.0",
        repo: "https://cloudnative-pg.github.io/charts",
        archiveSha256: "683494c04cc94f7d33c4ac5f3d8d64c209634b48bd0e84da31d7d1fad22cdcdb",
    },
    // Bitnami only publishes this chart as an OCI artifact; Helm takes the full reference as the chart name.
    postgresqlHa: { chart: "oci://registry-1.docker.io/bitnamicharts/postgresql-ha", version: "16.3.2" },
    /**
     * The local stack's in-cluster S3 server (components/platform/objectStore.ts): Versity's S3 gateway, chart 0.3.4 as
     * versity/versitygw v1.7.0 carries it in chart/ and its helm-chart workflow pushes it to ghcr.io.
     */
    versitygw: { chart: "oci://ghcr.io/versity/versitygw/charts/versitygw", version: "0.3.4" },
    /**
     * The in-cluster Keycloak of the tenants that ask for one (components/identity/keycloak/): codecentric's keycloakx
     * chart, the newest in its index as read (codecentric/helm-charts gh-pages c06f0f63, 2026-04-21), Keycloak 26.5.6.
     */
    keycloakx: {
        chart: "keycloakx",
        version: "7.1.11",
        repo: "https://codecentric.github.io/helm-charts",
        archiveSha256: "beeb7ac7cee425ad438a6fbc6545b234a636b1c65f3fa7158aae443c076d7559",
    },
} satisfies Record<string, ChartPin>;

/**
 * The charts whose archive digest no upstream record reachable from here names (README "Versions"), and why. No
 * registry or chart host answers from the machine the pins were made on; only GitHub repositories could be read.
 */
export const chartsWithoutDigest: Partial<Record<keyof typeof charts, string>> = {
    istioBase: "Istio's chart index lives on istio-release.storage.googleapis.com, in no git repository",
    istiod: "Istio's chart index lives on istio-release.storage.googleapis.com, in no git repository",
    istioCni: "Istio's chart index lives on istio-release.storage.googleapis.com, in no git repository",
    istioGateway: "Istio's chart index lives on istio-release.storage.googleapis.com, in no git repository",
    certManager: "jetstack's chart index lives on charts.jetstack.io, in no git repository",
    approverPolicy: "jetstack's chart index lives on charts.jetstack.io, in no git repository",
    kubePrometheusStack:
        "prometheus-community/helm-charts keeps its index.yaml on the gh-pages branch, but the stored copies of that branch lack the file's content (too large)",
    postgresqlHa:
        "an OCI artifact: its manifest digest is known only to the registry (Helm v3.20 would take oci://...@sha256:<digest> and refuse another); bitnami/charts records none",
    versitygw: "an OCI artifact: its manifest digest is known only to the registry; versity/versitygw records none",
};

/**
 * Bitnami stopped serving versioned images under docker.io/bitnami on 28 Aug 2025; the chart's defaults no longer
 * pull. These are the same builds, republished under bitnamilegacy.
 */
export const postgresqlHaImages = {
    postgresqlRepmgr: { registry: "docker.io", repository: "bitnamilegacy/postgresql-repmgr", tag: "17.6.0-debian-12-r2" },
    pgpool: { registry: "docker.io", repository: "bitnamilegacy/pgpool", tag: "4.6.3-debian-12-r0" },
    postgresExporter: { registry: "docker.io", repository: "bitnamilegacy/postgres-exporter", tag: "0.17.1-debian-12-r16" },
    osShell: { registry: "docker.io", repository: "bitnamilegacy/os-shell", tag: "12-debian-12-r51" },
} satisfies Record<string, ImagePin>;

/**
 * The AWS CLI the Bitnami engine's backup job uploads with (its pg_dump comes from the chart's own PostgreSQL image).
 * AWS tags its Docker images with the CLI's version; 2.36.7 is the newest release tag of aws/aws-cli as read
 * (tests/upstream/imagePinFacts.json). 2.37.5, pinned before, is no release tag there.
 */
export const awsCliImage: ImagePin = { registry: "docker.io", repository: "amazon/aws-cli", tag: "2.36.7" };

/**
 * Orthanc with its plugins; the tag is the image build's YY.M.N. 26.8.1 is the newest tag in the image's build
 * repository (orthanc-server/orthanc-builder) as read: Orthanc 1.13.0, PostgreSQL plugins 10.3, DICOMweb 1.24,
 * Orthanc Explorer 2 1.14.1, Stone Web Viewer 3.0, OHIF plugin 1.8.
 */
export const orthancImage: ImagePin = { registry: "docker.io", repository: "orthancteam/orthanc", tag: "26.8.1" };
/**
 * The same build with the plugins that need the vcpkg-built cloud SDKs: Azure Blob and Google Cloud Storage
 * (orthanc-builder 26.8.1 docker/orthanc/Dockerfile copies them into the "full" stage only). Rendered only for a
 * tenant that stores its files there (components/data/storage/orthancStorage.ts).
 */
export const orthancFullImage: ImagePin = { ...orthancImage, tag: `${orthancImage.tag}-full` };

/** Kiali's image follows its chart; pinned here so an upgrade of one is an upgrade of both. */
export const kialiImage: ImagePin = { registry: "quay.io", repository: "kiali/kiali", tag: "v2.20.0" };

/**
 * CloudNativePG's PostgreSQL, pinned rather than left to the operator's default (which moves with operator releases
 * and would turn an operator upgrade into a PostgreSQL upgrade): cloudnative-pg v1.30.0's own default
 * (pkg/versions/versions.go `DefaultImageName`, `18.4-system-trixie`), a tag rebuilt weekly. Pinned to the last 18.4
 * build CloudNativePG's signed image catalog listed (cloudnative-pg/artifacts, image-catalogs/catalog-system-trixie.yaml
 * at 12d8b52f, 2026-08-13), by the dated tag and digest the catalog gives it. The operator takes `<image>:<tag>@sha256:`
 * (api/v1/cluster_types.go `ImageName`) and needs the tag: it reads the PostgreSQL version from it, and its webhook
 * refuses a digest alone (tests/upstream/imagePinCnpgImageName.ts).
 */
export const cnpgPostgresImage: ImagePin = {
    registry: "ghcr.io",
    repository: "cloudnative-pg/postgresql",
    tag: "18.4-202608130737-system-trixie",
    digest: "sha256:42708a75345b7a48fdd9257b071830783a97fd228529196b6313187a7198e185",
};

/**
 * Node.js for each tenant's gatekeeper (components/identity/identity.ts), which runs its TypeScript source with Node's
 * type stripping (unflagged in Node 24). 24 is the Active LTS line; 24.19.0 on Alpine 3.24 (the line's alpine-default)
 * is the newest Node 24 image the official image's build repository names as read (nodejs/docker-node f27d936,
 * 2026-08-19: 24/alpine3.24/Dockerfile `NODE_VERSION=24.19.0`, versions.json). Its `node` user is uid 1000.
 */
export const nodeImage: ImagePin = { registry: "docker.io", repository: "library/node", tag: "24.19.0-alpine3.24" };

/**
 * Versity's S3 gateway, the image the versitygw chart runs (its default tag is `latest`: pinned here instead). Its
 * docker workflow (v1.7.0 .github/workflows/docker.yml) pushes ghcr.io/versity/versitygw:<release tag> for a release.
 */
export const versitygwImage: ImagePin = { registry: "ghcr.io", repository: "versity/versitygw", tag: "v1.7.0" };

/** Keycloak as the keycloakx chart 7.1.11 runs it (its appVersion and default tag), pinned here rather than left to the chart. */
export const keycloakImage: ImagePin = { registry: "quay.io", repository: "keycloak/keycloak", tag: "26.5.6" };

/** Every image korthweb pins, by a name tests/upstream/imagePinFacts.json records evidence under. */
export const pinnedImages = {
    ...postgresqlHaImages,
    awsCli: awsCliImage,
    orthanc: orthancImage,
    orthancFull: orthancFullImage,
    kiali: kialiImage,
    cnpgPostgres: cnpgPostgresImage,
    node: nodeImage,
    versitygw: versitygwImage,
    keycloak: keycloakImage,
} satisfies Record<string, ImagePin>;

/**
 * The images no upstream record names a digest for, and why (tests/upstream/imagePinFactsGenerate.ts searches the
 * repositories named here again). Their digests come from the registry alone: `scripts/run lock-images` writes them
 * into components/image-lock.json. Until it has, the lock holds them without a digest (no registry answered from the
 * machine the pins were made on), they render by tag, and `scripts/run up` refuses them (README "Versions").
 */
const bitnamiWithoutDigest = "bitnami/charts (postgresql-ha/16.3.2) names its images by tag only; the bitnamilegacy copies are recorded nowhere";
export const imagesWithoutDigest: Partial<Record<keyof typeof pinnedImages, string>> = {
    postgresqlRepmgr: bitnamiWithoutDigest,
    pgpool: bitnamiWithoutDigest,
    postgresExporter: bitnamiWithoutDigest,
    osShell: bitnamiWithoutDigest,
    awsCli: "no file of aws/aws-cli at 2.36.7 names the image's digest",
    orthanc: "no file of orthanc-server/orthanc-builder at 26.8.1 names the image's digest; its workflow pushes it from CI only",
    orthancFull: "no file of orthanc-server/orthanc-builder at 26.8.1 names the image's digest; its workflow pushes it from CI only",
    kiali: "no file of kiali/kiali or kiali/kiali-operator at v2.20.0 names the image's digest; the release pushes it from CI only",
    node: "nodejs/docker-node names no image digest (docker-library's build pushes it from CI only)",
    versitygw: "no file of versity/versitygw at v1.7.0 names the image's digest; its docker workflow pushes it from CI only",
    keycloak: "no file of codecentric/helm-charts at keycloakx-7.1.11 names the image's digest (the chart's `image.digest` is empty); Keycloak's release pushes it to quay.io from CI only",
};
