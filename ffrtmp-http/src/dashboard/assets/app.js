// ffrtmp dashboard. Plain script, no dependencies: everything it shows comes from the master's
// API with the key the user typed, which lives in sessionStorage only (gone with the tab).
"use strict";

const KEY_SLOT = "ffrtmp-key";
const POLL_MS = 1000;
const SVG_NS = "http://www.w3.org/2000/svg";
const ACTIVE = ["queued", "assigned", "running", "retrying"];

const ui = {
  key: null,
  mode: "polling",
  jobs: [],
  nodes: [],
  selected: null,
  // The full job (with history) the detail pane shows.
  detail: null,
  tab: "jobs",
  timer: null,
  refreshing: false,
  streamAbort: null,
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// ---------- formatting ----------

function num(v, digits) {
  if (v === null || v === undefined || !isFinite(v)) return "–";
  return Number(v).toFixed(digits === undefined ? 1 : digits);
}

function ago(ms) {
  if (!ms) return "–";
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h ago`;
  return new Date(ms).toLocaleString();
}

function duration(s) {
  if (s === null || s === undefined || !isFinite(s)) return "–";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function when(ms) {
  return ms ? `${new Date(ms).toLocaleString()} (${ago(ms)})` : "–";
}

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function nodeName(id) {
  if (!id) return "–";
  const n = ui.nodes.find((x) => x.id === id);
  return n ? n.registration.name : id.slice(0, 8);
}

// ---------- API ----------

class ApiError extends Error {
  constructor(status, kind, message) { super(message); this.status = status; this.kind = kind; }
}

async function api(path, options) {
  const opts = Object.assign({ headers: {} }, options || {});
  opts.headers = Object.assign({ Authorization: `Bearer ${ui.key}` }, opts.headers);
  let resp;
  try {
    resp = await fetch(path, opts);
  } catch (e) {
    throw new ApiError(0, "network", `cannot reach the master: ${e.message}`);
  }
  if (!resp.ok) {
    let kind = "error";
    let message = `${resp.status} ${resp.statusText}`;
    try {
      const body = await resp.json();
      if (body && body.error) { kind = body.error.kind; message = body.error.message; }
    } catch (_) { /* not JSON */ }
    throw new ApiError(resp.status, kind, message);
  }
  return resp.json();
}

function explain(err) {
  if (err.status === 401) return "The master refused this API key (401 unauthorized). Check the key and sign in again.";
  if (err.status === 403) return `This key may not do that (403 forbidden): ${err.message}`;
  return err.message;
}

// ---------- login ----------

async function login(key) {
  ui.key = key;
  try {
    await api("/jobs?limit=1");
  } catch (err) {
    ui.key = null;
    sessionStorage.removeItem(KEY_SLOT);
    $("login-error").textContent = explain(err);
    return false;
  }
  sessionStorage.setItem(KEY_SLOT, key);
  $("login-error").textContent = "";
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  await refresh();
  startEvents();
  return true;
}

function logout() {
  sessionStorage.removeItem(KEY_SLOT);
  $("notice").textContent = "";
  ui.selected = null;
  $("detail").hidden = true;
  ui.key = null;
  stopUpdates();
  $("app").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("key").value = "";
  $("mode").textContent = "";
}

function signedOut(err) {
  logout();
  $("login-error").textContent = explain(err);
}

// ---------- live updates: /events when the master has it, else polling ----------

function stopUpdates() {
  if (ui.timer) clearInterval(ui.timer);
  ui.timer = null;
  if (ui.streamAbort) ui.streamAbort.abort();
  ui.streamAbort = null;
}

function startPolling() {
  stopUpdates();
  ui.mode = "polling";
  $("mode").textContent = `polling every ${POLL_MS / 1000} s`;
  ui.timer = setInterval(refresh, POLL_MS);
}

// EventSource cannot send an Authorization header: the stream is read with fetch.
async function startEvents() {
  stopUpdates();
  const abort = new AbortController();
  ui.streamAbort = abort;
  let resp;
  try {
    resp = await fetch("/events?type=job,progress,node", {
      headers: { Authorization: `Bearer ${ui.key}`, Accept: "text/event-stream" },
      signal: abort.signal,
    });
  } catch (_) {
    if (!abort.signal.aborted) startPolling();
    return;
  }
  if (!resp.ok || !resp.body) {
    if (!abort.signal.aborted) startPolling();
    return;
  }
  ui.mode = "events";
  $("mode").textContent = "live (event stream)";
  // A slower full refresh keeps what events do not carry (results, history) current.
  ui.timer = setInterval(refresh, 5 * POLL_MS);
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        onMessage(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
      }
    }
  } catch (_) { /* aborted or dropped */ }
  if (!abort.signal.aborted && ui.key) {
    // Dropped (e.g. too slow, or the master restarted): poll, and try the stream again later.
    startPolling();
    setTimeout(() => { if (ui.key && ui.mode === "polling") startEvents(); }, 5000);
  }
}

function onMessage(block) {
  let type = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) type = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trim());
  }
  if (!data.length) return;
  let payload;
  try { payload = JSON.parse(data.join("\n")); } catch (_) { return; }
  if (type === "progress") {
    const job = ui.jobs.find((j) => j.id === payload.job_id);
    if (job) {
      job.progress = payload;
      updateRow(job);
      // List items carry no history: refresh the detail from the full job last fetched.
      if (ui.selected === job.id && ui.detail && ui.detail.id === job.id) {
        ui.detail.progress = payload;
        renderDetail(ui.detail);
      }
    }
  } else {
    scheduleRefresh();
  }
}

let refreshSoon = null;
function scheduleRefresh() {
  if (refreshSoon) return;
  refreshSoon = setTimeout(() => { refreshSoon = null; refresh(); }, 200);
}

// ---------- data ----------

function jobsQuery() {
  const q = new URLSearchParams({ limit: "200" });
  for (const [id, name] of [["f-state", "state"], ["f-queue", "queue"], ["f-node", "node_id"]]) {
    const v = $(id).value;
    if (v) q.set(name, v);
  }
  return `/jobs?${q}`;
}

async function refresh() {
  if (!ui.key || ui.refreshing) return;
  ui.refreshing = true;
  try {
    const [page, nodes] = await Promise.all([api(jobsQuery()), api("/nodes?limit=1000")]);
    ui.jobs = page.jobs;
    ui.nodes = nodes.nodes;
    $("message").textContent = "";
    renderFilters();
    renderJobs();
    renderNodes();
    if (ui.selected) {
      const full = await api(`/jobs/${encodeURIComponent(ui.selected)}`);
      renderDetail(full);
    }
    if (ui.tab === "charts") await renderCharts();
  } catch (err) {
    if (err.status === 401) signedOut(err);
    else $("message").textContent = explain(err);
  } finally {
    ui.refreshing = false;
  }
}

// ---------- jobs ----------

function renderFilters() {
  const node = $("f-node");
  const want = node.value;
  const names = ui.nodes.map((n) => [n.id, n.registration.name]);
  const have = Array.from(node.options).slice(1).map((o) => o.value).join();
  if (have !== names.map(([id]) => id).join()) {
    node.replaceChildren(el("option", { value: "" }, "any"),
      ...names.map(([id, name]) => el("option", { value: id, selected: id === want }, name)));
  }
  const queue = $("f-queue");
  if (queue.options.length === 1) {
    for (const q of ["live", "default", "batch"]) queue.append(el("option", { value: q }, q));
  }
}

function progressCell(job) {
  const p = job.progress;
  const running = job.state === "running";
  // `percent` is null in events for encodes of unknown length.
  const value = job.state === "completed" ? 100 : p && typeof p.percent === "number" ? p.percent : null;
  const bar = el("progress", { max: 100 });
  if (value !== null && (running || job.state === "completed")) bar.value = Math.min(100, Math.max(0, value));
  else bar.removeAttribute("value");
  const label = value !== null && (running || job.state === "completed") ? ` ${num(value, value < 10 ? 1 : 0)} %` : "";
  return el("td", { class: "progress" }, bar, label);
}

function jobRow(job) {
  const p = job.progress || {};
  const tr = el("tr", { "data-id": job.id, class: ui.selected === job.id ? "selected" : "" },
    el("td", { title: job.id }, el("code", {}, job.id.slice(0, 8))),
    el("td", {}, job.spec.scenario),
    el("td", {}, job.spec.queue || "default"),
    el("td", { class: `state state-${job.state}` }, job.state),
    el("td", {}, nodeName(job.node_id)),
    progressCell(job),
    el("td", {}, job.state === "running" ? num(p.fps, 1) : "–"),
    el("td", {}, job.state === "running" ? num(p.watts, 1) : "–"),
    el("td", {}, ago(job.updated_at_ms)),
    el("td", {}, ACTIVE.includes(job.state)
      ? el("button", { type: "button", class: "cancel", "data-id": job.id }, "Cancel") : ""));
  return tr;
}

function renderJobs() {
  const body = $("jobs").querySelector("tbody");
  body.replaceChildren(...ui.jobs.map(jobRow));
  if (!ui.jobs.length) body.append(el("tr", {}, el("td", { colspan: 10, class: "muted" }, "No jobs match.")));
  $("jobs-count").textContent = `${ui.jobs.length} job${ui.jobs.length === 1 ? "" : "s"}`;
}

function updateRow(job) {
  const old = $("jobs").querySelector(`tr[data-id="${CSS.escape(job.id)}"]`);
  if (old) old.replaceWith(jobRow(job));
}

async function cancelJob(id) {
  try {
    const job = await api(`/jobs/${encodeURIComponent(id)}/cancel`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ reason: "canceled from the dashboard" }),
    });
    $("notice").textContent = "";
    const i = ui.jobs.findIndex((j) => j.id === id);
    if (i >= 0) { ui.jobs[i] = job; updateRow(job); }
    scheduleRefresh();
  } catch (err) {
    // Stays until the next action: refreshes only clear their own #message.
    $("notice").textContent = err.status === 403
      ? "This key may not cancel jobs: canceling needs a user key (this one is read-only)."
      : `Cancel failed: ${explain(err)}`;
  }
}

function dl(pairs) {
  const d = el("dl");
  for (const [k, v] of pairs) d.append(el("dt", {}, k), el("dd", {}, v === undefined || v === null ? "–" : v));
  return d;
}

function limitsText(spec) {
  const l = spec.resource_limits || {};
  const parts = [];
  if (l.max_cpu_percent) parts.push(`CPU ${l.max_cpu_percent} %`);
  if (l.max_memory_mb) parts.push(`memory ${l.max_memory_mb} MB`);
  if (l.max_disk_mb) parts.push(`disk ${l.max_disk_mb} MB`);
  if (l.timeout_sec) parts.push(`timeout ${duration(l.timeout_sec)}`);
  if (l.enforcement) parts.push(`enforcement: ${l.enforcement}`);
  return parts.length ? parts.join(", ") : "none";
}

function energyBlock(e) {
  if (!e) return el("p", { class: "muted" }, "No energy report.");
  const partial = e.partial
    ? el("span", { class: "partial" }, `partial: ${e.partial_reason || "some intervals missing"}`) : "complete";
  return dl([
    ["Method", `${e.source}${e.attribution ? ` (${e.attribution})` : ""}`],
    ["Energy", e.energy_joules !== null && e.energy_joules !== undefined ? `${num(e.energy_joules, 1)} J` : (e.unavailable_reason || "unavailable")],
    ["Average power", e.avg_watts ? `${num(e.avg_watts, 1)} W` : "–"],
    ["J/frame", e.joules_per_frame ? num(e.joules_per_frame, 4) : "–"],
    ["CPU / DRAM / GPU J", [e.cpu_joules, e.dram_joules, e.gpu_joules].map((v) => num(v, 1)).join(" / ")],
    ["Coverage", partial],
  ]);
}

// Every attempt's energy is kept (canceled, interrupted, failed then retried).
function attemptsBlock(a) {
  if (!a || !a.attempts || !a.attempts.length) return el("p", { class: "muted" }, "No attempt reported energy.");
  const rows = a.attempts.map((x) => el("tr", {},
    el("td", {}, String(x.attempt)),
    el("td", {}, nodeName(x.node_id)),
    el("td", {}, x.outcome),
    el("td", {}, x.energy.source),
    el("td", {}, x.energy.energy_joules === null || x.energy.energy_joules === undefined ? (x.energy.unavailable_reason || "–") : `${num(x.energy.energy_joules, 1)} J`),
    el("td", {}, x.energy.partial ? "partial" : "")));
  return el("table", { class: "attempts" },
    el("thead", {}, el("tr", {}, ...["Attempt", "Node", "Outcome", "Method", "Energy", ""].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows),
    el("tfoot", {}, el("tr", {}, el("td", { colspan: 4 }, "Total"), el("td", {}, a.total_joules ? `${num(a.total_joules, 1)} J` : "–"), el("td", {}))));
}

function renderDetail(job) {
  ui.detail = job;
  const box = $("detail");
  if (!job || job.id !== ui.selected) return;
  box.hidden = false;
  const r = job.result;
  const rows = (job.history || []).map((h) => el("tr", {},
    el("td", {}, new Date(h.at_ms).toLocaleString()),
    el("td", {}, `+${duration((h.at_ms - job.created_at_ms) / 1000)}`),
    el("td", {}, `${h.from || "–"} → ${h.to}`),
    el("td", {}, String(h.attempt)),
    el("td", {}, nodeName(h.node_id)),
    el("td", {}, h.reason || "")));
  const p = job.progress;
  box.replaceChildren(
    el("h2", {}, `Job ${job.id}`),
    dl([
      ["Scenario", job.spec.scenario],
      ["Queue / priority", `${job.spec.queue} / ${job.spec.priority}`],
      ["State", job.state],
      ["Attempt", String(job.attempt)],
      ["Node", nodeName(job.node_id)],
      ["Submitted", when(job.created_at_ms)],
      ["Updated", when(job.updated_at_ms)],
      ["Limits", limitsText(job.spec)],
      ["Progress", p ? `${num(p.percent, p.percent < 10 ? 1 : 0)} %, frame ${p.frame}, ${num(p.fps, 1)} fps, speed ${num(p.speed, 2)}×` : "–"],
      ["Error", job.error ? `${job.error.kind}: ${job.error.message}` : null],
    ]),
    el("h3", {}, "Result"),
    r ? dl([
      ["Frames", String(r.frames)],
      ["Wall time", duration(r.wall_s)],
      ["Average fps", num(r.avg_fps, 1)],
      ["Output", bytes(r.output_bytes)],
      ["Encoder", r.encoder],
      ["Limits applied", r.limits],
      ["Exit code", r.exit_code === null ? "–" : String(r.exit_code)],
    ]) : el("p", { class: "muted" }, "No result yet."),
    el("h3", {}, "Energy"),
    energyBlock(r ? r.energy : job.error ? job.error.energy : null),
    el("h3", {}, "Energy per attempt"),
    attemptsBlock(job.attempts_energy),
    el("h3", {}, "History"),
    el("table", { class: "history" },
      el("thead", {}, el("tr", {}, ...["Time", "Since submit", "Change", "Attempt", "Node", "Reason"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...rows)));
}

async function selectJob(id) {
  ui.selected = id;
  for (const tr of $("jobs").querySelectorAll("tbody tr")) tr.classList.toggle("selected", tr.dataset.id === id);
  try {
    renderDetail(await api(`/jobs/${encodeURIComponent(id)}`));
  } catch (err) {
    $("message").textContent = explain(err);
  }
}

// ---------- nodes ----------

// Mean J/frame per scenario of each node's completed jobs among those listed.
function joulesPerFrame(nodeId) {
  const sums = {};
  for (const j of ui.jobs) {
    const e = j.result && j.result.energy;
    if (j.node_id !== nodeId || j.state !== "completed" || !e || !e.joules_per_frame) continue;
    const s = (sums[j.spec.scenario] = sums[j.spec.scenario] || [0, 0]);
    s[0] += e.joules_per_frame;
    s[1] += 1;
  }
  const parts = Object.entries(sums).map(([k, [t, n]]) => `${k}: ${num(t / n, 4)}`);
  return parts.length ? parts.join(", ") : "–";
}

function renderNodes() {
  const body = $("nodes").querySelector("tbody");
  body.replaceChildren(...ui.nodes.map((n) => {
    const pw = n.power || {};
    return el("tr", { "data-id": n.id },
      el("td", { title: n.id }, n.registration.name),
      el("td", { class: n.status }, n.status),
      el("td", {}, ago(n.last_seen_ms)),
      el("td", {}, `${n.active_jobs} / ${n.registration.max_concurrent_jobs}`),
      el("td", {}, (n.registration.encoders || []).join(", ")),
      el("td", {}, num(pw.watts, 1)),
      el("td", {}, num(pw.idle_watts, 1)),
      el("td", {}, pw.source || "unavailable"),
      el("td", {}, joulesPerFrame(n.id)));
  }));
  if (!ui.nodes.length) body.append(el("tr", {}, el("td", { colspan: 9, class: "muted" }, "No nodes registered.")));
}

// ---------- charts ----------

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function niceStep(max) {
  const rough = max / 5;
  const mag = Math.pow(10, Math.floor(Math.log10(rough)));
  return [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= rough);
}

function lineChart(points, unit, color) {
  const W = 900, H = 240, L = 56, R = 16, T = 12, B = 32;
  const now = Date.now();
  const from = now - 3600 * 1000;
  const max = Math.max(1e-9, ...points.map((p) => p.v));
  const step = niceStep(max * 1.05);
  const top = Math.ceil((max * 1.05) / step) * step;
  const digits = step < 1 ? Math.min(6, Math.ceil(-Math.log10(step))) : 0;
  const x = (t) => L + ((t - from) / (now - from)) * (W - L - R);
  const y = (v) => T + (1 - v / top) * (H - T - B);
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img", "aria-label": unit });
  for (let v = 0; v <= top + step / 2; v += step) {
    s.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#e4e4e4" }));
    s.append(svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 11 }, v.toFixed(digits)));
  }
  for (let m = 0; m <= 60; m += 10) {
    const t = from + m * 60 * 1000;
    s.append(svg("text", { x: x(t), y: H - 10, "text-anchor": "middle", "font-size": 11 }, m === 60 ? "now" : `-${60 - m} min`));
  }
  s.append(svg("text", { x: 12, y: T + (H - T - B) / 2, "font-size": 11, transform: `rotate(-90 12 ${T + (H - T - B) / 2})`, "text-anchor": "middle" }, unit));
  const shown = points.filter((p) => p.t >= from);
  if (shown.length) {
    const d = shown.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ");
    s.append(svg("path", { d, fill: "none", stroke: color, "stroke-width": 2 }));
  } else {
    s.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", fill: "#666" }, "no samples yet"));
  }
  return s;
}

async function renderCharts() {
  const h = await api("/dashboard/history");
  const fps = h.points.map((p) => ({ t: p.at_ms, v: p.fps }));
  const watts = h.points.filter((p) => p.watts !== null).map((p) => ({ t: p.at_ms, v: p.watts }));
  $("chart-fps").replaceChildren(lineChart(fps, "frames/s", "#4e79a7"));
  $("chart-watts").replaceChildren(watts.length ? lineChart(watts, "watts", "#e15759")
    : el("p", { class: "muted" }, "No node reports power."));
}

// ---------- bench ----------

function verdictClass(v) {
  return ["worse", "better", "inconclusive"].find((c) => v.startsWith(c)) || "";
}

async function renderBench() {
  const box = $("bench");
  let data;
  try {
    data = await api("/dashboard/bench");
  } catch (err) {
    box.replaceChildren(el("p", { class: "muted" }, err.status === 404 ? err.message : explain(err)));
    return;
  }
  const parts = [el("p", {}, `Baseline: ${data.baseline || "–"}; verdicts at a ${num(data.threshold * 100, 1)} % threshold.`)];
  for (const e of data.errors || []) parts.push(el("p", { class: "error" }, e));
  for (const c of data.comparisons || []) {
    parts.push(el("h2", {}, `${c.test} against ${data.baseline}`));
    parts.push(el("p", {}, ...(c.verdicts || []).map((v) => el("span", { class: verdictClass(v.verdict) }, `${v.scenario}: ${v.verdict}  `))));
    const head = ["Scenario", "Metric", "Runs B/T", "Baseline", "Test", "Change", `${num(c.confidence * 100, 0)} % CI`, "Verdict"];
    parts.push(el("table", { class: "bench" },
      el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))),
      el("tbody", {}, ...c.rows.map((r) => el("tr", { class: verdictClass(r.verdict) },
        ...[r.scenario, r.metric, r.runs, r.baseline, r.test, r.change, r.ci, r.verdict].map((v) => el("td", {}, v)))))));
  }
  if (!(data.comparisons || []).length) parts.push(el("p", { class: "muted" }, "Only one result set: nothing to compare."));
  box.replaceChildren(...parts);
}

// ---------- wiring ----------

function showTab(name) {
  ui.tab = name;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== `tab-${name}`;
  if (name === "charts") renderCharts().catch((err) => { $("message").textContent = explain(err); });
  if (name === "bench") renderBench();
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const key = $("key").value.trim();
    if (key) login(key);
  });
  $("logout").addEventListener("click", logout);
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));
  for (const id of ["f-state", "f-queue", "f-node"]) $(id).addEventListener("change", refresh);
  $("jobs").addEventListener("click", (ev) => {
    const cancel = ev.target.closest("button.cancel");
    if (cancel) { ev.stopPropagation(); cancelJob(cancel.dataset.id); return; }
    const row = ev.target.closest("tr[data-id]");
    if (row) selectJob(row.dataset.id);
  });
  const saved = sessionStorage.getItem(KEY_SLOT);
  if (saved) login(saved);
});
