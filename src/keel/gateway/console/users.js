// Users: search by email, then one user's page (status, roles, sessions).
import { api, query, el, table, paged, when, link, dl, say, attempt } from "./lib.js";

// Users: search by email, then one user's page.
export async function usersPage(page, params) {
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

export async function userPage(page, id) {
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
