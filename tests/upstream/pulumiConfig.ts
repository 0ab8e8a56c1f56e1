/**
 * How the Pulumi CLI hands a stack file's configuration to a Node.js program, modelled from its sources:
 *
 * - pulumi/pulumi v3.259.0 (the mirror's newest tag; the project pins CLI and SDK 3.270.0)
 *   sdk/go/common/resource/config/object.go: a map whose single key is `secure` holding a string is an encrypted value
 *   ("maps with the single key \"secure\" are reserved"); an object or array is `Secure()` as soon as any value under
 *   it is; `MarshalString` gives a string as it is and anything else as JSON. value.go `Value` decrypts every secure
 *   value in place before marshalling.
 * - map.go `SecureKeys`: the top-level keys whose value is `Secure()`. pkg/resource/deploy/source_eval.go sends them in
 *   the RunRequest's `configSecretKeys`; sdk/nodejs/cmd/pulumi-language-nodejs/main.go exports the decrypted map as
 *   PULUMI_CONFIG and those keys as PULUMI_CONFIG_SECRET_KEYS.
 * - @pulumi/pulumi 3.270.0 (installed) runtime/config.js: `allConfig()` is PULUMI_CONFIG's map; `isConfigSecret(key)`
 *   is whether the whole key is in PULUMI_CONFIG_SECRET_KEYS. Nothing finer reaches the program.
 */
export interface DeliveredConfig {
    /** What `pulumi.runtime.allConfig()` returns. */
    allConfig: Record<string, string>;
    /** What `isConfigSecret` answers true for. */
    secretKeys: string[];
}

export function isSecureValue(node: unknown): node is { secure: string } {
    return node !== null && typeof node === "object" && !Array.isArray(node) && Object.keys(node).length === 1 && typeof (node as { secure?: unknown }).secure === "string";
}

function isSecure(node: unknown): boolean {
    if (isSecureValue(node)) return true;
    if (Array.isArray(node)) return node.some(isSecure);
    if (node !== null && typeof node === "object") return Object.values(node).some(isSecure);
    return false;
}

function decrypted(node: unknown, decrypt: (ciphertext: string) => string): unknown {
    if (isSecureValue(node)) return decrypt(node.secure);
    if (Array.isArray(node)) return node.map((element) => decrypted(element, decrypt));
    if (node !== null && typeof node === "object") return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, decrypted(value, decrypt)]));
    return node;
}

/** The program's view of a stack file's `config:` map. */
export function deliveredConfig(stackFileConfig: Record<string, unknown>, decrypt: (ciphertext: string) => string): DeliveredConfig {
    const allConfig: Record<string, string> = {};
    const secretKeys: string[] = [];
    for (const [key, node] of Object.entries(stackFileConfig)) {
        const plain = decrypted(node, decrypt);
        allConfig[key] = typeof plain === "string" ? plain : JSON.stringify(plain);
        if (isSecure(node)) secretKeys.push(key);
    }
    return { allConfig, secretKeys };
}
