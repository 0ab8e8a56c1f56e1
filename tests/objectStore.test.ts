/**
 * The local stack's own S3 server (components/platform/objectStore.ts): what the versitygw chart makes of the values
 * (tests/upstream/versitygw.ts, versity/versitygw v1.7.0), the walls around it, the generated keys, the bucket setup,
 * and the tenants' Orthanc pointed at it, read from the prerendered `local` stack.
 */
import { strict as assert } from "assert";
import { parseStackConfig } from "../components/config/load";
import { inClusterObjectStore, inClusterObjectStoreEndpoint } from "../components/config/schema";
import { bucketSetupScript, objectStoreNames } from "../components/platform/objectStore";
import { storagePodAdditions, storageSecretKeys, storageSecretName } from "../components/data/storage/orthancStorage";
import { inClusterObjectStorePodLabels } from "../components/data/storage/storageWalls";
import { orthancSelector, tenantNames } from "../components/naming/tenantNames";
import { principal } from "../components/k8s/walls";
import { tenantOrthancConfig } from "../components/tenant/orthancWorkload";
import { charts, imageReference, versitygwImage } from "../components/versions";
import { plain, RecordedResource, secretAt } from "./support/mocks";
import { kubernetesObjects, parsedStackFile, releases, renderStack } from "./support/stacks";
import { pluginLinkDirectory, startImage } from "./upstream/orthancImage";
import { renderVersitygw } from "./upstream/versitygw";

const ns = inClusterObjectStore.namespace;

describe("the local stack's S3 server (korthweb:objectStore, versitygw)", () => {
    let objects: RecordedResource[];
    let values: Record<string, any>;
    let release: RecordedResource;
    const tenants = parsedStackFile("local").tenants;
    const find = (kind: string, namespace: string, name: string) => {
        const found = objects.find((o) => o.type.endsWith(`:${kind}`) && (o.inputs.metadata?.namespace ?? "") === namespace && o.inputs.metadata?.name === name);
        assert.ok(found, `no ${kind} ${namespace}/${name}`);
        return found;
    };

    before(async () => {
        const rendered = await renderStack("local");
        objects = kubernetesObjects(rendered);
        const found = releases(rendered).find((r) => r.inputs.namespace === ns);
        assert.ok(found, "no release in the object store's namespace");
        release = found;
        values = plain(release.inputs.values);
    });

    it("stores every local tenant's files in it", () => {
        assert.deepEqual(
            tenants.map((tenant) => [tenant.name, tenant.storage.type, tenant.storage.s3?.inCluster]),
            tenants.map((tenant) => [tenant.name, "s3", true]),
        );
    });

    it("installs the pinned chart as the release the endpoint names, in a meshed namespace of its own", () => {
        assert.equal(release.inputs.version, charts.versitygw.version);
        assert.match(release.inputs.chart, /^oci:\/\/ghcr\.io\/versity\/versitygw\/charts\/versitygw/);
        const chart = renderVersitygw(release.inputs.name, values);
        // Orthanc's endpoint is the chart's Service on its S3 port.
        assert.equal(inClusterObjectStoreEndpoint(), `http://${chart.serviceName}.${ns}.svc.cluster.local:${chart.servicePorts.find((p) => p.name === "s3-api")!.port}`);
        assert.deepEqual(chart.selectorLabels, inClusterObjectStorePodLabels, "the walls select the pods by the chart's labels");
        assert.equal(chart.image, imageReference(versitygwImage), "the pinned image, not the chart's `latest`");
        const labels = find("Namespace", "", ns).inputs.metadata.labels;
        assert.equal(labels["istio-injection"], "enabled");
        assert.equal(labels["pod-security.kubernetes.io/enforce"], "restricted");
    });

    it("runs hardened: non-root, read-only root filesystem, no capabilities, bounded memory, no API token", () => {
        const chart = renderVersitygw(release.inputs.name, values);
        assert.deepEqual(
            [chart.containerSecurityContext.runAsNonRoot, chart.containerSecurityContext.readOnlyRootFilesystem, chart.containerSecurityContext.allowPrivilegeEscalation, chart.containerSecurityContext.capabilities],
            [true, true, false, { drop: ["ALL"] }],
        );
        assert.deepEqual(chart.podSecurityContext.seccompProfile, { type: "RuntimeDefault" });
        assert.ok((chart.resources as any).limits?.memory, "a memory limit");
        assert.ok((chart.resources as any).requests?.cpu, "a CPU request");
        assert.equal(chart.automountServiceAccountToken, false);
        assert.deepEqual(chart.claim, { accessMode: "ReadWriteOnce", size: parsedStackFile("local").objectStore!.size });
        assert.deepEqual(chart.strategy, { type: "Recreate" }, "one writer on the ReadWriteOnce volume");
        assert.equal(chart.networkPolicy, false, "the chart's own policy (whole namespaces) is off: the program's walls apply");
    });

    it("takes its root key from the program's Secret of generated secrets, and keeps accounts on the volume with the admin API on", () => {
        const chart = renderVersitygw(release.inputs.name, values);
        assert.equal(chart.chartSecret, undefined, "no key in the chart's values");
        assert.equal(JSON.stringify(values).includes("accessKey\""), false);
        const root = find("Secret", ns, chart.rootKeyFrom.secret);
        for (const key of chart.rootKeyFrom.keys) assert.ok(secretAt(root.inputs.stringData, key), `${key} is a Pulumi secret`);
        assert.equal(chart.env.VGW_IAM_DIR, "/mnt/iam");
        assert.equal(chart.env.VGW_BACKEND, "posix");
        assert.ok(chart.env.VGW_META_SIDECAR, "metadata in files on the volume: no need for extended attributes");
        assert.equal(chart.env.VGW_ADMIN_PORT, `:${inClusterObjectStore.adminPort}`);
        assert.equal(chart.env.VGW_REGION, parsedStackFile("local").objectStore!.region);
    });

    it("gives each tenant a generated key pair (Pulumi secrets), the same in its storage Secret and in the setup Job's", () => {
        const setup = plain(find("Secret", ns, objectStoreNames.tenantSecret).inputs.stringData);
        const seen = new Set<string>();
        for (const tenant of tenants) {
            const secret = find("Secret", tenantNames(tenant.name, "").namespace, storageSecretName).inputs.stringData;
            assert.ok(secretAt(secret, storageSecretKeys.awsAccessKeyId) && secretAt(secret, storageSecretKeys.awsSecretAccessKey));
            const pair = [plain(secret)[storageSecretKeys.awsAccessKeyId], plain(secret)[storageSecretKeys.awsSecretAccessKey]];
            const prefix = tenant.name.toUpperCase();
            assert.deepEqual(pair, [setup[`${prefix}_ACCESS_KEY_ID`], setup[`${prefix}_SECRET_ACCESS_KEY`]]);
            for (const value of pair) {
                assert.ok(!seen.has(value), "a key shared between tenants");
                seen.add(value);
            }
        }
    });

    it("makes each tenant's bucket owned by the tenant's account, from the Secret's variables, and lets the Job complete", () => {
        const job = find("Job", ns, objectStoreNames.setupJob).inputs.spec.template.spec;
        const container = job.containers[0];
        const script: string = container.command[2];
        assert.equal(container.image, imageReference(versitygwImage));
        for (const tenant of tenants) {
            const bucket = tenant.storage.s3!.bucket;
            const prefix = tenant.name.toUpperCase();
            assert.match(script, new RegExp(`create-user --access \\$${prefix}_ACCESS_KEY_ID --secret \\$${prefix}_SECRET_ACCESS_KEY --role user`));
            assert.match(script, new RegExp(`create-bucket --bucket '${bucket}' --owner \\$${prefix}_ACCESS_KEY_ID`));
            const variables = container.env.filter((e: any) => e.name.startsWith(`${prefix}_`)).map((e: any) => e.valueFrom.secretKeyRef.name);
            assert.deepEqual(variables, [objectStoreNames.tenantSecret, objectStoreNames.tenantSecret]);
        }
        assert.match(script, /quitquitquit/, "the sidecar is told to stop, so the Job completes");
        assert.equal(job.automountServiceAccountToken, false);
        assert.equal(container.securityContext.readOnlyRootFilesystem, true);
        assert.equal(script, bucketSetupScript(tenants.map((t) => ({ name: t.name, bucket: t.storage.s3!.bucket }))));
    });

    it("is walled: default-deny, the tenants' Orthanc pods on the S3 port and the setup Job on the admin port, by NetworkPolicy and by Istio identity", () => {
        const policies = objects.filter((o) => o.type.endsWith(":NetworkPolicy") && o.inputs.metadata.namespace === ns);
        const deny = policies.find((p) => p.inputs.metadata.name === "default-deny")!.inputs.spec;
        assert.deepEqual(deny, { podSelector: {}, policyTypes: ["Ingress", "Egress"] });
        const ingress = policies.find((p) => p.inputs.metadata.name === "allow-s3-clients")!.inputs.spec.ingress;
        assert.deepEqual(ingress[0], {
            from: tenants.map((tenant) => ({
                namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": tenantNames(tenant.name, "").namespace } },
                podSelector: { matchLabels: orthancSelector(tenant.name) },
            })),
            ports: [{ protocol: "TCP", port: inClusterObjectStore.port }],
        });
        assert.deepEqual(ingress[1].ports, [{ protocol: "TCP", port: inClusterObjectStore.adminPort }]);
        const authorization = objects.filter((o) => o.type.endsWith(":AuthorizationPolicy") && o.inputs.metadata.namespace === ns);
        assert.deepEqual(authorization.find((p) => p.inputs.metadata.name === "deny-by-default")!.inputs.spec, {});
        const rules = authorization.find((p) => p.inputs.metadata.name === "allow-orthanc-to-s3")!.inputs.spec.rules;
        assert.deepEqual(rules[0], {
            from: [{ source: { principals: tenants.map((tenant) => principal(tenantNames(tenant.name, "").namespace, "orthanc")) } }],
            to: [{ operation: { ports: [String(inClusterObjectStore.port)] } }],
        });
        assert.deepEqual(rules[1].to, [{ operation: { ports: [String(inClusterObjectStore.adminPort)] } }]);
        const peer = objects.find((o) => o.type.endsWith(":PeerAuthentication") && o.inputs.metadata.namespace === ns);
        assert.deepEqual(peer?.inputs.spec.mtls, { mode: "STRICT" });
        // And each tenant's Orthanc may leave for the server's pods on the S3 port only.
        for (const tenant of tenants) {
            const orthanc = objects.find((o) => o.type.endsWith(":NetworkPolicy") && o.inputs.metadata.namespace === tenantNames(tenant.name, "").namespace && o.inputs.metadata.name === "allow-orthanc")!;
            const toStore = orthanc.inputs.spec.egress.filter((rule: any) => rule.to.some((peer: any) => peer.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"] === ns));
            assert.deepEqual(toStore, [{ to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": ns } }, podSelector: { matchLabels: inClusterObjectStorePodLabels } }], ports: [{ protocol: "TCP", port: inClusterObjectStore.port }] }]);
        }
    });

    it("points each tenant's Orthanc at it: the S3 plugin, the Service by path over the mesh, the key from the storage Secret, and the image starts", () => {
        const tenant = parseStackConfig({ domain: "orthweb.example.org", ingress: { serviceType: "NodePort" }, objectStore: {}, tenants: [{ name: "bhs", displayName: "B", storage: { type: "s3", s3: { inCluster: true, bucket: "orthanc-bhs", region: "us-east-1" } } }] }).tenants[0];
        const config = tenantOrthancConfig(tenant, "orthweb.example.org", { adminPassword: "a", databasePassword: "d" }) as any;
        assert.deepEqual(config.AwsS3Storage, { BucketName: "orthanc-bhs", Region: "us-east-1", Endpoint: inClusterObjectStoreEndpoint(), VirtualAddressing: false, RootPath: "bhs", StorageStructure: "flat", HybridMode: "Disabled" });
        const pod = storagePodAdditions(tenant.storage);
        assert.deepEqual(pod.env.map((e) => [e.name, (e.valueFrom as any).secretKeyRef.key]), [["AWS_ACCESS_KEY_ID", storageSecretKeys.awsAccessKeyId], ["AWS_SECRET_ACCESS_KEY", storageSecretKeys.awsSecretAccessKey]]);
        const start = startImage({
            configFiles: [JSON.stringify(config)],
            env: { GENERATE_HOST_ID_IF_MISSING: "false", AWS_ACCESS_KEY_ID: "k", AWS_SECRET_ACCESS_KEY: "s" },
            mountedDirectories: ["/tmp", pluginLinkDirectory],
            readOnlyRootFilesystem: true,
            imageTag: "26.8.1",
        });
        assert.deepEqual(start.reasons, []);
        assert.equal(start.storageArea, "AwsS3Storage");
        // The rendered local stack's Orthanc configuration says the same.
        const secret = find("Secret", tenantNames("bhs", "").namespace, "orthanc-config");
        const rendered = JSON.parse(plain(secret.inputs.stringData)["orthanc.json"]);
        assert.equal(rendered.AwsS3Storage.Endpoint, inClusterObjectStoreEndpoint());
        assert.equal(rendered.PostgreSQL.EnableStorage, false);
    });
});
