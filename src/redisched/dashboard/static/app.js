// redisched dashboard: routing, the API token, forms and actions over the JSON API.
// htmx loads and polls the server-rendered fragments; this file only wires them up.
// Job data is only ever written with textContent (the fragments are escaped on the server).
(function () {
  "use strict";

  const TOKEN_KEY = "redisched.token";
  const $ = (selector) => document.querySelector(selector);
  const rates = new Map(); // topic -> [{t, put, acked}] samples, for the put/ack rates
  let confirming = null; // {key, until}: a delete waiting for its second click

  // -- the token ------------------------------------------------------------------------
  const token = () => sessionStorage.getItem(TOKEN_KEY);
  const authHeaders = () => (token() ? { Authorization: "Bearer " + token() } : {});

  function showLogin(message) {
    $("#view").replaceChildren(); // stops the polling of the fragment inside
    $("#app").hidden = true;
    $("#login").hidden = false;
    $("#logout").hidden = true;
    $("#live").hidden = true;
    $("#login-error").textContent = message || "";
    $("#login-token").focus();
  }

  // A fragment refused: the login form for a 401, else the error's message.
  function refused(status, text) {
    if (status === 401) { showLogin(token() ? "The token was refused." : ""); return; }
    let message = "HTTP " + status;
    try { message = JSON.parse(text).error.message; } catch (_) { /* not JSON */ }
    flash(message, "error");
  }

  function showApp() {
    $("#login").hidden = true;
    $("#app").hidden = false;
    $("#live").hidden = false;
    $("#logout").hidden = !token();
  }

  // -- routing: #/  #/topic/<topic>[?state=&prefix=&cursor=]  #/job/<topic>/<id>
  //    #/finished/<topic>[/<outcome>] --------------------------------------------------------
  function route() {
    const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
    const segments = path.split("/");
    const parts = segments.map((s) => decoded(s) ?? s);
    if (parts[0] === "finished" && parts[1]) {
      return "/dashboard/finished?" + new URLSearchParams({ topic: parts[1], outcome: parts[2] || "" });
    }
    if (parts[0] === "topic" && parts[1]) {
      const params = new URLSearchParams({ topic: parts[1] });
      for (const [key, value] of new URLSearchParams(query || "")) {
        if (["state", "prefix", "cursor"].includes(key) && value) params.set(key, value);
      }
      return "/dashboard/topic?" + params;
    }
    if (parts[0] === "job" && parts[1] && parts.length >= 3) {
      // the id's segments as they are: a page's link writes an id stored as bytes that are
      // not UTF-8 as those bytes percent-encoded, which text cannot hold
      const id = segments.slice(2).map(reencoded);
      return "/dashboard/job?" + new URLSearchParams({ topic: parts[1] }) + "&id=" + id.join("%2F");
    }
    return "/dashboard/overview";
  }

  function load() {
    const view = $("#view");
    view.replaceChildren();
    htmx.ajax("GET", route(), { target: "#view", swap: "innerHTML" });
  }

  const enc = encodeURIComponent;
  // a URL component decoded, or null when its bytes are not UTF-8
  const decoded = (component) => {
    try { return decodeURIComponent(component); } catch { return null; }
  };
  // a URL component as encodeURIComponent writes its text, or as it is when not UTF-8
  const reencoded = (component) => {
    const text = decoded(component);
    return text === null ? component : enc(text);
  };
  const jobHash = (topic, id) => "#/job/" + enc(topic) + "/" + enc(id);

  // -- messages ----------------------------------------------------------------------------
  let flashTimer = null;
  function flash(text, kind) {
    const box = $("#flash");
    box.textContent = text;
    box.className = "flash " + (kind || "ok");
    box.hidden = false;
    clearTimeout(flashTimer);
    flashTimer = setTimeout(() => { box.hidden = true; }, 4000);
  }

  function setResult(output, text, kind) {
    output.textContent = text;
    output.className = "result " + kind;
  }

  // -- the JSON API ------------------------------------------------------------------------
  // JSON typed into a body field is sent as typed, not parsed and encoded again: JSON.parse
  // reads numbers as doubles (9007199254740993 came back as ...992) and keeps one of two
  // equal keys, where the server keeps every digit and names a repeated key.
  class JsonText { constructor(text) { this.text = text; } }

  // ...and JSON read back keeps an integer beyond a double's 53 bits as its digits, where the
  // browser can (JSON.rawJSON and a reviver's source text: Chromium 114, Firefox 135)
  const exactIntegers = (key, value, context) =>
    Number.isInteger(value) && !Number.isSafeInteger(value) && context && context.source &&
    JSON.rawJSON ? JSON.rawJSON(context.source) : value;

  function serialize(value) {
    const texts = [];
    const mark = "\u0000json:" + Math.random().toString(36).slice(2) + ":";
    const encoded = JSON.stringify(value, (key, v) => {
      if (!(v instanceof JsonText)) return v;
      texts.push(v.text);
      return mark + (texts.length - 1);
    });
    if (!texts.length) return encoded;
    const quoted = JSON.stringify(mark).slice(1, -1); // the mark as it reads inside a string
    return encoded.split('"' + quoted).map((part, i) => {
      if (i === 0) return part;
      const end = part.indexOf('"');
      return texts[Number(part.slice(0, end))] + part.slice(end + 1);
    }).join("");
  }

  // Expected refusals (401, 404, 409, 412) come as 200 with the status in a header: no console
  // error (a first visit with tokens on logged two 401s before the login form showed).
  const SOFT = { "X-Redisched-Soft-Status": "1" };
  // A form's submission expects its validation refusal (400, 422) as well: the form shows the
  // message naming the field. A 400 to a button or a fragment is the page's own bug: kept loud.
  const FORM = { "X-Redisched-Soft-Status": "form" };

  async function api(method, path, body, headers) {
    const init = { method, headers: Object.assign({}, SOFT, authHeaders(), headers || {}) };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = serialize(body);
    }
    const response = await fetch(path, init);
    let data = null;
    if ((response.headers.get("content-type") || "").includes("json")) {
      data = JSON.parse(await response.text(), exactIntegers);
    }
    const status = Number(response.headers.get("x-redisched-status")) || response.status;
    if (status === 401) showLogin("The token was refused. Sign in again.");
    return { status, data, etag: response.headers.get("etag") };
  }

  // A form's call to the JSON API: as api(), its validation refusals softened too.
  const submit = (method, path, body, headers) =>
    api(method, path, body, Object.assign({}, FORM, headers || {}));

  const errorText = (r) =>
    r.data && r.data.error
      ? r.data.error.message + (r.data.error.field ? " (" + r.data.error.field + ")" : "")
      : "HTTP " + r.status;
  // A name in an API path. Every browser reads a "." or ".." segment (even as %2E) as this
  // folder or the parent one: a DELETE of the job ".." went to its topic and deleted it.
  // Such names cannot travel in a path, so the call is refused before it is sent.
  function segment(name) {
    if (name !== "." && name !== "..") return enc(name);
    const error = new Error(JSON.stringify(name) + " cannot be sent in a URL path (browsers " +
      "read it as a folder): select the job and use a bulk action, or use the CLI");
    error.refused = true;
    throw error;
  }
  const topicPath = (topic) => "/v1/topics/" + segment(topic);
  // A job's or schedule's id in an API path. A page's element names it twice: data-id as
  // shown (an id stored as bytes that are not UTF-8 reads \xNN) and data-id-path, those bytes
  // percent-encoded.
  const idSegment = (id, element) => {
    const named = segment(id); // refuses "." and ".." either way
    return element?.dataset.idPath || named;
  };
  const jobPath = (topic, id, element) => topicPath(topic) + "/jobs/" + idSegment(id, element);
  const version = (etag) => (etag || "").replace(/\D/g, "");
  const schedulePath = (topic, id, element) =>
    topicPath(topic) + "/schedules/" + idSegment(id, element);
  const failure = (err) => (err.refused ? "" : "The server did not answer: ") + err.message;

  function refresh() {
    htmx.trigger(document.body, "refresh");
  }

  // -- actions on jobs and topics (buttons with data-act in the fragments) -------------------
  const ACTIONS = {
    async delete(topic, id, button) {
      const r = await api("DELETE", jobPath(topic, id, button));
      if (r.status === 204) return ["Deleted " + id, "ok"];
      return [errorText(r), "error"];
    },
    async kick(topic, id, button) {
      const r = await api("POST", jobPath(topic, id, button) + "/kick");
      if (r.status === 200) return ["Kicked " + id + " back to ready", "ok"];
      return [errorText(r), "error"];
    },
    async expire(topic, id, button) {
      const r = await api("POST", jobPath(topic, id, button) + "/expire");
      if (r.status === 200) return ["Released " + id + ": now " + r.data.state, "ok"];
      return [errorText(r), "error"];
    },
    async "run-now"(topic, id, button) {
      const r = await api("POST", jobPath(topic, id, button) + "/run-now");
      if (r.status === 200) return ["Running " + id + " now", "ok"];
      return [errorText(r), "error"];
    },
    async unschedule(topic, id, button) {
      const r = await api("DELETE", schedulePath(topic, id, button));
      if (r.status === 204) return ["Deleted the schedule " + id, "ok"];
      return [errorText(r), "error"];
    },
    async pause(topic) {
      const r = await api("PATCH", topicPath(topic), { paused: true });
      return r.status === 200 ? ["Paused " + topic, "ok"] : [errorText(r), "error"];
    },
    async resume(topic) {
      const r = await api("PATCH", topicPath(topic), { paused: false });
      return r.status === 200 ? ["Resumed " + topic, "ok"] : [errorText(r), "error"];
    },
  };

  async function onAction(button) {
    const act = button.dataset.act;
    const topic = button.dataset.topic;
    const id = button.dataset.id;
    if (act === "delete" || act === "unschedule") {
      const key = confirmKey(button);
      if (!confirming || confirming.key !== key || confirming.until < Date.now()) {
        confirming = { key, until: Date.now() + 4000 };
        markConfirming();
        return;
      }
      confirming = null;
    }
    button.disabled = true;
    try {
      const [text, kind] = await ACTIONS[act](topic, id, button);
      flash(text, kind);
    } catch (err) {
      flash(failure(err), "error");
    }
    button.disabled = false;
    refresh();
  }

  // A delete asks for a second click; the polled fragments are re-rendered, so the pending
  // state is re-applied after every swap.
  // An id stored as bytes that are not UTF-8 shows as \xNN, as the text "\xNN" does: the two
  // are told apart by data-id-path, those bytes percent-encoded.
  const confirmKey = (button) => button.dataset.act + "\u0000" + button.dataset.topic + "\u0000" +
    (button.dataset.idPath || button.dataset.id);
  function markConfirming() {
    for (const button of document.querySelectorAll('button[data-act="delete"], button[data-act="unschedule"]')) {
      const pending = confirming && confirming.until > Date.now() && confirming.key === confirmKey(button);
      button.classList.toggle("confirm", Boolean(pending));
      button.textContent = pending ? "Click again to delete" : "Delete";
    }
  }

  // -- a confirmation that names what it touches (a dialog outside the polled fragments) -------
  function confirmAction(text, label) {
    const dialog = $("#confirm");
    $("#confirm-text").textContent = text;
    $("#confirm-ok").textContent = label;
    dialog.hidden = false;
    $("#confirm-cancel").focus();
    return new Promise((resolve) => {
      const done = (answer) => {
        dialog.hidden = true;
        $("#confirm-ok").onclick = $("#confirm-cancel").onclick = null;
        resolve(answer);
      };
      $("#confirm-ok").onclick = () => done(true);
      $("#confirm-cancel").onclick = () => done(false);
    });
  }

  // -- selection on the jobs tab: kept across the 2 s re-renders --------------------------------
  let selection = { key: "", ids: new Set() };
  function listingKey() {
    const panel = $("#jobs-panel");
    const view = $("#topic-view");
    return panel && view ? view.dataset.topic + "\u0000" + panel.dataset.state : "";
  }
  // A job's checkbox is selected by its id's path form (see confirmKey).
  const pickKey = (box) => box.dataset.idPath;
  function applySelection() {
    const key = listingKey();
    if (selection.key !== key) selection = { key, ids: new Set() };
    const picks = [...document.querySelectorAll("#jobs-panel input.pick")];
    const shown = new Set(picks.map(pickKey));
    for (const id of [...selection.ids]) if (!shown.has(id)) selection.ids.delete(id);
    for (const box of picks) box.checked = selection.ids.has(pickKey(box));
    const all = $("#select-all");
    if (all) all.checked = picks.length > 0 && picks.every((box) => box.checked);
    const count = $("#selection-count");
    if (count) {
      count.textContent = selection.ids.size + " selected";
      count.dataset.count = String(selection.ids.size);
    }
    for (const button of document.querySelectorAll("#jobs-panel button[data-bulk]")) {
      button.disabled = selection.ids.size === 0;
    }
  }

  const BULK_WORDS = {
    delete: ["Delete", "deleted"], kick: ["Kick", "kicked back to ready"],
    "run-now": ["Run now", "made ready"], expire: ["Release", "released"],
  };
  const plural = (n) => n + " job" + (n === 1 ? "" : "s");

  // An id as a bulk action sends it: its text, or, for an id stored as bytes that are not
  // UTF-8 (a JSON string cannot hold them), {"$base64": those bytes}
  function wireId(box) {
    const path = box.dataset.idPath;
    const text = decoded(path);
    if (text !== null) return text;
    const bytes = path.match(/%[0-9A-Fa-f]{2}|[^%]/g).map(
      (part) => (part.length === 3 ? parseInt(part.slice(1), 16) : part.charCodeAt(0)));
    return { $base64: btoa(String.fromCharCode(...bytes)) };
  }

  async function onBulk(button) {
    const { bulk, topic, state } = button.dataset;
    const ids = [...document.querySelectorAll("#jobs-panel input.pick")]
      .filter((box) => selection.ids.has(pickKey(box))).map(wireId);
    const [verb, past] = BULK_WORDS[bulk];
    if (bulk === "delete" && !(await confirmAction(
      "Delete " + plural(ids.length) + " of " + topic + "? This cannot be undone.", "Delete " + plural(ids.length)))) return;
    const r = await api("POST", topicPath(topic) + "/bulk/" + bulk, { ids, state });
    if (r.status !== 200) { flash(errorText(r), "error"); return; }
    const moved = r.data.requested - r.data.done;
    flash(verb + ": " + plural(r.data.done) + " " + past +
      (moved ? "; " + moved + " had moved on and were left alone" : ""), moved ? "warn" : "ok");
    selection.ids.clear();
    refresh();
  }

  async function onAll(button) {
    const { all, topic, state } = button.dataset;
    const count = Number(button.dataset.count);
    let r;
    if (all === "kick") {
      if (!(await confirmAction("Kick all " + plural(count) + " in dead back to ready?", "Kick " + plural(count)))) return;
      r = await kickAll(topic);
      if (r.status === 200) flash("Kicked " + plural(r.kicked) + " back to ready", "ok");
    } else if (all === "purge") {
      if (!(await confirmAction("Delete all " + plural(count) + " in " + state + " of " + topic + "? This cannot be undone.", "Delete " + plural(count)))) return;
      r = await api("POST", topicPath(topic) + "/purge", { state });
      if (r.status === 200) flash("Deleted " + plural(r.data.deleted) + " in " + state, "ok");
    } else if (all === "delete-topic") {
      const reserved = Number(button.dataset.reserved);
      const schedules = Number(button.dataset.schedules || 0);
      const text = "Delete topic " + topic + " with its " + plural(count) +
        (schedules ? ", " + schedules + " recurring schedule" + (schedules === 1 ? "" : "s") : "") +
        ", settings and counters?" +
        (reserved ? " " + plural(reserved) + " running will be cut off." : "");
      if (!(await confirmAction(text, "Delete topic"))) return;
      r = await api("DELETE", topicPath(topic) + "?force=" + (reserved > 0));
      if (r.status === 200) { flash("Deleted topic " + topic + " (" + plural(r.data.deleted) + ")", "ok"); location.hash = "#/"; return; }
    }
    if (r && r.status !== 200) flash(errorText(r), "error");
    refresh();
  }

  async function kickAll(topic) {
    // kick without an id moves up to `limit` dead jobs per call, the oldest first
    let kicked = 0;
    for (;;) {
      const r = await api("POST", topicPath(topic) + "/kick", { limit: 10000 });
      if (r.status !== 200) return r;
      kicked += r.data.kicked;
      if (r.data.kicked < 10000) return { status: 200, kicked };
    }
  }

  // -- editing: polling pauses while a form of the view is being edited -----------------------
  let editing = null; // the form being edited
  const isEditing = () => editing !== null && document.contains(editing);

  // -- the id-prefix filter keeps what is being typed across the 2-second polls ---------------
  // (a poll re-renders the jobs panel, filter included, with the prefix last submitted)
  let typedPrefix = null; // {key, value, focused, start, end}: text typed and not yet submitted
  const filterInput = () => document.querySelector("#filter-form input[name=prefix]");
  const filterKey = (input) => input.form.dataset.topic + "\u0000" + input.form.dataset.state;

  function keepTypedPrefix() {
    const input = filterInput();
    typedPrefix = input && input.value !== input.defaultValue ? {
      key: filterKey(input), value: input.value, focused: document.activeElement === input,
      start: input.selectionStart, end: input.selectionEnd,
    } : null;
  }

  function restoreTypedPrefix() {
    const input = filterInput();
    const kept = typedPrefix;
    typedPrefix = null;
    if (!kept || !input || filterKey(input) !== kept.key || input.value === kept.value) return;
    input.value = kept.value;
    if (kept.focused) {
      input.focus();
      input.setSelectionRange(kept.start, kept.end);
    }
  }

  async function saveSettings(form) {
    const out = $("#settings-result");
    const f = form.elements;
    const number = (name) => (f[name].value === "" ? null : Number(f[name].value));
    const patch = {
      ttr: number("ttr"), max_attempts: number("max_attempts"), backoff: number("backoff"),
      backoff_max: number("backoff_max"), concurrency: number("concurrency"), rate: number("rate"),
      durable: f.durable.checked ? true : null,
    };
    if (!f.partitions.disabled && f.partitions.value !== "") patch.partitions = number("partitions");
    if (f.webhook_url.value.trim() === "") patch.webhook = null;
    else {
      patch.webhook = { url: f.webhook_url.value.trim(), timeout: number("webhook_timeout") || 10 };
      if (f.webhook_secret.value) patch.webhook.secrets = [f.webhook_secret.value];
    }
    const r = await submit("PATCH", topicPath(form.dataset.topic), patch);
    if (r.status === 200) { editing = null; flash("Settings saved", "ok"); refresh(); }
    else setResult(out, errorText(r), "error");
  }

  async function saveJob(form) {
    const out = $("#edit-result");
    const f = form.elements;
    const { topic, id } = form.dataset;
    let r;
    if (form.id === "reschedule-form") {
      const spec = {};
      if (f.when.value === "at") {
        const at = new Date(f.at.value);
        if (!f.at.value || isNaN(at)) { setResult(out, "Pick a date and time.", "error"); return; }
        spec.run_at = at.getTime() / 1000;
      } else spec.delay = Number(f.delay.value || 0);
      if (f.priority.value !== "") spec.priority = Number(f.priority.value);
      r = await submit("POST", jobPath(topic, id, form) + "/reschedule", spec);
    } else {
      const spec = {
        body: bodyValue(f.body.value), run_at: Number(form.dataset.runAt) / 1000,
        priority: Number(form.dataset.priority), ttr: Number(form.dataset.ttr),
        max_attempts: form.dataset.maxAttempts ? Number(form.dataset.maxAttempts) : null,
      };
      r = await submit("PUT", jobPath(topic, id, form), spec, { "If-Match": '"' + form.dataset.version + '"' });
    }
    if (r.status === 200 || r.status === 202) {
      editing = null;
      flash((r.status === 202 ? "Pending: " : "Saved: ") + "version " + version(r.etag), "ok");
      refresh();
    } else if (r.status === 412) setResult(out, "The job changed meanwhile: reload and try again.", "warn");
    else setResult(out, errorText(r), "error");
  }

  // Abort, asked first in the dialog; a reason typed goes into the job's `aborted` event. A
  // refusal stays on screen (polls pause) until the abort is sent again or discarded.
  async function abortJob(form) {
    const { topic, id } = form.dataset;
    const reason = form.elements.reason.value.trim();
    const text = "Abort " + id + " of " + topic + "? A running handler is cancelled; this cannot be undone.";
    if (!(await confirmAction(text, "Abort job"))) return;
    const r = await submit("POST", jobPath(topic, id, form) + "/abort", reason ? { reason } : {});
    if (r.status === 204) { editing = null; flash("Aborted " + id, "ok"); refresh(); }
    else { editing = form; setResult($("#edit-result"), errorText(r), "error"); }
  }

  // -- the side forms start with the topic of the page on screen (a topic's, a job's, its
  //    finished jobs'); never with a row of a list, such as the overview's first topic ------
  let prefilledFor = "";
  function prefill() {
    const view = $("#view > [data-view]");
    const topic = (view && view.dataset.topic) || "";
    if (topic === prefilledFor) return;
    const previous = prefilledFor;
    prefilledFor = topic;
    for (const form of ["#find-form", "#schedule-form", "#cancel-form"]) {
      const input = $(form).elements.topic;
      if (document.activeElement === input) continue;
      // a page with no topic (the overview) takes back only what the last page filled in
      if (topic || input.value === previous) input.value = topic;
    }
  }

  // -- put/ack rates, measured from the totals of consecutive polls ---------------------------
  function updateRates() {
    for (const row of document.querySelectorAll("tr[data-topic]")) {
      const topic = row.dataset.topic;
      if ("unreachable" in row.dataset) { rates.delete(topic); continue; }  // no totals read
      const sample = { t: Number(row.dataset.now), put: Number(row.dataset.put), acked: Number(row.dataset.acked) };
      const samples = (rates.get(topic) || []).filter((s) => s.t < sample.t && sample.t - s.t <= 30000);
      samples.push(sample);
      rates.set(topic, samples);
      const first = samples[0];
      for (const cell of row.querySelectorAll("[data-rate]")) {
        const name = cell.dataset.rate;
        if (samples.length < 2) { cell.textContent = "–"; continue; }
        const perSecond = (sample[name] - first[name]) / ((sample.t - first.t) / 1000);
        cell.textContent = perSecond >= 10 ? perSecond.toFixed(0) : perSecond.toFixed(1);
      }
    }
  }

  // -- forms ------------------------------------------------------------------------------
  function bodyValue(text) {
    if (text.trim() !== "") {
      try { JSON.parse(text); return new JsonText(text); } catch (_) { /* not JSON: stored as text */ }
    }
    const bytes = new TextEncoder().encode(text);
    let binary = "";
    for (const b of bytes) binary += String.fromCharCode(b);
    return { $base64: btoa(binary) };
  }

  async function schedule(form) {
    const out = $("#schedule-result");
    const f = form.elements;
    const spec = { body: bodyValue(f.body.value) };
    if (f.when.value === "at") {
      const at = new Date(f.at.value);
      if (!f.at.value || isNaN(at)) { setResult(out, "Pick a date and time.", "error"); return; }
      spec.run_at = at.getTime() / 1000;
    } else {
      spec.delay = Number(f.delay.value || 0);
    }
    const headers = f.replace.checked ? {} : { "If-None-Match": "*" };
    const r = await submit("PUT", jobPath(f.topic.value, f.id.value), spec, headers);
    const topic = f.topic.value, id = f.id.value;
    if (r.status === 201) setResult(out, "created: version " + version(r.etag), "ok");
    else if (r.status === 200) setResult(out, "replaced: version " + version(r.etag), "ok");
    else if (r.status === 202) setResult(out, "pending: version " + version(r.etag) + " waits for the running attempt", "ok");
    else if (r.status === 412 && r.data && r.data.error.code === "exists") {
      setResult(out, "exists: version " + version(r.etag) + " kept, nothing changed", "warn");
    } else { setResult(out, errorText(r), "error"); return; }
    const link = document.createElement("a");
    link.href = jobHash(topic, id);
    link.textContent = " view";
    out.append(link);
    refresh();
  }

  // -- a schedule's time window: shown and typed in the browser's time zone ----------------
  const pad = (n, width) => String(n).padStart(width || 2, "0");
  function localTime(iso) { // the datetime-local text of an RFC 3339 time
    const d = new Date(iso);
    return pad(d.getFullYear(), 4) + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  // Fills a window field with a stored time (null: none), remembered as stored: the field
  // shows whole seconds, and a time sent back unchanged keeps its milliseconds.
  function fillTime(input, iso) {
    input.value = iso ? localTime(iso) : "";
    input.dataset.stored = iso || "";
    input.dataset.shown = input.value; // as the browser reads it back (":00" seconds dropped)
  }

  // The field's time for the API: null when empty, else RFC 3339 (the stored text if unchanged).
  function timeValue(input) {
    if (input.value === "") return null;
    if (input.dataset.stored && input.value === input.dataset.shown) return input.dataset.stored;
    return new Date(input.value).toISOString(); // datetime-local text without offset: local time
  }

  // Shows an API refusal next to the field it names, when the form has a place for it (and
  // clears the others): the field's label, or "" when it has none.
  function showFieldError(form, r) {
    const error = r && r.data && r.data.error;
    let label = "";
    for (const slot of form.querySelectorAll("[data-error-for]")) {
      const here = Boolean(error) && slot.dataset.errorFor === error.field;
      slot.textContent = here ? error.message : "";
      const input = form.elements[slot.dataset.errorFor];
      if (here) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
      if (here) label = input.closest("label").firstChild.textContent.trim();
    }
    return label;
  }

  async function recurring(form) {
    const out = $("#recurring-result");
    const f = form.elements;
    const edited = kept && kept.topic === f.topic.value && kept.id === f.id.value ? kept : null;
    // a body left as Edit filled it goes back as the very bytes it read (a JSON text parsed
    // and shown again would lose its quotes, spacing or number forms)
    const body = edited && f.body.value === edited.bodyText ? edited.body : bodyValue(f.body.value);
    const spec = { body, tz: f.tz.value || "UTC" };
    if (f.kind.value === "every") spec.every = Number(f.every.value);
    else spec.cron = f.cron.value;
    spec.start_at = timeValue(f.start_at);
    spec.end_at = timeValue(f.end_at);
    // a PUT replaces the whole schedule: an edit sends again what the form does not show, and
    // only over the version it read; a new one only if no schedule has its id
    if (edited) {
      for (const [name, value] of Object.entries(edited.fields)) if (value !== null) spec[name] = value;
    }
    const headers = edited ? { "If-Match": '"' + edited.version + '"' } : { "If-None-Match": "*" };
    const r = await submit("PUT", schedulePath(f.topic.value, f.id.value, edited && edited.element), spec, headers);
    if (r.status === 201 || r.status === 200) {
      showFieldError(form, null);
      kept = null;
      const next = r.data.next_run_at ? ", next run " + r.data.next_run_at : "";
      setResult(out, (r.status === 201 ? "created" : "replaced") + ": version " + version(r.etag) + next, "ok");
      refresh();
    } else if (r.status === 412 && edited) {
      setResult(out, "The schedule changed meanwhile (now version " + version(r.etag) +
        "): Edit it again to see the change, nothing was saved.", "warn");
    } else if (r.status === 412) {
      setResult(out, "A schedule " + f.id.value + " exists (version " + version(r.etag) +
        "): use Edit on its row to change it, nothing was saved.", "warn");
    } else {
      const label = showFieldError(form, r);
      setResult(out, label ? "not saved: see " + label : errorText(r), "error");
    }
  }

  // The schedule "Edit" read last: its version, its body as stored, and the fields the
  // recurring form has no input for.
  let kept = null;

  // The text a stored body shows in the form: its bytes as UTF-8, else its {"$base64"} form.
  function bodyText(marker) {
    const bytes = Uint8Array.from(atob(marker.$base64), (c) => c.charCodeAt(0));
    try { return new TextDecoder("utf-8", { fatal: true }).decode(bytes); } catch (_) {
      return JSON.stringify(marker);
    }
  }

  // "Edit" on a schedule row fills the recurring form (the body is read from the API).
  async function editSchedule(button) {
    const f = $("#recurring-form").elements;
    const d = button.dataset;
    f.topic.value = d.topic;
    f.id.value = d.id;
    f.kind.value = d.cron ? "cron" : "every";
    f.cron.value = d.cron;
    if (d.every) f.every.value = d.every;
    f.tz.value = d.tz;
    const r = await api("GET", schedulePath(d.topic, d.id, button) + "?body=base64");
    kept = null;
    showFieldError($("#recurring-form"), null);
    setResult($("#recurring-result"), "", "");
    fillTime(f.start_at, r.status === 200 ? r.data.start_at : null);
    fillTime(f.end_at, r.status === 200 ? r.data.end_at : null);
    if (r.status === 200) { // the schedule as it is now (the row may be a poll old)
      f.kind.value = r.data.cron ? "cron" : "every";
      f.cron.value = r.data.cron || "";
      if (r.data.every) f.every.value = r.data.every;
      f.tz.value = r.data.tz;
      f.body.value = bodyText(r.data.body);
      const { ttr, priority, max_attempts } = r.data;
      kept = {
        topic: d.topic, id: d.id, element: button, version: version(r.etag), body: r.data.body,
        bodyText: f.body.value, fields: { ttr, priority, max_attempts },
      };
    } else flash(errorText(r), "error");
    f.cron.focus();
  }

  // "Find": a topic or id the API refuses is said next to the form (the job page would be
  // a blank view and a console error); any other answer opens the job's page, which shows a
  // job that is gone by its history.
  async function find(form) {
    const out = $("#find-result");
    const f = form.elements;
    const r = await submit("GET", jobPath(f.topic.value, f.id.value));
    if (r.status === 400 || r.status === 422) { setResult(out, errorText(r), "error"); return; }
    setResult(out, "", "");
    location.hash = jobHash(f.topic.value, f.id.value);
  }

  async function cancel(form) {
    const out = $("#cancel-result");
    const f = form.elements;
    const r = await submit("DELETE", jobPath(f.topic.value, f.id.value));
    if (r.status === 204) setResult(out, "cancelled " + f.id.value, "ok");
    else if (r.status === 404) setResult(out, "no such job", "warn");
    else setResult(out, errorText(r), "error");
    refresh();
  }

  function submitting(form, handler) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        await handler(form);
      } catch (err) {
        flash(failure(err), "error");
        // the form's own line says so too: it still showed the previous submission's outcome
        const out = form.querySelector("output.result");
        if (out) setResult(out, failure(err), "error");
      }
      button.disabled = false;
    });
  }

  // -- wiring -----------------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", () => {
    document.body.addEventListener("htmx:configRequest", (event) => {
      Object.assign(event.detail.headers, SOFT, authHeaders());
    });
    // a softened refusal is no fragment to show: handled as htmx handles an error answer
    document.body.addEventListener("htmx:beforeSwap", (event) => {
      const xhr = event.detail.xhr;
      const real = Number(xhr.getResponseHeader("x-redisched-status"));
      if (!real) return;
      event.detail.shouldSwap = false;
      event.detail.isError = false;
      refused(real, xhr.responseText);
    });
    document.body.addEventListener("htmx:beforeRequest", (event) => {
      // a poll would re-render the form being edited: skip polls until it is saved or left
      if (isEditing() && event.detail.elt && event.detail.elt.closest && event.detail.elt.closest("#view")) {
        event.preventDefault();
      }
    });
    document.body.addEventListener("input", (event) => {
      const form = event.target.closest("#view form[data-edit]");
      if (form) editing = form;
    });
    document.body.addEventListener("change", (event) => {
      const box = event.target;
      if (box.matches("#jobs-panel input.pick")) {
        if (box.checked) selection.ids.add(pickKey(box)); else selection.ids.delete(pickKey(box));
        applySelection();
      } else if (box.matches("#select-all")) {
        for (const pick of document.querySelectorAll("#jobs-panel input.pick")) {
          if (box.checked) selection.ids.add(pickKey(pick)); else selection.ids.delete(pickKey(pick));
        }
        applySelection();
      }
    });
    document.body.addEventListener("submit", (event) => {
      const form = event.target;
      if (form.id === "filter-form") {
        event.preventDefault();
        const prefix = form.elements.prefix.value;
        location.hash = "#/topic/" + enc(form.dataset.topic) + "?state=" + form.dataset.state +
          (prefix ? "&prefix=" + enc(prefix) : "");
      } else if (form.id === "settings-form" || form.id === "reschedule-form" || form.id === "body-form") {
        event.preventDefault();
        const handler = form.id === "settings-form" ? saveSettings : saveJob;
        handler(form).catch((err) => flash(failure(err), "error"));
      } else if (form.id === "abort-form") {
        event.preventDefault();
        abortJob(form).catch((err) => flash(failure(err), "error"));
      }
    });
    document.body.addEventListener("htmx:responseError", (event) => {
      refused(event.detail.xhr.status, event.detail.xhr.responseText);
    });
    document.body.addEventListener("htmx:sendError", () => {
      $("#live").classList.add("down");
      flash("The server does not answer; retrying.", "error");
    });
    document.body.addEventListener("htmx:beforeSwap", keepTypedPrefix);
    document.body.addEventListener("htmx:afterSettle", () => {
      $("#live").classList.remove("down");
      restoreTypedPrefix();
      showApp();
      updateRates();
      markConfirming();
      applySelection();
      prefill();
    });
    document.body.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-act]");
      if (button) onAction(button);
      const bulk = event.target.closest("button[data-bulk]");
      if (bulk) onBulk(bulk).catch((err) => flash(failure(err), "error"));
      const all = event.target.closest("button[data-all]");
      if (all) onAll(all).catch((err) => flash(failure(err), "error"));
      const cancelEdit = event.target.closest("button[data-cancel-edit]");
      if (cancelEdit) { editing = null; refresh(); }
      const edit = event.target.closest("button[data-edit-schedule]");
      if (edit) editSchedule(edit).catch((err) => flash(failure(err), "error"));
    });

    $("#login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, $("#login-token").value.trim());
      $("#login-token").value = "";
      $("#login-error").textContent = "Signing in…";
      load();
    });
    $("#logout").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      $("#view").replaceChildren();
      showLogin("Signed out.");
    });
    submitting($("#find-form"), find);
    submitting($("#schedule-form"), schedule);
    submitting($("#recurring-form"), recurring);
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    for (const place of document.querySelectorAll("[data-local-zone]")) if (zone) place.textContent = zone;
    submitting($("#cancel-form"), cancel);
    window.addEventListener("hashchange", load);

    load();
  });
})();
