/**
 * The preview identity: what it may do (RBAC, against every kind the rendered stacks create) and what the admission
 * policy lets through (tests/upstream/admissionPolicy.ts models the API server's decision).
 */
import { strict as assert } from "assert";
import { parseStackConfig } from "../components/config/load";
import {
    defaultPreviewIdentity,
    previewAdmissionPolicySpec,
    previewClusterRoleRules,
    previewedKinds,
} from "../components/platform/previewAccess";
import { serviceAccountUsername } from "../components/k8s/serviceAccount";
import { AdmissionAttributes, CelError, evaluateCel, policyDecision, rbacRuleAllows, resourceOfType } from "./upstream/admissionPolicy";
import { validateObjects } from "./support/schemaValidation";
import { allStacks, kubernetesObjects, ofType, renderStack } from "./support/stacks";

const previewUser = serviceAccountUsername(defaultPreviewIdentity.namespace, defaultPreviewIdentity.serviceAccount);
const spec = previewAdmissionPolicySpec(previewUser) as any;

const write = (patch: Partial<AdmissionAttributes>): AdmissionAttributes => ({
    username: previewUser,
    operation: "UPDATE",
    group: "apps",
    version: "v1",
    resource: "deployments",
    namespace: "orthanc-bhs",
    name: "orthanc-26-8-1",
    dryRun: false,
    ...patch,
});

/** Writes of every operation, on namespaced, cluster-scoped and subresource targets, the fence's own objects included. */
const writes: AdmissionAttributes[] = [
    write({ operation: "CREATE" }),
    write({}),
    write({ operation: "DELETE" }),
    write({ subresource: "scale" }),
    write({ group: "", resource: "pods", subresource: "exec", operation: "CONNECT", name: "orthanc-0" }),
    write({ group: "", resource: "namespaces", namespace: undefined, name: "orthanc-bhs", operation: "DELETE" }),
    write({ group: "rbac.authorization.k8s.io", resource: "clusterrolebindings", namespace: undefined, name: "admin", operation: "CREATE" }),
    write({ group: "admissionregistration.k8s.io", resource: "validatingadmissionpolicybindings", namespace: undefined, name: "korthweb-preview", operation: "DELETE" }),
    write({ group: "networking.istio.io", version: "v1", resource: "gateways", operation: "CREATE" }),
];

describe("preview access: the admission policy", () => {
    it("denies every write by the preview identity that is not a dry run", () => {
        for (const attributes of writes) {
            const decision = policyDecision(spec, attributes);
            assert.equal(decision.decision, "deny", JSON.stringify(attributes));
        }
    });

    it("admits the same writes as dry runs", () => {
        // CONNECT has no dry run; the others are what a server-side preview sends.
        for (const attributes of writes.filter((w) => w.operation !== "CONNECT")) {
            assert.deepEqual(policyDecision(spec, { ...attributes, dryRun: true }), { decision: "admit" }, JSON.stringify(attributes));
        }
    });

    it("leaves every other identity untouched, one without a name included", () => {
        const others = ["system:serviceaccount:korthweb-preview:default", "system:serviceaccount:kube-system:korthweb-preview", "alice@example.org", ""];
        for (const username of others) {
            for (const attributes of writes) {
                assert.deepEqual(policyDecision(spec, { ...attributes, username }), { decision: "not matched" }, `${username} ${JSON.stringify(attributes)}`);
            }
        }
    });

    it("needs its has() guard: without it, a request with no user name would be refused for everyone", () => {
        const unguarded = { ...spec, matchConditions: [{ name: "x", expression: `request.userInfo.username == ${JSON.stringify(previewUser)}` }] };
        assert.equal(policyDecision(unguarded, write({ username: "" })).decision, "deny");
        assert.equal(policyDecision(spec, write({ username: "" })).decision, "not matched");
    });

    it("needs both resource rules: '*' alone misses subresources", () => {
        const resourcesOnly = { ...spec, matchConstraints: { resourceRules: [{ ...spec.matchConstraints.resourceRules[0], resources: ["*"] }] } };
        assert.equal(policyDecision(resourcesOnly, write({ subresource: "scale" })).decision, "not matched");
        assert.equal(policyDecision(spec, write({ subresource: "scale" })).decision, "deny");
    });

    it("is read by a CEL model that errors on a missing field and absorbs errors as CEL does", () => {
        const request = { request: { userInfo: {}, dryRun: false } };
        assert.ok(evaluateCel("request.userInfo.username == \"a\"", request) instanceof CelError);
        assert.equal(evaluateCel("has(request.userInfo.username) && request.userInfo.username == \"a\"", request), false);
        assert.equal(evaluateCel("request.userInfo.username == \"a\" || request.dryRun == false", request), true);
        assert.throws(() => evaluateCel("request.userInfo.username.startsWith(\"a\")", request), /CEL subset/);
    });
});

describe("preview access: RBAC", () => {
    const rules = previewClusterRoleRules(previewedKinds) as any[];
    /** Left out on purpose (components/platform/previewAccess.ts): a dry-run patch answers with the object's data. */
    const notGranted = new Set(["/secrets"]);

    it("lets the identity read and dry-run every kind the rendered stacks create, Secrets excepted", async () => {
        const missing = new Set<string>();
        const seen = new Set<string>();
        for (const stack of allStacks) {
            for (const object of kubernetesObjects(await renderStack(stack))) {
                const target = resourceOfType(object.type)!;
                const key = `${target.group}/${target.resource}`;
                seen.add(key);
                if (notGranted.has(key)) continue;
                for (const verb of ["get", "list", "watch", "create", "update", "patch"]) {
                    if (!rbacRuleAllows(rules, { verb, group: target.group, resource: target.resource })) missing.add(`${verb} ${key} (${object.type})`);
                }
            }
        }
        assert.deepEqual([...missing], []);
        // The exception is real (the stacks do create Secrets), and the preview's own objects are among what is covered.
        assert.ok(seen.has("/secrets"));
        for (const key of ["rbac.authorization.k8s.io/clusterroles", "admissionregistration.k8s.io/validatingadmissionpolicies"]) assert.ok(seen.has(key), key);
    });

    it("grants nothing on Secrets, no delete, and no verb that escalates", () => {
        for (const verb of ["get", "list", "watch", "create", "update", "patch"]) assert.equal(rbacRuleAllows(rules, { verb, group: "", resource: "secrets" }), false, verb);
        const verbs = new Set(rules.flatMap((rule) => rule.verbs));
        for (const verb of ["delete", "deletecollection", "escalate", "bind", "impersonate", "*"]) assert.ok(!verbs.has(verb), verb);
        assert.ok(rules.every((rule) => !rule.apiGroups.includes("*") && !rule.resources.includes("*")));
    });
});

describe("preview access: the rendered stack", () => {
    it("creates the identity, its role and the fence, binding the role only after the fence", async () => {
        const rendered = await renderStack("dev");
        const one = (type: string) => {
            const found = ofType(rendered, type).filter((r) => r.name.startsWith("preview-access"));
            assert.equal(found.length, 1, type);
            return found[0];
        };
        const account = one("kubernetes:core/v1:ServiceAccount");
        assert.deepEqual([account.inputs.metadata.namespace, account.inputs.metadata.name], [defaultPreviewIdentity.namespace, defaultPreviewIdentity.serviceAccount]);
        const policy = one("kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy");
        const binding = one("kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding");
        assert.equal(binding.inputs.spec.policyName, policy.inputs.metadata.name);
        assert.deepEqual(binding.inputs.spec.validationActions, ["Deny"]);
        // The rendered policy, not the builder: a non-dry-run write by the rendered subject is denied.
        const roleBinding = one("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding");
        const [subject] = roleBinding.inputs.subjects;
        const username = serviceAccountUsername(subject.namespace, subject.name);
        assert.equal(policyDecision(policy.inputs.spec, write({ username })).decision, "deny");
        assert.deepEqual(policyDecision(policy.inputs.spec, write({ username, dryRun: true })), { decision: "admit" });
        assert.ok(roleBinding.options?.dependsOn.some((urn) => urn.endsWith(binding.name)), "the role binding waits for the policy binding");
        assert.deepEqual(rendered.outputs.previewServiceAccount, { namespace: defaultPreviewIdentity.namespace, name: defaultPreviewIdentity.serviceAccount });
    });

    it("validates the preview objects against the upstream schemas", async () => {
        const objects = kubernetesObjects(await renderStack("dev")).filter((r) => r.name.startsWith("preview-access"));
        assert.equal(objects.length, 6);
        const reports = await validateObjects(objects);
        assert.deepEqual(reports.filter((r) => r.noSchema || r.problems.length > 0).map((r) => `${r.object}: ${r.problems.join("; ")}`), []);
    });

    it("is on by default and can be turned off per stack", () => {
        const minimal = { domain: "orthweb.example.org", ingress: { serviceType: "LoadBalancer" }, tenants: [{ name: "bhs", displayName: "B" }] };
        assert.equal(parseStackConfig(minimal).preview.enabled, true);
        assert.equal(parseStackConfig({ ...minimal, preview: { enabled: false } }).preview.enabled, false);
    });
});
