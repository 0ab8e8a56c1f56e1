/**
 * The stack outputs the operator tools read (`scripts/run modality-cert`, `scripts/run smoke`): the JSON object that
 * `pulumi stack output --json --show-secrets` prints, checked against what index.ts exports.
 *
 * Where they come from: the file named by KORTHWEB_STACK_OUTPUTS when set (tests), else standard input (scripts/run
 * pipes the CLI's output in, so no secret is written to disk on the way).
 */
import { readFileSync } from "fs";
import { z } from "zod";

const port = z.int().min(1).max(65535);

/** Where a modality's certificates stand (components/tenant/tenant.ts, ModalityStatus). Absent from older stacks. */
const renewalSchema = z.object({
    expires: z.string().optional(),
    nextCertificateFrom: z.string().optional(),
    previous: z.object({ fingerprint: z.string(), expires: z.string().optional(), admittedUntil: z.string() }).optional(),
    notice: z.string().optional(),
});
export type Renewal = z.infer<typeof renewalSchema>;

const modalityCertificateSchema = z.object({
    aeTitle: z.string().min(1),
    renewal: renewalSchema.optional(),
    calledAeTitle: z.string().min(1),
    dicomHost: z.string().min(1),
    dicomPort: port,
    certificate: z.string().min(1),
    /** Absent for a modality that brought its own certificate request (it keeps its key). */
    privateKey: z.string().min(1).optional(),
    serverCa: z.string().min(1),
});
export type ModalityCertificate = z.infer<typeof modalityCertificateSchema>;

/** Where a tenant's users sign in (components/tenant/tenant.ts); absent with `identity.disabled` and on older stacks. */
const signInSchema = z.object({ issuer: z.string().min(1), clientId: z.string().min(1), redirectUri: z.string().min(1) });
export type SignIn = z.infer<typeof signInSchema>;

const tenantEndpointSchema = z.object({
    webUrl: z.string().min(1),
    /** The tenant's namespace (Orthanc's Service), for a break-glass port-forward. */
    namespace: z.string().min(1).optional(),
    dicomHost: z.string().min(1),
    dicomPort: port,
    ingressAddress: z.string(),
    nodePorts: z.object({ https: port.optional(), dicom: port.optional() }).default({}),
    /** Break-glass when `signIn` is present: admitted on Orthanc's web port from inside the cluster only. */
    adminUser: z.string().min(1),
    adminPassword: z.string(),
    signIn: signInSchema.optional(),
});
export type TenantEndpoint = z.infer<typeof tenantEndpointSchema>;

const stackOutputsSchema = z.object({
    rootCaCertificate: z.string().min(1),
    tenantEndpoints: z.record(z.string(), tenantEndpointSchema),
    modalityCertificates: z.record(z.string(), z.record(z.string(), modalityCertificateSchema)).default({}),
});
export type StackOutputs = z.infer<typeof stackOutputsSchema>;

/** Parses and checks the outputs; the error names the first output that does not fit. */
export function parseStackOutputs(text: string): StackOutputs {
    let value: unknown;
    try {
        value = JSON.parse(text);
    } catch (error) {
        throw new Error(`the stack outputs are not JSON (${(error as Error).message})`);
    }
    if (value && typeof value === "object" && Object.values(value).includes("[secret]")) {
        throw new Error("the stack outputs hide their secrets: read them with `pulumi stack output --json --show-secrets`");
    }
    const parsed = stackOutputsSchema.safeParse(value);
    if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new Error(`the stack outputs do not look like korthweb's: ${issue.path.join(".") || "(top level)"}: ${issue.message}`);
    }
    return parsed.data;
}

/** KORTHWEB_STACK_OUTPUTS's file when set, else standard input. */
export function readStackOutputs(env: NodeJS.ProcessEnv = process.env): StackOutputs {
    const file = env.KORTHWEB_STACK_OUTPUTS;
    if (!file && process.stdin.isTTY) {
        throw new Error("no stack outputs: set KORTHWEB_STACK_OUTPUTS to a JSON file, or pipe `pulumi stack output --json --show-secrets` in");
    }
    return parseStackOutputs(readFileSync(file || 0, "utf8"));
}

/** A word as a POSIX shell reads it: unquoted when safe, else in single quotes. */
export function shellQuote(word: string): string {
    return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Runs `main` as a command-line tool: an error becomes one `error:` line on stderr and exit status 1. */
export function runTool(main: () => Promise<number> | number): void {
    Promise.resolve()
        .then(main)
        .then(
            (status) => {
                process.exitCode = status;
            },
            (error: unknown) => {
                process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
                process.exitCode = 1;
            },
        );
}
