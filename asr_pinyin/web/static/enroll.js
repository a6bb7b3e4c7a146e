// "Enroll my voice" mode: read prompts aloud, the server checks each take and keeps the good ones,
// then adapts the acoustic model to the voice (docs/PROTOCOL.md, "Enrollment"). The microphone
// capture is the dictation page's own (startMic/stopMic in app.js); only where the audio goes
// differs: between a `take` and a `take_end` message on the /enroll websocket.
"use strict";

const en = { ws: null, prompts: [], done: new Set(), minTakes: 1, maxTakeS: 30, cur: 0,
             recording: false, sent: 0, timer: null, name: "" };
window.enrollEvents = []; // every server message, for debugging and tests

function enrollStatus(kind, text) {
  $("enroll-status").dataset.state = kind;
  $("enroll-status").textContent = text;
}

function enrollBegin() {
  const name = $("enroll-name").value.trim();
  if (!name) { enrollStatus("error", "type a name for your voice first"); return; }
  if (en.ws) en.ws.close();
  $("enroll-begin").disabled = true;
  enrollStatus("connecting", "connecting…");
  const ws = new WebSocket(serverUrl("/enroll"));
  ws.binaryType = "arraybuffer";
  en.ws = ws;
  en.name = name;
  ws.onopen = () => ws.send(JSON.stringify({ type: "enroll_start", version: 1, name,
                                             sample_rate: 16000, format: "pcm_s16le" }));
  ws.onmessage = (e) => onEnrollMessage(JSON.parse(e.data));
  ws.onerror = () => enrollStatus("error", "connection failed: " + serverUrl("/enroll"));
  ws.onclose = (e) => {
    if (en.ws !== ws) return;
    stopTake(false);
    en.ws = null;
    $("enroll-begin").disabled = false;
    $("rec").disabled = $("adapt").disabled = true;
    if ($("enroll-status").dataset.state !== "error")
      enrollStatus("idle", `disconnected (${e.code}${e.reason ? " " + e.reason : ""}); press Begin to go on`);
  };
}

function onEnrollMessage(m) {
  window.enrollEvents.push(m);
  switch (m.type) {
    case "enroll_ready":
      en.prompts = m.prompts;
      en.done = new Set(m.done);
      en.minTakes = m.min_takes;
      en.maxTakeS = m.max_take_s;
      $("enroll-main").hidden = false;
      $("rec").disabled = false;
      enrollStatus("listening", `enrolling ${m.name}` + (m.adapter ? " · has an adapter" : ""));
      showPrompt(firstTodo(0));
      break;
    case "take_result":
      showTakeResult(m);
      break;
    case "adapt_progress":
      showAdaptProgress(m);
      break;
    case "adapted":
      showAdapted(m);
      break;
    case "error":
      enrollStatus("error", `${m.code}: ${m.message}`);
      break;
  }
}

// ---- prompts --------------------------------------------------------------------------------
function firstTodo(from) {
  for (let k = 0; k < en.prompts.length; k++) {
    const i = (from + k) % en.prompts.length;
    if (!en.done.has(en.prompts[i].id)) return i;
  }
  return Math.min(from, en.prompts.length - 1);
}

function toneMarks(syl) { // "hao3" -> "hǎo" (display only; the server works on numbered pinyin)
  const marks = { a: "āáǎà", e: "ēéěè", i: "īíǐì", o: "ōóǒò", u: "ūúǔù", "ü": "ǖǘǚǜ" };
  const m = /^([a-zü:v]+)([1-5])$/.exec(syl);
  if (!m) return syl;
  const base = m[1].replace(/v|u:/g, "ü"), tone = +m[2];
  if (tone === 5) return base;
  let at = base.search(/[ae]/);
  if (at < 0) at = base.indexOf("ou");
  if (at < 0) for (let k = base.length - 1; k >= 0; k--) if ("aeiouü".includes(base[k])) { at = k; break; }
  if (at < 0) return syl;
  return base.slice(0, at) + marks[base[at]][tone - 1] + base.slice(at + 1);
}

function showPrompt(i) {
  en.cur = i;
  const p = en.prompts[i];
  $("prompt-text").textContent = p.text;
  $("prompt-pinyin").textContent = p.pinyin.split(" ").map(toneMarks).join(" ");
  $("prompt-pos").textContent = `${i + 1} / ${en.prompts.length}`;
  $("prompt-done").hidden = !en.done.has(p.id);
  $("retake").hidden = true;
  updateProgress();
}

function updateProgress() {
  const n = en.done.size, total = en.prompts.length;
  $("enroll-count").textContent = `${n} / ${total} takes`;
  $("enroll-bar").style.width = (total ? 100 * n / total : 0) + "%";
  const short = Math.max(0, en.minTakes - n);
  $("adapt").disabled = !en.ws || short > 0 || en.recording;
  $("adapt-need").textContent = short > 0 ? `${short} more take${short > 1 ? "s" : ""} before adapting (needs ${en.minTakes})`
                                          : `${n} takes ready`;
}

// ---- takes ----------------------------------------------------------------------------------
async function startTake() {
  if (!en.ws || en.recording) return;
  if (state.ws) { toast("stop dictation first"); return; }
  const p = en.prompts[en.cur];
  $("take-result").hidden = true;
  $("rec").disabled = $("retake").disabled = true;
  en.sent = 0;
  window.enrollSent = 0;
  en.ws.send(JSON.stringify({ type: "take", prompt: p.id }));
  try {
    await startMic((pcm) => {
      if (!en.ws || en.ws.readyState !== WebSocket.OPEN) return;
      en.ws.send(pcm);
      en.sent += pcm.byteLength;
      window.enrollSent = en.sent;
      const s = en.sent / 32000;
      $("rec-time").textContent = `${s.toFixed(1)} s`;
      if (s >= en.maxTakeS - 0.5) stopTake(true); // stay under the server's limit
    });
  } catch (err) {
    enrollStatus("error", "microphone unavailable: " + (err.message || err.name));
    en.ws.send(JSON.stringify({ type: "take_end" })); // an empty take: the server says no speech
    $("rec").disabled = false;
    return;
  }
  en.recording = true;
  $("rec-stop").disabled = false;
  updateProgress();
  enrollStatus("listening", "recording: read the sentence, then press Stop");
}

function stopTake(send) {
  if (!en.recording) return;
  en.recording = false;
  stopMic();
  $("rec-stop").disabled = true;
  if (send && en.ws && en.ws.readyState === WebSocket.OPEN) {
    en.ws.send(JSON.stringify({ type: "take_end" }));
    enrollStatus("connecting", "checking the take…");
  }
}

function showTakeResult(m) {
  const box = $("take-result");
  box.replaceChildren();
  box.dataset.ok = m.ok;
  box.dataset.prompt = m.prompt;
  const head = document.createElement("div");
  head.className = "verdict";
  head.textContent = m.ok ? `✓ take kept (${m.duration.toFixed(1)} s)` : "✗ please read it again";
  box.appendChild(head);
  const ul = document.createElement("ul");
  for (const p of m.problems) {
    const li = document.createElement("li");
    li.textContent = p;
    ul.appendChild(li);
  }
  if (m.problems.length) box.appendChild(ul);
  if (m.checks && m.checks.heard !== undefined) {
    const heard = document.createElement("div");
    heard.className = "muted";
    heard.textContent = "heard: " + (m.checks.heard || "(nothing)");
    box.appendChild(heard);
  }
  box.hidden = false;
  $("rec").disabled = false;
  $("retake").disabled = false;
  enrollStatus("listening", `enrolling ${en.name}`);
  const i = en.prompts.findIndex((p) => p.id === m.prompt);
  if (m.ok) {
    en.done.add(m.prompt);
    const next = firstTodo(i + 1);
    if (en.done.has(en.prompts[next].id)) showPrompt(i); // all done: stay
    else showPrompt(next);
  } else {
    showPrompt(i);
  }
  $("retake").hidden = false; // re-record the take just checked
  $("retake").onclick = () => { showPrompt(i); startTake(); };
  updateProgress();
}

// ---- adaptation ------------------------------------------------------------------------------
function startAdapt() {
  if (!en.ws) return;
  $("adapt").disabled = $("rec").disabled = true;
  $("adapt-progress").hidden = false;
  $("adapt-bar").style.width = "0";
  $("adapt-status").textContent = "starting…";
  $("adapt-report").hidden = true;
  en.ws.send(JSON.stringify({ type: "adapt" }));
}

function showAdaptProgress(m) {
  const frac = m.max_steps ? Math.min(1, m.step / m.max_steps) : 0;
  $("adapt-bar").style.width = 100 * frac + "%";
  const loss = m.loss !== undefined ? ` · loss ${m.loss}` : "";
  $("adapt-status").textContent = `${m.stage}: step ${m.step} / ${m.max_steps}${loss} · ${m.elapsed_s} s`;
}

function showAdapted(m) {
  const r = m.report;
  $("adapt-progress").hidden = true; // done: the report below says how it went
  $("adapt-status").textContent = m.message;
  const pct = (x) => (x === null || x === undefined ? "–" : (100 * x).toFixed(1) + " %");
  const rows = [["takes (train / held back)", `${r.takes} (${r.train_takes} / ${r.val_takes})`],
                ["syllable error before", pct(r.ser_before)], ["syllable error after", pct(r.ser_after)],
                ["training time", r.wall_s !== undefined ? `${r.wall_s} s` : "–"]];
  const t = $("adapt-report");
  t.replaceChildren();
  for (const [k, v] of rows) {
    const tr = t.insertRow();
    tr.insertCell().textContent = k;
    tr.insertCell().textContent = v;
  }
  t.hidden = false;
  $("rec").disabled = false;
  updateProgress();
  if (m.loaded || m.restart_needed) addVoice(m.voice, m.loaded);
}

$("enroll-begin").onclick = enrollBegin;
$("enroll-name").onkeydown = (e) => { if (e.key === "Enter") enrollBegin(); };
$("rec").onclick = startTake;
$("rec-stop").onclick = () => stopTake(true);
$("prev").onclick = () => en.prompts.length && showPrompt((en.cur + en.prompts.length - 1) % en.prompts.length);
$("next").onclick = () => en.prompts.length && showPrompt(firstTodo(en.cur + 1));
$("adapt").onclick = startAdapt;
