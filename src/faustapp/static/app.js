// The live page: a pipeline's final results pushed over Server-Sent Events, a chart of one
// key's field, the top keys and this worker's health. Plain browser JavaScript, no build step.
(function () {
  "use strict";

  const TOKEN_KEY = "faustapp-token";
  const MAX_ROWS = 50;
  const REFRESH_MS = 5000;
  const RECONNECT_MS = 2000;
  const MAX_COLUMNS = 9;

  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;

  const state = {
    pipelines: [],
    pipeline: null,
    key: "",
    field: "",
    lastEventId: null,
    stream: null,
    retry: null,
    keys: new Set(),
    events: 0,
    heartbeats: 0,
    chart: null,
    keyChart: new FaustappChart($("chart")),
    keyLoad: 0,
    started: false,
  };
  // Exposed so people (and tests) can look at what the page holds.
  window.faustapp = state;

  class Unauthorized extends Error {}

  class HttpError extends Error {
    constructor(status, body) {
      super((body && body.error) || "HTTP " + status);
      this.status = status;
      this.body = body;
    }
  }

  function authHeaders(extra) {
    const headers = Object.assign({}, extra || {});
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = "Bearer " + token;
    return headers;
  }

  async function api(path) {
    const resp = await fetch(path, { headers: authHeaders({ Accept: "application/json" }) });
    if (resp.status === 401) {
      askToken();
      throw new Unauthorized("token needed");
    }
    let body = null;
    try {
      body = await resp.json();
    } catch (e) {
      body = null;
    }
    if (!resp.ok) throw new HttpError(resp.status, body);
    return body;
  }

  // ---- messages and the token form -------------------------------------------------------

  function showMessage(text) {
    const box = $("message");
    box.textContent = text;
    box.hidden = !text;
  }

  function askToken() {
    const form = $("auth");
    if (!form.hidden) return;
    const had = sessionStorage.getItem(TOKEN_KEY);
    sessionStorage.removeItem(TOKEN_KEY);
    stopStream();
    showMessage(had ? "The token was refused: enter the current one." : "");
    form.hidden = false;
    $("token").focus();
  }

  $("auth").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
    $("auth").hidden = true;
    showMessage("");
    start();
  });

  // ---- formatting -----------------------------------------------------------------------

  function fmtTime(ms) {
    if (typeof ms !== "number" || !isFinite(ms)) return "";
    return new Date(ms).toISOString().replace("T", " ").slice(0, 19);
  }

  function fmtValue(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "number") {
      return Number.isInteger(value) ? String(value) : String(parseFloat(value.toPrecision(6)));
    }
    if (typeof value === "object") {
      const text = JSON.stringify(value);
      return text.length > 80 ? text.slice(0, 77) + "…" : text;
    }
    return String(value);
  }

  function cell(row, text, numeric) {
    const td = document.createElement("td");
    td.textContent = text;
    if (numeric) td.className = "num";
    row.appendChild(td);
    return td;
  }

  // ---- health ---------------------------------------------------------------------------

  async function loadHealth() {
    let body;
    try {
      body = await api("/api/health");
    } catch (e) {
      if (e instanceof HttpError && e.body && e.body.worker) {
        body = e.body; // 503 while rebalancing or recovering still says why
      } else {
        $("health-badge").textContent = e instanceof Unauthorized ? "token needed" : "unreachable";
        $("health-badge").className = "badge bad";
        return;
      }
    }
    const badge = $("health-badge");
    badge.textContent = body.status;
    badge.className = "badge " + (body.status === "ok" ? "ok" : "bad");
    const list = $("health");
    list.replaceChildren();
    const facts = [
      ["worker", body.worker],
      ["status", body.status],
      ["partitions", (body.active_partitions || []).join(", ") || "none"],
      ["guarantee", body.processing_guarantee],
      ["rebalancing", String(body.rebalancing)],
      ["recovered", String(body.recovered)],
      ["pipelines", (body.pipelines || []).join(", ")],
    ];
    for (const [name, value] of facts) {
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.textContent = value === undefined ? "" : value;
      list.append(dt, dd);
    }
  }

  // ---- pipelines ------------------------------------------------------------------------

  async function loadPipelines() {
    let body;
    try {
      body = await api("/api/pipelines");
    } catch (e) {
      if (e instanceof HttpError) {
        showMessage(
          e.status === 404
            ? "This worker does not serve /api/pipelines: no pipeline to show."
            : "Pipelines are not available right now (" + e.message + "); retrying."
        );
        if (e.status !== 404) setTimeout(loadPipelines, REFRESH_MS);
      }
      return;
    }
    state.pipelines = body.pipelines || [];
    const select = $("pipeline");
    select.replaceChildren();
    for (const p of state.pipelines) {
      const option = document.createElement("option");
      option.value = option.textContent = p.name;
      select.appendChild(option);
    }
    if (!state.pipelines.length) {
      showMessage("This worker runs no windowed pipeline.");
      return;
    }
    const wanted = new URLSearchParams(location.search).get("pipeline");
    const first =
      state.pipelines.find((p) => p.name === wanted) ||
      state.pipelines.find((p) => p.numeric_fields && p.numeric_fields.length) ||
      state.pipelines[0];
    select.value = first.name;
    selectPipeline(first.name);
  }

  function selectPipeline(name) {
    const p = state.pipelines.find((each) => each.name === name);
    if (!p) return;
    state.pipeline = p;
    state.lastEventId = null;
    state.keys.clear();
    $("keys").replaceChildren();
    const w = p.window || {};
    const sizes = [
      w.size_ms != null ? "size " + w.size_ms + " ms" : "",
      w.step_ms != null && w.step_ms !== w.size_ms ? "step " + w.step_ms + " ms" : "",
      w.gap_ms != null ? "gap " + w.gap_ms + " ms" : "",
    ].filter(Boolean);
    $("pipeline-info").textContent =
      p.input_topic + " → " + p.output_topic + " · key " + p.key_field + " · " + w.kind +
      (sizes.length ? " (" + sizes.join(", ") + ")" : "") + " · grace " + p.grace_ms + " ms";
    const fields = $("field");
    fields.replaceChildren();
    for (const f of p.numeric_fields || []) {
      const option = document.createElement("option");
      option.value = option.textContent = f;
      fields.appendChild(option);
    }
    const numeric = p.numeric_fields || [];
    state.field = numeric.includes("count") ? "count" : numeric[0] || "";
    fields.value = state.field;
    resultsHeader(p);
    setKey("");
    openStream();
    refreshTop();
  }

  function resultColumns(p) {
    const skip = new Set([p.key_field, "window_start", "window_end"]);
    return (p.output_fields || []).filter((f) => !skip.has(f)).slice(0, MAX_COLUMNS);
  }

  function resultsHeader(p) {
    const table = $("results");
    const head = document.createElement("tr");
    for (const name of [p.key_field, "window (UTC)", ...resultColumns(p)]) {
      const th = document.createElement("th");
      th.textContent = name;
      head.appendChild(th);
    }
    table.tHead.replaceChildren(head);
    table.tBodies[0].replaceChildren();
    $("results-empty").hidden = false;
  }

  // ---- the stream of final results ------------------------------------------------------

  function setStreamStatus(text) {
    $("stream-status").textContent = text;
  }

  function stopStream() {
    if (state.retry) clearTimeout(state.retry);
    state.retry = null;
    if (state.stream) state.stream.abort();
    state.stream = null;
  }

  async function openStream() {
    stopStream();
    const p = state.pipeline;
    if (!p) return;
    const control = new AbortController();
    state.stream = control;
    const headers = authHeaders({ Accept: "text/event-stream" });
    if (state.lastEventId) headers["Last-Event-ID"] = state.lastEventId;
    const url = "/api/pipelines/" + enc(p.name) + "/stream?from=latest";
    setStreamStatus("connecting…");
    let retry = true;
    try {
      const resp = await fetch(url, { headers, signal: control.signal });
      if (resp.status === 401) {
        askToken();
        return;
      }
      if (!resp.ok || !resp.body) {
        let reason = "HTTP " + resp.status;
        try {
          reason = (await resp.json()).error || reason;
        } catch (e) {
          // not JSON: keep the status
        }
        retry = resp.status !== 404 && resp.status !== 400;
        setStreamStatus("stream unavailable: " + reason);
      } else {
        setStreamStatus("live");
        await FaustappSSE.read(resp.body, (message) => onMessage(p, message));
        setStreamStatus("disconnected, reconnecting…");
      }
    } catch (e) {
      if (control.signal.aborted) return;
      setStreamStatus("disconnected, reconnecting…");
    }
    if (retry && state.stream === control && !control.signal.aborted) {
      state.retry = setTimeout(openStream, RECONNECT_MS);
    }
  }

  function onMessage(p, message) {
    if (state.pipeline !== p) return;
    if (message.comment) state.heartbeats += 1;
    if (message.event === "close") {
      let reason = message.data || "";
      try {
        reason = JSON.parse(reason).reason || reason;
      } catch (e) {
        // a plain text reason
      }
      setStreamStatus("closed by the worker (" + reason + "), reconnecting…");
      return;
    }
    if (message.data === null) return;
    let result;
    try {
      result = JSON.parse(message.data);
    } catch (e) {
      return;
    }
    if (message.id !== null) state.lastEventId = message.id;
    addResult(result);
  }

  function addResult(result) {
    const p = state.pipeline;
    state.events += 1;
    const key = result[p.key_field];
    if (key !== undefined && key !== null) rememberKey(String(key));
    const row = document.createElement("tr");
    row.className = "fresh";
    cell(row, fmtValue(key));
    cell(row, fmtTime(result.window_start) + " – " + fmtTime(result.window_end).slice(11));
    for (const name of resultColumns(p)) {
      cell(row, fmtValue(result[name]), typeof result[name] === "number");
    }
    const body = $("results").tBodies[0];
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
    $("results-empty").hidden = true;
    setStreamStatus("live · " + state.events + " results");
    if (state.key && String(key) === state.key && state.keyChart.add(result, state.field)) {
      drawChart();
    }
  }

  function rememberKey(key) {
    if (state.keys.has(key) || state.keys.size >= 1000) return;
    state.keys.add(key);
    const option = document.createElement("option");
    option.value = key;
    $("keys").appendChild(option);
  }

  // ---- chart of one key's field ---------------------------------------------------------

  function drawChart() {
    const drawn = state.keyChart.draw();
    state.chart = state.keyChart.plot;
    $("chart-empty").hidden = drawn > 0;
  }

  function resetChart() {
    state.keyChart.reset();
    state.chart = null;
    $("open-windows").textContent = "";
    $("chart-empty").hidden = false;
    $("chart-empty").textContent = state.key
      ? "No final " + state.field + " yet for " + state.key + "."
      : "Pick a key to chart its field.";
    $("chart-title").textContent = state.key ? state.field + " of " + state.key : "";
  }

  function setKey(key) {
    state.key = key;
    $("key").value = key;
    loadKey();
  }

  function loadKey() {
    state.keyLoad += 1;
    resetChart();
    refreshKey(false);
  }

  // The key's last final results and open windows; periodic refreshes keep the chart's points
  // (deduplicated by window) and only bring the open windows' running figures up to date.
  async function refreshKey(periodic) {
    const p = state.pipeline;
    const key = state.key;
    const ticket = state.keyLoad;
    if (!p || !key || !state.field) return;
    let body;
    try {
      body = await api("/api/pipelines/" + enc(p.name) + "/keys/" + enc(key));
    } catch (e) {
      if (ticket === state.keyLoad && !periodic && e instanceof HttpError) {
        $("chart-empty").textContent =
          e.status === 404 ? "Nothing yet for " + key + ": live results will be added." : e.message;
      }
      return;
    }
    if (ticket !== state.keyLoad) return;
    for (const result of body.results || []) state.keyChart.add(result, state.field);
    const open = (body.open_windows || []).map(
      (w) => fmtTime(w.window_start).slice(11) + " " + state.field + "=" + fmtValue(w[state.field])
    );
    $("open-windows").textContent = open.length ? "open windows: " + open.join(" · ") : "";
    drawChart();
  }

  // ---- top keys -------------------------------------------------------------------------

  async function refreshTop() {
    const p = state.pipeline;
    if (!p || !state.field) {
      $("top").tBodies[0].replaceChildren();
      $("top-title").textContent = p ? "no numeric field" : "";
      return;
    }
    const query = new URLSearchParams({
      field: state.field,
      n: String(Math.min(1000, Math.max(1, parseInt($("top-n").value, 10) || 10))),
      order: $("top-order").value,
      window: $("top-window").value,
    });
    let body;
    try {
      body = await api("/api/pipelines/" + enc(p.name) + "/top?" + query);
    } catch (e) {
      $("top-title").textContent = e instanceof HttpError ? "unavailable: " + e.message : "";
      return;
    }
    if (state.pipeline !== p) return;
    $("top-title").textContent = body.order + " by " + body.field + " · " + body.window;
    const rows = $("top").tBodies[0];
    rows.replaceChildren();
    body.rows.forEach((item, i) => {
      const row = document.createElement("tr");
      cell(row, String(i + 1));
      cell(row, item.key);
      cell(row, fmtValue(item.value), true);
      cell(row, fmtTime(item.window_start) + " – " + fmtTime(item.window_end).slice(11));
      row.addEventListener("click", () => setKey(item.key));
      rows.appendChild(row);
      rememberKey(item.key);
    });
    const partial = $("top-partial");
    partial.hidden = !body.partial;
    partial.textContent = body.partial
      ? "Partial: partitions " + body.missing_partitions.join(", ") + " did not answer in time."
      : "";
    const workers = $("workers");
    workers.replaceChildren();
    for (const url of body.workers || []) {
      const li = document.createElement("li");
      li.textContent = url;
      workers.appendChild(li);
    }
    if (!state.key && body.rows.length) setKey(body.rows[0].key);
  }

  // ---- wiring ---------------------------------------------------------------------------

  $("pipeline").addEventListener("change", (e) => selectPipeline(e.target.value));
  $("field").addEventListener("change", (e) => {
    state.field = e.target.value;
    loadKey();
    refreshTop();
  });
  $("key").addEventListener("change", (e) => setKey(e.target.value.trim()));
  for (const id of ["top-n", "top-order", "top-window"]) {
    $(id).addEventListener("change", refreshTop);
  }

  function start() {
    loadHealth();
    loadPipelines();
    if (state.started) return;
    state.started = true;
    setInterval(loadHealth, REFRESH_MS);
    setInterval(refreshTop, REFRESH_MS);
    setInterval(() => refreshKey(true), REFRESH_MS);
  }

  start();
})();
