/**
 * Validates Kubernetes objects against the upstream schemas published as `kubernetes-models` (core groups) and
 * `@kubernetes-models/{istio,cert-manager,prometheus-operator}` (custom resources).
 *
 * Those packages are ES modules with `import`-only exports, so they are loaded with a real dynamic `import()` (one that
 * TypeScript's CommonJS output does not turn into `require`).
 *
 * Their validators are ajv code generated from the OpenAPI schemas. They check types, enums, formats and required
 * fields, but ignore unknown properties (the Kubernetes schemas do not forbid them), so a misspelt field would pass.
 * `unknownFields` closes that gap by probing: it replaces one property at a time with a value no schema type admits (a
 * function) and re-runs the validator. A property the schema knows produces an error at its own path; one it does not
 * know produces none and is reported as unknown.
 */
import { ciliumPolicyProblems } from "../upstream/ciliumPolicy";
import { crdObjectProblems, crdSchemas } from "./crdSchemaValidation";
import { RecordedResource, isSecretValue } from "./mocks";

type Validator = { prototype: { validate(this: unknown): void }; apiVersion: string; kind: string };

/** Packages holding the model classes, in lookup order. */
export const modelPackages = ["kubernetes-models", "@kubernetes-models/istio", "@kubernetes-models/cert-manager", "@kubernetes-models/prometheus-operator"];

const importEsm = new Function("specifier", "return import(specifier)") as (specifier: string) => Promise<Record<string, unknown>>;

const models = new Map<string, Promise<Validator | undefined>>();

/**
 * The model class of `apiVersion`/`kind`, from the first package that has one. Each package exports a kind at
 * `<package>/<apiVersion>/<Kind>` (their package.json `exports`), so only the kinds asked for are loaded: importing
 * every package's index took about a second of the unit suite.
 */
export function modelFor(apiVersion: string, kind: string): Promise<Validator | undefined> {
    const key = `${apiVersion}/${kind}`;
    let model = models.get(key);
    if (!model) {
        model = (async () => {
            for (const specifier of modelPackages) {
                let exports: Record<string, unknown>;
                try {
                    exports = await importEsm(`${specifier}/${apiVersion}/${kind}`);
                } catch (error) {
                    const code = (error as { code?: string }).code;
                    if (code === "ERR_PACKAGE_PATH_NOT_EXPORTED" || code === "ERR_MODULE_NOT_FOUND") continue;
                    throw error;
                }
                const found = Object.values(exports).find((value) => {
                    const candidate = value as Partial<Validator>;
                    return typeof value === "function" && candidate.apiVersion === apiVersion && candidate.kind === kind;
                });
                if (found) return found as Validator;
            }
            return undefined;
        })();
        models.set(key, model);
    }
    return model;
}

/** apiVersion and kind from a Pulumi type token `kubernetes:<group>/<version>:<Kind>` (`core` is the empty group). */
export function typeMeta(type: string): { apiVersion: string; kind: string } | undefined {
    const match = /^kubernetes:([^/:]+)\/([^:]+):(.+)$/.exec(type);
    if (!match) return undefined;
    const [, group, version, kind] = match;
    return { apiVersion: group === "core" ? version : `${group}/${version}`, kind };
}

/** A deep copy with secret wrappers replaced by their values. */
export function revealDeep(value: unknown): any {
    if (isSecretValue(value)) return revealDeep((value as any).value);
    if (Array.isArray(value)) return value.map(revealDeep);
    if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revealDeep(v)]));
    return value;
}

/** The object as the API server would receive it: the recorded inputs, revealed, with apiVersion and kind. */
export function manifestOf(resource: RecordedResource): Record<string, any> {
    const meta = typeMeta(resource.type);
    const manifest = revealDeep(resource.inputs) as Record<string, any>;
    return { ...manifest, apiVersion: manifest.apiVersion ?? meta?.apiVersion, kind: manifest.kind ?? meta?.kind };
}

/** Objects the program creates (not those it only reads with `.get`, whose inputs are empty). */
export function createdObjects(resources: RecordedResource[]): RecordedResource[] {
    return resources.filter(
        (r) => r.type.startsWith("kubernetes:") && !r.type.startsWith("kubernetes:helm.sh/") && r.type !== "pulumi:providers:kubernetes" && !r.id,
    );
}

interface AjvError {
    instancePath: string;
    message?: string;
    keyword?: string;
    params?: unknown;
}

function run(model: Validator, manifest: unknown): AjvError[] {
    try {
        model.prototype.validate.call(manifest);
        return [];
    } catch (error) {
        const errors = (error as { errors?: AjvError[] }).errors;
        if (!errors) throw error;
        return errors;
    }
}

const pointer = (segments: (string | number)[]) => segments.map((s) => `/${String(s).replace(/~/g, "~0").replace(/\//g, "~1")}`).join("");
const probe = function schemaProbe() {};

/** Paths (JSON pointers) of properties the schema does not define. */
export function unknownFields(model: Validator, manifest: Record<string, any>): string[] {
    const unknown: string[] = [];
    const visit = (container: any, path: (string | number)[]) => {
        const keys = Array.isArray(container) ? container.map((_, i) => i) : Object.keys(container);
        for (const key of keys) {
            const value = container[key];
            const here = [...path, key];
            const at = pointer(here);
            if (!Array.isArray(container)) {
                container[key] = probe;
                const known = run(model, manifest).some((e) => e.instancePath === at || e.instancePath.startsWith(`${at}/`));
                container[key] = value;
                if (!known) {
                    unknown.push(at);
                    continue;
                }
            }
            if (value !== null && typeof value === "object") visit(value, here);
        }
    };
    visit(manifest, []);
    return unknown;
}

export interface SchemaReport {
    /** `<type> <name> (<namespace>/<name>)` */
    object: string;
    apiVersion: string;
    kind: string;
    /** Schema errors, then unknown fields; empty when the object is valid. */
    problems: string[];
    /** No model for this apiVersion/kind. */
    noSchema: boolean;
}

export async function validateObjects(resources: RecordedResource[]): Promise<SchemaReport[]> {
    const manifests = createdObjects(resources).map((resource) => ({ resource, manifest: manifestOf(resource) }));
    const found = new Map<string, Validator | undefined>();
    for (const { manifest } of manifests) {
        const key = `${manifest.apiVersion}/${manifest.kind}`;
        if (!found.has(key)) found.set(key, await modelFor(manifest.apiVersion, manifest.kind));
    }
    return manifests.map(({ resource, manifest }) => {
        const object = `${resource.type} ${resource.name} (${manifest.metadata?.namespace ? `${manifest.metadata.namespace}/` : ""}${manifest.metadata?.name})`;
        const model = found.get(`${manifest.apiVersion}/${manifest.kind}`);
        if (!model) {
            // CloudNativePG and its Barman Cloud plugin ship no npm models: their CRDs' own schemas (crdSchemaValidation.ts).
            if (`${manifest.apiVersion}/${manifest.kind}` in crdSchemas) {
                return { object, apiVersion: manifest.apiVersion, kind: manifest.kind, problems: crdObjectProblems(manifest), noSchema: false };
            }
            // Cilium ships no npm models and its CRD is not here: a model of the fields (tests/upstream/ciliumPolicy.ts).
            if (manifest.apiVersion === "cilium.io/v2" && manifest.kind === "CiliumNetworkPolicy") {
                return { object, apiVersion: manifest.apiVersion, kind: manifest.kind, problems: ciliumPolicyProblems(manifest as any), noSchema: false };
            }
            return { object, apiVersion: manifest.apiVersion, kind: manifest.kind, problems: [], noSchema: true };
        }
        const problems = [
            ...run(model, manifest).map((e) => `${e.instancePath || "/"} ${e.message ?? e.keyword} ${e.params ? JSON.stringify(e.params) : ""}`.trim()),
            ...unknownFields(model, manifest).map((path) => `${path} is not a field of ${manifest.apiVersion} ${manifest.kind}`),
        ];
        return { object, apiVersion: manifest.apiVersion, kind: manifest.kind, problems, noSchema: false };
    });
}
