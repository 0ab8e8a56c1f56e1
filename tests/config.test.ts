import { strict as assert } from "assert";
import { ConfigError, parseStackConfig, stackConfigFromPulumi } from "../components/config/load";
import { clusterDns, maxTenantNameLength } from "../components/config/schema";
import { parsedStackFile, allStacks } from "./support/stacks";

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
const backupS3 = () => ({ endpoint: "https://s3.eu-west-1.amazonaws.com", bucket: "korthweb-backups", accessKeyId: "AKIA", secretAccessKey: "secret", anyAddress: true });
const cloudS3 = () => ({ endpoint: "https://s3.eu-west-1.amazonaws.com", bucket: "korthweb-backups", accessKeyId: "AKIA", secretAccessKey: "secret" });

const smtp = { smarthost: "smtp.example.org:587", from: "alerts@example.org" };

function withReceivers(receivers: Record<string, unknown>[], smtpServer?: Record<string, unknown>) {
    return { ...minimal(), observability: { alerting: { receivers, ...(smtpServer ? { smtp: smtpServer } : {}) } } };
}

function withTenant(patch: Record<string, unknown>) {
    const config = minimal();
    return { ...config, tenants: [{ ...config.tenants[0], ...patch }] };
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
            assert.doesNotThrow(() => parseStackConfig({ ...minimal(), backup: { s3 } }), JSON.stringify(s3));
        }
        assert.doesNotThrow(() => parseStackConfig({ ...minimal(), kubernetes: { cni: "cilium" }, backup: { s3: cloudS3() } }));
        const nodeLocal = parseStackConfig({ ...minimal(), kubernetes: { dns: { addresses: ["169.254.20.10/32"] } } });
        assert.deepEqual(nodeLocal.kubernetes.dns, { addresses: ["169.254.20.10/32"], ports: [53] });
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
            "korthweb:tenants": JSON.stringify([{ name: "bhs", displayName: "B", database: { engine: "external", external: externalDatabase() } }]),
            "korthweb:backup": JSON.stringify({ s3: backupS3() }),
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
        assert.match(plainText, /korthweb:backup\.s3\.secretAccessKey is stored in plain text/);
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
            { ...minimal(), backup: { s3: { ...backupS3(), endpoint: "http://minio.local:9000" } } },
            [/backup\.s3\.endpoint is "http:\/\/minio\.local:9000"/, /https URL/],
        ],
        [
            "backups to a cloud store with no way out to it (a NetworkPolicy names addresses only)",
            { ...minimal(), backup: { s3: cloudS3() } },
            [/korthweb:backup\.s3\.addresses missing/, /kubernetes\.cni "cilium"/, /backup\.s3\.anyAddress: true/],
        ],
        [
            "any address together with fixed addresses",
            { ...minimal(), backup: { s3: { ...cloudS3(), anyAddress: true, addresses: ["10.30.0.0/24"] } } },
            [/backup\.s3\.anyAddress is true/, /left out when backup\.s3\.addresses is given/],
        ],
        ["anyAddress false", { ...minimal(), backup: { s3: { ...cloudS3(), anyAddress: false } } }, [/backup\.s3\.anyAddress is false/, /true, or leave it out/]],
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
