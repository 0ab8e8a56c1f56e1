/**
 * The GitHub Actions the workflows pin, by commit: each entry's inputs are those of its action.yml at that commit
 * (read with `git show <tag>:action.yml` in a clone of the repository; the tag resolves to the SHA given).
 *
 * - actions/checkout v7.0.1 (3d3c42e5…): action.yml. Also src/unsafe-pr-checkout-helper.ts: under
 *   `pull_request_target` it refuses to check out a fork's head unless `allow-unsafe-pr-checkout: true`.
 * - pulumi/auth-actions v2.1.0 (14141591…): action.yml; exchanges the job's GitHub OIDC token for a Pulumi access
 *   token of the requested type and scope, exported as PULUMI_ACCESS_TOKEN.
 *
 * Not pinned, and why: pulumi/actions (v7.0.0 src/config.ts accepts only up, update, refresh, destroy, preview and
 * output as `command`; v6 the same, which is why `command: version` failed) would run its own preview outside
 * scripts/run's checks; scripts/run installs the CLI itself.
 */
export interface PinnedAction {
    repository: string;
    tag: string;
    sha: string;
    inputs: string[];
    required: string[];
    /** The runtime of its `runs.using`. */
    runs: string;
}

export const pinnedActions: PinnedAction[] = [
    {
        repository: "actions/checkout",
        tag: "v7.0.1",
        sha: "3d3c42e5aac5ba805825da76410c181273ba90b1",
        inputs: [
            "repository", "ref", "token", "ssh-key", "ssh-known-hosts", "ssh-strict", "ssh-user", "persist-credentials", "path", "clean",
            "filter", "sparse-checkout", "sparse-checkout-cone-mode", "fetch-depth", "fetch-tags", "show-progress", "lfs", "submodules",
            "set-safe-directory", "github-server-url", "allow-unsafe-pr-checkout",
        ],
        required: [],
        runs: "node24",
    },
    {
        repository: "pulumi/auth-actions",
        tag: "v2.1.0",
        sha: "141415910c3beb54e03b48e9057c204c97b956f2",
        inputs: ["organization", "requested-token-type", "scope", "token-expiration", "export-environment-variables", "cloud-url"],
        required: ["organization"],
        runs: "node24",
    },
];
