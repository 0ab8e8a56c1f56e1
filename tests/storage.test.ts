/**
 * Where a tenant's DICOM files are stored: the configuration fragment, the image's start-up with it, the pod's
 * identity and keys, the walls to the store, the guard of immutable settings, and the rendered example stacks.
 */
import { strict as assert } from "assert";
import { parseStackConfig } from "../components/config/load";
import { StorageConfig, TenantConfig } from "../components/config/schema";
import {
    mergeOrthancConfig,
    orthancImageFor,
    storageClaimName,
    storageKeyDirectory,
    storageMountPath,
    storageOrthancConfig,
    storagePodAdditions,
    storageSecretName,
} from "../components/data/storage/orthancStorage";
import { identityDigest, previousIdentity, storageChangeProblem, storageIdentity, storageIdentityOutput } from "../components/data/storage/storageIdentity";
import { storageEndpoint, storageWalls } from "../components/data/storage/storageWalls";
import { TenantStorage } from "../components/data/storage/tenantStorage";
import { defaultClusterNetwork } from "../components/data/backup/backup";
import { tenantNames } from "../components/naming/tenantNames";
import { orthancConfigFile, orthancImageLayout, tenantOrthancConfig } from "../components/tenant/orthancWorkload";
import { orthancFullImage, orthancImage } from "../components/versions";
import { isSecretValue, plain, reveal } from "./support/mocks";
import { registeredUnder, useMocks } from "./support/inProcess";
import { kubernetesObjects, parsedStackFile, renderStack } from "./support/stacks";
import { validateServiceEntry } from "./upstream/istioValidation";
import { pluginLinkDirectory, startImage } from "./upstream/orthancImage";
import { selfReferenceOutputs } from "./upstream/stackReference";

/** A tenant of a minimal stack with `storage`, as the schema fills it in. */
function tenantWith(storage: Record<string, unknown>, kubernetes: Record<string, unknown> = {}): TenantConfig {
    return parseStackConfig({ domain: "orthweb.example.org", ingress: { serviceType: "LoadBalancer" }, kubernetes, tenants: [{ name: "bhs", displayName: "B", storage }] }).tenants[0];
}

const awsS3 = { type: "s3", s3: { bucket: "images-bhs", region: "eu-west-1", roleArn: "arn:aws:iam::111122223333:role/orthanc-bhs" }, anyAddress: true };
const onPremisesS3 = {
    type: "s3",
    s3: { bucket: "orthanc", region: "us-east-1", endpoint: "https://10.50.0.5:9000", addressing: "path", accessKeyId: "AKIA", secretAccessKey: "s3cret" },
};
const azure = { type: "azure-blob", azureBlob: { account: "bhsimages", container: "orthanc", connectionString: "DefaultEndpointsProtocol=https;..." }, anyAddress: true };
const google = { type: "google-cloud-storage", googleCloudStorage: { bucket: "bhs-images", serviceAccountKey: "{}" }, anyAddress: true };
const filesystem = { type: "filesystem", filesystem: { storageClass: "efs-sc", size: "500Gi" } };

/** The image's start-up on the configuration and pod a tenant with `storage` gets. */
function startWith(tenant: TenantConfig) {
    const config = tenantOrthancConfig(tenant, "orthweb.example.org", { adminPassword: "a", databasePassword: "d" });
    const pod = storagePodAdditions(tenant.storage);
    const env: Record<string, string> = { GENERATE_HOST_ID_IF_MISSING: "false" };
    for (const variable of pod.env) env[variable.name as string] = `value-of-${variable.name}`;
    return startImage({
        configFiles: [JSON.stringify(config)],
        env,
        mountedDirectories: ["/tmp", pluginLinkDirectory, ...pod.volumeMounts.filter((m) => !m.readOnly).map((m) => m.mountPath as string)],
        readOnlyRootFilesystem: true,
        imageTag: orthancImageFor(tenant.storage).tag,
    });
}

describe("storage: the Orthanc configuration fragment", () => {
    it("keeps the files in PostgreSQL only with postgresql storage, the index there always", () => {
        for (const storage of [{}, awsS3, onPremisesS3, azure, google, filesystem]) {
            const tenant = tenantWith(storage);
            const config = tenantOrthancConfig(tenant, "orthweb.example.org", { adminPassword: "a", databasePassword: "d" }) as any;
            assert.equal(config.PostgreSQL.EnableIndex, true);
            assert.equal(config.PostgreSQL.EnableStorage, tenant.storage.type === "postgresql", tenant.storage.type);
            // The database settings survive the merge.
            assert.equal(config.PostgreSQL.Database, "orthanc");
        }
    });

    it("renders each object store's section from the settings read in orthanc-object-storage's sources", () => {
        assert.deepEqual(storageOrthancConfig(tenantWith(awsS3).storage, { name: "bhs" }), {
            PostgreSQL: { EnableStorage: false },
            StorageLoaderThreadsCount: 20,
            AwsS3Storage: { BucketName: "images-bhs", Region: "eu-west-1", VirtualAddressing: true, RootPath: "bhs", StorageStructure: "flat", HybridMode: "Disabled" },
        });
        const onPremises = storageOrthancConfig(tenantWith(onPremisesS3, { cni: "cilium" }).storage, { name: "bhs" }) as any;
        assert.equal(onPremises.AwsS3Storage.Endpoint, "10.50.0.5:9000");
        assert.equal(onPremises.AwsS3Storage.VirtualAddressing, false);
        assert.equal(onPremises.AwsS3Storage.AccessKey, undefined, "no key in the configuration: the SDK reads it from the pod's variables");
        const az = storageOrthancConfig(tenantWith({ ...azure, rootPath: "archive/bhs", structure: "legacy" }).storage, { name: "bhs" }) as any;
        assert.deepEqual(az.AzureBlobStorage, { ContainerName: "orthanc", CreateContainerIfNotExists: false, RootPath: "archive/bhs", StorageStructure: "legacy", HybridMode: "Disabled" });
        const gcs = storageOrthancConfig(tenantWith(google).storage, { name: "bhs" }) as any;
        assert.equal(gcs.GoogleCloudStorage.ServiceAccountFile, `${storageKeyDirectory}/service-account.json`);
        assert.deepEqual(storageOrthancConfig(tenantWith(filesystem).storage, { name: "bhs" }), { PostgreSQL: { EnableStorage: false }, StorageDirectory: storageMountPath, SyncStorageArea: true });
    });

    it("encrypts client-side with the generated master key's file, key id 1", () => {
        const config = storageOrthancConfig(tenantWith({ ...awsS3, clientSideEncryption: true }).storage, { name: "bhs" }) as any;
        assert.deepEqual(config.AwsS3Storage.StorageEncryption, { Enable: true, MasterKey: [1, `${storageKeyDirectory}/master-key`] });
        const pod = storagePodAdditions(tenantWith({ ...awsS3, clientSideEncryption: true }).storage);
        assert.deepEqual(pod.volumeMounts, [{ name: "storage-keys", mountPath: storageKeyDirectory, readOnly: true }]);
        assert.deepEqual(pod.secretKeys, ["master-key"]);
    });

    it("merges sections key by key and replaces other keys", () => {
        assert.deepEqual(mergeOrthancConfig({ A: { x: 1, y: 2 }, B: [1], C: 1 }, { A: { y: 3 }, B: [2], D: 4 }), { A: { x: 1, y: 3 }, B: [2], C: 1, D: 4 });
    });
});

describe("storage: the image's own start-up (tests/upstream/orthancImage.ts)", () => {
    const cases: [string, Record<string, unknown>, string, string | undefined][] = [
        ["postgresql", {}, "PostgreSQL", undefined],
        ["s3 (AWS, IRSA)", awsS3, "AwsS3Storage", "libOrthancAwsS3Storage.so"],
        ["s3 (on premises, static key)", onPremisesS3, "AwsS3Storage", "libOrthancAwsS3Storage.so"],
        ["azure-blob", azure, "AzureBlobStorage", "libOrthancAzureBlobStorage.so"],
        ["google-cloud-storage", google, "GoogleCloudStorage", "libOrthancGoogleCloudStorage.so"],
        ["filesystem", filesystem, `filesystem:${storageMountPath}`, undefined],
    ];
    for (const [what, storage, area, plugin] of cases) {
        it(`${what}: starts, the files in ${area}${plugin ? ` through ${plugin}` : ""}, no other storage plugin registering`, () => {
            const start = startWith(tenantWith(storage, { cni: "cilium" }));
            assert.deepEqual(start.reasons, []);
            assert.equal(start.exitCode, 0);
            assert.equal(start.storageArea, area);
            const storagePlugins = start.loadedLibraries.filter((lib) => /Storage\.so$/.test(lib) && lib !== "libOrthancPostgreSQLStorage.so");
            assert.deepEqual(storagePlugins, plugin ? [plugin] : []);
            assert.deepEqual(start.redefinedKeys, []);
        });
    }

    it("the model refuses what the image refuses: Azure's plugin on the default image, two storage areas", () => {
        const tenant = tenantWith(azure);
        const config = tenantOrthancConfig(tenant, "orthweb.example.org", { adminPassword: "a", databasePassword: "d" }) as any;
        const base = { env: { GENERATE_HOST_ID_IF_MISSING: "false" }, mountedDirectories: ["/tmp", pluginLinkDirectory], readOnlyRootFilesystem: true };
        const onDefault = startImage({ ...base, configFiles: [JSON.stringify(config)], imageTag: orthancImage.tag });
        assert.match(onDefault.reasons.join("\n"), /only in its -full build: libOrthancAzureBlobStorage\.so/);
        const twice = startImage({ ...base, configFiles: [JSON.stringify({ ...config, PostgreSQL: { ...config.PostgreSQL, EnableStorage: true } })], imageTag: orthancFullImage.tag });
        assert.match(twice.reasons.join("\n"), /second storage area.*PostgreSQL, AzureBlobStorage|second storage area.*AzureBlobStorage, PostgreSQL/);
        assert.equal(orthancImageFor(tenant.storage), orthancFullImage);
        assert.equal(orthancImageFor(tenantWith(awsS3).storage), orthancImage, "the S3 plugin is in the default image");
    });
});

describe("storage: identity and keys in the pod", () => {
    it("binds AWS S3 to the IAM role by EKS IRSA's annotation, with no key anywhere", () => {
        const pod = storagePodAdditions(tenantWith(awsS3).storage);
        assert.deepEqual(pod.serviceAccountAnnotations, { "eks.amazonaws.com/role-arn": awsS3.s3.roleArn, "eks.amazonaws.com/sts-regional-endpoints": "true" });
        assert.deepEqual([pod.env, pod.secretKeys, pod.volumes], [[], [], []]);
    });

    it("hands static keys over from the storage Secret where the store or its plugin has nothing else", () => {
        const byName = (storage: StorageConfig) => Object.fromEntries(storagePodAdditions(storage).env.map((e: any) => [e.name, e.valueFrom.secretKeyRef]));
        assert.deepEqual(byName(tenantWith(onPremisesS3, { cni: "cilium" }).storage), {
            AWS_ACCESS_KEY_ID: { name: storageSecretName, key: "aws-access-key-id" },
            AWS_SECRET_ACCESS_KEY: { name: storageSecretName, key: "aws-secret-access-key" },
        });
        assert.deepEqual(byName(tenantWith(azure).storage), { ORTHANC__AZURE_BLOB_STORAGE__CONNECTION_STRING: { name: storageSecretName, key: "azure-connection-string" } });
        const gcs = storagePodAdditions(tenantWith(google).storage);
        assert.deepEqual(gcs.volumes, [{ name: "storage-keys", secret: { secretName: storageSecretName, defaultMode: 0o440, items: [{ key: "service-account.json", path: "service-account.json" }] } }]);
        for (const storage of [azure, google]) assert.deepEqual(storagePodAdditions(tenantWith(storage).storage).serviceAccountAnnotations, {}, "their plugins read no workload identity");
    });

    it("mounts the ReadWriteMany claim for filesystem storage", () => {
        const pod = storagePodAdditions(tenantWith(filesystem).storage);
        assert.deepEqual(pod.volumes, [{ name: "storage", persistentVolumeClaim: { claimName: storageClaimName } }]);
        assert.deepEqual(pod.volumeMounts, [{ name: "storage", mountPath: storageMountPath }]);
    });
});

describe("storage: walls to the store", () => {
    const names = tenantNames("bhs", "orthweb.example.org");
    const pods = { app: "orthanc" };

    it("names every host the plugin and its credential exchange reach", () => {
        assert.deepEqual(storageEndpoint(tenantWith(awsS3).storage), { hosts: ["s3.eu-west-1.amazonaws.com", "images-bhs.s3.eu-west-1.amazonaws.com", "sts.eu-west-1.amazonaws.com"], port: 443 });
        assert.deepEqual(storageEndpoint(tenantWith(onPremisesS3, { cni: "cilium" }).storage), { hosts: ["10.50.0.5"], port: 9000 });
        assert.deepEqual(storageEndpoint(tenantWith(google).storage)?.hosts, ["storage.googleapis.com", "oauth2.googleapis.com"]);
        assert.equal(storageEndpoint(tenantWith(filesystem).storage), undefined);
    });

    it("lets the mesh reach exactly those names, and the NetworkPolicy what it can express: addresses", () => {
        const walls = storageWalls(names, pods, tenantWith({ ...azure, anyAddress: undefined, addresses: ["10.40.0.5/32"] }).storage, defaultClusterNetwork);
        assert.deepEqual(walls.orthancEgress, [{ to: [{ ipBlock: { cidr: "10.40.0.5/32" } }], ports: [{ protocol: "TCP", port: 443 }] }]);
        assert.deepEqual(walls.serviceEntries.map((e) => e.spec.hosts), [["bhsimages.blob.core.windows.net"]]);
        const byAddress = storageWalls(names, pods, tenantWith(onPremisesS3, { cni: "cilium" }).storage, defaultClusterNetwork);
        assert.deepEqual(byAddress.orthancEgress, [{ to: [{ ipBlock: { cidr: "10.50.0.5/32" } }], ports: [{ protocol: "TCP", port: 9000 }] }]);
        for (const entry of [...walls.serviceEntries, ...byAddress.serviceEntries]) {
            const verdict = validateServiceEntry({ apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: entry.name, namespace: entry.namespace }, spec: entry.spec });
            assert.deepEqual(verdict.errors, [], entry.name);
        }
        assert.deepEqual(storageWalls(names, pods, tenantWith(filesystem).storage, defaultClusterNetwork).serviceEntries, []);
    });

    it("opens the names through Cilium's FQDN policy where the stack runs Cilium, and no address", () => {
        const walls = storageWalls(names, pods, tenantWith({ ...google, anyAddress: undefined }, { cni: "cilium" }).storage, { ...defaultClusterNetwork, cni: "cilium" });
        assert.deepEqual(walls.orthancEgress, []);
        const fqdns = walls.cniPolicies!.map((p: any) => p.spec.egress.at(-1).toFQDNs[0].matchName);
        assert.deepEqual(fqdns, ["storage.googleapis.com", "oauth2.googleapis.com"]);
        assert.ok(walls.cniPolicies!.every((p: any) => p.spec.endpointSelector.matchLabels.app === "orthanc"));
    });
});

describe("storage: settings that cannot change once files are stored", () => {
    const s3 = tenantWith(awsS3).storage;
    const identity = (storage: Record<string, unknown>, key?: string) => storageIdentity(tenantWith(storage).storage, { name: "bhs" }, key);
    const deployed = (identity_: object, tenant = "bhs") =>
        selfReferenceOutputs({ exists: true, completedUpdates: [{ tenantEndpoints: { [tenant]: {} }, [storageIdentityOutput]: { [tenant]: identity_ } }] });

    it("checks nothing on a stack never deployed (its own StackReference reads no outputs)", () => {
        const previous = previousIdentity(selfReferenceOutputs({ exists: true, completedUpdates: [] }), "bhs");
        assert.equal(previous, undefined);
        assert.equal(storageChangeProblem("bhs", previous, identity(awsS3)), undefined);
    });

    it("takes a tenant deployed before storage was a choice as storing in PostgreSQL", () => {
        const outputs = selfReferenceOutputs({ exists: true, completedUpdates: [{ tenantEndpoints: { bhs: {} } }] });
        assert.deepEqual(previousIdentity(outputs, "bhs"), { type: "postgresql" });
        assert.equal(previousIdentity(outputs, "gvh"), undefined, "a tenant added now has no files");
        assert.match(storageChangeProblem("bhs", previousIdentity(outputs, "bhs"), identity(awsS3)) ?? "", /storage\.type: "postgresql" -> "s3"/);
    });

    const changes: [string, Record<string, unknown>, RegExp][] = [
        ["the bucket", { ...awsS3, s3: { ...awsS3.s3, bucket: "other-bucket" } }, /storage\.s3\.bucket.*"s3:\/\/images-bhs in eu-west-1" -> "s3:\/\/other-bucket in eu-west-1"/],
        ["the root path", { ...awsS3, rootPath: "archive/bhs" }, /storage\.rootPath: "bhs" -> "archive\/bhs"/],
        ["the key layout", { ...awsS3, structure: "legacy" }, /storage\.structure: "flat" -> "legacy"/],
        ["client-side encryption", { ...awsS3, clientSideEncryption: true }, /storage\.clientSideEncryption \(its master key\): "none" -> /],
        ["the type", filesystem, /storage\.type: "s3" -> "filesystem"/],
    ];
    for (const [what, next, named] of changes) {
        it(`stops a change of ${what}, naming the setting, before anything is replaced`, () => {
            const before = previousIdentity(deployed(storageIdentity(s3, { name: "bhs" })), "bhs");
            const problem = storageChangeProblem("bhs", before, identity(next));
            assert.match(problem ?? "", named);
            assert.match(problem ?? "", /cannot change once files are stored/);
        });
    }

    it("stops a replaced encryption key, and lets an unchanged identity and an acknowledged migration through", () => {
        const encrypted = { ...awsS3, clientSideEncryption: true };
        const before = previousIdentity(deployed(identity(encrypted, "aaaa")), "bhs")!;
        assert.match(storageChangeProblem("bhs", before, identity(encrypted, "bbbb")) ?? "", /master key\): "aaaa" -> "bbbb"/);
        assert.equal(storageChangeProblem("bhs", before, identity(encrypted, "aaaa")), undefined);
        const problem = storageChangeProblem("bhs", before, identity(filesystem))!;
        const digest = identityDigest(before);
        assert.ok(problem.includes(`storage.replacesIdentity: "${digest}"`), problem);
        assert.equal(storageChangeProblem("bhs", before, identity(filesystem), digest), undefined);
        assert.ok(storageChangeProblem("bhs", before, identity(filesystem), "0123456789abcdef"), "another identity's digest acknowledges nothing");
    });

    it("registers nothing that stores files when the guard refuses (the component, in process)", async () => {
        await useMocks();
        const tenant = { ...tenantWith(filesystem), name: "guarded" };
        const previousOutputs = deployed(storageIdentity(s3, { name: "guarded" }), "guarded");
        const storage = new TenantStorage("guarded-storage", { tenant, namespace: "guarded-orthweb", previousOutputs, dependsOn: [] });
        // Output's promise(): the SDK's own way to await an output (what the engine does with a resource's inputs).
        await assert.rejects((storage.checked as any).promise(), /storage\.type: "s3" -> "filesystem"/);
        const registered = await registeredUnder("guarded-storage");
        assert.deepEqual(registered.filter((r) => r.type === "kubernetes:core/v1:PersistentVolumeClaim"), [], "no claim registered");
    });
});

describe("storage: the rendered example stacks", () => {
    it("dev: AWS S3 through IRSA, no storage Secret, the storage identity exported", async () => {
        const rendered = await renderStack("dev");
        const config = parsedStackFile("dev");
        for (const tenant of config.tenants) {
            const ns = tenantNames(tenant.name, config.domain).namespace;
            const inNs = kubernetesObjects(rendered).filter((r) => r.inputs.metadata?.namespace === ns);
            const account = inNs.find((r) => r.type === "kubernetes:core/v1:ServiceAccount" && r.inputs.metadata.name === "orthanc")!;
            assert.equal(account.inputs.metadata.annotations["eks.amazonaws.com/role-arn"], tenant.storage.s3!.roleArn);
            assert.ok(!inNs.some((r) => r.type === "kubernetes:core/v1:Secret" && r.inputs.metadata.name === storageSecretName));
            assert.equal(rendered.outputs.storageIdentity[tenant.name].location, `s3://${tenant.storage.s3!.bucket} in eu-west-1`);
        }
    });

    it("tst: the on-premises store's key pair reaches the pod from a Secret, as secrets", async () => {
        const rendered = await renderStack("tst");
        const secret = kubernetesObjects(rendered).find((r) => r.type === "kubernetes:core/v1:Secret" && r.inputs.metadata.name === storageSecretName && r.inputs.metadata.namespace === "bhs-orthweb")!;
        assert.ok(isSecretValue(secret.inputs.stringData) || Object.values(secret.inputs.stringData).every(isSecretValue));
        assert.deepEqual(Object.keys(plain(secret.inputs.stringData)).sort(), ["aws-access-key-id", "aws-secret-access-key"]);
        assert.match(plain(secret.inputs.metadata.annotations)["korthweb.io/storage-identity"], /^[0-9a-f]{16}$/);
    });

    it("cnpg: the generated master key is protected and secret; Google's tenant runs the -full image with its key file", async () => {
        const rendered = await renderStack("cnpg");
        // The storage's master key (the gatekeepers' session keys are random bytes too: tests/identity.test.ts).
        const key = rendered.resources.find((r) => r.type === "random:index/randomBytes:RandomBytes" && !r.name.endsWith("-identity-session-key"))!;
        assert.equal(key.options?.protect, true);
        const secret = kubernetesObjects(rendered).find((r) => r.type === "kubernetes:core/v1:Secret" && r.inputs.metadata.name === storageSecretName && r.inputs.metadata.namespace === "bhs-orthweb")!;
        assert.ok(isSecretValue(secret.inputs.stringData) || isSecretValue(secret.inputs.stringData["master-key"]));
        assert.equal(Buffer.from(reveal(plain(secret.inputs.stringData)["master-key"]), "base64").length, 32, "AES-256");
        const mhr = kubernetesObjects(rendered).find((r) => r.type === "kubernetes:apps/v1:Deployment" && r.inputs.metadata.namespace === "mhr-orthweb" && r.inputs.metadata.name !== "gatekeeper")!;
        const container = mhr.inputs.spec.template.spec.containers[0];
        assert.ok(container.image.startsWith(`docker.io/orthancteam/orthanc:${orthancFullImage.tag}`));
        assert.ok(container.volumeMounts.some((m: any) => m.mountPath === storageKeyDirectory && m.readOnly));
    });

    it("external: the filesystem tenant's ReadWriteMany claim, protected, mounted where StorageDirectory points", async () => {
        const rendered = await renderStack("external");
        const claim = kubernetesObjects(rendered).find((r) => r.type === "kubernetes:core/v1:PersistentVolumeClaim" && r.inputs.metadata.namespace === "mhr-orthweb")!;
        assert.deepEqual(claim.inputs.spec, { accessModes: ["ReadWriteMany"], storageClassName: "azurefile-csi", resources: { requests: { storage: "500Gi" } } });
        assert.equal(claim.options?.protect, true);
        const orthanc = JSON.parse(
            plain(kubernetesObjects(rendered).find((r) => r.type === "kubernetes:core/v1:Secret" && r.inputs.metadata.name === "orthanc-config" && r.inputs.metadata.namespace === "mhr-orthweb")!.inputs.stringData)[orthancConfigFile],
        );
        assert.equal(orthanc.StorageDirectory, storageMountPath);
        assert.notEqual(orthanc.StorageDirectory.startsWith(orthancImageLayout.secretsDirectory), true);
    });
});

describe("storage: what the store's owner sets up (stack output storageSetup)", () => {
    it("gives the AWS role a policy on the tenant's prefix only, and on its KMS key", async () => {
        const rendered = await renderStack("cnpg");
        const setup = rendered.outputs.storageSetup.bhs;
        assert.equal(setup.serviceAccount, "system:serviceaccount:bhs-orthweb:orthanc");
        assert.deepEqual(setup.rolePolicy.Statement[0].Resource, "arn:aws:s3:::korthweb-cnpg-images-bhs/bhs/*");
        assert.deepEqual(setup.rolePolicy.Statement[0].Action, ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]);
        assert.equal(setup.rolePolicy.Statement[1].Resource, parsedStackFile("cnpg").tenants[0].storage.s3!.kmsKeyId);
        assert.match(setup.encryptionAtRest, /SSE-KMS/);
        assert.equal(rendered.outputs.storageSetup.mhr.rolePolicy, undefined, "Google's plugin takes a key file, no role");
        assert.equal((await renderStack("external")).outputs.storageSetup.bhs.rolePolicy, undefined, "Azure's plugin takes a connection string, no role");
        const local = (await renderStack("local")).outputs.storageSetup.bhs;
        assert.equal(local.rolePolicy, undefined, "the in-cluster server's key pair is generated: no role to set up");
        assert.match(local.protection[0], /throwaway/);
    });
});
