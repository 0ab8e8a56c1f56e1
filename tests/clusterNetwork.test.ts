/**
 * Where every pod's DNS goes (korthweb:kubernetes.dns): the floor NetworkPolicy of both tenant namespaces opens the
 * cluster's own DNS and nothing else, on kind, minikube and the clouds (kube-system, k8s-app=kube-dns, 53), OpenShift
 * (openshift-dns, pods on 5353 behind the Service's 53) and with NodeLocal DNSCache (a link-local address).
 */
import { strict as assert } from "assert";
import { clusterDns, DnsConfig } from "../components/config/schema";
import { tenantNames } from "../components/naming/tenantNames";
import { networkPolicies, PolicyContext } from "../components/tenant/security";
import { kubernetesObjects, parsedStackFile, renderStack } from "./support/stacks";

const names = tenantNames("bhs", "orthweb.example");
const context = (dns?: DnsConfig): PolicyContext => ({
    tenant: "bhs",
    names,
    istioNamespace: "istio-system",
    monitoringNamespace: "monitoring",
    modalityDestinations: [],
    database: { orthancEgress: [], network: [], authorization: [], serviceEntries: [] },
    dns,
});
/** The DNS rule of each namespace's floor policy. */
const dnsRules = (ctx: PolicyContext) =>
    networkPolicies(ctx)
        .filter((p) => p.name === "allow-dns-and-istiod")
        .map((p) => (p.spec.egress as any[])[0]);

describe("cluster DNS in the tenants' NetworkPolicies", () => {
    it("opens kube-system's kube-dns pods on 53, UDP and TCP, when the stack says nothing", () => {
        for (const rule of [...dnsRules(context()), ...dnsRules(context(clusterDns({})))]) {
            assert.deepEqual(rule, {
                to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } }, podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }],
                ports: [
                    { protocol: "UDP", port: 53 },
                    { protocol: "TCP", port: 53 },
                ],
            });
        }
    });

    it("on OpenShift, opens openshift-dns's DNS pods on 5353, the port NetworkPolicies see behind the Service's 53", () => {
        const rules = dnsRules(context(clusterDns({ platform: "openshift" })));
        assert.equal(rules.length, 2, "both namespaces");
        for (const rule of rules) {
            assert.deepEqual(rule.to, [
                { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "openshift-dns" } }, podSelector: { matchLabels: { "dns.operator.openshift.io/daemonset-dns": "default" } } },
            ]);
            assert.deepEqual(rule.ports, [
                { protocol: "UDP", port: 5353 },
                { protocol: "TCP", port: 5353 },
            ]);
        }
    });

    it("with NodeLocal DNSCache, opens its link-local address, which no podSelector reaches (a hostNetwork pod)", () => {
        const [rule] = dnsRules(context({ addresses: ["169.254.20.10/32"], ports: [53] }));
        assert.deepEqual(rule.to, [{ ipBlock: { cidr: "169.254.20.10/32" } }]);
    });

    it("carries the stack's setting into the rendered policies (the external example runs NodeLocal DNSCache)", async () => {
        const rendered = await renderStack("external");
        const floors = kubernetesObjects(rendered).filter((r) => r.type === "kubernetes:networking.k8s.io/v1:NetworkPolicy" && r.inputs.metadata.name === "allow-dns-and-istiod");
        assert.equal(floors.length, 4, "two tenants, two namespaces each");
        const addresses = parsedStackFile("external").kubernetes.dns?.addresses ?? [];
        assert.ok(addresses.includes("169.254.20.10/32"), "the example lists NodeLocal DNSCache's link-local address");
        for (const floor of floors) {
            assert.deepEqual(floor.inputs.spec.egress[0].to, addresses.map((cidr) => ({ ipBlock: { cidr } })));
        }
    });
});
