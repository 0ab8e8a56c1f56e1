/**
 * What /proc says about the benchmark's processes: peak resident memory (VmHWM) and CPU time.
 */
import { readdirSync, readFileSync, writeFileSync } from "fs";

/**
 * Resets VmHWM to the current resident size ("5" to /proc/<pid>/clear_refs, Linux >= 4.0), so that the peak read
 * after a workload is that workload's. Returns false where the kernel or the permissions do not allow it.
 */
export function resetPeakResident(pid: number): boolean {
    try {
        writeFileSync(`/proc/${pid}/clear_refs`, "5");
        return true;
    } catch {
        return false;
    }
}

/** VmHWM of a process in MiB. */
export function peakResidentMiB(pid: number): number {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    if (!match) {
        throw new Error(`no VmHWM in /proc/${pid}/status`);
    }
    return Number(match[1]) / 1024;
}

const clockTicks = 100; // USER_HZ on Linux

function statFields(pid: number): string[] | undefined {
    try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        // The command name (field 2) may hold spaces: split after its closing parenthesis.
        return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    } catch {
        return undefined;
    }
}

/** User + system CPU seconds of a process (0 once it is gone). */
export function cpuSeconds(pid: number): number {
    const fields = statFields(pid);
    // After the name: state(0) ppid(1) ... utime(11) stime(12).
    return fields ? (Number(fields[11]) + Number(fields[12])) / clockTicks : 0;
}

/** CPU seconds of a process and of its live children (PostgreSQL's postmaster and its backends). */
export function treeCpuSeconds(pid: number): number {
    // The root's own time and that of its children which have exited (cutime, cstime).
    const root = statFields(pid);
    let total = root ? (Number(root[11]) + Number(root[12]) + Number(root[13]) + Number(root[14])) / clockTicks : 0;
    for (const entry of readdirSync("/proc")) {
        if (/^\d+$/.test(entry) && statFields(Number(entry))?.[1] === String(pid)) {
            total += cpuSeconds(Number(entry));
        }
    }
    return total;
}
