// Regenerates docs/screenshot-light.png and docs/screenshot-dark.png from a real conversation.
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
  console.log(`wrote ${DOCS}/screenshot-light.png and screenshot-dark.png`);
} finally {
  await browser.close();
  await server.stop();
}
