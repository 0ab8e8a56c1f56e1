/**
 * The external engine's TLS on a real stack: the image's Orthanc 1.13.0 with the PostgreSQL plugins 10.3 (chrooted
 * in the project's sid root) against a PostgreSQL that accepts TCP clients only over TLS, as a managed service does.
 *
 * The configuration is the tenant's rendered one with the settings of `externalDatabaseTls` merged in: the plugin's
 * ConnectionUri with libpq's `sslmode=verify-full` and the CA file. On the laptop only the URI's port and the CA
 * file's path change (adaptExternalForLaptop), and the server's DNS name resolves to 127.0.0.1 inside Orthanc's root.
 * Orthanc must store through a server whose certificate the CA signed for that name, and refuse, saying why, a server
 * signed by another CA or certified for another name. A last test shows what the plugin's own `EnableSsl` does
 * instead: encryption that accepts either.
 */
import assert from "assert";
import { readFileSync } from "fs";
import { parseStackConfig } from "../../components/config/load";
import { ExternalServer } from "../../components/data/engines/external";
import { OrthancConfig } from "../../components/tenant/orthancConfig";
import { generateInstances } from "./support/dicom";
import {
    adaptExternalForLaptop,
    externalProductionConfig,
    ExternalOrthanc,
    launchOrthanc,
    makeCa,
    makeServerCertificate,
    TestCa,
} from "./support/externalDatabase";
import { changedKeys, generatePassword } from "./support/orthanc";
import { Postgres, ServerCertificate, startPostgres } from "./support/postgres";
import { assertPrerequisites } from "./support/prerequisites";
import { freePort, portOpen, Resources, run, sleep, waitForLog, waitUntil } from "./support/processes";

/** The name the configuration gives the server, and the other name a wrong certificate is issued for. */
const serverName = "db.tenant.example";
const otherName = "db.example.org";
/** Inside Orthanc's root both names lead to the throwaway PostgreSQL. */
const hosts = { [serverName]: "127.0.0.1", [otherName]: "127.0.0.1" };

describe("Orthanc on an external PostgreSQL over verified TLS (real Orthanc 1.13.0, PostgreSQL plugins 10.3)", function () {
    const suite = new Resources();
    let perTest = new Resources();
    let postgres: Postgres;
    let providerCa: TestCa;
    let otherCa: TestCa;
    let rightCertificate: ServerCertificate;
    let wrongNameCertificate: ServerCertificate;
    let server: ExternalServer;
    let tenant: ReturnType<typeof parseStackConfig>["tenants"][number];
    let production: OrthancConfig;

    before(async function () {
        this.timeout(120_000);
        assertPrerequisites();
        const pki = suite.tempDir("external-pki");
        [providerCa, otherCa] = await Promise.all([makeCa(pki, "provider-ca"), makeCa(pki, "other-ca")]);
        rightCertificate = await makeServerCertificate(pki, "server", serverName, providerCa);
        wrongNameCertificate = await makeServerCertificate(pki, "server-other-name", otherName, providerCa);
        postgres = await startPostgres(suite, { tls: rightCertificate });
        tenant = parseStackConfig({
            domain: "orthweb.example",
            ingress: { serviceType: "NodePort" },
            tenants: [
                {
                    name: "bhs",
                    displayName: "B",
                    database: {
                        engine: "external",
                        external: {
                            host: serverName,
                            port: 5432,
                            database: postgres.database,
                            user: postgres.user,
                            password: postgres.password,
                            caCertificate: readFileSync(providerCa.certFile, "utf8"),
                            addresses: ["127.0.0.1/32"],
                        },
                    },
                },
            ],
        }).tenants[0];
        const { password: _password, ...rest } = tenant.database.external!;
        server = rest;
        production = externalProductionConfig(tenant, server, generatePassword(), postgres.password);
    });

    afterEach(async () => {
        await perTest.release();
        perTest = new Resources();
    });
    after(() => suite.release());

    /** The rendered configuration on the laptop, trusting `ca`. */
    async function laptopConfig(ca: TestCa, name: string): Promise<{ config: OrthancConfig; workDirectory: string }> {
        const workDirectory = perTest.tempDir(`orthanc-external-${name}`);
        const config = adaptExternalForLaptop(production, server, {
            port: postgres.port,
            workDirectory,
            caPem: readFileSync(ca.certFile, "utf8"),
            httpPort: await freePort(),
            dicomPort: await freePort(),
            serverIdentifier: `orthanc-${name}`,
        });
        return { config, workDirectory };
    }

    /** Starts Orthanc and expects it never to serve, logging `reason`; stops it once it has said so. */
    async function assertRefuses(orthanc: ExternalOrthanc, reason: RegExp): Promise<string> {
        const logged = await waitForLog(orthanc.child, 0, reason, 60_000);
        assert.equal(await portOpen(orthanc.httpPort), false, "Orthanc serves HTTP without its database");
        // Give it the time a connection takes here: it must still not serve.
        await sleep(1_000);
        assert.equal(await portOpen(orthanc.httpPort), false, "Orthanc serves HTTP without its database");
        const line = logged.split("\n").find((l) => reason.test(l)) ?? "";
        console.log(`      Orthanc said: ${line.replace(/^.*PostgreSQL error: /, "").trim()}`);
        await orthanc.child.stop();
        return logged;
    }

    it("the server takes TCP clients over TLS only, like a managed service", async () => {
        const plain = await run("psql", ["-X", "-At", "-c", "SELECT 1", `host=127.0.0.1 port=${postgres.port} dbname=${postgres.database} user=${postgres.user} sslmode=disable`], {
            env: { ...process.env, PGPASSWORD: postgres.password, PGCONNECT_TIMEOUT: "5" },
        });
        assert.notEqual(plain.code, 0);
        assert.match(plain.stderr, /no pg_hba\.conf entry .* no encryption/);
        assert.equal(await postgres.asOrthancRole("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"), "t");
    });

    it("the laptop changes only the connection URI's port and CA path, besides adaptForLaptop's keys", async () => {
        const { config } = await laptopConfig(providerCa, "keys");
        assert.deepEqual(changedKeys(production, config), [
            "DatabaseServerIdentifier", "DicomPort", "HttpPort", "IndexDirectory", "LuaScripts", "Plugins",
            "PostgreSQL.ConnectionUri", "PostgreSQL.Host", "PostgreSQL.Port", "StorageDirectory",
        ]);
        const before = new URL(String((production.PostgreSQL as Record<string, unknown>).ConnectionUri));
        const after = new URL(String((config.PostgreSQL as Record<string, unknown>).ConnectionUri));
        assert.equal(after.port, String(postgres.port));
        assert.notEqual(after.searchParams.get("sslrootcert"), before.searchParams.get("sslrootcert"));
        for (const url of [before, after]) {
            url.port = "";
            url.searchParams.delete("sslrootcert");
        }
        assert.equal(after.href, before.href);
        assert.equal(before.searchParams.get("sslmode"), "verify-full");
        assert.equal(before.hostname, serverName);
    });

    it("stores through a server certified for its name by the configured CA, every connection over TLS", async function () {
        this.timeout(120_000);
        const { config, workDirectory } = await laptopConfig(providerCa, "verified");
        const orthanc = launchOrthanc(perTest, "verified", config, workDirectory, hosts);
        await waitUntil("the REST API answers", orthanc.child, async () => (await portOpen(orthanc.httpPort)) && (await orthanc.request("/system").then((r) => r.ok, () => false)));
        const [instance] = await generateInstances(perTest.tempDir("external-dicom"), 1, 4 * 1024, "external");
        const sent = readFileSync(instance.file);
        const stored = await orthanc.request("/instances", { method: "POST", body: sent });
        assert.equal(stored.status, 200, await stored.clone().text());
        const { ID } = (await stored.json()) as { ID: string };
        const back = Buffer.from(await (await orthanc.request(`/instances/${ID}/file`)).arrayBuffer());
        assert.ok(back.equals(sent), "the file comes back from PostgreSQL's large objects as sent");
        // Every connection Orthanc's role holds is encrypted (and pg_hba.conf would refuse any other).
        const connections = await postgres.asSuperuser(
            `SELECT s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.usename = '${postgres.user}' AND a.pid <> pg_backend_pid()`,
        );
        const flags = connections.split("\n").filter(Boolean);
        assert.ok(flags.length >= 2, `Orthanc's index and storage connections: ${connections}`);
        assert.deepEqual([...new Set(flags)], ["t"]);
        console.log(`      ${flags.length} connections of Orthanc's role, all TLS; instance stored and read back`);
    });

    it("refuses to start on a server whose certificate another CA signed, and says so", async function () {
        this.timeout(120_000);
        const { config, workDirectory } = await laptopConfig(otherCa, "other-ca");
        await assertRefuses(launchOrthanc(perTest, "other-ca", config, workDirectory, hosts), /certificate verify failed/);
    });

    it("refuses to start on a server certified for another name, and names both", async function () {
        this.timeout(120_000);
        await postgres.useServerCertificate(wrongNameCertificate);
        try {
            const { config, workDirectory } = await laptopConfig(providerCa, "other-name");
            await assertRefuses(
                launchOrthanc(perTest, "other-name", config, workDirectory, hosts),
                new RegExp(`server certificate for "${otherName.replace(/\./g, "\\.")}" does not match host name "${serverName.replace(/\./g, "\\.")}"`),
            );
        } finally {
            await postgres.useServerCertificate(rightCertificate);
        }
    });

    it("with the plugin's EnableSsl instead (sslmode=require), connects to a server of another name and CA: why ConnectionUri", async function () {
        this.timeout(120_000);
        await postgres.useServerCertificate(wrongNameCertificate);
        try {
            // The CA file is there and names the provider's CA, but EnableSsl has no setting that would use it.
            const { config, workDirectory } = await laptopConfig(otherCa, "enable-ssl");
            const section = { ...(config.PostgreSQL as Record<string, unknown>) };
            delete section.ConnectionUri;
            const keywordConfig = { ...config, PostgreSQL: { ...section, Host: serverName, Port: postgres.port, EnableSsl: true } };
            const orthanc = launchOrthanc(perTest, "enable-ssl", keywordConfig, workDirectory, hosts);
            await waitUntil("the REST API answers", orthanc.child, async () => (await portOpen(orthanc.httpPort)) && (await orthanc.request("/system").then((r) => r.ok, () => false)));
            const ssl = await postgres.asSuperuser(
                `SELECT DISTINCT s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.usename = '${postgres.user}' AND a.pid <> pg_backend_pid()`,
            );
            assert.equal(ssl, "t", "encrypted, but to a server nobody verified");
        } finally {
            await postgres.useServerCertificate(rightCertificate);
        }
    });
});
