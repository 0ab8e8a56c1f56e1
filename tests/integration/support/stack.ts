/**
 * A tenant's Orthanc stack on this machine: one throwaway PostgreSQL and Orthanc replicas rendered from the tenant's
 * configuration. Shared by the integration suite and the benchmark.
 */
import { parseStackConfig } from "../../../components/config/load";
import { StackConfig, TenantConfig } from "../../../components/config/schema";
import { OrthancConfig } from "../../../components/tenant/orthancConfig";
import { Credentials, adminCredentials, differencesFromImage, formatVersions, generatePassword, productionConfig, Replica, ReplicaOptions, reportedVersions, ReportedVersions, startReplica } from "./orthanc";
import { OrthancRootName } from "./prerequisites";
import { Postgres, startPostgres } from "./postgres";
import { Resources } from "./processes";
import { callingAeTitle } from "./dcmtk";

export const testDomain = "orthweb.example";

/** A modality entry as the stack configuration file spells it. */
export interface TestModality {
    name: string;
    aeTitle: string;
    host?: string;
    port?: number;
}

/**
 * Two tenants, as a stack configuration file would declare them; defaults come from the program's schema.
 * `moreBhsModalities` are registered for the first tenant (bhs) after the suite's own.
 */
export function testStackConfig(moreBhsModalities: TestModality[] = []): StackConfig {
    return parseStackConfig({
        domain: testDomain,
        ingress: { serviceType: "NodePort" },
        tenants: [
            // The calling AE title the suite's DCMTK tools use: Orthanc answers registered modalities only.
            { name: "bhs", displayName: "B", modalities: [{ name: "test-modality", aeTitle: callingAeTitle }, ...moreBhsModalities] },
            { name: "mhr", displayName: "M", modalities: [{ name: "test-modality", aeTitle: callingAeTitle }] },
        ],
    });
}

export interface TenantStack {
    readonly tenant: TenantConfig;
    readonly postgres: Postgres;
    /** What the program renders for the tenant (before adaptForLaptop), with this run's generated passwords. */
    readonly config: OrthancConfig;
    readonly admin: Credentials;
    /** Starts one more replica of the tenant on the shared database. */
    startReplica(
        resources: Resources,
        name: string,
        extend?: (config: OrthancConfig, workDirectory: string) => OrthancConfig,
        options?: Pick<ReplicaOptions, "env" | "root">,
    ): Promise<Replica>;
}

/** Starts PostgreSQL (released with `resources`) and renders the tenant's configuration with fresh credentials. */
export async function startTenantStack(resources: Resources, tenant: TenantConfig = testStackConfig().tenants[0]): Promise<TenantStack> {
    const postgres = await startPostgres(resources);
    const config = productionConfig(tenant, testDomain, generatePassword(), postgres.password);
    return {
        tenant,
        postgres,
        config,
        admin: adminCredentials(config),
        startReplica: (replicaResources, name, extend, options) => startReplica(replicaResources, { ...options, name, config, postgres, extend, tenant }),
    };
}

/** What the real stack runs: Orthanc and its plugins as a replica reports them, and the PostgreSQL server's version. */
export interface StackVersions extends ReportedVersions {
    postgresql: string;
}

/**
 * Boots a replica of the rendered configuration in Orthanc root `root` on a fresh PostgreSQL, asks both what they
 * run, and stops them (released with `resources`).
 */
export async function probeVersions(resources: Resources, root: OrthancRootName = "sid"): Promise<StackVersions> {
    const stack = await startTenantStack(resources);
    const replica = await stack.startReplica(resources, `versions-${root}`, undefined, { root });
    return { ...(await reportedVersions(replica)), postgresql: await stack.postgres.asSuperuser("SHOW server_version") };
}

/**
 * What the real stack runs, probed on a stack of its own (stopped before it returns) and printed with `log`; throws
 * unless it is the pinned image's versions. The benchmark and the soak start with it.
 */
export async function requirePinnedVersions(log: (line: string) => void): Promise<StackVersions> {
    const probe = new Resources();
    let versions: StackVersions;
    try {
        versions = await probeVersions(probe);
    } finally {
        await probe.release();
    }
    log(`${formatVersions(versions)}; PostgreSQL ${versions.postgresql} (host)`);
    const differences = differencesFromImage(versions);
    if (differences.length > 0) {
        throw new Error(`The Orthanc root does not run the pinned image's versions:\n  - ${differences.join("\n  - ")}`);
    }
    return versions;
}
