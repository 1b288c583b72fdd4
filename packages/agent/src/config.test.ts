import { EDGEPLANE_VERSION } from "@edgeplane/core";
import { describe, expect, it } from "vitest";
import { DEFAULT_AGENT_CONFIG, parseAgentConfig } from "./config.js";
import { discoveredLabels, isReservedLabelKey, parseLabelFlags, sanitizeLabelValue } from "./labels.js";
import { resolveAgentSettings } from "./run.js";

function problem(text: string): { message: string; fields: string[] } {
  try {
    parseAgentConfig(text);
  } catch (err) {
    const e = err as { message: string; details: { field: string }[] };
    return { message: e.message, fields: e.details.map((d) => d.field) };
  }
  throw new Error("expected an error");
}

describe("agent.yaml", () => {
  it("parses a full file and fills defaults", () => {
    const config = parseAgentConfig(`
node_id: edge-01
data_dir: /var/lib/edgeplane-agent
nats: { servers: [nats://a:4222, nats://b:4222], creds: /etc/edgeplane/edge-01.nk }
heartbeat_interval: 2s
shutdown_grace: 30s
labels: { site: berlin, example.com/tier: edge }
executors:
  pipeline: { enabled: true }
  exec:
    enabled: true
    allow:
      - { command: /usr/bin/uptime }
      - { command: /usr/bin/systemctl, args: [restart, app] }
      - { command: /usr/bin/echo, args: any }
  config: { enabled: true, root_dir: /etc/app, reload_allow: [{ command: /usr/bin/systemctl, args: [reload, app] }] }
`);
    expect(config.nodeId).toBe("edge-01");
    expect(config.nats.servers).toEqual(["nats://a:4222", "nats://b:4222"]);
    expect(config.heartbeatIntervalMs).toBe(2000);
    expect(config.shutdownGraceMs).toBe(30_000);
    expect(config.labels).toEqual({ site: "berlin", "example.com/tier": "edge" });
    expect(config.executors.exec.allow).toEqual([
      { command: "/usr/bin/uptime", args: [] },
      { command: "/usr/bin/systemctl", args: ["restart", "app"] },
      { command: "/usr/bin/echo", args: "any" },
    ]);
    expect(config.executors.config).toEqual({
      enabled: true,
      rootDir: "/etc/app",
      reloadAllow: [{ command: "/usr/bin/systemctl", args: ["reload", "app"] }],
      killGraceMs: 5000,
    });
    expect(config.executors.pipeline).toEqual(DEFAULT_AGENT_CONFIG.executors.pipeline);
  });

  it("parses the executors' limits and allow lists", () => {
    const config = parseAgentConfig(`
executors:
  pipeline:
    enabled: true
    health_window: 200ms
    max_buffer: 50
    allowed_input_paths: [/var/log/app/, "/srv/*/logs"]
    allowed_output_paths: [/var/spool/edgeplane]
    nats_subjects_allowed: [metrics.>, "sensors.*.temp"]
  exec:
    enabled: true
    allow:
      - { command: uname, args: [-a] }
      - { command: /usr/bin/systemctl, args: { prefix: [status] } }
      - { command: /usr/bin/env, args: any }
    env_allow: [LC_ALL, APP_*]
    max_result_bytes: 1024
    kill_grace: 1s
  config: { enabled: true, root_dir: /etc/app, kill_grace: 2s }
`);
    expect(config.executors.pipeline).toEqual({
      enabled: true,
      healthWindowMs: 200,
      maxBuffer: 50,
      allowedInputPaths: ["/var/log/app", "/srv/*/logs"],
      allowedOutputPaths: ["/var/spool/edgeplane"],
      natsSubjectsAllowed: ["metrics.>", "sensors.*.temp"],
    });
    expect(config.executors.exec).toEqual({
      enabled: true,
      allow: [
        { command: "uname", args: ["-a"] },
        { command: "/usr/bin/systemctl", args: { prefix: ["status"] } },
        { command: "/usr/bin/env", args: "any" },
      ],
      envAllow: ["LC_ALL", "APP_*"],
      maxResultBytes: 1024,
      killGraceMs: 1000,
    });
    expect(config.executors.config.killGraceMs).toBe(2000);
  });

  it("enables only the pipeline executor by default, with nothing to touch", () => {
    const { executors } = parseAgentConfig("labels: { site: lab }\n");
    expect(executors.pipeline).toMatchObject({
      enabled: true,
      allowedInputPaths: [],
      allowedOutputPaths: [],
      natsSubjectsAllowed: [],
    });
    expect(executors.exec.enabled).toBe(false);
    expect(executors.config.enabled).toBe(false);
    expect(parseAgentConfig("executors: { pipeline: { enabled: false } }").executors.pipeline.enabled).toBe(
      false,
    );
  });

  it("treats an empty file as every executor disabled", () => {
    expect(parseAgentConfig("")).toEqual(DEFAULT_AGENT_CONFIG);
    expect(parseAgentConfig("# nothing\n")).toEqual(DEFAULT_AGENT_CONFIG);
  });

  it.each([
    ["executors: { exec: { enabled: yes-please } }", "executors.exec.enabled"],
    ["executors: { exec: { allow: [{ command: bin/uptime }] } }", "executors.exec.allow[0].command"],
    ["executors: { exec: { allow: [{ command: 'uptime -p' }] } }", "executors.exec.allow[0].command"],
    [
      "executors: { exec: { allow: [{ command: /bin/x, args: { suffix: [a] } }] } }",
      "executors.exec.allow[0].args",
    ],
    ["executors: { exec: { env_allow: [LD-PRELOAD] } }", "executors.exec.env_allow[0]"],
    ["executors: { exec: { max_result_bytes: 10485760 } }", "executors.exec.max_result_bytes"],
    ["executors: { exec: { kill_grace: soon } }", "executors.exec.kill_grace"],
    ["executors: { pipeline: { health_window: 1ms } }", "executors.pipeline.health_window"],
    [
      "executors: { pipeline: { allowed_input_paths: [var/log] } }",
      "executors.pipeline.allowed_input_paths[0]",
    ],
    [
      "executors: { pipeline: { allowed_output_paths: [/a/../etc] } }",
      "executors.pipeline.allowed_output_paths[0]",
    ],
    [
      "executors: { pipeline: { nats_subjects_allowed: ['a.>.b'] } }",
      "executors.pipeline.nats_subjects_allowed[0]",
    ],
    ["executors: { exec: { allow: [{ command: /bin/x, args: some }] } }", "executors.exec.allow[0].args"],
    ["executors: { shell: { enabled: true } }", "executors.shell"],
    ["executors: { config: { enabled: true } }", "executors.config.root_dir"],
    ["heartbeat_interval: 5 seconds", "heartbeat_interval"],
    ["heartbeat_interval: 1ms", "heartbeat_interval"],
    ["labels: { edgeplane.io/os: plan9 }", "labels.edgeplane.io/os"],
    ["labels: { site: not valid }", "labels.site"],
    ["heartbeat_intreval: 5s", "heartbeat_intreval"],
  ])("%s is refused naming %s", (text, field) => {
    const p = problem(text);
    expect(p.fields).toContain(field);
    expect(p.message).toContain(field);
  });

  it("reports YAML syntax errors with a line", () => {
    expect(problem("executors:\n  exec: [\n").message).toMatch(/not valid YAML/);
  });
});

describe("labels", () => {
  it("discovers os, arch, hostname and agent version, sanitized", () => {
    expect(discoveredLabels({ platform: "linux", arch: "arm64", hostname: "Edge Box #7.local." })).toEqual({
      "edgeplane.io/os": "linux",
      "edgeplane.io/arch": "arm64",
      "edgeplane.io/hostname": "Edge-Box--7.local",
      "edgeplane.io/agent-version": EDGEPLANE_VERSION,
    });
    expect(sanitizeLabelValue("-x-".repeat(40)).length).toBeLessThanOrEqual(63);
    expect(sanitizeLabelValue("___")).toBe("");
  });

  it("reserves edgeplane.io and its subdomains", () => {
    expect(isReservedLabelKey("edgeplane.io/os")).toBe(true);
    expect(isReservedLabelKey("x.edgeplane.io/os")).toBe(true);
    expect(isReservedLabelKey("notedgeplane.io/os")).toBe(false);
    expect(isReservedLabelKey("site")).toBe(false);
  });

  it("parses --labels flags, later keys winning", () => {
    expect(parseLabelFlags(["site=berlin,tier=edge", "tier=core"])).toEqual({ site: "berlin", tier: "core" });
    expect(() => parseLabelFlags(["site"])).toThrow(/not key=value/);
  });
});

describe("resolveAgentSettings", () => {
  it("requires a node id and a data dir, and takes systemd's STATE_DIRECTORY", async () => {
    await expect(resolveAgentSettings({}, {})).rejects.toThrow(/--node-id is required/);
    await expect(resolveAgentSettings({ "node-id": "n1" }, {})).rejects.toThrow(/--data-dir is required/);
    const s = await resolveAgentSettings(
      { "node-id": "n1", nats: ["nats://a:1,nats://b:2"], labels: ["site=x"] },
      { STATE_DIRECTORY: "/var/lib/edgeplane-agent" },
    );
    expect(s).toMatchObject({
      nodeId: "n1",
      dataDir: "/var/lib/edgeplane-agent",
      servers: ["nats://a:1", "nats://b:2"],
      labels: { site: "x" },
      shutdownGraceMs: 10_000,
    });
  });

  it("refuses operator labels under edgeplane.io/ and bad durations", async () => {
    const base = { "node-id": "n1", "data-dir": "/tmp/x" };
    await expect(
      resolveAgentSettings({ ...base, labels: ["edgeplane.io/hostname=evil"] }, {}),
    ).rejects.toThrow(/set by the agent itself/);
    await expect(resolveAgentSettings({ ...base, "heartbeat-interval": "soon" }, {})).rejects.toThrow(
      /--heartbeat-interval/,
    );
  });
});
