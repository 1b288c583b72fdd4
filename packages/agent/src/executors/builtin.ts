/**
 * The built-in executors an agent runs with unless it is given its own: one per agent.yaml
 * executor that is enabled (`pipeline`, `exec`, `config`), each confined to what agent.yaml allows.
 */
import { join } from "node:path";
import type { ExecutorsConfig } from "../config.js";
import type { Executor } from "../executor.js";
import { createConfigExecutor } from "./config.js";
import { createExecExecutor } from "./exec.js";
import { createPipelineExecutor, type PipelineExecutorOptions } from "./pipeline/executor.js";

/** Options of {@link createBuiltinExecutors}. */
export interface BuiltinExecutorsOptions {
  /** agent.yaml `executors` (with defaults filled in). */
  readonly config: ExecutorsConfig;
  /** The agent's data dir: config backups go to `<data-dir>/config-backups`. */
  readonly dataDir: string;
  /** The agent's environment; PATH resolves bare command names (default `process.env`). */
  readonly env?: NodeJS.ProcessEnv;
  /** Pipeline executor extras (stdout stream, file input timings). */
  readonly pipeline?: Omit<PipelineExecutorOptions, "config">;
}

/** The directory of config backups under a data dir. */
export function configBackupDir(dataDir: string): string {
  return join(dataDir, "config-backups");
}

/**
 * Creates the enabled built-in executors. Throws `invalid_argument` naming the agent.yaml rule
 * when an allow list names a bare command that is not on PATH.
 */
export function createBuiltinExecutors(options: BuiltinExecutorsOptions): Executor[] {
  const { config } = options;
  const out: Executor[] = [];
  if (config.pipeline.enabled)
    out.push(createPipelineExecutor({ ...options.pipeline, config: config.pipeline }));
  if (config.exec.enabled) out.push(createExecExecutor({ config: config.exec, env: options.env }));
  if (config.config.enabled) {
    out.push(
      createConfigExecutor({
        config: config.config,
        backupDir: configBackupDir(options.dataDir),
        env: options.env,
      }),
    );
  }
  return out;
}
