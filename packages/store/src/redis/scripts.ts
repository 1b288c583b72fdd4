/**
 * The job store's Lua scripts, registered on an ioredis client with `defineCommand` (which
 * sends EVALSHA and falls back to EVAL once per connection, so a Redis restart that forgets the
 * script cache is handled). Each script is the shared prelude plus its body from `lua/`.
 */
import { EdgeplaneError } from "@edgeplane/core";
import type { Redis } from "ioredis";
import { deleteJobLua } from "./lua/delete-job.lua.js";
import { findJobLua } from "./lua/find-job.lua.js";
import { listJobsLua } from "./lua/list-jobs.lua.js";
import { getVersionLua, listVersionsLua } from "./lua/list-versions.lua.js";
import { preludeLua } from "./lua/prelude.lua.js";
import { putJobLua } from "./lua/put-job.lua.js";
import { updateStatusLua } from "./lua/update-status.lua.js";

/** One script: the ioredis command name, how many of its arguments are keys, and its body. */
interface ScriptDefinition {
  readonly command: string;
  readonly keys: number;
  readonly body: string;
  readonly readOnly: boolean;
}

/** Every script, by the name the store uses. Command names are prefixed to avoid clashes. */
export const SCRIPTS = {
  putJob: { command: "edgeplanePutJob", keys: 6, body: putJobLua, readOnly: false },
  updateStatus: { command: "edgeplaneUpdateStatus", keys: 3, body: updateStatusLua, readOnly: false },
  deleteJob: { command: "edgeplaneDeleteJob", keys: 3, body: deleteJobLua, readOnly: false },
  findJob: { command: "edgeplaneFindJob", keys: 1, body: findJobLua, readOnly: true },
  listJobs: { command: "edgeplaneListJobs", keys: 2, body: listJobsLua, readOnly: true },
  listVersions: { command: "edgeplaneListVersions", keys: 2, body: listVersionsLua, readOnly: true },
  getVersion: { command: "edgeplaneGetVersion", keys: 2, body: getVersionLua, readOnly: true },
} as const satisfies Record<string, ScriptDefinition>;

/** A script's name. */
export type ScriptName = keyof typeof SCRIPTS;

/** The full source of a script: prelude + body. */
export function scriptSource(name: ScriptName): string {
  return `${preludeLua}\n${SCRIPTS[name].body}`;
}

type ScriptCommand = (...args: Array<string | number>) => Promise<unknown>;

/** Registers every script on `redis` (idempotent: a client shared by two stores is fine). */
export function defineScripts(redis: Redis): void {
  for (const name of Object.keys(SCRIPTS) as ScriptName[]) {
    const def = SCRIPTS[name];
    if (typeof (redis as unknown as Record<string, unknown>)[def.command] === "function") continue;
    redis.defineCommand(def.command, {
      lua: scriptSource(name),
      numberOfKeys: def.keys,
      readOnly: def.readOnly,
    });
  }
}

/** Runs a script registered by {@link defineScripts}. */
export function runScript(
  redis: Redis,
  name: ScriptName,
  keys: readonly string[],
  args: ReadonlyArray<string | number>,
): Promise<unknown> {
  const def = SCRIPTS[name];
  if (keys.length !== def.keys) {
    throw new EdgeplaneError("internal", `script ${name} takes ${def.keys} keys, got ${keys.length}`);
  }
  const command = (redis as unknown as Record<string, ScriptCommand | undefined>)[def.command];
  if (command === undefined) throw new EdgeplaneError("internal", `script ${name} is not registered`);
  return command.call(redis, ...keys, ...args);
}
