/**
 * When a modality gets a new client certificate, and how long the one before stays admitted: pure arithmetic on the
 * clock, so the program decides without reading its state.
 *
 * Why periods: @pulumi/tls (terraform-provider-tls) replaces a certificate under the same resource name once it is
 * expired or inside its `early_renewal_hours` (`ready_for_renewal` is a RequiresReplace attribute,
 * internal/provider/common_cert.go, modifyPlanIfCertificateReadyForRenewal), and the replacement's fingerprint
 * replaces the old one on the DICOM port's allow-list: the modality would be cut off the moment `pulumi up` renewed it.
 * Instead, time is cut into renewal periods of `validity - overlap` hours counted from the Unix epoch; each period has
 * its own certificate (its resource name carries the period), issued with early renewal off, by the first `up` in that
 * period. A certificate issued during period k lives `validity` hours, so at least until start(k+1) + overlap; while
 * `now < start(k) + overlap` the program still declares period k-1's certificate, which is therefore still valid and is
 * never re-issued, and its fingerprint stays admitted next to the new one. After that it is dropped. A certificate
 * is never declared past the moment it is known to be valid, so the provider never re-issues one under an old name.
 */

/** Whole hours; certificate validities are configured in hours. */
const hourMs = 3_600_000;

export interface RenewalSchedule {
    /** Life of each certificate (pki.modalityCertificateValidityHours). */
    validityHours: number;
    /** How long the previous certificate stays admitted once the next one exists (pki.modalityCertificateOverlapHours). */
    overlapHours: number;
}

export interface CertificatePeriods {
    /** The current period's index (hours since the epoch divided by the period length). */
    current: number;
    /** When the current period began: its certificate is issued by the first `pulumi up` from then on. */
    currentStart: Date;
    /** When the next period begins: the first `pulumi up` from then on issues the next certificate. */
    nextStart: Date;
    /** The previous period's certificate, while it is still admitted: until `admittedUntil`, then dropped. */
    previous?: { period: number; admittedUntil: Date };
}

/** Hours a renewal period lasts: the validity minus the overlap. */
export function renewalPeriodHours(schedule: RenewalSchedule): number {
    return schedule.validityHours - schedule.overlapHours;
}

/**
 * The periods whose certificates exist at `now`. Requires 0 < overlap <= validity / 2 (pki validation), so that at most
 * the previous period's certificate overlaps the current one.
 */
export function certificatePeriods(schedule: RenewalSchedule, now: Date): CertificatePeriods {
    const period = renewalPeriodHours(schedule);
    if (!(schedule.overlapHours > 0 && period >= schedule.overlapHours)) {
        throw new Error(`overlap ${schedule.overlapHours}h must be positive and at most half the validity ${schedule.validityHours}h`);
    }
    const hours = now.getTime() / hourMs;
    const current = Math.floor(hours / period);
    const start = (index: number) => new Date(index * period * hourMs);
    const admittedUntil = new Date((current * period + schedule.overlapHours) * hourMs);
    return {
        current,
        currentStart: start(current),
        nextStart: start(current + 1),
        previous: now < admittedUntil ? { period: current - 1, admittedUntil } : undefined,
    };
}
