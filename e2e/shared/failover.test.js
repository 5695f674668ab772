// Two browsers through nginx in front of two instances sharing the room: they chat, the instance one
// of them is connected to is killed, and both pages show every message exactly once.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { launch, openPage } from "../support/browser.js";
import { countMessages, joinByLink, say, seeMessage } from "../support/room.js";
import { openConnections, startCluster } from "../support/shared.js";

let browser;
let cluster;
before(async () => {
  [browser, cluster] = await Promise.all([launch(), startCluster(2)]);
});
after(async () => {
  await browser?.close();
  await cluster?.stop();
});

/** How many of the pages' WebSockets each instance holds, once the two are connected. */
async function where() {
  for (let tries = 0; ; tries += 1) {
    const counts = [];
    for (const instance of cluster.instances) counts.push(await openConnections(instance));
    if (counts[0] + counts[1] === 2 || tries === 100) return counts;
    await new Promise((done) => setTimeout(done, 50));
  }
}

test("two pages on two instances chat through nginx, and a killed instance loses nothing", async () => {
  const response = await fetch(`${cluster.url}/api/rooms`, { method: "POST" });
  const { code } = await response.json();
  const room = `${cluster.url}/r/${code}`;
  const ann = await openPage(browser);
  const bob = await openPage(browser);
  await joinByLink(ann, room, "ann");
  await joinByLink(bob, room, "bob");
  // Round-robin may put both sockets on one instance; reload bob's page until they are apart.
  for (let tries = 0; tries < 10 && (await where()).join() !== "1,1"; tries += 1) {
    await bob.reload();
    await bob.locator("#my-name", { hasText: "bob" }).waitFor();
  }
  assert.deepEqual(await where(), [1, 1], "one page on each instance");
  await ann.locator("#members li", { hasText: "bob" }).waitFor();
  await bob.locator("#members li", { hasText: "ann" }).waitFor();

  await say(ann, "hello from ann");
  await say(bob, "hello from bob");
  for (const page of [ann, bob]) {
    await seeMessage(page, "hello from ann");
    await seeMessage(page, "hello from bob");
  }

  // The instance with the first socket dies; its page reconnects through nginx to the other.
  const doomed = (await where())[0] === 1 ? 0 : 1;
  await cluster.instances[doomed].kill();
  await say(ann, "after the crash, ann");
  await say(bob, "after the crash, bob");
  const texts = ["hello from ann", "hello from bob", "after the crash, ann", "after the crash, bob"];
  for (const page of [ann, bob]) {
    await page.locator("#connection").waitFor({ state: "hidden", timeout: 20_000 });
    for (const text of texts) await seeMessage(page, text);
  }
  for (const [who, page] of [["ann", ann], ["bob", bob]]) {
    for (const text of texts) assert.equal(await countMessages(page, text), 1, `${text} once for ${who}`);
  }
  assert.equal(await openConnections(cluster.instances[1 - doomed]), 2, "both pages on the survivor");
});
