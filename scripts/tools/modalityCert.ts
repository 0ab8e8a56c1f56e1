/**
 * `scripts/run modality-cert <stack> <tenant> <modality> <dir>`: writes what one modality needs on the tenant's DICOM
 * port, from the stack outputs (see stackOutputs.ts for where they are read from), and prints the DCMTK lines to use.
 *
 *   node -r ts-node/register/transpile-only scripts/tools/modalityCert.ts <tenant> <modality> <dir>
 *
 * Files: <dir>/<modality>.key (the modality's private key, mode 600; none when the modality brought its own certificate
 * request and keeps its key), <dir>/<modality>.crt (its certificate, issued by
 * the tenant CA), <dir>/server-ca.crt (the tenant's trust anchor, which verifies the server: never the root, under
 * which every tenant's servers chain). No CA key is ever written: the
 * certificates are issued by `pulumi up` from the modalities listed in the stack configuration.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from "fs";
import { join, resolve } from "path";
import { ModalityCertificate, readStackOutputs, runTool, shellQuote, StackOutputs } from "./stackOutputs";

export interface OutputFile {
    /** File name inside the directory. */
    name: string;
    content: string;
    mode: number;
}

export interface ModalityFiles {
    files: OutputFile[];
    /** What to print: how to use the files. */
    instructions: string;
}

function list(names: string[]): string {
    return names.length > 0 ? names.join(", ") : "none";
}

/** The modality's issued certificate, or an error naming the tenants or modalities that exist. */
export function findModality(outputs: StackOutputs, tenant: string, modality: string): ModalityCertificate {
    const tenants = Object.keys(outputs.tenantEndpoints);
    if (!tenants.includes(tenant)) {
        throw new Error(`unknown tenant '${tenant}': the stack's tenants are ${list(tenants)}`);
    }
    const certificates = outputs.modalityCertificates[tenant] ?? {};
    const modalities = Object.keys(certificates);
    if (!modalities.includes(modality)) {
        throw new Error(
            modalities.length > 0
                ? `tenant '${tenant}' has no modality '${modality}': its modalities are ${list(modalities)}`
                : `tenant '${tenant}' has no modality '${modality}': it has none (list them under the tenant's \`modalities\` in the stack configuration and run \`pulumi up\`)`,
        );
    }
    return certificates[modality];
}

const withNewline = (pem: string): string => (pem.endsWith("\n") ? pem : `${pem}\n`);

/**
 * The files of a modality and the lines to use them with; `dir` is where they will be, as the lines show it. A
 * modality that brought its own certificate request has no key in the outputs: its own key goes where the lines say.
 */
export function modalityCertFiles(outputs: StackOutputs, tenant: string, modality: string, dir: string): ModalityFiles {
    const issued = findModality(outputs, tenant, modality);
    const certificates: OutputFile[] = [
        { name: `${modality}.crt`, content: withNewline(issued.certificate), mode: 0o644 },
        { name: "server-ca.crt", content: withNewline(issued.serverCa), mode: 0o644 },
    ];
    const files: OutputFile[] =
        issued.privateKey === undefined ? certificates : [{ name: `${modality}.key`, content: withNewline(issued.privateKey), mode: 0o600 }, ...certificates];
    const [crt, ca] = certificates.map((file) => shellQuote(join(dir, file.name)));
    const key = issued.privateKey === undefined ? `<the private key of ${modality}'s certificate request>` : shellQuote(join(dir, `${modality}.key`));
    const dicom = `-aet ${shellQuote(issued.aeTitle)} -aec ${shellQuote(issued.calledAeTitle)} +tls ${key} ${crt} +cf ${ca} ${shellQuote(issued.dicomHost)} ${issued.dicomPort}`;
    const endpoint = outputs.tenantEndpoints[tenant];
    const lines = [
        issued.privateKey === undefined
            ? `Wrote ${crt} and ${ca} for modality ${modality} of tenant ${tenant}; its key is its own (it brought a certificate request), never in the stack.`
            : `Wrote ${key} (private key, mode 600), ${crt} and ${ca} for modality ${modality} of tenant ${tenant}.`,
        "",
        `echoscu ${dicom}`,
        `storescu ${dicom} study/*.dcm`,
        // With sign-in the gateway admits no password: an API client's token (people sign in with a browser).
        endpoint.signIn
            ? `curl --cacert ${ca} -H "Authorization: Bearer $TOKEN" ${shellQuote(`${endpoint.webUrl}/system`)}   # TOKEN: an access token of one of ${tenant}'s API clients`
            : `curl --cacert ${ca} -u ${shellQuote(endpoint.adminUser)} ${shellQuote(`${endpoint.webUrl}/system`)}`,
    ];
    const { https, dicom: dicomNodePort } = endpoint.nodePorts;
    if (https !== undefined || dicomNodePort !== undefined) {
        lines.push(
            "",
            `The gateway of ${tenant} is a NodePort Service: from outside the cluster connect to a node's address` +
                `${dicomNodePort !== undefined ? `, DICOM on port ${dicomNodePort}` : ""}${https !== undefined ? `, HTTPS on port ${https}` : ""},` +
                ` with ${issued.dicomHost} and ${new URL(endpoint.webUrl).hostname} resolving to it (README, "Local cluster").`,
        );
    }
    lines.push("", ...renewalLines(outputs, tenant, modality));
    return { files, instructions: `${lines.join("\n")}\n` };
}

/**
 * Where this modality's certificate stands, then every modality of the stack the operator must act on (a new
 * certificate to install before the previous one is refused, or one that expires too soon).
 */
export function renewalLines(outputs: StackOutputs, tenant: string, modality: string): string[] {
    const renewal = outputs.modalityCertificates[tenant][modality].renewal;
    const lines: string[] = [];
    if (renewal?.expires !== undefined && renewal.nextCertificateFrom !== undefined) {
        lines.push(`This certificate expires ${renewal.expires}; the first \`pulumi up\` from ${renewal.nextCertificateFrom} issues the next one.`);
    }
    if (renewal?.previous !== undefined) {
        lines.push(`It is new: the previous certificate of ${modality} stays admitted until ${renewal.previous.admittedUntil}, not after.`);
    }
    const pending = Object.entries(outputs.modalityCertificates).flatMap(([t, modalities]) =>
        Object.entries(modalities).flatMap(([m, issued]) => (issued.renewal?.notice ? [`  ${t}/${m}: ${issued.renewal.notice}`] : [])),
    );
    lines.push(pending.length > 0 ? "Modalities whose certificate needs you:" : "No modality of the stack needs a new certificate installed.", ...pending);
    return lines;
}

/**
 * Writes each file whole with its mode: to a temporary name first (created with the mode, so the key is never readable
 * by others, not even for a moment, and an existing file's looser mode is not inherited), then renamed into place.
 */
export function writeFiles(dir: string, files: OutputFile[]): void {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const file of files) {
        const target = join(dir, file.name);
        const temporary = join(dir, `.${file.name}.${process.pid}.new`);
        try {
            writeFileSync(temporary, file.content, { mode: file.mode, flag: "wx" });
            renameSync(temporary, target);
        } finally {
            rmSync(temporary, { force: true });
        }
    }
}

function main(): number {
    const [tenant, modality, dir] = process.argv.slice(2);
    if (!tenant || !modality || !dir || process.argv.length !== 5) {
        throw new Error("usage: modalityCert.ts <tenant> <modality> <dir> (stack outputs on stdin or in KORTHWEB_STACK_OUTPUTS)");
    }
    const target = resolve(dir);
    const { files, instructions } = modalityCertFiles(readStackOutputs(), tenant, modality, target);
    writeFiles(target, files);
    process.stdout.write(instructions);
    return 0;
}

if (require.main === module) {
    runTool(main);
}
