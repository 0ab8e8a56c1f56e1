/**
 * Runs the policy pack's own policy objects (policy/policies.ts) outside the Pulumi engine, over recorded resources,
 * the way the engine calls them: one `validateResource` call per resource, one `validateStack` call per stack.
 */
import type { ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, StackValidationArgs, StackValidationPolicy } from "@pulumi/policy";
import { policies } from "../../policy/policies";
import { PolicyInput } from "../../policy/rules";
import { RecordedResource } from "./mocks";

export interface Violation {
    policy: string;
    message: string;
    urn?: string;
}

class NotApplicable extends Error {}

export function policyInput(resource: RecordedResource): PolicyInput {
    return { type: resource.type, name: resource.name, urn: `urn:pulumi:test::korthweb::${resource.type}::${resource.name}`, props: resource.inputs };
}

function common() {
    return {
        stackTags: new Map<string, string>(),
        getConfig: <T extends object>() => ({}) as T,
        notApplicable: (reason?: string): never => {
            throw new NotApplicable(reason);
        },
    };
}

export async function runPack(inputs: PolicyInput[], only?: string): Promise<Violation[]> {
    const violations: Violation[] = [];
    for (const policy of policies.filter((p) => !only || p.name === only)) {
        const report = (urn?: string): ReportViolation => (message: string, reportedUrn?: string) => {
            violations.push({ policy: policy.name, message, urn: reportedUrn ?? urn });
        };
        try {
            if ("validateResource" in policy && policy.validateResource) {
                const validations = ([] as NonNullable<ResourceValidationPolicy["validateResource"]>[]).concat(policy.validateResource).flat();
                for (const input of inputs) {
                    const args = {
                        ...common(),
                        type: input.type,
                        name: input.name,
                        urn: input.urn ?? input.name,
                        props: input.props,
                        opts: {} as ResourceValidationArgs["opts"],
                        isType: () => false,
                        asType: () => undefined,
                    } as ResourceValidationArgs;
                    for (const validate of validations) await validate(args, report(args.urn));
                }
            }
            if ("validateStack" in policy) {
                const resources = inputs.map((input) => ({ ...input, urn: input.urn ?? input.name, opts: {}, dependencies: [], propertyDependencies: {} }));
                const args = { ...common(), resources } as unknown as StackValidationArgs;
                await (policy as StackValidationPolicy).validateStack(args, report());
            }
        } catch (error) {
            if (!(error instanceof NotApplicable)) throw error;
        }
    }
    return violations;
}
