// Registry: every module, its routes and instances, live.
import { api, el, table, when, every } from "./lib.js";

// Registry: every module, its routes and instances, refreshed every 2 s.
export async function registryPage(page) {
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
