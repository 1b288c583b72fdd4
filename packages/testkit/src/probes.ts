/**
 * Readiness probes over raw TCP and HTTP, so testkit needs no Redis or NATS client library.
 * Each probe opens its own short-lived connection and never throws: it returns `ok` or the
 * reason it is not ready yet, which ends up in the timeout error.
 */
import { request } from "node:http";
import { connect } from "node:net";

/** A probe result: ready, or why not. */
export type ProbeResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

const OK: ProbeResult = Object.freeze({ ok: true });
const PROBE_TIMEOUT_MS = 1000;

/** Sends `payload` (if any) and collects bytes until `complete(buffer)` or the timeout. */
function tcpExchange(
  port: number,
  payload: string | undefined,
  complete: (data: Buffer) => boolean,
  timeoutMs = PROBE_TIMEOUT_MS,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect({ host: "127.0.0.1", port });
    socket.setTimeout(timeoutMs, () =>
      socket.destroy(new Error(`no complete answer within ${timeoutMs} ms`)),
    );
    socket.once("connect", () => {
      if (payload !== undefined) socket.write(payload);
    });
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      const data = Buffer.concat(chunks);
      if (complete(data)) {
        socket.destroy();
        resolve(data);
      }
    });
    socket.once("error", reject);
    socket.once("close", () => reject(new Error("connection closed before a complete answer")));
  });
}

/** Whether `data` holds one complete RESP reply (simple string, error, integer or bulk string). */
export function isCompleteRespReply(data: Buffer): boolean {
  const eol = data.indexOf("\r\n");
  if (eol < 0) return false;
  if (data[0] !== 0x24 /* $ */) return true;
  const length = Number(data.subarray(1, eol).toString("latin1"));
  return length < 0 || data.length >= eol + 2 + length + 2;
}

/** Sends one inline command to Redis on `port` and returns the raw reply text. */
export async function redisRawCommand(port: number, command: string): Promise<string> {
  const reply = await tcpExchange(port, `${command}\r\n`, isCompleteRespReply);
  return reply.toString("utf8");
}

/**
 * Ready when Redis on `port` answers `PING` with `+PONG` (not `-LOADING` while it replays the
 * AOF) and `INFO server` shows `process_id:<expectedPid>`, which proves the port is held by
 * the process we spawned and not by some other Redis. `-NOAUTH` (a `--requirepass` in the extra
 * args) counts as ready, since the pid cannot be read without the password.
 */
export async function probeRedis(port: number, expectedPid: number): Promise<ProbeResult> {
  try {
    const pong = await redisRawCommand(port, "PING");
    if (pong.startsWith("-NOAUTH")) return OK;
    if (!pong.startsWith("+PONG")) return { ok: false, reason: `PING answered ${firstLine(pong)}` };
    const info = await redisRawCommand(port, "INFO server");
    const pid = /process_id:(\d+)/.exec(info)?.[1];
    if (Number(pid) !== expectedPid) {
      return { ok: false, reason: `port ${port} is held by another redis-server (pid ${pid ?? "?"})` };
    }
    return OK;
  } catch (err) {
    return { ok: false, reason: errorMessage(err) };
  }
}

/** The parsed `INFO {...}` line a NATS server sends to every new client connection. */
export async function readNatsInfo(port: number): Promise<Record<string, unknown>> {
  const data = await tcpExchange(port, undefined, (d) => d.includes("\r\n"));
  const line = firstLine(data.toString("utf8"));
  if (!line.startsWith("INFO ")) throw new Error(`expected INFO, got ${JSON.stringify(line.slice(0, 80))}`);
  return JSON.parse(line.slice(5)) as Record<string, unknown>;
}

/** Ready when NATS on `port` greets with an `INFO` naming `serverName` (so it is our process). */
export async function probeNatsClientPort(port: number, serverName: string): Promise<ProbeResult> {
  try {
    const info = await readNatsInfo(port);
    if (info.server_name !== serverName) {
      return {
        ok: false,
        reason: `port ${port} is held by another nats-server (${String(info.server_name)})`,
      };
    }
    return OK;
  } catch (err) {
    return { ok: false, reason: errorMessage(err) };
  }
}

/** GETs `http://127.0.0.1:<port><path>` (no keep-alive) and returns the status and JSON body. */
export function httpGetJson(port: number, path: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path,
        agent: false,
        headers: { connection: "close" },
        timeout: PROBE_TIMEOUT_MS,
      },
      (res) => {
        res.setEncoding("utf8");
        let text = "";
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.once("end", () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: text === "" ? undefined : JSON.parse(text) });
          } catch (err) {
            reject(err);
          }
        });
        res.once("error", reject);
      },
    );
    req.once("timeout", () => req.destroy(new Error(`GET ${path} timed out`)));
    req.once("error", reject);
    req.end();
  });
}

/** Ready when the NATS monitoring endpoint `/healthz` answers 200 `{"status":"ok"}`. */
export async function probeNatsHealthz(monitorPort: number): Promise<ProbeResult> {
  try {
    const { status, body } = await httpGetJson(monitorPort, "/healthz");
    if (status === 200 && (body as { status?: unknown } | undefined)?.status === "ok") return OK;
    return { ok: false, reason: `/healthz answered ${status} ${JSON.stringify(body)}` };
  } catch (err) {
    return { ok: false, reason: `/healthz: ${errorMessage(err)}` };
  }
}

function firstLine(text: string): string {
  const eol = text.indexOf("\r\n");
  return eol < 0 ? text : text.slice(0, eol);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
