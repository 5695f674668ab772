// The room page: one live conversation over a WebSocket that survives drops without losing a message.
//
// Every piece of user text (names, messages) goes into the page with textContent, never as HTML.
import { nameProblem, rememberName, rememberedName, showFieldError } from "./names.js";
import {
  ROLE_NAMES, forgetOwnerToken, outranks, ownerLink, ownerToken, takeOwnerTokenFromLink,
} from "./owners.js";

const CODE = document.body.dataset.room;
const MAX_NAME = Number(document.body.dataset.maxName);
const MAX_MESSAGE = Number(document.body.dataset.maxMessage);
/** The remaining-characters counter appears this close to the limit. */
const COUNTER_FROM = MAX_MESSAGE - 500;
/** Consecutive messages from one person within this window share one header. */
const GROUP_WINDOW_MS = 5 * 60 * 1000;
/** How long "x is typing…" stays up without a new typing event (the server relays one per 2 s). */
const TYPING_SHOWN_MS = 5000;
const TYPING_SEND_EVERY_MS = 2000;
/** Scrolling this close to the top of the log loads the page of messages before the oldest shown. */
const LOAD_OLDER_WITHIN_PX = 80;
const OLDER_PAGE = 50;
/** Reconnect backoff: doubling from the base up to the cap, each delay jittered by ±50%. */
const RETRY_BASE_MS = 500;
const RETRY_MAX_MS = 15000;
/** A full room or an address at its connection limit does not clear in a moment: try this seldom. */
const RETRY_REFUSED_MS = 30000;
const JOIN_KEY = `hubbub.join.${CODE}`;
const RESUME_KEY = `hubbub.resume.${CODE}`;

const $ = (id) => document.getElementById(id);
const el = {
  log: $("log"), newMessages: $("new-messages"), typing: $("typing"), composer: $("composer"),
  message: $("message"), send: $("send"), charCount: $("char-count"), members: $("members"),
  memberCount: $("member-count"), myName: $("my-name"), connection: $("connection"),
  copyInvite: $("copy-invite"), lifetime: $("lifetime"), copyStatus: $("copy-status"), rename: $("rename"), leave: $("leave"),
  dialog: $("name-dialog"), nameForm: $("name-form"), nameInput: $("name-input"), nameError: $("name-error"),
  nameSubmit: $("name-submit"), nameTitle: $("name-dialog-title"),
  copyOwnerLink: $("copy-owner-link"), lock: $("lock"), accountsOnly: $("accounts-only"),
  settings: $("room-settings"), passwordForm: $("password-form"), newPassword: $("new-room-password"),
  passwordState: $("password-state"), removePassword: $("remove-password"),
  passDialog: $("password-dialog"), passForm: $("pass-form"), roomPassword: $("room-password"),
  roomPasswordError: $("room-password-error"),
};
const INVITE_BASE = document.body.dataset.inviteBase || location.origin;

/** Signed in: the room knows this person by their username, and needs no name from them. */
const USERNAME = document.body.dataset.username ?? null;

const session = {
  socket: null,
  me: null,
  name: USERNAME ?? sessionStorage.getItem(JOIN_KEY) ?? "",
  resume: sessionStorage.getItem(RESUME_KEY),
  /** The highest seq shown; a reconnect asks for everything after it. */
  lastSeq: null,
  /** The lowest seq shown; scrolling up asks for the messages before it. */
  firstSeq: null,
  loadingOlder: false,
  attempts: 0,
  leaving: false,
  /** "join" or "rename": what the name dialog is for. */
  naming: "join",
  renaming: false,
  /** A pass into a room with a password, traded for it at /api/rooms/{code}/pass. */
  pass: null,
};
const shown = new Set(); // ids of messages in the log, so a message never shows twice
const pending = new Map(); // ref → { text, element, failed }
const members = new Map(); // user id → user
const roles = new Map(); // user id → "owner" | "moderator", for those above member
const muted = new Set(); // user ids whose messages the room refuses
const typers = new Map(); // user id → { name, timer }
const baseTitle = document.title;
let unread = 0;
let refCounter = 0;
/** The newest confirmed message's item: the one a new message may group under. */
let lastShown = null;
let lastTypingSent = 0;

// ---- Connection ----

function connect() {
  // Signed in, the session cookie says who this is; a guest says their name.
  const params = new URLSearchParams(USERNAME ? {} : { name: session.name });
  if (session.resume) params.set("resume", session.resume);
  if (session.lastSeq !== null) params.set("since", String(session.lastSeq));
  if (session.pass) params.set("pass", session.pass);
  // Built from location, so the page works unchanged behind ngrok or any TLS proxy.
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/ws/${encodeURIComponent(CODE)}?${params}`);
  session.socket = socket;
  socket.addEventListener("message", (event) => {
    if (socket === session.socket) receive(JSON.parse(event.data));
  });
  socket.addEventListener("close", (event) => {
    if (socket === session.socket) closed(event);
  });
}

function closed(event) {
  session.socket = null;
  if (session.leaving) return;
  for (const [ref, item] of pending) {
    if (!item.failed) setStatus(ref, "Not sent yet: it will be sent when the connection is back.");
  }
  switch (event.code) {
    case 4400:
    case 4409:
      // The server refused the name: a resumed identity is gone, so start afresh with a new one.
      session.resume = null;
      sessionStorage.removeItem(RESUME_KEY);
      askForName("join", event.reason || "That name cannot be used in this room.");
      return;
    case 4404:
      showBanner("This room no longer exists.", { linkHome: true });
      return;
    case 4403: {
      const why = session.sentOut ?? (event.reason || "you were sent out of the room");
      showBanner(`${why.charAt(0).toUpperCase()}${why.slice(1)}.`, { linkHome: true });
      return;
    }
    case 4423:
      showBanner("This room is locked: nobody new may join.", { linkHome: true });
      return;
    case 4407:
      askForPassword(session.pass ? "That pass has expired: enter the password again." : null);
      return;
    case 4401:
      showBanner(USERNAME ? "You were signed out, so you left the room." : "This room admits only signed-in members.", {
        action: [USERNAME ? "Sign in again" : "Sign in", () => location.assign(`/signin?next=${encodeURIComponent(location.pathname)}`)],
      });
      return;
    case 4000:
      showBanner("This room is open in another tab or window.", { action: ["Use it here", reconnectNow] });
      return;
    case 4413:
    case 4429:
      // The room is full, or this address holds too many connections: say so, and try again seldom.
      waitToRetry(event.reason || "The server turned the connection away.");
      return;
    default:
      scheduleReconnect();
  }
}

function waitToRetry(reason) {
  const timer = setTimeout(connect, RETRY_REFUSED_MS);
  const sentence = reason.charAt(0).toUpperCase() + reason.slice(1);
  showBanner(`${sentence}. Trying again in ${RETRY_REFUSED_MS / 1000} seconds.`, {
    action: ["Try now", () => { clearTimeout(timer); reconnectNow(); }],
  });
}

function scheduleReconnect() {
  const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** session.attempts) * (0.5 + Math.random());
  session.attempts += 1;
  showBanner("Reconnecting…");
  setTimeout(connect, delay);
}

function reconnectNow() {
  session.attempts = 0;
  showBanner("Reconnecting…");
  connect();
}

function send(frame) {
  if (session.socket?.readyState !== WebSocket.OPEN) return false;
  session.socket.send(JSON.stringify(frame));
  return true;
}

// ---- Frames from the server ----

function receive(frame) {
  switch (frame.type) {
    case "welcome": return welcome(frame);
    case "message": return onMessage(frame);
    case "joined":
      members.set(frame.user.id, frame.user);
      renderMembers();
      return systemLine(`${frame.user.name} joined`);
    case "left":
      members.delete(frame.user.id);
      stopTyping(frame.user.id);
      renderMembers();
      return systemLine(`${frame.user.name} left`);
    case "renamed": return onRenamed(frame);
    case "typing": return startTyping(frame.user);
    case "expired": return onExpired(frame.through_seq);
    case "role": return onRole(frame);
    case "moderated": return onModerated(frame);
    case "room_updated": return onRoomUpdated(frame, true);
    case "edited": return onEdited(frame);
    case "deleted": return onDeleted(frame);
    case "error": return onError(frame);
  }
}

function welcome(frame) {
  session.me = frame.you;
  session.name = frame.you.name;
  session.resume = frame.resume;
  session.attempts = 0;
  sessionStorage.setItem(RESUME_KEY, frame.resume);
  sessionStorage.setItem(JOIN_KEY, frame.you.name);
  // A username is no guest's name to offer next time: as a guest it is refused.
  if (!frame.you.account) rememberName(frame.you.name);
  el.myName.textContent = frame.you.name;
  hideBanner();
  members.clear();
  for (const member of frame.members) members.set(member.id, member);
  roles.clear();
  for (const ranked of frame.roles) roles.set(ranked.id, ranked.role);
  refreshDeleteButtons();
  muted.clear();
  for (const id of frame.muted) muted.add(id);
  onRoomUpdated(frame, false);
  renderMembers();
  // The token from the room's creation, or an owner link: the room knows its owner by it.
  const token = ownerToken(CODE);
  if (token && frame.you.role !== "owner") {
    session.claiming = send({ type: "claim", owner_token: token, bind: Boolean(USERNAME) });
  }
  el.copyOwnerLink.hidden = !token;
  if (frame.expire_after_seconds) {
    el.lifetime.textContent = `· messages disappear after ${describeSeconds(frame.expire_after_seconds)}`;
    el.lifetime.hidden = false;
  }
  if (frame.truncated) systemLine("Some earlier messages are not shown.");
  // History first: it confirms pending messages the server got before the connection dropped.
  for (const message of frame.history) onMessage(message);
  for (const [ref, item] of pending) {
    if (!item.failed) transmit(ref);
  }
  loadOlderIfAtTop();
}

function onMessage(message) {
  if (shown.has(message.id)) return;
  shown.add(message.id);
  session.lastSeq = Math.max(session.lastSeq ?? 0, message.seq);
  session.firstSeq = Math.min(session.firstSeq ?? Infinity, message.seq);
  stopTyping(message.from.id);
  const mine = message.from.id === session.me?.id;
  const waiting = mine && message.ref !== undefined ? pending.get(message.ref) : undefined;
  if (waiting) {
    pending.delete(message.ref);
    waiting.element.remove();
  }
  // An item removed since (expired) groups nothing: the messages after it went with it.
  lastShown = messageElement(message, mine, lastShown?.isConnected ? lastShown : null);
  append(lastShown, mine);
  if (!mine && document.hidden) {
    unread += 1;
    document.title = `(${unread}) ${baseTitle}`;
  }
}

function onRenamed(frame) {
  members.set(frame.user.id, frame.user);
  renderMembers();
  if (frame.user.id === session.me?.id) {
    session.me = frame.user;
    session.name = frame.user.name;
    session.renaming = false;
    el.myName.textContent = frame.user.name;
    sessionStorage.setItem(JOIN_KEY, frame.user.name);
    rememberName(frame.user.name);
  }
  systemLine(`${frame.old_name} is now ${frame.user.name}`);
}

function myRole() {
  return roles.get(session.me?.id) ?? "member";
}

function onRole(frame) {
  const me = frame.user.id === session.me?.id;
  if (me) session.claiming = false;
  // The room was handed over: the owner token is void, and so is the link made with it.
  if (me && frame.role !== "owner" && roles.get(frame.user.id) === "owner") {
    forgetOwnerToken(CODE);
    el.copyOwnerLink.hidden = true;
  }
  if (frame.role === "member") roles.delete(frame.user.id);
  else roles.set(frame.user.id, frame.role);
  renderMembers();
  refreshDeleteButtons();
  const who = frame.user.id === session.me?.id ? "You are" : `${frame.user.name} is`;
  systemLine(`${who} the room's ${frame.role} now`);
}

function onModerated(frame) {
  const reason = frame.reason ? `: ${frame.reason}` : "";
  const me = frame.user.id === session.me?.id;
  if (frame.action === "kick") {
    if (me) session.sentOut = `${frame.by.name} sent you out of the room${reason}`;
    else systemLine(`${frame.by.name} sent ${frame.user.name} out${reason}`);
    return;
  }
  if (frame.action === "ban") {
    if (me) {
      session.sentOut = `${frame.by.name} banned you from the room${reason}`;
      return;
    }
    const line = systemLine(`${frame.by.name} banned ${frame.user.name}${reason}`);
    // The banned are gone from the member list: this line is where their ban can be lifted.
    if (myRole() !== "member") {
      line.append(" ", memberAction("Unban", `Lift ${frame.user.name}'s ban`, { type: "unban", user_id: frame.user.id }));
    }
    return;
  }
  if (frame.action === "unban") {
    systemLine(`${frame.by.name} lifted ${frame.user.name}'s ban`);
    return;
  }
  const muting = frame.action === "mute";
  if (muting) muted.add(frame.user.id);
  else muted.delete(frame.user.id);
  renderMembers();
  const whom = me ? "you" : frame.user.name;
  systemLine(`${frame.by.name} ${muting ? "muted" : "unmuted"} ${whom}${reason}`);
}

/** The room's rules, from the welcome or a change; `announce` says so in the log. */
function onRoomUpdated(rules, announce) {
  if (announce && rules.locked !== session.locked) {
    systemLine(rules.locked ? "The room is locked: nobody new may join" : "The room is open to newcomers again");
  }
  if (announce && rules.accounts_only !== session.accountsOnly) {
    systemLine(rules.accounts_only ? "Only signed-in members may join now" : "Guests may join again");
  }
  if (announce && rules.password !== session.password) {
    systemLine(rules.password ? "Newcomers need the room's password now" : "The room has no password now");
  }
  session.locked = rules.locked;
  session.accountsOnly = rules.accounts_only;
  session.password = rules.password;
  el.passwordState.textContent = rules.password
    ? "Newcomers need the password; those inside stay." : "Anyone with the link may join.";
  el.removePassword.hidden = !rules.password;
  el.lock.textContent = rules.locked ? "Unlock room" : "Lock room";
  el.lock.setAttribute("aria-pressed", String(rules.locked));
  el.accountsOnly.setAttribute("aria-pressed", String(rules.accounts_only));
}

/** Removes messages that have disappeared (in a room whose messages expire). */
function onExpired(throughSeq) {
  for (const item of el.log.querySelectorAll(".msg[data-seq]")) {
    if (Number(item.dataset.seq) <= throughSeq) item.remove();
  }
  session.firstSeq = Math.max(session.firstSeq ?? 0, throughSeq + 1);
}

function describeSeconds(seconds) {
  const units = [["day", 86400], ["hour", 3600], ["minute", 60]];
  for (const [unit, size] of units) {
    if (seconds >= size && seconds % size === 0) {
      const count = seconds / size;
      return `${count} ${unit}${count === 1 ? "" : "s"}`;
    }
  }
  return `${seconds} second${seconds === 1 ? "" : "s"}`;
}

function onError(frame) {
  if (frame.ref !== undefined && pending.has(frame.ref)) {
    pending.get(frame.ref).failed = true;
    setStatus(frame.ref, `Not sent: ${frame.message}`, true);
  } else if (session.claiming && frame.code === "forbidden") {
    // A token this room does not know (another room's, or stale): say so once, then drop it.
    session.claiming = false;
    forgetOwnerToken(CODE);
    el.copyOwnerLink.hidden = true;
    systemLine(frame.message, "error");
  } else if (session.renaming && (frame.code === "name_taken" || frame.code === "invalid_name")) {
    session.renaming = false;
    askForName("rename", frame.message);
  } else {
    systemLine(frame.message, "error");
  }
}

// ---- The log ----

function nearBottom() {
  return el.log.scrollHeight - el.log.scrollTop - el.log.clientHeight < 48;
}

function scrollToBottom() {
  el.log.scrollTop = el.log.scrollHeight;
  el.newMessages.hidden = true;
}

/** Adds to the log, keeping the reader at the bottom only if they were there already. */
function append(element, alwaysScroll = false) {
  const stick = nearBottom();
  el.log.append(element);
  if (stick || alwaysScroll) {
    scrollToBottom();
  } else {
    el.newMessages.hidden = false;
  }
}

/** A message's list item; `previous` is the message item it follows, for grouping. */
function messageElement(message, mine, previous) {
  const item = document.createElement("li");
  item.className = mine ? "msg mine" : "msg";
  item.dataset.from = message.from.id;
  item.dataset.seq = String(message.seq);
  item.dataset.ts = String(Date.parse(message.ts));
  const continued = previous?.dataset.from === message.from.id
    && Number(item.dataset.ts) - Number(previous.dataset.ts) < GROUP_WINDOW_MS;
  const time = document.createElement("time");
  time.dateTime = message.ts;
  time.textContent = new Date(message.ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (continued) {
    item.classList.add("continued");
    time.className = "visually-hidden";
    item.append(time);
  } else {
    item.append(header(message.from.name, time));
  }
  item.append(textElement(message.text));
  if (message.edited_at) item.append(editedMark(message.edited_at));
  // In a corner of the message, shown on hover or focus: they take no line of their own.
  const actions = document.createElement("span");
  actions.className = "msg-actions";
  if (mine) actions.append(editButton(item));
  actions.append(deleteButton(item));
  item.append(actions);
  showDeleteIfAllowed(item);
  return item;
}

/** Delete, on your own messages and, for a moderator, on those of lower ranks. */
function deleteButton(item) {
  const button = smallButton("Delete", "Delete this message", "msg-delete");
  button.addEventListener("click", () => send({ type: "delete", seq: Number(item.dataset.seq) }));
  return button;
}

/** A small button, labelled for what it does to whom or what. */
function smallButton(text, label, className = "") {
  const button = document.createElement("button");
  button.type = "button";
  button.className = `small ${className}`.trim();
  button.textContent = text;
  button.setAttribute("aria-label", label);
  return button;
}

function showDeleteIfAllowed(item) {
  const button = item.querySelector(".msg-delete");
  if (!button) return;
  const author = item.dataset.from;
  const mine = author === session.me?.id;
  button.hidden = !(mine || outranks(myRole(), roles.get(author) ?? "member"));
}

/** Ranks changed: who may delete what changed with them. */
function refreshDeleteButtons() {
  for (const item of el.log.querySelectorAll(".msg")) showDeleteIfAllowed(item);
}

function onDeleted(frame) {
  const item = el.log.querySelector(`.msg[data-seq="${frame.seq}"]`);
  if (!item) return;
  const head = item.querySelector(".msg-head");
  const next = item.nextElementSibling;
  if (head && next?.classList.contains("continued")) {
    // The next message of the group takes over its header, with its own time.
    const time = next.querySelector("time");
    time.className = "";
    head.querySelector("time").replaceWith(time);
    next.classList.remove("continued");
    next.prepend(head);
  }
  if (lastShown === item) lastShown = null;
  item.remove();
}

function editedMark(editedAt) {
  const mark = document.createElement("span");
  mark.className = "msg-edited muted";
  mark.textContent = "(edited)";
  mark.title = `edited ${new Date(editedAt).toLocaleString()}`;
  return mark;
}

/** An author's Edit button: the text becomes a field; Enter saves, Escape keeps it as it was. */
function editButton(item) {
  const button = smallButton("Edit", "Edit this message", "msg-edit");
  button.addEventListener("click", () => {
    const text = item.querySelector(".msg-text");
    const field = document.createElement("textarea");
    field.className = "msg-editor";
    field.value = text.textContent;
    field.setAttribute("aria-label", "New text of the message");
    field.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        const changed = field.value.trim() !== "" && field.value !== text.textContent;
        if (changed) send({ type: "edit", seq: Number(item.dataset.seq), text: field.value });
        field.replaceWith(text);
      } else if (event.key === "Escape") {
        field.replaceWith(text);
      }
    });
    text.replaceWith(field);
    field.focus();
  });
  return button;
}

function onEdited(frame) {
  const item = el.log.querySelector(`.msg[data-seq="${frame.seq}"]`);
  if (!item) return;
  const text = item.querySelector(".msg-text");
  if (text) text.textContent = frame.text;
  item.querySelector(".msg-edited")?.remove();
  item.querySelector(".msg-text, .msg-editor")?.after(editedMark(frame.edited_at));
}

function header(name, ...rest) {
  const head = document.createElement("div");
  head.className = "msg-head";
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = name;
  head.append(who, ...rest);
  return head;
}

function textElement(text) {
  const body = document.createElement("p");
  body.className = "msg-text";
  body.textContent = text;
  return body;
}

/** Fetches the page of messages before the oldest shown and puts it above, keeping the reader's place. */
async function loadOlderIfAtTop() {
  if (session.loadingOlder || !(session.firstSeq > 1) || el.log.scrollTop > LOAD_OLDER_WITHIN_PX) return;
  session.loadingOlder = true;
  try {
    const response = await fetch(`/api/rooms/${encodeURIComponent(CODE)}/messages?before=${session.firstSeq}&limit=${OLDER_PAGE}`);
    if (!response.ok) return;
    const { messages } = await response.json();
    const older = document.createDocumentFragment();
    let previous = null;
    for (const message of messages) {
      if (shown.has(message.id)) continue;
      shown.add(message.id);
      previous = messageElement(message, message.from.id === session.me?.id, previous);
      older.append(previous);
    }
    // Messages older than any held (the start of the room, or past retention) end the search.
    session.firstSeq = messages.length === 0 ? 1 : messages[0].seq;
    const heightBefore = el.log.scrollHeight;
    el.log.prepend(older);
    el.log.scrollTop += el.log.scrollHeight - heightBefore;
  } finally {
    session.loadingOlder = false;
  }
  loadOlderIfAtTop();
}

function systemLine(text, kind = "") {
  const item = document.createElement("li");
  item.className = `system ${kind}`.trim();
  item.textContent = text;
  append(item);
  return item;
}

// ---- Sending ----

function sendMessage(text) {
  refCounter += 1;
  const ref = `c${Date.now().toString(36)}${refCounter.toString(36)}`;
  const element = document.createElement("li");
  element.className = "msg mine pending";
  const status = document.createElement("span");
  status.className = "msg-status";
  element.append(header(session.me?.name ?? session.name, status), textElement(text));
  pending.set(ref, { text, element, failed: false });
  append(element, true);
  transmit(ref);
}

/** Sends a pending message, or leaves it marked to go out after the next welcome. */
function transmit(ref) {
  const item = pending.get(ref);
  item.failed = false;
  item.element.classList.remove("failed");
  if (send({ type: "message", text: item.text, ref })) {
    setStatus(ref, "Sending…");
  } else {
    setStatus(ref, "Not sent yet: it will be sent when the connection is back.");
  }
}

function setStatus(ref, text, failed = false) {
  const item = pending.get(ref);
  const status = item.element.querySelector(".msg-status");
  status.textContent = text;
  item.element.classList.toggle("failed", failed);
  if (failed) {
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "small";
    retry.textContent = "Retry";
    retry.addEventListener("click", () => transmit(ref));
    status.append(" ", retry);
  }
}

// ---- Members and typing ----

function renderMembers() {
  const mine = myRole();
  const items = [...members.values()].map((member) => {
    const item = document.createElement("li");
    const me = member.id === session.me?.id;
    const name = document.createElement("span");
    name.className = "member-name";
    name.textContent = me ? `${member.name} (you)` : member.name;
    item.append(name);
    const role = roles.get(member.id);
    if (role) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = ROLE_NAMES[role] ?? role;
      item.append(" ", badge);
    }
    if (muted.has(member.id)) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = "muted";
      item.append(" ", badge);
    }
    if (!me && outranks(mine, role ?? "member")) {
      const silenced = muted.has(member.id);
      item.append(
        " ", memberAction("Send out", `Send ${member.name} out of the room`, { type: "kick", user_id: member.id }),
        " ", memberAction("Ban", `Ban ${member.name} from the room`, { type: "ban", user_id: member.id }),
        " ", memberAction(silenced ? "Unmute" : "Mute", `${silenced ? "Unmute" : "Mute"} ${member.name}`,
          { type: silenced ? "unmute" : "mute", user_id: member.id }),
      );
    }
    // Only the owner names moderators, and only signed-in members can be one.
    if (!me && mine === "owner" && member.account && role !== "owner") {
      const moderator = role === "moderator";
      const text = moderator ? "Remove moderator" : "Make moderator";
      item.append(" ", memberAction(text, `${text}: ${member.name}`,
        { type: "set_role", user_id: member.id, role: moderator ? "member" : "moderator" }));
      item.append(" ", handOverButton(member));
    }
    item.classList.toggle("is-me", me);
    return item;
  });
  el.members.replaceChildren(...items);
  el.memberCount.textContent = `(${members.size})`;
  el.settings.hidden = mine === "member";
}

/** Gives the room away, which cannot be undone: the first press asks, the second does it. */
function handOverButton(member) {
  const button = smallButton("Give the room", `Give the room to ${member.name}`);
  button.addEventListener("click", () => {
    if (button.dataset.confirming) {
      send({ type: "set_role", user_id: member.id, role: "owner" });
      return;
    }
    button.dataset.confirming = "yes";
    button.textContent = `Yes, make ${member.name} the owner`;
    button.setAttribute("aria-label", `Confirm: make ${member.name} the owner; you become a moderator`);
  });
  return button;
}

/** A small button beside a member that sends `frame`; `label` names the member for screen readers. */
function memberAction(text, label, frame) {
  const button = smallButton(text, label);
  button.addEventListener("click", () => send(frame));
  return button;
}

function startTyping(user) {
  stopTyping(user.id);
  const timer = setTimeout(() => stopTyping(user.id), TYPING_SHOWN_MS);
  typers.set(user.id, { name: user.name, timer });
  renderTyping();
}

function stopTyping(id) {
  const typer = typers.get(id);
  if (!typer) return;
  clearTimeout(typer.timer);
  typers.delete(id);
  renderTyping();
}

function renderTyping() {
  const names = [...typers.values()].map((typer) => typer.name);
  el.typing.textContent = names.length === 0 ? ""
    : names.length === 1 ? `${names[0]} is typing…`
    : names.length === 2 ? `${names[0]} and ${names[1]} are typing…`
    : "Several people are typing…";
}

// ---- Banner, name dialog ----

function showBanner(text, { linkHome = false, action = null } = {}) {
  el.connection.replaceChildren(text);
  if (linkHome) {
    const home = document.createElement("a");
    home.href = "/";
    home.textContent = "Go to the home page";
    el.connection.append(" ", home);
  }
  if (action) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "small";
    button.textContent = action[0];
    button.addEventListener("click", action[1]);
    el.connection.append(" ", button);
  }
  el.connection.hidden = false;
}

function hideBanner() {
  el.connection.hidden = true;
}

function askForName(purpose, error = null) {
  session.naming = purpose;
  const renaming = purpose === "rename";
  el.nameTitle.textContent = renaming ? "Change your name" : `Pick a name for room ${CODE}`;
  el.nameSubmit.textContent = renaming ? "Change" : "Join";
  el.nameInput.value = renaming ? session.me?.name ?? "" : session.name || rememberedName();
  showFieldError(el.nameInput, el.nameError, error);
  if (!el.dialog.open) el.dialog.showModal();
  el.nameInput.select();
}

el.nameForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const problem = nameProblem(el.nameInput.value, MAX_NAME);
  if (problem) {
    showFieldError(el.nameInput, el.nameError, problem);
    return;
  }
  const name = el.nameInput.value.trim();
  el.dialog.close();
  if (session.naming === "rename") {
    session.renaming = send({ type: "rename", name });
  } else {
    session.name = name;
    rememberName(name);
    connect();
  }
});

/** The room has a password: ask for it, trade it for a pass, and join with that. */
function askForPassword(error = null) {
  session.pass = null;
  el.roomPassword.value = "";
  showFieldError(el.roomPassword, el.roomPasswordError, error);
  if (!el.passDialog.open) el.passDialog.showModal();
  el.roomPassword.focus();
}

el.passForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (el.roomPassword.value === "") {
    showFieldError(el.roomPassword, el.roomPasswordError, "Enter the room's password.");
    return;
  }
  const response = await fetch(`/api/rooms/${encodeURIComponent(CODE)}/pass`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ password: el.roomPassword.value }),
  });
  const body = await response.json().catch(() => ({}));
  if (response.ok) {
    session.pass = body.pass;
    el.roomPassword.value = "";
    el.passDialog.close();
    connect();
    return;
  }
  const problem = response.status === 401 ? "That is not this room's password."
    : body.error?.message ?? "The password could not be checked; try again.";
  showFieldError(el.roomPassword, el.roomPasswordError, problem);
});

el.passDialog.addEventListener("cancel", (event) => event.preventDefault());

el.passwordForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const password = el.newPassword.value;
  if ([...password].length < 8) {
    el.passwordState.textContent = "A room password has at least 8 characters.";
    return;
  }
  send({ type: "set_password", password });
  el.newPassword.value = "";
});

el.removePassword.addEventListener("click", () => send({ type: "set_password", password: null }));

// Escape may cancel a rename, but joining needs a name: the dialog's own link leads home instead.
el.dialog.addEventListener("cancel", (event) => {
  if (session.naming === "join") event.preventDefault();
});

// ---- Composer and controls ----

function messageLength() {
  return [...el.message.value].length;
}

function updateComposer() {
  const length = messageLength();
  const over = length > MAX_MESSAGE;
  el.charCount.textContent = length < COUNTER_FROM ? ""
    : over ? `${length - MAX_MESSAGE} characters over the ${MAX_MESSAGE} limit`
    : `${MAX_MESSAGE - length} characters left`;
  el.charCount.classList.toggle("over", over);
  el.send.disabled = over;
  el.message.style.height = "auto";
  el.message.style.height = `${el.message.scrollHeight + 2}px`;
}

el.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = el.message.value;
  if (text.trim() === "" || messageLength() > MAX_MESSAGE) return;
  sendMessage(text);
  el.message.value = "";
  updateComposer();
  el.message.focus();
});

el.message.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    el.composer.requestSubmit();
  }
});

el.message.addEventListener("input", () => {
  updateComposer();
  const now = Date.now();
  if (el.message.value.trim() !== "" && now - lastTypingSent >= TYPING_SEND_EVERY_MS) {
    if (send({ type: "typing" })) lastTypingSent = now;
  }
});

el.log.addEventListener("scroll", () => {
  if (nearBottom()) el.newMessages.hidden = true;
  loadOlderIfAtTop();
});
el.newMessages.addEventListener("click", scrollToBottom);

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) {
    unread = 0;
    document.title = baseTitle;
  }
});

el.copyInvite.addEventListener("click", async () => {
  // The configured public address if there is one, else the address this page was opened at.
  const link = `${document.body.dataset.inviteBase || location.origin}/r/${encodeURIComponent(CODE)}`;
  try {
    await navigator.clipboard.writeText(link);
    el.copyStatus.textContent = "Invite link copied";
  } catch {
    // No clipboard access (plain http on another machine): show the link to copy by hand.
    el.copyStatus.textContent = link;
  }
  setTimeout(() => { el.copyStatus.textContent = ""; }, 4000);
});

el.copyOwnerLink.addEventListener("click", async () => {
  const link = ownerLink(INVITE_BASE, CODE, ownerToken(CODE));
  try {
    await navigator.clipboard.writeText(link);
    el.copyStatus.textContent = "Owner link copied: whoever opens it owns the room";
  } catch {
    el.copyStatus.textContent = link;
  }
  setTimeout(() => { el.copyStatus.textContent = ""; }, 4000);
});

el.lock.addEventListener("click", () => send({ type: session.locked ? "unlock" : "lock" }));
el.accountsOnly.addEventListener("click", () => send({ type: "accounts_only", on: !session.accountsOnly }));

el.rename?.addEventListener("click", () => askForName("rename"));

el.leave.addEventListener("click", () => {
  session.leaving = true;
  session.socket?.close(1000, "left the room");
  sessionStorage.removeItem(JOIN_KEY);
  sessionStorage.removeItem(RESUME_KEY);
  location.assign("/");
});

// ---- Start ----

takeOwnerTokenFromLink(CODE);

// From the home page (or a reload) the name is known; arriving by an invite link, ask first.
if (session.name) {
  connect();
} else {
  askForName("join");
}
