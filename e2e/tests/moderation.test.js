// An owner's controls in the browser: sending someone out, and locking the room.
import assert from "node:assert/strict";
import { test } from "node:test";

import { openPage } from "../support/browser.js";
import { serverAndBrowser } from "../support/fixture.js";
import {
  assertNoProblems, countMessages, createViaHome, joinByLink, say, seeMessage, seeSystemLine,
} from "../support/room.js";

const env = serverAndBrowser();

test("the owner sends a guest out, who sees why and cannot come back", async () => {
  const ann = await openPage(env.browser);
  await createViaHome(ann, env.server.url, "ann");
  await seeSystemLine(ann, "You are the room's owner now");
  await ann.locator("#members .badge", { hasText: "owner" }).waitFor();
  const bob = await openPage(env.browser);
  await joinByLink(bob, ann.url(), "bob");
  assert.equal(await bob.getByRole("button", { name: /Send .* out/ }).count(), 0, "a member has no controls");

  await ann.getByRole("button", { name: "Send bob out of the room" }).click();

  await bob.locator("#connection", { hasText: "ann sent you out of the room" }).waitFor();
  await seeSystemLine(ann, "ann sent bob out");
  await bob.reload();
  await bob.locator("#connection", { hasText: "You were sent out of this room; you may come back after" }).waitFor();
  for (const page of [ann, bob]) assertNoProblems(page);
});

test("the owner mutes and unmutes a guest, whose messages are refused meanwhile", async () => {
  const ann = await openPage(env.browser);
  await createViaHome(ann, env.server.url, "ann");
  await seeSystemLine(ann, "You are the room's owner now");
  const bob = await openPage(env.browser);
  await joinByLink(bob, ann.url(), "bob");

  await ann.getByRole("button", { name: "Mute bob" }).click();

  await seeSystemLine(bob, "ann muted you");
  await ann.locator("#members .badge", { hasText: "muted" }).waitFor();
  await say(bob, "can anyone hear me?");
  await bob.locator(".msg-status", { hasText: "a moderator has muted you" }).waitFor();
  await ann.getByRole("button", { name: "Unmute bob" }).click();
  await seeSystemLine(bob, "ann unmuted you");
  await say(bob, "back again");
  await seeMessage(ann, "back again");
  assert.equal(await countMessages(ann, "can anyone hear me?"), 0);
  for (const page of [ann, bob]) assertNoProblems(page);
});

test("a locked room turns a newcomer away, and opens again", async () => {
  const ann = await openPage(env.browser);
  await createViaHome(ann, env.server.url, "ann");
  await seeSystemLine(ann, "You are the room's owner now");

  await ann.getByRole("button", { name: "Lock room" }).click();

  await seeSystemLine(ann, "The room is locked: nobody new may join");
  const carol = await openPage(env.browser);
  await carol.goto(ann.url());
  await carol.getByRole("dialog").getByLabel("Your name").fill("carol");
  await carol.getByRole("button", { name: "Join", exact: true }).click();
  await carol.locator("#connection", { hasText: "This room is locked" }).waitFor();
  await ann.getByRole("button", { name: "Unlock room" }).click();
  await seeSystemLine(ann, "The room is open to newcomers again");
  await joinByLink(carol, ann.url(), "carol");
  for (const page of [ann, carol]) assertNoProblems(page);
});

test("an accounts-only room turns a guest away with a way to sign in", async () => {
  const ann = await openPage(env.browser);
  await createViaHome(ann, env.server.url, "ann");
  await seeSystemLine(ann, "You are the room's owner now");

  await ann.getByRole("button", { name: "Accounts only" }).click();

  await seeSystemLine(ann, "Only signed-in members may join now");
  assert.equal(await ann.getByRole("button", { name: "Accounts only" }).getAttribute("aria-pressed"), "true");
  const guest = await openPage(env.browser);
  await guest.goto(ann.url());
  await guest.getByRole("dialog").getByLabel("Your name").fill("gus");
  await guest.getByRole("button", { name: "Join", exact: true }).click();
  await guest.locator("#connection", { hasText: "This room admits only signed-in members." }).waitFor();
  await guest.getByRole("button", { name: "Sign in" }).click();
  await guest.waitForURL(/\/signin\?next=/);
  for (const page of [ann, guest]) assertNoProblems(page);
});

test("an author deletes their message and the owner a guest's, both gone for everyone", async () => {
  const ann = await openPage(env.browser);
  await createViaHome(ann, env.server.url, "ann");
  await seeSystemLine(ann, "You are the room's owner now");
  const bob = await openPage(env.browser);
  await joinByLink(bob, ann.url(), "bob");
  await say(ann, "welcome, all");
  await seeMessage(bob, "welcome, all");
  await say(bob, "wrong room, sorry");
  await say(bob, "buy cheap pills");
  await seeMessage(ann, "buy cheap pills");
  const theirs = bob.locator("#log .msg", { hasText: "wrong room, sorry" });
  const deleteOf = (page, text) =>
    page.locator("#log .msg", { hasText: text }).getByRole("button", { name: "Delete this message" });
  assert.equal(await deleteOf(bob, "welcome, all").count(), 0, "a member may not delete the owner's messages");
  assert.equal(await deleteOf(bob, "wrong room, sorry").count(), 1);

  await theirs.hover();
  await theirs.getByRole("button", { name: "Delete this message" }).click();
  const spam = ann.locator("#log .msg", { hasText: "buy cheap pills" });
  await spam.hover();
  await spam.getByRole("button", { name: "Delete this message" }).click();

  for (const page of [ann, bob]) {
    for (const text of ["wrong room, sorry", "buy cheap pills"]) {
      await page.locator("#log .msg", { hasText: text }).waitFor({ state: "detached" });
    }
  }
  const carol = await openPage(env.browser);
  await joinByLink(carol, ann.url(), "carol");
  assert.equal(await countMessages(carol, "buy cheap pills"), 0);
  for (const page of [ann, bob, carol]) assertNoProblems(page);
});

test("the owner bans a guest, who cannot come back until the ban is lifted", async () => {
  const ann = await openPage(env.browser);
  await createViaHome(ann, env.server.url, "ann");
  await seeSystemLine(ann, "You are the room's owner now");
  const bob = await openPage(env.browser);
  await joinByLink(bob, ann.url(), "bob");

  await ann.getByRole("button", { name: "Ban bob from the room" }).click();

  await bob.locator("#connection", { hasText: "ann banned you from the room" }).waitFor();
  const banned = ann.locator("#log .system", { hasText: "ann banned bob" });
  await banned.waitFor();
  await bob.reload();
  await bob.locator("#connection", { hasText: "You are banned from this room" }).waitFor();
  await banned.getByRole("button", { name: "Lift bob's ban" }).click();
  await seeSystemLine(ann, "ann lifted bob's ban");
  await bob.reload();
  await ann.locator("#log .system", { hasText: "bob joined" }).nth(1).waitFor();
  for (const page of [ann, bob]) assertNoProblems(page);
});

test("a room with a password asks newcomers for it, and lets them in with it", async () => {
  const ann = await openPage(env.browser);
  await createViaHome(ann, env.server.url, "ann");
  await seeSystemLine(ann, "You are the room's owner now");
  const settings = ann.getByRole("region", { name: "Room settings" });
  await settings.getByLabel("Room password").fill("open sesame");
  await settings.getByRole("button", { name: "Set password" }).click();
  await seeSystemLine(ann, "Newcomers need the room's password now");

  const carol = await openPage(env.browser);
  await carol.goto(ann.url());
  await carol.getByRole("dialog").getByLabel("Your name").fill("carol");
  await carol.getByRole("button", { name: "Join", exact: true }).click();
  const prompt = carol.getByRole("dialog", { name: /has a password/ });
  await prompt.getByLabel("Password").fill("open sesame?");
  await prompt.getByRole("button", { name: "Join" }).click();
  await prompt.getByText("That is not this room's password.").waitFor();
  await prompt.getByLabel("Password").fill("open sesame");
  await prompt.getByRole("button", { name: "Join" }).click();

  await seeSystemLine(ann, "carol joined");
  await say(carol, "I'm in");
  await seeMessage(ann, "I'm in");
  for (const page of [ann, carol]) assertNoProblems(page);
});
