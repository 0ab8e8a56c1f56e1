/**
 * `korthweb:ingress.loadBalancerSourceRanges`: the client networks every tenant's gateway LoadBalancer admits, as the
 * Service's `loadBalancerSourceRanges` (Kubernetes enforces them at the cloud's load balancer or, where it cannot, in
 * kube-proxy on the nodes: kubernetes.io, "Create an External Load Balancer", Preserving the client source IP /
 * "Specifying source ranges"). Validated as CIDR blocks, and only with a LoadBalancer.
 */
import { strict as assert } from "assert";
import { ConfigError, parseStackConfig } from "../components/config/load";
import { isCidrBlock } from "../components/config/schema";
import { gatewayServiceSpec } from "../components/tenant/ingress";
import { tenantNames } from "../components/naming/tenantNames";
import { kubernetesObjects, parsedStackFile, renderStack } from "./support/stacks";

const base = (ingress: Record<string, unknown>) => ({ domain: "orthweb.example.org", ingress, tenants: [{ name: "bhs", displayName: "B" }] });

describe("the gateways' load balancer source ranges", () => {
    const blocks: [string, boolean][] = [
        ["203.0.113.0/24", true],
        ["10.0.0.1/32", true],
        ["0.0.0.0/0", true],
        ["2001:db8::/32", true],
        ["2001:db8:0:0:0:0:0:1/128", true],
        ["203.0.113.5/24", false],
        ["2001:db8::1/64", false],
        ["10.0.0.0/33", false],
        ["10.0.0.0", false],
        ["::ffff:10.0.0.0/104", false],
        ["010.0.0.0/8", false],
        ["example.org/24", false],
    ];
    for (const [block, valid] of blocks) {
        it(`${valid ? "accepts" : "refuses"} ${block}`, () => assert.equal(isCidrBlock(block), valid));
    }

    it("refuses a range that is no CIDR block, and ranges without a LoadBalancer, naming the setting", () => {
        const problems = (ingress: Record<string, unknown>) => {
            try {
                parseStackConfig(base(ingress));
                return "";
            } catch (error) {
                assert.ok(error instanceof ConfigError);
                return error.message;
            }
        };
        assert.match(problems({ serviceType: "LoadBalancer", loadBalancerSourceRanges: ["203.0.113.5/24"] }), /korthweb:ingress\.loadBalancerSourceRanges\[0\] is "203\.0\.113\.5\/24"; allowed: a CIDR block with its host bits zero/);
        assert.match(problems({ serviceType: "NodePort", loadBalancerSourceRanges: ["203.0.113.0/24"] }), /korthweb:ingress\.loadBalancerSourceRanges .*allowed: nothing unless korthweb:ingress\.serviceType is "LoadBalancer" \(it is "NodePort"\)/);
        assert.match(problems({ serviceType: "LoadBalancer", loadBalancerSourceRanges: [] }), /loadBalancerSourceRanges .*at least 1/);
        assert.equal(problems({ serviceType: "LoadBalancer", loadBalancerSourceRanges: ["203.0.113.0/24", "2001:db8::/32"] }), "");
    });

    it("puts them on a LoadBalancer Service only, and none when unset", () => {
        const names = tenantNames("bhs", "orthweb.example.org");
        const ranges = ["203.0.113.0/24"];
        assert.deepEqual(gatewayServiceSpec(names, { serviceType: "LoadBalancer", loadBalancerSourceRanges: ranges }).loadBalancerSourceRanges, ranges);
        assert.equal("loadBalancerSourceRanges" in gatewayServiceSpec(names, { serviceType: "LoadBalancer" }), false);
        assert.equal("loadBalancerSourceRanges" in gatewayServiceSpec(names, { serviceType: "NodePort", loadBalancerSourceRanges: ranges }), false);
    });

    it("the external example stack's gateway Services admit only its ranges, every tenant's", async () => {
        const expected = parsedStackFile("external").ingress.loadBalancerSourceRanges;
        assert.ok(expected);
        const rendered = await renderStack("external");
        const gateways = kubernetesObjects(rendered).filter((r) => r.type === "kubernetes:core/v1:Service" && r.inputs.spec?.type === "LoadBalancer");
        assert.equal(gateways.length, parsedStackFile("external").tenants.length);
        for (const service of gateways) {
            assert.deepEqual(service.inputs.spec.loadBalancerSourceRanges, expected, service.name);
        }
    });
});
