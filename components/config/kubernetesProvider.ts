import { existsSync } from "fs";
import { homedir } from "os";
import * as path from "path";
import { ConfigError } from "./load";
import { isKubeconfigContents, StackConfig } from "./schema";

/** What index.ts hands to the Kubernetes provider, decided from the stack configuration alone. */
export interface KubernetesProviderSettings {
    context?: string;
    /**
     * "" (never undefined) when the stack names no kubeconfig: the SDK's Provider stores `args.kubeconfig ??
     * $KUBECONFIG`, so undefined would put this machine's $KUBECONFIG in the state verbatim (a path list another
     * machine, or the provider, reads as contents); "" makes the provider load the kubeconfig the way kubectl does
     * (client-go's default loading rules: every file of a $KUBECONFIG list, else ~/.kube/config) on each run.
     */
    kubeconfig: string;
    /** Whether `kubeconfig` holds a kubeconfig's contents, which the caller passes as a secret. */
    kubeconfigIsContents: boolean;
    /**
     * The provider is replaced only when this changes (pulumi-kubernetes DiffConfig), and replacing it replaces every
     * resource: so it is the stack's own name, stable for the stack's life, not the context's (a renamed context or a
     * moved or re-issued kubeconfig then updates the provider). A stack belongs to one cluster; another cluster is
     * another stack.
     */
    clusterIdentifier: string;
}

export { isKubeconfigContents };

/**
 * The provider's settings for a stack. An update (not a preview) needs `korthweb:kubernetes.context`: with none,
 * whatever context is current in the kubeconfig would be deployed to, so `up local` on a terminal left on a
 * production context would deploy there. A path is made absolute against `cwd` (the project directory), but for one
 * starting with `~`, which the provider expands to the home directory of the machine it runs on.
 *
 * A kubeconfig is a path or contents; the provider cannot be told which, and reads any value that names no file as
 * contents (pulumi/pulumi-kubernetes v4.32.0 provider/pkg/provider/util.go, parseKubeconfigString). So a path that
 * names no file is refused here, by name, rather than parsed by the provider as a kubeconfig and reported as an
 * unreachable cluster; contents are passed on as a secret (and the configuration refuses them unless stored as one).
 */
export function kubernetesProviderSettings(
    kubernetes: Pick<StackConfig["kubernetes"], "context" | "kubeconfig">,
    { stack, isDryRun, cwd, exists = existsSync, home = homedir() }: { stack: string; isDryRun: boolean; cwd: string; exists?: (file: string) => boolean; home?: string },
): KubernetesProviderSettings {
    if (!isDryRun && kubernetes.context === undefined) {
        throw new ConfigError([
            `korthweb:kubernetes.context is not set; allowed: the name of the kubeconfig context stack '${stack}' deploys to ` +
                `(kubectl config get-contexts), set with scripts/run config ${stack} set --path kubernetes.context <context>. ` +
                "An update deploys only to the context its stack names, never to whichever is current.",
        ]);
    }
    const given = kubernetes.kubeconfig;
    const kubeconfigIsContents = given !== undefined && isKubeconfigContents(given);
    let kubeconfig = "";
    if (given !== undefined) {
        kubeconfig = kubeconfigIsContents || given === "~" || given.startsWith("~/") ? given : path.resolve(cwd, given);
        const file = given === "~" ? home : given.startsWith("~/") ? path.join(home, given.slice(2)) : kubeconfig;
        if (!kubeconfigIsContents && !exists(file)) {
            throw new ConfigError([
                `korthweb:kubernetes.kubeconfig names no file (${file}); allowed: the path of a kubeconfig file (relative to the project, or ~/...), ` +
                    `or a kubeconfig's contents as a secret (scripts/run config ${stack} set --secret --path kubernetes.kubeconfig < kubeconfig.yaml). ` +
                    "The provider would read the path itself as a kubeconfig.",
            ]);
        }
    }
    return {
        context: kubernetes.context,
        kubeconfig,
        kubeconfigIsContents,
        clusterIdentifier: `korthweb-${stack}`,
    };
}
