import { isIpv4Address } from "../config/schema";
import type { NamedSpec } from "./walls";

/**
 * The mesh's knowledge of a TLS peer outside it (REGISTRY_ONLY), visible in `namespace` alone: the hosts given by name
 * in one entry (`name`), which the sidecar matches by the session's SNI and connects to wherever the name resolves
 * today; each host given by IPv4 address in an entry of its own (`<name>-address-<i>`, named `addressHost(i)`),
 * routed by that address (STATIC, as istiod's validation requires for an address with a prefix length).
 */
export function externalTlsServiceEntries(namespace: string, name: string, hosts: string[], port: number, portName: string, addressHost: (index: number) => string): NamedSpec[] {
    const named = hosts.filter((host) => !isIpv4Address(host));
    const addressed = hosts.filter(isIpv4Address);
    const tlsPort = [{ number: port, name: portName, protocol: "TLS" }];
    return [
        ...(named.length > 0 ? [{ namespace, name, spec: { hosts: named, ports: tlsPort, location: "MESH_EXTERNAL", resolution: "DNS", exportTo: ["."] } }] : []),
        ...addressed.map((address, index) => ({
            namespace,
            name: `${name}-address-${index}`,
            spec: {
                hosts: [addressHost(index)],
                addresses: [`${address}/32`],
                ports: tlsPort,
                location: "MESH_EXTERNAL",
                resolution: "STATIC",
                endpoints: [{ address }],
                exportTo: ["."],
            },
        })),
    ];
}
