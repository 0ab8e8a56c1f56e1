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
 * When memory counts as flat. A process warms up (caches filling, the first studies turning stable, connection pools,
 * allocator arenas), so only the second half of the samples is judged: the growth a straight line fitted through it
 * predicts over that half (its slope times its length) may be `maxGrowthMiB`, or `maxGrowthFraction` of the half's
 * median, whichever is larger. The line is the Theil-Sen fit (the median of the slopes between every two samples): a
 * moment's peak (a large retrieval) or the tail of the warm-up at the start of the half does not tilt it, a steady
 * climb does.
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
    /** Medians of the second and of the last quarter of the samples (reported, not judged). */
    secondQuarterMedianMiB: number;
    lastQuarterMedianMiB: number;
    secondHalfMedianMiB: number;
    /** Theil-Sen slope over the second half, MiB per minute. */
    secondHalfSlopeMiBPerMinute: number;
    /** That slope times the second half's length: the growth judged. */
    projectedGrowthMiB: number;
    /** The growth allowed by the threshold, in MiB. */
    allowedGrowthMiB: number;
    /** undefined when there are too few samples to judge (fewer than 8). */
    flat: boolean | undefined;
}

function median(values: readonly number[]): number {
    return percentile(values, 50);
}

/** Theil-Sen slope: the median of the slopes between every two points of distinct x; 0 when there are none. */
export function theilSenSlope(points: readonly { x: number; y: number }[]): number {
    const slopes: number[] = [];
    for (let i = 0; i < points.length; i++) {
        for (let j = i + 1; j < points.length; j++) {
            if (points[j].x !== points[i].x) {
                slopes.push((points[j].y - points[i].y) / (points[j].x - points[i].x));
            }
        }
    }
    return slopes.length === 0 ? 0 : median(slopes);
}

/** The trend of one replica's samples (in time order) against the threshold. */
export function memoryTrend(samples: readonly MemorySample[], threshold: FlatnessThreshold): MemoryTrend {
    if (samples.length === 0) {
        throw new Error("no memory samples");
    }
    const judged = samples.length >= 8;
    const quarter = (index: number) => samples.slice(Math.floor((index * samples.length) / 4), Math.floor(((index + 1) * samples.length) / 4)).map((s) => s.mib);
    const half = samples.slice(Math.floor(samples.length / 2));
    const halfMedian = median(half.map((sample) => sample.mib));
    const slopePerMinute = theilSenSlope(half.map((sample) => ({ x: sample.seconds / 60, y: sample.mib })));
    const projected = slopePerMinute * ((half[half.length - 1].seconds - half[0].seconds) / 60);
    const allowed = Math.max(threshold.maxGrowthMiB, threshold.maxGrowthFraction * halfMedian);
    const round = (value: number) => Number(value.toFixed(2));
    return {
        samples: samples.length,
        firstMiB: round(samples[0].mib),
        lastMiB: round(samples[samples.length - 1].mib),
        maxMiB: round(Math.max(...samples.map((sample) => sample.mib))),
        secondQuarterMedianMiB: round(judged ? median(quarter(1)) : NaN),
        lastQuarterMedianMiB: round(judged ? median(quarter(3)) : NaN),
        secondHalfMedianMiB: round(halfMedian),
        secondHalfSlopeMiBPerMinute: round(slopePerMinute),
        projectedGrowthMiB: round(projected),
        allowedGrowthMiB: round(allowed),
        flat: judged ? projected <= allowed : undefined,
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
