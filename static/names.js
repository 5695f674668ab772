// Display names in the browser: the remembered name, and the checks a person should hear about
// before the server has to refuse (the server checks everything again).

const STORAGE_KEY = "hubbub.name";

export function rememberedName() {
  try {
    return localStorage.getItem(STORAGE_KEY) ?? "";
  } catch {
    return ""; // storage can be disabled; then nothing is remembered
  }
}

export function rememberName(name) {
  try {
    localStorage.setItem(STORAGE_KEY, name);
  } catch {
    // not remembering a name is no reason to stop
  }
}

/** Returns why `raw` cannot be a name, or null if it can; `max` comes from the page. */
export function nameProblem(raw, max) {
  const name = raw.trim().normalize("NFC");
  if (name === "") return "Please enter a name.";
  const length = [...name].length;
  if (length > max) return `Names can be at most ${max} characters (this one has ${length}).`;
  return null;
}

/** How the server compares names: case-insensitively, after Unicode normalization. */
export function nameKey(name) {
  return name.trim().normalize("NFC").toLowerCase().normalize("NFC");
}

/** Shows or clears the error beside a field. */
export function showFieldError(input, errorElement, message) {
  errorElement.textContent = message ?? "";
  if (message) {
    input.setAttribute("aria-invalid", "true");
  } else {
    input.removeAttribute("aria-invalid");
  }
}
