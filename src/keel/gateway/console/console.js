// The admin console. Every action is a documented API call with the admin role (/openapi.json); the tokens
// live in this module's memory only (no web storage, no cookie), so a reload asks to sign in again. Pages are
// built with DOM calls, never from HTML strings: nothing a user stored can run as markup here.
const state = { token: null, refresh: null, me: null, refreshing: null };
// What the current page started (streams, chart listeners): stopped when another page opens. Each page
// renders into a root of its own, so a page still loading when another opens writes only to its own
// detached root, and its timers stop (every()).
let pageCleanups = [];

// Runs `fn` when the page of `root` is left (at once when it already was).
function onLeave(root, fn) {
  if (root.isConnected) pageCleanups.push(fn);
  else fn();
}

const $ = (sel) => document.querySelector(sel);

// ---------------------------------------------------------------------------------------------------------
// API calls

class ApiError extends Error {
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
async function renew() {
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

async function api(path, options = {}) {
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
    forget("Your session ended. Sign in again.");
    throw new ApiError(401, body);
  }
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

const query = (params) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
};

// ---------------------------------------------------------------------------------------------------------
// DOM helpers

function el(tag, props = {}, ...kids) {
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

function table(id, headers, rows, empty = "Nothing here yet.") {
  const t = el(
    "table",
    { id },
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c))))),
  );
  return el("div", { class: "scroll" }, t, el("p", { class: "hint empty", hidden: rows.length > 0 }, empty));
}

// Says whether table `id` of `scope` is empty (its "nothing here" line), once rows were added or replaced.
function markEmpty(scope, id) {
  const t = scope.querySelector(`#${id}`);
  const hint = t?.parentElement.querySelector(".empty");
  if (hint) hint.hidden = t.tBodies[0].children.length > 0;
}

function fillTable(scope, id, rows) {
  const body = scope.querySelector(`#${id} tbody`);
  if (!body) return;
  body.replaceChildren(...rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c)))));
  markEmpty(scope, id);
}

// A table of a listing's pages, in `page`: the first page now, the next ones with its "More" button.
async function paged(page, id, headers, empty, url, cells) {
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
function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const when = (t) => (t ? new Date(t).toLocaleString() : "—");
const link = (href, text) => el("a", { href }, text);
const dl = (pairs) =>
  el(
    "dl",
    { class: "facts" },
    pairs.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]),
  );

function say(message, bad = false) {
  const s = $("#status");
  s.textContent = message;
  s.className = bad ? "bad" : "";
}

// Runs an action, saying what went wrong instead of throwing.
async function attempt(what, fn) {
  try {
    return await fn();
  } catch (e) {
    if (e.status !== 401) say(`${what}: ${e.message}`, true);
    return undefined;
  }
}

// Calls `fn` every `ms` while the page of `root` is shown.
function every(root, ms, fn) {
  let timer;
  const tick = async () => {
    if (!root.isConnected) return;
    await fn().catch(() => {});
    if (root.isConnected) timer = setTimeout(tick, ms);
  };
  timer = setTimeout(tick, ms);
  onLeave(root, () => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------------------
// Pages

async function overviewPage(page) {
  page.append(
    el("h2", {}, "Overview"),
    el("h3", {}, "Modules"),
    table("modules", ["Module", "Status", "Instances", "Version", "Routes"], []),
    el("p", { id: "database" }),
    el("h3", {}, "Traffic through this gateway"),
    el("p", { class: "hint" }, "Each second of the last minute, per module; refreshed every 2 s."),
    el(
      "div",
      { class: "charts" },
      ["Requests per second", "Server errors (%)", "Latency p50 (ms)", "Latency p99 (ms)"].map((title, i) =>
        el("figure", { class: "chart" }, el("figcaption", {}, title), el("div", { id: `chart-${i}` })),
      ),
    ),
    table("traffic", ["Module", "Requests/s", "Server errors", "p50 (ms)", "p99 (ms)"], [], "No traffic yet."),
    el("p", { class: "hint" }, "The table sums the last 10 seconds."),
  );
  const modules = async () => {
    const [health, registry] = await Promise.all([
      api("/health").catch((e) => e.problem || {}),
      api("/v1/registry/modules"),
    ]);
    const versions = {};
    await Promise.all(
      registry.items.map(async (m) => {
        const list = await api(`/v1/registry/modules/${encodeURIComponent(m.name)}/instances`).catch(() => null);
        versions[m.name] = [...new Set((list?.items || []).map((i) => i.version || "?"))].join(", ");
      }),
    );
    const byName = Object.fromEntries(registry.items.map((m) => [m.name, m]));
    const names = [...new Set([...Object.keys(health.modules || {}), ...Object.keys(byName)])];
    fillTable(
      page,
      "modules",
      names.map((name) => {
        const status = (health.modules || {})[name];
        const m = byName[name];
        return [
          name,
          el("span", { class: status === "ok" ? "ok" : "bad" }, status === "ok" ? "passing" : status || "not routed"),
          m ? `${m.passing} of ${m.instances} passing` : "—",
          versions[name] || "—",
          m ? m.routes.join(" ") : "—",
        ];
      }),
    );
    const db = health.checks?.database;
    page.querySelector("#database").textContent = db
      ? `Database: ${db.status}${db.latency_ms !== undefined ? ` (${db.latency_ms} ms)` : ""}`
      : `Database: ${health.status || "unknown"}`;
  };
  await modules();
  // For the bench and the browser test: the overview's data is in the page, then painted (the next frame).
  performance.mark("overview-ready");
  requestAnimationFrame(() => setTimeout(() => performance.mark("overview-painted")));
  const charts = makeCharts(page);
  const traffic = async () => {
    const t = await api("/v1/gateway/traffic?seconds=60");
    const names = Object.keys(t.modules).sort();
    charts?.update(names, t.modules);
    fillTable(
      page,
      "traffic",
      names.map((name) => {
        const last = t.modules[name].slice(-10);
        const requests = last.reduce((a, s) => a + s.requests, 0);
        const errors = last.reduce((a, s) => a + s.errors, 0);
        const p50 = requests ? last.reduce((a, s) => a + s.p50_ms * s.requests, 0) / requests : 0;
        const p99 = Math.max(0, ...last.map((s) => s.p99_ms));
        return [name, (requests / 10).toFixed(1), requests ? `${((100 * errors) / requests).toFixed(1)} %` : "—",
          requests ? p50.toFixed(2) : "—", requests ? p99.toFixed(2) : "—"];
      }),
    );
  };
  await traffic().catch(() => {});
  every(page, 2000, traffic);
  every(page, 5000, modules);
}

const palette = ["#2563eb", "#d97706", "#059669", "#dc2626", "#7c3aed", "#0891b2", "#be185d", "#4b5563"];

// Four uPlot charts, one line per module; rebuilt when the set of modules changes.
function makeCharts(page) {
  if (typeof uPlot === "undefined") return null;
  const metrics = [
    (s) => s.requests,
    (s) => (s.requests ? (100 * s.errors) / s.requests : 0),
    (s) => s.p50_ms,
    (s) => s.p99_ms,
  ];
  let plots = [];
  let shown = "";
  const width = () => Math.max(260, (page.querySelector("#chart-0")?.clientWidth || 400) - 4);
  const resize = () => plots.forEach((p) => p.setSize({ width: width(), height: 180 }));
  window.addEventListener("resize", resize);
  onLeave(page, () => {
    window.removeEventListener("resize", resize);
    plots.forEach((p) => p.destroy());
  });
  return {
    update(names, modules) {
      if (!names.length) return;
      const xs = modules[names[0]].map((s) => s.at);
      if (names.join() !== shown) {
        plots.forEach((p) => p.destroy());
        plots = metrics.map((_, i) =>
          new uPlot(
            {
              width: width(),
              height: 180,
              series: [{}, ...names.map((n, j) => ({ label: n, stroke: palette[j % palette.length], width: 2 }))],
              axes: [{}, { size: 50 }],
              scales: { y: { range: (u, min, max) => [0, Math.max(1, max)] } },
            },
            [xs, ...names.map(() => xs.map(() => 0))],
            page.querySelector(`#chart-${i}`),
          ),
        );
        shown = names.join();
      }
      metrics.forEach((metric, i) =>
        plots[i].setData([xs, ...names.map((n) => modules[n].map((s) => metric(s)))]),
      );
    },
  };
}

// Users: search by email, then one user's page.
async function usersPage(page, params) {
  const q = params.get("q") || "";
  const form = el(
    "form",
    { id: "user-search", class: "inline", role: "search" },
    el("label", {}, "Email contains ", el("input", { name: "query", type: "search", value: q, autocomplete: "off" })),
    el("button", { type: "submit" }, "Search"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = `#users?q=${encodeURIComponent(new FormData(form).get("query"))}`;
  });
  page.append(el("h2", {}, "Users"), form);
  await paged(page, "users", ["Email", "Roles", "Status", "Created"], "No user matches.",
    (cursor) => `/v1/auth/users${query({ query: q, cursor, limit: 50 })}`,
    (u) => [link(`#users/${u.id}`, u.email), u.roles.join(", "),
      el("span", { class: u.disabled ? "bad" : "ok" }, u.disabled ? "disabled" : "active"), when(u.created_at)]);
}

async function userPage(page, id) {
  const render = async () => {
    const [user, sessions] = await Promise.all([
      api(`/v1/auth/users/${id}`),
      api(`/v1/auth/users/${id}/sessions?limit=100`),
    ]);
    const roles = el(
      "form",
      { id: "roles-form", class: "inline" },
      el("fieldset", {}, el("legend", {}, "Roles"),
        ["user", "admin"].map((r) =>
          el("label", { class: "check" }, el("input", { type: "checkbox", name: "role", value: r, checked: user.roles.includes(r) }), ` ${r}`),
        ),
      ),
      el("button", { type: "submit" }, "Save roles"),
    );
    roles.addEventListener("submit", async (e) => {
      e.preventDefault();
      const chosen = new FormData(roles).getAll("role");
      const ok = await attempt("Saving roles", () => api(`/v1/auth/users/${id}`, { method: "PATCH", body: { roles: chosen } }));
      if (ok) {
        say(`Roles of ${user.email}: ${chosen.join(", ")}.`);
        await render();
      }
    });
    const toggle = el("button", { id: "toggle-disabled", type: "button", class: user.disabled ? "" : "danger" },
      user.disabled ? "Enable" : "Disable");
    toggle.addEventListener("click", async () => {
      const ok = await attempt(user.disabled ? "Enabling" : "Disabling", () =>
        api(`/v1/auth/users/${id}`, { method: "PATCH", body: { disabled: !user.disabled } }));
      if (ok) {
        say(`${user.email} is ${ok.disabled ? "disabled: every session has ended" : "enabled"}.`);
        await render();
      }
    });
    const revokeAll = el("button", { id: "revoke-all", type: "button", class: "danger" }, "Revoke every session");
    revokeAll.addEventListener("click", async () => {
      if ((await attempt("Revoking", () => api(`/v1/auth/users/${id}/sessions`, { method: "DELETE" }))) !== undefined) {
        say(`Every session of ${user.email} is revoked.`);
        await render();
      }
    });
    const sessionRows = sessions.items.map((s) => {
      const b = el("button", { type: "button", class: "small" }, "Revoke");
      b.addEventListener("click", async () => {
        if ((await attempt("Revoking", () => api(`/v1/auth/users/${id}/sessions/${s.id}`, { method: "DELETE" }))) !== undefined) {
          say("The session is revoked.");
          await render();
        }
      });
      return [when(s.created_at), when(s.last_used_at), s.ip || "—", s.user_agent || "—", b];
    });
    page.replaceChildren(
      el("p", {}, link("#users", "← Users")),
      el("h2", {}, user.email),
      dl([
        ["Id", el("code", {}, user.id)],
        ["Status", el("span", { id: "user-status", class: user.disabled ? "bad" : "ok" }, user.disabled ? "disabled" : "active")],
        ["Roles", user.roles.join(", ")],
        ["Created", when(user.created_at)],
        ["See", el("span", {}, link(`#memories/${user.id}`, "memories"), " · ", link(`#billing?user=${user.id}`, "billing account"))],
      ]),
      el("div", { class: "actions" }, toggle, revokeAll),
      roles,
      el("h3", {}, `Sessions (${sessions.items.length})`),
      table("sessions", ["Started", "Last used", "Address", "Agent", ""], sessionRows, "No live session."),
    );
  };
  await render();
}

// Memories: pick a user, then their memories, full-text search, and each memory's history.
async function memoriesPage(page, userId) {
  if (!userId) {
    page.append(el("h2", {}, "Memories"), el("p", {}, "Memories belong to a user. Find the user:"));
    return pickUser(page, (u) => `#memories/${u.id}`);
  }
  const user = await api(`/v1/auth/users/${userId}`);
  const form = el(
    "form",
    { id: "memory-search", class: "inline", role: "search" },
    el("label", {}, "Full-text search ", el("input", { name: "query", type: "search", required: true })),
    el("button", { type: "submit" }, "Search"),
    el("button", { type: "reset" }, "All memories"),
  );
  const results = el("div", { id: "memory-list" });
  page.append(
    el("p", {}, link(`#users/${userId}`, `← ${user.email}`)),
    el("h2", {}, `Memories of ${user.email}`),
    el("p", { class: "hint" }, "Each read here is recorded as a keel.memory.admin_read event."),
    form,
    results,
  );
  const show = (items, note) => {
    results.replaceChildren(
      el("p", { class: "hint" }, note),
      ...items.map(({ memory: m, score }) => {
        const history = el("div", { class: "history" });
        const b = el("button", { type: "button", class: "small", "aria-expanded": "false" }, `History (version ${m.version})`);
        b.addEventListener("click", async () => {
          if (b.getAttribute("aria-expanded") === "true") {
            history.replaceChildren();
            b.setAttribute("aria-expanded", "false");
            return;
          }
          const h = await attempt("Reading the history", () => api(`/v1/memories/${m.id}/history?limit=50`));
          if (!h) return;
          b.setAttribute("aria-expanded", "true");
          history.replaceChildren(
            h.items.length
              ? el("ol", {}, h.items.map((v) => el("li", {}, el("span", { class: "hint" }, `version ${v.version}, ${when(v.updated_at)}: `), v.content)))
              : el("p", { class: "hint" }, "No earlier version."),
          );
        });
        return el(
          "article",
          { class: "memory" },
          el("p", { class: "content" }, m.content),
          el(
            "p",
            { class: "hint" },
            `${m.namespace} · ${m.tags?.length ? `tags ${m.tags.join(", ")} · ` : ""}updated ${when(m.updated_at)}`,
            score !== undefined ? ` · score ${Number(score).toFixed(3)}` : "",
          ),
          b,
          history,
        );
      }),
    );
  };
  const all = async () => {
    const list = await api(`/v1/memories${query({ user_id: userId, limit: 100 })}`);
    show(list.items.map((m) => ({ memory: m })), `${list.items.length}${list.next_cursor ? "+" : ""} memories, newest first.`);
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new FormData(form).get("query");
    attempt("Searching", async () => {
      const found = await api("/v1/memories/search", { method: "POST", body: { user_id: userId, query: q, limit: 50 } });
      show(found.items.map((i) => ({ memory: i.memory, score: i.score })), `${found.items.length} found for “${q}”.`);
    });
  });
  form.addEventListener("reset", () => attempt("Listing memories", all));
  await all();
}

// A search for a user by email whose results link to `href(user)`.
async function pickUser(page, href) {
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
async function registryPage(page) {
  page.append(el("h2", {}, "Registry"), el("p", { class: "hint" }, "Live: refreshed every 2 s."), el("div", { id: "registry" }));
  const render = async () => {
    const modules = await api("/v1/registry/modules");
    const parts = await Promise.all(
      modules.items.map(async (m) => {
        const list = await api(`/v1/registry/modules/${encodeURIComponent(m.name)}/instances`).catch(() => ({ items: [] }));
        return el(
          "section",
          { class: "module" },
          el("h3", {}, m.name, " ", el("span", { class: m.passing === m.instances ? "ok" : "bad" }, `${m.passing} of ${m.instances} passing`)),
          el("p", { class: "hint" }, "Routes: ", m.routes.join(", ")),
          table(
            `instances-${m.name}`,
            ["Instance", "Address", "Version", "Status", "Last seen", "Public routes"],
            list.items.map((i) => [
              i.instance_id,
              i.url,
              i.version || "—",
              el("span", { class: i.status === "passing" ? "ok" : "bad" }, i.status),
              when(i.last_seen_at),
              i.public_routes?.length ? i.public_routes.join(", ") : "—",
            ]),
            "No instance.",
          ),
        );
      }),
    );
    page.querySelector("#registry").replaceChildren(...parts);
  };
  await render();
  every(page, 2000, render);
}

// Billing: accounts (all, or a user's), one account's ledger, and granting credits.
async function billingPage(page, params) {
  const user = params.get("user");
  page.append(el("h2", {}, "Billing"));
  if (user) {
    const list = await api(`/v1/billing/accounts${query({ user_id: user })}`);
    if (list.items.length === 1) {
      location.replace(`#billing/${list.items[0].id}`);
      return;
    }
    page.append(el("p", {}, "This user has no billing account."));
    return;
  }
  page.append(el("p", {}, "Find a user's account:"));
  await pickUser(page, (u) => `#billing?user=${u.id}`);
  page.append(el("h3", {}, "Every account"));
  await paged(page, "accounts", ["Account", "User", "Plan", "Balance", "Status"], "No account yet.",
    (cursor) => `/v1/billing/accounts${query({ cursor, limit: 50 })}`,
    (a) => [link(`#billing/${a.id}`, a.id), link(`#users/${a.user_id}`, a.user_id), a.plan,
      `${a.balance} ${a.currency}`, a.status]);
}

async function accountPage(page, id) {
  // One key per intended grant: a submit retried unchanged after a lost answer posts the same key and is
  // granted once; any edit of the form makes it another grant.
  let key = newKey();
  const grant = el(
    "form",
    { id: "grant-form", class: "inline" },
    el("label", {}, "Credits ", el("input", { name: "amount", type: "number", min: "1", step: "1", required: true })),
    el("label", {}, "Reason ", el("input", { name: "description", type: "text", maxlength: "500" })),
    el("button", { type: "submit" }, "Grant"),
  );
  grant.addEventListener("input", () => (key = newKey()));
  const render = async () => {
    const [a, ledger] = await Promise.all([
      api(`/v1/billing/accounts/${id}`),
      api(`/v1/billing/accounts/${id}/ledger?limit=50`),
    ]);
    page.replaceChildren(
      el("p", {}, link("#billing", "← Billing")),
      el("h2", {}, "Billing account"),
      dl([
        ["Account", el("code", {}, a.id)],
        ["User", link(`#users/${a.user_id}`, a.user_id)],
        ["Plan", a.plan],
        ["Status", a.status],
        ["Balance", el("strong", { id: "balance" }, `${a.balance} ${a.currency}`)],
      ]),
      el("h3", {}, "Grant credits"),
      grant,
      el("h3", {}, "Ledger"),
      table(
        "ledger",
        ["When", "Amount", "Kind", "Description", "Balance after"],
        ledger.items.map((e) => [when(e.created_at), e.amount, e.kind, e.description || "—", e.balance_after]),
        "No entry yet.",
      ),
    );
  };
  grant.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = new FormData(grant);
    const body = { amount: Number(data.get("amount")), idempotency_key: key };
    if (data.get("description")) body.description = data.get("description");
    const entry = await attempt("Granting credits", () => api(`/v1/billing/accounts/${id}/credits`, { method: "POST", body }));
    if (entry) {
      key = newKey();
      grant.reset();
      say(`Granted ${entry.amount}; the balance is now ${entry.balance_after}.`);
      await render();
    }
  });
  await render();
}

// Events: a live tail of the event log over the realtime stream (GET /v1/stream, topic events[:prefix]).
// fetch() reads the stream so that the token goes in a header and every event type arrives (EventSource
// delivers only the types it is told of); it resumes after a drop from the last id it saw.
async function eventsPage(page) {
  const form = el(
    "form",
    { id: "tail-form", class: "inline" },
    el("label", {}, "Type starts with ", el("input", { name: "type", type: "text", placeholder: "keel.auth." })),
    el("label", {}, "Subject ", el("input", { name: "subject", type: "text", placeholder: "a user id" })),
    el("button", { type: "submit" }, "Follow"),
  );
  const status = el("p", { id: "tail-status", class: "hint" }, "Connecting…");
  page.append(
    el("h2", {}, "Events"),
    el("p", { class: "hint" }, "Every event written from now on, newest first (the last 200 are kept here)."),
    form,
    status,
    table("tail", ["Seq", "Time", "Type", "Subject", "Source", "Data"], [], "No event yet."),
  );
  let controller = null;
  let filter = { type: "", subject: "" };
  let last = null;
  const shows = (ev) => !filter.subject || ev.subject === filter.subject;
  const add = (ev, seq) => {
    const body = page.querySelector("#tail tbody");
    const row = el(
      "tr",
      { "data-type": ev.type, "data-subject": ev.subject || "" },
      el("td", {}, seq),
      el("td", {}, when(ev.time)),
      el("td", {}, ev.type),
      el("td", {}, ev.subject || "—"),
      el("td", {}, ev.source),
      el("td", {}, el("details", {}, el("summary", {}, "data"), el("pre", {}, JSON.stringify(ev.data, null, 2)))),
    );
    row.hidden = !shows(ev);
    body.prepend(row);
    while (body.children.length > 200) body.lastElementChild.remove();
    markEmpty(page, "tail");
  };
  const follow = async () => {
    controller?.abort();
    const mine = new AbortController();
    controller = mine;
    const topic = filter.type ? `events:${filter.type}` : "events";
    while (!mine.signal.aborted) {
      try {
        const headers = { Authorization: `Bearer ${state.token}`, Accept: "text/event-stream" };
        if (last !== null) headers["Last-Event-ID"] = String(last);
        const res = await fetch(`/v1/stream${query({ topics: topic })}`, { headers, signal: mine.signal });
        if (res.status === 401) {
          if (await renew()) continue;
          forget("Your session ended. Sign in again.");
          return;
        }
        if (res.status >= 400 && res.status < 500) {
          // Retrying cannot help (a type prefix the server refuses, the admin role gone): say so and stop.
          const problem = await res.json().catch(() => null);
          status.textContent = `Not following: ${problem?.detail || problem?.title || `HTTP ${res.status}`}`;
          status.className = "hint bad";
          return;
        }
        if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
        status.textContent = `Following ${topic}${filter.subject ? `, subject ${filter.subject}` : ""}.`;
        status.className = "hint ok";
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const message = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const fields = { data: [] };
            for (const line of message.split("\n")) {
              if (!line || line.startsWith(":")) continue;
              const colon = line.indexOf(":");
              const name = colon < 0 ? line : line.slice(0, colon);
              const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
              if (name === "data") fields.data.push(value);
              else fields[name] = value;
            }
            if (fields.id) last = Number(fields.id);
            if (fields.event === "resync") {
              say("The tail skipped ahead: events came faster than this page read them.");
              continue;
            }
            if (fields.data.length) add(JSON.parse(fields.data.join("\n")), fields.id);
          }
        }
      } catch (e) {
        if (mine.signal.aborted) return;
        status.textContent = `Reconnecting (${e.message})…`;
        status.className = "hint bad";
      }
      if (!page.isConnected) return;
      if (!mine.signal.aborted) await new Promise((r) => setTimeout(r, 1000));
    }
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const next = { type: String(data.get("type")).trim(), subject: String(data.get("subject")).trim() };
    const restart = next.type !== filter.type;
    filter = next;
    for (const row of page.querySelectorAll("#tail tbody tr"))
      row.hidden = !(row.dataset.type.startsWith(filter.type) && (!filter.subject || row.dataset.subject === filter.subject));
    if (restart) {
      last = null;  // a new topic starts at the log's end
      follow();
    } else {
      status.textContent = `Following ${filter.type ? `events:${filter.type}` : "events"}${filter.subject ? `, subject ${filter.subject}` : ""}.`;
    }
  });
  onLeave(page, () => controller?.abort());
  follow();
}

async function settingsPage(page) {
  const config = await api("/v1/gateway/config");
  page.append(
    el("h2", {}, "Settings"),
    el("p", { class: "hint" }, "This process's effective configuration, as ", el("code", {}, "keel config"), " prints it; secrets are redacted. Change it in the config file or KEEL_* variables and restart."),
    el("pre", { id: "config", class: "config" }, config.toml),
  );
}

// ---------------------------------------------------------------------------------------------------------
// Navigation

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
  for (const stop of pageCleanups) stop();
  pageCleanups = [];
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
  for (const stop of pageCleanups) stop();
  pageCleanups = [];
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
