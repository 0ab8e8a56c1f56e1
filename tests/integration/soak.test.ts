/**
 * The soak of `scripts/run soak` (support/soak.ts), bounded to under a minute and paced lightly so that CI runs it on
 * every change: the same code, clients and checks as the 10-minute run whose figures are in the README. It asserts
 * what does not depend on the machine's speed: nothing acknowledged lost or altered, both replicas alive, and every
 * figure produced. How fast, and whether memory is flat (a minute is mostly warm-up), are the command's to report.
 */
import { strict as assert } from "assert";
import { Resources } from "./support/processes";
import { defaultSoakSettings, formatSoak, runSoak, sampleInterval, SoakFigures } from "./support/soak";

describe("soak: C-STORE, STOW-RS and WADO-RS at once on two replicas for 45 s (the command's code, bounded)", function () {
    this.timeout(300_000);
    const resources = new Resources();
    const durationMs = 45_000;
    let figures: SoakFigures;

    before(async () => {
        figures = await runSoak(resources, {
            settings: {
                ...defaultSoakSettings,
                durationMs,
                associations: 4,
                // A light pace: CI's runner and this machine are shared.
                storeRate: 12,
                pixelBytes: 16 * 1024,
                stowIntervalMs: 3000,
                wadoIntervalMs: 2000,
                sampleIntervalMs: sampleInterval(durationMs),
                byteSample: 50,
            },
        });
        console.log(formatSoak(figures).replace(/^/gm, "      "));
    });
    after(() => resources.release());

    it("loses nothing it acknowledged: every acknowledged instance is served by the other replica at the end", () => {
        assert.ok(figures.instances.cStore.acknowledged > 0 && figures.instances.stowRs.acknowledged > 0, "both C-STORE and STOW-RS acknowledged instances");
        assert.equal(figures.instances.acknowledged, figures.instances.cStore.acknowledged + figures.instances.stowRs.acknowledged);
        assert.equal(figures.instances.lost, 0, `lost: ${figures.instances.lostExamples.join(", ")}`);
        assert.equal(figures.instances.presentAtEnd, figures.instances.acknowledged);
    });

    it("serves what it was sent byte for byte: the final sample and every WADO-RS part during the load", () => {
        assert.ok(figures.instances.byteForByte.compared > 0, "a sample compared");
        assert.equal(figures.instances.byteForByte.differing, 0);
        assert.equal(figures.errors["served bytes differ from those sent"], undefined);
        assert.equal(figures.errors["WADO-RS served an instance never sent"], undefined);
    });

    it("keeps both replicas running, and says so in its verdict", () => {
        assert.equal(figures.replicasRunning, true);
        assert.equal(figures.errors["replica exited"], undefined);
        assert.ok(figures.verdict.reasons.every((reason) => /resident memory climbs/.test(reason)), figures.verdict.reasons.join("\n"));
    });

    it("produces the figures: p50/p95/p99 per operation, memory samples and a flatness judgement per replica, the load average", () => {
        for (const operation of ["cStore", "stowRs", "wadoRs"] as const) {
            const latency = figures.latency[operation];
            assert.ok(latency.count > 0, `${operation}: no latency measured`);
            assert.ok(latency.p50Ms > 0 && latency.p50Ms <= latency.p95Ms && latency.p95Ms <= latency.p99Ms && latency.p99Ms <= latency.maxMs, `${operation}: ${JSON.stringify(latency)}`);
        }
        assert.equal(figures.latency.cStore.count, figures.instances.cStore.acknowledged, "one C-STORE latency per acknowledged instance");
        assert.deepEqual(Object.keys(figures.memory).sort(), ["soak-1", "soak-2"]);
        for (const [name, trend] of Object.entries(figures.memory)) {
            assert.ok(trend.samples >= 8 && trend.series.length === trend.samples, `${name}: ${trend.samples} samples`);
            assert.ok(trend.series.every(([, mib]) => mib > 10), `${name}: implausible resident sizes ${JSON.stringify(trend.series)}`);
            assert.equal(typeof trend.flat, "boolean", `${name}: flatness judged`);
        }
        assert.ok(figures.loadAverage.max >= figures.loadAverage.mean && figures.loadAverage.mean > 0);
        assert.ok(figures.loadSeconds >= durationMs / 1000, `load ran ${figures.loadSeconds} s`);
    });
});
