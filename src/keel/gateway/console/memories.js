// Memories: a user's memories, full-text search, each memory's history.
import { api, query, el, when, link, attempt, pickUser } from "./lib.js";

// Memories: pick a user, then their memories, full-text search, and each memory's history.
export async function memoriesPage(page, userId) {
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
