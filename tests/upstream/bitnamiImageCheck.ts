/**
 * Model of the image check Bitnami charts run at install: bitnami/charts, common library 2.31.4 (the one
 * postgresql-ha 16.3.2 bundles), templates/_errors.tpl `common.errors.insecureImages`, called from postgresql-ha's
 * templates/NOTES.txt with the values' images (tests/upstream/imagePinFacts.json `bitnamiChartImages`). A `fail`
 * there fails the whole install; `global.security.allowInsecureImages` turns it into a warning.
 *
 * What it does, as read: each image is compared, as text, with the chart's `annotations.images` (the builds it was
 * released with). An image whose registry appears there but whose repository does not is "replaced"; one whose
 * registry does not appear is "relocated". Replacements that are all `docker.io/bitnamilegacy/...` only warn, as
 * does a mere retag; any other replacement or relocation fails unless allowInsecureImages is set. Digests play no
 * part.
 */

export interface ValuesImage {
    registry?: string;
    repository: string;
    tag?: string;
    digest?: string;
}

export type ImageCheckOutcome = "passes" | "warns" | "fails";

export interface ImageCheckInput {
    /** The chart's `annotations.images` text. */
    chartImages: string;
    images: ValuesImage[];
    globalImageRegistry?: string;
    allowInsecureImages?: boolean;
}

export function bitnamiImageCheck(input: ImageCheckInput): ImageCheckOutcome {
    const original = input.chartImages;
    const relocated: string[] = [];
    const replaced: string[] = [];
    const legacy: string[] = [];
    const retagged: string[] = [];
    for (const image of input.images) {
        const registry = input.globalImageRegistry || image.registry || "";
        const withoutTag = `${registry}/${image.repository}`;
        const full = `${withoutTag}:${image.tag ?? ""}`;
        if (!original.includes(withoutTag)) {
            if (!original.includes(registry)) {
                relocated.push(full);
            } else if (!original.includes(image.repository)) {
                replaced.push(full);
                if (withoutTag.includes("docker.io/bitnamilegacy/")) legacy.push(full);
            }
        }
        if (!original.includes(`${image.repository}:${image.tag ?? ""}`)) retagged.push(full);
    }
    const substituted = relocated.length + replaced.length > 0;
    if (substituted && input.allowInsecureImages) return "warns";
    if (substituted) {
        if (relocated.length === 0 && replaced.length === legacy.length) return "warns";
        if (["docker.io/bitnami/", "docker.io/bitnamiprem/", "docker.io/bitnamisecure/"].some((prefix) => original.includes(prefix))) return "fails";
        return replaced.length > 0 ? "warns" : "passes";
    }
    return retagged.length > 0 ? "warns" : "passes";
}

/** The images a values object gives at the paths the chart checks (`postgresql.image`, ...). */
export function checkedImages(values: Record<string, unknown>, paths: string[]): ValuesImage[] {
    return paths.map((path) => {
        const image = path.split(".").reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], values);
        if (!image) throw new Error(`values have no ${path}`);
        return image as ValuesImage;
    });
}
