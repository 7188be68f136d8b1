// The stemd web remote: one WebSocket, state pushed by the daemon, every control a JSON message.
// Protocol: control/web/protocol.py. The page keeps no state of its own beyond what it was told.
"use strict";

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token");
const pending = new Map(); // message id -> what the reply is for
const strips = new Map(); // stem -> {root, fader, db, mute, solo, loop, refine, level}
const touched = new Set(); // faders under a finger or the mouse: the daemon's state does not move them
const changedAt = {}; // "stem.muted" -> Date.now() when the page last showed it change (tests read this)
let socket = null;
let nextId = 1;
let retry = 500;
let shown = null;
window.stemd = { changedAt, lastStateAt: 0 };

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const query = token ? `?token=${encodeURIComponent(token)}` : "";
  socket = new WebSocket(`${scheme}//${location.host}/ws${query}`);
  socket.onopen = () => { retry = 500; link(true, "connected"); };
  socket.onclose = (event) => {
    link(false, event.reason ? `disconnected: ${event.reason}` : "disconnected; retrying");
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 8000);
  };
  socket.onmessage = (event) => receive(JSON.parse(event.data));
}

function link(up, text) {
  $("link").textContent = text;
  $("link").className = up ? "badge on" : "badge off";
}

function send(message, what) {
  if (!socket || socket.readyState !== WebSocket.OPEN) {
    answer(false, "not connected to stemd", []);
    return;
  }
  const id = nextId++;
  pending.set(id, what);
  socket.send(JSON.stringify({ id, ...message }));
}

function receive(m) {
  if (m.type === "hello") build(m);
  else if (m.type === "state") show(m);
  else if (m.type === "levels") meters(m.levels);
  else if (m.type === "applied") applied(m);
  else if (m.type === "reply") replied(m);
}

// ---- building the page from the daemon's hello ----

function build(hello) {
  const box = $("strips");
  box.replaceChildren();
  strips.clear();
  for (const stem of [...hello.stems, hello.all]) box.appendChild(strip(stem, stem === hello.all));
  const phrases = $("phrases");
  phrases.replaceChildren(...hello.phrases.map((text) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    b.onclick = () => say(text);
    return b;
  }));
}

function strip(stem, master) {
  const root = $("strip").content.firstElementChild.cloneNode(true);
  const part = (cls) => root.querySelector(`.${cls}`);
  const s = { root, fader: part("fader"), db: part("db"), mute: part("mute"), solo: part("solo"),
              loop: part("loop"), refine: part("refine"), level: part("level") };
  root.dataset.stem = stem;
  part("name").textContent = master ? "master" : stem;
  if (master) {
    root.classList.add("master");
    part("buttons").remove();
    part("meter").remove(); // levels are per stem
    s.refine.remove();
  } else {
    s.mute.onclick = () => toggle(stem, "mute", s.mute);
    s.solo.onclick = () => toggle(stem, "solo", s.solo);
    s.loop.onclick = () => command(s.loop.getAttribute("aria-pressed") === "true"
      ? { action: "unloop", stem } : { action: "loop", stem }, `loop ${stem}`);
    s.refine.onchange = () => command({ action: "refine", stem, mode: s.refine.value }, `refine ${stem}`);
  }
  fader(stem, s.fader);
  strips.set(stem, s);
  return root;
}

// A fader sends at most one position per animation frame, and while it is held the daemon's state
// does not move it (the page's soft takeover); on release it shows the daemon's level again.
function fader(stem, input) {
  let queued = false;
  const hold = () => touched.add(input);
  const release = () => { touched.delete(input); if (shown) show(shown); };
  input.addEventListener("pointerdown", hold);
  input.addEventListener("pointerup", release);
  input.addEventListener("pointercancel", release);
  input.addEventListener("blur", release);
  // The position is taken when the input happens: a state pushed before the frame may move an
  // untouched fader (keys, a script) back, and the frame would then send the old level.
  let position = 0;
  input.addEventListener("input", () => {
    position = Number(input.value);
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      send({ type: "fader", stem, position }, null);
    });
  });
}

function toggle(stem, action, button) {
  const on = button.getAttribute("aria-pressed") === "true";
  command({ action: on ? `un${action}` : action, stem }, `${on ? "un" : ""}${action} ${stem}`);
}

function command(c, what) { send({ type: "command", command: c }, what); }

// ---- showing the daemon's state ----

function show(state) {
  shown = state;
  window.stemd.lastStateAt = Date.now();
  for (const [stem, st] of Object.entries(state.stems)) {
    const s = strips.get(stem);
    if (!s) continue;
    pressed(stem, "muted", s.mute, st.muted);
    pressed(stem, "soloed", s.solo, st.soloed);
    pressed(stem, "loop", s.loop, st.loop > 0);
    s.loop.textContent = st.loop > 0 ? `Loop ${st.loop}` : "Loop";
    s.refine.value = st.refine;
    level(s, st);
  }
  const master = strips.get("all");
  if (master) level(master, state.master);
  $("bpm").textContent = state.tempo.bpm.toFixed(1);
  $("tempo-source").textContent = state.tempo.source ? `(${state.tempo.source})` : "";
  const p = state.pending || [];
  $("pending-box").hidden = p.length === 0;
  $("pending").replaceChildren(...p.map((item) => li(`${describe(item.command)}${item.beats_left != null ? ` (in ${item.beats_left} beats)` : ""}`)));
  status(state.status, state.model);
}

function pressed(stem, key, button, on) {
  const was = button.getAttribute("aria-pressed") === "true";
  if (was !== on) changedAt[`${stem}.${key}`] = Date.now();
  button.setAttribute("aria-pressed", String(on));
}

function level(s, st) {
  s.db.textContent = st.gain_db <= -60 ? "-inf dB" : `${st.gain_db.toFixed(1)} dB`;
  if (!touched.has(s.fader)) s.fader.value = String(st.position);
}

function status(st, model) {
  const separated = st.output === "separated";
  $("output").textContent = st.output ? `${st.output} · ${model}` : "no audio yet";
  $("output").className = separated ? "badge on" : "badge warn";
  $("latency").textContent = st.latency_ms == null ? "-" : `${st.latency_ms.toFixed(0)} ms`;
  $("xruns").textContent = st.xruns ?? "-";
  $("underruns").textContent = st.underruns ?? "-";
  $("rtf").textContent = st.rtf == null ? "-" : st.rtf.toFixed(2);
  const why = st.engine_error ? `engine unavailable: ${st.engine_error}` : (separated ? "" : st.state || "");
  $("why").textContent = why;
}

function meters(levels) {
  for (const [stem, v] of Object.entries(levels)) {
    const s = strips.get(stem);
    if (!s) continue;
    const db = v > 0 ? 20 * Math.log10(v) : -60;
    s.level.style.width = `${Math.max(0, Math.min(100, (db + 60) / 60 * 100)).toFixed(1)}%`;
  }
}

// ---- sentences, replies and the log ----

function say(text) {
  text = text.trim();
  if (!text) return;
  $("reply").textContent = `“${text}” …`;
  $("notes").replaceChildren();
  send({ type: "intent", text }, `“${text}”`);
}

function replied(m) {
  const what = pending.get(m.id);
  pending.delete(m.id);
  if (what === null && m.ok) return; // fader moves: the state shows them
  answer(m.ok, m.ok ? `${what ? `${what}: ` : ""}${m.commands.map(describe).join(", ") || "ok"}`
                    : `${what ? `${what}: ` : ""}${m.error}`, m.notes || []);
}

function answer(ok, text, notes) {
  $("reply").textContent = text;
  $("reply").className = ok ? "ok" : "error";
  $("notes").replaceChildren(...notes.map(li));
}

function describe(c) {
  return Object.entries(c).filter(([k]) => k !== "absolute").map(([k, v]) =>
    k === "action" ? v : k === "db" ? `${Number(v).toFixed(1)} dB` : String(v)).join(" ");
}

function applied(m) {
  if (m.skipped) $("log").prepend(li(`… ${m.skipped} more commands`));
  m.entries.forEach(logLine);
}

function logLine(m) {
  const time = new Date(m.at * 1000).toLocaleTimeString();
  const what = m.commands.map(describe).join(", ");
  const line = li(`${time} ${m.source}: ${m.text ? `“${m.text}” → ` : ""}${what}`);
  const log = $("log");
  log.prepend(line);
  while (log.children.length > 200) log.lastChild.remove();
}

function li(text) {
  const item = document.createElement("li");
  item.textContent = text;
  return item;
}

// ---- the mic: the browser's own speech recognition, where it has one ----

function mic() {
  const button = $("mic");
  const Recognition = window.SpeechRecognition || window.webkitSpeechRecognition;
  const off = (why) => {
    button.disabled = true;
    button.title = why;
    $("mic-why").textContent = `mic off: ${why}`;
    $("mic-why").hidden = false;
  };
  if (!Recognition) return off("this browser offers no speech recognition; type instead");
  if (!window.isSecureContext) return off("speech needs https or localhost; type instead");
  const recognition = new Recognition();
  recognition.lang = navigator.language || "en-US";
  recognition.interimResults = false;
  recognition.onresult = (event) => {
    const heard = event.results[0][0].transcript;
    $("text").value = heard;
    say(heard);
  };
  recognition.onerror = (event) => {
    if (event.error === "no-speech" || event.error === "aborted") return;
    off(`speech recognition failed (${event.error}); type instead`);
  };
  recognition.onend = () => button.setAttribute("aria-pressed", "false");
  button.onclick = () => {
    button.setAttribute("aria-pressed", "true");
    recognition.start();
  };
}

$("say").addEventListener("submit", (event) => {
  event.preventDefault();
  say($("text").value);
  $("text").value = ""; // the reply under the box says what was sent and what it did
});
$("tap").onclick = () => send({ type: "tap" }, "tap");
$("reset").onclick = () => command({ action: "reset" }, "reset");
mic();
connect();
