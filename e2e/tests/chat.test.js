// Chatting in the browser: two people, separate browsers, one room.
import assert from "node:assert/strict";
import { test } from "node:test";

import { openPage } from "../support/browser.js";
import { serverAndBrowser } from "../support/fixture.js";
import {
  assertNoProblems, createViaHome, joinViaHome, memberNames, say, seeMessage, seeSystemLine,
} from "../support/room.js";

const env = serverAndBrowser();

/** ann creates a room from the home page and bob joins it by code, typed in lower case; both are in when it returns. */
async function roomOfTwo() {
  const ann = await openPage(env.browser);
  const bob = await openPage(env.browser);
  const code = await createViaHome(ann, env.server.url, "ann");
  await joinViaHome(bob, env.server.url, "bob", code.toLowerCase());
  await bob.locator("#my-name", { hasText: "bob" }).waitFor();
  return { ann, bob, code };
}

test("one person creates a room, another joins by code, and they chat both ways", async () => {
  const { ann, bob, code } = await roomOfTwo();

  await say(ann, "hello bob");
  await seeMessage(bob, "hello bob");
  await say(bob, "hi ann, line one\nline two");

  await seeMessage(ann, "hi ann, line one\nline two");
  assert.match(await bob.locator("#room-code").textContent(), new RegExp(`^${code}$`));
  assert.equal(await ann.locator("#log .msg.mine .msg-text").first().textContent(), "hello bob");
  const time = await bob.locator("#log .msg time").first().getAttribute("datetime");
  assert.ok(!Number.isNaN(Date.parse(time)), "each message carries its timestamp");
  assertNoProblems(ann);
  assertNoProblems(bob);
});

test("joins, renames and leaves appear as system lines and in the member list", async () => {
  const ann = await openPage(env.browser);
  const bob = await openPage(env.browser);
  const code = await createViaHome(ann, env.server.url, "ann");

  await joinViaHome(bob, env.server.url, "bob", code);
  await seeSystemLine(ann, "bob joined");
  assert.deepEqual(await memberNames(ann), ["ann (you)", "bob"]);

  await bob.getByRole("button", { name: "Change name" }).click();
  await bob.getByRole("dialog").getByLabel("Your name").fill("Robert");
  await bob.getByRole("button", { name: "Change", exact: true }).click();
  await seeSystemLine(ann, "bob is now Robert");
  await bob.locator("#my-name", { hasText: "Robert" }).waitFor();
  assert.deepEqual(await memberNames(ann), ["ann (you)", "Robert"]);

  await bob.getByRole("button", { name: "Leave" }).click();
  await seeSystemLine(ann, "Robert left");
  assert.deepEqual(await memberNames(ann), ["ann (you)"]);
  await bob.waitForURL(`${env.server.url}/`);
});

test("renaming to a name someone holds is refused in the dialog", async () => {
  const { bob } = await roomOfTwo();

  await bob.getByRole("button", { name: "Change name" }).click();
  await bob.getByRole("dialog").getByLabel("Your name").fill("ANN");
  await bob.getByRole("button", { name: "Change", exact: true }).click();

  await bob.locator("#name-error", { hasText: "already taken" }).waitFor();
  assert.equal(await bob.locator("#my-name").textContent(), "bob");
});

test("the others see who is typing", async () => {
  const { ann, bob } = await roomOfTwo();

  await bob.getByLabel("Message", { exact: true }).pressSequentially("thinking");

  await ann.locator("#typing", { hasText: "bob is typing…" }).waitFor();
  assert.equal(await bob.locator("#typing").textContent(), "", "nobody sees their own typing");
  await say(bob, "done");
  await seeMessage(ann, "done");
  assert.equal(await ann.locator("#typing").textContent(), "", "a message ends the typing line");
});

test("the composer shows the length limit as it nears and will not send past it", async () => {
  const ann = await openPage(env.browser);
  await createViaHome(ann, env.server.url, "ann");
  const box = ann.getByLabel("Message", { exact: true });

  await box.fill("x".repeat(3_900));
  assert.equal(await ann.locator("#char-count").textContent(), "100 characters left");
  await box.fill("x".repeat(4_010));
  assert.equal(await ann.locator("#char-count").textContent(), "10 characters over the 4000 limit");
  assert.equal(await ann.getByRole("button", { name: "Send" }).isDisabled(), true);
  await box.press("Enter");

  assert.equal(await ann.locator("#log .msg").count(), 0);
});

test("an author edits a message and the other sees the new text, marked edited", async () => {
  const { ann, bob } = await roomOfTwo();
  await say(ann, "see you at 10");
  await seeMessage(bob, "see you at 10");

  const mine = ann.locator("#log .msg", { hasText: "see you at 10" });
  await mine.hover();
  await mine.getByRole("button", { name: "Edit this message" }).click();
  const field = ann.getByLabel("New text of the message");
  await field.fill("see you at 11");
  await field.press("Enter");

  await seeMessage(bob, "see you at 11");
  await bob.locator("#log .msg", { hasText: "see you at 11" }).locator(".msg-edited").waitFor();
  await seeMessage(ann, "see you at 11");
  assert.equal(await bob.locator("#log .msg-text", { hasText: "see you at 10" }).count(), 0);
  for (const page of [ann, bob]) assertNoProblems(page);
});
