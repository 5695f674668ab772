// Accessibility: the whole journey from the keyboard alone, and WCAG AA contrast in both schemes.
import assert from "node:assert/strict";
import { test } from "node:test";

import { openPage } from "../support/browser.js";
import { serverAndBrowser } from "../support/fixture.js";
import { joinByLink, say, seeMessage, seeSystemLine } from "../support/room.js";
import { createRoom, postMessage } from "../support/server.js";

const env = serverAndBrowser();

async function focusedId(page) {
  return page.evaluate(() => document.activeElement?.id ?? "");
}

/** Presses Tab until the element with `id` has focus; fails after `limit` presses. */
async function tabTo(page, id, limit = 15) {
  for (let presses = 0; presses < limit; presses += 1) {
    if ((await focusedId(page)) === id) return;
    await page.keyboard.press("Tab");
  }
  assert.fail(`#${id} was not reached with ${limit} presses of Tab`);
}

test("a person can join, chat and rename with the keyboard alone", async () => {
  const code = await createRoom(env.server);
  const page = await openPage(env.browser);
  await page.goto(env.server.url);

  await tabTo(page, "name");
  await page.keyboard.type("keys");
  await page.keyboard.press("Tab");
  assert.equal(await focusedId(page), "join-code", "the room code comes right after the name");
  await page.keyboard.type(code);
  await page.keyboard.press("Enter");
  await page.locator("#my-name", { hasText: "keys" }).waitFor();
  await tabTo(page, "message");
  await page.keyboard.type("typed without a mouse");
  await page.keyboard.press("Enter");
  await seeMessage(page, "typed without a mouse");
  await tabTo(page, "rename");
  await page.keyboard.press("Enter");
  assert.equal(await focusedId(page), "name-input", "the name dialog takes the focus");
  await page.keyboard.type("keyboard");
  await page.keyboard.press("Enter");

  await seeSystemLine(page, "keys is now keyboard");
});

/** WCAG contrast ratio of each element's text colour against the background it sits on. */
function contrasts(page, selectors) {
  return page.evaluate((selectors) => {
    const rgb = (css) => (css.match(/[\d.]+/g) ?? []).map(Number);
    const luminance = ([r, g, b]) => {
      const channel = (value) => {
        const c = value / 255;
        return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    };
    const backgroundOf = (element) => {
      for (let node = element; node; node = node.parentElement) {
        const [r, g, b, a = 1] = rgb(getComputedStyle(node).backgroundColor);
        if (a > 0) return [r, g, b];
      }
      return rgb(getComputedStyle(document.documentElement).backgroundColor);
    };
    return selectors.map((selector) => {
      const element = document.querySelector(selector);
      if (!element) return { selector, ratio: 0, missing: true };
      const [light, dark] = [luminance(rgb(getComputedStyle(element).color)), luminance(backgroundOf(element))]
        .sort((a, b) => b - a);
      return { selector, ratio: Math.round(((light + 0.05) / (dark + 0.05)) * 100) / 100 };
    });
  }, selectors);
}

for (const colorScheme of ["light", "dark"]) {
  test(`text meets WCAG AA contrast (4.5:1) in the ${colorScheme} scheme`, async () => {
    const code = await createRoom(env.server);
    const room = await openPage(env.browser, { colorScheme });
    await joinByLink(room, `${env.server.url}/r/${code}`, "reader");
    await joinByLink(await openPage(env.browser), `${env.server.url}/r/${code}`, "guest");
    await seeSystemLine(room, "guest joined");
    await postMessage(env.server, code, "bot", "from someone else");
    await say(room, "from me");
    await seeMessage(room, "from me");
    const home = await openPage(env.browser, { colorScheme });
    await home.goto(env.server.url);
    await home.getByRole("button", { name: "Join", exact: true }).click();

    const results = [
      ...(await contrasts(room, [
        ".msg .msg-text", ".msg .who", ".msg time", ".msg.mine .msg-text", ".msg.mine time", ".system",
        ".room-header .muted", "#room-code", "#rename", "#send", "#members li", ".members .count",
      ])),
      ...(await contrasts(home, ["label", ".hint", ".tagline", "#name-error", "#join", "#create", "legend"])),
    ];

    const failing = results.filter(({ ratio }) => ratio < 4.5);
    assert.deepEqual(failing, [], JSON.stringify(results));
  });
}
