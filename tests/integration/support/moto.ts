/**
 * moto's server mode (`moto_server`) on 127.0.0.1: an S3 that checks SigV4 against IAM users' access keys and
 * authorises every request by the user's IAM policies, for proving what a tenant's rendered backup policy lets its key
 * pair do.
 *
 * What moto enforces, read in moto 5.2.4 as Debian sid installs it (`moto/core/authorization.py`,
 * `moto/iam/access_control.py`, `moto/moto_api/_internal/responses.py`): requests are unauthenticated until POST
 * /moto-api/reset-auth sets INITIAL_NO_AUTH_ACTION_COUNT (0: from the next request on); then each S3 request's SigV4
 * signature is recomputed with the known key's secret (a wrong secret or an altered request is refused), and its
 * action (s3:GetObject, s3:PutObject, s3:DeleteObject, s3:ListBucket, ...) is matched against the user's policies with
 * the resource `arn:aws:s3:::<bucket>[/<key>]`, an explicit Deny winning. It does NOT evaluate Condition keys such as
 * `s3:prefix` (they are ignored, so a ListBucket allowed for one prefix lists every prefix): which prefix a key may
 * list is judged by the policy model (tests/support/iamPolicyModel.ts), not here. (moto 5.2.1, from pip, refused the
 * AWS CLI's ListObjectsV2 signatures; 5.2.4 accepts them, seen with the restore's `list-objects-v2 --prefix`.)
 *
 * What the server was asked, and what it answered: its access log (werkzeug's request log, one line per request,
 * written before the answer's body), read by `requests()`.
 *
 * moto is Debian sid's python3-moto (5.2.4, with python3-flask-cors, which its server needs and the package does not
 * declare), installed in the sid root scripts/install-orthanc-root builds, and run chrooted there as Orthanc is:
 * Debian bookworm, this project's CI host, has no moto, and PyPI is not reachable from every machine that runs the suite.
 */
import { readFileSync } from "fs";
import { join } from "path";
import { clientPath } from "./backup";
import { inOrthancRoot } from "./orthanc";
import { orthancRoot } from "./prerequisites";
import { Child, freePort, portOpen, Resources, run, RunResult, waitUntil } from "./processes";

export interface AccessKey {
    accessKeyId: string;
    secretAccessKey: string;
}

/** One request as moto's access log records it: the path is as werkzeug logs it (query string percent-decoded). */
export interface S3Request {
    method: string;
    path: string;
    status: number;
    /** The S3 operation, from method and query (what the suite asserts on). */
    operation: string;
}

/** The S3 operation of a logged path-style request. */
export function s3Operation(method: string, path: string): string {
    const [resource, query = ""] = path.split("?", 2);
    const params = new URLSearchParams(query);
    const isBucket = resource.replace(/^\/+|\/+$/g, "").split("/").length === 1;
    if (isBucket) {
        if (method === "GET") return params.get("list-type") === "2" ? "ListObjectsV2" : params.has("versions") ? "ListObjectVersions" : `GetBucket ${query}`;
        if (method === "POST" && params.has("delete")) return "DeleteObjects";
        return `${method}Bucket ${query}`.trim();
    }
    if (method === "POST") return params.has("uploads") ? "CreateMultipartUpload" : "CompleteMultipartUpload";
    if (method === "PUT") return params.has("partNumber") ? "UploadPart" : "PutObject";
    if (method === "DELETE") return params.has("uploadId") ? "AbortMultipartUpload" : "DeleteObject";
    return ({ GET: "GetObject", HEAD: "HeadObject" } as Record<string, string>)[method] ?? method;
}

/** The requests of werkzeug's access log in `log` (ANSI colours of refused requests stripped). */
export function loggedRequests(log: string): S3Request[] {
    const requests: S3Request[] = [];
    for (const line of log.replace(/\x1b\[[0-9;]*m/g, "").split("\n")) {
        const match = /"(GET|PUT|POST|DELETE|HEAD) (\S+) HTTP\/1\.[01]" (\d{3}) /.exec(line);
        if (match && !match[2].startsWith("/moto-api/")) {
            requests.push({ method: match[1], path: match[2], status: Number(match[3]), operation: s3Operation(match[1], match[2]) });
        }
    }
    return requests;
}

/** What the bucket owner sets on a backup bucket (backupPolicy.ts `BucketProtection`, lifecycle rules of every tenant). */
export interface BucketSetup {
    versioning?: unknown;
    objectLock?: unknown;
    lifecycleRules?: unknown[];
}

export interface MotoServer {
    readonly endpoint: string;
    readonly region: string;
    readonly child: Child;
    /** Runs the AWS CLI (Debian's) against moto with `key`, or unsigned setup credentials before `enforce`. */
    aws(args: string[], key?: AccessKey): Promise<RunResult>;
    /** An IAM user with `policy` attached inline, and its access key. Before `enforce` only. */
    user(name: string, policy: unknown): Promise<AccessKey>;
    /** From now on every request is authenticated and authorised. */
    enforce(): Promise<void>;
    /** Creates `bucket` in the server's region with what `setup` asks (object lock chosen at creation). Before `enforce`. */
    createBucket(bucket: string, setup?: BucketSetup): Promise<void>;
    /** The keys under `prefix` in `bucket`, sorted, listed with `key`. */
    keys(bucket: string, prefix: string, key: AccessKey): Promise<string[]>;
    /** The object at `name`, read with `key`; undefined when there is none (or `key` may not read it). */
    object(bucket: string, name: string, key: AccessKey, scratch: string): Promise<Buffer | undefined>;
    /** Every S3 request so far, in the order moto answered them. */
    requests(): S3Request[];
}

const setupKey: AccessKey = { accessKeyId: "setup", secretAccessKey: "setup" };

/** Where the sid root installs moto's server. */
export const motoServerBinary = "/usr/bin/moto_server";

export async function startMoto(resources: Resources, region = "eu-west-1"): Promise<MotoServer> {
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    const [command, args] = inOrthancRoot([motoServerBinary, "-H", "127.0.0.1", "-p", String(port)], orthancRoot("sid"));
    const child = resources.start("moto", command, args, {
        logFile: join(resources.tempDir("moto"), "moto.log"),
        env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", HOME: "/tmp", LANG: "C.UTF-8" },
    });
    await waitUntil("moto_server", child, () => portOpen(port), 30_000);
    const aws = (args: string[], key: AccessKey = setupKey) =>
        run("aws", ["--endpoint-url", endpoint, "--region", region, ...args], {
            env: {
                PATH: clientPath,
                HOME: "/tmp",
                AWS_ACCESS_KEY_ID: key.accessKeyId,
                AWS_SECRET_ACCESS_KEY: key.secretAccessKey,
                AWS_EC2_METADATA_DISABLED: "true",
                AWS_CONFIG_FILE: "/dev/null",
                AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
            },
        });
    const ok = async (args: string[], key?: AccessKey) => {
        const result = await aws(args, key);
        if (result.code !== 0) throw new Error(`aws ${args.join(" ")} failed: ${result.stderr}`);
        return result;
    };
    return {
        endpoint,
        region,
        child,
        aws,
        async user(name, policy) {
            await ok(["iam", "create-user", "--user-name", name]);
            await ok(["iam", "put-user-policy", "--user-name", name, "--policy-name", `${name}-backup`, "--policy-document", JSON.stringify(policy)]);
            const created = JSON.parse((await ok(["iam", "create-access-key", "--user-name", name])).stdout) as { AccessKey: { AccessKeyId: string; SecretAccessKey: string } };
            return { accessKeyId: created.AccessKey.AccessKeyId, secretAccessKey: created.AccessKey.SecretAccessKey };
        },
        async enforce() {
            const response = await fetch(`${endpoint}/moto-api/reset-auth`, { method: "POST", headers: { "Content-Type": "text/plain" }, body: "0" });
            if (!response.ok) throw new Error(`moto refused reset-auth: ${response.status} ${await response.text()}`);
        },
        async createBucket(bucket, setup = {}) {
            const lock = setup.objectLock === undefined ? [] : ["--object-lock-enabled-for-bucket"];
            await ok(["s3api", "create-bucket", "--bucket", bucket, ...lock, "--create-bucket-configuration", `LocationConstraint=${region}`]);
            if (setup.versioning !== undefined) {
                await ok(["s3api", "put-bucket-versioning", "--bucket", bucket, "--versioning-configuration", JSON.stringify(setup.versioning)]);
            }
            if (setup.objectLock !== undefined) {
                await ok(["s3api", "put-object-lock-configuration", "--bucket", bucket, "--object-lock-configuration", JSON.stringify(setup.objectLock)]);
            }
            if (setup.lifecycleRules !== undefined) {
                await ok(["s3api", "put-bucket-lifecycle-configuration", "--bucket", bucket, "--lifecycle-configuration", JSON.stringify({ Rules: setup.lifecycleRules })]);
            }
        },
        async keys(bucket, prefix, key) {
            const listed = await ok(["s3api", "list-objects-v2", "--bucket", bucket, "--prefix", prefix, "--output", "json"], key);
            const contents = (JSON.parse(listed.stdout || "{}") as { Contents?: { Key: string }[] }).Contents ?? [];
            return contents.map((entry) => entry.Key).sort();
        },
        async object(bucket, name, key, scratch) {
            const file = join(scratch, "object");
            const result = await aws(["s3api", "get-object", "--bucket", bucket, "--key", name, file], key);
            return result.code === 0 ? readFileSync(file) : undefined;
        },
        requests: () => loggedRequests(child.readLog()),
    };
}
