// The home page: pick a name, then join a room by code or create one.
import { nameKey, nameProblem, rememberName, rememberedName, showFieldError } from "./names.js";
import { keepOwnerToken } from "./owners.js";

const MAX_NAME = Number(document.body.dataset.maxName);
const CODE_PATTERN = /^[A-Za-z0-9-]{3,32}$/;

const form = document.getElementById("home-form");
const nameInput = document.getElementById("name");
const joinInput = document.getElementById("join-code");
const createInput = document.getElementById("create-code");
const errors = {
  name: document.getElementById("name-error"),
  join: document.getElementById("join-code-error"),
  create: document.getElementById("create-code-error"),
};

// Signed in, the name is the username, which the page has filled in.
const USERNAME = document.body.dataset.username;
if (!USERNAME) nameInput.value = rememberedName();

function checkName() {
  const problem = nameProblem(nameInput.value, MAX_NAME);
  showFieldError(nameInput, errors.name, problem);
  return problem === null;
}

function codeProblem(code) {
  if (CODE_PATTERN.test(code)) return null;
  return "A room code has 3 to 32 letters, digits or dashes.";
}

/** Remembers the name and the wish to join, then opens the room page. */
function enter(code) {
  const name = nameInput.value.trim();
  if (!USERNAME) rememberName(name);
  sessionStorage.setItem(`hubbub.join.${code.toUpperCase()}`, name);
  location.assign(`/r/${encodeURIComponent(code.toUpperCase())}`);
}

async function join(event) {
  event.preventDefault();
  const code = joinInput.value.trim();
  const nameOk = checkName();
  const problem = code === "" ? "Enter the code of the room to join." : codeProblem(code);
  showFieldError(joinInput, errors.join, problem);
  if (!nameOk || problem) return;

  const response = await fetch(`/api/rooms/${encodeURIComponent(code)}`);
  if (response.status === 404) {
    showFieldError(joinInput, errors.join, `There is no room with the code ${code.toUpperCase()}.`);
    return;
  }
  const body = await response.json();
  if (!response.ok) {
    showFieldError(joinInput, errors.join, body.error?.message ?? "That room cannot be joined right now.");
    return;
  }
  const wanted = nameKey(nameInput.value);
  // Signed in, your own name in the list is you on another device.
  if (!USERNAME && body.members.some((member) => nameKey(member.name) === wanted)) {
    showFieldError(nameInput, errors.name, `Someone in ${body.code} is already called ${nameInput.value.trim()}. Pick another name.`);
    return;
  }
  enter(body.code);
}

async function create() {
  const code = createInput.value.trim();
  const nameOk = checkName();
  const problem = code === "" ? null : codeProblem(code);
  showFieldError(createInput, errors.create, problem);
  if (!nameOk || problem) return;

  const request = {};
  if (code !== "") request.code = code;
  const lifetime = document.getElementById("lifetime").value;
  if (lifetime !== "") request.expire_after_seconds = Number(lifetime);
  const response = await fetch("/api/rooms", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(request),
  });
  const body = await response.json();
  if (response.status === 409) {
    showFieldError(createInput, errors.create, `${code.toUpperCase()} is taken. Pick another code, or join that room.`);
    return;
  }
  if (!response.ok) {
    showFieldError(createInput, errors.create, body.error?.message ?? "The room could not be created.");
    return;
  }
  // Handed out once: the room page claims the room with it after every join.
  keepOwnerToken(body.code, body.owner_token);
  enter(body.code);
}

form.addEventListener("submit", join);
document.getElementById("create").addEventListener("click", create);
createInput.addEventListener("keydown", (event) => {
  if (event.key === "Enter") {
    event.preventDefault();
    create();
  }
});
for (const [input, error] of [[nameInput, errors.name], [joinInput, errors.join], [createInput, errors.create]]) {
  input.addEventListener("input", () => showFieldError(input, error, null));
}
