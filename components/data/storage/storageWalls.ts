/**
 * Orthanc's way out to its object store, as a part of the tenant's walls (the `DatabaseWalls` shape, so the tenant
 * combines it with the database engine's): the mesh knows exactly the store's host names (REGISTRY_ONLY), the
 * NetworkPolicy opens what it can express (addresses), and Cilium's FQDN policy opens the names where the stack runs it.
 */
import { inClusterObjectStore, isIpv4Address, objectStorageHost, StorageConfig } from "../../config/schema";
import { ciliumFqdnPolicy, ClusterNetwork } from "../backup/backup";
import { TenantNames } from "../../naming/tenantNames";
import type { DatabaseWalls } from "../endpoint";
import { namespaceNamed, tcp } from "../../k8s/walls";
import { externalTlsServiceEntries } from "../../k8s/externalServiceEntries";

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
    return {
        ...noWalls,
        orthancEgress: cidrs.length > 0 ? [{ to: cidrs.map((cidr) => ({ ipBlock: { cidr } })), ports: [tcp(port)] }] : [],
        // A store given by address still needs a name in the mesh.
        serviceEntries: externalTlsServiceEntries(ns, storageWallNames.serviceEntry, endpoint.hosts, port, `tls-storage-${port}`, (index) => `object-storage-${index}.orthanc.${ns}.internal`),
        cniPolicies:
            network.cni === "cilium"
                ? named.map((host, index) => ciliumFqdnPolicy(ns, `${storageWallNames.ciliumPolicy}-${index}`, orthancPods, host, port, network.dns))
                : [],
    };
}
