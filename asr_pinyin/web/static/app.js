// Dictation page: microphone -> AudioWorklet (16 kHz pcm_s16le) -> websocket (docs/PROTOCOL.md)
// -> live partial text and committed finals. Clicking a character shows its alternatives, taken
// from the final's per-character alternatives when the server sends them, else from the
// sentence n-best (the hanzi other hypotheses put at that position), and replaces it.
"use strict";

const $ = (id) => document.getElementById(id);
const NBEST = 5;
const state = { ws: null, ctx: null, node: null, media: null, ready: false, sent: 0, sink: null };
window.asrEvents = []; // every server message, for debugging and tests

function serverUrl(path = "/") {
  const q = new URLSearchParams(location.search);
  if (q.get("server")) { // keep its query (a token); only the path changes
    const given = new URL(q.get("server"));
    if (path !== "/") given.pathname = path;
    return path === "/" ? q.get("server") : given.toString();
  }
  const url = new URL((location.protocol === "https:" ? "wss://" : "ws://") + location.host + path);
  if (q.get("token")) url.searchParams.set("token", q.get("token"));
  return url.toString();
}

function setStatus(kind, text) {
  $("status").dataset.state = kind;
  $("status-text").textContent = text;
}

function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 1800);
}

// ---- audio --------------------------------------------------------------------------------
// onPcm(ArrayBuffer of 100 ms pcm_s16le at 16 kHz): where the audio goes (dictation or enrollment)
async function startMic(onPcm) {
  if (!window.isSecureContext || !navigator.mediaDevices)
    throw new Error("browsers allow the microphone only on https:// or http://localhost pages");
  state.media = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
  state.ctx = new AudioContext();
  await state.ctx.audioWorklet.addModule("mic-worklet.js");
  const src = state.ctx.createMediaStreamSource(state.media);
  state.node = new AudioWorkletNode(state.ctx, "pcm16k");
  state.sink = onPcm;
  state.node.port.onmessage = (e) => {
    document.querySelectorAll(".meter div").forEach((m) => { m.style.width = Math.min(100, e.data.rms * 400) + "%"; });
    if (state.sink) state.sink(e.data.pcm);
  };
  const mute = state.ctx.createGain();
  mute.gain.value = 0; // keep the node in the rendering graph without playing the mic back
  src.connect(state.node).connect(mute).connect(state.ctx.destination);
}

function stopMic() {
  state.sink = null; // nothing captured after this point is sent
  if (state.media) state.media.getTracks().forEach((t) => t.stop());
  if (state.ctx) state.ctx.close();
  state.media = state.ctx = state.node = null;
  document.querySelectorAll(".meter div").forEach((m) => { m.style.width = "0"; });
}

function sendToDictation(pcm) {
  if (state.ready && state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(pcm);
    state.sent += pcm.byteLength;
  }
}

// ---- session ------------------------------------------------------------------------------
async function start() {
  $("start").disabled = true;
  setStatus("connecting", "connecting…");
  try {
    await startMic(sendToDictation);
  } catch (err) {
    setStatus("error", "microphone unavailable: " + (err.message || err.name));
    $("start").disabled = false;
    return;
  }
  const ws = new WebSocket(serverUrl());
  ws.binaryType = "arraybuffer";
  state.ws = ws;
  ws.onopen = () => {
    const hotwords = $("hotwords").value.split(/[,，\s]+/).filter(Boolean);
    const msg = { type: "start", version: 1, sample_rate: 16000, format: "pcm_s16le",
                  hotwords, nbest: NBEST, endpoint: {} };
    if ($("voice").value) msg.voice = $("voice").value; // an enrolled voice (its acoustic adapter)
    ws.send(JSON.stringify(msg));
  };
  ws.onmessage = (e) => onMessage(JSON.parse(e.data));
  ws.onerror = () => setStatus("error", "connection failed: " + serverUrl());
  ws.onclose = (e) => {
    state.ready = false;
    stopMic();
    $("start").disabled = false;
    $("stop").disabled = $("endutt").disabled = true;
    $("partial").textContent = "";
    if ($("status").dataset.state !== "error")
      setStatus("idle", e.code === 1000 ? "session closed" : `disconnected (${e.code}${e.reason ? " " + e.reason : ""})`);
    state.ws = null;
  };
}

function stop() {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify({ type: "stop" }));
  state.ready = false;
  stopMic();
  setStatus("connecting", "finishing…");
}

function onMessage(m) {
  window.asrEvents.push(m);
  switch (m.type) {
    case "ready":
      state.ready = true;
      $("stop").disabled = $("endutt").disabled = false;
      setStatus("listening", `listening · ${m.session}`);
      break;
    case "partial":
      $("partial").textContent = m.text;
      break;
    case "final":
      $("partial").textContent = "";
      if (m.text) addFinal(m);
      break;
    case "error":
      setStatus("error", `${m.code}: ${m.message}`);
      break;
    case "closed":
      if ($("status").dataset.state !== "error") setStatus("idle", "closed: " + m.reason);
      break;
  }
}

// ---- transcript and alternatives ----------------------------------------------------------
function charAlternatives(final, i) {
  const c = final.chars[i];
  const out = [];
  const add = (x) => { if (x && x !== c.char && !out.includes(x)) out.push(x); };
  // per-character alternatives, if the final carries them: "字", ["字", p] or {"char": "字"}
  for (const a of c.alts || c.alternatives || []) add(typeof a === "string" ? a : Array.isArray(a) ? a[0] : a.char);
  for (const hyp of final.nbest || []) {
    const chars = Array.from(hyp.text).filter((ch) => !/[\p{P}\s]/u.test(ch)); // drop punctuation
    if (chars.length === final.chars.length) add(chars[i]);
  }
  return out;
}

function addFinal(m) {
  const p = document.createElement("p");
  p.className = "final";
  p.dataset.segment = m.segment;
  const chars = m.chars || [];
  let j = 0;
  for (const t of Array.from(m.text)) {
    // walk the text (punctuation and digits included) and the per-character list together
    let k = j;
    while (k < chars.length && k < j + 8 && chars[k].char !== t) k++;
    if (k < chars.length && chars[k].char === t) {
      const span = document.createElement("span");
      const alts = charAlternatives(m, k);
      span.className = "ch" + (alts.length ? " has-alts" : "");
      span.textContent = t;
      span.title = `${chars[k].pinyin}  ${chars[k].start.toFixed(2)}–${chars[k].end.toFixed(2)} s`;
      span.onclick = (e) => showAlts(span, chars[k], alts, e);
      p.appendChild(span);
      j = k + 1;
    } else {
      p.appendChild(document.createTextNode(t));
    }
  }
  $("finals").appendChild(p);
}

function showAlts(span, c, alts) {
  const box = $("alts");
  document.querySelectorAll(".ch.selected").forEach((s) => s.classList.remove("selected"));
  span.classList.add("selected");
  box.replaceChildren();
  const py = document.createElement("span");
  py.className = "py";
  py.textContent = c.pinyin;
  box.appendChild(py);
  const options = [span.dataset.original || c.char, ...alts].filter((x, i, a) => a.indexOf(x) === i);
  for (const alt of options) {
    if (alt === span.textContent) continue;
    const b = document.createElement("button");
    b.className = "alt";
    b.textContent = alt;
    b.onclick = () => {
      span.dataset.original = span.dataset.original || c.char;
      span.textContent = alt;
      span.classList.toggle("edited", alt !== span.dataset.original);
      hideAlts();
    };
    box.appendChild(b);
  }
  if (options.length <= 1) {
    const none = document.createElement("span");
    none.className = "none";
    none.textContent = "no alternatives";
    box.appendChild(none);
  }
  const r = span.getBoundingClientRect();
  box.style.left = `${r.left + window.scrollX}px`;
  box.style.top = `${r.bottom + window.scrollY + 6}px`;
  box.hidden = false;
}

function hideAlts() {
  $("alts").hidden = true;
  document.querySelectorAll(".ch.selected").forEach((s) => s.classList.remove("selected"));
}

function transcriptText() {
  return Array.from(document.querySelectorAll("#finals .final")).map((p) => p.textContent).join("\n");
}

async function copyText() {
  const text = transcriptText();
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) { // no clipboard permission (or not a secure context): the old way
    const ta = document.createElement("textarea");
    ta.value = text;
    document.body.appendChild(ta);
    ta.select();
    document.execCommand("copy");
    ta.remove();
  }
  toast(`copied ${Array.from(text).length} characters`);
}

// ---- voices (enrolled on this server) and the two modes --------------------------------------
function addVoice(name, select) {
  const sel = $("voice");
  if (![...sel.options].some((o) => o.value === name)) sel.add(new Option(name, name));
  if (select) sel.value = name;
  $("voice-pick").hidden = false;
}

async function loadVoices() {
  try {
    const url = new URL(serverUrl("/voices").replace(/^ws/, "http"));
    const info = await (await fetch(url)).json();
    info.voices.forEach((v) => addVoice(v, false));
    if (!info.enroll) $("tab-enroll").hidden = true;
  } catch (_) { /* an older server or another host: no selector, dictation as before */ }
}

function showMode(mode) {
  for (const m of ["dictate", "enroll"]) {
    $("mode-" + m).hidden = m !== mode;
    $("tab-" + m).classList.toggle("active", m === mode);
  }
}

$("tab-dictate").onclick = () => showMode("dictate");
$("tab-enroll").onclick = () => showMode("enroll");
loadVoices();
$("start").onclick = start;
$("stop").onclick = stop;
$("endutt").onclick = () => state.ws && state.ws.send(JSON.stringify({ type: "end_utterance" }));
$("copy").onclick = copyText;
$("clear").onclick = () => { $("finals").replaceChildren(); hideAlts(); };
document.addEventListener("click", (e) => {
  if (!e.target.closest(".ch") && !e.target.closest("#alts")) hideAlts();
});
