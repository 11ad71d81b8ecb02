// What every page of the admin console shares: the session (its tokens in this module's memory only: no web
// storage, no cookie, so a reload asks to sign in again), API calls, DOM helpers (pages are built with DOM
// calls, never from HTML strings: nothing a user stored can run as markup here), and the page lifecycle.
export const state = { token: null, refresh: null, me: null, refreshing: null };

// Set by console.js: signs out, saying why (an API call found the session ended).
let sessionEnded = () => {};
export function whenSessionEnds(fn) {
  sessionEnded = fn;
}
export const endSession = (message) => sessionEnded(message);

// What the current page started (streams, chart listeners): stopped when another page opens. Each page
// renders into a root of its own, so a page still loading when another opens writes only to its own
// detached root, and its timers stop (every()).
let pageCleanups = [];

// Stops what the page being left started.
export function leavePage() {
  for (const stop of pageCleanups) stop();
  pageCleanups = [];
}

// Runs `fn` when the page of `root` is left (at once when it already was).
export function onLeave(root, fn) {
  if (root.isConnected) pageCleanups.push(fn);
  else fn();
}

export const $ = (sel) => document.querySelector(sel);

// ---------------------------------------------------------------------------------------------------------
// API calls

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function call(path, options) {
  const headers = { ...(options.headers || {}) };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  let body = options.body;
  if (body !== undefined && typeof body !== "string") {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(body);
  }
  return fetch(path, { ...options, headers, body });
}

// The access token is short-lived: a 401 swaps the refresh token for a new pair once (rotation), then retries.
export async function renew() {
  if (!state.refresh) return false;
  state.refreshing ??= (async () => {
    try {
      const res = await fetch("/v1/auth/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: state.refresh }),
      });
      if (!res.ok) return false;
      const pair = await res.json();
      state.token = pair.access_token;
      state.refresh = pair.refresh_token;
      return true;
    } finally {
      setTimeout(() => (state.refreshing = null), 0);
    }
  })();
  return state.refreshing;
}

export async function api(path, options = {}) {
  let res = await call(path, options);
  if (res.status === 401 && state.token && (await renew())) res = await call(path, options);
  const text = await res.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { detail: text };
  }
  if (res.status === 401 && state.token) {
    endSession("Your session ended. Sign in again.");
    throw new ApiError(401, body);
  }
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

export const query = (params) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
};

// ---------------------------------------------------------------------------------------------------------
// DOM helpers

export function el(tag, props = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k === "value") e.value = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === undefined || kid === null || kid === false) continue;
    e.append(kid instanceof Node ? kid : String(kid));
  }
  return e;
}

export function table(id, headers, rows, empty = "Nothing here yet.") {
  const t = el(
    "table",
    { id },
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c))))),
  );
  return el("div", { class: "scroll" }, t, el("p", { class: "hint empty", hidden: rows.length > 0 }, empty));
}

// Says whether table `id` of `scope` is empty (its "nothing here" line), once rows were added or replaced.
export function markEmpty(scope, id) {
  const t = scope.querySelector(`#${id}`);
  const hint = t?.parentElement.querySelector(".empty");
  if (hint) hint.hidden = t.tBodies[0].children.length > 0;
}

export function fillTable(scope, id, rows) {
  const body = scope.querySelector(`#${id} tbody`);
  if (!body) return;
  body.replaceChildren(...rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c)))));
  markEmpty(scope, id);
}

// A table of a listing's pages, in `page`: the first page now, the next ones with its "More" button.
export async function paged(page, id, headers, empty, url, cells) {
  const more = el("button", { type: "button", hidden: true }, "More");
  page.append(table(id, headers, [], empty), more);
  let cursor = null;
  const load = async () => {
    const list = await api(url(cursor));
    page.querySelector(`#${id} tbody`).append(
      ...list.items.map((item) => el("tr", {}, cells(item).map((c) => el("td", {}, c)))),
    );
    cursor = list.next_cursor;
    more.hidden = !cursor;
    markEmpty(page, id);
  };
  more.addEventListener("click", () => attempt("Loading more", load));
  await load();
}

// A random UUID: crypto.randomUUID() where the page counts as secure (HTTPS, localhost), else made from
// crypto.getRandomValues (a console reached over plain HTTP on a private address).
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export const when = (t) => (t ? new Date(t).toLocaleString() : "—");
export const link = (href, text) => el("a", { href }, text);
export const dl = (pairs) =>
  el(
    "dl",
    { class: "facts" },
    pairs.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]),
  );

export function say(message, bad = false) {
  const s = $("#status");
  s.textContent = message;
  s.className = bad ? "bad" : "";
}

// Runs an action, saying what went wrong instead of throwing.
export async function attempt(what, fn) {
  try {
    return await fn();
  } catch (e) {
    if (e.status !== 401) say(`${what}: ${e.message}`, true);
    return undefined;
  }
}

// Calls `fn` every `ms` while the page of `root` is shown; a failed refresh is said (the page keeps what it
// last showed), and the next one that works clears it.
export function every(root, ms, fn) {
  let timer, failed = false;
  const tick = async () => {
    if (!root.isConnected) return;
    try {
      await fn();
      if (failed) say("");
      failed = false;
    } catch (e) {
      if (root.isConnected && e.status !== 401) say(`Live refresh failed: ${e.message}`, true);
      failed = true;
    }
    if (root.isConnected) timer = setTimeout(tick, ms);
  };
  timer = setTimeout(tick, ms);
  onLeave(root, () => clearTimeout(timer));
}

// A search for a user by email whose results link to `href(user)`.
export async function pickUser(page, href) {
  const form = el(
    "form",
    { id: "pick-user", class: "inline", role: "search" },
    el("label", {}, "Email contains ", el("input", { name: "query", type: "search", required: true })),
    el("button", { type: "submit" }, "Find"),
  );
  const found = el("ul", { id: "picked" });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    attempt("Searching users", async () => {
      const list = await api(`/v1/auth/users${query({ query: new FormData(form).get("query"), limit: 20 })}`);
      found.replaceChildren(...list.items.map((u) => el("li", {}, link(href(u), u.email))));
      if (!list.items.length) found.append(el("li", { class: "hint" }, "No user matches."));
    });
  });
  page.append(form, found);
}

// Registry: every module, its routes and instances, refreshed every 2 s.
