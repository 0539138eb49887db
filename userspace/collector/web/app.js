// tally-collector's page: the fleet, one host, one process. State lives in
// the URL (#/host/web-1?range=1d&by=comm), so a link shows the same view.
// Data comes from the collector's own query API (docs/protocol.md); with
// --read-token-file the page asks for a read token and keeps it for this
// browser tab only (sessionStorage).
"use strict";

const NS = 1e6; // ns per ms
const RANGES = { "1h": 3600e3, "1d": 86400e3, "7d": 7 * 86400e3 };
const COLORS = ["#2f6fde", "#e8743b", "#19a979", "#ed4a7b", "#945ecf", "#13a4b4",
                "#525df4", "#bf399e", "#6c8893", "#ee6868", "#aab2bd"];
const LATE_MS = 3 * 60e3; // an agent silent for three of its minute intervals

const main = document.getElementById("main");
let token = sessionStorage.getItem("tally-read-token") || "";
let charts = [];
let generation = 0; // a newer render makes older fetches moot

// --- state in the URL --------------------------------------------------------

function parseHash() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const parts = (path || "/").split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(query || "") };
}

function hashFor(parts, params) {
  const path = "#/" + parts.map(encodeURIComponent).join("/");
  const q = params.toString();
  return q ? path + "?" + q : path;
}

// The window shown, in ms since the epoch.
function windowOf(params) {
  const range = params.get("range") || "1h";
  if (range === "custom") {
    const from = Number(params.get("from")), to = Number(params.get("to"));
    if (from > 0 && to > from) return { from, to, range };
  }
  const span = RANGES[range] || RANGES["1h"];
  const to = Date.now();
  return { from: to - span, to, range: RANGES[range] ? range : "1h" };
}

// --- API ---------------------------------------------------------------------

class NeedToken extends Error {}

async function api(path) {
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const r = await fetch(path, { headers });
  if (r.status === 401 || r.status === 403) {
    let message = "";
    try { message = (await r.json()).error || ""; } catch (e) { /* not JSON */ }
    throw new NeedToken(message);
  }
  if (!r.ok) {
    let message = r.statusText;
    try { message = (await r.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(`${path.split("?")[0]}: ${r.status} ${message}`);
  }
  return r.json();
}

function askForToken(message) {
  const form = document.getElementById("token");
  document.getElementById("token-error").textContent = token ? message : "";
  form.hidden = false;
  document.getElementById("token-value").focus();
}

document.getElementById("token").addEventListener("submit", (e) => {
  e.preventDefault();
  token = document.getElementById("token-value").value.trim();
  sessionStorage.setItem("tally-read-token", token);
  document.getElementById("token").hidden = true;
  render();
});

// --- formatting --------------------------------------------------------------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function link(text, parts, params) {
  return el("a", { href: hashFor(parts, params || carriedParams()) }, text);
}

// The window travels with links from page to page.
function carriedParams() {
  const { params } = parseHash();
  const out = new URLSearchParams();
  for (const k of ["range", "from", "to"]) if (params.has(k)) out.set(k, params.get(k));
  return out;
}

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function cores(n) { return n === null || n === undefined ? "–" : n.toFixed(n < 1 ? 3 : 2); }

function ago(ms) {
  if (!ms) return "never";
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

function when(ms) { return new Date(ms).toLocaleString(); }

// --- charts ------------------------------------------------------------------

// A stacked area chart: each series drawn as the sum of itself and those
// below it, so that the top edge is the total; a null (no data) breaks
// every line, so a gap shows as a gap.
function stackedChart(target, title, times, series, valueOf, format) {
  const stacked = [];
  const running = times.map(() => 0);
  for (const s of series) {
    stacked.push(s.values.map((v, i) => {
      if (v === null || running[i] === null) { running[i] = null; return null; }
      running[i] += valueOf(v, i);
      return running[i];
    }));
  }
  // Drawn top first, each filled down to the axis: lower ones paint over.
  const order = series.map((_, i) => i).reverse();
  const opts = {
    title, width: Math.max(400, target.clientWidth - 24), height: 280,
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    series: [{}].concat(order.map((i) => ({
      label: series[i].label,
      stroke: series[i].color, fill: series[i].color + "cc", width: 1,
      value: (u, v, si, idx) => (idx === null || idx === undefined ? "–"
          : format(series[i].values[idx] === null ? null : valueOf(series[i].values[idx], idx))),
    }))),
    axes: [{}, { values: (u, ticks) => ticks.map((t) => format(t)), size: 70 }],
  };
  const data = [times].concat(order.map((i) => stacked[i]));
  const chart = new uPlot(opts, data, target);
  charts.push(chart);
  return chart;
}

function lineChart(target, title, times, series, format) {
  const opts = {
    title, width: Math.max(400, target.clientWidth - 24), height: 220,
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    series: [{}].concat(series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5,
                                             value: (u, v) => format(v) }))),
    axes: [{}, { values: (u, ticks) => ticks.map((t) => format(t)), size: 70 }],
  };
  const chart = new uPlot(opts, [times].concat(series.map((s) => s.values)), target);
  charts.push(chart);
  return chart;
}

// /v1/series to chart series: top groups and `other`, in cores.
function seriesOf(answer, labelOf) {
  const times = [];
  for (let i = 0; i < answer.points; i++) times.push((answer.from + i * answer.step_ns) / 1e9);
  const list = answer.series.map((s, k) => ({ label: labelOf(s), color: COLORS[k % 10],
                                              values: s.cpu_ns, rss: s.rss_bytes, name: s.name }));
  if (answer.other) {
    list.push({ label: "other", color: COLORS[10], values: answer.other.cpu_ns,
                rss: answer.other.rss_bytes, name: "other" });
  }
  return { times, list, step: answer.step_ns };
}

// Runs of steps without data: [{from, to}] in ms.
function gapsOf(answer) {
  const gaps = [];
  let start = null;
  const values = answer.total.cpu_ns;
  for (let i = 0; i <= values.length; i++) {
    const missing = i < values.length && values[i] === null;
    if (missing && start === null) start = i;
    if (!missing && start !== null) {
      // Leading and trailing runs are outside the data, not gaps in it.
      if (start > 0 && i < values.length) {
        gaps.push({ from: (answer.from + start * answer.step_ns) / NS,
                    to: (answer.from + i * answer.step_ns) / NS });
      }
      start = null;
    }
  }
  return gaps;
}

function seriesQuery(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) q.set(k, v);
  return "/v1/series?" + q.toString();
}

// --- pages -------------------------------------------------------------------

async function fleetPage(win, gen) {
  const [agents, series] = await Promise.all([
    api("/v1/agents"),
    api(seriesQuery({ group_by: "host", from: win.from * NS, to: win.to * NS, top: 10 })),
  ]);
  if (gen !== generation) return;
  main.replaceChildren();
  main.append(el("h1", {}, "Fleet"));
  const chartCard = el("section", { class: "card", id: "fleet-cpu" });
  main.append(chartCard);
  const s = seriesOf(series, (x) => x.name);
  stackedChart(chartCard, "CPU of the fleet by host, cores", s.times, s.list,
               (v) => v / s.step, cores);

  const rows = agents.agents.map((a) => {
    const lost = a.declared_lost.reduce((n, d) => n + d.samples, 0);
    const missing = a.missing.reduce((n, r) => n + (r[1] - r[0] + 1), 0);
    const seen = a.last_seen_ns / NS;
    let health = "ok", cls = "health-ok";
    if (a.declared_lost.length) { health = `${a.declared_lost.length} gap record(s), ${lost} samples lost`; cls = "health-lost"; }
    if (missing) { health = `${missing} batch(es) missing`; cls = "health-gaps"; }
    if (seen && Date.now() - seen > LATE_MS) { health = `late (${ago(seen)})`; cls = "health-late"; }
    return el("tr", { "data-host": a.host },
      el("td", {}, link(a.host, ["host", a.host])),
      el("td", {}, el("code", {}, a.agent_id)),
      el("td", {}, a.software || "–"),
      el("td", {}, ago(seen)),
      el("td", { class: "num" }, a.samples_stored.toLocaleString()),
      el("td", { class: cls }, health));
  });
  main.append(el("section", { class: "card" }, el("h2", {}, `Agents (${agents.agents.length})`),
    el("table", { id: "agents" },
       el("thead", {}, el("tr", {}, ...["host", "agent", "software", "last seen", "samples",
                                         "health"].map((h) => el("th", {}, h)))),
       el("tbody", {}, ...rows))));
  main.append(el("p", { class: "muted" },
                 `Source: ${series.source}, ${series.step_ns / 1e9} s steps.`));
}

async function hostPage(host, win, params, gen) {
  const by = ["comm", "cgroup", "process"].includes(params.get("by")) ? params.get("by") : "comm";
  const [series, top, agents] = await Promise.all([
    api(seriesQuery({ host, group_by: by, from: win.from * NS, to: win.to * NS, top: 10 })),
    api(`/v1/top?host=${encodeURIComponent(host)}&from=${win.from * NS}&to=${win.to * NS}&n=15`),
    api("/v1/agents"),
  ]);
  if (gen !== generation) return;
  main.replaceChildren();
  main.append(el("h1", {}, host));
  const tabs = el("p", { class: "tabs" }, "Stack by: ");
  for (const b of ["comm", "cgroup", "process"]) {
    const p = carriedParams();
    p.set("by", b);
    const a = link(b, ["host", host], p);
    if (b === by) a.className = "on";
    tabs.append(a);
  }
  main.append(tabs);
  const labelOf = (x) => (by === "process" ? `${x.comm} (${x.name.split(":")[0]})` : x.name);
  const s = seriesOf(series, labelOf);
  const cpuCard = el("section", { class: "card", id: "host-cpu" });
  main.append(cpuCard);
  stackedChart(cpuCard, `CPU by ${by}, cores (the top is every process)`, s.times, s.list,
               (v) => v / s.step, cores);
  const rssCard = el("section", { class: "card", id: "host-rss" });
  main.append(rssCard);
  lineChart(rssCard, "RSS", s.times,
            [{ label: "all processes", color: "#1d2330", values: series.total.rss_bytes }]
              .concat(s.list.filter((x) => x.name !== "other").slice(0, 5)
                .map((x) => ({ label: x.label, color: x.color, values: x.rss }))), bytes);

  // Where data is missing, and why: steps without data, and what the
  // host's agents declared lost.
  const gaps = gapsOf(series);
  const declared = [];
  for (const a of agents.agents.filter((x) => x.host === host)) {
    for (const d of a.declared_lost) declared.push(d);
  }
  const gapRows = gaps.map((g) => el("tr", { class: "gap" }, el("td", {}, when(g.from)),
                                     el("td", {}, when(g.to)), el("td", {}, "no samples")));
  for (const d of declared) {
    gapRows.push(el("tr", { class: "declared" }, el("td", {}, when(d.time_ns / NS)), el("td", {}, "–"),
                    el("td", {}, `${d.reason}: ${d.samples} samples declared lost ${d.detail || ""}`)));
  }
  main.append(el("section", { class: "card", id: "gaps", "data-gaps": String(gaps.length) },
    el("h2", {}, `Missing data (${gapRows.length})`),
    gapRows.length ? el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "from"),
                                                        el("th", {}, "to"), el("th", {}, "why"))),
                        el("tbody", {}, ...gapRows))
                   : el("p", { class: "muted" }, "None in this window.")));

  const topRows = top.top.map((t) => el("tr", {},
    el("td", {}, link(t.comm || "?", ["process", host, String(t.pid), String(t.start_time_ns)])),
    el("td", { class: "num" }, t.pid),
    el("td", { class: "num" }, cores(t.cpu_ns / ((win.to - win.from) * NS))),
    el("td", {}, el("span", { class: "cmdline" }, (t.cmdline || "").slice(0, 200)))));
  main.append(el("section", { class: "card" }, el("h2", {}, "Top processes in the window"),
    el("table", { id: "top" }, el("thead", {}, el("tr", {}, ...["comm", "pid", "cores (mean)",
                                                                 "command line"].map((h) => el("th", {}, h)))),
       el("tbody", {}, ...topRows))));
  main.append(el("p", { class: "muted" }, `Source: ${series.source}, ${series.step_ns / 1e9} s steps.`));
}

async function processPage(host, pid, start, win, gen) {
  const answer = await api(`/v1/samples?host=${encodeURIComponent(host)}&pid=${pid}` +
                           `&from=${win.from * NS}&to=${win.to * NS}&limit=20000`);
  if (gen !== generation) return;
  const samples = answer.samples.filter((x) => String(x.start_time_ns) === String(start));
  main.replaceChildren();
  const latest = samples[samples.length - 1];
  main.append(el("h1", {}, `${latest ? latest.comm : "process"} ${pid} on `,
                 link(host, ["host", host])));
  if (!latest) {
    main.append(el("p", { class: "muted" }, "No samples of this process in the window."));
    return;
  }
  main.append(el("section", { class: "card", id: "process-info" }, el("table", {}, el("tbody", {},
    el("tr", {}, el("th", {}, "command line"), el("td", {}, el("span", { class: "cmdline" }, latest.cmdline))),
    el("tr", {}, el("th", {}, "cgroup"), el("td", {}, el("code", {}, latest.cgroup))),
    el("tr", {}, el("th", {}, "started"), el("td", {}, when(latest.start_time_ns / NS))),
    el("tr", {}, el("th", {}, "samples"), el("td", {}, `${samples.length}${answer.truncated ? " (cut)" : ""}`))))));
  const times = samples.map((x) => x.ts_ns / 1e9);
  const cpuCard = el("section", { class: "card", id: "process-cpu" });
  main.append(cpuCard);
  lineChart(cpuCard, "CPU, cores", times,
            [{ label: "cores", color: COLORS[0], values: samples.map((x) => x.cpu_ns / x.interval_ns) }], cores);
  const rssCard = el("section", { class: "card" });
  main.append(rssCard);
  lineChart(rssCard, "RSS", times, [{ label: "RSS", color: COLORS[1], values: samples.map((x) => x.rss_bytes) }], bytes);
}

// --- the frame ---------------------------------------------------------------

function showRange(win) {
  for (const b of document.querySelectorAll("#range button[data-range]")) {
    b.classList.toggle("on", b.dataset.range === win.range);
  }
  const local = (ms) => new Date(ms - new Date(ms).getTimezoneOffset() * 60e3).toISOString().slice(0, 16);
  document.getElementById("from").value = local(win.from);
  document.getElementById("to").value = local(win.to);
}

function crumbs(parts) {
  const nav = document.getElementById("crumbs");
  nav.replaceChildren(link("Fleet", []));
  if (parts[0] === "host" || parts[0] === "process") nav.append(" / ", link(parts[1], ["host", parts[1]]));
  if (parts[0] === "process") nav.append(` / ${parts[2]}`);
}

async function render() {
  const gen = ++generation;
  const { parts, params } = parseHash();
  const win = windowOf(params);
  showRange(win);
  crumbs(parts);
  for (const c of charts) c.destroy();
  charts = [];
  document.body.removeAttribute("data-ready");
  try {
    if (parts[0] === "host" && parts[1]) await hostPage(parts[1], win, params, gen);
    else if (parts[0] === "process" && parts[3]) await processPage(parts[1], parts[2], parts[3], win, gen);
    else await fleetPage(win, gen);
    if (gen === generation) document.body.setAttribute("data-ready", "1");
  } catch (e) {
    if (gen !== generation) return;
    if (e instanceof NeedToken) { askForToken(e.message); return; }
    main.replaceChildren(el("p", { class: "error" }, e.message));
    document.body.setAttribute("data-ready", "error");
  }
}

for (const b of document.querySelectorAll("#range button[data-range]")) {
  b.addEventListener("click", () => {
    const { parts, params } = parseHash();
    params.set("range", b.dataset.range);
    params.delete("from");
    params.delete("to");
    location.hash = hashFor(parts, params);
  });
}
document.getElementById("apply").addEventListener("click", () => {
  const from = new Date(document.getElementById("from").value).getTime();
  const to = new Date(document.getElementById("to").value).getTime();
  if (!(from < to)) return;
  const { parts, params } = parseHash();
  params.set("range", "custom");
  params.set("from", String(from));
  params.set("to", String(to));
  location.hash = hashFor(parts, params);
});
window.addEventListener("hashchange", render);
render();
