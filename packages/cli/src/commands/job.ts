/**
 * `edgectl job ...`: submit, list, read, version, diff, revert, stop and delete jobs over gRPC.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { create, fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import {
  type Client,
  createClient,
  JobSchema,
  JobService,
  JobSpecSchema,
  JobVersionSchema,
} from "@edgeplane/api";
import { EdgeplaneError, fromGrpcStatus, validateJobSpec } from "@edgeplane/core";
import { parseSelector } from "@edgeplane/selector";
import { parse as parseYaml } from "yaml";
import { intFlag, parseFlags, serverAddress } from "../args.js";
import { ago, nextPageCommand, outputFormat, printData, table } from "../output.js";

export const jobHelp = `Usage: edgectl job <command> [flags]

Commands:
  run -f FILE        submit a job spec (YAML or JSON; "-" reads stdin); prints id, version, changed
  plan -f FILE       dry run: diff against the current version, matching nodes, canaries and waves
  list               list jobs (--namespace NS | -A, --limit N, --next-token T, --labels SEL,
                     --state S, --type T, --order-by created_at|updated_at|name, --order asc|desc,
                     --include-deleted)
  get ID|NAME        show a job (-n NS to find it by name)
  versions ID        list kept versions
  diff ID            show what changed (--from N --to N; default: previous → current)
  revert ID          write an old version's spec as a new version (--version N)
  stop ID            stop a job (--reason TEXT)
  delete ID          delete a job

Common flags: --server host:port (or $EDGEPLANE_SERVER; default 127.0.0.1:50051), -o text|json|yaml
`;

const JSON_OPTIONS = { useProtoFieldName: true } as const;
const common = { server: { type: "string" }, output: { type: "string", short: "o" } } as const;

function connect(server: string | undefined): Client<typeof JobService> {
  return createClient(JobService, serverAddress(server), {
    fromStatus: fromGrpcStatus,
    defaultTimeoutMs: 30_000,
  });
}

/** Reads a spec file (YAML or JSON). A whole job (`{id, spec, status}`, e.g. from `job get -o yaml`) gives its spec. */
export function readSpecFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path === "-" ? 0 : path, "utf8");
  } catch (err) {
    throw new EdgeplaneError("invalid_argument", `-f: cannot read ${path}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new EdgeplaneError(
      "invalid_argument",
      `-f: ${path} is neither YAML nor JSON: ${(err as Error).message}`,
    );
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    throw new EdgeplaneError("invalid_argument", `-f: ${path} must hold one job spec (an object)`);
  }
  const record = doc as Record<string, unknown>;
  if ("spec" in record && typeof record.spec === "object" && ("status" in record || "id" in record)) {
    return record.spec as Record<string, unknown>;
  }
  return record;
}

function requireId(command: string, positionals: string[]): string {
  const id = positionals[0];
  if (!id) throw new EdgeplaneError("invalid_argument", `edgectl job ${command}: give the job id (or name)`);
  return id;
}

type JobJson = {
  id: string;
  spec?: { name?: string; namespace?: string; type?: string };
  status?: {
    version?: number;
    revision?: number;
    updated_at?: string;
    state?: { state_type?: string; message?: string };
  };
};

export async function job(argv: readonly string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case "run":
      return run(rest);
    case "list":
      return list(rest);
    case "get":
      return get(rest);
    case "versions":
      return versions(rest);
    case "diff":
      return diff(rest);
    case "revert":
      return revert(rest);
    case "plan":
      // Dynamic: deployment.ts imports readSpecFile from this file.
      return (await import("./deployment.js")).planCommand(rest);
    case "stop":
    case "delete":
      return stopOrDelete(sub, rest);
    default:
      process.stderr.write(sub ? `edgectl job: unknown command "${sub}"\n\n${jobHelp}` : jobHelp);
      return 2;
  }
}

async function run(argv: readonly string[]): Promise<number> {
  const { values } = parseFlags("job run", argv, {
    ...common,
    file: { type: "string", short: "f" },
    "expected-version": { type: "string" },
    "expected-revision": { type: "string" },
  });
  if (!values.file) throw new EdgeplaneError("invalid_argument", "edgectl job run: -f FILE is required");
  const raw = readSpecFile(values.file);
  // Validate here too, so a bad file fails before any network call, with the same messages.
  const spec = validateJobSpec(raw, { parseExpression: (e) => parseSelector(e) });
  const format = outputFormat(values.output);
  const api = connect(values.server);
  try {
    const res = await api.putJob({
      spec: fromJson(JobSpecSchema, spec as unknown as JsonValue),
      expectedVersion: intFlag("expected-version", values["expected-version"]),
      expectedRevision: intFlag("expected-revision", values["expected-revision"]),
      // One key per invocation: a retry after a lost reply applies once.
      idempotencyKey: randomUUID(),
    });
    const job = res.job ? (toJson(JobSchema, res.job, JSON_OPTIONS) as JobJson) : undefined;
    if (format !== "text") printData({ job, changed: res.changed, message: res.message }, format);
    else {
      process.stdout.write(
        `${res.message}\nid: ${job?.id}\nversion: ${job?.status?.version}\nchanged: ${res.changed}\n`,
      );
    }
    return 0;
  } finally {
    api.close();
  }
}

async function list(argv: readonly string[]): Promise<number> {
  const { values } = parseFlags("job list", argv, {
    ...common,
    namespace: { type: "string", short: "n" },
    "all-namespaces": { type: "boolean", short: "A" },
    limit: { type: "string" },
    "next-token": { type: "string" },
    labels: { type: "string", short: "l" },
    state: { type: "string", multiple: true },
    type: { type: "string", multiple: true },
    "order-by": { type: "string" },
    order: { type: "string" },
    "include-deleted": { type: "boolean" },
  });
  const format = outputFormat(values.output);
  const api = connect(values.server);
  try {
    const res = await api.listJobs({
      namespace: values["all-namespaces"] ? "*" : (values.namespace ?? "default"),
      limit: intFlag("limit", values.limit),
      nextToken: values["next-token"],
      labels: values.labels,
      states: (values.state ?? []).flatMap((s) => s.split(",")),
      types: (values.type ?? []).flatMap((s) => s.split(",")),
      orderBy: values["order-by"],
      order: values.order,
      includeDeleted: values["include-deleted"],
    });
    const items = res.items.map((j) => toJson(JobSchema, j, JSON_OPTIONS) as JobJson);
    if (format !== "text") {
      printData({ items, next_token: res.nextToken }, format);
      return 0;
    }
    process.stdout.write(
      table(
        ["ID", "NAMESPACE", "NAME", "TYPE", "STATE", "VERSION", "REVISION", "UPDATED"],
        items.map((j) => [
          j.id,
          j.spec?.namespace ?? "",
          j.spec?.name ?? "",
          j.spec?.type ?? "",
          j.status?.state?.state_type ?? "",
          String(j.status?.version ?? ""),
          String(j.status?.revision ?? ""),
          ago(j.status?.updated_at),
        ]),
      ),
    );
    if (items.length === 0) process.stdout.write("no jobs\n");
    if (res.nextToken) {
      // The exact command for the next page: the same flags, with the new token.
      process.stdout.write(`\nnext page: ${nextPageCommand("job list", argv, res.nextToken)}\n`);
    }
    return 0;
  } finally {
    api.close();
  }
}

async function get(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseFlags("job get", argv, {
    ...common,
    namespace: { type: "string", short: "n" },
  });
  const id = requireId("get", positionals);
  const format = outputFormat(values.output);
  const api = connect(values.server);
  try {
    const res = await api.getJob({ id, namespace: values.namespace ?? "" });
    const j = toJson(JobSchema, res.job ?? create(JobSchema), JSON_OPTIONS) as JobJson;
    if (format !== "text") printData(j, format);
    else {
      process.stdout.write(
        `id:        ${j.id}\nname:      ${j.spec?.namespace}/${j.spec?.name}\ntype:      ${j.spec?.type}\nstate:     ${j.status?.state?.state_type}${j.status?.state?.message ? ` (${j.status.state.message})` : ""}\nversion:   ${j.status?.version}\nrevision:  ${j.status?.revision}\nupdated:   ${j.status?.updated_at ?? ""}\n`,
      );
    }
    return 0;
  } finally {
    api.close();
  }
}

async function versions(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseFlags("job versions", argv, {
    ...common,
    limit: { type: "string" },
    "next-token": { type: "string" },
  });
  const id = requireId("versions", positionals);
  const format = outputFormat(values.output);
  const api = connect(values.server);
  try {
    const res = await api.listJobVersions({
      id,
      limit: intFlag("limit", values.limit),
      nextToken: values["next-token"],
    });
    const items = res.items.map((v) => toJson(JobVersionSchema, v, JSON_OPTIONS) as Record<string, unknown>);
    if (format !== "text") printData({ items, next_token: res.nextToken }, format);
    else {
      process.stdout.write(
        table(
          ["VERSION", "KIND", "FROM", "CREATED"],
          res.items.map((v) => [
            String(v.version),
            v.kind,
            v.rollbackToVersion
              ? `v${v.rollbackToVersion}`
              : v.revertToVersion
                ? `v${v.revertToVersion}`
                : "",
            (items.find((i) => i.version === v.version)?.created_at as string | undefined) ?? "",
          ]),
        ),
      );
      if (res.nextToken)
        process.stdout.write(`\nnext page: ${nextPageCommand("job versions", argv, res.nextToken)}\n`);
    }
    return 0;
  } finally {
    api.close();
  }
}

async function diff(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseFlags("job diff", argv, {
    ...common,
    from: { type: "string" },
    to: { type: "string" },
  });
  const id = requireId("diff", positionals);
  const format = outputFormat(values.output);
  const api = connect(values.server);
  try {
    const res = await api.diffJobVersions({
      id,
      from: intFlag("from", values.from),
      to: intFlag("to", values.to),
    });
    const changes = res.changes.map((c) => ({
      path: c.path,
      old_value: c.oldValue ? toJson(ValueSchema, c.oldValue) : undefined,
      new_value: c.newValue ? toJson(ValueSchema, c.newValue) : undefined,
    }));
    if (format !== "text") printData({ from: res.from, to: res.to, changes }, format);
    else {
      process.stdout.write(`version ${res.from} → ${res.to}: ${changes.length} change(s)\n`);
      for (const c of changes) {
        if (c.old_value !== undefined) process.stdout.write(`- ${c.path}: ${JSON.stringify(c.old_value)}\n`);
        if (c.new_value !== undefined) process.stdout.write(`+ ${c.path}: ${JSON.stringify(c.new_value)}\n`);
      }
    }
    return 0;
  } finally {
    api.close();
  }
}

async function revert(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseFlags("job revert", argv, { ...common, version: { type: "string" } });
  const id = requireId("revert", positionals);
  const version = intFlag("version", values.version);
  if (!version) throw new EdgeplaneError("invalid_argument", "edgectl job revert: --version N is required");
  const format = outputFormat(values.output);
  const api = connect(values.server);
  try {
    const res = await api.revertJob({ id, version });
    const j = res.job ? (toJson(JobSchema, res.job, JSON_OPTIONS) as JobJson) : undefined;
    if (format !== "text") printData({ job: j, changed: res.changed, message: res.message }, format);
    else process.stdout.write(`${res.message}\nversion: ${j?.status?.version}\nchanged: ${res.changed}\n`);
    return 0;
  } finally {
    api.close();
  }
}

async function stopOrDelete(which: "stop" | "delete", argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseFlags(`job ${which}`, argv, { ...common, reason: { type: "string" } });
  const id = requireId(which, positionals);
  const format = outputFormat(values.output);
  const api = connect(values.server);
  try {
    const res =
      which === "stop" ? await api.stopJob({ id, reason: values.reason ?? "" }) : await api.deleteJob({ id });
    const j = res.job ? (toJson(JobSchema, res.job, JSON_OPTIONS) as JobJson) : undefined;
    if (format !== "text") printData(j, format);
    else
      process.stdout.write(
        `job ${j?.id} ${which === "stop" ? "stopped" : "deleted"} (revision ${j?.status?.revision})\n`,
      );
    return 0;
  } finally {
    api.close();
  }
}
