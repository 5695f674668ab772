// A dropped connection: the page says so, resumes, and shows what it missed exactly once.
import assert from "node:assert/strict";
import { test } from "node:test";

import { openPage } from "../support/browser.js";
import { serverAndBrowser } from "../support/fixture.js";
import { startProxy } from "../support/proxy.js";
import { countMessages, joinByLink, say, seeMessage } from "../support/room.js";
import { createRoom, postMessage } from "../support/server.js";

const env = serverAndBrowser();

test("after a cut the page reconnects, shows each missed message once, and sends what was typed meanwhile", async () => {
  const code = await createRoom(env.server);
  const proxy = await startProxy(env.server.port);
  const ann = await openPage(env.browser); // through the proxy, whose connections the test cuts
  const bob = await openPage(env.browser); // straight to the server
  await joinByLink(ann, `${proxy.url}/r/${code}`, "ann");
  await joinByLink(bob, `${env.server.url}/r/${code}`, "bob");
  await say(bob, "before the cut");
  await seeMessage(ann, "before the cut");

  proxy.cut();
  await ann.locator("#connection", { hasText: "Reconnecting…" }).waitFor();
  for (const text of ["missed one", "missed two", "missed three"]) {
    await say(bob, text);
    await seeMessage(bob, text);
  }
  await postMessage(env.server, code, "bot", "missed four");
  await say(ann, "typed while offline");
  await ann.locator("#log .msg.pending .msg-status", { hasText: "Not sent yet" }).waitFor();
  proxy.restore();

  await ann.locator("#connection").waitFor({ state: "hidden", timeout: 20_000 });
  for (const text of ["missed one", "missed two", "missed three", "missed four"]) {
    await seeMessage(ann, text);
  }
  await seeMessage(bob, "typed while offline");
  await seeMessage(ann, "typed while offline");
  for (const text of ["before the cut", "missed one", "missed two", "missed three", "missed four", "typed while offline"]) {
    assert.equal(await countMessages(ann, text), 1, `${text} shows exactly once for ann`);
  }
  assert.equal(await countMessages(bob, "typed while offline"), 1);
  const seqOrder = await ann.locator("#log .msg-text").allTextContents();
  assert.deepEqual(seqOrder, ["before the cut", "missed one", "missed two", "missed three", "missed four", "typed while offline"]);
  await proxy.close();
});

test("reloading the page keeps the same identity", async () => {
  const code = await createRoom(env.server);
  const ann = await openPage(env.browser);
  const bob = await openPage(env.browser);
  await joinByLink(ann, `${env.server.url}/r/${code}`, "ann");
  await joinByLink(bob, `${env.server.url}/r/${code}`, "bob");
  await say(ann, "first");
  await seeMessage(bob, "first");

  await ann.reload();
  await ann.locator("#my-name", { hasText: "ann" }).waitFor();
  await seeMessage(ann, "first");
  await say(ann, "after reload");

  await seeMessage(bob, "after reload");
  const senders = await bob.locator("#log .msg .who").allTextContents();
  assert.deepEqual(senders, ["ann"], "both messages group under one sender: the same user id");
});
