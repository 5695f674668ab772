// One server and one browser per test file, started before its tests and stopped after them.
import { after, before } from "node:test";

import { launch } from "./browser.js";
import { startServer } from "./server.js";

/** Registers the hooks; the returned object has `browser` and `server` once the tests run. */
export function serverAndBrowser(flags = []) {
  const env = { browser: null, server: null };
  before(async () => {
    [env.browser, env.server] = await Promise.all([launch(), startServer(flags)]);
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.stop();
  });
  return env;
}
