// A room's owner token in the browser: kept per room in localStorage, carried by the owner link in
// the URL fragment (which never reaches the server), and the ranks that decide who may act on whom.

const key = (code) => `hubbub.owner.${code.toUpperCase()}`;

export function ownerToken(code) {
  try {
    return localStorage.getItem(key(code));
  } catch {
    return null; // storage disabled: the owner link still works for this page
  }
}

export function keepOwnerToken(code, token) {
  try {
    localStorage.setItem(key(code), token);
  } catch {
    // without storage the token lives only in the owner link
  }
}

export function forgetOwnerToken(code) {
  try {
    localStorage.removeItem(key(code));
  } catch {
    // nothing was kept
  }
}

/** Takes an owner token from `#owner=…`, keeps it, and takes it out of the address bar. */
export function takeOwnerTokenFromLink(code) {
  const match = /^#owner=([0-9a-f]{64})$/.exec(location.hash);
  if (!match) return;
  keepOwnerToken(code, match[1]);
  history.replaceState(null, "", location.pathname + location.search);
}

/** The owner link: the room's address with the token in its fragment. */
export function ownerLink(base, code, token) {
  return `${base}/r/${encodeURIComponent(code)}#owner=${token}`;
}

const RANKS = { member: 0, moderator: 1, owner: 2 };

/** Whether someone of rank `mine` may act on someone of rank `theirs`. */
export function outranks(mine, theirs) {
  return (RANKS[mine] ?? 0) > (RANKS[theirs] ?? 0);
}

export const ROLE_NAMES = { owner: "owner", moderator: "moderator" };
