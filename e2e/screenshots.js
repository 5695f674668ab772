// Regenerates docs/screenshot-light.png and docs/screenshot-dark.png from a real conversation, and
// docs/screenshot-owner.png: the same room as its owner sees it, with the moderation controls.
// Run with `npm run screenshots` after `cargo build --release`.
import { resolve } from "node:path";

import { launch, openPage } from "./support/browser.js";
import { joinByLink, say, seeMessage } from "./support/room.js";
import { createRoom, postMessage, startServer } from "./support/server.js";

const DOCS = resolve(import.meta.dirname, "../docs");
const server = await startServer();
const browser = await launch();
try {
  const code = await createRoom(server);
  const room = `${server.url}/r/${code}`;
  const maya = await openPage(browser);
  const leo = await openPage(browser);
  await joinByLink(maya, room, "Maya");
  await joinByLink(leo, room, "Leo");
  await say(maya, "Morning! Is the demo still at 11?");
  await say(leo, "Yes, same room as last week.");
  await say(leo, "I'll bring the projector adapter this time 🙂");
  await postMessage(server, code, "deploy-bot", "v1.4.2 is live on staging");
  await say(maya, "Perfect, see you there.\nI'll grab coffee on the way.");
  await seeMessage(leo, "Perfect, see you there.\nI'll grab coffee on the way.");
  await maya.getByLabel("Message", { exact: true }).pressSequentially("On my w");
  for (const colorScheme of ["light", "dark"]) {
    const page = await openPage(browser, { colorScheme, viewport: { width: 1000, height: 620 } });
    await joinByLink(page, room, "Sam");
    await maya.waitForTimeout(2_100); // the page sends at most one typing event per 2 s
    await maya.getByLabel("Message", { exact: true }).pressSequentially("a");
    await page.locator("#typing", { hasText: "typing" }).waitFor();
    await page.screenshot({ path: `${DOCS}/screenshot-${colorScheme}.png` });
    await page.getByRole("button", { name: "Leave" }).click();
  }
  // The owner's view: the room's owner token rides in the owner link's fragment.
  const owned = await fetch(`${server.url}/api/rooms`, { method: "POST" }).then((r) => r.json());
  const ownedRoom = `${server.url}/r/${owned.code}`;
  const owner = await openPage(browser, { viewport: { width: 1000, height: 620 } });
  await joinByLink(owner, `${ownedRoom}#owner=${owned.owner_token}`, "Maya");
  await owner.locator("#members .badge", { hasText: "owner" }).waitFor();
  const guests = [await openPage(browser), await openPage(browser)];
  await joinByLink(guests[0], ownedRoom, "Leo");
  await joinByLink(guests[1], ownedRoom, "Sam");
  await say(guests[0], "Is this the demo room?");
  await say(owner, "It is. I'll lock it once everyone is here.");
  await owner.getByRole("button", { name: "Send Sam out of the room" }).waitFor();
  await owner.screenshot({ path: `${DOCS}/screenshot-owner.png` });
  console.log(`wrote ${DOCS}/screenshot-light.png, screenshot-dark.png and screenshot-owner.png`);
} finally {
  await browser.close();
  await server.stop();
}
