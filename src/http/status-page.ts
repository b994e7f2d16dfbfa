/**
 * The status page served at `/`: one self-contained HTML document (no CDN, no fonts, no build step; works offline)
 * that polls `/status` every second and shows it live: state and readiness, throughput and lag over the last five
 * minutes (kept by the page itself), the partitions, the breaker and the DLQ, and the last dead-lettered records with
 * their reasons. For the operator without Grafana. Every value from /status is set as text, never as markup.
 */
import { createHash } from 'node:crypto';

export const statusPageHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sluice status</title>
<style>
  :root { --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --ok: #12805c; --warn: #b54708; --bad: #c01048; --accent: #2563eb; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: #f8f9fb; }
  header { display: flex; align-items: baseline; gap: 16px; padding: 14px 20px; background: #fff; border-bottom: 1px solid var(--line); }
  h1 { font-size: 18px; margin: 0; }
  h2 { font-size: 14px; margin: 0 0 8px; color: var(--muted); font-weight: 600; text-transform: uppercase; letter-spacing: .04em; }
  main { padding: 16px 20px; display: grid; gap: 16px; }
  .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; }
  .card, section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
  .card .value { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
  .card .label { color: var(--muted); font-size: 12px; }
  .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 16px; }
  svg { width: 100%; height: 90px; display: block; }
  table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
  th, td { text-align: right; padding: 5px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
  th { color: var(--muted); font-weight: 600; font-size: 12px; }
  th:first-child, td:first-child, td.text, th.text { text-align: left; }
  td.reason { white-space: normal; text-align: left; max-width: 640px; word-break: break-word; }
  .pill { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; background: #eef2f6; }
  .ok { color: var(--ok); } .warn { color: var(--warn); } .bad { color: var(--bad); }
  .muted { color: var(--muted); }
  #reasons { margin: 0; padding-left: 18px; color: var(--bad); }
  .empty { color: var(--muted); padding: 6px 0; }
</style>
</head>
<body>
<header>
  <h1>sluice</h1>
  <span id="state" class="pill">…</span>
  <span id="ready" class="pill">…</span>
  <span id="updated" class="muted"></span>
</header>
<main>
  <ul id="reasons"></ul>
  <div class="cards">
    <div class="card"><div class="value" id="rate">–</div><div class="label">records/s (last 10 s)</div></div>
    <div class="card"><div class="value" id="lag">–</div><div class="label">lag (records)</div></div>
    <div class="card"><div class="value" id="flushed">–</div><div class="label">records flushed</div></div>
    <div class="card"><div class="value" id="buffered">–</div><div class="label">buffered records</div></div>
    <div class="card"><div class="value" id="dlq">–</div><div class="label">sent to the DLQ</div></div>
    <div class="card"><div class="value" id="breaker">–</div><div class="label" id="breaker-label">DLQ breaker</div></div>
    <div class="card"><div class="value" id="database">–</div><div class="label">PostgreSQL</div></div>
  </div>
  <div class="charts">
    <section><h2>Throughput, records/s (5 min)</h2><svg id="rate-chart" viewBox="0 0 300 90" preserveAspectRatio="none"></svg><div class="muted" id="rate-range"></div></section>
    <section><h2>Lag, records (5 min)</h2><svg id="lag-chart" viewBox="0 0 300 90" preserveAspectRatio="none"></svg><div class="muted" id="lag-range"></div></section>
  </div>
  <section>
    <h2>Partitions</h2>
    <table id="partitions"><thead><tr>
      <th class="text">partition</th><th>buffered</th><th>bytes</th><th>oldest</th><th>last flushed</th><th>committed</th><th>log end</th><th>lag</th><th class="text">paused</th><th class="text">retrying</th><th class="text">last error</th>
    </tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Last records sent to the DLQ</h2>
    <table id="dead"><thead><tr><th class="text">when</th><th class="text">record</th><th class="text">DLQ topic</th><th class="text">code</th><th class="text">SQLSTATE</th><th class="text">reason</th></tr></thead><tbody></tbody></table>
  </section>
</main>
<script>
"use strict";
const history = [];
const keepMs = 5 * 60 * 1000;
const $ = (id) => document.getElementById(id);
const fmt = new Intl.NumberFormat("en-US");
const text = (el, value, cls) => { el.textContent = value; if (cls !== undefined) el.className = cls; };
function cell(row, value, cls) { const td = row.insertCell(); td.textContent = value; if (cls) td.className = cls; return td; }
function bytes(n) { return n < 1024 ? n + " B" : n < 1048576 ? (n / 1024).toFixed(1) + " KiB" : (n / 1048576).toFixed(1) + " MiB"; }
function age(ms) { return ms < 1000 ? ms + " ms" : ms < 60000 ? (ms / 1000).toFixed(1) + " s" : Math.round(ms / 60000) + " min"; }
function since(atMs) { return age(Math.max(0, Date.now() - atMs)) + " ago"; }
function chart(svg, rangeEl, key) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  if (history.length < 2) return;
  const t0 = history[0].t, t1 = history[history.length - 1].t, span = Math.max(1, t1 - t0);
  const max = Math.max(1, ...history.map((h) => h[key]));
  const points = history.map((h) => ((h.t - t0) / span * 300).toFixed(1) + "," + (86 - h[key] / max * 80).toFixed(1)).join(" ");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points); line.setAttribute("fill", "none"); line.setAttribute("stroke", "#2563eb"); line.setAttribute("stroke-width", "1.5");
  line.setAttribute("vector-effect", "non-scaling-stroke");
  svg.appendChild(line);
  const last = history[history.length - 1][key];
  rangeEl.textContent = "now " + fmt.format(last) + ", max " + fmt.format(max);
}
function render(s) {
  const now = Date.now();
  history.push({ t: now, rate: s.recordsPerSec, lag: s.lag });
  while (history.length && history[0].t < now - keepMs) history.shift();
  const stateClass = s.state === "running" ? "pill ok" : s.state === "halted" || s.state === "failed" ? "pill bad" : "pill warn";
  text($("state"), s.state, stateClass);
  text($("ready"), s.readiness.ready ? "ready" : "not ready", s.readiness.ready ? "pill ok" : "pill bad");
  text($("updated"), "updated " + new Date(now).toLocaleTimeString());
  const reasons = $("reasons"); reasons.replaceChildren();
  for (const r of s.readiness.reasons) { const li = document.createElement("li"); li.textContent = r; reasons.appendChild(li); }
  text($("rate"), fmt.format(s.recordsPerSec));
  text($("lag"), fmt.format(s.lag));
  text($("flushed"), fmt.format(s.batching.flushedRecords));
  text($("buffered"), fmt.format(s.batching.bufferedRecords));
  text($("dlq"), fmt.format(s.dlq.sentRecords), s.dlq.sentRecords > 0 ? "value warn" : "value");
  const b = s.breaker;
  text($("breaker"), b.open ? "open" : (b.ratio * 100).toFixed(1) + " %", b.open ? "value bad" : "value");
  text($("breaker-label"), "DLQ share, last " + age(b.windowMs) + " (opens above " + (b.maxDlqRatio * 100).toFixed(1) + " %)");
  text($("database"), s.database.available ? "up" : "unreachable", s.database.available ? "value ok" : "value bad");
  chart($("rate-chart"), $("rate-range"), "rate");
  chart($("lag-chart"), $("lag-range"), "lag");
  const body = $("partitions").tBodies[0]; body.replaceChildren();
  for (const p of s.partitions) {
    const row = body.insertRow();
    cell(row, p.topic + "[" + p.partition + "]");
    cell(row, fmt.format(p.bufferedRecords ?? 0));
    cell(row, bytes(p.bufferedBytes ?? 0));
    cell(row, p.oldestBufferedMs === undefined ? "–" : age(p.oldestBufferedMs));
    cell(row, p.lastFlushedOffset ?? "–");
    cell(row, p.committedOffset ?? "–");
    cell(row, p.highWatermark);
    cell(row, fmt.format(p.lag), p.lag > 0 ? "warn" : "");
    cell(row, (p.paused ?? []).join(", ") || "–", "text");
    cell(row, p.retrying ? "since " + since(p.retrying.sinceMs) + ", " + p.retrying.attempts + " attempt(s)" : "–", p.retrying ? "text bad" : "text");
    cell(row, p.lastError ? since(p.lastError.atMs) + ": " + p.lastError.message : "–", "reason");
  }
  if (s.partitions.length === 0) { const row = body.insertRow(); const td = cell(row, "no partition assigned yet", "empty"); td.colSpan = 11; }
  const dead = $("dead").tBodies[0]; dead.replaceChildren();
  for (const d of [...s.dlq.recent].reverse()) {
    const row = dead.insertRow();
    cell(row, new Date(d.atMs).toLocaleTimeString(), "text");
    cell(row, d.topic + "[" + d.partition + "]@" + d.offset, "text");
    cell(row, d.dlqTopic, "text");
    cell(row, d.code, "text");
    cell(row, d.sqlState ?? "–", "text");
    cell(row, d.reason, "reason");
  }
  if (s.dlq.recent.length === 0) { const row = dead.insertRow(); const td = cell(row, "none since start", "empty"); td.colSpan = 6; }
}
async function poll() {
  try {
    const response = await fetch("status", { cache: "no-store" });
    render(await response.json());
  } catch (error) {
    text($("ready"), "no answer from sluice", "pill bad");
  }
  setTimeout(poll, 1000);
}
poll();
</script>
</body>
</html>
`;

/** The page's one script, by hash, for its Content-Security-Policy: no other script may run on the page. */
export const statusPageScriptHash = (() => {
  const script = /<script>([\s\S]*)<\/script>/.exec(statusPageHtml)![1]!;
  return `sha256-${createHash('sha256').update(script, 'utf8').digest('base64')}`;
})();
