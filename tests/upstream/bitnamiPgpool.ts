/**
 * What Bitnami's postgresql-ha chart tells Pgpool-II, as read from bitnami/charts at tag postgresql-ha/16.3.2,
 * bitnami/postgresql-ha/templates/pgpool/deployment.yaml (and templates/_helpers.tpl):
 * - `PGPOOL_POSTGRES_USERNAME` is `postgresql.username` (Orthanc's role): the one user the image writes to
 *   pool_passwd besides the custom users;
 * - `PGPOOL_POSTGRES_CUSTOM_USERS` / `PGPOOL_POSTGRES_CUSTOM_PASSWORDS` come from the keys `usernames` and `passwords`
 *   of `pgpool.customUsersSecret` (set only when that value or `pgpool.customUsers.usernames` is), "comma or semicolon
 *   separated", the same number of each (values.yaml, `pgpool.customUsers`);
 * - `PGPOOL_BACKEND_NODES` names each PostgreSQL node `<fullname>-postgresql-<i>.<fullname>-postgresql-headless.
 *   <namespace>.svc.<clusterDomain>:<port>` (clusterDomain `cluster.local` by default): how Pgpool itself reaches them.
 * With `pgpool.authenticationMethod` scram-sha-256 (the chart's default), Pgpool answers a user it has no pool_passwd
 * entry for with an authentication failure: the superuser `postgres` is not admitted through Pgpool.
 */
export function pgpoolAdmittedUsers(values: { postgresql: { username?: string }; pgpool: { customUsersSecret?: string } }, secrets: Record<string, Record<string, string>>): string[] {
    const custom = values.pgpool.customUsersSecret ? secrets[values.pgpool.customUsersSecret] : undefined;
    if (values.pgpool.customUsersSecret && !custom) throw new Error(`pgpool.customUsersSecret ${values.pgpool.customUsersSecret} does not exist`);
    const split = (list: string) => list.split(/[,;]/).filter((item) => item !== "");
    const users = custom ? split(custom.usernames ?? "") : [];
    if (custom && users.length !== split(custom.passwords ?? "").length) throw new Error("customUsersSecret: as many passwords as usernames");
    return [values.postgresql.username ?? "postgres", ...users];
}

/** The nodes as `PGPOOL_BACKEND_NODES` names them (release name containing the chart name: fullname = release). */
export function pgpoolBackendHosts(fullname: string, namespace: string, replicas: number, clusterDomain = "cluster.local"): string[] {
    return Array.from({ length: replicas }, (_, i) => `${fullname}-postgresql-${i}.${fullname}-postgresql-headless.${namespace}.svc.${clusterDomain}`);
}
