/**
 * A managed PostgreSQL on this machine, as the external engine meets it: a server certificate for a DNS name, signed by
 * a CA of the provider's, and that name resolving (inside Orthanc's root only) to the throwaway PostgreSQL.
 */
import { cpSync, mkdirSync, writeFileSync } from "fs";
import { dirname, join, relative } from "path";
import { tmpdir } from "os";
import { TenantConfig } from "../../../components/config/schema";
import { ExternalServer, externalCaFile, externalDatabaseTls } from "../../../components/data/engines/external";
import { OrthancConfig } from "../../../components/tenant/orthancConfig";
import { adaptForLaptop, orthancProcessEnvironment, podEnvironment, productionConfig, writeConfigFiles } from "./orthanc";
import { ServerCertificate } from "./postgres";
import { laptopPlugins, orthancRoot, orthancRootLayout } from "./prerequisites";
import { Child, freePort, Resources, runOk } from "./processes";
import { testStackConfig } from "./stack";

export interface TestCa {
    certFile: string;
    keyFile: string;
}

/** A self-signed CA (EC P-256: quick to make), as a cloud provider's database CA. */
export async function makeCa(dir: string, name: string): Promise<TestCa> {
    const keyFile = join(dir, `${name}.key`);
    const certFile = join(dir, `${name}.crt`);
    await runOk("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", keyFile]);
    await runOk("openssl", [
        "req", "-x509", "-new", "-key", keyFile, "-sha256", "-days", "2", "-subj", `/O=Korthweb IT/CN=${name}`, "-out", certFile,
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    return { certFile, keyFile };
}

/** A server certificate for `dnsName` (subject alternative name and common name), signed by `ca`. */
export async function makeServerCertificate(dir: string, name: string, dnsName: string, ca: TestCa): Promise<ServerCertificate> {
    const keyFile = join(dir, `${name}.key`);
    const requestFile = join(dir, `${name}.csr`);
    const certFile = join(dir, `${name}.crt`);
    const extensionFile = join(dir, `${name}.ext`);
    await runOk("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", keyFile]);
    await runOk("openssl", ["req", "-new", "-key", keyFile, "-subj", `/O=Korthweb IT/CN=${dnsName}`, "-out", requestFile]);
    writeFileSync(
        extensionFile,
        `[server]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\nsubjectAltName = DNS:${dnsName}\n`,
    );
    await runOk("openssl", [
        "x509", "-req", "-in", requestFile, "-CA", ca.certFile, "-CAkey", ca.keyFile, "-CAcreateserial", "-sha256", "-days", "2",
        "-extfile", extensionFile, "-extensions", "server", "-out", certFile,
    ]);
    return { certFile, keyFile };
}

/**
 * The tenant's configuration as the owner renders it for the external engine: `tenantOrthancConfig`, with the
 * PostgreSQL settings of `externalDatabaseTls` merged over its section (what the section's other connection keys say is
 * ignored while ConnectionUri is set).
 */
export function externalProductionConfig(tenant: TenantConfig, server: ExternalServer, adminPassword: string, databasePassword: string): OrthancConfig {
    const rendered = productionConfig(tenant, "orthweb.example", adminPassword, databasePassword);
    const tls = externalDatabaseTls("bhs-orthweb", server, databasePassword);
    return { ...rendered, PostgreSQL: { ...(rendered.PostgreSQL as Record<string, unknown>), ...tls.postgresql } };
}

export interface ExternalLaptop {
    /** The throwaway PostgreSQL's port (a free one) instead of the managed server's. */
    port: number;
    /** The run's work directory: the CA file goes under it, at the pod's path (as adaptForLaptop relocates paths). */
    workDirectory: string;
    /** The CA the pod's ConfigMap would hold. */
    caPem: string;
    /** The HTTP port and the rest of adaptForLaptop's settings. */
    httpPort: number;
    dicomPort: number;
    serverIdentifier: string;
}

/** Where the pod's CA file lands on the laptop: under the work directory, at the same relative path. */
export function laptopCaFile(workDirectory: string): string {
    return join(workDirectory, relative("/", externalCaFile));
}

/**
 * adaptForLaptop, then the two parts of the connection URI a laptop must change: the port, and the CA file's path. The
 * host name stays: it resolves to 127.0.0.1 inside Orthanc's root (`inOrthancRootWithHosts`). adaptForLaptop's own
 * PostgreSQL.Host and Port point at a port nobody listens on: the plugin must not use them while ConnectionUri is set.
 */
export function adaptExternalForLaptop(config: OrthancConfig, server: ExternalServer, laptop: ExternalLaptop): OrthancConfig {
    const configDirectory = join(laptop.workDirectory, "config-secret");
    mkdirSync(configDirectory, { recursive: true });
    writeConfigFiles(configDirectory);
    const adapted = adaptForLaptop(config, {
        configDirectory,
        pluginDirectory: orthancRootLayout.pluginDirectory,
        plugins: laptopPlugins,
        database: { host: "127.0.0.1", port: 1 },
        httpPort: laptop.httpPort,
        dicomPort: laptop.dicomPort,
        workDirectory: laptop.workDirectory,
        serverIdentifier: laptop.serverIdentifier,
    });
    const caFile = laptopCaFile(laptop.workDirectory);
    mkdirSync(dirname(caFile), { recursive: true });
    writeFileSync(caFile, laptop.caPem);
    const section = adapted.PostgreSQL as Record<string, unknown>;
    const uri = String(section.ConnectionUri);
    const hostPort = `@${server.host}:${server.port}/`;
    const caParameter = `sslrootcert=${externalCaFile}`;
    if (!uri.includes(hostPort) || !uri.includes(caParameter)) {
        throw new Error(`unexpected connection URI shape (host, port or sslrootcert): ${uri.replace(/:[^@/]*@/, ":***@")}`);
    }
    const laptopUri = uri.replace(hostPort, `@${server.host}:${laptop.port}/`).replace(caParameter, `sslrootcert=${caFile}`);
    return { ...adapted, PostgreSQL: { ...section, ConnectionUri: laptopUri } };
}

/**
 * Like `inOrthancRoot` (support/orthanc.ts), plus names resolving as `hosts` says, for this process only: a copy of the
 * root's /etc with a hosts file of the run's own is bind-mounted over the root's /etc in the process's private mount
 * namespace. The root itself (shared with other checkouts) is never written.
 */
export function inOrthancRootWithHosts(argv: string[], hosts: Record<string, string>, scratch: string, root = orthancRoot("sid")): [string, string[]] {
    const etc = join(scratch, "etc");
    cpSync(join(root, "etc"), etc, { recursive: true, verbatimSymlinks: true });
    const lines = ["127.0.0.1 localhost", ...Object.entries(hosts).map(([name, address]) => `${address} ${name}`)];
    writeFileSync(join(etc, "hosts"), `${lines.join("\n")}\n`);
    const shared = tmpdir();
    const namespaces = process.getuid?.() === 0 ? ["--mount"] : ["--user", "--map-root-user", "--mount"];
    const script =
        'root="$1"; shared="$2"; etc="$3"; shift 3; mount --bind "$shared" "$root$shared" && mount --bind "$etc" "$root/etc" && exec chroot "$root" "$@"';
    return ["unshare", [...namespaces, "--propagation", "private", "--", "/bin/sh", "-c", script, "sh", root, shared, etc, ...argv]];
}

export interface ExternalOrthanc {
    child: Child;
    config: OrthancConfig;
    httpPort: number;
    request(path: string, options?: { method?: string; body?: RequestInit["body"] }): Promise<Response>;
}

/** Writes `config` and starts Orthanc on it, with `hosts` resolving inside its root; does not wait for anything. */
export function launchOrthanc(resources: Resources, name: string, config: OrthancConfig, workDirectory: string, hosts: Record<string, string>): ExternalOrthanc {
    const configFile = join(workDirectory, "orthanc.json");
    writeFileSync(configFile, JSON.stringify(config, null, 2), { mode: 0o600 });
    const [command, args] = inOrthancRootWithHosts([orthancRootLayout.binary, configFile], hosts, resources.tempDir(`root-etc-${name}`));
    const child = resources.start(`orthanc-${name}`, command, args, {
        // The pod's environment, as for every replica of the program's configuration.
        env: orthancProcessEnvironment(podEnvironment(testStackConfig().tenants[0], `orthanc-${name}`)),
        logFile: join(workDirectory, "orthanc.log"),
    });
    const httpPort = config.HttpPort as number;
    const [user, password] = Object.entries(config.RegisteredUsers as Record<string, string>)[0];
    const authorization = `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
    return {
        child,
        config,
        httpPort,
        request: (path, options = {}) =>
            fetch(`http://127.0.0.1:${httpPort}${path}`, { method: options.method ?? "GET", headers: { Authorization: authorization }, body: options.body }),
    };
}

export { freePort };
