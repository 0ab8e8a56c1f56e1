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
        "Every container image the program defines (workloads, CloudNativePG clusters, catalogs and poolers), and every image it sets in Helm values, is pinned to a digest or a release tag (not 'latest', a word or a bare major version such as '17').",
        rules.imagesPinned,
    ),
    resourcePolicy(
        "container-resources",
        "Every container the program defines, and every resources block it passes to a chart, has CPU and memory requests and a memory limit.",
        rules.containerResources,
    ),
    resourcePolicy(
        "container-security-context",
        "Containers run as non-root, without privilege escalation, with a read-only root filesystem, all capabilities dropped and the RuntimeDefault seccomp profile; Helm values never switch off or loosen a chart's security context, nor enable a root helper container.",
        rules.containerSecurityContext,
    ),
    resourcePolicy(
        "no-secret-material-in-configmaps-or-env",
        "ConfigMaps, literal container environment values and the environment set in Helm values hold no secret material (Pulumi secrets, PEM private keys, credential-named keys, credentials inside a value); pod specs carry no Pulumi secret.",
        rules.noSecretMaterial,
    ),
    resourcePolicy(
        "no-credentials-on-command-lines",
        "No container command or args, and no command line in Helm values, carries a credential (a credential-named option with a literal value, a URL with a password, a private key).",
        rules.noCredentialsOnCommandLines,
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
    stackPolicy(
        "tenant-namespace-authorization-deny-by-default",
        "Every tenant namespace has an allow-nothing AuthorizationPolicy (no selector, no rules).",
        rules.tenantNamespaceAuthorizationDenyByDefault,
    ),
    resourcePolicy(
        "no-allow-all-network-policy",
        "No NetworkPolicy rule admits every peer on every port.",
        rules.noAllowAllNetworkPolicy,
    ),
    resourcePolicy(
        "no-allow-all-authorization-policy",
        "No ALLOW AuthorizationPolicy rule admits every request from every source.",
        rules.noAllowAllAuthorizationPolicy,
    ),
    resourcePolicy(
        "dicom-gateway-mutual-tls",
        "Istio Gateway servers that carry DICOM (protocol TLS, port 11112 or a port named dicom) use MUTUAL TLS with TLS 1.2 or newer, a dedicated client CA (caCertCredentialName ending in -cacert) and a list of admitted clients (verifyCertificateHash, verifyCertificateSpki or subjectAltNames).",
        rules.dicomGatewayMutualTls,
    ),
    resourcePolicy(
        "gateway-tls-minimum-version",
        "Every Istio Gateway server that terminates TLS states minProtocolVersion TLSV1_2 or TLSV1_3.",
        rules.gatewayTlsVersion,
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
