/**
 * cert-manager behaviour korthweb relies on, read at cert-manager/cert-manager v1.21.1:
 * - pkg/issuer/ca (CA issuer): the issuer's Secret must hold `tls.crt` (a CA certificate, optionally followed by its
 *   chain; the first certificate signs) and `tls.key`; issued Secrets get `tls.crt` (leaf + chain), `tls.key` and
 *   `ca.crt` (the top of the issuer's chain: the root when the chain reaches it).
 * - A ClusterIssuer reads its Secret from the "cluster resource namespace": the chart passes
 *   `--cluster-resource-namespace` = the release namespace unless `clusterResourceNamespace` is set
 *   (deploy/charts/cert-manager/templates/deployment.yaml); the controller's own default (kube-system) never applies
 *   to a chart install.
 */

export interface IssuerLike {
    kind: "Issuer" | "ClusterIssuer";
    namespace?: string;
    secretName: string;
}

/** Where the CA issuer reads its Secret from. */
export function issuerSecretNamespace(issuer: IssuerLike, certManager: { releaseNamespace: string; values: Record<string, any> }): string {
    if (issuer.kind === "Issuer") {
        return issuer.namespace!;
    }
    return certManager.values.clusterResourceNamespace || certManager.releaseNamespace;
}

export const caIssuerSecretKeys = ["tls.crt", "tls.key"];
/** Keys of a Secret cert-manager issues from a CA issuer. */
export const issuedSecretKeys = ["tls.crt", "tls.key", "ca.crt"];
