// Settings: the effective configuration.
import { api, el } from "./lib.js";

export async function settingsPage(page) {
  const config = await api("/v1/gateway/config");
  page.append(
    el("h2", {}, "Settings"),
    el("p", { class: "hint" }, "This process's effective configuration, as ", el("code", {}, "keel config"), " prints it; secrets are redacted. Change it in the config file or KEEL_* variables and restart."),
    el("pre", { id: "config", class: "config" }, config.toml),
  );
}
