/**
 * The node ports the stack outputs report for a tenant's gateway, which `scripts/run smoke` and `modality-cert` dial
 * when present: a NodePort Service's only, although the API server allocates node ports to LoadBalancer Services too
 * (tests/upstream/serviceNodePorts.ts).
 */
import { strict as assert } from "assert";
import { exposedNodePorts } from "../components/tenant/gateway";
import { gatewayServiceSpec } from "../components/tenant/ingress";
import { tenantNames } from "../components/naming/tenantNames";
import { withAllocatedNodePorts } from "./upstream/serviceNodePorts";

describe("the gateway's node ports in the stack outputs", () => {
    for (const [serviceType, nodePorts, expected] of [
        ["LoadBalancer", undefined, {}],
        ["ClusterIP", undefined, {}],
        ["NodePort", { https: 30443, dicom: 31112 }, { https: 30443, dicom: 31112 }],
    ] as const) {
        it(`${serviceType}: ${Object.keys(expected).length ? "the Service's node ports" : "none, whatever the API server allocated"}`, () => {
            const spec = withAllocatedNodePorts(gatewayServiceSpec(tenantNames("bhs", "dev.orthweb.example"), { serviceType, nodePorts }) as never);
            if (serviceType === "LoadBalancer") assert.ok(spec.ports.every((port) => port.nodePort !== undefined)); // what smoke used to dial
            assert.deepEqual(exposedNodePorts(spec), expected);
        });
    }
});
