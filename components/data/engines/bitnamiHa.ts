import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { BackupConfig, backupIdentity } from "../../config/schema";
import { backupCronJobSpec, backupNames, backupS3Secret, backupServiceAccount } from "../backup/backup";
import { backupCronJobLabel } from "../../platform/alerts";
import { tenantNames } from "../../naming/tenantNames";
import type { DatabaseEndpoint, EngineArgs } from "../endpoint";
import { pinnedRelease } from "../../k8s/helm";
import { charts } from "../../versions";
import { connectionBudget, orthancDatabase, postgresHaValues, postgresRelease, postgresSecrets, postgresService, pgpoolHost } from "./bitnamiHaValues";

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
