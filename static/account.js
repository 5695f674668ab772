// The sign-in, register and account pages: each form talks to the JSON API and says what went wrong
// beside the field it is about.
import { showFieldError } from "./names.js";

const $ = (id) => document.getElementById(id);

/** Sends `body` as JSON; answers the status and the parsed body (null when there is none). */
async function call(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** The page to go to after signing in: `?next=/r/CODE` if it is one of ours, else home. */
function next() {
  const target = new URLSearchParams(location.search).get("next") ?? "/";
  return target.startsWith("/") && !target.startsWith("//") ? target : "/";
}

function clear(...pairs) {
  for (const [input, error] of pairs) showFieldError(input, error, null);
}

function credentialsForm(register) {
  const form = $("credentials");
  const username = $("username");
  const password = $("password");
  const errors = { username: $("username-error"), password: $("password-error"), form: $("form-error") };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear([username, errors.username], [password, errors.password]);
    errors.form.textContent = "";
    const path = register ? "/api/account/register" : "/api/account/login";
    const { status, body } = await call("POST", path, { username: username.value, password: password.value });
    if (status === 200 || status === 201) {
      location.assign(next());
      return;
    }
    const code = body?.error?.code ?? "";
    const message = body?.error?.message ?? "That did not work; please try again.";
    if (code.startsWith("password")) showFieldError(password, errors.password, message);
    else if (code.includes("username")) showFieldError(username, errors.username, message);
    else errors.form.textContent = message;
  });
}

function accountPage() {
  const current = $("current-password");
  const fresh = $("new-password");
  const changeErrors = { current: $("current-password-error"), fresh: $("new-password-error") };
  $("change-password").addEventListener("submit", async (event) => {
    event.preventDefault();
    clear([current, changeErrors.current], [fresh, changeErrors.fresh]);
    $("change-status").textContent = "";
    const { status, body } = await call("POST", "/api/account/password", { current: current.value, new: fresh.value });
    if (status === 204) {
      current.value = fresh.value = "";
      $("change-status").textContent = "Password changed. Your other devices are signed out.";
      return;
    }
    const message = body?.error?.message ?? "The password could not be changed.";
    if (body?.error?.code === "bad_credentials") showFieldError(current, changeErrors.current, "That is not your current password.");
    else showFieldError(fresh, changeErrors.fresh, message);
  });

  const password = $("delete-password");
  const deleteError = $("delete-password-error");
  $("delete-account").addEventListener("submit", async (event) => {
    event.preventDefault();
    clear([password, deleteError]);
    const { status, body } = await call("DELETE", "/api/account", { password: password.value });
    if (status === 204) {
      location.assign("/");
      return;
    }
    const wrong = body?.error?.code === "bad_credentials";
    showFieldError(password, deleteError, wrong ? "That is not your password." : body?.error?.message ?? "The account could not be deleted.");
  });
}

const form = document.body.dataset.form;
if (form === "account") accountPage();
else credentialsForm(form === "register");
