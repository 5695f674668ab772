// Getting into a room: invite links, the name prompt, and the errors a person can meet on the way.
import assert from "node:assert/strict";
import { test } from "node:test";

import { openPage } from "../support/browser.js";
import { serverAndBrowser } from "../support/fixture.js";
import {
  assertNoProblems, createViaHome, joinByLink, joinViaHome, say, seeMessage,
} from "../support/room.js";
import { createRoom } from "../support/server.js";

const env = serverAndBrowser();

test("an invite link asks for a name first, and the name is offered next time", async () => {
  const code = await createRoom(env.server);
  const page = await openPage(env.browser);

  await page.goto(`${env.server.url}/r/${code}`);
  assert.equal(await page.getByRole("dialog").isVisible(), true);
  await page.getByRole("dialog").getByLabel("Your name").fill("carol");
  await page.getByRole("button", { name: "Join", exact: true }).click();
  await page.locator("#my-name", { hasText: "carol" }).waitFor();
  const again = await page.context().newPage();
  await again.goto(`${env.server.url}/r/${code}`);

  assert.equal(await again.getByRole("dialog").getByLabel("Your name").inputValue(), "carol");
  await again.goto(env.server.url);
  assert.equal(await again.getByLabel("Your name").inputValue(), "carol");
});

test("the home page explains each mistake beside its field", async () => {
  const ann = await openPage(env.browser);
  const code = await createViaHome(ann, env.server.url, "ann");
  const page = await openPage(env.browser);
  await page.goto(env.server.url);
  const join = page.getByRole("button", { name: "Join", exact: true });

  await join.click();
  assert.equal(await page.locator("#name-error").textContent(), "Please enter a name.");
  await page.getByLabel("Your name").fill("x".repeat(33));
  await join.click();
  assert.match(await page.locator("#name-error").textContent(), /at most 32 characters/);
  await page.getByLabel("Your name").fill("ANN");
  await page.getByLabel("Room code").fill("no way!");
  await join.click();
  assert.match(await page.locator("#join-code-error").textContent(), /3 to 32 letters, digits or dashes/);
  await page.getByLabel("Room code").fill("NOPE42");
  await join.click();
  await page.locator("#join-code-error", { hasText: "There is no room with the code NOPE42." }).waitFor();
  await page.getByLabel("Room code").fill(code);
  await join.click();
  await page.locator("#name-error", { hasText: "already called ANN" }).waitFor();
  await page.getByLabel(/Custom code/).fill(code);
  await page.getByRole("button", { name: "Create a room" }).click();
  await page.locator("#create-code-error", { hasText: `${code} is taken` }).waitFor();

  assert.equal(await page.getByLabel(/Custom code/).getAttribute("aria-invalid"), "true");
  assert.equal(await page.getByLabel("Your name").getAttribute("aria-invalid"), null, "the name itself is fine");
});

test("the server's refusal of a taken name is shown in the name prompt", async () => {
  const code = await createRoom(env.server);
  const ann = await openPage(env.browser);
  await joinByLink(ann, `${env.server.url}/r/${code}`, "ann");
  const page = await openPage(env.browser);

  await page.goto(`${env.server.url}/r/${code}`);
  await page.getByRole("dialog").getByLabel("Your name").fill("Ann");
  await page.getByRole("button", { name: "Join", exact: true }).click();

  await page.locator("#name-error", { hasText: "already taken" }).waitFor();
  await page.getByRole("dialog").getByLabel("Your name").fill("Ann 2");
  await page.getByRole("button", { name: "Join", exact: true }).click();
  await page.locator("#my-name", { hasText: "Ann 2" }).waitFor();
});

test("a room that does not exist is a 404 page with a way home", async () => {
  const page = await openPage(env.browser);

  const response = await page.goto(`${env.server.url}/r/NOPE42`);

  assert.equal(response.status(), 404);
  assert.match(await page.locator("h1").textContent(), /Not Found/);
  assert.match(await page.locator("main").textContent(), /no room with the code NOPE42/);
  await page.getByRole("link", { name: "Go to the home page" }).click();
  await page.waitForURL(`${env.server.url}/`);
});

test("markup in names and messages is shown as text and never runs", async () => {
  const payload = "<img src=x onerror=alert(1)>";
  const ann = await openPage(env.browser);
  const code = await createViaHome(ann, env.server.url, "ann");
  const evil = await openPage(env.browser);

  await joinViaHome(evil, env.server.url, payload, code);
  await evil.locator("#my-name", { hasText: payload }).waitFor();
  await say(evil, payload);
  await seeMessage(ann, payload);

  assert.equal(await ann.locator("#log img, #members img").count(), 0);
  assert.equal(await ann.locator("#log .msg .who").last().textContent(), payload);
  assert.ok((await ann.locator("#members").textContent()).includes(payload));
  assertNoProblems(ann);
  assertNoProblems(evil);
});

test("pages carry a Content-Security-Policy without inline script", async () => {
  const response = await fetch(env.server.url);

  const policy = response.headers.get("content-security-policy");
  assert.match(policy, /script-src 'self'/);
  assert.doesNotMatch(policy, /unsafe-inline/);
  assert.equal(response.headers.get("x-content-type-options"), "nosniff");
});
