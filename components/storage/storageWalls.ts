/**
 * Orthanc's way out to its object store, as a part of the tenant's walls (the `DatabaseWalls` shape, so the tenant
 * combines it with the database engine's): the mesh knows exactly the store's host names (REGISTRY_ONLY), the
 * NetworkPolicy opens what it can express (addresses), and Cilium's FQDN policy opens the names where the stack runs it.
 */
import { inClusterObjectStore, isIpv4Address, objectStorageHost, StorageConfig } from "../config/schema";
import { ciliumFqdnPolicy, ClusterNetwork } from "../database/backup";
import { TenantNames } from "../tenant/naming";
import { DatabaseWalls, namespaceNamed, tcp } from "../tenant/security";

/** Names of the storage walls' objects in the tenant namespace. */
export const storageWallNames = { serviceEntry: "orthanc-object-storage", ciliumPolicy: "allow-orthanc-to-object-storage" } as const;

export interface StorageEndpoint {
    /** Every host the plugin (and its SDK's credential exchange) connects to, by name or by address. */
    hosts: string[];
    port: number;
}

/**
 * Where the object-storage plugin connects: the store's endpoint (with a virtual-hosted bucket under it), and the
 * token endpoint of the credential it uses: AWS STS for IRSA's web identity (the SDK asks the regional endpoint: the
 * ServiceAccount's `sts-regional-endpoints` annotation has the EKS webhook set AWS_STS_REGIONAL_ENDPOINTS=regional), Google's OAuth2 for a service account key. Undefined for
 * postgresql and filesystem storage, whose pods reach no store of their own (the kubelet mounts the volume).
 */
export function storageEndpoint(storage: StorageConfig): StorageEndpoint | undefined {
    switch (storage.type) {
        case "s3": {
            const s3 = storage.s3!;
            const url = s3.endpoint !== undefined ? new URL(s3.endpoint) : undefined;
            const host = objectStorageHost(storage)!;
            const bucketHost = s3.addressing === "virtual-host" && !isIpv4Address(host) ? [`${s3.bucket}.${host}`] : [];
            const sts = s3.roleArn !== undefined ? [`sts.${s3.region}.amazonaws.com`] : [];
            return { hosts: [host, ...bucketHost, ...sts], port: url?.port ? Number(url.port) : 443 };
        }
        case "azure-blob":
            return { hosts: [objectStorageHost(storage)!], port: 443 };
        case "google-cloud-storage":
            return { hosts: [objectStorageHost(storage)!, "oauth2.googleapis.com"], port: 443 };
        default:
            return undefined;
    }
}

/** The labels the versitygw chart (0.3.4, templates/_helpers.tpl `versitygw.selectorLabels`) puts on its pods. */
export const inClusterObjectStorePodLabels = { "app.kubernetes.io/name": "versitygw", "app.kubernetes.io/instance": inClusterObjectStore.release } as const;

const noWalls: DatabaseWalls = { orthancEgress: [], network: [], authorization: [], serviceEntries: [], cniPolicies: [] };

export function storageWalls(names: TenantNames, orthancPods: Record<string, string>, storage: StorageConfig, network: ClusterNetwork): DatabaseWalls {
    if (storage.type === "s3" && storage.s3?.inCluster) {
        // Inside the mesh: the Service is in Istio's registry (no ServiceEntry), and the NetworkPolicy names the
        // server's pods by namespace and label, on the S3 port only (the admin port is the setup job's).
        const server = { ...namespaceNamed(inClusterObjectStore.namespace), podSelector: { matchLabels: inClusterObjectStorePodLabels } };
        return { ...noWalls, orthancEgress: [{ to: [server], ports: [tcp(inClusterObjectStore.port)] }] };
    }
    const endpoint = storageEndpoint(storage);
    if (!endpoint) return noWalls;
    const ns = names.namespace;
    const { port } = endpoint;
    const addressed = endpoint.hosts.filter(isIpv4Address);
    const named = endpoint.hosts.filter((host) => !isIpv4Address(host));
    const cidrs = [...addressed.map((address) => `${address}/32`), ...(storage.anyAddress ? ["0.0.0.0/0"] : storage.addresses ?? [])];
    const tlsPort = [{ number: port, name: `tls-storage-${port}`, protocol: "TLS" }];
    return {
        ...noWalls,
        orthancEgress: cidrs.length > 0 ? [{ to: cidrs.map((cidr) => ({ ipBlock: { cidr } })), ports: [tcp(port)] }] : [],
        serviceEntries: [
            ...(named.length > 0
                ? [
                      {
                          namespace: ns,
                          name: storageWallNames.serviceEntry,
                          // By name, no addresses: the sidecar matches the TLS session's SNI and connects to what the
                          // name resolves to today.
                          spec: { hosts: named, ports: tlsPort, location: "MESH_EXTERNAL", resolution: "DNS", exportTo: ["."] },
                      },
                  ]
                : []),
            ...addressed.map((address, index) => ({
                namespace: ns,
                name: `${storageWallNames.serviceEntry}-address-${index}`,
                // A store given by address: the mesh needs a name, and routes by the address (STATIC, as istiod's
                // validation requires for an address with a prefix length).
                spec: {
                    hosts: [`object-storage-${index}.orthanc.${ns}.internal`],
                    addresses: [`${address}/32`],
                    ports: tlsPort,
                    location: "MESH_EXTERNAL",
                    resolution: "STATIC",
                    endpoints: [{ address }],
                    exportTo: ["."],
                },
            })),
        ],
        cniPolicies:
            network.cni === "cilium"
                ? named.map((host, index) => ciliumFqdnPolicy(ns, `${storageWallNames.ciliumPolicy}-${index}`, orthancPods, host, port, network.dns))
                : [],
    };
}
