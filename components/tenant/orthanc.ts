import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { createHash } from "crypto";
import { TenantConfig } from "../config/schema";
import { orthancServiceName } from "./ingress";
import { orthancConfigFiles } from "./orthancConfig";
import {
    orthancAdminUser,
    orthancAutoscalerSpec,
    orthancConfigFile,
    orthancConfigSecretName,
    orthancDeploymentName,
    orthancDeploymentSpec,
    orthancDisruptionBudgetSpec,
    orthancServiceSpec,
    tenantOrthancConfig,
} from "./orthancWorkload";
import { orthancImageFor } from "../data/storage/orthancStorage";
import { TenantStorage } from "../data";
import type { DatabaseEndpoint } from "../data";
import { orthancServiceAccount } from "../naming/tenantNames";

export interface OrthancServerArgs {
    tenant: TenantConfig;
    domain: string;
    /** The tenant namespace. */
    namespace: string;
    /** Where Orthanc keeps its index (and its files, with postgresql storage). */
    database: DatabaseEndpoint;
    /** Where Orthanc keeps its files: the fragment, pod additions and guard of the tenant's storage choice. */
    storage: TenantStorage;
    /** What the pods wait for: the namespace, the tenant's walls, the sidecar injector. */
    dependsOn: pulumi.Input<pulumi.Resource>[];
    /** The tenant gatekeeper's Orthanc password, when its users sign in (components/identity/identity.ts). */
    gatekeeperPassword?: pulumi.Output<string>;
}

/**
 * The tenant's Orthanc: its configuration as a Secret, replicas behind a Service, an autoscaler and a disruption
 * budget. The admin password is generated here and leaves only as a secret.
 */
export class OrthancServer extends pulumi.ComponentResource {
    readonly adminUser = orthancAdminUser;
    readonly adminPassword: pulumi.Output<string>;

    constructor(name: string, args: OrthancServerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("korthweb:tenant:OrthancServer", name, {}, opts);
        const { tenant } = args;
        const ns = args.namespace;
        const inNamespace = { parent: this, dependsOn: args.dependsOn };
        this.adminPassword = pulumi.secret(
            new random.RandomPassword(`${name}-admin-password`, { length: 32, special: false }, { parent: this }).result,
        );
        const configJson = pulumi.secret(
            pulumi
                // The storage guard first: a refused change to the storage stops here, before the configuration.
                .all([this.adminPassword, args.database.password, args.storage.checked, args.gatekeeperPassword])
                .apply(([admin, databasePassword, , gatekeeperPassword]) => {
                    const { host, port, database, user, orthanc } = args.database;
                    const target = { host, port, database, user, postgresql: orthanc?.postgresql(databasePassword) };
                    return JSON.stringify(tenantOrthancConfig(tenant, args.domain, { adminPassword: admin, databasePassword, gatekeeperPassword }, target), null, 2);
                }),
        );
        const configSecret = new k8s.core.v1.Secret(
            `${name}-config`,
            // The configuration and the files it names (the Lua filter), mounted side by side.
            { metadata: { name: orthancConfigSecretName, namespace: ns }, stringData: { [orthancConfigFile]: configJson, ...orthancConfigFiles() } },
            inNamespace,
        );
        // A digest is not secret material; it only tells the Deployment that the configuration changed.
        const configChecksum = pulumi.unsecret(
            configJson.apply((json) => createHash("sha256").update(json).update(JSON.stringify(orthancConfigFiles())).digest("hex")),
        );
        new k8s.core.v1.ServiceAccount(
            `${name}-service-account`,
            {
                // The storage's cloud identity (EKS IRSA's role), where its plugin can use one.
                metadata: { name: orthancServiceAccount, namespace: ns, annotations: args.storage.pod.serviceAccountAnnotations },
                automountServiceAccountToken: false,
            },
            inNamespace,
        );
        const image = orthancImageFor(tenant.storage);
        // Named after the Orthanc version, not the build: the -full build of one version runs the same Orthanc and
        // plugins, and the alerts name the Deployment by this name.
        const deploymentName = orthancDeploymentName();
        const engine = args.database.orthanc?.pod;
        const storagePod = args.storage.pod;
        const additions = {
            volumes: [...(engine?.volumes ?? []), ...storagePod.volumes],
            volumeMounts: [...(engine?.volumeMounts ?? []), ...storagePod.volumeMounts],
            env: [...(engine?.env ?? []), ...storagePod.env],
            image,
        };
        const deployment = new k8s.apps.v1.Deployment(
            name,
            {
                metadata: { name: deploymentName, namespace: ns, labels: { app: "orthanc" } },
                spec: configChecksum.apply((checksum) => orthancDeploymentSpec(tenant.name, tenant.orthanc, checksum, additions)),
            },
            {
                parent: this,
                dependsOn: [...args.dependsOn, configSecret, ...args.database.ready, ...args.storage.ready],
                // After creation the autoscaler sets the replica count; an update must not reset it.
                ignoreChanges: ["spec.replicas"],
                // A new image (a new name) stops the old version entirely before the new one starts.
                deleteBeforeReplace: true,
            },
        );
        new k8s.core.v1.Service(
            `${name}-service`,
            { metadata: { name: orthancServiceName, namespace: ns }, spec: orthancServiceSpec(tenant.name) },
            inNamespace,
        );
        new k8s.autoscaling.v2.HorizontalPodAutoscaler(
            `${name}-autoscaler`,
            { metadata: { name: "orthanc", namespace: ns }, spec: orthancAutoscalerSpec(tenant.orthanc, deploymentName) },
            // Created (or retargeted) once the Deployment is ready: one pod has migrated the schema before it scales.
            { parent: this, dependsOn: [deployment] },
        );
        new k8s.policy.v1.PodDisruptionBudget(
            `${name}-disruption-budget`,
            { metadata: { name: "orthanc", namespace: ns }, spec: orthancDisruptionBudgetSpec(tenant.name) },
            inNamespace,
        );
        this.registerOutputs({ adminUser: this.adminUser });
    }
}
