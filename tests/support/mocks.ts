/**
 * The one mocks module of the test suite: a Pulumi mocks implementation that records every resource the program
 * registers, with fake but well-formed outputs for the providers whose outputs the program reads.
 */
import * as pulumi from "@pulumi/pulumi";

export interface RecordedResource {
    type: string;
    name: string;
    inputs: Record<string, any>;
    /** Set (non-empty) when the program read an existing resource (`Resource.get`) instead of creating one. */
    id?: string;
    /** Resource options, recorded when the whole program is rendered (tests/support/renderStack.ts). */
    options?: { protect: boolean; dependsOn: string[]; parent?: string };
}

/** Marker Pulumi puts on secret values it serialises: `{[secretSignatureKey]: secretSignature, value}`. */
export const secretSignatureKey = "4dabf18193072939515e22adb298388d";
export const secretSignature = "1b47061264138c4ac30d75fd1eb44270";

export class RecordingMocks implements pulumi.runtime.Mocks {
    readonly resources: RecordedResource[] = [];

    newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, any> } {
        this.resources.push({ type: args.type, name: args.name, inputs: args.inputs, id: args.id });
        return { id: args.id ?? `${args.name}-id`, state: { ...args.inputs, ...fakeOutputs(args.type, args.name) } };
    }

    call(args: pulumi.runtime.MockCallArgs): Record<string, any> {
        return args.inputs;
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
        case "random:index/randomPassword:RandomPassword":
            return { result: `mockpassword${name.replace(/[^a-zA-Z0-9]/g, "")}` };
        case "kubernetes:core/v1:Service":
            return { status: { loadBalancer: { ingress: [{ ip: "203.0.113.10" }] } } };
        default:
            return {};
    }
}

export function promiseOf<T>(output: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) => output.apply(resolve));
}

export function isSecretValue(value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as any)[secretSignatureKey] === secretSignature;
}

/** The plain value of a possibly secret-wrapped input. */
export function reveal<T = any>(value: unknown): T {
    return (isSecretValue(value) ? (value as any).value : value) as T;
}

/** A value with every secret wrapper inside it removed, for assertions on content. */
export function plain<T = any>(value: unknown): T {
    const revealed = reveal(value);
    if (Array.isArray(revealed)) {
        return revealed.map(plain) as T;
    }
    if (revealed !== null && typeof revealed === "object") {
        return Object.fromEntries(Object.entries(revealed).map(([k, v]) => [k, plain(v)])) as T;
    }
    return revealed as T;
}

/** Whether a value is a secret or sits inside one (Pulumi marks a whole object secret when a member is). */
export function secretAt(container: unknown, key: string): boolean {
    if (isSecretValue(container)) {
        return true;
    }
    return isSecretValue((container as Record<string, unknown>)?.[key]);
}
