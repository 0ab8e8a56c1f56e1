/**
 * The data tier: everything that holds a tenant's data, behind the shapes of ./endpoint.ts. The tenant calls two things
 * here: `dataWalls` (its walls exist before anything of the tier runs) and `tenantData`. Nothing under components/data/
 * imports from components/tenant/ (tests/layout.test.ts); names and identities come from components/naming/, wall
 * primitives from components/k8s/walls.ts.
 *
 * - engines/: the database engines, `bitnami-ha` (bitnamiHa.ts, its chart values in bitnamiHaValues.ts),
 *   `cloudnative-pg` and `external`; databaseWalls.ts: each engine's part of the walls.
 * - backup/: the index's scheduled backups and the bucket's policies.
 * - storage/: where the DICOM files live (Orthanc's storage settings, the store's resources, its guard and walls).
 */
import type * as pulumi from "@pulumi/pulumi";
import type { TenantConfig } from "../config/schema";
import type { TenantNames } from "../naming/tenantNames";
import { combineWalls, defaultClusterNetwork } from "./backup/backup";
import { databaseWalls, PlatformForWalls } from "./databaseWalls";
import type { DatabaseEndpoint, DatabaseWalls, EngineArgs } from "./endpoint";
import { TenantDatabase } from "./engines/bitnamiHa";
import { rendersAuditDatabase, signsInThroughGatekeeper } from "./engines/auditDatabase";
import { bitnamiHaAuditWalls } from "./engines/bitnamiHaAudit";
import { cloudnativePgAuditWalls } from "./engines/cloudnativePgAudit";
import { CloudNativePgDatabase } from "./engines/cloudnativePg";
import { ExternalDatabase, externalAuditWalls } from "./engines/external";
import { storageWalls } from "./storage/storageWalls";
import { InClusterStore, TenantStorage } from "./storage/tenantStorage";

export type { ClusterNetwork } from "./backup/backup";
export type { PlatformForWalls } from "./databaseWalls";
export type { DatabaseEndpoint, DatabaseWalls, OrthancPodAdditions } from "./endpoint";
export type { StorageIdentity } from "./storage/storageIdentity";
export type { InClusterStore } from "./storage/tenantStorage";
// combineWalls: for the tenant to add its other children's walls (an identity gateway's) to the tier's.
export { combineWalls, defaultClusterNetwork, TenantStorage };

/** The data tier's part of the tenant's walls: its database engine's (the backup's with it) and its file store's. */
export function dataWalls(names: TenantNames, orthancPods: Record<string, string>, tenant: TenantConfig, platform: PlatformForWalls = {}): DatabaseWalls {
    return combineWalls(
        databaseWalls(names, orthancPods, tenant.database, platform),
        storageWalls(names, orthancPods, tenant.storage, platform.network ?? defaultClusterNetwork),
        // The gatekeeper's audit database, its setup and retention jobs (engines/bitnamiHaAudit.ts, cloudnativePgAudit.ts).
        ...(rendersAuditDatabase(tenant) ? [(tenant.database.engine === "cloudnative-pg" ? cloudnativePgAuditWalls : bitnamiHaAuditWalls)(tenant.name, names)] : []),
        // Or the one the site's DBA made on a managed server (engines/external.ts).
        ...(tenant.database.external?.audit && signsInThroughGatekeeper(tenant) ? [externalAuditWalls(tenant.name, names, tenant.database.external)] : []),
    );
}

export interface TenantDataArgs extends EngineArgs {
    /** This stack's outputs as its previous update left them (a StackReference to itself), for the storage guard. */
    previousOutputs: pulumi.Input<Record<string, unknown>>;
    /** The stack's in-cluster S3 server, for a tenant with `storage.s3.inCluster`: its key pair and the bucket setup. */
    objectStore?: InClusterStore;
}

/** What the tenant gets back: where Orthanc's index is, and its file store (settings, pod additions, guard). */
export interface TenantData {
    database: DatabaseEndpoint;
    storage: TenantStorage;
}

/**
 * The tenant's database, by its engine, and its file store, as children of the caller (`opts.parent`). No component
 * of their own: the resources keep the names and URNs they had before the tier moved here.
 */
export function tenantData(name: string, args: TenantDataArgs, opts: pulumi.ComponentResourceOptions): TenantData {
    const { previousOutputs, objectStore, ...engine } = args;
    const database = tenantDatabase(`${name}-database`, engine, opts);
    const storage = new TenantStorage(
        `${name}-storage`,
        { tenant: args.tenant, namespace: args.namespace, previousOutputs, dependsOn: args.dependsOn, inCluster: objectStore },
        opts,
    );
    return { database: database.endpoint, storage };
}

/** The tenant's database, by the engine its configuration names. */
export function tenantDatabase(name: string, args: EngineArgs, opts: pulumi.ComponentResourceOptions): { endpoint: DatabaseEndpoint } {
    switch (args.tenant.database.engine) {
        case "bitnami-ha":
            return new TenantDatabase(name, args, opts);
        case "cloudnative-pg":
            if (!args.cloudnativePg) {
                throw new Error("the cloudnative-pg engine needs the platform's CloudNativePG operator (index.ts installs it when a tenant uses it)");
            }
            return new CloudNativePgDatabase(name, { ...args, operator: args.cloudnativePg }, opts);
        case "external":
            return new ExternalDatabase(name, args, opts);
    }
}
