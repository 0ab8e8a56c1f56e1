/**
 * The soak's arithmetic (tests/integration/support/soakFigures.ts): what `scripts/run soak` prints and judges by.
 * Pure and cheap; the soak itself runs in the integration suite (tests/integration/soak.test.ts).
 */
import { strict as assert } from "assert";
import { acknowledgedFiles, memoryTrend, MemorySample, percentile, summarizeLatencies, theilSenSlope } from "./integration/support/soakFigures";

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

        it("the Theil-Sen slope is the median of the pairwise slopes: a line's own, and deaf to one outlier", () => {
            assert.equal(theilSenSlope([{ x: 0, y: 1 }, { x: 1, y: 3 }, { x: 2, y: 5 }]), 2);
            assert.equal(theilSenSlope([0, 1, 2, 3, 4].map((x) => ({ x, y: x === 4 ? 1000 : 10 }))), 0);
            assert.equal(theilSenSlope([{ x: 1, y: 1 }]), 0);
        });
        const cases: { name: string; samples: MemorySample[]; flat: boolean | undefined }[] = [
            // Warm-up (a cache filling) in the first half, then level.
            { name: "a warm-up then a plateau", samples: series(40, (m) => Math.min(200, 40 + 20 * m)), flat: true },
            // A warm-up that runs into the second half (the 10-minute run's, up to minute 5.5 of 10) ends in a plateau.
            { name: "a warm-up ending early in the second half", samples: series(40, (m) => Math.min(473, 40 + 20 * m)), flat: true },
            // Noise and a short peak (a large retrieval) in the last quarter.
            { name: "a plateau with a peak", samples: series(40, (m) => (m === 35 ? 600 : 200 + (m % 3))), flat: true },
            // 2 MiB a minute: 38 MiB over the second half's 19 minutes, where 10% of its median (259) is 25.9.
            { name: "a steady climb of 2 MiB/min from 200 MiB", samples: series(40, (m) => 200 + 2 * m), flat: false },
            // From 400 MiB: allowed 10% of the median 400 + 29 g, judged 19 g: flat up to g = 2.48 MiB/min.
            { name: "a climb of 2.4 MiB/min from 400 MiB", samples: series(40, (m) => 400 + 2.4 * m), flat: true },
            { name: "a climb of 2.6 MiB/min from 400 MiB", samples: series(40, (m) => 400 + 2.6 * m), flat: false },
            // A small process: 16 MiB is allowed whatever 10% says (0.8 MiB/min over 19 minutes: 15.2 MiB).
            { name: "a climb of 0.8 MiB/min from 40 MiB", samples: series(40, (m) => 40 + 0.8 * m), flat: true },
            { name: "a climb of 0.9 MiB/min from 40 MiB", samples: series(40, (m) => 40 + 0.9 * m), flat: false },
            // Too short to judge.
            { name: "seven samples", samples: series(7, (m) => 100 + 50 * m), flat: undefined },
        ];
        for (const { name, samples, flat } of cases) {
            it(`${name}: flat ${flat}`, () => {
                const trend = memoryTrend(samples, threshold);
                assert.equal(trend.flat, flat, JSON.stringify(trend));
                assert.equal(trend.samples, samples.length);
            });
        }
        it("reports the second half's slope per minute, the growth it predicts and the growth allowed", () => {
            const trend = memoryTrend(series(40, (m) => 200 + 2 * m), threshold);
            assert.equal(trend.secondHalfSlopeMiBPerMinute, 2);
            assert.equal(trend.projectedGrowthMiB, 38);
            assert.equal(trend.secondHalfMedianMiB, 258); // nearest rank: the 10th of 20 samples, minute 29
            assert.equal(trend.allowedGrowthMiB, 25.8);
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
