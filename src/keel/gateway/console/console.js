// The admin console. Every action is a documented API call with the admin role; the access token lives in
// this module's memory only (no web storage, no cookie), so signing in again follows a reload.
const state = { token: null };

const $ = (sel) => document.querySelector(sel);

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (options.body && typeof options.body !== "string") {
    headers["Content-Type"] = "application/json";
    options = { ...options, body: JSON.stringify(options.body) };
  }
  const res = await fetch(path, { ...options, headers });
  const text = await res.text();
  const body = text ? JSON.parse(text) : null;
  if (!res.ok) throw Object.assign(new Error(body?.detail || res.statusText), { status: res.status });
  return body;
}

function show(id) {
  for (const section of document.querySelectorAll("main > section")) section.hidden = section.id !== id;
}

async function overview() {
  show("overview");
  const health = await api("/health");
  const rows = Object.entries(health.modules || {}).map(([name, status]) => {
    const tr = document.createElement("tr");
    const td1 = document.createElement("td");
    td1.textContent = name;
    const td2 = document.createElement("td");
    td2.textContent = status === "ok" ? "passing" : status;
    td2.className = status === "ok" ? "ok" : "bad";
    tr.append(td1, td2);
    return tr;
  });
  $("#modules tbody").replaceChildren(...rows);
  $("#database").textContent = `Database: ${health.database || health.status}`;
}

async function signIn(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  $("#signin-error").textContent = "";
  try {
    const session = await api("/v1/auth/login", {
      method: "POST",
      body: { email: form.get("email"), password: form.get("password") },
    });
    if (!session.user.roles.includes("admin")) {
      $("#signin-error").textContent = "This account does not have the admin role.";
      return;
    }
    state.token = session.access_token;
    $("#nav").hidden = false;
    $("#signout").hidden = false;
    await overview();
  } catch (e) {
    $("#signin-error").textContent = e.status === 401 ? "Wrong email or password." : e.message;
  }
}

async function signOut() {
  await api("/v1/auth/logout", { method: "POST" }).catch(() => {});
  state.token = null;
  $("#nav").hidden = true;
  $("#signout").hidden = true;
  show("signin");
}

$("#signin-form").addEventListener("submit", signIn);
$("#signout").addEventListener("click", signOut);
