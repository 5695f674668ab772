// Turned away: a full room says why and tries again now and then, instead of "Reconnecting…" forever.
import assert from "node:assert/strict";
import { test } from "node:test";

import { openPage } from "../support/browser.js";
import { serverAndBrowser } from "../support/fixture.js";
import { joinByLink, say, seeMessage } from "../support/room.js";
import { createRoom } from "../support/server.js";

const env = serverAndBrowser(["--max-members-per-room", "1"]);

test("a full room shows its reason and lets the person try again once there is room", async () => {
  const code = await createRoom(env.server);
  const ann = await openPage(env.browser);
  const bob = await openPage(env.browser);
  await joinByLink(ann, `${env.server.url}/r/${code}`, "ann");

  await bob.goto(`${env.server.url}/r/${code}`);
  await bob.getByRole("dialog").getByLabel("Your name").fill("bob");
  await bob.getByRole("button", { name: "Join", exact: true }).click();
  const banner = bob.locator("#connection", { hasText: "This room is full" });
  await banner.waitFor();
  assert.match(await banner.textContent(), /at most 1 people\. Trying again in 30 seconds\./);
  assert.doesNotMatch(await banner.textContent(), /Reconnecting/);

  await ann.getByRole("button", { name: "Leave" }).click();
  await bob.getByRole("button", { name: "Try now" }).click();
  await bob.locator("#my-name", { hasText: "bob" }).waitFor();
  await bob.locator("#connection").waitFor({ state: "hidden" });
  await say(bob, "got in");
  await seeMessage(bob, "got in");
});

test("a new message is grouped by looking at the last one, not by searching the whole log", async () => {
  const code = await createRoom(env.server);
  const ann = await openPage(env.browser);
  await joinByLink(ann, `${env.server.url}/r/${code}`, "ann");
  await ann.evaluate(() => {
    // Counts every search of the log from here on.
    const log = document.getElementById("log");
    window.logSearches = 0;
    const search = log.querySelectorAll.bind(log);
    log.querySelectorAll = (selector) => { window.logSearches += 1; return search(selector); };
  });

  for (const text of ["one", "two", "three", "four", "five"]) {
    await say(ann, text);
    await seeMessage(ann, text);
  }

  assert.equal(await ann.evaluate(() => window.logSearches), 0);
  const headers = await ann.locator("#log .msg .who").allTextContents();
  assert.deepEqual(headers, ["ann"], "five messages from one person in a row share one header");
});
