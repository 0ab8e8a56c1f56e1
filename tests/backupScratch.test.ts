/**
 * Where a Bitnami tenant's backup run writes its dump: a generic ephemeral volume claimed for the run from the tenant's
 * storage class and deleted with the pod (kubernetes.io, "Ephemeral Volumes", generic ephemeral volumes), of
 * `backup.scratchSize` or the tenant's PostgreSQL volume size, instead of an emptyDir as large as the database on
 * the node's disk, whose pressure has the kubelet evict other tenants' pods (kubernetes.io, "Node-pressure Eviction").
 */
import { strict as assert } from "assert";
import { backupNames } from "../components/data/backup/backup";
import { ConfigError, parseStackConfig } from "../components/config/load";
import { kubernetesObjects, parsedStackFile, renderStack } from "./support/stacks";

describe("the backup run's scratch volume", () => {
    it("is claimed per run at backup.scratchSize, in the tenant's storage class, in the external example stack", async () => {
        const config = parsedStackFile("external");
        assert.equal(config.backup?.scratchSize, "10Gi");
        const rendered = await renderStack("external");
        const cronJobs = kubernetesObjects(rendered).filter((r) => r.type === "kubernetes:batch/v1:CronJob" && r.inputs.metadata.name === backupNames.cronJob);
        const bitnami = config.tenants.filter((tenant) => tenant.database.engine === "bitnami-ha");
        assert.equal(cronJobs.length, bitnami.length);
        for (const cronJob of cronJobs) {
            const volumes = cronJob.inputs.spec.jobTemplate.spec.template.spec.volumes;
            const scratch = volumes.find((volume: any) => volume.name === "scratch");
            assert.equal(scratch.emptyDir, undefined, "not on the node's disk");
            assert.equal(scratch.ephemeral.volumeClaimTemplate.spec.resources.requests.storage, "10Gi");
        }
    });

    it("refuses a scratch size that is no volume size", () => {
        const raw = {
            domain: "orthweb.example.org",
            ingress: { serviceType: "LoadBalancer" },
            tenants: [{ name: "bhs", displayName: "B" }],
            backup: { s3: { endpoint: "https://s3.example.org", bucket: "korthweb-backups", accessKeyId: "a", secretAccessKey: "s", anyAddress: true }, scratchSize: "10G" },
        };
        assert.throws(() => parseStackConfig(raw), (error: unknown) => error instanceof ConfigError && /korthweb:backup\.scratchSize is "10G"; allowed: a size such as 50Gi/.test(error.message));
    });
});
