/**
 * The external database engine (components/data/engines/external.ts): the connection settings Orthanc gets, the CA in the
 * pod, the walls opened to exactly the managed server, and the component under in-process mocks.
 */
import { strict as assert } from "assert";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { parseStackConfig } from "../components/config/load";
import { TenantConfig } from "../components/config/schema";
import {
    ExternalDatabase,
    externalCa,
    externalCaFile,
    externalConnectionUri,
    externalDatabaseTls,
    externalServiceEntrySpec,
    externalWalls,
    ipv4InCidr,
} from "../components/data/engines/external";
import { databaseWalls } from "../components/data/databaseWalls";
import { orthancSelector, tenantNames } from "../components/naming/tenantNames";
import { networkPolicies, PolicyContext } from "../components/tenant/security";
import { only, registeredUnder, useMocks } from "./support/inProcess";
import { isSecretValue, plain } from "./support/mocks";
import { validateObjects } from "./support/schemaValidation";
import { istioAdmission } from "./upstream/istioValidation";
import { pluginLibpqSettings } from "./upstream/postgresPlugin";
import { tenantOrthancConfig } from "../components/tenant/orthancWorkload";

const ca = "-----BEGIN CERTIFICATE-----\nMIIBexternalCA\n-----END CERTIFICATE-----\n";
const password = "s3cr3t:/@?#%$HOME&x=y'\"passw0rd";

function externalTenant(external: Record<string, unknown> = {}): TenantConfig {
    return parseStackConfig({
        domain: "orthweb.example",
        ingress: { serviceType: "NodePort" },
        tenants: [
            {
                name: "bhs",
                displayName: "B",
                database: {
                    engine: "external",
                    external: {
                        host: "orthanc-db.postgres.database.azure.com",
                        port: 6432,
                        database: "orthanc",
                        user: "orthanc",
                        password,
                        caCertificate: ca,
                        addresses: ["10.20.30.0/28", "10.20.31.4/32"],
                        ...external,
                    },
                },
            },
        ],
    }).tenants[0];
}

const names = tenantNames("bhs", "orthweb.example");
const server = () => externalTenant().database.external!;

describe("the external database's connection settings", () => {
    it("verify the server against the CA file and the configured host name (libpq verify-full), through ConnectionUri", () => {
        const tls = externalDatabaseTls(names.namespace, server(), password);
        const uri = new URL(tls.postgresql.ConnectionUri);
        assert.equal(uri.protocol, "postgresql:");
        assert.equal(uri.hostname, "orthanc-db.postgres.database.azure.com");
        assert.equal(uri.port, "6432");
        assert.equal(uri.pathname, "/orthanc");
        assert.equal(decodeURIComponent(uri.username), "orthanc");
        assert.equal(decodeURIComponent(uri.password), password, "the password survives percent-encoding");
        assert.deepEqual(Object.fromEntries(uri.searchParams), { sslmode: "verify-full", sslrootcert: externalCaFile, connect_timeout: "10" });
        assert.equal(tls.postgresql.EnableSsl, true);
        assert.deepEqual(Object.keys(tls.postgresql).sort(), ["ConnectionUri", "EnableSsl"]);
    });

    it("percent-encode every character of the password that libpq's URI parser or the image's envsubst would read", () => {
        const uri = externalConnectionUri(server(), password, "/x/ca.crt");
        const credentials = uri.slice("postgresql://".length, uri.lastIndexOf("@"));
        assert.equal(credentials.split(":").length, 2, "one ':' between user and password");
        // What is left unencoded is what libpq's URI parser reads as plain characters in the password.
        assert.match(credentials.split(":")[1], /^[A-Za-z0-9%._~!*'()-]+$/);
        assert.ok(!uri.includes("$"), "no '$' for envsubst");
    });

    it("put the CA in a ConfigMap of the tenant namespace and mount it read-only where sslrootcert points", () => {
        const tls = externalDatabaseTls(names.namespace, server(), password);
        assert.deepEqual(tls.caConfigMap, { metadata: { name: externalCa.configMapName, namespace: "bhs-orthweb" }, data: { "ca.crt": ca } });
        assert.deepEqual(tls.volume, {
            name: externalCa.volumeName,
            configMap: { name: externalCa.configMapName, items: [{ key: "ca.crt", path: "ca.crt" }], defaultMode: 0o444 },
        });
        assert.deepEqual(tls.volumeMount, { name: externalCa.volumeName, mountPath: "/etc/korthweb/database-ca", readOnly: true });
        assert.equal(tls.caFile, `${tls.volumeMount.mountPath}/${tls.volume.configMap!.items![0].path}`);
        assert.equal(new URL(tls.postgresql.ConnectionUri).searchParams.get("sslrootcert"), tls.caFile);
        assert.ok(!/^\/(run\/secrets|etc\/orthanc)(\/|$)/.test(tls.volumeMount.mountPath as string), "not where the image merges *.json");
        assert.ok(!JSON.stringify(tls.caConfigMap).includes(password), "the CA object holds no password");
    });
});

describe("the external database's settings, as the PostgreSQL plugin (5.0 and 10.3) reads them", () => {
    const rendered = tenantOrthancConfig(externalTenant(), "orthweb.example", { adminPassword: "admin-password", databasePassword: password });
    const section = rendered.PostgreSQL as Record<string, unknown>;

    it("make libpq verify the server by CA and name once merged over the rendered section", () => {
        const tls = externalDatabaseTls(names.namespace, server(), password);
        assert.deepEqual(pluginLibpqSettings({ ...section, ...tls.postgresql }), {
            form: "uri",
            sslmode: "verify-full",
            sslrootcert: externalCaFile,
            host: "orthanc-db.postgres.database.azure.com",
        });
    });

    it("are needed: the rendered section alone disables TLS, and EnableSsl alone verifies nothing", () => {
        assert.equal(pluginLibpqSettings(section).sslmode, "disable");
        assert.equal(pluginLibpqSettings({ ...section, EnableSsl: true }).sslmode, "require");
        assert.equal(pluginLibpqSettings({ ...section, EnableSsl: true }).sslrootcert, undefined);
    });
});

describe("the external database's walls", () => {
    it("open Orthanc's egress to exactly the configured CIDRs on the configured port, and nothing else", () => {
        const walls = externalWalls(names, orthancSelector("bhs"), server());
        assert.deepEqual(walls.orthancEgress, [
            { to: [{ ipBlock: { cidr: "10.20.30.0/28" } }, { ipBlock: { cidr: "10.20.31.4/32" } }], ports: [{ protocol: "TCP", port: 6432 }] },
        ]);
        assert.deepEqual(walls.network, []);
        assert.deepEqual(walls.authorization, [], "nothing receives in the mesh: no AuthorizationPolicy");
    });

    it("register the server in the mesh for the tenant namespace alone: MESH_EXTERNAL, TCP, resolution NONE (the address libpq connected to), the same addresses", () => {
        const walls = externalWalls(names, orthancSelector("bhs"), server());
        assert.deepEqual(walls.serviceEntries, [
            {
                namespace: "bhs-orthweb",
                name: "external-database",
                spec: {
                    hosts: ["orthanc-db.postgres.database.azure.com"],
                    addresses: ["10.20.30.0/28", "10.20.31.4/32"],
                    ports: [{ number: 6432, name: "tcp-postgresql-6432", protocol: "TCP" }],
                    location: "MESH_EXTERNAL",
                    exportTo: ["."],
                    resolution: "NONE",
                },
            },
        ]);
    });

    it("pass the upstream schemas: both ServiceEntry shapes, and Orthanc's NetworkPolicy with this egress", async () => {
        const walls = externalWalls(names, orthancSelector("bhs"), server());
        const ipServer = externalTenant({ host: "10.20.30.5" }).database.external!;
        const metadata = { name: "external-database", namespace: "bhs-orthweb" };
        const reports = await validateObjects([
            { type: "kubernetes:networking.istio.io/v1:ServiceEntry", name: "dns", inputs: { metadata, spec: walls.serviceEntries[0].spec } },
            { type: "kubernetes:networking.istio.io/v1:ServiceEntry", name: "static", inputs: { metadata, spec: externalServiceEntrySpec(names, ipServer) } },
            {
                type: "kubernetes:networking.k8s.io/v1:NetworkPolicy",
                name: "policy",
                inputs: { metadata, spec: { podSelector: { matchLabels: orthancSelector("bhs") }, policyTypes: ["Egress"], egress: walls.orthancEgress } },
            },
        ]);
        assert.deepEqual(reports.flatMap((r) => (r.noSchema ? [`${r.object}: no schema`] : r.problems)), []);
    });

    it("pass istiod's admission checks in both shapes (CIDR addresses only with NONE or STATIC resolution)", () => {
        const ipServer = externalTenant({ host: "10.20.30.5" }).database.external!;
        for (const spec of [externalServiceEntrySpec(names, server()), externalServiceEntrySpec(names, ipServer)]) {
            const object = { apiVersion: "networking.istio.io/v1", kind: "ServiceEntry", metadata: { name: "external-database", namespace: "bhs-orthweb" }, spec };
            assert.deepEqual(istioAdmission(object).errors, [], JSON.stringify(spec));
        }
    });

    it("use a STATIC entry for an IPv4 host, and refuse a host outside its addresses", () => {
        const ipServer = externalTenant({ host: "10.20.30.5" }).database.external!;
        const spec = externalServiceEntrySpec(names, ipServer);
        assert.equal(spec.resolution, "STATIC");
        assert.deepEqual(spec.endpoints, [{ address: "10.20.30.5" }]);
        assert.deepEqual(spec.hosts, ["database.external.bhs-orthweb.internal"]);
        assert.throws(() => externalWalls(names, {}, externalTenant({ host: "10.20.40.5" }).database.external!), /outside database.external.addresses/);
        assert.ok(ipv4InCidr("10.20.30.15", "10.20.30.0/28"));
        assert.ok(!ipv4InCidr("10.20.30.16", "10.20.30.0/28"));
        assert.ok(ipv4InCidr("1.2.3.4", "0.0.0.0/0"));
    });

    it("are what databaseWalls gives the external engine, and the only egress of Orthanc's NetworkPolicy", () => {
        const tenant = externalTenant();
        const walls = databaseWalls(names, orthancSelector("bhs"), tenant.database);
        assert.deepEqual(walls, externalWalls(names, orthancSelector("bhs"), tenant.database.external!));
        const ctx: PolicyContext = {
            tenant: "bhs",
            names,
            istioNamespace: "istio-system",
            monitoringNamespace: "monitoring",
            modalityDestinations: [],
            database: walls,
        };
        const orthanc = networkPolicies(ctx).find((p) => p.name === "allow-orthanc")!;
        assert.deepEqual(orthanc.spec.egress, walls.orthancEgress);
        const peers = networkPolicies(ctx).flatMap((p) => (p.spec.egress ?? []) as any[]).flatMap((rule) => rule.to ?? []);
        const blocks = peers.filter((peer: any) => peer.ipBlock).map((peer: any) => peer.ipBlock.cidr);
        assert.deepEqual(blocks, ["10.20.30.0/28", "10.20.31.4/32"], "no other address block anywhere");
    });
});

describe("the ExternalDatabase component (in-process mocks)", () => {
    before(useMocks);

    it("creates the CA ConfigMap only, and hands out the endpoint with the password as a secret", async () => {
        const tenant = externalTenant();
        const database = new ExternalDatabase("ext1", { tenant, namespace: names.namespace, dependsOn: [] });
        // What the owner does with it: the URI, with the password, goes into a Secret.
        new k8s.core.v1.Secret("ext1-probe-config", {
            metadata: { name: "probe", namespace: names.namespace },
            stringData: { uri: database.endpoint.password.apply((p) => externalDatabaseTls(names.namespace, tenant.database.external!, p).postgresql.ConnectionUri) },
        });
        const children = await registeredUnder("ext1");
        const configMap = only(children.filter((r) => r.type === "kubernetes:core/v1:ConfigMap"), "ConfigMap");
        assert.deepEqual(plain(configMap.inputs.metadata), { name: "orthanc-database-ca", namespace: "bhs-orthweb" });
        assert.deepEqual(plain(configMap.inputs.data), { "ca.crt": ca });
        assert.deepEqual(
            children.map((r) => r.type).sort(),
            ["korthweb:database:ExternalDatabase", "kubernetes:core/v1:ConfigMap", "kubernetes:core/v1:Secret"],
        );
        const { host, port, database: name, user, ready } = database.endpoint;
        assert.deepEqual({ host, port, name, user }, { host: "orthanc-db.postgres.database.azure.com", port: 6432, name: "orthanc", user: "orthanc" });
        assert.equal(ready.length, 1);
        assert.equal(await pulumi.isSecret(database.endpoint.password), true);
        assert.equal(await new Promise((resolve) => database.endpoint.password.apply(resolve)), password);
        const probe = only(children.filter((r) => r.name === "ext1-probe-config"), "probe Secret");
        assert.ok(isSecretValue(probe.inputs.stringData) || isSecretValue(probe.inputs.stringData.uri), "the URI stays secret");
        for (const resource of children.filter((r) => r.name !== "ext1-probe-config")) {
            assert.ok(!JSON.stringify(resource.inputs).includes(password.slice(0, 6)), `${resource.name} holds no password`);
        }
        assert.ok(pulumi.Output.isInstance(database.endpoint.password));
    });

    it("refuses a tenant of another engine", async () => {
        const tenant = parseStackConfig({ domain: "orthweb.example", ingress: { serviceType: "NodePort" }, tenants: [{ name: "mhr", displayName: "M" }] }).tenants[0];
        assert.throws(() => new ExternalDatabase("ext2", { tenant, namespace: "mhr-orthweb", dependsOn: [] }), /needs database.engine "external"/);
    });
});
