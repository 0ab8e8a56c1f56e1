/**
 * Connections between Orthanc and PostgreSQL through Pgpool-II, as the pieces count them:
 * - orthanc-server/orthanc-databases (read on the mirror orthanc-mirrors/orthanc-databases, branch
 *   OrthancPostgreSQL-10.3, the plugin in image 26.8.1): PostgreSQL/Plugins/IndexPlugin.cpp reads
 *   `IndexConnectionsCount` (default 50 since 7.0; 1 in 4.0 and 5.0) and Framework/Plugins/IndexConnectionsPool.cpp
 *   opens all of them at start; PostgreSQL/Plugins/StoragePlugin.cpp keeps one more connection of its own when
 *   `EnableStorage` is on. Neither the lock nor housekeeping opens another.
 * - bitnami/charts postgresql-ha 16.3.2 (values.yaml, templates/pgpool/deployment.yaml): `pgpool.numInitChildren` and
 *   `pgpool.maxPool` empty mean Pgpool's defaults 32 and 15; `pgpool.reservedConnections` defaults to 1. Pgpool-II
 *   refuses a client ("Sorry, too many clients already") once num_init_children - reserved_connections are connected.
 * - PostgreSQL keeps `superuser_reserved_connections` (3 by default) of `max_connections` for superusers.
 */

export interface OrthancDatabaseSettings {
    IndexConnectionsCount?: number;
    EnableStorage?: boolean;
    EnableIndex?: boolean;
}

/** Connections one Orthanc process holds with PostgreSQL plugin 10.3. */
export function orthancConnections(settings: OrthancDatabaseSettings): number {
    const index = settings.EnableIndex === false ? 0 : (settings.IndexConnectionsCount ?? 50);
    return index + (settings.EnableStorage ? 1 : 0);
}

/** Clients one Pgpool pod accepts, from the chart's values. */
export function pgpoolAcceptedClients(pgpool: { numInitChildren?: string | number; reservedConnections?: number }): number {
    const children = pgpool.numInitChildren === undefined || pgpool.numInitChildren === "" ? 32 : Number(pgpool.numInitChildren);
    return children - (pgpool.reservedConnections ?? 1);
}

/** Backend connections all Pgpool pods may open, from the chart's values. */
export function pgpoolBackends(pgpool: { numInitChildren?: string | number; maxPool?: string | number; replicaCount: number }): number {
    const children = pgpool.numInitChildren === undefined || pgpool.numInitChildren === "" ? 32 : Number(pgpool.numInitChildren);
    const pool = pgpool.maxPool === undefined || pgpool.maxPool === "" ? 15 : Number(pgpool.maxPool);
    return pgpool.replicaCount * children * pool;
}

/** Connections PostgreSQL gives to roles that are not superusers. */
export function postgresOrdinaryConnections(maxConnections: string | number): number {
    return Number(maxConnections) - 3;
}
