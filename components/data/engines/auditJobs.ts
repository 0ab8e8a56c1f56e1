/**
 * The audit database's two jobs as every engine runs them (bitnamiHa.ts, cloudnativePg.ts): a ServiceAccount each, the
 * setup Job, and the retention CronJob after it. The engines give the specs and what the setup waits for besides.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { auditJobNames } from "./auditDatabase";

export interface AuditJobs {
    setupSpec: pulumi.Input<k8s.types.input.batch.v1.JobSpec>;
    /** What the setup waits for beyond its account (CloudNativePG: the `Database` object). */
    setupDependsOn: pulumi.Resource[];
    retentionSpec: k8s.types.input.batch.v1.CronJobSpec;
}

/** Creates the jobs under `opts.parent`; returns the setup Job, which the gatekeeper waits for. */
export function createAuditJobs(name: string, namespace: string, jobs: AuditJobs, opts: { parent: pulumi.Resource; dependsOn: pulumi.Input<pulumi.Resource>[] }): k8s.batch.v1.Job {
    const account = (suffix: string, accountName: string) =>
        new k8s.core.v1.ServiceAccount(`${name}-${suffix}`, { metadata: { name: accountName, namespace }, automountServiceAccountToken: false }, opts);
    const setupAccount = account("audit-setup-service-account", auditJobNames.setupServiceAccount);
    const retentionAccount = account("audit-retention-service-account", auditJobNames.retentionServiceAccount);
    const setup = new k8s.batch.v1.Job(
        `${name}-audit-setup`,
        { metadata: { name: auditJobNames.setupJob, namespace }, spec: jobs.setupSpec },
        { ...opts, dependsOn: [...opts.dependsOn, ...jobs.setupDependsOn, setupAccount] },
    );
    new k8s.batch.v1.CronJob(
        `${name}-audit-retention`,
        { metadata: { name: auditJobNames.retentionCronJob, namespace }, spec: jobs.retentionSpec },
        { ...opts, dependsOn: [...opts.dependsOn, retentionAccount, setup] },
    );
    return setup;
}
