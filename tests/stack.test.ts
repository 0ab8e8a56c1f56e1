import { strict as assert } from "assert";
import { charts } from "../components/versions";
import { RecordedResource } from "./support/mocks";
import { devVariants, kubernetesObjects, ofType, parsedStackFile, releases, renderStack, allStacks } from "./support/stacks";

/** Where a CRD-backed kind comes from: the release whose chart installs its CRDs. */
const crdSources: Record<string, string> = {
    "networking.istio.io": "istio-base",
    "security.istio.io": "istio-base",
    "cert-manager.io": "cert-manager",
    "policy.cert-manager.io": "cert-manager-approver-policy",
    "monitoring.coreos.com": "kube-prometheus-stack",
};

function registrationIndex(resources: RecordedResource[], predicate: (r: RecordedResource) => boolean): number {
    const index = resources.findIndex(predicate);
    assert.ok(index >= 0, "resource not found");
    return index;
}

for (const stack of allStacks) {
    describe(`the whole program on stack ${stack}`, () => {
        it("registers without error", async () => {
            const rendered = await renderStack(stack);
            assert.equal(rendered.error, undefined);
        });

        it("installs the platform charts once each, pinned to components/versions.ts and with fixed names", async () => {
            const rendered = await renderStack(stack);
            const byName = new Map(releases(rendered).map((r) => [`${r.inputs.namespace}/${r.inputs.name}`, r]));
            const observability: [string, { chart: string; version: string }][] = [
                ["monitoring/kube-prometheus-stack", charts.kubePrometheusStack],
                ["monitoring/kiali", charts.kiali],
            ];
            const expected: [string, { chart: string; version: string }][] = [
                ["istio-system/istio-base", charts.istioBase],
                ["istio-system/istio-cni", charts.istioCni],
                ["istio-system/istiod", charts.istiod],
                ["cert-manager/cert-manager", charts.certManager],
                ["cert-manager/cert-manager-approver-policy", charts.approverPolicy],
                ...(parsedStackFile(stack).observability.enabled ? observability : []),
            ];
            for (const [key, pin] of expected) {
                const release = byName.get(key);
                assert.ok(release, `release ${key} missing`);
                assert.equal(release.inputs.chart, pin.chart);
                assert.equal(release.inputs.version, pin.version);
            }
            for (const release of releases(rendered)) {
                assert.match(release.inputs.version, /^v?\d+\.\d+\.\d+$/, `${release.name} is pinned to an exact version`);
                assert.ok(release.inputs.name, `${release.name} has a fixed release name`);
            }
        });

        it("creates every custom resource after, and depending on, the release that installs its CRDs", async () => {
            const rendered = await renderStack(stack);
            const custom = kubernetesObjects(rendered).filter((r) => Object.keys(crdSources).some((g) => r.type.includes(`:${g}/`)));
            assert.ok(custom.length > 0);
            for (const resource of custom) {
                const group = Object.keys(crdSources).find((g) => resource.type.includes(`:${g}/`))!;
                const isSource = (r: RecordedResource) => r.type === "kubernetes:helm.sh/v3:Release" && r.inputs.name === crdSources[group];
                const source = registrationIndex(rendered.resources, isSource);
                const own = registrationIndex(rendered.resources, (r) => r === resource);
                assert.ok(own > source, `${resource.type} ${resource.name} is registered before ${crdSources[group]}`);
                assert.ok(
                    resource.options?.dependsOn.includes(rendered.resources[source].name),
                    `${resource.type} ${resource.name} does not depend on ${crdSources[group]}`,
                );
            }
        });

        it("exports the root CA certificate", async () => {
            const rendered = await renderStack(stack);
            assert.match(rendered.outputs.rootCaCertificate, /BEGIN CERTIFICATE/);
            const root = ofType(rendered, "tls:index/selfSignedCert:SelfSignedCert").find((r) => r.name === "root-ca-certificate");
            assert.ok(root?.inputs.isCaCertificate);
        });

        it("uses one Kubernetes provider, configured from the stack", async () => {
            const rendered = await renderStack(stack);
            assert.equal(ofType(rendered, "pulumi:providers:kubernetes").length, 1);
        });
    });
}

describe("the program's configuration switches", () => {
    it("leaves observability out when a stack turns it off", async () => {
        // The local stack turns it off.
        const rendered = await renderStack("local");
        assert.equal(rendered.error, undefined);
        const names = releases(rendered).map((r) => r.inputs.name);
        assert.ok(!names.includes("kube-prometheus-stack") && !names.includes("kiali"));
        assert.equal(ofType(rendered, "kubernetes:monitoring.coreos.com/v1:PodMonitor").length, 0);
        assert.ok(names.includes("istiod"));
    });

    it("refuses an invalid configuration before registering any resource", async () => {
        const rendered = await renderStack("dev", devVariants.withInvalidTenant());
        assert.match(rendered.error ?? "", /korthweb:tenants\[0\]\.name is "BHS"/);
        assert.deepEqual(rendered.resources, []);
    });
});
