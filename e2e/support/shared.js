// Shared mode for the browser: a Redis server and a PostgreSQL database of the test's own, several
// real `hubbub` instances on them, and Debian's nginx in front, round-robin.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { freePort, startServer } from "./server.js";

const POSTGRES = process.env.HUBBUB_TEST_POSTGRES;

async function waitFor(what, probe) {
  const deadline = Date.now() + 10_000;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`never: ${what}`);
    await new Promise((done) => setTimeout(done, 50));
  }
}

async function answers(url) {
  try {
    return (await fetch(url)).ok;
  } catch {
    return false;
  }
}

/** A cluster of `count` instances behind nginx; `stop` ends every process and drops the database. */
export async function startCluster(count) {
  if (!POSTGRES) throw new Error("shared mode needs PostgreSQL: set HUBBUB_TEST_POSTGRES=postgres://…/postgres");
  const dir = mkdtempSync(join(tmpdir(), "hubbub-shared-"));
  const redisPort = await freePort();
  const redis = spawn("redis-server", ["--bind", "127.0.0.1", "--port", String(redisPort), "--save", "", "--appendonly", "no", "--dir", dir], { stdio: "ignore" });
  await waitFor("redis-server answers", () => {
    try {
      const answer = execFileSync("redis-cli", ["-p", String(redisPort), "PING"], { stdio: ["ignore", "pipe", "ignore"] });
      return answer.toString().trim() === "PONG";
    } catch {
      return false;
    }
  });
  const name = `hubbub_test_${Date.now()}_${process.pid}`;
  execFileSync("psql", [POSTGRES, "-qc", `CREATE DATABASE ${name}`]);
  const database = new URL(POSTGRES);
  database.pathname = `/${name}`;
  const flags = [
    "--redis-url", `redis://127.0.0.1:${redisPort}/0`,
    "--instance-timeout", "3s", "--trust-proxy",
  ];
  const instances = [];
  for (let i = 0; i < count; i += 1) instances.push(await startServer(flags, { databaseUrl: database.toString() }));

  const nginxPort = await freePort();
  const upstreams = instances.map((s) => `server 127.0.0.1:${s.port} max_fails=1 fail_timeout=30s;`).join("\n");
  writeFileSync(join(dir, "nginx.conf"), `
    daemon off;
    pid ${dir}/nginx.pid;
    error_log ${dir}/nginx-error.log;
    events {}
    http {
      access_log off;
      client_body_temp_path ${dir};
      proxy_temp_path ${dir};
      fastcgi_temp_path ${dir};
      uwsgi_temp_path ${dir};
      scgi_temp_path ${dir};
      upstream hubbub { ${upstreams} }
      map $http_upgrade $connection_upgrade { default upgrade; "" close; }
      server {
        listen 127.0.0.1:${nginxPort};
        location / {
          proxy_pass http://hubbub;
          proxy_http_version 1.1;
          proxy_set_header Upgrade $http_upgrade;
          proxy_set_header Connection $connection_upgrade;
          proxy_set_header Host $http_host;
          proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
          proxy_read_timeout 1h;
        }
      }
    }`);
  const nginx = spawn("nginx", ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "nginx-error.log")], { stdio: "inherit" });
  const url = `http://127.0.0.1:${nginxPort}`;
  await waitFor("nginx answers", () => answers(`${url}/healthz`));

  return {
    url,
    instances,
    async stop() {
      nginx.kill("SIGTERM");
      for (const instance of instances) await instance.stop().catch(() => {});
      redis.kill("SIGKILL");
      execFileSync("psql", [POSTGRES, "-qc", `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** How many WebSockets the instance itself holds, from its own /metrics. */
export async function openConnections(instance) {
  const text = await (await fetch(`${instance.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("hubbub_connections_open"));
  return line ? Number(line.split(" ").at(-1)) : 0;
}
