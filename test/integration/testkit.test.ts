/**
 * testkit against real binaries: each test starts its own servers (never the run's shared ones,
 * never the machine's 6379/4222) and cleans them up in afterEach.
 */
import { realpathSync } from "node:fs";
import { access } from "node:fs/promises";
import { join } from "node:path";
import { isEdgeplaneError } from "@edgeplane/core";
import {
  externalOrStartNats,
  externalOrStartRedis,
  type NatsServer,
  RESERVED_PORTS,
  type RedisServer,
  startNats,
  startNatsCluster,
  startRedis,
  waitFor,
  withTimeout,
} from "@edgeplane/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Redis } from "ioredis";
import { afterEach, describe, expect, inject, it, vi } from "vitest";

const cleanups: Array<() => unknown> = [];

/** Registers `fn` to run after the current test, last registered first. */
function defer(fn: () => unknown): void {
  cleanups.push(fn);
}

afterEach(async () => {
  vi.unstubAllEnvs();
  for (const fn of cleanups.splice(0).reverse()) {
    await Promise.resolve()
      .then(fn)
      .catch(() => {});
  }
});

async function redisServer(options?: Parameters<typeof startRedis>[0]): Promise<RedisServer> {
  const server = await startRedis(options);
  defer(() => server.stop({ graceMs: 1000 }));
  return server;
}

async function natsServer(options?: Parameters<typeof startNats>[0]): Promise<NatsServer> {
  const server = await startNats(options);
  defer(() => server.stop({ graceMs: 1000 }));
  return server;
}

function redisClient(url: string): Redis {
  // Fast reconnects: the server comes back on the same port within a second.
  const client = new Redis(url, { retryStrategy: () => 50, maxRetriesPerRequest: null });
  defer(() => client.disconnect());
  return client;
}

async function natsClient(servers: string | string[]): Promise<NatsConnection> {
  const nc = await connect({ servers, reconnectTimeWait: 50, maxReconnectAttempts: -1 });
  defer(() => nc.close());
  return nc;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** `INFO persistence` as a map. */
async function persistence(client: Redis): Promise<Record<string, string>> {
  const text = await client.info("persistence");
  return Object.fromEntries(
    text
      .split("\r\n")
      .filter((line) => line.includes(":"))
      .map((line) => [line.slice(0, line.indexOf(":")), line.slice(line.indexOf(":") + 1)]),
  );
}

/** Calls a JetStream API subject over core NATS and returns the parsed JSON answer. */
async function jsApi(
  nc: NatsConnection,
  subject: string,
  body: unknown = {},
): Promise<Record<string, unknown>> {
  const reply = await nc.request(`$JS.API.${subject}`, JSON.stringify(body), { timeout: 2000 });
  return reply.json<Record<string, unknown>>();
}

/** Resolves with the first message on `subject`, after the subscription is known to the server. */
async function firstMessage(nc: NatsConnection, subject: string): Promise<() => string | undefined> {
  let received: string | undefined;
  const sub = nc.subscribe(subject, {
    max: 1,
    callback: (_err, msg) => {
      received = msg.string();
    },
  });
  defer(() => sub.unsubscribe());
  await nc.flush();
  return () => received;
}

describe("the shared servers of globalSetup", () => {
  it("are provided to tests and are not the machine's shared servers", () => {
    const redisUrl = inject("redisUrl");
    const natsUrl = inject("natsUrl");
    expect(redisUrl).toMatch(/^redis:\/\//);
    expect(natsUrl).toMatch(/^nats:\/\//);
    if (process.env.REDIS_URL === undefined) expect(new URL(redisUrl).port).not.toBe("6379");
    if (process.env.NATS_URL === undefined) expect(new URL(natsUrl).port).not.toBe("4222");
  });
});

describe("startRedis", () => {
  it("starts redis-server configured for production, answering PING", async () => {
    const server = await redisServer();
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    expect(RESERVED_PORTS.has(server.port)).toBe(false);
    expect(server.dataDir).toContain("edgeplane-testkit-redis-");
    const client = redisClient(server.url);
    expect(await client.ping()).toBe("PONG");
    const config = async (name: string): Promise<string | undefined> =>
      ((await client.config("GET", name)) as string[])[1];
    expect(await config("appendonly")).toBe("yes");
    expect(await config("appendfsync")).toBe("everysec");
    expect(await config("maxmemory-policy")).toBe("noeviction");
    expect(await config("save")).toBe("");
    expect(realpathSync(String(await config("dir")))).toBe(realpathSync(server.dataDir));
    expect(server.logs()).toMatch(/Ready to accept connections/);
  });

  it("keeps acknowledged writes across kill -9 and restart on the same port (AOF)", async () => {
    const server = await redisServer();
    const client = redisClient(server.url);
    const writes = client.multi();
    for (let i = 0; i < 100; i++) writes.set(`testkit:key:${i}`, `value-${i}`);
    await writes.exec();
    // With everysec, Redis write()s the AOF buffer to the kernel before it replies, unless an
    // fsync is in flight (then it may postpone the write up to 2 s). A SIGKILL keeps what the
    // kernel has, so wait until nothing is buffered in Redis or pending in the fsync thread.
    await waitFor(
      async () => {
        const p = await persistence(client);
        return p.aof_buffer_length === "0" && p.aof_pending_bio_fsync === "0";
      },
      { message: "the AOF buffer to reach the kernel" },
    );

    const { pid, port, dataDir } = server;
    await server.kill();
    expect(server.running).toBe(false);
    expect(isAlive(pid)).toBe(false);

    await server.restart();
    expect(server.pid).not.toBe(pid);
    expect(server.port).toBe(port);
    expect(server.dataDir).toBe(dataDir);
    // The old client reconnects to the same port by itself.
    expect(await withTimeout(client.get("testkit:key:99"), 5000, "GET after restart")).toBe("value-99");
    const fresh = redisClient(server.url);
    expect(await fresh.mget("testkit:key:0", "testkit:key:42")).toEqual(["value-0", "value-42"]);
    expect(await fresh.dbsize()).toBe(100);
  });

  it("runs several servers side by side on distinct ports with separate data", async () => {
    const [a, b] = await Promise.all([redisServer(), redisServer()]);
    expect(a.port).not.toBe(b.port);
    expect(a.dataDir).not.toBe(b.dataDir);
    const [ca, cb] = [redisClient(a.url), redisClient(b.url)];
    await ca.set("who", "a");
    await cb.set("who", "b");
    expect([await ca.get("who"), await cb.get("who")]).toEqual(["a", "b"]);
  });

  it("pauses (SIGSTOP) and resumes (SIGCONT) a server", async () => {
    const server = await redisServer();
    const client = redisClient(server.url);
    expect(await client.ping()).toBe("PONG");
    await server.pause();
    expect(server.paused).toBe(true);
    const ping = client.ping();
    await expect(withTimeout(ping, 300, "PING to a paused server")).rejects.toMatchObject({
      code: "deadline_exceeded",
    });
    await server.resume();
    expect(await withTimeout(ping, 5000, "PING after resume")).toBe("PONG");
  });

  it("stop() is idempotent, removes the data dir, and forbids restart", async () => {
    const server = await startRedis();
    await server.stop();
    await server.stop();
    expect(server.running).toBe(false);
    await expect(access(server.dataDir)).rejects.toThrow();
    await expect(server.restart()).rejects.toMatchObject({ code: "failed_precondition" });
  });

  it("stop() ends a paused server too (SIGCONT, then SIGTERM: a clean shutdown)", async () => {
    const server = await startRedis();
    await server.pause();
    await server.stop({ graceMs: 5000 });
    expect(isAlive(server.pid)).toBe(false);
    expect(server.logs()).toMatch(/Redis is now ready to exit/);
  });

  it("restart() of a running server shuts it down cleanly first, keeping its data", async () => {
    const server = await redisServer();
    const client = redisClient(server.url);
    await client.set("testkit:graceful", "kept");
    const { pid } = server;
    await server.restart();
    expect(server.pid).not.toBe(pid);
    expect(server.logs(200)).toMatch(/Calling fsync\(\) on the AOF file/);
    expect(await withTimeout(client.get("testkit:graceful"), 5000, "GET after restart")).toBe("kept");
  });

  it("aborts a start when its signal fires", async () => {
    await expect(startRedis({ signal: AbortSignal.abort() })).rejects.toMatchObject({ code: "canceled" });
  });

  it("names the apt-get command when the binary is missing", async () => {
    const missing = startRedis({ binary: "redis-server-not-installed" });
    await expect(missing).rejects.toSatisfy(isEdgeplaneError);
    await expect(missing).rejects.toMatchObject({
      code: "failed_precondition",
      message: expect.stringContaining("apt-get install -y nats-server redis-server"),
    });
    await expect(startNats({ binary: "/nonexistent/nats-server" })).rejects.toMatchObject({
      code: "failed_precondition",
      message: expect.stringContaining("apt-get install -y nats-server redis-server"),
    });
  });

  it("reports a server that exits at startup with its log lines", async () => {
    await expect(startRedis({ args: ["--no-such-option", "x"] })).rejects.toMatchObject({
      code: "unavailable",
      message: expect.stringMatching(/exited with code \d+ before it was ready[\s\S]*no-such-option/i),
    });
  });
});

describe("startNats", () => {
  it("starts nats-server with JetStream; kill -9 and restart keep the port and the streams", async () => {
    const server = await natsServer();
    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
    expect(RESERVED_PORTS.has(server.port)).toBe(false);
    expect(server.jetstream).toBe(true);
    const nc = await natsClient(server.url);
    expect(nc.info?.jetstream).toBe(true);
    expect(nc.info?.server_name).toBe(server.serverName);

    const sub = nc.subscribe("testkit.echo", {
      callback: (_err, msg) => {
        msg.respond(msg.data);
      },
    });
    defer(() => sub.unsubscribe());
    expect((await nc.request("testkit.echo", "ping", { timeout: 2000 })).string()).toBe("ping");

    const created = await jsApi(nc, "STREAM.CREATE.TESTKIT", { name: "TESTKIT", subjects: ["testkit.js.>"] });
    expect(created.error).toBeUndefined();
    await access(join(server.storeDir, "jetstream"));

    const { pid, port } = server;
    await server.kill();
    expect(isAlive(pid)).toBe(false);
    await server.restart();
    expect(server.port).toBe(port);
    expect(server.pid).not.toBe(pid);

    // The same connection reconnects to the same port; the responder is re-subscribed.
    const echoed = await waitFor(
      async () => (await nc.request("testkit.echo", "again", { timeout: 500 })).string(),
      { timeoutMs: 10_000, message: "request/reply after restart" },
    );
    expect(echoed).toBe("again");
    const info = await jsApi(nc, "STREAM.INFO.TESTKIT");
    expect(info.error).toBeUndefined();
    expect((info.config as { subjects?: string[] }).subjects).toEqual(["testkit.js.>"]);

    const got = await firstMessage(nc, "testkit.after");
    nc.publish("testkit.after", "hello");
    expect(await waitFor(got, { message: "the message published after restart" })).toBe("hello");
    expect(server.logs(200)).toMatch(/Server is ready[\s\S]*kill SIGKILL[\s\S]*Server is ready/);
  });

  it("passes a config file with -c and can run without JetStream", async () => {
    const server = await natsServer({ jetstream: false, config: "max_payload: 4096\n" });
    expect(server.configFile).toBe(join(server.storeDir, "nats.conf"));
    const nc = await natsClient(server.url);
    expect(nc.info?.max_payload).toBe(4096);
    expect(nc.info?.jetstream ?? false).toBe(false);
    const varz = await server.monitor("/varz");
    expect(varz.server_name).toBe(server.serverName);
  });

  it("pauses and resumes", async () => {
    const server = await natsServer();
    const nc = await natsClient(server.url);
    await server.pause();
    await expect(withTimeout(nc.flush(), 300, "flush to a paused server")).rejects.toMatchObject({
      code: "deadline_exceeded",
    });
    await server.resume();
    await withTimeout(nc.flush(), 5000, "flush after resume");
  });

  it("starts a 3-node cluster that routes messages and survives a member's kill -9", async () => {
    const cluster = await startNatsCluster(3);
    defer(() => cluster.stop({ graceMs: 1000 }));
    expect(new Set(cluster.servers.map((s) => s.port)).size).toBe(3);
    expect(new Set(cluster.servers.map((s) => s.storeDir)).size).toBe(3);
    const [s0, s1, s2] = cluster.servers;
    if (!s0 || !s1 || !s2) throw new Error("expected 3 servers");

    const publisher = await natsClient(s0.url);
    const subscriber = await natsClient(s2.url);
    expect(publisher.info?.server_name).toBe(s0.serverName);
    expect(subscriber.info?.server_name).toBe(s2.serverName);
    const got = await firstMessage(subscriber, "testkit.cluster");
    // Interest crosses the route asynchronously: publish until the subscriber sees one.
    const message = await waitFor(
      () => {
        publisher.publish("testkit.cluster", "across the route");
        return got();
      },
      { intervalMs: 50, message: "a message from s0 to a subscriber on s2" },
    );
    expect(message).toBe("across the route");

    const jsz = await s1.monitor("/jsz");
    expect(jsz.meta_cluster).toMatchObject({ cluster_size: 3 });

    await s1.kill();
    await s1.restart();
    await cluster.waitReady();
    expect((await s1.monitor("/routez")).num_routes).toBe(2);
  });
});

describe("external servers", () => {
  it("uses REDIS_URL / NATS_URL and refuses to kill or restart them", async () => {
    vi.stubEnv("REDIS_URL", "redis://127.0.0.1:1");
    vi.stubEnv("NATS_URL", "nats://127.0.0.1:2,nats://127.0.0.1:3");
    const redis = await externalOrStartRedis();
    const nats = await externalOrStartNats();
    expect(redis).toMatchObject({ external: true, url: "redis://127.0.0.1:1", port: 1, pid: undefined });
    expect(nats).toMatchObject({ external: true, host: "127.0.0.1", port: 2 });
    await expect(redis.kill()).rejects.toMatchObject({
      code: "failed_precondition",
      message: expect.stringContaining("unset REDIS_URL to let testkit start one"),
    });
    await expect(nats.restart()).rejects.toThrow(/cannot restart an external server.*unset NATS_URL/);
    await expect(redis.pause()).rejects.toThrow(/cannot pause an external server/);
    await redis.stop(); // a no-op: not ours to stop
  });

  it("starts its own servers when the variables are unset", async () => {
    vi.stubEnv("REDIS_URL", undefined);
    vi.stubEnv("NATS_URL", "");
    const redis = await externalOrStartRedis();
    defer(() => redis.stop());
    const nats = await externalOrStartNats({ jetstream: false });
    defer(() => nats.stop());
    expect(redis.external).toBe(false);
    expect(nats.external).toBe(false);
    expect(await redisClient(redis.url).ping()).toBe("PONG");
    await (await natsClient(nats.url)).flush();
  });
});
