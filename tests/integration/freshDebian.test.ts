/**
 * "A fresh Debian machine": `scripts/run setup` (what every job installs, and the Pulumi CLI check) in a minimal
 * Debian root without npm or curl, with the project's tracked files copied in, chrooted in a private mount namespace
 * like the Orthanc root (support/orthanc.ts inOrthancRoot). The root is the host's Debian release, built once with
 * `debootstrap --variant=minbase` from the host's mirror into the suite's cache outside the clone,
 * ~/.cache/korthweb/fresh-debian/ (KORTHWEB_FRESH_DEBIAN_CACHE moves it), and copied for each run so that every run
 * starts from nothing. It needs root (apt-get and mounts in the root),
 * the Debian mirror and the npm registry. GitHub is not reachable here, so the CLI check (scripts/install-pulumi-cli)
 * ends in its full failure message, which is what is asserted; with internet it would install the pinned CLI instead.
 */
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { korthwebCacheDirectory } from "./support/prerequisites";

const repoRoot = path.resolve(__dirname, "../..");
const cache = path.resolve(process.env.KORTHWEB_FRESH_DEBIAN_CACHE || path.join(korthwebCacheDirectory(), "fresh-debian"));
const suite = /^VERSION_CODENAME=(.*)$/m.exec(fs.readFileSync("/etc/os-release", "utf8"))?.[1] ?? "bookworm";
const pinned = /^requiredPulumiVersion: "(.*)"$/m.exec(fs.readFileSync(path.join(repoRoot, "Pulumi.yaml"), "utf8"))?.[1];

/** The first Debian archive the host's apt uses (deb822 or one-line sources), else deb.debian.org. */
function hostMirror(): string {
    const files = ["/etc/apt/sources.list", ...fs.readdirSync("/etc/apt/sources.list.d").map((name) => `/etc/apt/sources.list.d/${name}`)];
    for (const file of files.filter((f) => /\.(list|sources)$/.test(f) && fs.existsSync(f))) {
        const text = fs.readFileSync(file, "utf8");
        const uri = /^URIs:\s*(\S+\/debian)\s*$/m.exec(text)?.[1] ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\s/m.exec(text)?.[1];
        if (uri) return uri;
    }
    return "http://deb.debian.org/debian";
}

function run(command: string, args: string[], options: { timeout?: number } = {}) {
    return spawnSync(command, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, timeout: options.timeout });
}

/** The cached minimal root, built when missing. */
function baseRoot(): string {
    const root = path.join(cache, suite, "root");
    if (fs.existsSync(path.join(root, "usr", "bin", "apt-get"))) return root;
    assert.ok(fs.existsSync("/usr/sbin/debootstrap"), "debootstrap is missing: apt-get install debootstrap (scripts/install-orthanc-root installs it too)");
    const building = `${root}.building`;
    fs.rmSync(building, { recursive: true, force: true });
    fs.mkdirSync(path.dirname(root), { recursive: true });
    const result = run("/usr/sbin/debootstrap", ["--variant=minbase", suite, building, hostMirror()], { timeout: 15 * 60_000 });
    assert.equal(result.status, 0, `debootstrap ${suite} failed:\n${result.stdout.slice(-3000)}\n${result.stderr.slice(-3000)}`);
    fs.renameSync(building, root);
    return root;
}

describe("scripts/run setup on a fresh Debian machine without npm or curl (a debootstrap root)", function () {
    this.timeout(30 * 60_000);
    let root: string;
    let setup: ReturnType<typeof run>;

    before(() => {
        assert.equal(process.getuid?.(), 0, "this test installs Debian packages in a chroot: run the integration suite as root (scripts/run test in CI is)");
        const base = baseRoot();
        // One copy per run: two suites on one machine (a developer's and a helper's) must not share it.
        root = path.join(cache, suite, `run-${process.pid}`);
        fs.rmSync(root, { recursive: true, force: true });
        const copy = run("cp", ["-a", base, root]);
        assert.equal(copy.status, 0, copy.stderr);
        for (const absent of ["usr/bin/npm", "usr/bin/curl", "usr/bin/node"]) {
            assert.equal(fs.existsSync(path.join(root, absent)), false, `the fresh root already has /${absent}`);
        }
        // The project as a clone has it: its tracked files, nothing installed.
        const project = path.join(root, "project");
        fs.mkdirSync(project);
        const files = run("git", ["-C", repoRoot, "ls-files", "-z", "--cached"]);
        // A refused clone (git's "dubious ownership" for root in a CI container) would otherwise copy no file at all.
        assert.equal(files.status, 0, files.stderr);
        const listed = files.stdout.split("\0").filter((file) => file !== "" && fs.existsSync(path.join(repoRoot, file)));
        const pack = spawnSync("tar", ["-C", repoRoot, "--null", "-T", "-", "-c"], { input: listed.join("\0"), maxBuffer: 512 * 1024 * 1024 });
        assert.equal(pack.status, 0, String(pack.stderr));
        const unpack = spawnSync("tar", ["-C", project, "-x"], { input: pack.stdout, maxBuffer: 512 * 1024 * 1024 });
        assert.equal(unpack.status, 0, String(unpack.stderr));
        // The host's network, as a machine on it would be set up: its resolver, and the local certificate authorities
        // it trusts (a TLS-inspecting egress proxy's, here), which Debian's ca-certificates adds to the root's bundle
        // when apt installs it; Node.js reads that bundle only when told (NODE_EXTRA_CA_CERTS), as on the host.
        fs.copyFileSync("/etc/resolv.conf", path.join(root, "etc", "resolv.conf"));
        const localCas = "/usr/local/share/ca-certificates";
        if (fs.existsSync(localCas)) fs.cpSync(localCas, path.join(root, localCas), { recursive: true });
        const extraCa = process.env.NODE_EXTRA_CA_CERTS ? "NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt" : "";
        const script =
            'root="$1"; mount -t proc proc "$root/proc" && mount --rbind /dev "$root/dev" && ' +
            `exec chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root LANG=C.UTF-8 ${extraCa} /bin/bash -c "cd /project && scripts/run setup"`;
        setup = run("unshare", ["--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh", root], { timeout: 25 * 60_000 });
    });
    after(() => root && fs.rmSync(root, { recursive: true, force: true }));

    it("installs npm and curl with apt-get, then the pinned Node.js from the npm registry", () => {
        assert.ok(fs.existsSync(path.join(root, "usr", "bin", "npm")), setup.stderr.slice(-3000));
        assert.ok(fs.existsSync(path.join(root, "usr", "bin", "curl")));
        const pinnedNode = JSON.parse(fs.readFileSync(path.join(repoRoot, "toolchain", "package.json"), "utf8")).dependencies.node;
        assert.match(setup.stdout, new RegExp(`^node v${pinnedNode.replace(/\./g, "\\.")}, npm \\d`, "m"));
    });

    it("installs the project's npm packages from its lockfile", () => {
        const project = path.join(root, "project");
        assert.equal(
            fs.readFileSync(path.join(project, "node_modules", ".installed-package-lock.json"), "utf8"),
            fs.readFileSync(path.join(project, "package-lock.json"), "utf8"),
        );
        assert.ok(fs.existsSync(path.join(project, "node_modules", "@pulumi", "pulumi", "package.json")));
    });

    it("installs the host's Debian packages the suite uses", () => {
        const query = run("chroot", [root, "dpkg-query", "-W", "-f=${Package} ${Status}\\n", "postgresql", "dcmtk", "openssl", "awscli"]);
        for (const line of query.stdout.trim().split("\n")) assert.match(line, /install ok installed$/, line);
        assert.equal(query.stdout.trim().split("\n").length, 4, query.stdout + query.stderr);
    });

    it("checks the Pulumi CLI last, and where scripts/install-pulumi-cli cannot fetch the pinned one, says so in full", () => {
        assert.equal(setup.status, 1, setup.stdout.slice(-2000));
        // curl's own reason (no route, a proxy's refusal) varies with the network; the rest is scripts/run's.
        assert.equal(
            setup.stderr.trim().split("\n").slice(-2).join("\n").replace(/(: curl: ).*\n/, "$1\n"),
            [
                `error: no Pulumi CLI on PATH, and scripts/install-pulumi-cli could not install v${pinned} into /root/.pulumi/versions/${pinned}: curl: `,
                "Install the Pulumi CLI by hand (https://www.pulumi.com/docs/install/), put it on PATH, and run this again.",
            ].join("\n"),
        );
    });
});
