import { strict as assert } from "assert";
import { kubernetesProviderSettings } from "../components/config/kubernetesProvider";
import { ConfigError, stackConfigFromPulumi } from "../components/config/load";
import { loadsLikeKubectl, parsedAsContents, replacesProvider, storedKubeconfig } from "./upstream/kubernetesProvider";

const contents = "apiVersion: v1\nkind: Config\nclusters: []\n";

describe("the Kubernetes provider's settings", () => {
    const cases: { name: string; kubernetes: { context?: string; kubeconfig?: string }; isDryRun: boolean; expect: RegExp | object }[] = [
        { name: "up without a context is refused", kubernetes: {}, isDryRun: false, expect: /korthweb:kubernetes\.context is not set.*scripts\/run config dev set --path kubernetes\.context/s },
        { name: "a preview without a context is allowed", kubernetes: {}, isDryRun: true, expect: { context: undefined, kubeconfig: "", kubeconfigIsContents: false } },
        { name: "up with a context and no kubeconfig", kubernetes: { context: "aks-dev" }, isDryRun: false, expect: { context: "aks-dev", kubeconfig: "", kubeconfigIsContents: false } },
        { name: "a relative kubeconfig path is made absolute", kubernetes: { context: "c", kubeconfig: "kube/dev.yaml" }, isDryRun: false, expect: { kubeconfig: "/project/kube/dev.yaml", kubeconfigIsContents: false } },
        { name: "kubeconfig contents are marked as such", kubernetes: { context: "c", kubeconfig: contents }, isDryRun: false, expect: { kubeconfig: contents, kubeconfigIsContents: true } },
    ];
    for (const { name, kubernetes, isDryRun, expect } of cases) {
        it(name, () => {
            const settings = () => kubernetesProviderSettings(kubernetes, { stack: "dev", isDryRun, cwd: "/project", exists: () => true });
            if (expect instanceof RegExp) {
                assert.throws(settings, (error: unknown) => error instanceof ConfigError && expect.test(error.message));
            } else {
                assert.deepEqual({ ...settings(), ...expect }, settings());
                assert.equal(settings().clusterIdentifier, "korthweb-dev");
            }
        });
    }

    for (const KUBECONFIG of [undefined, "/home/a/.kube/config", "/home/a/.kube/config:/home/a/.kube/other"]) {
        it(`stores no machine's $KUBECONFIG (${KUBECONFIG ?? "unset"}), and the provider then loads it as kubectl does`, () => {
            const settings = kubernetesProviderSettings({ context: "aks-dev" }, { stack: "dev", isDryRun: false, cwd: "/project" });
            const stored = storedKubeconfig({ kubeconfig: settings.kubeconfig }, { KUBECONFIG });
            assert.equal(stored, "");
            assert.ok(loadsLikeKubectl(stored));
        });
    }

    it("a kubeconfig that moved or changed does not replace the provider (nor every resource), whatever its contents", () => {
        const before = kubernetesProviderSettings({ context: "aks-dev", kubeconfig: "a.yaml" }, { stack: "dev", isDryRun: false, cwd: "/m1", exists: () => true });
        const after = kubernetesProviderSettings({ context: "aks-dev-renamed", kubeconfig: contents }, { stack: "dev", isDryRun: false, cwd: "/m2" });
        assert.equal(replacesProvider(before, after, true), false);
        // Without the identifier the same change would replace everything: what the setting prevents.
        assert.equal(replacesProvider({ ...before, clusterIdentifier: undefined }, { ...after, clusterIdentifier: undefined }, true), true);
    });

    describe("a kubeconfig is a path or contents, and the provider reads whatever names no file as contents", () => {
        const files = new Set(["/project/kube/dev.yaml", "/home/op/.kube/aks", "/home/op"]);
        const settingsOf = (kubeconfig: string) =>
            kubernetesProviderSettings({ context: "c", kubeconfig }, { stack: "dev", isDryRun: false, cwd: "/project", exists: (file) => files.has(file), home: "/home/op" });
        const rows: [string, string, { kubeconfig: string; kubeconfigIsContents: boolean } | RegExp][] = [
            ["a path relative to the project", "kube/dev.yaml", { kubeconfig: "/project/kube/dev.yaml", kubeconfigIsContents: false }],
            // The provider expands `~` on the machine it runs on (util.go, parseKubeconfigString): left to it.
            ["a path under the home directory", "~/.kube/aks", { kubeconfig: "~/.kube/aks", kubeconfigIsContents: false }],
            ["a path that names no file", "kube/missing.yaml", /korthweb:kubernetes\.kubeconfig names no file \(\/project\/kube\/missing\.yaml\).*contents as a secret/],
            ["a home path that names no file", "~/.kube/none", /names no file \(\/home\/op\/\.kube\/none\)/],
            ["YAML contents", contents, { kubeconfig: contents, kubeconfigIsContents: true }],
            ["YAML contents with carriage returns only", contents.replace(/\n/g, "\r"), { kubeconfig: contents.replace(/\n/g, "\r"), kubeconfigIsContents: true }],
            ["JSON contents on one line", '{"apiVersion":"v1","kind":"Config"}', { kubeconfig: '{"apiVersion":"v1","kind":"Config"}', kubeconfigIsContents: true }],
            ["a YAML mapping on one line", "apiVersion: v1", { kubeconfig: "apiVersion: v1", kubeconfigIsContents: true }],
            ["a Windows path", "C:\\kube\\config", /names no file/],
        ];
        for (const [what, kubeconfig, expected] of rows) {
            it(what, () => {
                if (expected instanceof RegExp) {
                    assert.throws(() => settingsOf(kubeconfig), (error: unknown) => error instanceof ConfigError && expected.test(error.message));
                } else {
                    const settings = settingsOf(kubeconfig);
                    assert.deepEqual({ kubeconfig: settings.kubeconfig, kubeconfigIsContents: settings.kubeconfigIsContents }, expected);
                    // What the provider will do with it: contents parsed as such, a path read from its file.
                    assert.equal(parsedAsContents(settings.kubeconfig, (file) => files.has(file), "/home/op"), settings.kubeconfigIsContents);
                }
            });
        }
    });

    it("kubeconfig contents in plain configuration are refused; a path is not a credential", () => {
        const raw = (kubeconfig: string) => ({
            "korthweb:domain": "dev.orthweb.example",
            "korthweb:ingress": JSON.stringify({ serviceType: "LoadBalancer" }),
            "korthweb:tenants": JSON.stringify([{ name: "bhs", displayName: "B" }]),
            "korthweb:kubernetes": JSON.stringify({ context: "c", kubeconfig }),
            // Unrelated to the kubeconfig: without it, the stack would be refused for sending its alerts nowhere.
            "korthweb:observability": JSON.stringify({ enabled: false }),
        });
        assert.throws(
            () => stackConfigFromPulumi(raw(contents), "korthweb", () => false),
            /korthweb:kubernetes\.kubeconfig is stored in plain text; allowed: a secret/,
        );
        assert.doesNotThrow(() => stackConfigFromPulumi(raw(contents), "korthweb", (key) => key === "korthweb:kubernetes"));
        assert.throws(() => stackConfigFromPulumi(raw("apiVersion: v1"), "korthweb", () => false), /kubernetes\.kubeconfig is stored in plain text/, "one line of YAML is contents too");
        assert.doesNotThrow(() => stackConfigFromPulumi(raw("kube/dev.yaml"), "korthweb", () => false));
    });
});
