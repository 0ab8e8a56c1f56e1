/**
 * Synchronous replication as the engines render it and as PostgreSQL reads it. Models, not the code:
 *
 * - PostgreSQL 17 documentation (runtime-config-replication, `synchronous_standby_names`; checked on the real server
 *   by tests/integration/failover.test.ts): `FIRST n (names)`, `ANY n (names)`,
 *   `n (names)` (the same as FIRST) or a bare list (FIRST 1); names match a standby's application_name, `*` any. A
 *   commit with `synchronous_commit = on` returns once n of the listed standbys that are connected have flushed it; an
 *   empty setting makes every commit wait for the primary alone.
 * - bitnami/charts postgresql-ha 16.3.2, templates/postgresql/statefulset.yaml: with `postgresql.syncReplication`
 *   the pods get POSTGRESQL_NUM_SYNCHRONOUS_REPLICAS = replicaCount - 1, and POSTGRESQL_SYNCHRONOUS_REPLICAS_MODE from
 *   `syncReplicationMode` when set; REPMGR_PARTNER_NODES lists every pod's FQDN.
 * - bitnami/containers postgresql-repmgr 17 (debian-12), rootfs/opt/bitnami/scripts: librepmgr.sh
 *   `repmgr_initialize` calls `postgresql_configure_synchronous_replication` only for the primary on its first boot
 *   (POSTGRESQL_FIRST_BOOT), with POSTGRESQL_CLUSTER_APP_NAME = REPMGR_PARTNER_NODES; libpostgresql.sh renders
 *   `[MODE ]N ("<first DNS label of each partner>", ...)` into postgresql.conf, which lives under
 *   /opt/bitnami/postgresql/conf (postgresql-env.sh) and is regenerated from the sample at every start
 *   (`repmgr_inject_postgresql_configuration`). Standbys never get it; a restarted or promoted node runs without it.
 *   Init scripts (`postgresql_custom_init_scripts`) run once, on that same first boot, with the server up.
 * - cloudnative-pg v1.30.0, pkg/postgres/replication/explicit.go and pkg/postgres/configuration.go
 *   (`SynchronousStandbyNamesConfig.String`): `required` lists every instance (ready standbys, other standbys, the
 *   primary last) as `METHOD N ("a","b",...)`; `preferred` lists only healthy standbys, caps N at their count, and
 *   renders nothing (asynchronous) when none is healthy.
 */

export interface SynchronousStandbyNames {
    method: "FIRST" | "ANY";
    num: number;
    names: string[];
}

/** PostgreSQL's reading of `synchronous_standby_names`; undefined when empty (no commit waits for a standby). */
export function parseSynchronousStandbyNames(value: string | undefined): SynchronousStandbyNames | undefined {
    const text = (value ?? "").trim();
    if (text === "") {
        return undefined;
    }
    const match = /^(?:(FIRST|ANY)\s+)?(?:(\d+)\s*\((.*)\))?$/i.exec(text);
    const splitNames = (list: string) => list.split(",").map((name) => name.trim().replace(/^"(.*)"$/, "$1").replace(/""/g, '"'));
    if (match && match[2] !== undefined) {
        return { method: (match[1]?.toUpperCase() as "FIRST" | "ANY" | undefined) ?? "FIRST", num: Number(match[2]), names: splitNames(match[3]) };
    }
    if (match && match[1] !== undefined) {
        throw new Error(`not a synchronous_standby_names PostgreSQL accepts: ${value}`);
    }
    return { method: "FIRST", num: 1, names: splitNames(text) };
}

/** Whether a commit returns while these standbys (application names) are connected and streaming. */
export function commitReturns(value: string | undefined, connectedStandbys: readonly string[]): boolean {
    const parsed = parseSynchronousStandbyNames(value);
    if (!parsed) {
        return true;
    }
    const listed = connectedStandbys.filter((name) => parsed.names.includes("*") || parsed.names.includes(name));
    return listed.length >= parsed.num;
}

/** Whether a commit returns with `lost` of the `standbys` gone (which ones does not matter to the count). */
export function commitsWithStandbysLost(value: string | undefined, standbys: readonly string[], lost: number): boolean {
    return commitReturns(value, standbys.slice(lost));
}

/** Whether every acknowledged commit is on some standby too: the primary never commits alone. */
export function acknowledgedCommitReachesAStandby(value: string | undefined): boolean {
    const parsed = parseSynchronousStandbyNames(value);
    return parsed !== undefined && parsed.num >= 1;
}

/** Where the Bitnami image leaves `synchronous_standby_names` of a node, from the chart's values. */
export type BitnamiNodeLife = "first boot of the first primary" | "any later start, or a promoted standby";

export function bitnamiChartSynchronousStandbyNames(
    postgresql: { syncReplication?: boolean; syncReplicationMode?: string; replicaCount: number },
    podNames: readonly string[],
    life: BitnamiNodeLife,
): string | undefined {
    const numSynchronous = postgresql.syncReplication ? postgresql.replicaCount - 1 : 0;
    if (life !== "first boot of the first primary" || numSynchronous <= 0) {
        return undefined;
    }
    const rendered = `${numSynchronous} (${podNames.map((name) => `"${name}"`).join(",")})`;
    return postgresql.syncReplicationMode ? `${postgresql.syncReplicationMode} ${rendered}` : rendered;
}

/** The instance names CloudNativePG gives a Cluster's pods: `<cluster>-<serial>`, from 1. */
export function cnpgInstanceNames(cluster: string, instances: number): string[] {
    return Array.from({ length: instances }, (_, index) => `${cluster}-${index + 1}`);
}

/** What CloudNativePG renders for a Cluster's `postgresql.synchronous`, given its instances, primary and healthy ones. */
export function cnpgSynchronousStandbyNames(
    synchronous: { method: "any" | "first"; number: number; dataDurability?: "required" | "preferred" } | undefined,
    instances: readonly string[],
    primary: string,
    healthy: readonly string[] = instances,
): string | undefined {
    if (!synchronous) {
        return undefined;
    }
    const standbys = instances.filter((name) => name !== primary);
    const method = synchronous.method.toUpperCase();
    const quote = (names: string[]) => names.map((name) => `"${name.replace(/"/g, '""')}"`).join(",");
    if ((synchronous.dataDurability ?? "required") === "required") {
        const ready = standbys.filter((name) => healthy.includes(name));
        const others = standbys.filter((name) => !healthy.includes(name));
        return `${method} ${synchronous.number} (${quote([...ready, ...others, primary])})`;
    }
    const healthyStandbys = standbys.filter((name) => healthy.includes(name));
    if (healthyStandbys.length === 0) {
        return undefined;
    }
    return `${method} ${Math.min(synchronous.number, healthyStandbys.length)} (${quote(healthyStandbys)})`;
}
