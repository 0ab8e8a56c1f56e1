/**
 * What the Kubernetes provider keeps and compares, modelled from its sources:
 *
 * - The Node.js SDK's Provider stores `args.kubeconfig ?? $KUBECONFIG` as the provider's `kubeconfig` input
 *   (@pulumi/kubernetes 4.34.2, provider.js, the package the project pins), so the state holds whatever it gets.
 * - The provider reads an empty `kubeconfig` as "none given" and loads the kubeconfig with client-go's default loading
 *   rules ($KUBECONFIG's files, else ~/.kube/config); anything else is parsed as a path or as contents
 *   (pulumi/pulumi-kubernetes v4.32.0, provider/pkg/provider/provider.go, Configure): util.go's
 *   parseKubeconfigString expands a leading `~` to the home directory, reads the file when one exists at that path,
 *   and otherwise parses the value itself as a kubeconfig.
 * - DiffConfig replaces the provider, and with it every resource, when `clusterIdentifier` changes; when it is set and
 *   unchanged, nothing is replaced; when it is absent, a change of the kubeconfig's active cluster (or a computed
 *   kubeconfig/context) replaces (same file, DiffConfig).
 */
export interface ProviderInputs {
    kubeconfig?: string;
    context?: string;
    clusterIdentifier?: string;
}

/** The `kubeconfig` the SDK records in the state for the given arguments and environment. */
export function storedKubeconfig(args: ProviderInputs, env: Record<string, string | undefined>): string | undefined {
    return args.kubeconfig ?? env.KUBECONFIG;
}

/** Whether the provider loads the kubeconfig by kubectl's rules rather than from the stored value. */
export function loadsLikeKubectl(stored: string | undefined): boolean {
    return stored === undefined || stored === "";
}

/**
 * Whether an update from `olds` to `news` replaces the provider. `activeClusterChanged` stands for the provider's
 * comparison of the two kubeconfigs' active clusters, which the caller decides.
 */
export function replacesProvider(olds: ProviderInputs, news: ProviderInputs, activeClusterChanged: boolean): boolean {
    const identifierSet = olds.clusterIdentifier !== undefined && news.clusterIdentifier !== undefined;
    if (identifierSet && olds.clusterIdentifier !== news.clusterIdentifier) return true;
    if (identifierSet) return false;
    const changed = olds.kubeconfig !== news.kubeconfig || olds.context !== news.context;
    return changed && activeClusterChanged;
}

/** Whether the provider parses a non-empty `kubeconfig` as contents (no file at it) rather than reading a file. */
export function parsedAsContents(kubeconfig: string, exists: (file: string) => boolean, home: string): boolean {
    const file = kubeconfig === "~" ? home : kubeconfig.startsWith("~/") ? `${home}/${kubeconfig.slice(2)}` : kubeconfig;
    return !exists(file);
}
