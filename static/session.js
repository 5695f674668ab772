// The account links in a page's header: signing out ends the session on the server, then reloads.
const signOut = document.getElementById("sign-out");
signOut?.addEventListener("click", async () => {
  signOut.disabled = true;
  await fetch("/api/account/logout", { method: "POST" });
  location.assign("/");
});
