// Events: a live tail of the event log.
import { state, endSession, onLeave, ApiError, renew, query, el, table, markEmpty, when, say } from "./lib.js";

// Events: a live tail of the event log over the realtime stream (GET /v1/stream, topic events[:prefix]).
// fetch() reads the stream so that the token goes in a header and every event type arrives (EventSource
// delivers only the types it is told of); it resumes after a drop from the last id it saw.
export async function eventsPage(page) {
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
          endSession("Your session ended. Sign in again.");
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
