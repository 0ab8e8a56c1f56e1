/**
 * The soak's arithmetic (tests/integration/support/soakFigures.ts): what `scripts/run soak` prints and judges by.
 * Pure and cheap; the soak itself runs in the integration suite (tests/integration/soak.test.ts).
 */
import { strict as assert } from "assert";
import { acknowledgedFiles, memoryTrend, MemorySample, percentile, slope, summarizeLatencies } from "./integration/support/soakFigures";

describe("soak figures", () => {
    describe("percentile (nearest rank)", () => {
        const hundred = Array.from({ length: 100 }, (_, index) => 100 - index); // 100 .. 1, unsorted on purpose
        for (const [p, expected] of [
            [50, 50],
            [95, 95],
            [99, 99],
            [100, 100],
            [0, 1],
        ] as const) {
            it(`p${p} of 1..100 is ${expected}`, () => assert.equal(percentile(hundred, p), expected));
        }
        it("of three values, p95 is the largest and p50 the middle one", () => {
            assert.equal(percentile([10, 20, 30], 95), 30);
            assert.equal(percentile([10, 20, 30], 50), 20);
        });
        it("is NaN without values, and leaves its input as it was", () => {
            assert.ok(Number.isNaN(percentile([], 50)));
            const values = [3, 1, 2];
            percentile(values, 50);
            assert.deepEqual(values, [3, 1, 2]);
        });
        it("summarizes a latency list with its count, p50/p95/p99 and max", () => {
            assert.deepEqual(summarizeLatencies(hundred), { count: 100, p50Ms: 50, p95Ms: 95, p99Ms: 99, maxMs: 100 });
        });
    });

    describe("memory flatness", () => {
        const threshold = { maxGrowthMiB: 16, maxGrowthFraction: 0.1 };
        /** A sample a minute, `mib(minute)`. */
        const series = (count: number, mib: (minute: number) => number): MemorySample[] =>
            Array.from({ length: count }, (_, minute) => ({ seconds: minute * 60, mib: mib(minute) }));

        it("slope is the least-squares line's", () => {
            assert.equal(slope([{ x: 0, y: 1 }, { x: 1, y: 3 }, { x: 2, y: 5 }]), 2);
            assert.equal(slope([{ x: 1, y: 1 }]), 0);
        });
        const cases: { name: string; samples: MemorySample[]; flat: boolean | undefined; growth?: number }[] = [
            // Warm-up (a cache filling) in the first quarter, then level: flat.
            { name: "a warm-up then a plateau", samples: series(40, (m) => Math.min(200, 40 + 20 * m)), flat: true, growth: 0 },
            // Noise and a short spike (a large retrieval) in the last quarter do not move the medians.
            { name: "a plateau with a spike", samples: series(40, (m) => (m === 35 ? 600 : 200 + (m % 3))), flat: true },
            // 2 MiB a minute for 40 minutes: the last quarter's median is 40 MiB above the second's (allowed: 20).
            { name: "a steady leak", samples: series(40, (m) => 200 + 2 * m), flat: false, growth: 40 },
            // Growth just under 10% of a large process is allowed; just over is not.
            { name: "growth under 10% of 400 MiB", samples: series(8, (m) => (m < 4 ? 400 : 439)), flat: true, growth: 39 },
            { name: "growth over 10% of 400 MiB", samples: series(8, (m) => (m < 4 ? 400 : 441)), flat: false, growth: 41 },
            // Too short to judge.
            { name: "seven samples", samples: series(7, (m) => 100 + 50 * m), flat: undefined },
        ];
        for (const { name, samples, flat, growth } of cases) {
            it(`${name}: flat ${flat}`, () => {
                const trend = memoryTrend(samples, threshold);
                assert.equal(trend.flat, flat);
                if (growth !== undefined) assert.equal(trend.growthMiB, growth);
                assert.equal(trend.samples, samples.length);
            });
        }
        it("reports the second half's slope per minute and the allowed growth", () => {
            const trend = memoryTrend(series(40, (m) => 200 + 2 * m), threshold);
            assert.equal(trend.secondHalfSlopeMiBPerMinute, 2);
            assert.equal(trend.allowedGrowthMiB, 22.8); // 10% of the second quarter's median, 228 MiB
        });
    });

    describe("acknowledgedFiles: the instances a storescu log acknowledges", () => {
        const log = (lines: string[]) => lines.map((line) => `20:01:02.003.004 INFO: ${line}`).join("\n");
        it("takes each file sent and answered Success, in order", () => {
            assert.deepEqual(
                acknowledgedFiles(log(["Sending file: /d/a.dcm", "Sending Store Request", "Received Store Response (Success)", "Sending file: /d/b.dcm", "Received Store Response (Success)"])),
                ["/d/a.dcm", "/d/b.dcm"],
            );
        });
        it("leaves out a file answered with anything else, and one whose association ended before its answer", () => {
            assert.deepEqual(
                acknowledgedFiles(
                    log([
                        "Sending file: /d/a.dcm",
                        "Received Store Response (Out of Resources)",
                        "Received Store Response (Success)", // no file in flight any more: acknowledges nothing
                        "Sending file: /d/b.dcm",
                        "Received Store Response (Success)",
                        "Sending file: /d/c.dcm",
                        "Association Aborted",
                    ]),
                ),
                ["/d/b.dcm"],
            );
        });
    });
});
