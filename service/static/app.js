// The web page: translation as you type, a model and domain picker, alternatives, and an
// attention heat-map. Plain JavaScript, no dependencies; all text is inserted with textContent
// (never as HTML).
"use strict";

const $ = (id) => document.getElementById(id);
const DEBOUNCE_MS = 300;
const NBEST = 3; // alternatives shown, when the beam and the server's limit allow
const limits = { maxBeam: 8, maxAlternatives: 5 }; // replaced by /frontend/settings
let models = []; // from /v1/models
let timer = null;
let latest = 0; // id of the newest request; older answers are dropped

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h["X-API-Key"] = key;
  return h;
}

// Fetches JSON; the status is checked before the body is trusted, and a body that is not JSON
// (a proxy's HTML error page) still gives a readable error.
async function fetchJson(url, options) {
  const res = await fetch(url, options);
  const text = await res.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch (_) {
    body = null;
  }
  if (!res.ok) {
    const message = body && typeof body.error === "string" ? body.error : "";
    throw new Error(message || `${res.status} ${res.statusText}`.trim());
  }
  if (body === null) throw new Error("the server's answer is not JSON");
  return body;
}

function option(value, text) {
  const opt = document.createElement("option");
  opt.value = value;
  opt.textContent = text;
  return opt;
}

async function loadSettings() {
  try {
    const s = await fetchJson("/frontend/settings");
    if (Number.isInteger(s.maxBeam)) limits.maxBeam = s.maxBeam;
    if (Number.isInteger(s.maxAlternatives)) limits.maxAlternatives = s.maxAlternatives;
  } catch (_) {
    // Keep the defaults; a request over the limit is answered with a clear 400.
  }
  const beam = $("beam");
  beam.max = String(limits.maxBeam);
  beam.value = String(Math.min(Number(beam.value) || 1, limits.maxBeam));
}

async function loadModels() {
  try {
    models = await fetchJson("/v1/models");
    const pairs = [...new Set(models.map((m) => `${m.source}→${m.target}`))];
    const select = $("pair");
    select.replaceChildren(...pairs.map((p) => option(p, p.replace("→", " → "))));
    showModels();
    $("status").textContent = models.length ? "" : "No models loaded.";
  } catch (err) {
    $("error").textContent = `Could not load the models: ${err.message}`;
  }
}

function pairModels() {
  const [source, target] = $("pair").value.split("→");
  return models.filter((m) => m.source === source && m.target === target);
}

// The model picker for the chosen pair, its default selected.
function showModels() {
  const choices = pairModels();
  $("model").replaceChildren(...choices.map((m) =>
    option(m.name, m.default ? `${m.name} (default)` : m.name)));
  const preferred = choices.find((m) => m.default) || choices[0];
  if (preferred) $("model").value = preferred.name;
  $("model").disabled = choices.length < 2;
  showModel();
}

function selectedModel() {
  return models.find((m) => m.name === $("model").value);
}

// The chosen model's description, and a domain picker when it has domains.
function showModel() {
  const model = selectedModel();
  $("model-description").textContent = model
    ? model.description + (model.has_attention ? "" : " (no attention)")
    : "";
  const domains = model ? model.domains : [];
  $("domain").replaceChildren(...domains.map((d) => option(d, d)));
  if (model && model.default_domain) $("domain").value = model.default_domain;
  $("domain-label").hidden = domains.length === 0;
}

function schedule() {
  clearTimeout(timer);
  if (!$("source").value.trim()) {
    translate(); // cleared: drop any answer on its way and empty the output at once
    return;
  }
  timer = setTimeout(translate, DEBOUNCE_MS);
}

async function translate() {
  clearTimeout(timer);
  const text = $("source").value;
  const model = selectedModel();
  const id = ++latest; // any answer still on its way is now stale
  $("error").textContent = "";
  if (!model || !text.trim()) {
    $("status").textContent = model || !models.length ? "" : "Choose a model.";
    show(null, model);
    return;
  }
  const beam = Math.min(Math.max(1, Math.round(Number($("beam").value)) || 1), limits.maxBeam);
  const nbest = Math.min(NBEST, beam, limits.maxAlternatives + 1);
  const request = {
    texts: [text], source: model.source, target: model.target, model: model.name,
    beam_size: beam, nbest, return_attention: model.has_attention,
  };
  if (model.domains.length) request.domain = $("domain").value;
  $("status").textContent = "Translating…";
  try {
    const body = await fetchJson("/v1/translate", {
      method: "POST", headers: headers(), body: JSON.stringify(request),
    });
    if (id !== latest) return;
    show(body.results[0], model);
    const domain = body.domain ? ` · ${body.domain}` : "";
    $("status").textContent = `${body.model}${domain} · ${body.timing.total_ms.toFixed(0)} ms`;
  } catch (err) {
    if (id !== latest) return;
    show(null, model);
    $("status").textContent = "";
    $("error").textContent = err.message;
  }
}

function show(result, model) {
  $("output").textContent = result ? result.text : "";
  $("warnings").textContent = result && result.warnings ? result.warnings.join(" ") : "";
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

// A file through POST /v1/documents with the chosen model; the answer is the translated file.
async function translateFile() {
  const file = $("file").files[0];
  const model = selectedModel();
  const link = $("file-download");
  link.hidden = true;
  if (!file || !model) {
    $("file-status").textContent = file ? "Choose a model." : "Choose a file.";
    return;
  }
  const form = new FormData();
  form.append("file", file);
  form.append("source", model.source);
  form.append("target", model.target);
  form.append("model", model.name);
  form.append("beam_size", String(Math.min(Math.max(1, Math.round(Number($("beam").value)) || 1),
    limits.maxBeam)));
  if (!$("domain-label").hidden && $("domain").value) form.append("domain", $("domain").value);
  const h = headers();
  delete h["Content-Type"]; // the browser sets the multipart boundary
  $("file-status").textContent = `Translating ${file.name}…`;
  try {
    const res = await fetch("/v1/documents", { method: "POST", headers: h, body: form });
    if (!res.ok) {
      const body = await res.json().catch(() => null);
      throw new Error(body && typeof body.error === "string" ? body.error : `${res.status}`);
    }
    const disposition = res.headers.get("Content-Disposition") || "";
    const match = /filename="([^"]+)"/.exec(disposition);
    if (link.href) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(await res.blob());
    link.download = match ? match[1] : file.name;
    link.textContent = `Download ${link.download}`;
    link.hidden = false;
    $("file-status").textContent = "";
  } catch (err) {
    $("file-status").textContent = `Error: ${err.message}`;
  }
}

$("file-translate").addEventListener("click", translateFile);
$("source").addEventListener("input", schedule);
$("pair").addEventListener("change", () => { showModels(); translate(); });
$("model").addEventListener("change", () => { showModel(); translate(); });
$("domain").addEventListener("change", translate);
$("beam").addEventListener("change", translate);
loadSettings().then(loadModels);
