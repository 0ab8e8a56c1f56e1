/**
 * moto's server mode (`moto_server`) on 127.0.0.1: an S3 that checks SigV4 against IAM users' access keys and
 * authorises every request by the user's IAM policies, for proving what a tenant's rendered backup policy lets its key
 * pair do.
 *
 * What moto enforces, read in moto 5.2.1 (getmoto/moto `moto/core/authorization.py`, `moto/iam/access_control.py`,
 * `moto/moto_api/_internal/responses.py`): requests are unauthenticated until POST /moto-api/reset-auth sets
 * INITIAL_NO_AUTH_ACTION_COUNT (0: from the next request on); then each S3 request is signed by a known key and its
 * action (s3:GetObject, s3:PutObject, s3:DeleteObject, ...) is matched against the user's policies with the resource
 * `arn:aws:s3:::<bucket>/<key>`, an explicit Deny winning. It does NOT evaluate Condition keys such as `s3:prefix`
 * (they are ignored), and its signature check refuses ListObjectsV2 requests the AWS CLI signs correctly: listing is
 * judged by the policy model (tests/support/iamPolicyModel.ts), not here.
 *
 * moto is Debian sid's python3-moto (5.2.4, with python3-flask-cors, which its server needs and the package does not
 * declare), installed in the sid root scripts/install-orthanc-root builds, and run chrooted there as Orthanc is:
 * Debian bookworm, this project's CI host, has no moto, and PyPI is not reachable from every machine that runs the suite.
 */
import { join } from "path";
import { clientPath } from "./backup";
import { inOrthancRoot } from "./orthanc";
import { orthancRoot } from "./prerequisites";
import { Child, freePort, portOpen, Resources, run, RunResult, waitUntil } from "./processes";

export interface AccessKey {
    accessKeyId: string;
    secretAccessKey: string;
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
    };
}
