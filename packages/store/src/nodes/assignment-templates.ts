/**
 * Values derived from an assignment minus its execution id (its encodings), kept per job version.
 *
 * The assignments of one job version on many nodes differ only in their execution id, and they
 * share one `config` object (the job version's). Encoders that cost per node (the stored JSON, the
 * protobuf push) compute what follows the execution id once and find it again here: by the
 * identity of the config object, then by comparing the other fields (no key string is built).
 * Config objects are taken as immutable, as every record handed around is. Entries go with their
 * config object (a `WeakMap`); a config meeting many field combinations keeps the latest few.
 */
import type { AssignmentRecord } from "./node-store.js";

/** Combinations kept per config object. */
const PER_CONFIG = 8;

interface Entry<V> {
  readonly a: AssignmentRecord;
  readonly value: V;
}

/** Whether two assignments agree on every field but the execution id (config compared by identity). */
function sameButExecution(x: AssignmentRecord, y: AssignmentRecord): boolean {
  return (
    x.jobId === y.jobId &&
    x.jobVersion === y.jobVersion &&
    x.deploymentId === y.deploymentId &&
    x.desiredState === y.desiredState &&
    x.namespace === y.namespace &&
    x.jobName === y.jobName &&
    x.type === y.type &&
    x.restartPolicy === y.restartPolicy &&
    Object.is(x.maxErrorRate, y.maxErrorRate) &&
    (x.timeouts === y.timeouts ||
      (x.timeouts.executionTimeout === y.timeouts.executionTimeout &&
        x.timeouts.queueTimeout === y.timeouts.queueTimeout &&
        x.timeouts.totalTimeout === y.timeouts.totalTimeout))
  );
}

/** A cache of `derive(assignment)` for values that do not depend on the execution id. */
export class AssignmentTemplates<V> {
  readonly #byConfig = new WeakMap<object, Array<Entry<V>>>();
  readonly #derive: (a: AssignmentRecord) => V;

  /** `derive` must not read `executionId`. */
  constructor(derive: (a: AssignmentRecord) => V) {
    this.#derive = derive;
  }

  /** `derive(a)`, computed once per config object and other fields. */
  get(a: AssignmentRecord): V {
    let entries = this.#byConfig.get(a.config);
    if (entries === undefined) {
      entries = [];
      this.#byConfig.set(a.config, entries);
    }
    for (const e of entries) if (sameButExecution(e.a, a)) return e.value;
    const value = this.#derive(a);
    if (entries.length >= PER_CONFIG) entries.shift();
    entries.push({ a, value });
    return value;
  }
}
