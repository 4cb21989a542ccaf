/**
 * "Connection details" in the console's participant menu: what the server measures of one
 * participant's downlink (`stats`, staff only; docs/protocol.md), as a small table that refreshes
 * every two seconds while it is open.
 */

import { create } from "./dom.js";
import { panelDialog } from "./dialogs.js";
import { getLanguage, setText } from "./i18n.js";
import { statsRows } from "./downlink.js";

const REFRESH_MS = 2_000;

/**
 * Open the details of one participant's connection.
 * @param {{session: () => import("./session.js").LessonSession | null,
 *          notify: (code: string, extra?: object) => void}} options
 * @param {{id: string, name: string}} person
 */
export function openConnectionDetails({ session, notify }, person) {
  const current = session();
  if (!current) return;
  const { dialog, body } = panelDialog("connection-dialog", "stats.heading");
  const who = create("p", { className: "connection-who", testId: "connection-name" });
  who.textContent = person.name;
  const table = create("dl", { className: "connection-table", testId: "connection-table" });
  const loading = create("p", { className: "hint", testId: "connection-status" });
  setText(loading, "common.loading");
  body.replaceChildren(who, loading, table);
  let timer = 0;
  const draw = (data) => {
    table.replaceChildren();
    for (const row of statsRows(data, getLanguage())) {
      const value = create("dd", { testId: `stats-${row.name}` });
      if (row.valueKey) setText(value, row.valueKey);
      else value.textContent = row.value;
      const label = create("dt");
      setText(label, row.label);
      table.append(label, value);
    }
  };
  const load = async () => {
    if (!dialog.open || session() !== current) return;
    try {
      draw(await current.request("stats", { participant: person.id }, 10_000));
      loading.hidden = true;
      timer = window.setTimeout(load, REFRESH_MS);
    } catch (error) {
      const code = error?.code ?? "internal";
      dialog.close();
      notify(code, error?.extra ?? {});
    }
  };
  dialog.addEventListener("close", () => window.clearTimeout(timer), { once: true });
  if (!dialog.open) dialog.showModal();
  load();
}
