import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { BackupConfig, backupIdentity, TenantConfig } from "../../config/schema";
import { backupCronJobSpec, backupNames, backupS3Secret, backupServiceAccount } from "../backup/backup";
import { CloudNativePgDatabase } from "./cloudnativePg";
import { backupCronJobLabel } from "../../platform/alerts";
import { tenantNames } from "../../tenant/naming";
import { ExternalDatabase } from "./external";
import type { OrthancPodAdditions } from "../../tenant/orthancWorkload";
import { pinnedRelease } from "../../k8s/helm";
import { charts } from "../../versions";
import { connectionBudget, orthancDatabase, postgresHaValues, postgresRelease, postgresSecrets, postgresService, pgpoolHost } from "./bitnamiHaValues";

export interface TenantDatabaseArgs {
    tenant: TenantConfig;
    /** The stack's domain (the tenant's derived names). */
    domain: string;
    /** The tenant namespace, created by the tenant. */
    namespace: string;
    /** What the database pods wait for: the namespace, the tenant's walls, the sidecar injector. */
    dependsOn: pulumi.Input<pulumi.Resource>[];
}

/** Where Orthanc connects, and with which credentials. What every database engine gives the tenant. */
export interface DatabaseEndpoint {
    host: string;
    port: number;
    database: string;
    user: string;
    /** The Orthanc role's password; a Pulumi secret. */
    password: pulumi.Output<string>;
    /** Orthanc starts after these: the database is ready to accept it. */
    ready: pulumi.Resource[];
    /** What Orthanc needs beyond host, port, database, user and password (TLS settings, a CA file), if anything. */
    orthanc?: {
        /** Merged over Orthanc's PostgreSQL section; called with the password (the result is kept secret). */
        postgresql: (password: string) => Record<string, unknown>;
        pod: OrthancPodAdditions;
    };
}

/**
 * The tenant's PostgreSQL: Bitnami postgresql-ha (repmgr-managed PostgreSQL behind Pgpool-II), with generated
 * credentials handed to the chart in existing Secrets, sized for the most Orthanc replicas the autoscaler may run.
 * What holds data is protected when the tenant's `protectData` says so.
 */
export class TenantDatabase extends pulumi.ComponentResource {
    readonly endpoint: DatabaseEndpoint;

    constructor(name: string, args: EngineArgs, opts?: pulumi.ComponentResourceOptions) {
        super("korthweb:tenant:TenantDatabase", name, {}, opts);
        const { tenant } = args;
        const protect = tenant.protectData;
        const password = (purpose: string) =>
            pulumi.secret(
                new random.RandomPassword(`${name}-${purpose}-password`, { length: 32, special: false }, { parent: this, protect }).result,
            );
        const orthancPassword = password("orthanc");
        const secretOpts = { parent: this, protect, dependsOn: args.dependsOn };
        const postgresCredentials = new k8s.core.v1.Secret(
            `${name}-postgresql-credentials`,
            {
                metadata: { name: postgresSecrets.postgresql, namespace: args.namespace },
                stringData: { password: orthancPassword, "postgres-password": password("postgres-superuser"), "repmgr-password": password("repmgr") },
            },
            secretOpts,
        );
        const pgpoolCredentials = new k8s.core.v1.Secret(
            `${name}-pgpool-credentials`,
            {
                metadata: { name: postgresSecrets.pgpool, namespace: args.namespace },
                stringData: { "admin-password": password("pgpool-admin"), "sr-check-password": password("sr-check") },
            },
            secretOpts,
        );
        const release = pinnedRelease(
            `${name}-postgresql-ha`,
            {
                pin: charts.postgresqlHa,
                releaseName: postgresRelease,
                namespace: args.namespace,
                values: postgresHaValues({
                    replicas: tenant.postgres.replicas,
                    replication: tenant.postgres.replication,
                    pgpoolReplicas: tenant.postgres.pgpoolReplicas,
                    volumeSize: tenant.postgres.volumeSize,
                    storageClass: tenant.postgres.storageClass,
                    connections: connectionBudget(tenant.orthanc.maxReplicas, tenant.postgres.pgpoolReplicas),
                }),
            },
            { parent: this, protect, dependsOn: [...args.dependsOn, postgresCredentials, pgpoolCredentials] },
        );
        if (args.backup) {
            this.scheduleBackups(name, args, args.backup, [release]);
        }
        this.endpoint = {
            host: pgpoolHost(args.namespace),
            port: postgresService.port,
            database: orthancDatabase.name,
            user: orthancDatabase.user,
            password: orthancPassword,
            ready: [release],
        };
        this.registerOutputs({ host: this.endpoint.host });
    }

    /**
     * A nightly logical backup to the tenant's own place in object storage, with its own key pair or IAM role
     * (components/data/backup/backup.ts); its walls come with the engine's.
     */
    private scheduleBackups(name: string, args: EngineArgs, backup: BackupConfig, dependsOn: pulumi.Resource[]): void {
        const names = tenantNames(args.tenant.name, args.domain);
        const opts = { parent: this, dependsOn: [...args.dependsOn, ...dependsOn] };
        // The tenant's own key pair or role: the schema refuses a stack without one, or with one another tenant has.
        const identity = backupIdentity(backup.tenants[args.tenant.name]);
        const s3Secret: pulumi.Resource[] = [];
        if (identity.kind === "keyPair") {
            const secret = backupS3Secret(names, { accessKeyId: pulumi.secret(identity.accessKeyId), secretAccessKey: pulumi.secret(identity.secretAccessKey) });
            s3Secret.push(new k8s.core.v1.Secret(`${name}-backup-s3`, { metadata: { name: secret.name, namespace: secret.namespace }, stringData: secret.stringData }, opts));
        }
        // With a role, the account carries it; the webhook mutates only pods whose account exists when they are created.
        const account = backupServiceAccount(names, identity);
        const serviceAccount = new k8s.core.v1.ServiceAccount(
            `${name}-backup-service-account`,
            {
                metadata: { name: account.name, namespace: account.namespace, ...(account.annotations ? { annotations: account.annotations } : {}) },
                automountServiceAccountToken: account.automountServiceAccountToken,
            },
            opts,
        );
        new k8s.batch.v1.CronJob(
            `${name}-backup`,
            {
                metadata: { name: backupNames.cronJob, namespace: names.namespace, labels: { [backupCronJobLabel.key]: backupCronJobLabel.value } },
                spec: backupCronJobSpec({
                    tenant: args.tenant.name,
                    names,
                    backup,
                    scratchSize: backup.scratchSize ?? args.tenant.postgres.volumeSize,
                    scratchStorageClass: args.tenant.postgres.storageClass,
                }),
            },
            { ...opts, dependsOn: [...opts.dependsOn, ...s3Secret, serviceAccount] },
        );
    }
}

export interface EngineArgs extends TenantDatabaseArgs {
    /** The CloudNativePG operator, for the cloudnative-pg engine. */
    cloudnativePg?: { namespace: string; ready: pulumi.Input<pulumi.Resource>[] };
    backup?: BackupConfig;
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
