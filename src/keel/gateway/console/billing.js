// Billing: accounts, a user's account and its ledger, granting credits.
import { api, query, el, table, paged, newKey, when, link, dl, say, attempt, pickUser } from "./lib.js";

// Billing: accounts (all, or a user's), one account's ledger, and granting credits.
export async function billingPage(page, params) {
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

export async function accountPage(page, id) {
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
