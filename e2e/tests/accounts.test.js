// Accounts in the browser: register, sign out, sign in elsewhere and be the same person in a room.
import assert from "node:assert/strict";
import { test } from "node:test";

import { openPage } from "../support/browser.js";
import { serverAndBrowser } from "../support/fixture.js";
import { assertNoProblems, joinByLink, memberNames, say, seeMessage } from "../support/room.js";

const env = serverAndBrowser();
const PASSWORD = "correct horse battery";

async function fillCredentials(page, username, password) {
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
}

test("register, sign out, sign in on another browser and join as the same person", async () => {
  const first = await openPage(env.browser);
  await first.goto(`${env.server.url}/register`);
  await fillCredentials(first, "ann", PASSWORD);
  await first.getByRole("button", { name: "Register" }).click();
  await first.waitForURL(`${env.server.url}/`);
  await first.locator("#viewer", { hasText: "ann" }).waitFor();
  assert.equal(await first.getByLabel("Your name").inputValue(), "ann");
  assert.equal(await first.getByLabel("Your name").getAttribute("readonly"), "");

  await first.getByRole("button", { name: "Create a room" }).click();
  await first.waitForURL(/\/r\/[A-Z0-9-]+$/);
  await first.locator("#my-name", { hasText: "ann" }).waitFor();
  assert.equal(await first.getByRole("button", { name: "Change name" }).count(), 0);
  const roomUrl = first.url();
  const bob = await openPage(env.browser);
  await joinByLink(bob, roomUrl, "bob");
  await say(first, "hello from the laptop");
  await seeMessage(bob, "hello from the laptop");

  await first.getByRole("button", { name: "Sign out" }).click();
  await first.waitForURL(`${env.server.url}/`);
  await first.getByRole("link", { name: "Sign in" }).waitFor();
  await bob.locator("#log .system", { hasText: "ann left" }).waitFor();

  const second = await openPage(env.browser);
  await second.goto(`${env.server.url}/signin?next=${encodeURIComponent(new URL(roomUrl).pathname)}`);
  await fillCredentials(second, "ann", "not the password");
  await second.getByRole("button", { name: "Sign in" }).click();
  await second.locator("#form-error", { hasText: "wrong username or password" }).waitFor();
  await fillCredentials(second, "ann", PASSWORD);
  await second.getByRole("button", { name: "Sign in" }).click();
  await second.waitForURL(roomUrl);
  await second.locator("#my-name", { hasText: "ann" }).waitFor();
  await seeMessage(second, "hello from the laptop");
  await say(second, "back on the phone");
  await seeMessage(bob, "back on the phone");
  assert.deepEqual((await memberNames(bob)).sort(), ["ann", "bob (you)"]);
  for (const page of [first, second, bob]) assertNoProblems(page);
});

test("a guest cannot take an account's name, and a taken username is explained", async () => {
  const owner = await openPage(env.browser);
  await owner.goto(`${env.server.url}/register`);
  await fillCredentials(owner, "carol", PASSWORD);
  await owner.getByRole("button", { name: "Register" }).click();
  await owner.waitForURL(`${env.server.url}/`);

  const rival = await openPage(env.browser);
  await rival.goto(`${env.server.url}/register`);
  await fillCredentials(rival, "CAROL", PASSWORD);
  await rival.getByRole("button", { name: "Register" }).click();
  await rival.locator("#username-error", { hasText: "taken" }).waitFor();
  await fillCredentials(rival, "dave", "short");
  await rival.getByRole("button", { name: "Register" }).click();
  await rival.locator("#password-error", { hasText: "at least 8 characters" }).waitFor();

  await owner.getByRole("button", { name: "Create a room" }).click();
  await owner.waitForURL(/\/r\/[A-Z0-9-]+$/);
  await rival.goto(owner.url());
  await rival.getByRole("dialog").getByLabel("Your name").fill("Carol");
  await rival.getByRole("button", { name: "Join", exact: true }).click();
  await rival.locator("#name-error", { hasText: "account's username" }).waitFor();
  for (const page of [owner, rival]) assertNoProblems(page);
});
