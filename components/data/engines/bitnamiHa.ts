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
import { createHash } from "crypto";
import {
    auditCredentialKeys,
    auditDatabaseConnection,
    auditNames,
    auditPgpoolClients,
    auditPgpoolUsers,
    auditRetentionCronJobSpec,
    auditSetupJobSpec,
    rendersAuditDatabase,
    tenantAuditSetupScript,
} from "./bitnamiHaAudit";
import { connectionBudget, orthancDatabase, postgresHaValues, postgresRelease, postgresSecrets, postgresService, pgpoolHost } from "./bitnamiHaValues";
import { createAuditJobs } from "./auditJobs";

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
        // The gatekeeper's audit database (bitnamiHaAudit.ts), for a tenant whose users sign in through it.
        const audited = rendersAuditDatabase(tenant);
        const auditPasswords = audited ? { owner: password("audit-owner"), writer: password("audit-gatekeeper") } : undefined;
        const auditSecrets: pulumi.Resource[] = [];
        if (auditPasswords) {
            const users = auditPgpoolUsers(auditPasswords);
            auditSecrets.push(
                new k8s.core.v1.Secret(
                    `${name}-audit-credentials`,
                    {
                        metadata: { name: auditNames.credentials, namespace: args.namespace },
                        stringData: { [auditCredentialKeys.owner]: auditPasswords.owner, [auditCredentialKeys.writer]: auditPasswords.writer },
                    },
                    { parent: this, protect, dependsOn: args.dependsOn },
                ),
                new k8s.core.v1.Secret(
                    `${name}-pgpool-custom-users`,
                    {
                        metadata: { name: auditNames.pgpoolUsers, namespace: args.namespace },
                        stringData: { usernames: users.usernames, passwords: pulumi.secret(pulumi.all(users.passwords).apply((list) => list.join(";"))) },
                    },
                    { parent: this, protect, dependsOn: args.dependsOn },
                ),
            );
        }
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
                    connections: connectionBudget(tenant.orthanc.maxReplicas, tenant.postgres.pgpoolReplicas, audited ? auditPgpoolClients : 0),
                    pgpoolCustomUsersSecret: audited ? auditNames.pgpoolUsers : undefined,
                }),
            },
            { parent: this, protect, dependsOn: [...args.dependsOn, postgresCredentials, pgpoolCredentials, ...auditSecrets] },
        );
        const audit = auditPasswords && tenant.identity ? this.renderAudit(name, args, tenant.identity.audit.retentionDays, auditPasswords, [release, ...auditSecrets]) : undefined;
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
            ...(audit ? { audit } : {}),
        };
        this.registerOutputs({ host: this.endpoint.host });
    }

    /**
     * The audit database's setup Job (awaited by Pulumi: a setup that fails fails the update) and its retention
     * CronJob, each with its own service account (the mesh admits each by it, no API token).
     */
    private renderAudit(
        name: string,
        args: EngineArgs,
        retentionDays: number,
        passwords: { owner: pulumi.Output<string>; writer: pulumi.Output<string> },
        dependsOn: pulumi.Resource[],
    ): NonNullable<DatabaseEndpoint["audit"]> {
        const ns = args.namespace;
        const script = tenantAuditSetupScript(ns, args.tenant.postgres.replicas);
        // A digest is no secret: new passwords or a new script replace the Job, which runs the setup again.
        const checksum = pulumi.unsecret(
            pulumi.all([passwords.owner, passwords.writer]).apply(([owner, writer]) => createHash("sha256").update(script).update(owner).update(writer).digest("hex")),
        );
        const setup = createAuditJobs(
            name,
            ns,
            { setupSpec: checksum.apply((sum) => auditSetupJobSpec(ns, args.tenant.postgres.replicas, sum)), setupDependsOn: [], retentionSpec: auditRetentionCronJobSpec(ns, retentionDays) },
            { parent: this, dependsOn: [...args.dependsOn, ...dependsOn] },
        );
        return { connection: auditDatabaseConnection(ns), password: passwords.writer, ready: [setup] };
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
