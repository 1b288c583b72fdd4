import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { subjectMatches } from "@edgeplane/bus";
import { fromSeed } from "@nats-io/nkeys";
import { afterEach, describe, expect, it } from "vitest";
import { dataSubject } from "./data-channel.js";
import { controlPlanePermissions, nodePermissions, writeNatsConfig } from "./nats-config.js";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "nats-config-"));
  dirs.push(d);
  return d;
}

describe("per-node NATS permissions", () => {
  it("pin a node to its own subjects and inbox, and nothing else", () => {
    expect(nodePermissions("edge-01")).toEqual({
      publish: ["ep.node.edge-01.out.>"],
      subscribe: ["ep.node.edge-01.in.>", "ep.inbox.edge-01.>"],
    });
    expect(controlPlanePermissions()).toEqual({
      publish: ["ep.node.*.in.>", "ep.inbox.>", "_INBOX.>"],
      subscribe: ["ep.node.*.out.>", "_INBOX.>"],
    });
  });
});

describe("pipeline data subjects", () => {
  it("stay within what a node's credentials allow, and out of another node's", () => {
    const own = nodePermissions("edge-01");
    const other = nodePermissions("edge-02");
    const out = dataSubject("edge-01", "out", "metrics.cpu");
    const input = dataSubject("edge-01", "in", "commands.>");
    expect(out).toBe("ep.node.edge-01.out.data.metrics.cpu");
    expect(input).toBe("ep.node.edge-01.in.data.commands.>");
    expect(own.publish.some((p) => subjectMatches(p, out))).toBe(true);
    expect(own.subscribe.some((p) => subjectMatches(p, input))).toBe(true);
    expect(other.publish.some((p) => subjectMatches(p, out))).toBe(false);
    expect(other.subscribe.some((p) => subjectMatches(p, input))).toBe(false);
    // The control plane may feed a node's pipeline inputs and read its outputs.
    expect(controlPlanePermissions().publish.some((p) => subjectMatches(p, input))).toBe(true);
    expect(controlPlanePermissions().subscribe.some((p) => subjectMatches(p, out))).toBe(true);
  });
});

describe("writeNatsConfig", () => {
  it("writes the config and one 0600 seed per user, and keeps existing seeds when run again", async () => {
    const out = await tempDir();
    const first = await writeNatsConfig({ nodes: ["n1", "n2"], outDir: out });
    const conf = await readFile(first.configFile, "utf8");
    expect(conf).not.toMatch(/^port:/m);
    expect(conf).toContain('publish: { allow: ["ep.node.n1.out.>"] }');
    expect(conf).toContain('subscribe: { allow: ["ep.node.n2.in.>", "ep.inbox.n2.>"] }');
    expect(conf).not.toMatch(/\$JS|allow_responses/);
    for (const c of first.credentials) {
      expect((await stat(c.file)).mode & 0o777).toBe(0o600);
      const seed = (await readFile(c.file, "utf8")).trim();
      expect(fromSeed(new TextEncoder().encode(seed)).getPublicKey()).toBe(c.publicKey);
      expect(conf).toContain(c.publicKey);
    }
    expect(first.credentials.map((c) => [c.name, c.role, c.created])).toEqual([
      ["control-plane", "control-plane", true],
      ["n1", "node", true],
      ["n2", "node", true],
    ]);

    await writeFile(join(out, "old.nk"), "SUAOLD\n");
    const second = await writeNatsConfig({ nodes: ["n1", "n3"], outDir: out, port: 4333 });
    const keys = Object.fromEntries(second.credentials.map((c) => [c.name, c]));
    expect(keys.n1?.created).toBe(false);
    expect(keys.n1?.publicKey).toBe(first.credentials[1]?.publicKey);
    expect(keys.n3?.created).toBe(true);
    expect(second.stale.map((f) => f.slice(out.length + 1)).sort()).toEqual(["n2.nk", "old.nk"]);
    const conf2 = await readFile(second.configFile, "utf8");
    expect(conf2).toMatch(/^port: 4333$/m);
    expect(conf2).not.toContain("ep.node.n2.");

    const rotated = await writeNatsConfig({ nodes: ["n1"], outDir: out, rotate: true });
    expect(rotated.credentials[1]?.publicKey).not.toBe(keys.n1?.publicKey);
  });

  it("refuses node ids that are not one subject token, and a control plane named like a node", async () => {
    const out = await tempDir();
    await expect(writeNatsConfig({ nodes: ["a.b"], outDir: out })).rejects.toThrow(/--nodes: "a.b"/);
    await expect(writeNatsConfig({ nodes: ["*"], outDir: out })).rejects.toThrow(/--nodes/);
    await expect(writeNatsConfig({ nodes: [], outDir: out })).rejects.toThrow(/at least one node/);
    await expect(writeNatsConfig({ nodes: ["cp"], outDir: out, controlPlaneUser: "cp" })).rejects.toThrow(
      /also a node id/,
    );
  });
});
