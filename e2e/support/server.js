// Starts the real `hubbub` binary on a free port, from a temporary directory so that it must rely on
// its embedded templates and static files.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { resolve } from "node:path";

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

export async function startServer(flags = []) {
  const port = await freePort();
  const child = spawn(BINARY, ["--host", "127.0.0.1", "--port", String(port), "--log-level", "warn", ...flags], {
    cwd: tmpdir(),
    stdio: ["ignore", "inherit", "inherit"],
  });
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
    async stop() {
      child.kill("SIGTERM");
      await new Promise((done) => (child.exitCode !== null ? done() : child.once("exit", done)));
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
