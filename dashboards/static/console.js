// The alert queue's keyboard shortcuts and live refresh. Rows from the JSON feed are built with
// textContent only: alert titles come from log content and must never be parsed as HTML.
"use strict";
(function () {
  const table = document.getElementById("queue");
  if (!table) return;
  const body = table.tBodies[0];
  const canTriage = !!document.getElementById("do-ack");
  let cursor = -1;

  function rows() { return Array.from(body.querySelectorAll("tr[data-id]")); }
  function move(step) {
    const all = rows();
    if (!all.length) return;
    cursor = Math.max(0, Math.min(all.length - 1, cursor + step));
    all.forEach((r, i) => r.classList.toggle("cursor", i === cursor));
    all[cursor].scrollIntoView({ block: "nearest" });
  }
  function selectedAny() { return body.querySelector("input[type=checkbox]:checked") !== null; }

  document.addEventListener("keydown", (ev) => {
    const tag = (ev.target && ev.target.tagName) || "";
    if (["INPUT", "SELECT", "TEXTAREA"].includes(tag) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const all = rows();
    if (ev.key === "j") move(1);
    else if (ev.key === "k") move(-1);
    else if (ev.key === "x" && all[cursor]) {
      const box = all[cursor].querySelector("input[type=checkbox]");
      if (box) box.checked = !box.checked;
    } else if (ev.key === "a" && canTriage && selectedAny()) document.getElementById("do-ack").click();
    else if (ev.key === "f" && canTriage && selectedAny()) document.getElementById("do-fp").click();
    else if (ev.key === "r") refresh();
    else return;
    ev.preventDefault();
  });

  function cell(text) { const td = document.createElement("td"); td.textContent = text || ""; return td; }
  // The person's zone (Vietnam time unless they chose UTC), labelled; the other zone as tooltip.
  const zone = document.body.dataset.tz || "Asia/Ho_Chi_Minh";
  const zoneLabel = document.body.dataset.tzLabel || "UTC+7";
  function inZone(d, tz) { return d.toLocaleString("sv-SE", { timeZone: tz }); }
  function timeCell(iso) {
    const td = document.createElement("td");
    const d = new Date(iso);
    if (isNaN(d)) { td.textContent = iso || ""; return td; }
    const t = document.createElement("time");
    t.dateTime = d.toISOString();
    t.textContent = inZone(d, zone) + " " + zoneLabel;
    t.title = zone === "UTC" ? inZone(d, "Asia/Ho_Chi_Minh") + " UTC+7" : inZone(d, "UTC") + " UTC";
    td.appendChild(t);
    return td;
  }
  function row(item) {
    const tr = document.createElement("tr");
    tr.dataset.id = item.id;
    const pick = document.createElement("td");
    if (canTriage) {
      const box = document.createElement("input");
      box.type = "checkbox"; box.name = "ids"; box.value = item.id; box.setAttribute("aria-label", table.dataset.selectLabel || "select");
      pick.appendChild(box);
    }
    tr.appendChild(pick);
    const when = timeCell(item.created);
    if (item.fresh) {
      tr.className = "fresh";
      const badge = document.createElement("span");
      badge.className = "badge-fresh"; badge.textContent = " " + (table.dataset.freshLabel || "new");
      when.appendChild(badge);
    }
    tr.appendChild(when);
    const sev = cell(""); const span = document.createElement("span");
    span.className = "sev-" + item.severity; span.textContent = item.severity; sev.appendChild(span);
    tr.appendChild(sev);
    const st = cell(item.status); st.className = "status"; tr.appendChild(st);
    const title = cell(item.title); title.className = "title"; tr.appendChild(title);
    [item.rule, item.service, item.province, item.ward].forEach((v) => tr.appendChild(cell(v)));
    const inc = cell(""); inc.className = "incident";
    if (item.incident_id) {
      const a = document.createElement("a");
      a.href = "/incidents/" + encodeURIComponent(item.incident_id);
      a.textContent = item.incident_title || item.incident_id.slice(0, 8);
      inc.appendChild(a);
      if (item.incident_status) {
        const chip = document.createElement("span");
        chip.className = "tag"; chip.textContent = item.incident_status;
        inc.append(" ", chip);
      }
    } else {
      const note = document.createElement("span");
      note.className = "note"; note.textContent = table.dataset.notGrouped || "";
      inc.appendChild(note);
    }
    tr.appendChild(inc);
    return tr;
  }

  async function refresh() {
    if (selectedAny()) return; // never pull rows away from under an analyst's selection
    try {
      const resp = await fetch(table.dataset.feed, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!resp.ok) return;
      const data = await resp.json();
      // Asked again: a box ticked while the feed was on its way must not be wiped by it.
      if (selectedAny()) return;
      const fresh = document.createDocumentFragment();
      data.items.forEach((item) => fresh.appendChild(row(item)));
      body.replaceChildren(fresh);
      cursor = -1;
      document.getElementById("alert-total").textContent = String(data.total);
      const live = document.getElementById("live");
      live.hidden = false;
      live.textContent = "↻ " + new Date().toLocaleTimeString("sv-SE", { timeZone: zone }) + " " + zoneLabel;
    } catch (e) { /* the next poll tries again */ }
  }
  const every = parseInt(table.dataset.poll, 10) || 5000;
  setInterval(refresh, every);
})();
