/**
 * The one mocks module of the test suite: a Pulumi mocks implementation that records every resource the program
 * registers, with fake but well-formed outputs for the providers whose outputs the program reads.
 */
import * as pulumi from "@pulumi/pulumi";
// How Pulumi's wire protocol says "not known until the resource exists".
import { unknownValue } from "@pulumi/pulumi/runtime/rpc";
import { isWrappedSecret } from "../../policy/rules";

export interface RecordedResource {
    type: string;
    name: string;
    inputs: Record<string, any>;
    /** Set (non-empty) when the program read an existing resource (`Resource.get`) instead of creating one. */
    id?: string;
    /** Resource options, recorded when the whole program is rendered (tests/support/renderStack.ts). */
    options?: { protect: boolean; dependsOn: string[]; ignoreChanges: string[]; deleteBeforeReplace: boolean; parent?: string };
}

/** Marker Pulumi puts on secret values it serialises: `{[secretSignatureKey]: secretSignature, value}`. */
export const secretSignatureKey = pulumi.runtime.specialSigKey;
export const secretSignature = pulumi.runtime.specialSecretSig;


export class RecordingMocks implements pulumi.runtime.Mocks {
    readonly resources: RecordedResource[] = [];

    /**
     * @param firstPreview answer as the engine does in the first preview of an empty stack: nothing exists yet, so
     * every ID and every output a provider computes (generated passwords, keys, certificates, release status, Service
     * addresses) is unknown, and only the program's own inputs are known.
     */
    constructor(readonly firstPreview = false) {}

    newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, any> } {
        this.resources.push({ type: args.type, name: args.name, inputs: args.inputs, id: args.id });
        const computed = fakeOutputs(args.type, args.name);
        if (this.firstPreview) {
            const unknown = Object.fromEntries(Object.keys(computed).map((key) => [key, unknownValue]));
            // An empty ID is how a preview reports an ID not known yet; a read keeps the ID it was asked for.
            return { id: args.id ?? "", state: { ...args.inputs, ...unknown } };
        }
        return { id: args.id ?? `${args.name}-id`, state: { ...args.inputs, ...computed } };
    }

    call(args: pulumi.runtime.MockCallArgs): Record<string, any> {
        return args.inputs;
    }

    /** Registrations are asynchronous: waits until none has arrived for `quietMs`. */
    async settled(quietMs: number): Promise<void> {
        let last = -1;
        while (this.resources.length !== last) {
            last = this.resources.length;
            await new Promise((done) => setTimeout(done, quietMs));
        }
    }
}

/** Distinct, recognisable values per resource, so a test can search the whole stack for where a secret ended up. */
export function fakeOutputs(type: string, name: string): Record<string, unknown> {
    const pem = (label: string) => `-----BEGIN ${label}-----\nMOCK${name}\n-----END ${label}-----\n`;
    switch (type) {
        case "tls:index/privateKey:PrivateKey":
            return { privateKeyPem: pem("PRIVATE KEY"), publicKeyPem: pem("PUBLIC KEY") };
        case "tls:index/certRequest:CertRequest":
            return { certRequestPem: pem("CERTIFICATE REQUEST") };
        case "tls:index/selfSignedCert:SelfSignedCert":
        case "tls:index/locallySignedCert:LocallySignedCert":
            return { certPem: pem("CERTIFICATE") };
        case "random:index/randomBytes:RandomBytes":
            return { base64: Buffer.from(`mockbytes${name}`.padEnd(32, "x").slice(0, 32)).toString("base64"), hex: Buffer.from(name).toString("hex") };
        case "random:index/randomPassword:RandomPassword":
            return { result: `mockpassword${name.replace(/[^a-zA-Z0-9]/g, "")}` };
        case "kubernetes:core/v1:Service":
            return { status: { loadBalancer: { ingress: [{ ip: "203.0.113.10" }] } }, spec: { clusterIP: "10.96.0.10" } };
        case "kubernetes:helm.sh/v3:Release":
            return { status: { name: name, namespace: "mock", revision: 1, status: "deployed" } };
        default:
            return {};
    }
}

export function promiseOf<T>(output: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) => output.apply(resolve));
}

/** Secret wrappers are read the same way the policy pack reads them. */
export { isWrappedSecret as isSecretValue, plain } from "../../policy/rules";

/** The plain value of a possibly secret-wrapped input (one level). */
export function reveal<T = any>(value: unknown): T {
    return (isWrappedSecret(value) ? (value as any).value : value) as T;
}

/** Whether a value is a secret or sits inside one (Pulumi marks a whole object secret when a member is). */
export function secretAt(container: unknown, key: string): boolean {
    return isWrappedSecret(container) || isWrappedSecret((container as Record<string, unknown>)?.[key]);
}
