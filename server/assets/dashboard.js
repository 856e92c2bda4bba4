// espresso-server dashboard: polls /debug/dashboard/data every second and draws the last five
// minutes on <canvas> elements. No library, no network access beyond this server.
"use strict";

// The x axis spans the data, from 30 s up to five minutes.
const WINDOW_MS = 5 * 60 * 1000;
const MIN_SPAN_MS = 30 * 1000;
const PALETTE = ["#4ea1ff", "#5fd38d", "#f0b429", "#ff6b6b", "#c084fc", "#2dd4bf", "#f472b6", "#a3a3a3"];
const STATUS_COLORS = { "2": "#5fd38d", "3": "#4ea1ff", "4": "#f0b429", "5": "#ff6b6b" };
const VERDICT_COLORS = { pass: "#5fd38d", review: "#f0b429", block: "#ff6b6b" };

let samples = [];
let lastData = {};
let lastT = 0;
let failures = 0;

const errors = document.getElementById("errors");
function reportError(message) {
  errors.hidden = false;
  errors.textContent += message + "\n";
  document.body.dataset.errors = String((Number(document.body.dataset.errors) || 0) + 1);
}
window.addEventListener("error", (e) => reportError("error: " + e.message));
window.addEventListener("unhandledrejection", (e) => reportError("rejection: " + e.reason));

function fmt(v, digits) {
  if (v === null || v === undefined || !isFinite(v)) return "–";
  const a = Math.abs(v);
  if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
  return v.toFixed(digits === undefined ? (a >= 100 ? 0 : a >= 10 ? 1 : 2) : digits);
}

// series: [{name, color, values: [number|null]}], times: [ms]
function draw(id, times, series) {
  const canvas = document.getElementById(id);
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const left = 46, right = 8, top = 22, bottom = 18;
  const pw = w - left - right, ph = h - top - bottom;
  const now = times.length ? times[times.length - 1] : Date.now();
  const span = Math.min(WINDOW_MS, Math.max(MIN_SPAN_MS, times.length ? now - times[0] : 0));
  const t0 = now - span;
  let max = 0;
  for (const s of series) for (const v of s.values) if (v !== null && v > max) max = v;
  const nice = niceMax(max);
  ctx.font = "11px system-ui, sans-serif";
  ctx.strokeStyle = "#2c3038";
  ctx.fillStyle = "#8a919c";
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let i = 0; i <= 4; i++) {
    const y = top + ph - (ph * i) / 4;
    ctx.beginPath(); ctx.moveTo(left, y + 0.5); ctx.lineTo(left + pw, y + 0.5); ctx.stroke();
    ctx.fillText(fmt((nice * i) / 4), left - 4, y);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (let m = 0; m <= 5; m++) {
    const x = left + (pw * m) / 5;
    const ago = Math.round((span * (5 - m)) / 5 / 1000);
    const label = m === 5 ? "now" : ago >= 60 && ago % 60 === 0 ? "-" + ago / 60 + "m" : "-" + ago + "s";
    ctx.textAlign = m === 5 ? "right" : m === 0 ? "left" : "center";
    ctx.fillText(label, x, top + ph + 4);
  }
  const xOf = (t) => left + ((t - t0) / span) * pw;
  const yOf = (v) => top + ph - (v / nice) * ph;
  let legendX = left;
  ctx.textAlign = "left";
  ctx.textBaseline = "top";
  series.forEach((s) => {
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null || times[i] < t0) { pen = false; return; }
      const x = xOf(times[i]), y = yOf(v);
      if (pen) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      pen = true;
    });
    ctx.stroke();
    const last = s.values.length ? s.values[s.values.length - 1] : null;
    const label = s.name + " " + fmt(last);
    ctx.fillStyle = s.color;
    ctx.fillRect(legendX, 6, 8, 8);
    ctx.fillStyle = "#e6e6e6";
    ctx.fillText(label, legendX + 11, 4);
    legendX += ctx.measureText(label).width + 22;
  });
  if (!series.length) {
    ctx.fillStyle = "#8a919c";
    ctx.textAlign = "center";
    ctx.fillText("no data yet", left + pw / 2, top + ph / 2);
  }
  canvas.dataset.max = String(max);
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// One series per key of a per-sample map (status codes, verdicts).
function keyed(field, colorOf) {
  const keys = new Set();
  for (const s of samples) for (const k of Object.keys(s[field] || {})) keys.add(k);
  return [...keys].sort().map((k, i) => ({
    name: k,
    color: colorOf(k, i),
    values: samples.map((s) => (s[field] && s[field][k]) || 0),
  }));
}

function table(id, rows, empty) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren();
  if (!rows.length) {
    const tr = body.insertRow();
    const td = tr.insertCell();
    td.className = "none";
    td.textContent = empty;
    return;
  }
  for (const cells of rows) {
    const tr = body.insertRow();
    for (const c of cells) {
      const td = tr.insertCell();
      td.textContent = c.text;
      if (c.className) td.className = c.className;
    }
  }
}

function render(data) {
  lastData = data;
  const times = samples.map((s) => s.t);
  const col = (f) => samples.map((s) => (s[f] === undefined ? null : s[f]));
  draw("c-rps", times, [{ name: "requests", color: PALETTE[0], values: col("rps") }]);
  draw("c-latency", times, [
    { name: "p50", color: PALETTE[1], values: col("p50_ms") },
    { name: "p95", color: PALETTE[2], values: col("p95_ms") },
    { name: "p99", color: PALETTE[3], values: col("p99_ms") },
  ]);
  draw("c-status", times, keyed("status", (k, i) => STATUS_COLORS[k[0]] && i < 8 ? shade(STATUS_COLORS[k[0]], i) : PALETTE[i % PALETTE.length]));
  draw("c-protect", times, [
    { name: "rate-limited", color: PALETTE[2], values: col("rate_limited") },
    { name: "shed", color: PALETTE[3], values: col("shed") },
    { name: "degraded", color: PALETTE[4], values: col("degraded") },
  ]);
  draw("c-verdicts", times, keyed("verdicts", (k, i) => VERDICT_COLORS[k] || PALETTE[i % PALETTE.length]));
  draw("c-cpu", times, [{ name: "cpu", color: PALETTE[5], values: col("cpu_percent") }]);
  draw("c-rss", times, [{ name: "rss", color: PALETTE[6], values: samples.map((s) => (s.rss_bytes == null ? null : s.rss_bytes / 1048576)) }]);

  table("t-categories", (data.top_categories || []).map((c) => [
    { text: c.category }, { text: c.level }, { text: fmt(c.hits, 0), className: "num" },
  ]), "no hits yet");
  table("t-breakers", Object.entries(data.breakers || {}).map(([name, state]) => [
    { text: name }, { text: state, className: state },
  ]), "none registered");
  table("t-limits", Object.entries(data.adaptive_limits || {}).map(([name, limit]) => [
    { text: name }, { text: fmt(limit, 0), className: "num" },
  ]), "none registered");

  const last = samples[samples.length - 1] || {};
  document.getElementById("now-rps").textContent = fmt(last.rps);
  document.getElementById("now-p99").textContent = last.p99_ms == null ? "–" : fmt(last.p99_ms) + " ms";
  document.getElementById("now-cpu").textContent = last.cpu_percent == null ? "–" : fmt(last.cpu_percent) + "%";
  document.getElementById("now-rss").textContent = last.rss_bytes == null ? "–" : fmt(last.rss_bytes / 1048576) + " MiB";
  document.getElementById("now-total").textContent = fmt(data.requests_total || 0, 0);
  // For scripts and tests: what the page shows.
  const peak = samples.reduce((m, s) => Math.max(m, s.rps || 0), 0);
  document.body.dataset.samples = String(samples.length);
  document.body.dataset.peakRps = String(peak);
  document.body.dataset.requestsTotal = String(data.requests_total || 0);
}

// Same hue family, a little lighter for each further key.
function shade(hex, i) {
  const n = parseInt(hex.slice(1), 16);
  const lift = (c) => Math.min(255, c + i * 18);
  const r = lift(n >> 16), g = lift((n >> 8) & 255), b = lift(n & 255);
  return "rgb(" + r + "," + g + "," + b + ")";
}

async function poll() {
  const state = document.getElementById("state");
  try {
    const response = await fetch("/debug/dashboard/data?since=" + lastT, { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    const data = await response.json();
    for (const s of data.samples) if (s.t > lastT) samples.push(s);
    if (samples.length) lastT = samples[samples.length - 1].t;
    const cutoff = lastT - WINDOW_MS;
    while (samples.length && samples[0].t < cutoff) samples.shift();
    failures = 0;
    state.textContent = "live";
    state.className = "state live";
    render(data);
  } catch (e) {
    failures += 1;
    state.textContent = "no answer (" + e.message + ")";
    state.className = "state down";
  } finally {
    setTimeout(poll, failures ? Math.min(5000, 1000 * failures) : 1000);
  }
}

window.addEventListener("resize", () => render(lastData));
poll();
