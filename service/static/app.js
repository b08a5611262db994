// The web page: translation as you type, alternatives, and an attention heat-map.
// Plain JavaScript, no dependencies; all text is inserted with textContent (never as HTML).
"use strict";

const $ = (id) => document.getElementById(id);
const DEBOUNCE_MS = 300;
const NBEST = 3;
let models = [];
let timer = null;
let latest = 0; // id of the newest request; older answers are dropped

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h["X-API-Key"] = key;
  return h;
}

async function loadModels() {
  try {
    const res = await fetch("/v1/models");
    const body = await res.json();
    if (!res.ok) throw new Error(body.error || res.statusText);
    models = body;
    const select = $("pair");
    select.replaceChildren();
    models.forEach((m, i) => {
      const opt = document.createElement("option");
      opt.value = String(i);
      opt.textContent = `${m.source} → ${m.target}` + (m.has_attention ? "" : " (no attention)");
      select.appendChild(opt);
    });
    $("status").textContent = models.length ? "" : "No models loaded.";
  } catch (err) {
    $("error").textContent = `Could not load the models: ${err.message}`;
  }
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(translate, DEBOUNCE_MS);
}

async function translate() {
  const text = $("source").value;
  const model = models[Number($("pair").value)];
  const id = ++latest;
  $("error").textContent = "";
  if (!model || !text.trim()) {
    show(null, model);
    return;
  }
  const beam = Math.max(NBEST, Number($("beam").value) || 1);
  $("status").textContent = "Translating…";
  try {
    const res = await fetch("/v1/translate", {
      method: "POST",
      headers: headers(),
      body: JSON.stringify({
        texts: [text], source: model.source, target: model.target,
        beam_size: beam, nbest: NBEST, return_attention: model.has_attention,
      }),
    });
    const body = await res.json();
    if (id !== latest) return;
    if (!res.ok) throw new Error(body.error || res.statusText);
    show(body.results[0], model);
    $("status").textContent = `${body.model} · ${body.timing.total_ms.toFixed(0)} ms`;
  } catch (err) {
    if (id !== latest) return;
    $("status").textContent = "";
    $("error").textContent = err.message;
  }
}

function show(result, model) {
  $("output").textContent = result ? result.text : "";
  const alts = result ? result.candidates.slice(1).filter((c) => c.text !== result.text) : [];
  const list = $("alternatives");
  list.replaceChildren();
  for (const c of alts) {
    const li = document.createElement("li");
    li.textContent = c.text;
    if (c.score !== undefined && c.score !== null) li.title = `score ${c.score.toFixed(3)}`;
    list.appendChild(li);
  }
  $("alternatives-section").hidden = alts.length === 0;
  drawAttention(result && model && model.has_attention ? result.attention : null);
}

function drawAttention(att) {
  const table = $("attention");
  table.replaceChildren();
  $("attention-section").hidden = !att;
  if (!att) return;
  const head = table.createTHead().insertRow();
  head.appendChild(document.createElement("th"));
  for (const s of att.source_tokens) {
    const th = document.createElement("th");
    th.textContent = s;
    head.appendChild(th);
  }
  const body = table.createTBody();
  att.weights.forEach((row, t) => {
    const tr = body.insertRow();
    const th = document.createElement("th");
    th.textContent = att.target_tokens[t] ?? "";
    tr.appendChild(th);
    row.forEach((w, s) => {
      const td = tr.insertCell();
      td.style.backgroundColor = `rgba(36, 54, 75, ${Math.min(1, Math.max(0, w)).toFixed(3)})`;
      td.title = `${att.target_tokens[t] ?? ""} ← ${att.source_tokens[s] ?? ""}: ${w.toFixed(3)}`;
    });
  });
}

$("source").addEventListener("input", schedule);
$("pair").addEventListener("change", translate);
$("beam").addEventListener("change", translate);
loadModels();
