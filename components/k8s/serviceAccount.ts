/** Names Kubernetes and EKS give a ServiceAccount's identity, for the policies that must name it. */

/** The user name Kubernetes gives a ServiceAccount's tokens (and the `sub` of its projected tokens). */
export function serviceAccountUsername(namespaceName: string, serviceAccount: string): string {
    return `system:serviceaccount:${namespaceName}:${serviceAccount}`;
}

/**
 * The ServiceAccount annotation EKS's pod identity webhook reads (aws/amazon-eks-pod-identity-webhook
 * pkg/handler/handler.go): it gives every container of the account's pods AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE and
 * a projected token for audience sts.amazonaws.com, which the AWS SDKs exchange for the role's credentials.
 */
export const eksRoleArnAnnotation = "eks.amazonaws.com/role-arn";
