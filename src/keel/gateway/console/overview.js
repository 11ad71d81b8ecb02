// Overview: every module's health, instances and version, and live charts of the traffic this gateway routes.
import { onLeave, api, el, table, fillTable, every, attempt } from "./lib.js";

export async function overviewPage(page) {
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
    // Each source on its own: in an outage /health answers 503 with what failed, and the registry (on the
    // database) may not answer at all; what did answer is still shown.
    const [health, registry] = await Promise.all([
      api("/health").catch((e) => e.problem || {}),
      api("/v1/registry/modules").catch((e) => ({ items: [], error: e })),
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
    const line = page.querySelector("#database");
    line.textContent = db
      ? `Database: ${db.status}${db.latency_ms !== undefined ? ` (${db.latency_ms} ms)` : ""}`
      : `Database: ${health.status || "unknown"}`;
    line.className = (db?.status || health.status) === "ok" ? "" : "bad";
    if (registry.error) throw new Error(`the registry did not answer (${registry.error.message})`);
  };
  await attempt("Reading the modules", modules);  // the page goes on live even if the registry did not answer
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
