/**
 * The gatekeepers' audit database, what every engine that renders one shares (README, "Who signs in"): its names, the
 * SQL its owner runs, the retention, and the pods that run them. Pure builders; each engine says where the database
 * is, who creates the roles and the database, and how its pods reach it (bitnamiHaAudit.ts: a Job as the superuser;
 * cloudnativePgAudit.ts: the operator's managed roles and `Database`, then a Job as the owner).
 */
import type * as k8s from "@pulumi/kubernetes";
import { auditDatabaseEngines, keepsAuditInDatabase, TenantConfig } from "../../config/schema";
import { auditDatabaseStatements, auditTable } from "../../identity/gatekeeper/server";
import type { ImagePin } from "../../versions";
import { imageReference } from "../../versions";
import { cronJobRunPolicy, hardenedContainerSecurity, secretEnv, shellQuote, sidecarQuitUrl } from "../backup/backup";

export { secretEnv };

/** The audit database and its two roles. Neither is Orthanc's (`orthanc`), and neither is a superuser. */
export const auditDatabase = { name: "audit", owner: "audit_owner", writer: "gatekeeper_audit" } as const;

/** Whether the tenant's gatekeeper keeps its trail in a database: its users sign in through it, not on stdout only. */
export function signsInThroughGatekeeper(tenant: TenantConfig): boolean {
    return keepsAuditInDatabase(tenant.identity);
}

/**
 * Whether the tenant's engine renders the audit database: its users sign in through the gatekeeper (`identity.oidc` or `identity.keycloak`),
 * its engine renders one (`auditDatabaseEngines`), and its stack did not choose the gatekeeper's stdout alone
 * (`identity.audit.stdoutOnly`).
 */
export function rendersAuditDatabase(tenant: TenantConfig): boolean {
    return auditDatabaseEngines.includes(tenant.database.engine) && signsInThroughGatekeeper(tenant);
}

export const auditCredentialKeys = { owner: "owner-password", writer: "gatekeeper-password" } as const;

/**
 * The setup Job's and the retention CronJob's names, and their accounts', the same on every engine: the alerts select
 * the CronJob by this name in every tenant namespace (components/platform/alerts.ts `auditRetentionRules`).
 */
export const auditJobNames = {
    setupJob: "audit-database-setup",
    setupServiceAccount: "audit-database-setup",
    retentionCronJob: "audit-retention",
    retentionServiceAccount: "audit-retention",
    jobsNetworkPolicy: "allow-audit-database-jobs",
} as const;

/** Labels of the two pods, which the walls select. */
export const auditPodLabels = {
    setup: { "app.kubernetes.io/name": "audit-database", "app.kubernetes.io/component": "setup" },
    retention: { "app.kubernetes.io/name": "audit-database", "app.kubernetes.io/component": "retention" },
} as const;

/** The environment the scripts read their passwords from (nothing secret is in a script or the Job's spec). */
export const auditEnvironment = { password: "PGPASSWORD", ownerPassword: "AUDIT_OWNER_PASSWORD", writerPassword: "AUDIT_WRITER_PASSWORD" } as const;

export const identifier = (name: string) => {
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`${JSON.stringify(name)} is not a plain SQL identifier`);
    return name;
};

/**
 * What the owner runs in the audit database, as psql lines: the gatekeeper's own statements (the table, INSERT and
 * SELECT only for the gatekeeper's role, CONNECT taken from PUBLIC, so from Orthanc's role). Every engine's setup ends
 * with these; none of them needs more than ownership of the database.
 */
export function auditOwnerSql(): string[] {
    return auditDatabaseStatements({ database: auditDatabase.name, user: auditDatabase.writer }).map((statement) => `${statement};`);
}

/** The retention, run by the owner in the audit database: what is older than `retentionDays` goes. */
export function auditRetentionSql(retentionDays: number): string {
    if (!Number.isInteger(retentionDays) || retentionDays < 1) throw new Error(`retentionDays must be a positive integer, not ${retentionDays}`);
    return `DELETE FROM ${auditTable} WHERE time < now() - interval '${retentionDays} days'`;
}

/** bash: stop the Istio proxy when the script exits, however it exits (no curl in the image: bash's /dev/tcp). */
export function quitSidecar(): string[] {
    const url = new URL(sidecarQuitUrl);
    return [
        "stop_sidecar() {",
        `    { exec 3<>/dev/tcp/127.0.0.1/${url.port} && printf 'POST ${url.pathname} HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3 > /dev/null; } 2> /dev/null || echo "audit: could not stop the sidecar" >&2`,
        "}",
        "trap stop_sidecar EXIT",
    ];
}

/** Where a retention pod connects, as the owner, and what it calls that place in its messages. */
export interface AuditServer {
    host: string;
    port: number;
    /** "Pgpool", "PostgreSQL". */
    describedAs: string;
    /** A meshed pod ends its sidecar when the script exits (a Job with a classic sidecar never completes otherwise). */
    meshed: boolean;
}

/**
 * The retention CronJob's bash script: wait for the database (a minute at most), then delete as the owner. The
 * integration suite runs the same script against its own PostgreSQL.
 */
export function ownerRetentionScript(server: AuditServer, retentionDays: number): string {
    const connection = `-h ${shellQuote(server.host)} -p ${server.port} -U ${auditDatabase.owner} -d ${auditDatabase.name}`;
    return [
        "set -eu",
        ...(server.meshed ? quitSidecar() : []),
        "tries=0",
        `until pg_isready ${connection} -t 5 > /dev/null; do`,
        "    tries=$((tries + 1))",
        `    if [ "$tries" -ge 30 ]; then echo "audit retention: ${server.describedAs} does not accept connections" >&2; exit 1; fi`,
        "    sleep 2",
        "done",
        `psql -X -v ON_ERROR_STOP=1 ${connection} -c ${shellQuote(auditRetentionSql(retentionDays))}`,
    ].join("\n");
}

/** What differs between the engines' audit pods: their image (with psql and bash), its user, the mesh, files. */
export interface AuditPodImage {
    image: ImagePin;
    uid: number;
    /** In the mesh (the proxy starts first; the script ends it), or out of it (`sidecar.istio.io/inject: "false"`). */
    meshed: boolean;
    /** Extra environment (libpq's TLS settings) and volumes (a CA), mounted read-only under their names. */
    env?: k8s.types.input.core.v1.EnvVar[];
    volumes?: { volume: k8s.types.input.core.v1.Volume; mountPath: string }[];
}

/** A pod of one container running `script` with bash, hardened as the backup's. */
export function auditPodTemplate(
    pod: AuditPodImage,
    labels: Record<string, string>,
    serviceAccount: string,
    script: string,
    env: k8s.types.input.core.v1.EnvVar[],
    annotations: Record<string, string> = {},
): k8s.types.input.core.v1.PodTemplateSpec {
    const mesh: { labels: Record<string, string>; annotations: Record<string, string> } = pod.meshed
        ? { labels: {}, annotations: { "proxy.istio.io/config": JSON.stringify({ holdApplicationUntilProxyStarts: true }) } }
        : { labels: { "sidecar.istio.io/inject": "false" }, annotations: {} };
    const volumes = pod.volumes ?? [];
    return {
        metadata: {
            labels: { ...labels, ...mesh.labels },
            annotations: { ...annotations, ...mesh.annotations },
        },
        spec: {
            serviceAccountName: serviceAccount,
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            restartPolicy: "Never",
            securityContext: { runAsNonRoot: true, runAsUser: pod.uid, runAsGroup: pod.uid, seccompProfile: { type: "RuntimeDefault" } },
            containers: [
                {
                    name: "psql",
                    image: imageReference(pod.image),
                    command: ["/bin/bash", "-c", script],
                    // A node that does not answer (a standby being rebuilt, the proxy not up) costs five seconds, not forever.
                    env: [{ name: "HOME", value: "/tmp" }, { name: "PGCONNECT_TIMEOUT", value: "5" }, ...(pod.env ?? []), ...env],
                    resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } },
                    securityContext: hardenedContainerSecurity,
                    volumeMounts: [{ name: "tmp", mountPath: "/tmp" }, ...volumes.map((v) => ({ name: v.volume.name, mountPath: v.mountPath, readOnly: true }))],
                },
            ],
            volumes: [{ name: "tmp", emptyDir: { sizeLimit: "64Mi" } }, ...volumes.map((v) => v.volume)],
        },
    };
}

/** When the retention runs: daily, UTC (the AuditRetentionFailed alert allows a day and its slack). */
export const auditRetentionSchedule = "30 2 * * *";

/** The daily retention CronJob (UTC), as the owner; the gatekeeper's role could not delete. */
export function auditRetentionCronJobTemplate(template: k8s.types.input.core.v1.PodTemplateSpec): k8s.types.input.batch.v1.CronJobSpec {
    return {
        schedule: auditRetentionSchedule,
        ...cronJobRunPolicy,
        jobTemplate: {
            metadata: { labels: { ...auditPodLabels.retention } },
            spec: { backoffLimit: 2, activeDeadlineSeconds: 3600, template },
        },
    };
}
