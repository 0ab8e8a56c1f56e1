/**
 * When terraform-provider-tls, which @pulumi/tls 5.6.1 runs, replaces a certificate on `pulumi up`. Read in
 * hashicorp/terraform-provider-tls at d72d90e1 (main, 2026-04-28; @pulumi/tls 5.6.1's provider/go.mod pins the
 * pseudo-version v1.2.1-0.20260513075833-609226f53114, a later commit not in the stored mirror):
 * - internal/provider/common_cert.go, modifyPlanIfCertificateReadyForRenewal: when now >= validity_end_time -
 *   early_renewal_hours, `ready_for_renewal` becomes unknown and is added to RequiresReplace: the resource is replaced
 *   under its name, with a new certificate.
 * - internal/provider/attribute_plan_modifier_bool/default_value.go: `ready_for_renewal` is true from the start when
 *   validity_period_hours is 0 or early_renewal_hours >= validity_period_hours.
 * - validity_end_time = validity_start_time + validity_period_hours (common_cert.go: NotAfter = NotBefore + period).
 * - ca_cert_pem, ca_private_key_pem and cert_request_pem replace the certificate when they change
 *   (requireReplaceIfStateContainsPEMString); early_renewal_hours does not (an in-place update).
 */

export interface IssuedCertificateState {
    /** When the certificate was issued (validity_start_time). */
    issuedAt: Date;
    validityPeriodHours: number;
    earlyRenewalHours: number;
}

/** Whether a `pulumi up` at `now` that still declares this certificate replaces it. */
export function replacedOnUp(certificate: IssuedCertificateState, now: Date): boolean {
    const { validityPeriodHours, earlyRenewalHours } = certificate;
    if (validityPeriodHours === 0 || earlyRenewalHours >= validityPeriodHours) {
        return true;
    }
    const renewalFrom = certificate.issuedAt.getTime() + (validityPeriodHours - earlyRenewalHours) * 3_600_000;
    return now.getTime() >= renewalFrom;
}
