import { readdirSync, readFileSync } from "node:fs";

/**
 * Whether process group `pgid` is gone. Processes of the group that are only zombies count as gone:
 * orphans are re-parented to PID 1, which in some containers never reaps them. Without `/proc`
 * zombies cannot be told apart, and a group that still answers signals counts as present.
 */
export function processGroupGone(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
  try {
    for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        if (Number(fields[2]) === pgid && fields[0] !== "Z") return false;
      } catch {
        // exited meanwhile
      }
    }
    return true;
  } catch {
    return false; // no /proc: cannot tell zombies apart
  }
}
