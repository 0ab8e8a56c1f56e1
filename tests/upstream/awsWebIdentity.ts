/**
 * How a pod on EKS comes to act as an IAM role, as far as the backups rely on it: the pod identity webhook's mutation
 * and the AWS SDK's credential chain. Models, not the code; each cites what it was read from.
 *
 * - aws/amazon-eks-pod-identity-webhook v0.6.17, pkg/handler/handler.go (`buildPodPatchConfig`, `getPodSpecPatch`,
 *   `addEnvToContainer`) and main.go (`--token-audience` default "sts.amazonaws.com", mount path
 *   /var/run/secrets/eks.amazonaws.com/serviceaccount, token file `token`): a pod whose ServiceAccount carries
 *   `eks.amazonaws.com/role-arn` gets, in every container AND init container not listed in the pod's
 *   `eks.amazonaws.com/skip-containers` annotation, AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE unless either is
 *   already there, AWS_REGION and AWS_DEFAULT_REGION (the webhook's region) unless either is already there,
 *   AWS_STS_REGIONAL_ENDPOINTS=regional when the account asks for it and the container lacks it, a read-only mount of
 *   a projected ServiceAccount token volume with that audience. The pod's `automountServiceAccountToken` plays no part.
 *   A ServiceAccount without the annotation: no mutation.
 * - aws/aws-cli 2.36.7, awscli/botocore/credentials.py `create_credential_resolver` and `ProfileProviderBuilder.providers`:
 *   the chain is env (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) -> assume-role from the profile -> web identity
 *   (AWS_WEB_IDENTITY_TOKEN_FILE, then AWS_ROLE_ARN, required once the token file is named: InvalidConfigError) ->
 *   SSO, shared credentials file, login, process, config file -> EC2 original, boto -> container provider
 *   (AWS_CONTAINER_CREDENTIALS_FULL_URI / _RELATIVE_URI) -> instance metadata (unless AWS_EC2_METADATA_DISABLED).
 *   The first that yields credentials wins. The STS client is created in the first client's region
 *   (awscli/botocore/session.py `_last_client_region_used`) and at the regional endpoint (awscli/botocore/args.py sets
 *   AWS::STS::UseGlobalEndpoint false). The Barman Cloud sidecar's boto3 runs botocore's same chain; its STS endpoint
 *   is regional when AWS_STS_REGIONAL_ENDPOINTS=regional (which the ObjectStore sets), whatever botocore's default.
 * Profiles, SSO and credential files are not modelled: the backup pods have none (their AWS_CONFIG_FILE holds
 * `addressing_style` only).
 */

export interface EnvVar {
    name: string;
    value?: string;
    valueFrom?: unknown;
}

export interface ContainerModel {
    name: string;
    env?: EnvVar[];
    volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}

export interface PodModel {
    annotations?: Record<string, string>;
    automountServiceAccountToken?: boolean;
    containers: ContainerModel[];
    initContainers?: ContainerModel[];
    volumes?: Record<string, any>[];
}

export interface WebhookSettings {
    /** The webhook's `--aws-default-region` (EKS sets the cluster's region). */
    region?: string;
}

export const webhookTokenDirectory = "/var/run/secrets/eks.amazonaws.com/serviceaccount";
export const webhookTokenFile = `${webhookTokenDirectory}/token`;
const webhookVolume = "aws-iam-token";

/** The pod as the API server stores it after the webhook, given its ServiceAccount's annotations. */
export function eksWebhookMutation(pod: PodModel, serviceAccountAnnotations: Record<string, string>, settings: WebhookSettings = {}): PodModel {
    const roleArn = serviceAccountAnnotations["eks.amazonaws.com/role-arn"];
    if (!roleArn) return pod;
    const audience = serviceAccountAnnotations["eks.amazonaws.com/audience"] ?? "sts.amazonaws.com";
    const regionalSts = serviceAccountAnnotations["eks.amazonaws.com/sts-regional-endpoints"] === "true";
    const skipped = new Set((pod.annotations?.["eks.amazonaws.com/skip-containers"] ?? "").split(",").filter(Boolean));
    const mutate = (container: ContainerModel): ContainerModel => {
        if (skipped.has(container.name)) return container;
        const env = [...(container.env ?? [])];
        const has = (...names: string[]) => env.some((e) => names.includes(e.name));
        const webIdentity = has("AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE");
        const region = has("AWS_REGION", "AWS_DEFAULT_REGION");
        const sts = has("AWS_STS_REGIONAL_ENDPOINTS");
        if (!sts && regionalSts) env.push({ name: "AWS_STS_REGIONAL_ENDPOINTS", value: "regional" });
        if (!region && settings.region) env.push({ name: "AWS_DEFAULT_REGION", value: settings.region }, { name: "AWS_REGION", value: settings.region });
        if (!webIdentity) env.push({ name: "AWS_ROLE_ARN", value: roleArn }, { name: "AWS_WEB_IDENTITY_TOKEN_FILE", value: webhookTokenFile });
        const mounts = [...(container.volumeMounts ?? [])];
        if (!mounts.some((m) => m.name === webhookVolume)) mounts.push({ name: webhookVolume, mountPath: webhookTokenDirectory, readOnly: true });
        return { ...container, env, volumeMounts: mounts };
    };
    const volumes = [...(pod.volumes ?? [])];
    if (!volumes.some((v) => v.name === webhookVolume)) {
        volumes.push({ name: webhookVolume, projected: { sources: [{ serviceAccountToken: { audience, expirationSeconds: 86400, path: "token" } }] } });
    }
    return {
        ...pod,
        containers: pod.containers.map(mutate),
        ...(pod.initContainers ? { initContainers: pod.initContainers.map(mutate) } : {}),
        volumes,
    };
}

/** Which provider of botocore's chain yields the credentials, for a container's environment. */
export type CredentialSource =
    | { provider: "env"; accessKeyId: EnvVar }
    | { provider: "assume-role-with-web-identity"; roleArn: string; tokenFile: string }
    | { provider: "container" }
    | { provider: "instance-metadata" }
    | { provider: "none" };

export function botocoreCredentialSource(env: EnvVar[]): CredentialSource {
    const byName = new Map(env.map((e) => [e.name, e]));
    const set = (name: string) => byName.has(name) && (byName.get(name)!.valueFrom !== undefined || (byName.get(name)!.value ?? "") !== "");
    const value = (name: string) => byName.get(name)?.value;
    if (set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY")) return { provider: "env", accessKeyId: byName.get("AWS_ACCESS_KEY_ID")! };
    const tokenFile = value("AWS_WEB_IDENTITY_TOKEN_FILE");
    if (tokenFile) {
        const roleArn = value("AWS_ROLE_ARN");
        if (!roleArn) throw new Error("InvalidConfigError: web identity token file without a role ARN");
        return { provider: "assume-role-with-web-identity", roleArn, tokenFile };
    }
    if (set("AWS_CONTAINER_CREDENTIALS_FULL_URI") || set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) return { provider: "container" };
    if ((value("AWS_EC2_METADATA_DISABLED") ?? "").toLowerCase() === "true") return { provider: "none" };
    return { provider: "instance-metadata" };
}

/** The STS host botocore exchanges a web identity token at, regional (aws-cli v2; boto3 with AWS_STS_REGIONAL_ENDPOINTS=regional). */
export function regionalStsHost(region: string): string {
    return region.startsWith("cn-") ? `sts.${region}.amazonaws.com.cn` : `sts.${region}.amazonaws.com`;
}

/**
 * IAM's evaluation of an IRSA trust policy for a projected token (docs.aws.amazon.com, "IAM JSON policy elements:
 * Condition operators", StringEquals): a statement allows AssumeRoleWithWebIdentity when its Federated principal is the
 * token issuer's provider and every StringEquals key `<issuer>:<claim>` equals that claim of the token.
 */
export function trustAllows(
    policy: { Statement: { Effect: string; Principal: { Federated: string }; Action: string; Condition: { StringEquals: Record<string, string> } }[] },
    token: { providerArn: string; issuer: string; sub: string; aud: string },
): boolean {
    return policy.Statement.some(
        (statement) =>
            statement.Effect === "Allow" &&
            statement.Action === "sts:AssumeRoleWithWebIdentity" &&
            statement.Principal.Federated === token.providerArn &&
            Object.entries(statement.Condition.StringEquals).every(([key, expected]) => {
                const [issuer, claim] = [key.slice(0, key.lastIndexOf(":")), key.slice(key.lastIndexOf(":") + 1)];
                return issuer === token.issuer && (claim === "sub" ? token.sub : claim === "aud" ? token.aud : undefined) === expected;
            }),
    );
}
