/**
 * Every version korthweb pins: Helm charts, their repositories and the container images we override.
 *
 * Upgrades happen here and nowhere else, so that a reviewer sees the whole change in one diff and the tests
 * (which read these constants) follow automatically.
 */

export interface ChartPin {
    /** Chart name inside its repository. */
    chart: string;
    /** Exact chart version: never a range, so a re-run installs byte-identical templates. */
    version: string;
    /** Helm repository URL, or undefined when `chart` is a full `oci://` reference. */
    repo?: string;
}

export interface ImagePin {
    registry: string;
    repository: string;
    tag: string;
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
    kiali: { chart: "kiali-server", version: "2.20.0", repo: "https://kiali.org/helm-charts" },
    // CloudNativePG 1.30.0 and its Barman Cloud plugin 0.13.0 (backups, WAL archiving), installed once on the
    // platform when a tenant uses the cloud-native-pg engine.
    cloudnativePg: { chart: "cloudnative-pg", version: "0.29.0", repo: "https://cloudnative-pg.github.io/charts" },
    barmanCloudPlugin: { chart: "plugin-barman-cloud", version: "0.7.0", repo: "https://cloudnative-pg.github.io/charts" },
    // Bitnami only publishes this chart as an OCI artifact; Helm takes the full reference as the chart name.
    postgresqlHa: { chart: "oci://registry-1.docker.io/bitnamicharts/postgresql-ha", version: "16.3.2" },
} satisfies Record<string, ChartPin>;

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

/** `registry/repository:tag`, the form a Pod spec wants. */
export function imageReference(image: ImagePin): string {
    return `${image.registry}/${image.repository}:${image.tag}`;
}

/** Kiali's image follows its chart; pinned here so an upgrade of one is an upgrade of both. */
export const kialiImage: ImagePin = { registry: "quay.io", repository: "kiali/kiali", tag: "v2.20.0" };
export const kialiImageVersion = kialiImage.tag;

/**
 * CloudNativePG's PostgreSQL, pinned rather than left to the operator's default (which moves with operator releases
 * and would turn an operator upgrade into a PostgreSQL upgrade): cloudnative-pg v1.30.0's own default
 * (pkg/versions/versions.go `DefaultImageName`).
 */
export const cnpgPostgresImage: ImagePin = { registry: "ghcr.io", repository: "cloudnative-pg/postgresql", tag: "18.4-system-trixie" };

/** Every image korthweb pins, by a name tests/upstream/imagePinFacts.json records evidence under. */
export const pinnedImages = {
    ...postgresqlHaImages,
    awsCli: awsCliImage,
    orthanc: orthancImage,
    kiali: kialiImage,
    cnpgPostgres: cnpgPostgresImage,
} satisfies Record<string, ImagePin>;
