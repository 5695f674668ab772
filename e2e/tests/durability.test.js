// Durable rooms in the browser: a server restart loses nothing, and older messages load on scroll.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { launch, openPage } from "../support/browser.js";
import { countMessages, joinByLink, say, seeMessage } from "../support/room.js";
import { createRoom, postMessage, startServer } from "../support/server.js";

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

test("after a server restart the page reconnects by itself and a reload still shows the history", async () => {
  let server = await startServer();
  const code = await createRoom(server);
  const page = await openPage(browser);
  await joinByLink(page, `${server.url}/r/${code}`, "ann");
  await say(page, "said before the restart");
  await seeMessage(page, "said before the restart");

  await server.stop({ keep: true });
  await page.locator("#connection", { hasText: "Reconnecting…" }).waitFor();
  server = await startServer([], { port: server.port, database: server.database });
  try {
    await page.locator("#connection").waitFor({ state: "hidden", timeout: 20_000 });
    await say(page, "said after the restart");
    await seeMessage(page, "said after the restart");
    await page.reload();

    await seeMessage(page, "said before the restart");
    await seeMessage(page, "said after the restart");
    assert.equal(await countMessages(page, "said before the restart"), 1);
  } finally {
    await server.stop();
  }
});

test("scrolling to the top loads older messages, each once and in order", async () => {
  const server = await startServer(["--rate-limit", "1000", "--rate-burst", "1000"]);
  try {
    const code = await createRoom(server);
    for (let i = 1; i <= 120; i += 1) await postMessage(server, code, "bot", `m${i}`);
    const page = await openPage(browser, { viewport: { width: 900, height: 600 } });
    await joinByLink(page, `${server.url}/r/${code}`, "reader");
    await seeMessage(page, "m120");
    assert.equal(await countMessages(page, "m1"), 0, "the welcome holds only the latest 50");

    for (let tries = 0; tries < 20 && (await countMessages(page, "m1")) === 0; tries += 1) {
      await page.locator("#log").evaluate((log) => { log.scrollTop = 0; });
      await page.waitForTimeout(150);
    }

    const texts = await page.locator("#log .msg-text").allTextContents();
    assert.deepEqual(texts, Array.from({ length: 120 }, (_, i) => `m${i + 1}`));
  } finally {
    await server.stop();
  }
});

test("in a room made with disappearing messages, they vanish from the open page", async () => {
  const server = await startServer();
  try {
    const page = await openPage(browser);
    await page.goto(server.url);
    await page.getByLabel("Your name").fill("ann");
    await page.getByLabel("Messages disappear").selectOption({ label: "after 1 hour" });
    await page.getByRole("button", { name: "Create a room" }).click();
    await page.locator("#lifetime", { hasText: "messages disappear after 1 hour" }).waitFor();
    const response = await fetch(`${server.url}/api/rooms`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ expire_after_seconds: 2 }),
    });
    const { code } = await response.json();
    await joinByLink(page, `${server.url}/r/${code}`, "ann");
    await say(page, "now you see me");
    await seeMessage(page, "now you see me");

    await page.locator("#log .msg-text", { hasText: "now you see me" }).waitFor({ state: "detached", timeout: 10_000 });

    assert.equal(await page.locator("#lifetime").textContent(), "· messages disappear after 2 seconds");
  } finally {
    await server.stop();
  }
});
