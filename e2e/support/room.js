// What a person does on Hubbub's pages, as steps the browser tests share.
import assert from "node:assert/strict";

export async function createViaHome(page, baseUrl, name) {
  await page.goto(baseUrl);
  await page.getByLabel("Your name").fill(name);
  await page.getByRole("button", { name: "Create a room" }).click();
  await page.waitForURL(/\/r\/[A-Z0-9-]+$/);
  await page.locator("#my-name", { hasText: name }).waitFor();
  return new URL(page.url()).pathname.split("/").at(-1);
}

export async function joinViaHome(page, baseUrl, name, code) {
  await page.goto(baseUrl);
  await page.getByLabel("Your name").fill(name);
  await page.getByLabel("Room code").fill(code);
  await page.getByRole("button", { name: "Join", exact: true }).click();
}

/** Opens a room page directly, as an invite link does, and answers the name prompt. */
export async function joinByLink(page, roomUrl, name) {
  await page.goto(roomUrl);
  await page.getByRole("dialog").getByLabel("Your name").fill(name);
  await page.getByRole("button", { name: "Join", exact: true }).click();
  await page.locator("#my-name", { hasText: name }).waitFor();
}

export async function say(page, text) {
  const box = page.getByLabel("Message", { exact: true });
  await box.fill(text);
  await box.press("Enter");
}

/** Waits for a message with exactly this text to be confirmed in the log. */
export async function seeMessage(page, text) {
  await page.locator("#log .msg:not(.pending) .msg-text").getByText(text, { exact: true }).waitFor();
}

export async function countMessages(page, text) {
  return page.locator("#log .msg-text").getByText(text, { exact: true }).count();
}

export async function seeSystemLine(page, text) {
  await page.locator("#log .system").getByText(text, { exact: true }).waitFor();
}

export async function memberNames(page) {
  return page.locator("#members li .member-name").allTextContents();
}

/** Fails on script errors, CSP violations and alert/confirm dialogs seen by the page. */
export function assertNoProblems(page) {
  const serious = page.problems.filter((p) => !p.startsWith("console:") || p.includes("Content Security Policy"));
  assert.deepEqual(serious, []);
}
