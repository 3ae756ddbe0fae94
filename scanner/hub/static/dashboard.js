// The venue hub's live dashboard: reads GET /hub/status every 2 s and shows it.
//
// The key comes from the address's fragment (/hub#key=pqr_live_..., which never reaches
// the server) or from the form; it is kept in this tab's sessionStorage and removed from
// the address bar at once. Every text of the hub goes into the page as text
// (textContent, createTextNode, setAttribute), never as markup: gate names and PassQR's
// messages are not to be trusted. Any field may be missing: it is shown as a dash.
(function () {
  "use strict";

  const STORAGE_KEY = "passqr-hub-key";
  const STATUS_URL = "/hub/status";
  const POLL_MS = 2000;
  const TIMEOUT_MS = 5000;
  const DASH = "—";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const NUMBER = new Intl.NumberFormat();
  const CLOCK = new Intl.DateTimeFormat(undefined, {
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  const DATE_TIME = new Intl.DateTimeFormat(undefined, {
    dateStyle: "medium", timeStyle: "medium",
  });
  const PALETTE = [
    "#2f6fd6", "#e07b00", "#1a9e55", "#c2185b", "#7b4fd6",
    "#00838f", "#8d6e00", "#d84315", "#546e7a", "#6a9e00",
  ];
  const UPSTREAM_STATES = {
    ok: "OK",
    unreachable: "Unreachable",
    rate_limited: "Rate limited",
    unauthorized: "Key refused",
    starting: "Starting",
  };
  const GATE_STATES = { online: "Online", quiet: "Quiet", never: "Never seen" };

  let key = null;
  let timer = null;
  let generation = 0;

  // ---- small helpers ------------------------------------------------------------------

  function byId(id) {
    return document.getElementById(id);
  }

  function element(tag, attributes, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      node.setAttribute(name, value);
    }
    if (text !== undefined && text !== null) {
      node.textContent = text;
    }
    return node;
  }

  function svgElement(tag, attributes) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      node.setAttribute(name, String(value));
    }
    return node;
  }

  function isNumber(value) {
    return typeof value === "number" && Number.isFinite(value);
  }

  function number(value) {
    return isNumber(value) ? NUMBER.format(value) : DASH;
  }

  function text(value) {
    return typeof value === "string" && value !== "" ? value : DASH;
  }

  function object(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value) ? value : {};
  }

  function list(value) {
    return Array.isArray(value) ? value : [];
  }

  function instant(value) {
    if (typeof value !== "string") {
      return null;
    }
    const parsed = Date.parse(value);
    return Number.isFinite(parsed) ? parsed : null;
  }

  function span(seconds) {
    if (seconds < 60) {
      return `${Math.floor(seconds)} s`;
    }
    if (seconds < 3600) {
      return `${Math.floor(seconds / 60)} min`;
    }
    if (seconds < 86400) {
      return `${Math.floor(seconds / 3600)} h`;
    }
    return `${Math.floor(seconds / 86400)} d`;
  }

  // "12 s ago", "3 min ago", "in 40 s"; the hub's own clock is the reference.
  function relative(value, now) {
    const when = instant(value);
    if (when === null) {
      return DASH;
    }
    const seconds = (now - when) / 1000;
    if (seconds < -1) {
      return `in ${span(-seconds)}`;
    }
    return seconds < 1 ? "just now" : `${span(seconds)} ago`;
  }

  // "passqr.com" of "https://passqr.com/api/v1"; the text itself when it is no URL.
  function host(value) {
    if (typeof value !== "string" || !value) {
      return "";
    }
    try {
      return new URL(value).host;
    } catch (error) {
      return value;
    }
  }

  function setText(id, value) {
    byId(id).textContent = value;
  }

  // A time shown relative to the hub's clock, with the exact time on hover.
  function setTime(node, value, now) {
    node.textContent = relative(value, now);
    const when = instant(value);
    if (when === null) {
      node.removeAttribute("title");
    } else {
      node.setAttribute("title", DATE_TIME.format(new Date(when)));
    }
  }

  function colour(index) {
    if (index < PALETTE.length) {
      return PALETTE[index];
    }
    return `hsl(${Math.round((index * 137.508) % 360)}, 65%, 42%)`;
  }

  // ---- the key ------------------------------------------------------------------------

  function storedKey() {
    try {
      return window.sessionStorage.getItem(STORAGE_KEY);
    } catch (error) {
      return null;
    }
  }

  function storeKey(value) {
    try {
      if (value === null) {
        window.sessionStorage.removeItem(STORAGE_KEY);
      } else {
        window.sessionStorage.setItem(STORAGE_KEY, value);
      }
    } catch (error) {
      // Storage is off in this browser: the key lives in this page only.
    }
  }

  // The key of /hub#key=..., taken out of the address bar (and so out of its history).
  function keyFromFragment() {
    if (!window.location.hash) {
      return null;
    }
    const fragment = new URLSearchParams(window.location.hash.slice(1));
    const found = fragment.get("key");
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
    return found && found.trim() ? found.trim() : null;
  }

  // ---- what the page shows --------------------------------------------------------------

  function setConnection(state, message) {
    const node = byId("connection");
    node.dataset.state = state;
    node.textContent = message;
  }

  function showLogin(message, detail) {
    byId("dashboard").hidden = true;
    byId("forget").hidden = true;
    byId("login").hidden = false;
    setText("login-message", message || "");
    setText("login-detail", detail || "");
    byId("key-input").focus();
  }

  function showDashboard() {
    byId("login").hidden = true;
    byId("dashboard").hidden = false;
    byId("forget").hidden = false;
  }

  function renderUpstream(upstream, now) {
    const stateNode = byId("upstream-state");
    const state = upstream.state;
    const known = Object.prototype.hasOwnProperty.call(UPSTREAM_STATES, state);
    stateNode.dataset.state = known ? state : "unknown";
    stateNode.textContent = known ? UPSTREAM_STATES[state] : text(state);

    const detail = [];
    if (typeof upstream.last_error === "string" && upstream.last_error) {
      detail.push(upstream.last_error);
    }
    if (instant(upstream.paused_until) !== null) {
      detail.push(`Paused, resumes ${relative(upstream.paused_until, now)}`);
    }
    setText("upstream-detail", detail.join(" · "));
    setText("upstream-host", host(upstream.base_url));

    setText("queue", number(upstream.queue));
    setText("sent", number(upstream.sent));
    setText("conflicts-count", number(upstream.conflicts));
    byId("conflicts-tile").classList.toggle("alert", isNumber(upstream.conflicts) && upstream.conflicts > 0);
    renderLastSync(upstream.last_sync, now);
    setText("passes", number(upstream.passes_mirrored));

    const budget = object(upstream.budget);
    renderBudget("validate", object(budget.validate));
    renderBudget("read", object(budget.read));
  }

  // "3 min ago" with "ago" small: the number is what counts from a step away.
  function renderLastSync(value, now) {
    const node = byId("last-sync");
    setTime(node, value, now);
    const shown = node.textContent;
    if (shown.endsWith(" ago")) {
      node.replaceChildren(
        document.createTextNode(shown.slice(0, -4)),
        element("span", { class: "of" }, " ago"),
      );
    }
  }

  function renderBudget(name, budget) {
    const value = byId(`budget-${name}`);
    value.replaceChildren(
      document.createTextNode(number(budget.used)),
      element("span", { class: "of" }, ` / ${number(budget.limit)} per min`),
    );
    const meter = byId(`budget-${name}-meter`);
    const tile = byId(`budget-${name}-tile`);
    const fraction = isNumber(budget.used) && isNumber(budget.limit) && budget.limit > 0
      ? Math.min(budget.used / budget.limit, 1)
      : 0;
    meter.value = fraction;
    tile.classList.toggle("warn", fraction >= 0.8 && fraction < 1);
    tile.classList.toggle("alert", fraction >= 1);
  }

  function cell(value, className) {
    return element("td", className ? { class: className } : {}, value);
  }

  function gateRow(gate, now) {
    const row = element("tr", { "data-testid": "gate-row" });
    const name = element("td", { class: "name" });
    name.append(element("span", { "data-testid": "gate-name" }, text(gate.name)));
    if (typeof gate.role === "string" && gate.role && gate.role !== "gate") {
      name.append(element("span", { class: "role" }, gate.role));
    }
    row.append(name);

    const known = Object.prototype.hasOwnProperty.call(GATE_STATES, gate.state);
    const stateCell = element("td");
    stateCell.append(element("span", {
      class: "pill",
      "data-testid": "gate-state",
      "data-state": known ? gate.state : "unknown",
    }, known ? GATE_STATES[gate.state] : text(gate.state)));
    row.append(stateCell);

    const seen = element("td", { class: "seen", "data-testid": "gate-last-seen" });
    setTime(seen, gate.last_seen, now);
    row.append(seen);

    const accepted = object(gate.accepted);
    const rejected = object(gate.rejected);
    for (const [kind, counts] of [["accepted", accepted], ["rejected", rejected]]) {
      for (const period of ["minute", "hour", "day"]) {
        const value = counts[period];
        const some = isNumber(value) && value > 0 ? " some" : "";
        row.append(cell(number(value), `num ${kind}${some}`));
      }
    }
    return row;
  }

  function renderGates(gates, now) {
    const rows = gates.map((gate) => gateRow(gate, now));
    byId("gate-rows").replaceChildren(...rows);
    byId("gates-empty").hidden = rows.length > 0;
    const online = gates.filter((gate) => gate.state === "online").length;
    const tile = byId("gates-online-tile");
    const value = byId("gates-online");
    value.replaceChildren(
      document.createTextNode(NUMBER.format(online)),
      element("span", { class: "of" }, ` / ${NUMBER.format(gates.length)}`),
    );
    tile.classList.toggle("warn", online > 0 && online < gates.length);
    tile.classList.toggle("alert", online === 0 && gates.length > 0);
  }

  function conflictRow(conflict, now) {
    const row = element("tr", { "data-testid": "conflict-row" });
    row.append(element("td", { class: "code", "data-testid": "conflict-code" }, text(conflict.code)));
    row.append(element("td", { class: "gate", "data-testid": "conflict-gate" }, text(conflict.gate)));
    const when = element("td", { class: "when" });
    setTime(when, conflict.decided_at, now);
    row.append(when);
    const said = element("td", { class: "said", "data-testid": "conflict-message" });
    if (typeof conflict.upstream_result === "string" && conflict.upstream_result) {
      said.append(element("span", { class: "pill result" }, conflict.upstream_result));
      said.append(document.createTextNode(" "));
    }
    said.append(document.createTextNode(text(conflict.message)));
    row.append(said);
    return row;
  }

  // No list at all is not "nothing to resolve": the hub did not say.
  function renderConflicts(conflicts, now) {
    const rows = list(conflicts).map((conflict) => conflictRow(object(conflict), now));
    byId("conflict-rows").replaceChildren(...rows);
    const empty = byId("conflicts-empty");
    empty.hidden = rows.length > 0;
    empty.textContent = Array.isArray(conflicts) ? "Nothing to resolve." : DASH;
  }

  function renderFooter(hub, upstream) {
    const parts = [`Hub ${text(hub.version)}`];
    const started = instant(hub.started_at);
    if (started !== null) {
      parts.push(`started ${DATE_TIME.format(new Date(started))}`);
    }
    parts.push(`upstream ${text(upstream.base_url)}`);
    setText("footer", parts.join(" · "));
  }

  // ---- the chart ----------------------------------------------------------------------

  const CHART = { width: 640, height: 280, left: 46, right: 14, top: 14, bottom: 44 };

  // A round upper bound for the y axis, and its step: 0, step, 2 step, ...
  function scale(highest) {
    const target = Math.max(highest, 4);
    const raw = target / 4;
    const magnitude = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].map((f) => f * magnitude).find((s) => s >= raw);
    return { top: step * Math.ceil(target / step), step };
  }

  function chartAxes(svg, slots, yScale) {
    const plotW = CHART.width - CHART.left - CHART.right;
    const plotH = CHART.height - CHART.top - CHART.bottom;
    const axes = svgElement("g", { class: "axes" });
    for (let value = 0; value <= yScale.top + 1e-9; value += yScale.step) {
      const y = CHART.top + plotH - (value / yScale.top) * plotH;
      axes.append(svgElement("line", {
        x1: CHART.left, x2: CHART.left + plotW, y1: y, y2: y, class: value === 0 ? "baseline" : "grid",
      }));
      const label = svgElement("text", { x: CHART.left - 8, y: y + 4, class: "tick", "text-anchor": "end" });
      label.textContent = NUMBER.format(value);
      axes.append(label);
    }
    for (let ago = 0; ago < slots; ago += 5) {
      const x = CHART.left + (slots > 1 ? ((slots - 1 - ago) / (slots - 1)) * plotW : plotW);
      axes.append(svgElement("line", { x1: x, x2: x, y1: CHART.top + plotH, y2: CHART.top + plotH + 5, class: "baseline" }));
      const label = svgElement("text", { x, y: CHART.top + plotH + 19, class: "tick", "text-anchor": "middle" });
      label.textContent = ago === 0 ? "now" : `−${ago}`;
      axes.append(label);
    }
    const xTitle = svgElement("text", {
      x: CHART.left + plotW / 2, y: CHART.height - 4, class: "axis-title", "text-anchor": "middle",
    });
    xTitle.textContent = "minutes ago";
    const yTitle = svgElement("text", {
      x: 0, y: 0, class: "axis-title", "text-anchor": "middle",
      transform: `translate(12 ${CHART.top + plotH / 2}) rotate(-90)`,
    });
    yTitle.textContent = "admissions / min";
    axes.append(xTitle, yTitle);
    svg.append(axes);
  }

  function chartSeries(name, values, slots, yScale, stroke) {
    const plotW = CHART.width - CHART.left - CHART.right;
    const plotH = CHART.height - CHART.top - CHART.bottom;
    const offset = slots - values.length; // a short series ends at "now" too
    const points = values.map((value, index) => {
      const slot = offset + index;
      const x = CHART.left + (slots > 1 ? (slot / (slots - 1)) * plotW : plotW);
      const y = CHART.top + plotH - (value / yScale.top) * plotH;
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
    const group = svgElement("g", {
      class: "series", "data-testid": "chart-series", "data-gate": name, "data-points": values.length,
    });
    const title = svgElement("title");
    title.textContent = name;
    group.append(title);
    group.append(svgElement("polyline", {
      points: points.join(" "), fill: "none", stroke, "stroke-width": 2.5,
      "stroke-linejoin": "round", "stroke-linecap": "round",
    }));
    if (points.length > 0) {
      const [x, y] = points[points.length - 1].split(",");
      group.append(svgElement("circle", { cx: x, cy: y, r: 4, fill: stroke }));
    }
    return group;
  }

  function legendItem(name, stroke, total) {
    const item = element("li", { "data-testid": "legend-item" });
    const swatch = svgElement("svg", { width: 14, height: 14, viewBox: "0 0 14 14", "aria-hidden": "true" });
    swatch.append(svgElement("rect", { width: 14, height: 14, rx: 3, fill: stroke }));
    item.append(swatch, element("span", { class: "legend-name" }, name));
    item.append(element("span", { class: "legend-total" }, `${NUMBER.format(total)} in 30 min`));
    return item;
  }

  function renderChart(gates) {
    const series = gates.map((gate) => ({
      name: text(gate.name),
      values: list(gate.admissions_per_minute).map((v) => (isNumber(v) && v > 0 ? v : 0)),
    }));
    const slots = Math.max(30, ...series.map((s) => s.values.length));
    const highest = Math.max(0, ...series.flatMap((s) => s.values));
    const yScale = scale(highest);
    const svg = svgElement("svg", {
      viewBox: `0 0 ${CHART.width} ${CHART.height}`, class: "chart", "data-testid": "chart",
      role: "img", "aria-label": "Admissions per minute per gate, last 30 minutes",
    });
    chartAxes(svg, slots, yScale);
    const legend = [];
    series.forEach((s, index) => {
      const stroke = colour(index);
      svg.append(chartSeries(s.name, s.values, slots, yScale, stroke));
      legend.push(legendItem(s.name, stroke, s.values.reduce((a, b) => a + b, 0)));
    });
    byId("chart-box").replaceChildren(svg);
    byId("legend").replaceChildren(...legend);
  }

  function render(status) {
    const hub = object(status.hub);
    const upstream = object(status.upstream);
    const gates = list(status.gates).map(object);
    const now = instant(hub.now) ?? Date.now();
    renderUpstream(upstream, now);
    renderGates(gates, now);
    renderChart(gates);
    renderConflicts(status.conflicts, now);
    renderFooter(hub, upstream);
    showDashboard();
    byId("dashboard").classList.remove("stale");
    setConnection("live", `Live · updated ${CLOCK.format(new Date())}`);
  }

  // ---- polling ------------------------------------------------------------------------

  function stale(message) {
    byId("dashboard").classList.add("stale");
    setConnection("down", message);
  }

  function refused(answer) {
    stop();
    storeKey(null);
    key = null;
    const detail = object(answer).message;
    showLogin("This key is not accepted by the hub", typeof detail === "string" ? detail : "");
    setConnection("refused", "Key not accepted");
  }

  async function fetchStatus() {
    const abort = new AbortController();
    const timeout = window.setTimeout(() => abort.abort(), TIMEOUT_MS);
    try {
      const response = await fetch(STATUS_URL, {
        headers: { Authorization: `Bearer ${key}`, Accept: "application/json" },
        cache: "no-store",
        credentials: "omit",
        redirect: "error",
        signal: abort.signal,
      });
      const body = await response.text();
      return { status: response.status, body };
    } finally {
      window.clearTimeout(timeout);
    }
  }

  function parse(body) {
    try {
      return JSON.parse(body);
    } catch (error) {
      return undefined;
    }
  }

  async function poll(mine) {
    let answer;
    try {
      answer = await fetchStatus();
    } catch (error) {
      answer = null;
    }
    if (mine !== generation) {
      return; // the key changed or was forgotten meanwhile
    }
    if (answer === null) {
      stale("Hub unreachable, retrying");
    } else if (answer.status === 401 || answer.status === 403) {
      refused(parse(answer.body));
      return;
    } else if (answer.status !== 200) {
      stale(`Hub answered HTTP ${answer.status}, retrying`);
    } else {
      const status = parse(answer.body);
      if (status === null || typeof status !== "object" || Array.isArray(status)) {
        stale("The hub's answer is unreadable, retrying");
      } else {
        render(status);
      }
    }
    timer = window.setTimeout(() => poll(mine), POLL_MS);
  }

  function stop() {
    generation += 1;
    if (timer !== null) {
      window.clearTimeout(timer);
      timer = null;
    }
  }

  function start(newKey) {
    stop();
    key = newKey;
    storeKey(newKey);
    setConnection("starting", "Connecting…");
    poll(generation);
  }

  function init() {
    byId("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = byId("key-input");
      const typed = input.value.trim();
      input.value = "";
      if (typed) {
        start(typed);
      }
    });
    byId("forget").addEventListener("click", () => {
      stop();
      storeKey(null);
      key = null;
      setConnection("starting", "Signed out");
      showLogin("", "");
    });
    window.addEventListener("hashchange", () => {
      const pasted = keyFromFragment();
      if (pasted) {
        start(pasted);
      }
    });
    const given = keyFromFragment() || storedKey();
    if (given) {
      start(given);
    } else {
      setConnection("starting", "Waiting for a key");
      showLogin("", "");
    }
  }

  init();
})();
