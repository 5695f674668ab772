// How the room page looks: phone width, dark and light schemes, scrolling and unread counts.
import assert from "node:assert/strict";
import { test } from "node:test";

import { openPage } from "../support/browser.js";
import { serverAndBrowser } from "../support/fixture.js";
import { joinByLink, say, seeMessage } from "../support/room.js";
import { createRoom, postMessage } from "../support/server.js";

const env = serverAndBrowser(["--rate-limit", "100", "--rate-burst", "100"]);

async function horizontalOverflow(page) {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}

test("at phone width the room page has no horizontal scroll", async () => {
  const code = await createRoom(env.server);
  const page = await openPage(env.browser, { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
  await joinByLink(page, `${env.server.url}/r/${code}`, "a-rather-long-display-name-here");
  await postMessage(env.server, code, "bot", "x".repeat(300));
  await seeMessage(page, "x".repeat(300));

  assert.equal(await horizontalOverflow(page), 0);
  const box = async (selector) => page.locator(selector).boundingBox();
  assert.ok((await box(".members")).y < (await box("#log")).y, "the member strip sits above the log");
  const composer = await box("#composer");
  assert.ok(composer.y + composer.height <= 740, "the composer is on screen");
  await page.goto(env.server.url);
  assert.equal(await horizontalOverflow(page), 0);
});

test("the page follows the system's light or dark scheme", async () => {
  const code = await createRoom(env.server);
  const background = async (colorScheme) => {
    const page = await openPage(env.browser, { colorScheme });
    await page.goto(`${env.server.url}/r/${code}`);
    return page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  };

  assert.equal(await background("light"), "rgb(255, 255, 255)");
  assert.equal(await background("dark"), "rgb(15, 20, 25)");
});

test("reading older messages is not interrupted: a button offers the new ones", async () => {
  const code = await createRoom(env.server);
  const page = await openPage(env.browser, { viewport: { width: 900, height: 500 } });
  await joinByLink(page, `${env.server.url}/r/${code}`, "reader");
  for (let i = 1; i <= 40; i += 1) await postMessage(env.server, code, "bot", `message ${i}`);
  await seeMessage(page, "message 40");
  const log = page.locator("#log");
  assert.equal(await page.locator("#new-messages").isHidden(), true, "at the bottom, no button");

  await log.evaluate((element) => { element.scrollTop = 0; });
  await postMessage(env.server, code, "bot", "message 41");
  await seeMessage(page, "message 41");

  assert.equal(await log.evaluate((element) => element.scrollTop), 0, "the reader stays where they were");
  await page.getByRole("button", { name: "New messages ↓" }).click();
  assert.ok(await log.evaluate((e) => e.scrollHeight - e.scrollTop - e.clientHeight < 5));
  assert.equal(await page.locator("#new-messages").isHidden(), true);
});

test("the tab title counts unread messages while the tab is hidden", async () => {
  const code = await createRoom(env.server);
  const page = await openPage(env.browser);
  await joinByLink(page, `${env.server.url}/r/${code}`, "away");
  await page.evaluate(() => {
    Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
  });

  await postMessage(env.server, code, "bot", "one");
  await postMessage(env.server, code, "bot", "two");
  await seeMessage(page, "two");
  assert.equal(await page.title(), `(2) Room ${code} — Hubbub`);

  await page.evaluate(() => {
    Object.defineProperty(document, "hidden", { configurable: true, get: () => false });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  assert.equal(await page.title(), `Room ${code} — Hubbub`);
  await say(page, "back");
});
