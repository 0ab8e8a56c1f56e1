/**
 * The soak's arithmetic, pure so that the unit suite checks it without booting anything: latency percentiles, whether
 * a replica's memory stayed flat, and which instances a `storescu` log acknowledges.
 */

/** Nearest-rank percentile (the smallest value with at least p% of the values at or below it); NaN for none. */
export function percentile(values: readonly number[], p: number): number {
    if (values.length === 0) {
        return NaN;
    }
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export interface LatencySummary {
    count: number;
    p50Ms: number;
    p95Ms: number;
    p99Ms: number;
    maxMs: number;
}

export function summarizeLatencies(valuesMs: readonly number[]): LatencySummary {
    const round = (value: number) => Number(value.toFixed(1));
    return {
        count: valuesMs.length,
        p50Ms: round(percentile(valuesMs, 50)),
        p95Ms: round(percentile(valuesMs, 95)),
        p99Ms: round(percentile(valuesMs, 99)),
        maxMs: round(percentile(valuesMs, 100)),
    };
}

/** One reading of a process's resident memory, `seconds` after the soak started. */
export interface MemorySample {
    seconds: number;
    mib: number;
}

/**
 * When memory counts as flat. A process warms up (caches, connection pools, allocator arenas), so the first quarter
 * is ignored: the median of the last quarter of the samples is compared with the median of the second quarter, and
 * may exceed it by `maxGrowthMiB` or by `maxGrowthFraction` of it, whichever is larger. Medians rather than single
 * readings: one large request (a WADO-RS retrieval) lifts the resident size for a moment without being a leak.
 */
export interface FlatnessThreshold {
    maxGrowthMiB: number;
    maxGrowthFraction: number;
}

export interface MemoryTrend {
    samples: number;
    firstMiB: number;
    lastMiB: number;
    maxMiB: number;
    secondQuarterMedianMiB: number;
    lastQuarterMedianMiB: number;
    /** lastQuarterMedianMiB - secondQuarterMedianMiB. */
    growthMiB: number;
    /** The growth allowed by the threshold, in MiB. */
    allowedGrowthMiB: number;
    /** Least-squares slope over the second half of the samples, MiB per minute (reported, not judged). */
    secondHalfSlopeMiBPerMinute: number;
    /** undefined when there are too few samples to judge (fewer than 8). */
    flat: boolean | undefined;
}

function median(values: readonly number[]): number {
    return percentile(values, 50);
}

/** Slope of the least-squares line through (x, y), per unit of x; 0 for fewer than two distinct x. */
export function slope(points: readonly { x: number; y: number }[]): number {
    const n = points.length;
    const meanX = points.reduce((sum, point) => sum + point.x, 0) / n;
    const meanY = points.reduce((sum, point) => sum + point.y, 0) / n;
    const sxx = points.reduce((sum, point) => sum + (point.x - meanX) ** 2, 0);
    const sxy = points.reduce((sum, point) => sum + (point.x - meanX) * (point.y - meanY), 0);
    return n < 2 || sxx === 0 ? 0 : sxy / sxx;
}

/** The trend of one replica's samples (in time order) against the threshold. */
export function memoryTrend(samples: readonly MemorySample[], threshold: FlatnessThreshold): MemoryTrend {
    if (samples.length === 0) {
        throw new Error("no memory samples");
    }
    const quarter = (index: number) => samples.slice(Math.floor((index * samples.length) / 4), Math.floor(((index + 1) * samples.length) / 4)).map((s) => s.mib);
    const second = samples.length >= 8 ? median(quarter(1)) : NaN;
    const last = samples.length >= 8 ? median(quarter(3)) : NaN;
    const allowed = Math.max(threshold.maxGrowthMiB, threshold.maxGrowthFraction * second);
    const round = (value: number) => Number(value.toFixed(2));
    const secondHalf = samples.slice(Math.floor(samples.length / 2)).map((sample) => ({ x: sample.seconds / 60, y: sample.mib }));
    return {
        samples: samples.length,
        firstMiB: round(samples[0].mib),
        lastMiB: round(samples[samples.length - 1].mib),
        maxMiB: round(Math.max(...samples.map((sample) => sample.mib))),
        secondQuarterMedianMiB: round(second),
        lastQuarterMedianMiB: round(last),
        growthMiB: round(last - second),
        allowedGrowthMiB: round(allowed),
        secondHalfSlopeMiBPerMinute: round(slope(secondHalf)),
        flat: samples.length >= 8 ? last - second <= allowed : undefined,
    };
}

/**
 * The files a `storescu` run acknowledged, in order, from its log at INFO level or more verbose (any line prefix):
 * "Sending file: X" names the instance in flight, "Received Store Response (Success)" acknowledges it. Any other
 * response (a failure, a warning) or an association that ends first leaves it unacknowledged.
 */
export function acknowledgedFiles(log: string): string[] {
    const acknowledged: string[] = [];
    let inFlight: string | undefined;
    for (const line of log.split("\n")) {
        const sending = /Sending file: (.*)$/.exec(line);
        if (sending) {
            inFlight = sending[1];
        } else if (/Received Store Response \(Success\)/.test(line) && inFlight !== undefined) {
            acknowledged.push(inFlight);
            inFlight = undefined;
        } else if (/Received Store Response/.test(line)) {
            inFlight = undefined;
        }
    }
    return acknowledged;
}
