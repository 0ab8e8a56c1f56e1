/**
 * Model of how CloudNativePG reads a Cluster's `spec.imageName`, for the digest pin: cloudnative-pg v1.30.0
 * internal/webhook/v1/cluster_webhook.go (the image-name validation: a tag is required, `latest` is refused, and the
 * tag must start with a PostgreSQL version) and internal/controller/cluster_image.go (the major version comes from the
 * tag), both through cloudnative-pg/machinery v0.5.0 (its go.mod's version): pkg/image/reference/imagename.go `New`
 * (a trailing `@sha256:<hex>` is the digest, then a trailing `:<tag>` without `/` is the tag; no tag and no digest
 * means `latest`) and pkg/postgres/version/version.go `FromTag` (the leading `(\d\.?)+` is the version).
 *
 * A digest alone is refused ("Can't use just the image sha as we can't detect upgrades"): the tag is not only for
 * people, the operator needs it.
 */

export interface CnpgImageReference {
    name: string;
    tag: string;
    digest: string;
}

export function cnpgImageReference(imageName: string): CnpgImageReference {
    let name = imageName;
    if (!name.includes("/")) name = `docker.io/library/${name}`;
    else if (!/^[^./:]+((\.[^./:]+)+(:[0-9]+)?|:[0-9]+)\//.test(name)) name = `docker.io/${name}`;
    let digest = "";
    const digestMatch = /@sha256:([a-fA-F0-9]+)$/.exec(name);
    if (digestMatch) {
        digest = digestMatch[1];
        name = name.slice(0, -digestMatch[0].length);
    }
    let tag = "";
    const tagMatch = /:([^/]+)$/.exec(name);
    if (tagMatch) {
        tag = tagMatch[1];
        name = name.slice(0, -tagMatch[0].length);
    } else if (digest === "") {
        tag = "latest";
    }
    return { name, tag, digest };
}

/** `FromTag`: the PostgreSQL major and minor a tag starts with, or undefined where the operator finds none. */
export function cnpgVersionFromTag(tag: string): { major: number; minor: number } | undefined {
    const version = /^(\d\.?)+/.exec(tag)?.[0];
    if (!version) return undefined;
    const [major, minor] = version.split(".");
    return { major: Number(major), minor: minor ? Number(minor) : 0 };
}

/** The webhook's complaint about an imageName, or undefined when it admits it. */
export function cnpgImageNameError(imageName: string): string | undefined {
    const { tag } = cnpgImageReference(imageName);
    if (tag === "latest") return "Can't use 'latest' as image tag as we can't detect upgrades";
    if (tag === "") return "Can't use just the image sha as we can't detect upgrades";
    if (!cnpgVersionFromTag(tag)) return "invalid version tag";
    return undefined;
}
