/**
 * The korthweb policies: each rule of rules.ts as a mandatory CrossGuard policy. Kept apart from index.ts so tests can
 * run the very objects the pack serves without starting the pack's gRPC server.
 */
import type { ReportViolation, ResourceValidationPolicy, StackValidationPolicy } from "@pulumi/policy";
import * as rules from "./rules";

function resourcePolicy(name: string, description: string, rule: rules.ResourceRule): ResourceValidationPolicy {
    return {
        name,
        description,
        enforcementLevel: "mandatory",
        validateResource: (args, reportViolation: ReportViolation) => {
            for (const message of rule({ type: args.type, name: args.name, urn: args.urn, props: args.props })) {
                reportViolation(message);
            }
        },
    };
}

function stackPolicy(name: string, description: string, rule: rules.StackRule): StackValidationPolicy {
    return {
        name,
        description,
        enforcementLevel: "mandatory",
        validateStack: (args, reportViolation: ReportViolation) => {
            const resources = args.resources.map((r) => ({ type: r.type, name: r.name, urn: r.urn, props: r.props }));
            for (const violation of rule(resources)) {
                reportViolation(violation.message, violation.resource?.urn);
            }
        },
    };
}

export const policies: (ResourceValidationPolicy | StackValidationPolicy)[] = [
    resourcePolicy(
        "images-pinned",
        "Every container image the program defines, and every image it sets in Helm values, is pinned to a tag other than 'latest' or to a digest.",
        rules.imagesPinned,
    ),
    resourcePolicy(
        "container-resources",
        "Every container the program defines, and every resources block it passes to a chart, has CPU and memory requests and a memory limit.",
        rules.containerResources,
    ),
    resourcePolicy(
        "container-security-context",
        "Containers run as non-root, without privilege escalation, with a read-only root filesystem, all capabilities dropped and the RuntimeDefault seccomp profile; Helm values never loosen a chart's security context.",
        rules.containerSecurityContext,
    ),
    resourcePolicy(
        "no-secret-material-in-configmaps-or-env",
        "ConfigMaps and literal container environment values hold no secret material (Pulumi secrets, PEM private keys, credential-named keys); pod specs carry no Pulumi secret.",
        rules.noSecretMaterial,
    ),
    resourcePolicy(
        "peer-authentication-strict",
        "No PeerAuthentication accepts plaintext: mtls.mode and every portLevelMtls mode are STRICT (or inherited).",
        rules.peerAuthenticationStrict,
    ),
    stackPolicy(
        "tenant-namespace-strict-mtls",
        "Every tenant namespace has sidecar injection enabled and a namespace-wide PeerAuthentication in STRICT mode.",
        rules.tenantNamespaceStrictMtls,
    ),
    stackPolicy(
        "tenant-namespace-network-policy",
        "Every tenant namespace has a default-deny NetworkPolicy for ingress and egress.",
        rules.tenantNamespaceNetworkPolicy,
    ),
    resourcePolicy(
        "dicom-gateway-mutual-tls",
        "Istio Gateway servers that carry DICOM (protocol TLS, port 11112 or a port named dicom) use MUTUAL TLS with TLS 1.2 or newer.",
        rules.dicomGatewayMutualTls,
    ),
    stackPolicy(
        "pdb-for-replicated-deployments",
        "Every Deployment with more than one replica (or an autoscaler minimum above one) has a PodDisruptionBudget selecting its pods.",
        rules.disruptionBudgetForReplicatedDeployments,
    ),
    resourcePolicy(
        "helm-release-pinned-and-named",
        "Every Helm release pins an exact chart version and has a fixed release name.",
        rules.helmReleasePinnedAndNamed,
    ),
];
