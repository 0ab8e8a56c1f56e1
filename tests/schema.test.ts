/**
 * Every Kubernetes object the program registers, on every shipped stack, against the upstream schemas (kubernetes-models
 * and @kubernetes-models/{istio,cert-manager,prometheus-operator}), unknown fields included; and every Helm values tree
 * the program passes against the key tree of the chart's reference values.yaml. See tests/support/schemaValidation.ts
 * and tests/support/schemaChartValues.ts for how far each goes.
 */
import { strict as assert } from "assert";
import { charts } from "../components/versions";
import { RecordedResource } from "./support/mocks";
import { chartReferences, openPaths, referenceFor, valuesProblems } from "./support/schemaChartValues";
import { createdObjects, manifestOf, modelFor, unknownFields, validateObjects } from "./support/schemaValidation";
import { releases, renderStack, allStacks } from "./support/stacks";

/**
 * apiVersion/kind the program may create although no upstream model exists, with the reason. Empty: every object the
 * program creates has a schema. Add an entry only with a reason a reviewer can check.
 */
const withoutSchema: Record<string, string> = {};

/** Charts whose values are not checked: no reference values file in shared/reference/charts for them. */
/** Charts whose reference values.yaml is not in shared/reference/charts, with the reason. */
const chartsWithoutReference: Record<string, string> = {
    "cert-manager-approver-policy":
        "not in shared/reference/charts; its values are checked against the keys of the chart's values.schema.json (additionalProperties false) in tests/issuance.test.ts",
};

for (const stack of allStacks) {
    describe(`upstream schemas on stack ${stack}`, () => {
        it("has an upstream schema for every Kubernetes object the program creates", async () => {
            const rendered = await renderStack(stack);
            assert.equal(rendered.error, undefined);
            const reports = await validateObjects(rendered.resources);
            assert.ok(reports.length > 0);
            const missing = reports.filter((r) => r.noSchema && !(`${r.apiVersion}/${r.kind}` in withoutSchema));
            assert.deepEqual(missing.map((r) => `${r.object}: no schema for ${r.apiVersion} ${r.kind}`), []);
        });

        it("validates every Kubernetes object against its schema, with no unknown field", async () => {
            const reports = await validateObjects((await renderStack(stack)).resources);
            const invalid = reports.filter((r) => r.problems.length > 0).map((r) => `${r.object}:\n    ${r.problems.join("\n    ")}`);
            assert.deepEqual(invalid, []);
        });

        it("passes the program's Helm values only where the chart accepts them", async () => {
            const rendered = await renderStack(stack);
            const problems: string[] = [];
            for (const release of releases(rendered)) {
                const { chart, version, values } = release.inputs;
                const name = chart.slice(chart.lastIndexOf("/") + 1);
                const reference = referenceFor(chart, version);
                if (!reference) {
                    assert.ok(name in chartsWithoutReference, `${release.name}: no reference values for chart ${chart} ${version}: regenerate tests/support/schemaChartKeys.json`);
                    continue;
                }
                problems.push(...valuesProblems(reference.chart, reference.tree, values).map((p) => `${release.name} (${name} ${version}): ${p}`));
            }
            assert.deepEqual(problems, []);
        });
    });
}

describe("the schema checks themselves", () => {
    it("have a reference values key tree for every pinned chart but the documented exceptions, at the pinned version", () => {
        for (const pin of Object.values(charts)) {
            const name = pin.chart.slice(pin.chart.lastIndexOf("/") + 1);
            const reference = chartReferences.find((r) => r.chart === name);
            if (name in chartsWithoutReference) {
                assert.equal(reference, undefined, `${name} has a reference now: drop it from chartsWithoutReference`);
                continue;
            }
            assert.ok(reference, `no reference values for ${name}`);
            // File names write some versions with a "v" their chart does not have (kiali-server-values-v2.20.0.yaml).
            const bare = (version: string) => version.replace(/^v/, "");
            assert.equal(bare(reference.version), bare(pin.version), `${name}: reference ${reference.version}, pinned ${pin.version}: regenerate tests/support/schemaChartKeys.json`);
        }
    });

    it("only open chart paths that exist for a reason", () => {
        for (const [chart, paths] of Object.entries(openPaths)) {
            for (const [key, reason] of Object.entries(paths)) {
                assert.ok(reason.length > 10, `${chart} ${key} needs a reason`);
            }
        }
    });

    it("catch a misspelt field, a wrong enum value and a wrong type", async () => {
        const rendered = await renderStack("dev");
        const gateway = createdObjects(rendered.resources).find((r) => r.type === "kubernetes:networking.istio.io/v1:Gateway")!;
        const bad: RecordedResource = structuredClone(gateway);
        bad.inputs.spec.servers[0].tls.minProtocolVersoin = "TLSV1_2";
        bad.inputs.spec.servers[0].tls.mode = "MUTUAL_TLS";
        bad.inputs.spec.servers[0].port.number = "11112";
        const [report] = await validateObjects([bad]);
        const text = report.problems.join("\n");
        assert.match(text, /minProtocolVersoin is not a field/);
        assert.match(text, /\/spec\/servers\/0\/tls\/mode must be equal to one of the allowed values/);
        assert.match(text, /\/spec\/servers\/0\/port\/number must be integer/);
        const deployment = createdObjects(rendered.resources).find((r) => r.type === "kubernetes:apps/v1:Deployment")!;
        const manifest = manifestOf(deployment);
        manifest.spec.template.spec.containers[0].securityContext.runAsNonRooot = true;
        assert.deepEqual(unknownFields((await modelFor("apps/v1", "Deployment"))!, manifest), ["/spec/template/spec/containers/0/securityContext/runAsNonRooot"]);
    });

    it("report an object whose kind has no schema", async () => {
        const [report] = await validateObjects([
            { type: "kubernetes:example.com/v1:Widget", name: "widget", inputs: { apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } } },
        ]);
        assert.equal(report.noSchema, true);
    });

    it("catch a Helm value the chart does not have", () => {
        const reference = chartReferences.find((r) => r.chart === "postgresql-ha")!;
        assert.deepEqual(valuesProblems(reference.chart, reference.tree, { postgresql: { replicaCont: 3, pdb: { create: "yes" } } }), [
            "postgresql.replicaCont is not a value of the chart",
            "postgresql.pdb.create is a string; the chart expects a boolean",
        ]);
    });
});
