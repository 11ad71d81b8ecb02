// The admin console: sign-in, navigation between its pages (a module each), sign-out. Every action is a
// documented API call with the admin role (/openapi.json).
import { state, leavePage, $, api, el, say, attempt, whenSessionEnds } from "./lib.js";
import { overviewPage } from "./overview.js";
import { usersPage, userPage } from "./users.js";
import { memoriesPage } from "./memories.js";
import { registryPage } from "./registry.js";
import { billingPage, accountPage } from "./billing.js";
import { eventsPage } from "./events.js";
import { settingsPage } from "./settings.js";

const routes = {
  overview: (page) => overviewPage(page),
  users: (page, id, params) => (id ? userPage(page, id) : usersPage(page, params)),
  memories: (page, id) => memoriesPage(page, id),
  registry: (page) => registryPage(page),
  billing: (page, id, params) => (id ? accountPage(page, id) : billingPage(page, params)),
  events: (page) => eventsPage(page),
  settings: (page) => settingsPage(page),
};

async function navigate() {
  if (!state.token) return;
  leavePage();
  const [path, search = ""] = location.hash.slice(1).split("?");
  const [name, id] = path.split("/");
  const route = routes[name] ? name : "overview";
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.getAttribute("href") === `#${route}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const page = el("div");
  $("#page").replaceChildren(page);
  $("#page").dataset.page = route;
  say("");
  document.title = `${route[0].toUpperCase()}${route.slice(1)} · keel console`;
  const params = new URLSearchParams(search);
  // Ids in the address go into API paths: only what keel issues (a UUID), so a crafted link cannot aim a
  // page's buttons at another endpoint.
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  const ids = [id, params.get("user")].filter((v) => v !== undefined && v !== null);
  if (!ids.every((v) => uuid.test(v))) {
    page.append(el("h2", {}, "Not found"), el("p", {}, "This address names nothing the console knows."));
  } else {
    await attempt("Loading the page", () => routes[route](page, id, params));
  }
  if (page.isConnected) $("#page").focus({ preventScroll: true });
}

function forget(message) {
  leavePage();
  Object.assign(state, { token: null, refresh: null, me: null });
  $("#nav").hidden = true;
  $("#signout").hidden = true;
  $("#who").hidden = true;
  $("#page").hidden = true;
  $("#page").replaceChildren();
  $("#signin").hidden = false;
  $("#signin-error").textContent = message || "";
  checkFirstAdmin();
}

async function signIn(event) {
  event.preventDefault();
  performance.mark("signin");
  const form = new FormData(event.target);
  $("#signin-error").textContent = "";
  try {
    const session = await api("/v1/auth/login", {
      method: "POST",
      body: { email: form.get("email"), password: form.get("password") },
    });
    if (!session.user.roles.includes("admin")) {
      $("#signin-error").textContent = "This account does not have the admin role.";
      // Its session is of no use here: end it.
      await fetch("/v1/auth/logout", { method: "POST", headers: { Authorization: `Bearer ${session.access_token}` } }).catch(() => {});
      return;
    }
    Object.assign(state, { token: session.access_token, refresh: session.refresh_token, me: session.user });
    event.target.reset();
    $("#signin").hidden = true;
    $("#nav").hidden = false;
    $("#signout").hidden = false;
    $("#who").hidden = false;
    $("#who").textContent = session.user.email;
    $("#page").hidden = false;
    await navigate();
  } catch (e) {
    $("#signin-error").textContent =
      e.status === 401 ? "Wrong email or password." : e.status === 403 ? "This account is disabled." : e.message;
  }
}

async function signOut() {
  await api("/v1/auth/logout", { method: "POST" }).catch(() => {});
  forget();
}

async function checkFirstAdmin() {
  const setup = await fetch("/v1/auth/setup").then((r) => (r.ok ? r.json() : null)).catch(() => null);
  $("#first-admin").hidden = !setup || setup.has_admin;
}

$("#signin-form").addEventListener("submit", signIn);
$("#signout").addEventListener("click", signOut);
window.addEventListener("hashchange", navigate);
checkFirstAdmin();

whenSessionEnds(forget);
