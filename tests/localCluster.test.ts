/**
 * The README's kind cluster for the `local` stack (section "Local cluster"): its port mappings reach every tenant's
 * node ports, and only from this machine. kind binds an extraPortMapping on every host address unless `listenAddress`
 * says otherwise (kind.sigs.k8s.io, "Configuration", Extra Port Mappings: "0.0.0.0 is the current default"), which
 * would open the local stack's tenants, with its example credentials, to the network the laptop is on.
 */
import { strict as assert } from "assert";
import { readFileSync } from "fs";
import * as path from "path";
import { parse } from "yaml";
import { parsedStackFile } from "./support/stacks";

const readme = readFileSync(path.join(__dirname, "..", "README.md"), "utf8");

describe("the README's kind cluster for the local stack", () => {
    const config = /cat > kind\.yaml <<'KIND'\n([^]*?)\nKIND\n/.exec(readme)?.[1];
    const mappings = () => (parse(config!) as { nodes: { extraPortMappings?: Record<string, unknown>[] }[] }).nodes.flatMap((node) => node.extraPortMappings ?? []);

    it("is in the README", () => assert.ok(config, "no `cat > kind.yaml <<'KIND'` block"));

    it("binds every mapped port on the loopback address only", () => {
        assert.ok(mappings().length > 0);
        for (const mapping of mappings()) {
            assert.equal(mapping.listenAddress, "127.0.0.1", JSON.stringify(mapping));
        }
    });

    it("maps every tenant's node ports of the local stack, each to the same port on the host", () => {
        const nodePorts = parsedStackFile("local").tenants.flatMap((tenant) => (tenant.nodePorts ? [tenant.nodePorts.https, tenant.nodePorts.dicom] : []));
        assert.deepEqual(mappings().map((mapping) => mapping.containerPort).sort(), [...nodePorts].sort());
        for (const mapping of mappings()) assert.equal(mapping.hostPort, mapping.containerPort);
    });
});
