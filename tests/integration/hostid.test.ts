/**
 * Why each Orthanc pod gets its own /etc/hostid (components/tenant/orthancWorkload.ts, hostIdInitContainer), on real
 * Orthanc processes from the suite's root (their DCMTK 3.6.9 generates the UIDs).
 *
 * DCMTK's dcmGenerateUniqueIdentifier (dcmdata/libsrc/dcuid.cc, DCMTK-3.6.9) builds a UID as
 * `<root>.<gethostid() & 0xffffffff>.<pid>.<time in s>.<counter seeded from the microseconds>`, and glibc's gethostid()
 * returns the first four bytes of /etc/hostid in the machine's byte order. The image ships /etc/hostid as the text
 * `not-generated` (orthanc-builder 26.8.1 docker/orthanc/Dockerfile) in every replica; in pods started from one image
 * Orthanc usually has the same pid too, so two replicas' UIDs then differ only by the second and the counter.
 *
 * Each replica here runs chrooted in the suite's Orthanc root with its own copy of the root's /etc, holding the
 * replica's hostid file, bind-mounted over /etc in a private mount namespace (support/externalDatabase.ts,
 * inOrthancRootWithHosts; the shared root is never written).
 */
import assert from "assert";
import { readFileSync, writeFileSync } from "fs";
import { join } from "path";
import { hostIdInitContainer, orthancImageLayout } from "../../components/tenant/orthancWorkload";
import { inOrthancRootWithHosts } from "./support/externalDatabase";
import { assertPrerequisites, orthancRootLayout } from "./support/prerequisites";
import { freePort, Resources, runOk, waitUntil } from "./support/processes";

/** The image's /etc/hostid. */
const imageHostId = "not-generated\n";
/** The positions of a DCMTK-generated UID's parts after the root `1.2.276.0.7230010.3.1.4` (8 components). */
const uidRootLength = 8;

interface UidReplica {
    hostIdFile: string;
    generateUid(): Promise<string>;
}

/** Starts a plain Orthanc (SQLite index, no plugins) whose /etc/hostid holds `hostId`, and waits for its REST API. */
async function startUidReplica(resources: Resources, name: string, hostId: Buffer): Promise<UidReplica> {
    const dir = resources.tempDir(`hostid-${name}`);
    const httpPort = await freePort();
    const config = {
        Name: `hostid-${name}`,
        StorageDirectory: join(dir, "storage"),
        IndexDirectory: join(dir, "index"),
        HttpPort: httpPort,
        DicomPort: await freePort(),
        RemoteAccessAllowed: false,
        AuthenticationEnabled: false,
        Plugins: [],
    };
    const configFile = join(dir, "orthanc.json");
    writeFileSync(configFile, JSON.stringify(config));
    // The process's own copy of the root's /etc (bind-mounted over it), given this replica's hostid file.
    const [command, args] = inOrthancRootWithHosts([orthancRootLayout.binary, configFile], {}, dir);
    const hostIdFile = join(dir, "etc", "hostid");
    writeFileSync(hostIdFile, hostId);
    const child = resources.start(`orthanc-hostid-${name}`, command, args, { logFile: join(dir, "orthanc.log") });
    const generateUid = async () => {
        const response = await fetch(`http://127.0.0.1:${httpPort}/tools/generate-uid?level=instance`);
        assert.equal(response.status, 200);
        return (await response.text()).trim();
    };
    await waitUntil("its REST API answers", child, () => generateUid().then(() => true, () => false), 60_000);
    return { hostIdFile, generateUid };
}

/** The component of a DCMTK UID that carries the host id. */
const hostPart = (uid: string): string => uid.split(".")[uidRootLength];
/** What DCMTK puts there for a hostid file: its first four bytes, little-endian on this machine as on the nodes. */
const expectedHostPart = (file: string): string => String(readFileSync(file).readUInt32LE(0));

describe("Orthanc replicas' generated UIDs and /etc/hostid (real Orthanc, its DCMTK)", function () {
    const resources = new Resources();
    before(assertPrerequisites);
    after(() => resources.release());

    it("with the image's shared `not-generated`, two replicas put the same host id in every UID", async () => {
        const [a, b] = await Promise.all([startUidReplica(resources, "shared-a", Buffer.from(imageHostId)), startUidReplica(resources, "shared-b", Buffer.from(imageHostId))]);
        const [uidA, uidB] = await Promise.all([a.generateUid(), b.generateUid()]);
        assert.match(uidA, /^1\.2\.276\.0\.7230010\.3\.1\.4\.\d+\.\d+\.\d+\.\d+$/, "DCMTK's instance UID root and four parts");
        // "not-" read as a little-endian 32-bit number: 0x2d746f6e.
        assert.equal(hostPart(uidA), String(0x2d746f6e));
        assert.equal(hostPart(uidB), hostPart(uidA));
        assert.notEqual(uidA, uidB, "the pid, the second or the counter still tell these apart");
    });

    it("with the hostid the rendered init container writes, each replica's UIDs carry its own", async () => {
        const init = hostIdInitContainer();
        const volume = (init.volumeMounts as { mountPath: string }[])[0].mountPath;
        const write = async (name: string) => {
            const dir = resources.tempDir(`hostid-init-${name}`);
            // The init container's own command, with its volume's path pointing at a directory here.
            const command = (init.command as string[]).map((part) => part.split(volume).join(dir));
            await runOk(command[0], command.slice(1));
            const written = readFileSync(join(dir, "hostid"));
            assert.equal(written.length, 4, "four bytes, as gethostid() reads");
            return written;
        };
        const [first, second] = await Promise.all([write("a"), write("b")]);
        assert.notDeepEqual(first, second);
        const [a, b] = await Promise.all([startUidReplica(resources, "own-a", first), startUidReplica(resources, "own-b", second)]);
        const [uidA, uidB] = await Promise.all([a.generateUid(), b.generateUid()]);
        assert.equal(hostPart(uidA), expectedHostPart(a.hostIdFile));
        assert.equal(hostPart(uidB), expectedHostPart(b.hostIdFile));
        assert.notEqual(hostPart(uidA), hostPart(uidB));
        assert.equal(orthancImageLayout.hostIdFile, "/etc/hostid", "the file the pod mounts is the one glibc reads");
    });
});
