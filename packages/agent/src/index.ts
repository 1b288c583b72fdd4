/**
 * `@edgeplane/agent`: the node agent (connection, registration, level-triggered desired state,
 * persistence, heartbeats, events, logs), the executor seam and the built-in executors
 * (pipeline, exec, config), agent.yaml, node labels, the per-node NATS authorization that
 * `edgectl nats-config` writes, and the process runner behind `edgectl agent`. See README.md for
 * the vocabulary and the flow, docs/executors.md for the executors.
 */
export type {
  Agent,
  AgentEvents,
  AgentNatsOptions,
  AgentOptions,
  AgentStopOptions,
  DesiredStateSource,
} from "./agent.js";
export { createAgent } from "./agent.js";
export type { BackoffOptions } from "./backoff.js";
export { backoffDelay, jitter } from "./backoff.js";
export type { AgentFlagValues } from "./cli.js";
export { AGENT_FLAGS, AGENT_USAGE } from "./cli.js";
export type {
  AgentConfig,
  ArgsRule,
  CommandRule,
  ConfigExecutorConfig,
  ExecExecutorConfig,
  ExecutorsConfig,
  PipelineExecutorConfig,
} from "./config.js";
export {
  DEFAULT_AGENT_CONFIG,
  EXECUTOR_DEFAULTS,
  HEARTBEAT_INTERVAL_BOUNDS_MS,
  loadAgentConfig,
  parseAgentConfig,
} from "./config.js";
export type { DataDirection, ExecutionDataChannel } from "./data-channel.js";
export { AgentDataChannel, dataSubject } from "./data-channel.js";
export type { DesiredExecutionState, ExecutionState, ExecutorName, RunMode } from "./execution-state.js";
export {
  DESIRED_STATES,
  EXECUTION_STATES,
  EXECUTOR_FOR_TYPE,
  EXECUTOR_NAMES,
  isExecutionState,
  isTerminalExecutionState,
  RUN_MODE,
  runModeOf,
} from "./execution-state.js";
export type {
  ExecutionContext,
  ExecutionCountersSnapshot,
  ExecutionHandle,
  ExecutionHealthSnapshot,
  ExecutionLogLevel,
  ExecutionLogStream,
  ExecutionReport,
  ExecutionUpdate,
  Executor,
  StopReason,
} from "./executor.js";
export type { BuiltinExecutorsOptions } from "./executors/builtin.js";
export { configBackupDir, createBuiltinExecutors } from "./executors/builtin.js";
export type {
  AppliedConfig,
  ApplyConfigFilesOptions,
  ConfigBackupEntry,
  ConfigBackupManifest,
  ConfigExecutorOptions,
  RestoreConfigBackupOptions,
} from "./executors/config.js";
export { applyConfigFiles, createConfigExecutor, restoreConfigBackup } from "./executors/config.js";
export type { ExecExecutorOptions } from "./executors/exec.js";
export { createExecExecutor } from "./executors/exec.js";
export type { PipelineExecutorOptions } from "./executors/pipeline/executor.js";
export { createPipelineExecutor, pipelinePolicyProblem } from "./executors/pipeline/executor.js";
export type { WindowHealth } from "./executors/pipeline/health.js";
export { HealthWindows, windowHealth } from "./executors/pipeline/health.js";
export { GenerateInput } from "./executors/pipeline/inputs.js";
export { DiscardOutput } from "./executors/pipeline/outputs.js";
export type { CompiledProcessor } from "./executors/pipeline/processors.js";
export { compileProcessors, jsonataTruthy } from "./executors/pipeline/processors.js";
export type {
  Message,
  PipelineCounters,
  PipelineEnd,
  PipelineInput,
  PipelineOutput,
  PipelineRuntimeOptions,
} from "./executors/pipeline/runtime.js";
export { MessageError, PipelineRuntime } from "./executors/pipeline/runtime.js";
export type { CommandVerdict, ResolvedCommandRule } from "./executors/policy.js";
export { matchCommand, resolveCommandRules } from "./executors/policy.js";
export type { HostFacts } from "./labels.js";
export {
  DISCOVERED_LABEL_PREFIX,
  DISCOVERED_LABELS,
  discoveredLabels,
  isReservedLabelKey,
  labelProblems,
  parseLabelFlags,
  sanitizeLabelValue,
} from "./labels.js";
export type { LogShipperOptions } from "./log-shipper.js";
export { LogShipper } from "./log-shipper.js";
export type {
  NatsPermissions,
  NatsUser,
  RenderNatsConfigOptions,
  WriteNatsConfigOptions,
  WriteNatsConfigResult,
} from "./nats-config.js";
export {
  controlPlanePermissions,
  NATS_CONFIG_FILE,
  nodePermissions,
  renderNatsServerConfig,
  writeNatsConfig,
} from "./nats-config.js";
export type { ApplyPlan, HeldPhase, HeldSummary, RevisionVerdict } from "./reconcile.js";
export { judgeRevision, planApply } from "./reconcile.js";
export type { AgentSettings, RunAgentOptions } from "./run.js";
export {
  DEFAULT_NATS_URL,
  resolveAgentSettings,
  runAgent,
  stopOnSignal,
} from "./run.js";
export type { PersistedState } from "./state-file.js";
export { loadState, STATE_FILE, STATE_FORMAT, saveState, stateFilePath } from "./state-file.js";
