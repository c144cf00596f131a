// edged's page: plain DOM, no framework, no build step. Names are set with textContent (never as HTML).
"use strict";

const cameras = new Map(); // name -> {card, img, state, tags, samples}
const SVG = "http://www.w3.org/2000/svg";

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function getJson(path) {
  const response = await fetch(path, {cache: "no-store"});
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function fmt(value, digits, unit) {
  return value === null || value === undefined ? "–" : `${Number(value).toFixed(digits)}${unit || ""}`;
}

function cameraCard(name) {
  const card = el("article", "camera");
  const picture = el("div", "picture");
  const placeholder = el("span", "placeholder", "waiting for a picture…");
  const img = el("img");
  img.alt = `${name}: live picture`;
  img.hidden = true;
  picture.append(placeholder, img);
  const info = el("div", "info");
  const title = el("span", "name", name);
  const state = el("span", "state");
  const rate = el("span", "tag");
  const age = el("span", "tag");
  const tags = el("span", "tag");
  info.append(title, state, rate, age, tags);
  card.append(picture, info);
  document.getElementById("cameras").append(card);
  const entry = {card, img, placeholder, state, rate, age, tags, samples: [], loading: false};
  img.addEventListener("load", () => { img.hidden = false; placeholder.hidden = true; });
  return entry;
}

function refreshPicture(name, entry) {
  if (entry.loading) return;
  entry.loading = true;
  const next = new Image();
  next.onload = () => { entry.img.src = next.src; entry.loading = false; };
  next.onerror = () => { entry.loading = false; };
  next.src = `/api/cameras/${encodeURIComponent(name)}/live.jpg?t=${Date.now()}`;
}

function showState(state) {
  document.getElementById("device").textContent = state.device;
  document.getElementById("summary").textContent =
    `${state.engine} · inference p50 ${fmt(state.infer_ms_p50, 1, " ms")} · up ${fmt(state.uptime_s / 60, 0, " min")}`;
  const alerts = document.getElementById("alerts");
  alerts.replaceChildren();
  alerts.hidden = state.alerts.length === 0;
  if (state.alerts.length) {
    alerts.append(el("strong", "", "Alerts firing"));
    const list = el("ul");
    for (const alert of state.alerts) list.append(el("li", "", alert));
    alerts.append(list);
  }
  const seen = new Set();
  for (const camera of state.cameras) {
    seen.add(camera.name);
    let entry = cameras.get(camera.name);
    if (!entry) { entry = cameraCard(camera.name); cameras.set(camera.name, entry); }
    entry.state.textContent = camera.state;
    entry.state.className = `state ${camera.state}`;
    entry.state.title = camera.reason || "";
    // The rate over the last 20 s: a gated still camera is looked at once every few seconds.
    entry.samples = (entry.samples || []).filter((s) => state.ts - s.ts <= 20);
    entry.samples.push({ts: state.ts, processed: camera.processed});
    const first = entry.samples[0];
    const seconds = state.ts - first.ts;
    entry.rate.textContent = seconds >= 1.5 ? `${fmt((camera.processed - first.processed) / seconds, 1)} fps`
      : "– fps";
    entry.age.textContent = `age p50 ${fmt(camera.age_ms_p50, 0, " ms")}`;
    const tags = [];
    if (camera.detect === false) tags.push("detect off");
    if (camera.motion === false) tags.push("gate off");
    if (camera.moving) tags.push("motion");
    for (const kind of camera.tamper) tags.push(kind);
    entry.tags.textContent = tags.join(" · ");
    entry.tags.className = camera.detect === false ? "tag off" : "tag";
  }
  for (const [name, entry] of cameras) {
    if (!seen.has(name)) { entry.card.remove(); cameras.delete(name); }
  }
}

function chart(title, values, times, unit, digits) {
  const box = el("div", "chart");
  const head = el("div", "title");
  const known = values.filter((v) => v !== null && v !== undefined);
  const last = known.length ? known[known.length - 1] : null;
  head.append(el("span", "", title), el("span", "muted", fmt(last, digits, unit)));
  box.append(head);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 100 40");
  svg.setAttribute("preserveAspectRatio", "none");
  if (known.length > 1) {
    const lo = Math.min(...known), hi = Math.max(...known);
    const span = hi - lo || 1;
    const t0 = times[0], t1 = times[times.length - 1] || t0 + 1;
    const points = [];
    values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      const x = ((times[i] - t0) / ((t1 - t0) || 1)) * 100;
      const y = 38 - ((v - lo) / span) * 36;
      points.push(`${x.toFixed(2)},${y.toFixed(2)}`);
    });
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", points.join(" "));
    svg.append(line);
    const range = el("div", "muted", `${fmt(lo, digits, unit)} – ${fmt(hi, digits, unit)}`);
    box.append(svg, range);
  } else if (times.length > 1 && !known.length) {
    box.append(svg, el("div", "muted", "no reading on this device"));
  } else {
    box.append(svg, el("div", "muted", "collecting (one sample per telemetry interval)"));
  }
  return box;
}

function showHistory(history) {
  const charts = document.getElementById("charts");
  charts.replaceChildren(
    chart("Temperature", history.temp_c, history.ts, " °C", 1),
    chart("CPU", history.cpu_pct, history.ts, " %", 0),
    chart("Memory", history.memory_pct, history.ts, " %", 1),
    chart("Detections", history.fps, history.ts, " fps", 1),
  );
}

function secondLook(event) {
  // What a second look made of the object: its sub-label (or the candidates while attempts disagree), its colours.
  const sub = event.sub_label;
  let out = "";
  if (sub && sub.label) out += ` (${sub.label} ${Number(sub.score).toFixed(2)}, ${sub.attempts} looks)`;
  else if (sub && Array.isArray(sub.disputed)) out += ` (undecided: ${sub.disputed.join(" / ")})`;
  const colors = event.attributes && Array.isArray(event.attributes.colors) ? event.attributes.colors : [];
  if (colors.length) out += ` ${colors.join("/")}`;
  return out;
}

function showEvents(events) {
  const list = document.getElementById("events");
  list.replaceChildren();
  if (!events.length) { list.append(el("li", "muted", "no events yet")); return; }
  for (const event of events.slice(0, 20)) {
    const item = el("li");
    const when = new Date(event.ts * 1000).toLocaleTimeString();
    item.append(el("span", "when", when));
    if (event.snapshot) {
      const img = el("img");
      img.src = event.snapshot;
      img.alt = `${event.label} ${event.track}`;
      img.loading = "lazy";
      item.append(img);
    }
    const where = event.zone ? ` in ${event.zone}` : event.line ? ` over ${event.line} (${event.direction})` : "";
    item.append(el("span", "", `${event.camera}: ${event.label}${secondLook(event)} #${event.track} ${event.event}${where}`));
    list.append(item);
  }
}

async function tick(path, show) {
  try { show(await getJson(path)); } catch (error) {
    document.getElementById("summary").textContent = `cannot reach edged (${error.message})`;
  }
}

function start() {
  tick("/api/state", showState);
  tick("/api/history", showHistory);
  tick("/api/events", showEvents);
  setInterval(() => tick("/api/state", showState), 2000);
  setInterval(() => { for (const [name, entry] of cameras) refreshPicture(name, entry); }, 1000);
  setInterval(() => tick("/api/history", showHistory), 15000);
  setInterval(() => tick("/api/events", showEvents), 3000);
}

document.addEventListener("DOMContentLoaded", start);
