// Starts the real `hubbub` binary on a free port, from a temporary directory so that it must rely on
// its embedded templates and static files.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const BINARY = process.env.HUBBUB_BIN ?? resolve(import.meta.dirname, "../../target/release/hubbub");

export function freePort() {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}

/**
 * Starts a server with its own SQLite database, or on `databaseUrl`. A restart passes the previous
 * server's `port` and `database` (a directory) to come back at the same address with the same rooms.
 */
export async function startServer(flags = [], { port, database, databaseUrl } = {}) {
  port ??= await freePort();
  database ??= mkdtempSync(join(tmpdir(), "hubbub-e2e-"));
  const args = [
    "--host", "127.0.0.1", "--port", String(port), "--log-level", "warn",
    "--database-url", databaseUrl ?? `sqlite:${join(database, "hubbub.db")}`, ...flags,
  ];
  const child = spawn(BINARY, args, { cwd: tmpdir(), stdio: ["ignore", "inherit", "inherit"] });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`hubbub exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`hubbub did not answer on ${url}`);
    await new Promise((done) => setTimeout(done, 50));
  }
  return {
    url,
    port,
    database,
    /** Kills it as a power cut would: no goodbye to anyone. */
    async kill() {
      child.kill("SIGKILL");
      await new Promise((done) => (child.exitCode !== null || child.signalCode !== null ? done() : child.once("exit", done)));
      rmSync(database, { recursive: true, force: true });
    },
    /** Stops with SIGTERM, as a container runtime does; `keep` leaves the database for a restart. */
    async stop({ keep = false } = {}) {
      child.kill("SIGTERM");
      await new Promise((done) => (child.exitCode !== null || child.signalCode !== null ? done() : child.once("exit", done)));
      if (!keep) rmSync(database, { recursive: true, force: true });
    },
  };
}

export async function createRoom(server) {
  const response = await fetch(`${server.url}/api/rooms`, { method: "POST" });
  return (await response.json()).code;
}

export async function postMessage(server, code, name, text) {
  const response = await fetch(`${server.url}/api/rooms/${code}/messages`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name, text }),
  });
  if (response.status !== 201) throw new Error(`posting failed: ${response.status}`);
}
