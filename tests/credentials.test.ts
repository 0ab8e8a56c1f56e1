/**
 * What a stack reader sees in the stack outputs: every private key and password the program makes (modality keys,
 * generated passwords) only inside a secret output, which `pulumi stack output` shows as [secret] without
 * --show-secrets and the state holds encrypted. Checked on every rendered stack by value, not by output name, so that a
 * new output holding one is caught too.
 */
import { strict as assert } from "assert";
import { allStacks, parsedStackFile, renderStack } from "./support/stacks";

/** The paths of the strings under `value` that match `pattern` and are not inside a secret output. */
function exposed(value: unknown, pattern: RegExp, at = ""): string[] {
    if (typeof value === "string") return pattern.test(value) ? [at] : [];
    if (value === null || typeof value !== "object") return [];
    if ((value as { secret?: unknown }).secret === true && "value" in value) return [];
    return Object.entries(value).flatMap(([key, inner]) => exposed(inner, pattern, at ? `${at}.${key}` : key));
}

// The mocks' private keys are PEM "PRIVATE KEY" blocks and their generated passwords start with "mockpassword".
const credential = /PRIVATE KEY|^mockpassword/;

describe("stack outputs", () => {
    for (const stack of allStacks) {
        it(`${stack}: every private key and generated password is in a secret output`, async () => {
            const { outputs, error } = await renderStack(stack);
            assert.equal(error, undefined);
            const modalities = parsedStackFile(stack).tenants.flatMap((tenant) => tenant.modalities).length;
            const keys = JSON.stringify(outputs).match(/BEGIN PRIVATE KEY/g) ?? [];
            assert.ok(keys.length >= modalities, "the stack outputs hold the modality keys the program makes (else this checks nothing)");
            assert.deepEqual(exposed(outputs, credential), []);
        });
    }

    it("the check sees a key outside a secret", () => {
        const outputs = { a: { secret: true, value: { k: "-----BEGIN PRIVATE KEY-----" } }, b: [{ k: "-----BEGIN PRIVATE KEY-----" }], c: "mockpasswordx" };
        assert.deepEqual(exposed(outputs, credential), ["b.0.k", "c"]);
    });
});
