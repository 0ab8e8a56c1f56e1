import { strict as assert } from "assert";
import { mkdtempSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import * as path from "path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { ConfigError, credentialSettingPaths, parseStackConfig, readStackFile, requireTenantIdentity, schemaSettings, stackConfigFromPulumi } from "../components/config/load";
import { clusterDns, credential, identityRoles, maxTenantNameLength, stackConfigSchema, tenantBackupTarget } from "../components/config/schema";
import { defaultRoles } from "../components/identity/contract";
import { parsedStackFile, allStacks } from "./support/stacks";
import { deliveredConfig } from "./upstream/pulumiConfig";
import { cnonlyRequest, ecRequest, okRequest, sanRequest, tamperedRequest, weakRequest, wrongcnRequest } from "./support/modalityRequests";

const minimal = () => ({
    domain: "orthweb.example.org",
    ingress: { serviceType: "LoadBalancer" },
    tenants: [{ name: "bhs", displayName: "Beaverdale Health Services" }] as Record<string, unknown>[],
});

const externalDatabase = () => ({
    host: "orthanc-bhs.postgres.database.azure.com",
    database: "orthanc",
    user: "orthanc",
    password: "a-long-generated-password",
    caCertificate: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    addresses: ["10.0.5.0/28"],
});
const backupS3 = () => ({ endpoint: "https://s3.eu-west-1.amazonaws.com", bucket: "korthweb-backups", anyAddress: true });
const cloudS3 = () => ({ endpoint: "https://s3.eu-west-1.amazonaws.com", bucket: "korthweb-backups" });
/** bhs's own key pair (minimal()'s only tenant). */
const bhsBackup = () => ({ bhs: { accessKeyId: "AKIABHS", secretAccessKey: "secret-bhs" } });
const kmsKey = (n: number) => `arn:aws:kms:eu-west-1:111122223333:key/${String(n).repeat(8)}-1111-2222-3333-444455556666`;
const roleArn = (tenant: string) => `arn:aws:iam::111122223333:role/korthweb-${tenant}-backup`;
const irsa = { oidcProviderArn: "arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE" };
/** Two backed-up tenants, bhs and mhr, on `engine`, with `backup.tenants` as given. */
function twoTenantBackup(tenants: Record<string, Record<string, unknown>>, engine = "bitnami-ha", s3: Record<string, unknown> = backupS3()) {
    return {
        ...minimal(),
        kubernetes: { apiServerAddresses: ["10.0.0.1/32"] },
        tenants: ["bhs", "mhr"].map((name) => ({ name, displayName: name.toUpperCase(), database: { engine } })),
        backup: { s3, tenants },
    };
}

const smtp = { smarthost: "smtp.example.org:587", from: "alerts@example.org" };

function withReceivers(receivers: Record<string, unknown>[], smtpServer?: Record<string, unknown>) {
    return { ...minimal(), observability: { alerting: { receivers, ...(smtpServer ? { smtp: smtpServer } : {}) } } };
}

function withTenant(patch: Record<string, unknown>) {
    const config = minimal();
    return { ...config, tenants: [{ ...config.tenants[0], ...patch }] };
}

/**
 * What the program says of a one-tenant stack (`tenant` merged into bhs) read from Pulumi, with every top-level key
 * secret or none: the refusal's message, or "" when accepted.
 */
function oneTenantRefusal(tenant: Record<string, unknown>): (secret: boolean) => string {
    const raw = {
        "korthweb:domain": "orthweb.example.org",
        "korthweb:ingress": JSON.stringify(minimal().ingress),
        "korthweb:observability": JSON.stringify({ alerting: { enabled: false } }),
        "korthweb:tenants": JSON.stringify([{ name: "bhs", displayName: "B", ...tenant }]),
    };
    return (secret: boolean) => {
        try {
            stackConfigFromPulumi(raw, "korthweb", () => secret);
            return "";
        } catch (error) {
            return (error as Error).message;
        }
    };
}

function problemsOf(raw: unknown): string {
    try {
        parseStackConfig(raw);
    } catch (error) {
        assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
        return error.message;
    }
    assert.fail("the configuration was accepted");
}

describe("stack configuration", () => {
    for (const stack of allStacks) {
        it(`accepts the shipped ${stack} stack with tenants bhs and mhr`, () => {
            const config = parsedStackFile(stack);
            assert.deepEqual(
                config.tenants.map((t) => [t.name, t.displayName]),
                [
                    ["bhs", "Beaverdale Health Services"],
                    ["mhr", "Maple Hill Radiology"],
                ],
            );
        });
    }

    it("accepts each way out to object storage, and DNS by pods or by address", () => {
        for (const s3 of [{ ...cloudS3(), addresses: ["10.30.0.0/24"] }, { ...cloudS3(), anyAddress: true }, { ...cloudS3(), endpoint: "https://10.30.0.5:9000" }]) {
            assert.doesNotThrow(() => parseStackConfig({ ...minimal(), backup: { s3, tenants: bhsBackup() } }), JSON.stringify(s3));
        }
        assert.doesNotThrow(() => parseStackConfig({ ...minimal(), kubernetes: { cni: "cilium" }, backup: { s3: cloudS3(), tenants: bhsBackup() } }));
        const nodeLocal = parseStackConfig({ ...minimal(), kubernetes: { dns: { addresses: ["169.254.20.10/32"] } } });
        assert.deepEqual(nodeLocal.kubernetes.dns, { addresses: ["169.254.20.10/32"], ports: [53] });
    });

    it("accepts tenants with their own key pairs: by prefix in one bucket, or CloudNativePG in buckets of their own", () => {
        const shared = parseStackConfig(twoTenantBackup({ bhs: { accessKeyId: "A1", secretAccessKey: "a", kmsKeyId: kmsKey(1) }, mhr: { accessKeyId: "A2", secretAccessKey: "b", prefix: "sites/mhr" } }));
        assert.deepEqual(tenantBackupTarget(shared.backup, "bhs"), { bucket: "korthweb-backups", prefix: "bhs/", identity: { kind: "keyPair", accessKeyId: "A1", secretAccessKey: "a" }, kmsKeyId: kmsKey(1) });
        assert.equal(tenantBackupTarget(shared.backup, "mhr")?.prefix, "sites/mhr/");
        assert.equal(tenantBackupTarget(shared.backup, "gvh"), undefined);
        const own = parseStackConfig(
            twoTenantBackup({ bhs: { accessKeyId: "A1", secretAccessKey: "a", bucket: "backups-bhs" }, mhr: { accessKeyId: "A2", secretAccessKey: "b", bucket: "backups-mhr" } }, "cloudnative-pg", { endpoint: "https://s3.example.org", anyAddress: true }),
        );
        assert.deepEqual(["bhs", "mhr"].map((t) => tenantBackupTarget(own.backup, t)?.bucket), ["backups-bhs", "backups-mhr"]);
    });

    it("accepts a tenant that assumes an IAM role of its own beside one with a key pair, and keeps no key for it", () => {
        const config = parseStackConfig({ ...twoTenantBackup({ bhs: { roleArn: roleArn("bhs") }, mhr: { accessKeyId: "A2", secretAccessKey: "b" } }), backup: { s3: backupS3(), irsa, tenants: { bhs: { roleArn: roleArn("bhs") }, mhr: { accessKeyId: "A2", secretAccessKey: "b" } } } });
        assert.deepEqual(tenantBackupTarget(config.backup, "bhs")?.identity, { kind: "role", roleArn: roleArn("bhs") });
        assert.equal(tenantBackupTarget(config.backup, "mhr")?.identity.kind, "keyPair");
        // By name through Cilium instead of any address; a role with a path; the China partition with its own provider.
        assert.doesNotThrow(() => parseStackConfig({ ...minimal(), kubernetes: { cni: "cilium" }, backup: { s3: cloudS3(), irsa, tenants: { bhs: { roleArn: "arn:aws:iam::111122223333:role/korthweb/backup/bhs" } } } }));
        assert.doesNotThrow(() =>
            parseStackConfig({
                ...minimal(),
                backup: {
                    s3: { endpoint: "https://s3.cn-north-1.amazonaws.com.cn", bucket: "korthweb-backups", anyAddress: true },
                    irsa: { oidcProviderArn: "arn:aws-cn:iam::111122223333:oidc-provider/oidc.eks.cn-north-1.amazonaws.com.cn/id/EXAMPLE" },
                    tenants: { bhs: { roleArn: "arn:aws-cn:iam::111122223333:role/korthweb-bhs-backup" } },
                },
            }),
        );
    });

    it("finds the cluster DNS of kind, minikube and the clouds by default, and OpenShift's on OpenShift", () => {
        assert.deepEqual(clusterDns(parseStackConfig(minimal()).kubernetes), { namespace: "kube-system", podLabels: { "k8s-app": "kube-dns" }, ports: [53] });
        assert.deepEqual(clusterDns(parseStackConfig({ ...minimal(), kubernetes: { platform: "openshift" } }).kubernetes), {
            namespace: "openshift-dns",
            podLabels: { "dns.operator.openshift.io/daemonset-dns": "default" },
            ports: [5353],
        });
        const own = { namespace: "dns", podLabels: { app: "coredns" }, ports: [53] };
        assert.deepEqual(clusterDns(parseStackConfig({ ...minimal(), kubernetes: { platform: "openshift", dns: own } }).kubernetes), own, "the stack's setting wins");
    });

    it("accepts a modality's own certificate request (RSA or EC, with or without O and OU) in place of a program-made key", () => {
        for (const request of [okRequest, cnonlyRequest, ecRequest]) {
            const config = parseStackConfig(withTenant({ modalities: [{ name: "ct", aeTitle: "CT1", certificateRequest: request }] }));
            assert.equal(config.tenants[0].modalities[0].certificateRequest, request);
        }
    });

    it("replicates synchronously by default, and takes fewer nodes only with an explicit opt-out (or an external database)", () => {
        assert.equal(parseStackConfig(minimal()).tenants[0].postgres.replication, "synchronous");
        for (const engine of ["bitnami-ha", "cloudnative-pg"]) {
            const config = parseStackConfig({ ...withTenant({ database: { engine }, postgres: { replicas: 2, replication: "asynchronous" } }), ...(engine === "cloudnative-pg" ? { kubernetes: { apiServerAddresses: ["10.0.0.1/32"] } } : {}) });
            assert.equal(config.tenants[0].postgres.replication, "asynchronous", engine);
        }
        assert.doesNotThrow(() => parseStackConfig(withTenant({ postgres: { replicas: 1, replication: "asynchronous" } })));
        assert.doesNotThrow(() => parseStackConfig(withTenant({ database: { engine: "external", external: externalDatabase() }, postgres: { replicas: 1 } })));
    });

    it("fills every default from one place, so a stack file only says what differs", () => {
        const config = parseStackConfig(minimal());
        assert.deepEqual(config.ingress.annotations, {});
        assert.equal(config.observability.enabled, true);
        assert.equal(config.tenants[0].orthanc.minReplicas, 2);
        assert.equal(config.tenants[0].postgres.replicas, 3);
        assert.equal(config.tenants[0].protectData, true);
        assert.equal(config.pki.rootCaValidityHours, 87600);
        assert.equal(config.pki.modalityCertificateOverlapHours, 30 * 24);
    });

    it("keeps what the tst stack overrides and defaults the rest", () => {
        const config = parsedStackFile("tst");
        assert.equal(config.ingress.annotations["service.beta.kubernetes.io/azure-load-balancer-internal"], "true");
        assert.equal(config.tenants[0].orthanc.minReplicas, 3);
        assert.equal(config.tenants[0].postgres.volumeSize, "100Gi");
        assert.equal(config.tenants[0].postgres.pgpoolReplicas, 2);
    });

    it("reads Pulumi's flat config map, parsing JSON values and ignoring other projects' keys", () => {
        const config = stackConfigFromPulumi(
            {
                "korthweb:domain": "orthweb.example.org",
                "korthweb:ingress": JSON.stringify(minimal().ingress),
                "korthweb:tenants": JSON.stringify(minimal().tenants),
                "korthweb:observability": JSON.stringify({ enabled: false }),
                "kubernetes:context": "elsewhere",
            },
            "korthweb",
        );
        assert.equal(config.observability.enabled, false);
        assert.equal(config.tenants[0].name, "bhs");
    });

    it("reports a misspelt top-level key from Pulumi's config map instead of ignoring it", () => {
        assert.throws(
            () =>
                stackConfigFromPulumi(
                    {
                        "korthweb:domain": "orthweb.example.org",
                        "korthweb:ingress": JSON.stringify(minimal().ingress),
                        "korthweb:tenants": JSON.stringify(minimal().tenants),
                        "korthweb:observabilty": "{}",
                    },
                    "korthweb",
                ),
            /korthweb:observabilty: unknown key; allowed keys here: domain, tenants/,
        );
    });

    it("refuses credentials stored in plain text, naming the command that stores them as secrets", () => {
        const raw = {
            "korthweb:domain": "orthweb.example.org",
            "korthweb:ingress": JSON.stringify(minimal().ingress),
            "korthweb:tenants": JSON.stringify([
                { name: "bhs", displayName: "B", database: { engine: "external", external: externalDatabase() } },
                { name: "mhr", displayName: "M" },
            ]),
            "korthweb:backup": JSON.stringify({ s3: backupS3(), tenants: { mhr: { accessKeyId: "AKIAMHR", secretAccessKey: "secret-mhr" } } }),
            "korthweb:observability": JSON.stringify({ alerting: { enabled: false } }),
        };
        const problems = (secret: string[]) => {
            try {
                stackConfigFromPulumi(raw, "korthweb", (key) => secret.includes(key));
                return "";
            } catch (error) {
                return (error as Error).message;
            }
        };
        const plainText = problems([]);
        assert.match(plainText, /korthweb:tenants\[0\]\.database\.external\.password is stored in plain text; allowed: a secret, set with pulumi config set --secret --path 'tenants\[0\]\.database\.external\.password'/);
        assert.match(plainText, /korthweb:backup\.tenants\.mhr\.secretAccessKey is stored in plain text; allowed: a secret, set with pulumi config set --secret --path 'backup\.tenants\.mhr\.secretAccessKey'/);
        assert.match(plainText, /korthweb:backup\.tenants\.mhr\.accessKeyId is stored in plain text/);
        assert.equal(problems(["korthweb:tenants", "korthweb:backup"]), "");
    });

    describe("where alerts go", () => {
        const fromPulumi = (observability: unknown, secret: string[] = ["korthweb:observability"], tenants = minimal().tenants) => {
            try {
                stackConfigFromPulumi(
                    {
                        "korthweb:domain": "orthweb.example.org",
                        "korthweb:ingress": JSON.stringify(minimal().ingress),
                        "korthweb:tenants": JSON.stringify(tenants),
                        ...(observability === undefined ? {} : { "korthweb:observability": JSON.stringify(observability) }),
                    },
                    "korthweb",
                    (key) => secret.includes(key),
                );
                return "";
            } catch (error) {
                return (error as Error).message;
            }
        };
        const twoTenants = [...minimal().tenants, { name: "mhr", displayName: "M" }];

        it("refuses a stack whose alerts would reach nobody, naming the opt-out", () => {
            assert.match(fromPulumi(undefined), /korthweb:observability\.alerting\.receivers: allowed: at least one receiver .*observability\.alerting\.enabled: false/);
            assert.equal(fromPulumi({ alerting: { enabled: false } }), "", "an explicit opt-out");
            assert.equal(fromPulumi({ enabled: false }), "", "no observability, no alerts to route");
            assert.equal(fromPulumi({ alerting: { receivers: [{ name: "ops", webhook: { url: "https://alerts.example.org/k" } }] } }), "");
        });

        it("refuses receivers that leave a tenant or a severity without anyone, naming which", () => {
            const onlyCritical = { alerting: { receivers: [{ name: "pager", severities: ["critical"], pagerduty: { routingKey: "k" } }] } };
            assert.match(fromPulumi(onlyCritical), /none gets bhs\/warning$/m);
            const onlyBhs = { alerting: { receivers: [{ name: "ops", tenants: ["bhs"], webhook: { url: "https://a.example.org/k" } }] } };
            assert.match(fromPulumi(onlyBhs, undefined, twoTenants), /none gets mhr\/critical, mhr\/warning/);
        });

        it("refuses every alerting credential in plain text and accepts it as a secret, without printing it", () => {
            const observability = {
                alerting: {
                    smtp: { ...smtp, username: "alerts", password: "smtp-secret-1" },
                    receivers: [
                        {
                            name: "all",
                            email: { to: ["a@example.org"] },
                            webhook: { url: "https://a.example.org/k", bearerToken: "token-secret-2" },
                            slack: { webhookUrl: "https://hooks.slack.example/secret-3" },
                            pagerduty: { routingKey: "routing-secret-4" },
                            opsgenie: { apiKey: "api-secret-5" },
                        },
                    ],
                },
            };
            const message = fromPulumi(observability, []);
            for (const path of ["smtp.password", "receivers[0].webhook.bearerToken", "receivers[0].slack.webhookUrl", "receivers[0].pagerduty.routingKey", "receivers[0].opsgenie.apiKey"]) {
                const quoted = `observability.alerting.${path}`.replace(/[.[\]]/g, "\\$&");
                assert.match(message, new RegExp(`korthweb:${quoted} is stored in plain text; allowed: a secret, set with pulumi config set --secret --path '${quoted}'`));
            }
            assert.doesNotMatch(message, /secret-\d/);
            assert.equal(fromPulumi(observability), "");
        });
    });

    // Each row: the configuration, then what the single error message must say (key, value found, what is allowed).
    const invalid: [string, unknown, RegExp[]][] = [
        ["a tenant name that is not a DNS label", withTenant({ name: "Bhs_1" }), [/korthweb:tenants\[0\]\.name is "Bhs_1"/, /DNS label/]],
        ["a tenant name starting with a digit", withTenant({ name: "1bhs" }), [/tenants\[0\]\.name is "1bhs"/, /starting with a letter/]],
        [
            "a tenant name that makes an over-long namespace",
            withTenant({ name: "a".repeat(maxTenantNameLength + 1) }),
            [/tenants\[0\]\.name is "a{21}"/, /at most 20 characters .*namespace/],
        ],
        [
            "duplicate tenants",
            { ...minimal(), tenants: [minimal().tenants[0], { name: "bhs", displayName: "Again" }] },
            [/korthweb:tenants\[1\]\.name is "bhs"/, /not used by another tenant/],
        ],
        ["an empty tenant list", { ...minimal(), tenants: [] }, [/korthweb:tenants is \[\]/, /at least one tenant/]],
        ["no tenant list", { domain: "orthweb.example.org" }, [/korthweb:tenants missing/]],
        ["a malformed domain", { ...minimal(), domain: "Orthweb..example" }, [/korthweb:domain is "Orthweb\.\.example"/, /lowercase DNS name/]],
        ["a single-label domain", { ...minimal(), domain: "localhost" }, [/korthweb:domain is "localhost"/]],
        ["a domain too long for the host names", { ...minimal(), domain: `${"a".repeat(60)}.`.repeat(4) + "org" }, [/korthweb:domain/, /253/]],
        ["an unknown top-level key", { ...minimal(), ingres: {} }, [/korthweb:ingres: unknown key/, /allowed keys here: .*ingress/]],
        [
            "a misspelt tenant key",
            withTenant({ orthanc: { maxReplics: 4 } }),
            [/korthweb:tenants\[0\]\.orthanc\.maxReplics: unknown key/, /minReplicas, maxReplicas/],
        ],
        ["a string where a number belongs", withTenant({ orthanc: { minReplicas: "3" } }), [/orthanc\.minReplicas is "3"/, /type number/]],
        ["a fractional replica count", withTenant({ postgres: { replicas: 2.5 } }), [/postgres\.replicas is 2\.5/, /integer/]],
        ["one Orthanc replica", withTenant({ orthanc: { minReplicas: 1 } }), [/orthanc\.minReplicas is 1/, /at least 2/]],
        ["an autoscaler maximum below its minimum", withTenant({ orthanc: { minReplicas: 4, maxReplicas: 3 } }), [/orthanc\.maxReplicas is 3/, />= orthanc\.minReplicas \(4\)/]],
        ["no PostgreSQL node", withTenant({ postgres: { replicas: 0 } }), [/postgres\.replicas is 0/, /1/]],
        ["a volume size without a unit", withTenant({ postgres: { volumeSize: "100" } }), [/postgres\.volumeSize is "100"/, /Gi/]],
        ["an unknown Service type", { ...minimal(), ingress: { serviceType: "Ingress" } }, [/korthweb:ingress\.serviceType is "Ingress"/, /"LoadBalancer".*"NodePort".*"ClusterIP"/]],
        [
            "a non-string annotation",
            { ...minimal(), ingress: { serviceType: "LoadBalancer", annotations: { internal: true } } },
            [/ingress\.annotations\.internal is true/, /type string/],
        ],
        [
            "no Service type: whether the cluster has a load balancer is the stack's to say",
            { domain: "orthweb.example.org", tenants: minimal().tenants },
            [/korthweb:ingress\.serviceType missing/, /"LoadBalancer" \(the cluster assigns external addresses/, /"NodePort" \(kind, minikube/],
        ],
        [
            "an annotation key Kubernetes refuses",
            { ...minimal(), ingress: { serviceType: "LoadBalancer", annotations: { "internal lb": "true" } } },
            [/korthweb:ingress\.annotations has the key "internal lb"/, /annotation key/],
        ],
        [
            "node ports with a LoadBalancer Service",
            withTenant({ nodePorts: { https: 30443, dicom: 31112 } }),
            [/tenants\[0\]\.nodePorts is \{/, /unless korthweb:ingress\.serviceType is "NodePort" \(it is "LoadBalancer"\)/],
        ],
        [
            "a node port outside Kubernetes' range",
            { ...withTenant({ nodePorts: { https: 443, dicom: 31112 } }), ingress: { serviceType: "NodePort" } },
            [/tenants\[0\]\.nodePorts\.https is 443/, />= 30000/],
        ],
        [
            "two tenants on one node port",
            {
                ...minimal(),
                ingress: { serviceType: "NodePort" },
                tenants: [
                    { name: "bhs", displayName: "B", nodePorts: { https: 30443, dicom: 31112 } },
                    { name: "mhr", displayName: "M", nodePorts: { https: 30444, dicom: 31112 } },
                ],
            },
            [/tenants\[1\]\.nodePorts\.dicom is 31112/, /not used elsewhere \(tenants\[0\]\.nodePorts\.dicom has it already\)/],
        ],
        [
            "a memory request above the limit (every pod would be refused)",
            withTenant({ orthanc: { memoryRequest: "4Gi", memoryLimit: "3Gi" } }),
            [/orthanc\.memoryRequest is "4Gi"/, /<= orthanc\.memoryLimit \(3Gi\)/],
        ],
        [
            "a web host longer than a certificate's common name",
            { ...minimal(), domain: `${"a".repeat(50)}.example.org` },
            [/korthweb:tenants\[0\]\.name is "bhs"/, /common name, at most 64 characters/],
        ],
        [
            "a display name too long for the tenant CA's name",
            withTenant({ displayName: "B".repeat(62) }),
            [/displayName is "B{62}"/, /at most 61 characters/],
        ],
        [
            "an organization too long for the root CA's name",
            { ...minimal(), pki: { organization: "O".repeat(57) } },
            [/pki\.organization is "O{57}"/, /at most 56 characters/],
        ],
        ["a display name with a dollar sign", withTenant({ displayName: "Lab $HOME" }), [/displayName is "Lab \$HOME"/, /without '\$'/]],
        [
            "two modalities of a tenant with one name",
            withTenant({ modalities: [{ name: "ct", aeTitle: "CT1" }, { name: "ct", aeTitle: "CT2" }] }),
            [/tenants\[0\]\.modalities\[1\]\.name is "ct"/, /not used by another modality/],
        ],
        [
            "a modality with Orthanc's own AE title",
            withTenant({ modalities: [{ name: "ct", aeTitle: "ORTHANC" }] }),
            [/modalities\[0\]\.aeTitle is "ORTHANC"/, /not Orthanc's own \(ORTHANC\)/],
        ],
        [
            "a modality address without a port",
            withTenant({ modalities: [{ name: "ct", aeTitle: "CT1", host: "10.0.0.5" }] }),
            [/modalities\[0\]\.port missing/, /set together with host/],
        ],
        [
            "a modality's certificate request that is no request",
            withTenant({ modalities: [{ name: "ct", aeTitle: "CT1", certificateRequest: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" }] }),
            [/modalities\[0\]\.certificateRequest is /, /a PEM certificate request \(PKCS#10\) that parses/],
        ],
        [
            "a modality's certificate request for another AE title",
            withTenant({ modalities: [{ name: "ct", aeTitle: "CT1", certificateRequest: wrongcnRequest }] }),
            [/modalities\[0\]\.certificateRequest is /, /subject CN=CT1 \(the modality's aeTitle\), optionally O=Korthweb and OU=ct, each once \(it is CN=CT9\)/],
        ],
        [
            "a modality's certificate request with a weak key",
            withTenant({ modalities: [{ name: "ct", aeTitle: "CT1", certificateRequest: weakRequest }] }),
            [/certificateRequest is /, /an RSA key of 2048, 3072 or 4096 bits or an EC key on P-256 or P-384 \(it has RSA 1024\)/],
        ],
        [
            "a modality's certificate request asking for a host name",
            withTenant({ modalities: [{ name: "ct", aeTitle: "CT1", certificateRequest: sanRequest }] }),
            [/certificateRequest is /, /no requested extensions.*\(it asks for subjectAltName\)/],
        ],
        [
            "a modality's certificate request not signed by its key",
            withTenant({ modalities: [{ name: "ct", aeTitle: "CT1", certificateRequest: tamperedRequest() }] }),
            [/certificateRequest is /, /signed by its own key.*does not verify/],
        ],
        [
            "a modality host name where an address belongs",
            withTenant({ modalities: [{ name: "ct", aeTitle: "CT1", host: "ct.example.org", port: 104 }] }),
            [/modalities\[0\]\.host is "ct\.example\.org"/, /IPv4 address/],
        ],
        [
            "an Istio platform Istio has no profile for",
            { ...minimal(), kubernetes: { platform: "kind" } },
            [/korthweb:kubernetes\.platform is "kind"/, /"k3d"/],
        ],
        [
            "the external engine without its settings",
            withTenant({ database: { engine: "external" } }),
            [/tenants\[0\]\.database\.external missing/, /host, database, user, password, caCertificate, addresses/],
        ],
        [
            "external settings for another engine",
            withTenant({ database: { engine: "bitnami-ha", external: externalDatabase() } }),
            [/tenants\[0\]\.database\.engine is "bitnami-ha"/, /"external" when database\.external is given/],
        ],
        [
            "a managed database reachable at a host name only",
            withTenant({ database: { engine: "external", external: { ...externalDatabase(), addresses: ["db.example.org"] } } }),
            [/external\.addresses\[0\] is "db\.example\.org"/, /CIDR block/],
        ],
        [
            "synchronous replication on two Bitnami nodes (losing the lone standby would stop writes)",
            withTenant({ postgres: { replicas: 2 } }),
            [/tenants\[0\]\.postgres\.replicas is 2/, /at least 3 with synchronous replication/, /postgres\.replication: "asynchronous"/],
        ],
        [
            "synchronous replication on two CloudNativePG instances",
            withTenant({ database: { engine: "cloudnative-pg" }, postgres: { replicas: 2 } }),
            [/tenants\[0\]\.postgres\.replicas is 2/, /at least 3 with synchronous replication/],
        ],
        ["an unknown replication mode", withTenant({ postgres: { replication: "semi" } }), [/postgres\.replication is "semi"/, /"synchronous".*"asynchronous"/]],
        [
            "CloudNativePG without a standby",
            withTenant({ database: { engine: "cloudnative-pg" }, postgres: { replicas: 1 } }),
            [/tenants\[0\]\.postgres\.replicas is 1/, /synchronous standby/],
        ],
        [
            "backups to a plain-HTTP endpoint",
            { ...minimal(), backup: { s3: { ...backupS3(), endpoint: "http://minio.local:9000" }, tenants: bhsBackup() } },
            [/backup\.s3\.endpoint is "http:\/\/minio\.local:9000"/, /https URL/],
        ],
        [
            "backups to a cloud store with no way out to it (a NetworkPolicy names addresses only)",
            { ...minimal(), backup: { s3: cloudS3(), tenants: bhsBackup() } },
            [/korthweb:backup\.s3\.addresses missing/, /kubernetes\.cni "cilium"/, /backup\.s3\.anyAddress: true/],
        ],
        [
            "any address together with fixed addresses",
            { ...minimal(), backup: { s3: { ...cloudS3(), anyAddress: true, addresses: ["10.30.0.0/24"] }, tenants: bhsBackup() } },
            [/backup\.s3\.anyAddress is true/, /left out when backup\.s3\.addresses is given/],
        ],
        ["anyAddress false", { ...minimal(), backup: { s3: { ...cloudS3(), anyAddress: false }, tenants: bhsBackup() } }, [/backup\.s3\.anyAddress is false/, /true, or leave it out/]],
        // Backups: each tenant its own key pair, place and KMS key.
        [
            "one key pair for every tenant (stack-wide backup.s3 credentials), without printing it",
            { ...minimal(), backup: { s3: { ...backupS3(), accessKeyId: "AKIASHARED", secretAccessKey: "shared-secret" }, tenants: bhsBackup() } },
            [/backup\.s3\.accessKeyId is set \(a credential: not shown\)/, /backup\.s3\.secretAccessKey is set/, /backup\.tenants\.<tenant>\.accessKeyId/],
        ],
        ["a backed-up tenant without credentials of its own", { ...minimal(), backup: { s3: backupS3() } }, [/korthweb:backup\.tenants\.bhs missing/, /the tenant's own backup credentials/]],
        [
            "backup settings for a tenant the stack lacks or does not back up",
            { ...minimal(), backup: { s3: backupS3(), tenants: { ...bhsBackup(), gvh: { accessKeyId: "AKIAGVH", secretAccessKey: "s" } } } },
            [/korthweb:backup\.tenants\.gvh is \{/, /a tenant whose database the program backs up \(bhs\)/],
        ],
        [
            "two tenants with one access key id, without printing it",
            twoTenantBackup({ bhs: { accessKeyId: "AKIASAME", secretAccessKey: "a" }, mhr: { accessKeyId: "AKIASAME", secretAccessKey: "b" } }),
            [/backup\.tenants\.mhr\.accessKeyId is set \(a credential: not shown\)/, /backup\.tenants\.bhs\.accessKeyId is the same access key id/],
        ],
        [
            "two tenants under one prefix of one bucket",
            twoTenantBackup({ bhs: { accessKeyId: "A1", secretAccessKey: "a", prefix: "sites/bhs" }, mhr: { accessKeyId: "A2", secretAccessKey: "b", prefix: "sites/bhs" } }),
            [/backup\.tenants\.mhr\.prefix is "sites\/bhs"/, /neither contains nor lies under bhs's \(korthweb-backups\/sites\/bhs\/\)/],
        ],
        [
            "a tenant's prefix under another's",
            twoTenantBackup({ bhs: { accessKeyId: "A1", secretAccessKey: "a", prefix: "sites" }, mhr: { accessKeyId: "A2", secretAccessKey: "b", prefix: "sites/mhr" } }),
            [/backup\.tenants\.mhr\.prefix is "sites\/mhr"/, /neither contains nor lies under bhs's/],
        ],
        [
            "CloudNativePG tenants sharing a bucket",
            twoTenantBackup({ bhs: { accessKeyId: "A1", secretAccessKey: "a" }, mhr: { accessKeyId: "A2", secretAccessKey: "b" } }, "cloudnative-pg"),
            [/backup\.tenants\.mhr\.bucket missing/, /a bucket no other tenant uses \(bhs uses korthweb-backups\)/],
        ],
        [
            "two tenants with one KMS key",
            twoTenantBackup({ bhs: { accessKeyId: "A1", secretAccessKey: "a", kmsKeyId: kmsKey(1) }, mhr: { accessKeyId: "A2", secretAccessKey: "b", kmsKeyId: kmsKey(1) } }),
            [/backup\.tenants\.mhr\.kmsKeyId is "arn:aws:kms/, /backup\.tenants\.bhs\.kmsKeyId is the same key/],
        ],
        [
            "a KMS alias where the key's ARN belongs",
            { ...minimal(), backup: { s3: backupS3(), tenants: { bhs: { ...bhsBackup().bhs, kmsKeyId: "alias/korthweb-bhs" } } } },
            [/backup\.tenants\.bhs\.kmsKeyId is "alias\/korthweb-bhs"/, /a KMS key ARN/],
        ],
        [
            "a tenant with no bucket at all",
            { ...minimal(), backup: { s3: { endpoint: "https://s3.example.org", anyAddress: true }, tenants: bhsBackup() } },
            [/backup\.tenants\.bhs\.bucket missing/, /or backup\.s3\.bucket/],
        ],
        // Backups as an IAM role: instead of a key pair, on AWS, trusted through the cluster's provider, STS reachable.
        [
            "a tenant with both a key pair and a role, without printing the key",
            { ...minimal(), backup: { s3: backupS3(), irsa, tenants: { bhs: { ...bhsBackup().bhs, roleArn: roleArn("bhs") } } } },
            [/backup\.tenants\.bhs\.roleArn is "arn:aws:iam::111122223333:role\/korthweb-bhs-backup"/, /either a key pair or a role, not both: leave out backup\.tenants\.bhs\.accessKeyId and secretAccessKey, or roleArn/],
        ],
        ["a tenant with neither a key pair nor a role", { ...minimal(), backup: { s3: backupS3(), tenants: { bhs: { prefix: "bhs" } } } }, [/korthweb:backup\.tenants\.bhs is \{/, /accessKeyId and secretAccessKey \(secrets\), or roleArn/]],
        [
            "half a key pair",
            { ...minimal(), backup: { s3: backupS3(), tenants: { bhs: { accessKeyId: "AKIABHS" } } } },
            [/backup\.tenants\.bhs\.secretAccessKey missing/, /the other half of the tenant's key pair \(backup\.tenants\.bhs\.accessKeyId is set\)/],
        ],
        ...(
            [
                ["a user's ARN", "arn:aws:iam::111122223333:user/korthweb-bhs"],
                ["a role name alone", "korthweb-bhs-backup"],
                ["an account id of 11 digits", "arn:aws:iam::11112222333:role/korthweb-bhs-backup"],
                ["an STS assumed-role ARN", "arn:aws:sts::111122223333:assumed-role/korthweb-bhs-backup/session"],
                ["a role name of 65 characters", `arn:aws:iam::111122223333:role/${"r".repeat(65)}`],
            ] as const
        ).map(([what, arn]) => [`a role ARN of the wrong shape (${what})`, { ...minimal(), backup: { s3: backupS3(), irsa, tenants: { bhs: { roleArn: arn } } } }, [/backup\.tenants\.bhs\.roleArn is "/, /an IAM role ARN such as arn:aws:iam::111122223333:role\/korthweb-bhs-backup/]] as [string, unknown, RegExp[]]),
        [
            "two tenants with one role",
            { ...twoTenantBackup({}), backup: { s3: backupS3(), irsa, tenants: { bhs: { roleArn: roleArn("bhs") }, mhr: { roleArn: roleArn("bhs") } } } },
            [/backup\.tenants\.mhr\.roleArn is "arn:aws:iam::111122223333:role\/korthweb-bhs-backup"/, /a role of the tenant's own \(backup\.tenants\.bhs\.roleArn is the same role\)/],
        ],
        [
            "a role with a store that is not AWS S3 (on premises, or another cloud's S3 API)",
            { ...minimal(), backup: { s3: { endpoint: "https://storage.googleapis.com", bucket: "korthweb-backups", anyAddress: true }, irsa, tenants: { bhs: { roleArn: roleArn("bhs") } } } },
            [/backup\.tenants\.bhs\.roleArn is "arn:aws/, /a key pair instead: an IAM role is honoured by AWS S3 only \(\*\.amazonaws\.com\), and backup\.s3\.endpoint is https:\/\/storage\.googleapis\.com/],
        ],
        [
            "a role without the cluster's OIDC provider",
            { ...minimal(), backup: { s3: backupS3(), tenants: { bhs: { roleArn: roleArn("bhs") } } } },
            [/korthweb:backup\.irsa\.oidcProviderArn missing/, /the cluster's IAM OIDC provider, which backup\.tenants\.bhs\.roleArn trusts/],
        ],
        [
            "a role in another account than the OIDC provider",
            { ...minimal(), backup: { s3: backupS3(), irsa, tenants: { bhs: { roleArn: "arn:aws:iam::444455556666:role/korthweb-bhs-backup" } } } },
            [/backup\.tenants\.bhs\.roleArn is "arn:aws:iam::444455556666/, /a role in the OIDC provider's account \(aws:111122223333\)/],
        ],
        [
            "an OIDC provider given by its issuer URL",
            { ...minimal(), backup: { s3: backupS3(), irsa: { oidcProviderArn: "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE" }, tenants: { bhs: { roleArn: roleArn("bhs") } } } },
            [/backup\.irsa\.oidcProviderArn is "https:/, /an IAM OIDC provider ARN such as arn:aws:iam::111122223333:oidc-provider\//],
        ],
        [
            "a role where only fixed addresses lead out (STS's addresses change)",
            { ...minimal(), backup: { s3: { ...cloudS3(), addresses: ["52.218.0.0/17"] }, irsa, tenants: { bhs: { roleArn: roleArn("bhs") } } } },
            [/backup\.tenants\.bhs\.roleArn is "arn:aws/, /STS reached by name \(kubernetes\.cni "cilium"\) or backup\.s3\.anyAddress/],
        ],
        ["a prefix with a trailing slash", { ...minimal(), backup: { s3: backupS3(), tenants: { bhs: { ...bhsBackup().bhs, prefix: "bhs/" } } } }, [/backup\.tenants\.bhs\.prefix is "bhs\/"/, /key prefix/]],
        ["a CNI korthweb renders no FQDN policy for", { ...minimal(), kubernetes: { cni: "calico" } }, [/kubernetes\.cni is "calico"/, /Calico Enterprise/]],
        [
            "DNS pods by namespace without their labels",
            { ...minimal(), kubernetes: { dns: { namespace: "kube-system" } } },
            [/kubernetes\.dns\.podLabels missing/, /set together with namespace/],
        ],
        ["DNS with neither pods nor addresses", { ...minimal(), kubernetes: { dns: { ports: [53] } } }, [/kubernetes\.dns is \{/, /NodeLocal DNSCache/]],
        ["a DNS port out of range", { ...minimal(), kubernetes: { dns: { addresses: ["169.254.20.10/32"], ports: [0] } } }, [/kubernetes\.dns\.ports\[0\] is 0/]],
        ["a DNS address that is not a CIDR block", { ...minimal(), kubernetes: { dns: { addresses: ["169.254.20.10"] } } }, [/dns\.addresses\[0\] is "169\.254\.20\.10"/, /CIDR/]],
        ["a storage class name Kubernetes refuses", withTenant({ postgres: { storageClass: "Premium_SSD" } }), [/postgres\.storageClass is "Premium_SSD"/, /DNS subdomain/]],
        ["a boolean given as text", { ...minimal(), observability: { enabled: "yes" } }, [/observability\.enabled is "yes"/, /type boolean/]],
        ["preview access switched with text", { ...minimal(), preview: { enabled: "no" } }, [/korthweb:preview\.enabled is "no"/, /type boolean/]],
        ["preview access given as a bare boolean", { ...minimal(), preview: false }, [/korthweb:preview is false/, /type object/]],
        ["a preview setting that does not exist", { ...minimal(), preview: { namespace: "ci" } }, [/korthweb:preview\.namespace: unknown key/, /allowed keys here: enabled/]],
        ["a root CA valid for a day", { ...minimal(), pki: { rootCaValidityHours: 24 } }, [/pki\.rootCaValidityHours is 24/, />= 720/]],
        [
            "a modality certificate overlap longer than half its validity",
            { ...minimal(), pki: { modalityCertificateValidityHours: 24 * 60, modalityCertificateOverlapHours: 24 * 31 } },
            [/pki\.modalityCertificateOverlapHours is 744/, /at most half of pki\.modalityCertificateValidityHours \(720\)/],
        ],
        [
            "a server certificate that could outlive its tenant CA",
            { ...minimal(), pki: { tenantCaValidityHours: 24 * 100, serverCertificateDurationHours: 24 * 60, modalityCertificateValidityHours: 24 * 40 } },
            [/pki\.serverCertificateDurationHours is 1440/, /at most half of pki\.tenantCaValidityHours \(1200\)/],
        ],
        [
            "modality certificates as long-lived as their tenant CA",
            { ...minimal(), pki: { tenantCaValidityHours: 24 * 730, modalityCertificateValidityHours: 24 * 730 } },
            [/pki\.modalityCertificateValidityHours is 17520/, /at most half of pki\.tenantCaValidityHours \(8760\)/],
        ],
        [
            "a tenant CA that could outlive the root",
            { ...minimal(), pki: { rootCaValidityHours: 24 * 3650, tenantCaValidityHours: 24 * 3000 } },
            [/pki\.tenantCaValidityHours is 72000/, /at most half of pki\.rootCaValidityHours \(43800\)/],
        ],
        ["an AE title with lowercase letters", withTenant({ orthanc: { aeTitle: "orthanc" } }), [/orthanc\.aeTitle is "orthanc"/, /A-Z/]],
        ["an empty display name", withTenant({ displayName: " " }), [/displayName is " "/, /non-empty/]],
        // Alerting: what each receiver must be.
        ["a webhook over plain HTTP", withReceivers([{ name: "ops", webhook: { url: "http://alerts.example.org/x" } }]), [/receivers\[0\]\.webhook\.url is "http:\/\/alerts/, /https URL/]],
        ["a Slack URL that is not https, without printing it", withReceivers([{ name: "ops", slack: { webhookUrl: "http://hooks.slack.example/T0/secret-part" } }]), [/receivers\[0\]\.slack\.webhookUrl is set \(a credential: not shown\)/, /https URL/]],
        ["an e-mail address without a domain", withReceivers([{ name: "ops", email: { to: ["oncall"] } }], smtp), [/email\.to\[0\] is "oncall"/, /e-mail address/]],
        ["an e-mail receiver without an SMTP server", withReceivers([{ name: "ops", email: { to: ["oncall@example.org"] } }]), [/observability\.alerting\.smtp missing/, /SMTP server/]],
        ["an SMTP sender that is no address", withReceivers([{ name: "ops", email: { to: ["a@example.org"] } }], { ...smtp, from: "alerts" }), [/smtp\.from is "alerts"/, /e-mail address/]],
        ["an SMTP server without a port", withReceivers([{ name: "ops", email: { to: ["a@example.org"] } }], { ...smtp, smarthost: "smtp.example.org" }), [/smtp\.smarthost is "smtp\.example\.org"/, /host:port/]],
        ["an SMTP password without a user", withReceivers([{ name: "ops", email: { to: ["a@example.org"] } }], { smarthost: "smtp.example.org:587", from: "a@example.org", password: "p" }), [/smtp\.username missing/, /user the SMTP password belongs to/]],
        ["a receiver with no channel", withReceivers([{ name: "ops" }]), [/receivers\[0\] is \{"name":"ops"\}/, /at least one of email, webhook, slack, pagerduty, opsgenie/]],
        ["two receivers of one name", withReceivers([{ name: "ops", pagerduty: { routingKey: "k" } }, { name: "ops", pagerduty: { routingKey: "k" } }]), [/receivers\[1\]\.name is "ops"/, /no other receiver/]],
        ["a receiver for a tenant the stack lacks", withReceivers([{ name: "ops", tenants: ["mhr"], pagerduty: { routingKey: "k" } }]), [/receivers\[0\]\.tenants\[0\] is "mhr"/, /a tenant of this stack \(bhs\)/]],
        ["a severity alerts do not have", withReceivers([{ name: "ops", severities: ["info"], pagerduty: { routingKey: "k" } }]), [/severities\[0\] is "info"/, /"critical", "warning"/]],
        ["an Opsgenie API URL over plain HTTP", withReceivers([{ name: "ops", opsgenie: { apiKey: "k", apiUrl: "http://api.eu.opsgenie.com/" } }]), [/opsgenie\.apiUrl is "http:/, /https URL/]],
    ];

    for (const [what, raw, expected] of invalid) {
        it(`rejects ${what}`, () => {
            const message = problemsOf(raw);
            for (const pattern of expected) {
                assert.match(message, pattern);
            }
        });
    }
});

describe("credentials are stored encrypted, wherever they sit", () => {
    // A stack file as Pulumi writes it after `pulumi config set [--secret] --path ...`, and what the program then gets
    // (tests/upstream/pulumiConfig.ts): values decrypted, and only top-level keys marked secret.
    const cipher = (plain: string) => `v1:${Buffer.from(plain).toString("base64")}`;
    const decrypt = (ciphertext: string) => Buffer.from(ciphertext.slice(3), "base64").toString();
    const secure = (plain: string) => `{ secure: "${cipher(plain)}" }`;
    const stackFile = (rest: string) =>
        parseYaml(`config:
  korthweb:domain: orthweb.example.org
  korthweb:ingress: { serviceType: LoadBalancer }
${rest}`).config as Record<string, unknown>;
    const tenant = (name: string, password: string) => `    - name: ${name}
      displayName: ${name}
      database:
        engine: external
        external:
          host: ${name}.postgres.example.org
          database: orthanc
          user: orthanc
          password: ${password}
          caCertificate: "-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n"
          addresses: [10.0.5.0/28]
`;
    const oneTenant = `  korthweb:tenants:\n    - { name: bhs, displayName: B }\n`;
    const noAlerting = `  korthweb:observability: { alerting: { enabled: false } }\n`;
    const s3 = (accessKeyId: string, secretAccessKey: string) => `  korthweb:backup:
    s3:
      endpoint: https://s3.example.org
      bucket: korthweb-backups
      anyAddress: true
    tenants:
      bhs:
        accessKeyId: ${accessKeyId}
        secretAccessKey: ${secretAccessKey}
`;
    const receivers = (routingKey: string, bearerToken: string, smtpPassword: string) => `  korthweb:observability:
    alerting:
      smtp: { smarthost: "smtp.example.org:587", from: a@example.org, username: alerts, password: ${smtpPassword} }
      receivers:
        - { name: pager, pagerduty: { routingKey: ${routingKey} } }
        - { name: ops, webhook: { url: "https://a.example.org/k", bearerToken: ${bearerToken} } }
`;
    const kubeconfig = "apiVersion: v1\nkind: Config\nusers: [{ name: u, user: { token: t0ken } }]\n";
    const kubernetes = (context: string, config: string) => `  korthweb:kubernetes: { context: ${context}, kubeconfig: ${config} }\n`;

    // Each row: the stack file's config block, and the settings that must be refused (none: accepted).
    const rows: [string, string, string[]][] = [
        ["an S3 secret key in clear beside a secret key id", oneTenant + noAlerting + s3(secure("AKIA"), "clear-secret-key"), ["backup.tenants.bhs.secretAccessKey"]],
        ["an S3 key id in clear beside a secret secret key", oneTenant + noAlerting + s3("AKIA", secure("s3cr3t")), ["backup.tenants.bhs.accessKeyId"]],
        ["both S3 keys encrypted", oneTenant + noAlerting + s3(secure("AKIA"), secure("s3cr3t")), []],
        ["both S3 keys in clear", oneTenant + noAlerting + s3("AKIA", "s3cr3t"), ["backup.tenants.bhs.accessKeyId", "backup.tenants.bhs.secretAccessKey"]],
        [
            "a second tenant's database password in clear beside the first's encrypted",
            `  korthweb:tenants:\n${tenant("bhs", secure("a-long-generated-password"))}${tenant("mhr", "another-long-password-in-clear")}` + noAlerting,
            ["tenants[1].database.external.password"],
        ],
        ["every tenant's database password encrypted", `  korthweb:tenants:\n${tenant("bhs", secure("a-long-generated-password"))}${tenant("mhr", secure("another-long-password"))}` + noAlerting, []],
        ["a webhook token in clear beside an encrypted routing key", oneTenant + receivers(secure("rk"), "clear-token", secure("smtp")), ["observability.alerting.receivers[1].webhook.bearerToken"]],
        ["an SMTP password in clear beside encrypted receiver keys", oneTenant + receivers(secure("rk"), secure("token"), "clear-smtp"), ["observability.alerting.smtp.password"]],
        ["every alerting credential encrypted", oneTenant + receivers(secure("rk"), secure("token"), secure("smtp")), []],
        ["kubeconfig contents in clear beside an encrypted context", oneTenant + noAlerting + kubernetes(secure("ctx"), JSON.stringify(kubeconfig)), ["kubernetes.kubeconfig"]],
        ["kubeconfig contents encrypted", oneTenant + noAlerting + kubernetes("ctx", secure(kubeconfig)), []],
        ["a kubeconfig path in clear", oneTenant + noAlerting + kubernetes("ctx", "kube/dev.yaml"), []],
        // `pulumi config set --secret backup '<json>'` (no --path): the whole key is one encrypted string.
        [
            "a whole top-level key encrypted as one value",
            oneTenant + noAlerting + `  korthweb:backup: ${secure(JSON.stringify({ s3: { endpoint: "https://s3.example.org", bucket: "korthweb-backups", anyAddress: true }, tenants: { bhs: { accessKeyId: "AKIA", secretAccessKey: "s" } } }))}\n`,
            [],
        ],
    ];
    for (const [what, block, refused] of rows) {
        it(`${refused.length ? "refuses" : "accepts"} ${what}`, () => {
            const file = stackFile(block);
            const { allConfig, secretKeys } = deliveredConfig(file, decrypt);
            let message = "";
            try {
                stackConfigFromPulumi(allConfig, "korthweb", (key) => secretKeys.includes(key), file);
            } catch (error) {
                assert.ok(error instanceof ConfigError, String(error));
                message = error.message;
            }
            const named = [...message.matchAll(/korthweb:(\S+) is stored in plain text/g)].map((match) => match[1]);
            assert.deepEqual(named, refused, message);
            assert.doesNotMatch(message, /clear-|t0ken|in-clear/, "no credential is printed");
        });
    }

    it("needs the top-level key secret for a credential the stack file does not hold (an ESC environment's)", () => {
        const delivered = deliveredConfig(stackFile(oneTenant + noAlerting + s3("AKIA", "s3cr3t")), decrypt);
        const withoutCredentials = stackFile(oneTenant + noAlerting + `  korthweb:backup: { s3: { endpoint: "https://s3.example.org", bucket: b } }\n`);
        const refused = (secret: string[]) => {
            try {
                stackConfigFromPulumi(delivered.allConfig, "korthweb", (key) => secret.includes(key), withoutCredentials);
                return "";
            } catch (error) {
                return (error as Error).message;
            }
        };
        assert.match(refused([]), /korthweb:backup\.tenants\.bhs\.secretAccessKey is stored in plain text/);
        assert.equal(refused(["korthweb:backup"]), "");
    });

    it("reads the stack file the CLI reads: the one scripts/run names, else Pulumi.<stack>.yaml in the project", () => {
        const dir = mkdtempSync(path.join(tmpdir(), "korthweb-stackfile-"));
        try {
            writeFileSync(path.join(dir, "Pulumi.dev.yaml"), "config:\n  korthweb:domain: a.example.org\n");
            writeFileSync(path.join(dir, "private.yaml"), "encryptionsalt: v1:x\nconfig:\n  korthweb:domain: b.example.org\n");
            assert.deepEqual(readStackFile("dev", {}, dir), { "korthweb:domain": "a.example.org" });
            assert.deepEqual(readStackFile("dev", { KORTHWEB_STACK_CONFIG_FILE: path.join(dir, "private.yaml") }, dir), { "korthweb:domain": "b.example.org" });
            assert.equal(readStackFile("tst", {}, dir), undefined);
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });

    it("marks every setting whose name says credential, so that no new one is forgotten", () => {
        const settings = schemaSettings(stackConfigSchema);
        const looksLikeCredential = /password|secret|token|(access|api|routing|private)Key|webhookUrl|kubeconfig|credential/i;
        const unmarked = settings.filter((setting) => looksLikeCredential.test(setting.path.split(".").at(-1)!) && !setting.credential).map((s) => s.path);
        assert.deepEqual(unmarked, []);
        // The marks this project has today, at least (others may be added).
        const marked = settings.filter((setting) => setting.credential).map((setting) => setting.path);
        for (const path of ["tenants[].database.external.password", "backup.s3.secretAccessKey", "backup.tenants.*.secretAccessKey", "observability.alerting.receivers[].opsgenie.apiKey", "kubernetes.kubeconfig"]) {
            assert.ok(marked.includes(path), path);
        }
    });

    it("finds a marked credential however deep, in objects, arrays, records and behind defaults", () => {
        const schema = z.strictObject({
            plain: z.string(),
            groups: z.array(z.strictObject({ items: z.record(z.string(), z.strictObject({ key: credential(z.string()).optional() })).default({}) })),
        });
        const value = { plain: "p", groups: [{ items: {} }, { items: { a: { key: "k1" }, b: {} } }] };
        assert.deepEqual(credentialSettingPaths(schema, value), [["groups", 1, "items", "a", "key"]]);
        // A kind of schema the walk does not know could hide one: it says so instead of passing.
        assert.throws(() => credentialSettingPaths(z.strictObject({ either: z.union([z.string(), z.strictObject({ key: credential(z.string()) })]) }), { either: { key: "k" } }), /cannot walk a ZodUnion/);
    });
});

describe("storage settings (tenants[].storage)", () => {
    const withStorage = (storage: Record<string, unknown>, kubernetes: Record<string, unknown> = {}) => ({ ...withTenant({ storage }), kubernetes });
    const s3 = (extra: Record<string, unknown> = {}) => ({ bucket: "images-bhs", region: "eu-west-1", roleArn: "arn:aws:iam::111122223333:role/orthanc-bhs", ...extra });
    const onPremises = (extra: Record<string, unknown> = {}) => ({ bucket: "orthanc", region: "us-east-1", endpoint: "https://s3.example.org", addressing: "path", accessKeyId: "AKIA", secretAccessKey: "s3cret", ...extra });

    it("stores in PostgreSQL when the stack says nothing: what every tenant deployed before the setting does", () => {
        assert.equal(parseStackConfig(minimal()).tenants[0].storage.type, "postgresql");
    });

    it("accepts each choice with its settings and a way out to its store", () => {
        const accepted = [
            { type: "s3", s3: s3(), anyAddress: true },
            { type: "s3", s3: s3({ kmsKeyId: kmsKey(1) }), addresses: ["10.30.0.0/24"], clientSideEncryption: true, rootPath: "archive/bhs", structure: "legacy", loaderThreads: 30 },
            { type: "s3", s3: onPremises({ endpoint: "https://10.30.0.5:9000" }) },
            { type: "azure-blob", azureBlob: { account: "bhsimages", container: "orthanc", connectionString: "c" }, addresses: ["10.40.0.5/32"] },
            { type: "google-cloud-storage", googleCloudStorage: { bucket: "bhs-images", serviceAccountKey: "{}" }, anyAddress: true },
            { type: "filesystem", filesystem: { storageClass: "efs-sc", size: "500Gi" } },
            { type: "postgresql" },
        ];
        for (const storage of accepted) assert.doesNotThrow(() => parseStackConfig(withStorage(storage)), JSON.stringify(storage));
        assert.doesNotThrow(() => parseStackConfig(withStorage({ type: "s3", s3: s3() }, { cni: "cilium" })), "by name through Cilium");
    });

    const refused: [string, Record<string, unknown>, RegExp[]][] = [
        ["a type korthweb does not render", { type: "nfs" }, [/storage\.type is "nfs"/, /"postgresql", "s3", "azure-blob", "google-cloud-storage", "filesystem"/]],
        ["a choice without its settings", { type: "filesystem" }, [/storage\.filesystem missing/, /storageClass \(ReadWriteMany\) and size/]],
        ["another choice's settings", { type: "filesystem", filesystem: { storageClass: "efs-sc", size: "1Ti" }, s3: s3() }, [/storage\.s3 is/, /left out: storage\.type is "filesystem"/]],
        ["AWS S3 with a static key where IRSA is offered", { type: "s3", s3: s3({ roleArn: undefined, accessKeyId: "AKIA", secretAccessKey: "x" }), anyAddress: true }, [/storage\.s3\.roleArn missing/, /EKS IRSA instead of a static key pair/]],
        ["AWS S3 without a role", { type: "s3", s3: s3({ roleArn: undefined }), anyAddress: true }, [/storage\.s3\.roleArn missing/]],
        ["a role and a key pair", { type: "s3", s3: onPremises({ roleArn: "arn:aws:iam::111122223333:role/x" }), anyAddress: true }, [/storage\.s3\.accessKeyId is set \(a credential: not shown\)/, /left out when s3\.roleArn is given/]],
        ["half a key pair", { type: "s3", s3: onPremises({ secretAccessKey: undefined }), anyAddress: true }, [/storage\.s3\.secretAccessKey missing/, /set together with accessKeyId/]],
        ["an S3-compatible store without any credential", { type: "s3", s3: onPremises({ accessKeyId: undefined, secretAccessKey: undefined }), anyAddress: true }, [/storage\.s3\.accessKeyId missing/, /a key pair/]],
        ["virtual-hosted buckets under an endpoint given by address", { type: "s3", s3: onPremises({ endpoint: "https://10.30.0.5:9000", addressing: "virtual-host" }) }, [/storage\.s3\.addressing is "virtual-host"/, /"path" for an endpoint given by address/]],
        ["an endpoint over plain HTTP", { type: "s3", s3: onPremises({ endpoint: "http://s3.example.org" }), anyAddress: true }, [/storage\.s3\.endpoint is "http:\/\/s3\.example\.org"/, /https URL/]],
        ["a KMS alias", { type: "s3", s3: s3({ kmsKeyId: "alias/orthanc" }), anyAddress: true }, [/kmsKeyId is "alias\/orthanc"/, /KMS key ARN/]],
        ["a cloud store with no way out", { type: "azure-blob", azureBlob: { account: "bhsimages", container: "orthanc", connectionString: "c" } }, [/storage\.addresses missing/, /cilium/, /anyAddress/]],
        ["addresses and any address", { type: "s3", s3: s3(), addresses: ["10.30.0.0/24"], anyAddress: true }, [/storage\.anyAddress is true/, /left out when storage\.addresses is given/]],
        ["a root path with a leading '/' (the plugin refuses it)", { type: "s3", s3: s3(), anyAddress: true, rootPath: "/bhs" }, [/storage\.rootPath is "\/bhs"/, /no leading or trailing '\/'/]],
        ["a key layout the plugin does not know", { type: "s3", s3: s3(), anyAddress: true, structure: "nested" }, [/storage\.structure is "nested"/, /"flat", "legacy"/]],
        ["client-side encryption without an object store", { type: "filesystem", filesystem: { storageClass: "efs-sc", size: "1Ti" }, clientSideEncryption: true }, [/storage\.clientSideEncryption is true/, /only object stores/]],
        ["a storage class that is no DNS subdomain", { type: "filesystem", filesystem: { storageClass: "EFS_SC", size: "1Ti" } }, [/storageClass is "EFS_SC"/, /storage class name/]],
        ["a volume size with decimals", { type: "filesystem", filesystem: { storageClass: "efs-sc", size: "1.5Ti" } }, [/size is "1\.5Ti"/, /Mi, Gi or Ti, no decimals/]],
        ["an Azure account name with capitals", { type: "azure-blob", azureBlob: { account: "BhsImages", container: "orthanc", connectionString: "c" }, anyAddress: true }, [/azureBlob\.account is "BhsImages"/, /3-24 of a-z, 0-9/]],
        ["a malformed acknowledgement", { type: "postgresql", replacesIdentity: "yes" }, [/storage\.replacesIdentity is "yes"/, /16 hex digits/]],
        [
            "Azure Workload Identity, which the image's Azure plugin cannot use",
            { type: "azure-blob", azureBlob: { account: "bhsimages", container: "orthanc", connectionString: "c", workloadIdentityClientId: "00000000-0000-0000-0000-000000000001" }, anyAddress: true },
            [/storage\.azureBlob\.workloadIdentityClientId is "00000000-0000-0000-0000-000000000001"/, /connection string only and cannot use Azure Workload Identity/],
        ],
        [
            "GKE Workload Identity, which the image's Google plugin cannot use",
            { type: "google-cloud-storage", googleCloudStorage: { bucket: "bhs-images", serviceAccountKey: "{}", workloadIdentityServiceAccount: "orthanc@p.iam.gserviceaccount.com" }, anyAddress: true },
            [/storage\.googleCloudStorage\.workloadIdentityServiceAccount is "orthanc@p\.iam\.gserviceaccount\.com"/, /key file only and cannot use GKE Workload Identity/],
        ],
    ];
    for (const [what, storage, expected] of refused) {
        it(`refuses ${what}`, () => {
            const message = problemsOf(withStorage(storage));
            for (const pattern of expected) assert.match(message, pattern);
            assert.doesNotMatch(message, /s3cret|AKIA"/, "no credential printed");
        });
    }

    describe("the stack's own S3 server (korthweb:objectStore, storage.s3.inCluster)", () => {
        const inCluster = (extra: Record<string, unknown> = {}, s3Extra: Record<string, unknown> = {}) => ({ type: "s3", s3: { inCluster: true, bucket: "orthanc-bhs", region: "us-east-1", ...s3Extra }, ...extra });
        const withStore = (storage: Record<string, unknown>, objectStore: Record<string, unknown> | null = {}) => ({ ...withStorage(storage), ...(objectStore ? { objectStore } : {}) });

        it("accepts a tenant in the server with nothing but its bucket and the server's region: no endpoint, key or way out", () => {
            const parsed = parseStackConfig(withStore(inCluster()));
            assert.deepEqual(parsed.objectStore, { size: "5Gi", region: "us-east-1" });
            assert.doesNotThrow(() => parseStackConfig(withStore(inCluster({ clientSideEncryption: true }, { region: "eu-west-1" }), { region: "eu-west-1", size: "20Gi", storageClass: "standard" })));
        });

        const refusedInCluster: [string, Record<string, unknown>, Record<string, unknown> | null, RegExp[]][] = [
            ["without the server", inCluster(), null, [/storage\.s3\.inCluster is true/, /korthweb:objectStore set/]],
            ["in another region than the server's", inCluster({}, { region: "eu-west-1" }), {}, [/storage\.s3\.region is "eu-west-1"/, /"us-east-1", the region korthweb:objectStore answers as/]],
            ["with an endpoint of its own", inCluster({}, { endpoint: "https://s3.example.org" }), {}, [/storage\.s3\.endpoint is/, /left out with s3\.inCluster/]],
            ["with a key pair of its own", inCluster({}, { accessKeyId: "AKIA", secretAccessKey: "s3cret" }), {}, [/storage\.s3\.accessKeyId is set \(a credential: not shown\)/, /generates the key pair/]],
            ["with a role", inCluster({}, { roleArn: "arn:aws:iam::111122223333:role/x" }), {}, [/storage\.s3\.roleArn is/, /left out with s3\.inCluster/]],
            ["with addresses", inCluster({ addresses: ["10.30.0.0/24"] }), {}, [/storage\.addresses is/, /inside the cluster/]],
            ["with a server volume size with decimals", inCluster(), { size: "1.5Gi" }, [/objectStore\.size is "1\.5Gi"/, /no decimals/]],
            ["with inCluster other than true", inCluster({}, { inCluster: false }), {}, [/storage\.s3\.inCluster is false/, /true, or leave it out/]],
        ];
        for (const [what, storage, objectStore, expected] of refusedInCluster) {
            it(`refuses a tenant in the server ${what}`, () => {
                const message = problemsOf(withStore(storage, objectStore));
                for (const pattern of expected) assert.match(message, pattern);
                assert.doesNotMatch(message, /s3cret|AKIA"/, "no credential printed");
            });
        }
    });

    it("refuses the store's credentials in plain text, naming the command that stores them as secrets", () => {
        const message = oneTenantRefusal({ storage: { type: "azure-blob", azureBlob: { account: "bhsimages", container: "orthanc", connectionString: "c" }, anyAddress: true } });
        assert.match(message(false), /korthweb:tenants\[0\]\.storage\.azureBlob\.connectionString is stored in plain text; allowed: a secret/);
        assert.equal(message(true), "");
    });
});

describe("identity settings (tenants[].identity)", () => {
    const oidc = (extra: Record<string, unknown> = {}) => ({ issuer: "https://login.example.org/realms/bhs", clientId: "orthanc", clientSecret: "s3cret-client", anyAddress: true, ...extra });
    const withIdentity = (identity: Record<string, unknown>, kubernetes: Record<string, unknown> = {}) => ({ ...withTenant({ identity }), kubernetes });
    const twoTenants = (bhs: Record<string, unknown>, mhr: Record<string, unknown>) => ({
        ...minimal(),
        tenants: [
            { name: "bhs", displayName: "B", identity: { oidc: oidc(bhs) } },
            { name: "mhr", displayName: "M", identity: { oidc: oidc(mhr) } },
        ],
    });

    it("fills in the contract's default roles, claims, scopes and limits", () => {
        const identity = parseStackConfig(withIdentity({ oidc: oidc() })).tenants[0].identity!;
        assert.equal(identity.oidc!.groupsClaim, "groups");
        assert.equal(identity.oidc!.nameClaim, "name");
        assert.deepEqual(identity.oidc!.scopes, ["openid", "profile", "email"]);
        assert.deepEqual(identityRoles(identity), defaultRoles);
        assert.deepEqual([identity.sessionTtlSeconds, identity.shareLinkMaxTtlSeconds, identity.audit.retentionDays], [8 * 3600, 7 * 86400, 6 * 365]);
    });

    it("accepts roles of the site's own, API clients under them, an explicit opt-out, and a provider reached by name through Cilium", () => {
        const roles = { reader: { groups: ["radiology"], permissions: ["search", "view"] } };
        const accepted: [Record<string, unknown>, Record<string, unknown>?][] = [
            [{ oidc: oidc(), roles, apiClients: [{ clientId: "ris", role: "reader" }] }],
            [{ oidc: oidc({ anyAddress: undefined, addresses: ["10.60.0.0/28"] }), apiClients: [{ clientId: "ris", role: "technologist" }] }],
            [{ oidc: oidc({ anyAddress: undefined }) }, { cni: "cilium" }],
            [{ disabled: true }],
            [{ keycloak: {} }, { apiServerAddresses: ["10.0.0.1/32"] }],
            [{ keycloak: { administrator: "pacs.admin" }, apiClients: [{ clientId: "ris", role: "clinician" }] }, { apiServerAddresses: ["10.0.0.1/32"] }],
        ];
        for (const [identity, kubernetes] of accepted) assert.doesNotThrow(() => parseStackConfig(withIdentity(identity, kubernetes)), JSON.stringify(identity));
        assert.doesNotThrow(() => parseStackConfig(twoTenants({}, { clientId: "orthanc-mhr" })), "one issuer, a client per tenant");
    });

    it("refuses a tenant named master on the in-cluster Keycloak (its administration realm)", () => {
        const config = { ...withIdentity({ keycloak: {} }, { apiServerAddresses: ["10.0.0.1/32"] }) } as any;
        config.tenants[0].name = "master";
        assert.match(problemsOf(config), /tenants\[0\]\.name is "master"; allowed: a name other than "master" \(Keycloak's administration realm\)/);
        config.tenants[0].identity = { oidc: oidc() };
        assert.doesNotThrow(() => parseStackConfig(config), "a tenant named master with a provider of its own");
    });

    it("asks a NodePort stack's tenant that signs users in for its fixed https node port, which every redirect names", () => {
        const onNodePorts = (nodePorts?: Record<string, number>) => ({ ...withIdentity({ oidc: oidc() }), ingress: { serviceType: "NodePort" }, tenants: [{ ...(withIdentity({ oidc: oidc() }) as any).tenants[0], ...(nodePorts ? { nodePorts } : {}) }] });
        assert.match(problemsOf(onNodePorts()), /tenants\[0\]\.nodePorts\.https missing; allowed: a fixed node port .*redirect URI/);
        assert.doesNotThrow(() => parseStackConfig(onNodePorts({ https: 30443, dicom: 31112 })));
    });

    const refused: [string, Record<string, unknown>, RegExp[]][] = [
        ["an issuer that is not https", { oidc: oidc({ issuer: "http://login.example.org/realms/bhs" }) }, [/identity\.oidc\.issuer is "http:\/\/login\.example\.org\/realms\/bhs"/, /an https URL/]],
        [
            "a role mapped to an unknown permission",
            { oidc: oidc(), roles: { reader: { groups: ["radiology"], permissions: ["view", "read-everything"] } } },
            [/identity\.roles\.reader\.permissions\[1\] is "read-everything"/, /one of "search", "view", "download", "share", "upload", "edit", "delete-own", "delete", "audit", "admin"/],
        ],
        ["a role no group grants", { oidc: oidc(), roles: { reader: { groups: [], permissions: ["view"] } } }, [/identity\.roles\.reader\.groups/, /at least one group of the identity provider/]],
        ["an API client under a role the tenant lacks", { oidc: oidc(), apiClients: [{ clientId: "ris", role: "radiologist" }] }, [/identity\.apiClients\[0\]\.role/, /a role of the tenant \(administrator, clinician, technologist, auditor\)/]],
        ["two API clients with one id", { oidc: oidc(), apiClients: [{ clientId: "ris", role: "auditor" }, { clientId: "ris", role: "clinician" }] }, [/identity\.apiClients\[1\]\.clientId/, /no other API client/]],
        ["no provider at all", { roles: { reader: { groups: ["g"], permissions: ["view"] } } }, [/tenants\[0\]\.identity/, /exactly one of oidc .*keycloak: \{\} .*disabled: true/]],
        ["a provider and the opt-out", { oidc: oidc(), disabled: true }, [/identity\.disabled/, /left out: exactly one of oidc, keycloak, disabled \(oidc and disabled are set\)/]],
        ["roles with the opt-out", { disabled: true, roles: { reader: { groups: ["g"], permissions: ["view"] } } }, [/identity\.roles/, /left out: identity\.disabled is true/]],
        ["the in-cluster Keycloak without the API server's addresses (its database's pods talk to it)", { keycloak: {} }, [/korthweb:kubernetes\.apiServerAddresses missing/, /signs in through the in-cluster Keycloak/]],
        [
            "the in-cluster Keycloak with roles that give nobody admin (its first administrator would have none)",
            { keycloak: {}, roles: { reader: { groups: ["g"], permissions: ["view"] } } },
            [/identity\.roles/, /a role with the "admin" permission/],
        ],
        ["a Keycloak administrator's name Keycloak would not take", { keycloak: { administrator: "Admin Smith" } }, [/identity\.keycloak\.administrator is "Admin Smith"/, /a user name/]],
        ["a provider with no way out", { oidc: oidc({ anyAddress: undefined }) }, [/identity\.oidc\.addresses missing/, /cilium/, /anyAddress/]],
        ["a session longer than a day", { oidc: oidc(), sessionTtlSeconds: 7 * 86400 }, [/identity\.sessionTtlSeconds is 604800/]],
    ];
    for (const [what, identity, expected] of refused) {
        it(`refuses ${what}`, () => {
            const message = problemsOf(withIdentity(identity));
            for (const pattern of expected) assert.match(message, pattern);
            assert.doesNotMatch(message, /s3cret-client/, "the client secret is never printed");
        });
    }

    // Where the audit trail goes: the program renders the audit database in bitnami-ha and cloudnative-pg; external
    // must say identity.audit.stdoutOnly (components/config/schema.ts, auditProblems).
    const onEngine = (engine: string, audit?: Record<string, unknown>) => ({
        ...withTenant({
            identity: { oidc: oidc(), ...(audit ? { audit } : {}) },
            database: { engine, ...(engine === "external" ? { external: externalDatabase() } : {}) },
            ...(engine === "bitnami-ha" ? {} : { postgres: { replicas: 2, replication: "asynchronous" } }),
        }),
        ...(engine === "cloudnative-pg" ? { kubernetes: { apiServerAddresses: ["10.0.0.1/32"] } } : {}),
    });
    const auditCases: [string, string, Record<string, unknown> | undefined, RegExp[] | "accepted"][] = [
        ["bitnami-ha, its own audit database", "bitnami-ha", undefined, "accepted"],
        ["bitnami-ha, stdout only by choice", "bitnami-ha", { stdoutOnly: true }, "accepted"],
        ["external without a choice", "external", undefined, [/tenants\[0\]\.identity\.audit\.stdoutOnly/, /audit database only in the tenant's own PostgreSQL \(database\.engine "bitnami-ha" or "cloudnative-pg"\)/, /not with database\.engine "external" \(or name one your DBA created: database\.external\.audit\)/]],
        ["cloudnative-pg, its own audit database", "cloudnative-pg", undefined, "accepted"],
        ["cloudnative-pg, its own audit database kept a year", "cloudnative-pg", { retentionDays: 365 }, "accepted"],
        ["external, stdout only", "external", { stdoutOnly: true }, "accepted"],
        ["cloudnative-pg, stdout only", "cloudnative-pg", { stdoutOnly: true }, "accepted"],
        ["stdoutOnly false", "external", { stdoutOnly: false }, [/identity\.audit\.stdoutOnly/, /true, or leave it out/]],
    ];
    // The external engine names an audit database its DBA created (database.external.audit, components/config/schema.ts
    // externalAuditProblems); every setting that would let Orthanc's role reach the trail is refused by name.
    const externalAudit = (audit: Record<string, unknown>, identityAudit?: Record<string, unknown>) =>
        withTenant({
            identity: { oidc: oidc(), ...(identityAudit ? { audit: identityAudit } : {}) },
            database: { engine: "external", external: { ...externalDatabase(), audit: { database: "audit", user: "gatekeeper_audit", password: "another-long-generated-password", ...audit } } },
            postgres: { replicas: 2, replication: "asynchronous" },
        });
    const externalAuditCases: [string, Record<string, unknown>, Record<string, unknown> | undefined, RegExp[] | "accepted"][] = [
        ["its DBA's audit database on the managed server", {}, undefined, "accepted"],
        ["an audit database on another server, with its addresses and CA", { host: "audit.example.org", port: 6432, addresses: ["10.0.6.0/28"], caCertificate: "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n" }, undefined, "accepted"],
        ["sslmode require", { sslmode: "require" }, undefined, "accepted"],
        ["sslmode disable", { sslmode: "disable" }, undefined, [/tenants\[0\]\.database\.external\.audit\.sslmode/, /"verify-full" \(the default\) or "require"/]],
        ["Orthanc's role as the gatekeeper's", { user: "orthanc" }, undefined, [/tenants\[0\]\.database\.external\.audit\.user/, /a role of its own, not Orthanc's/]],
        ["Orthanc's database for the trail", { database: "orthanc" }, undefined, [/tenants\[0\]\.database\.external\.audit\.database/, /a database of its own, not Orthanc's/]],
        ["another host without its addresses", { host: "audit.example.org" }, undefined, [/tenants\[0\]\.database\.external\.audit\.addresses/, /where audit\.example\.org resolves/]],
        ["another port on the managed server's host", { port: 6432 }, undefined, [/tenants\[0\]\.database\.external\.audit\.port/, /database\.external\.port \(5432\)/]],
        ["a short password", { password: "short" }, undefined, [/tenants\[0\]\.database\.external\.audit\.password/, /at least 16 characters/]],
        ["an audit database and stdoutOnly both", {}, { stdoutOnly: true }, [/tenants\[0\]\.database\.external\.audit/, /left out: only a gatekeeper writes there/]],
    ];
    for (const [what, audit, identityAudit, expected] of externalAuditCases) {
        it(`external audit database: ${expected === "accepted" ? "accepts" : "refuses"} ${what}`, () => {
            if (expected === "accepted") {
                assert.doesNotThrow(() => parseStackConfig(externalAudit(audit, identityAudit)));
            } else {
                const message = problemsOf(externalAudit(audit, identityAudit));
                for (const pattern of expected) assert.match(message, pattern);
                assert.doesNotMatch(message, /another-long-generated-password/, "the password is never printed");
            }
        });
    }

    it("refuses the audit database's password in plain text, naming the command that stores it as a secret", () => {
        const message = oneTenantRefusal({
            identity: { oidc: oidc() },
            database: { engine: "external", external: { ...externalDatabase(), audit: { database: "audit", user: "gatekeeper_audit", password: "another-long-generated-password" } } },
            postgres: { replicas: 2, replication: "asynchronous" },
        });
        assert.match(message(false), /korthweb:tenants\[0\]\.database\.external\.audit\.password is stored in plain text; allowed: a secret, set with pulumi config set --secret --path 'tenants\[0\]\.database\.external\.audit\.password'/);
        assert.equal(message(true), "");
    });

    for (const [what, engine, audit, expected] of auditCases) {
        it(`audit trail: ${expected === "accepted" ? "accepts" : "refuses"} ${what}`, () => {
            if (expected === "accepted") {
                assert.doesNotThrow(() => parseStackConfig(onEngine(engine, audit)));
            } else {
                const message = problemsOf(onEngine(engine, audit));
                for (const pattern of expected) assert.match(message, pattern);
            }
        });
    }

    it("refuses two tenants whose gatekeepers would accept each other's tokens (one issuer, a client id or audience in common)", () => {
        assert.match(problemsOf(twoTenants({}, {})), /tenants\[1\]\.identity\.oidc\.clientId .*bhs has the same issuer and accepts orthanc/);
        assert.match(problemsOf(twoTenants({ audiences: ["api://pacs"] }, { clientId: "orthanc-mhr", audiences: ["api://pacs"] })), /tenants\[1\]\.identity\.oidc\.audiences .*accepts api:\/\/pacs/);
        assert.doesNotThrow(() => parseStackConfig(twoTenants({}, { issuer: "https://login.example.org/realms/mhr" })), "another issuer");
    });

    it("refuses, where the program reads its stack, a tenant that says nothing about sign-in, naming the opt-out", () => {
        const config = parseStackConfig(minimal());
        assert.throws(() => requireTenantIdentity(config, "korthweb"), (error: Error) => {
            assert.ok(error instanceof ConfigError);
            assert.match(error.message, /korthweb:tenants\[0\]\.identity missing; allowed: who signs in: oidc .* or disabled: true/);
            return true;
        });
        assert.doesNotThrow(() => requireTenantIdentity(parseStackConfig(withIdentity({ disabled: true })), "korthweb"));
    });

    it("refuses the client secret in plain text, naming the command that stores it as a secret", () => {
        const message = oneTenantRefusal({ identity: { oidc: oidc() } });
        assert.match(message(false), /korthweb:tenants\[0\]\.identity\.oidc\.clientSecret is stored in plain text; allowed: a secret, set with pulumi config set --secret --path 'tenants\[0\]\.identity\.oidc\.clientSecret'/);
        assert.doesNotMatch(message(false), /s3cret-client/);
        assert.equal(message(true), "");
    });
});
