// The dashboard: state from the coordinator's event stream, drawn into the page's fixed skeleton.
// Lists are reconciled by key rather than redrawn, so focus and selection survive every update.

import { chart, draw } from "./charts.js";
import { connect } from "./events.js";
import * as fmt from "./format.js";
import { describe, edgeClass, renderTopology } from "./topology.js";

const HISTORY_S = 300;
const ALL = "*";
const TOKEN_KEY = "amity-token";

const view = {
  state: null,
  fields: [],
  series: new Map(), // key ("*", link id, or "link|topic") -> rows [t, ...fields], oldest first
  lastAt: null,
  link: null,
  topic: null,
  filter: "",
};

const $ = (selector) => document.querySelector(selector);
const column = (field) => view.fields.indexOf(field) + 1;
const token = () => sessionStorage.getItem(TOKEN_KEY) || "";
const seriesKey = () => (view.topic ? `${view.link}|${view.topic}` : view.link || ALL);

function html(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

// Puts parent's children in the order of items, creating, updating and removing them by key.
function reconcile(parent, items, keyOf, create, update) {
  const existing = new Map([...parent.children].map((child) => [child.dataset.key, child]));
  let cursor = parent.firstElementChild;
  for (const item of items) {
    const key = keyOf(item);
    let node = existing.get(key);
    if (node) existing.delete(key);
    else {
      node = create(item);
      node.dataset.key = key;
    }
    update(node, item);
    if (node === cursor) cursor = cursor.nextElementSibling;
    else parent.insertBefore(node, cursor);
  }
  for (const node of existing.values()) node.remove();
}

// ---- incoming events ---------------------------------------------------------------------------

function addRows(key, rows) {
  let stored = view.series.get(key);
  if (!stored) view.series.set(key, (stored = []));
  const newest = stored.length ? stored[stored.length - 1][0] : -Infinity;
  for (const row of rows) if (row[0] > newest) stored.push(row);
}

function trimSeries() {
  const from = view.lastAt - HISTORY_S;
  for (const [key, rows] of view.series) {
    const keep = rows.findIndex((row) => row[0] >= from);
    if (keep < 0) view.series.delete(key);
    else if (keep > 0) rows.splice(0, keep);
  }
}

function onEvent(kind, data) {
  const message = JSON.parse(data);
  if (kind === "problem") {
    status("problem", message.detail);
    return;
  }
  if (kind === "hello") {
    view.fields = message.fields;
    for (const [key, rows] of Object.entries(message.series)) addRows(key, rows);
  } else if (kind === "tick") {
    for (const [key, row] of Object.entries(message.points)) addRows(key, [row]);
  } else {
    return;
  }
  view.state = message.state;
  view.lastAt = message.state.at;
  trimSeries();
  status("live", "live");
  render();
}

function status(kind, text) {
  const node = $("#connection");
  node.dataset.status = kind;
  node.textContent = text;
}

// ---- scope: all links, one link, or one topic of a link -----------------------------------------

function links() {
  return view.state ? view.state.topology.links : [];
}

// The rate of a key's newest chart point; the last-minute average until the first point has one.
function currentRate(key, lastMinute) {
  const rows = view.series.get(key);
  const latest = rows && rows.length ? rows[rows.length - 1][column("records_per_s")] : null;
  return latest == null ? lastMinute : latest;
}

function selectedLink() {
  return links().find((link) => link.id === view.link) || null;
}

function select(link, topic = null) {
  view.link = link;
  view.topic = link ? topic : null;
  render();
}

function emptyCounts() {
  return { replicated: 0, bytes: 0, keyless: 0, dropped: {}, dead_lettered: {},
           conflicts: { detected: 0, resolved: 0, stale: 0, conflicts_topic: 0 } };
}

function addCounts(into, counts) {
  for (const key of ["replicated", "bytes", "keyless"]) into[key] += counts[key];
  for (const group of ["dropped", "dead_lettered"]) {
    for (const [reason, n] of Object.entries(counts[group])) into[group][reason] = (into[group][reason] || 0) + n;
  }
  for (const [kind, n] of Object.entries(counts.conflicts)) into.conflicts[kind] += n;
  return into;
}

function scopeCounts() {
  const stats = view.state.stats;
  if (view.topic) {
    const entry = stats.topics.find((t) => t.link === view.link && t.topic === view.topic);
    return entry ? entry.total : emptyCounts();
  }
  const entries = stats.links.filter((l) => view.link == null || l.link === view.link);
  return entries.reduce((total, entry) => addCounts(total, entry.total), emptyCounts());
}

// ---- rendering ---------------------------------------------------------------------------------

function render() {
  if (!view.state) return;
  if (view.link && !selectedLink()) {
    view.link = null;
    view.topic = null;
  }
  renderFacts();
  const lagByLink = new Map(view.state.stats.links.map((l) => [l.link, l.lag_seconds]));
  const rates = new Map(links().map((l) => [l.id, currentRate(l.id, l.records_per_s)]));
  renderTopology($("#topology"), view.state.topology, { lag: lagByLink, rates }, view.link, (id) => select(id));
  renderUnreachable();
  renderLinkList(lagByLink);
  renderDetail();
  renderTiles();
  renderCounters();
  renderTopics();
  renderRules();
}

function renderFacts() {
  const state = view.state;
  $("#fact-workers").textContent = fmt.count(state.workers_live);
  $("#fact-generation").textContent = fmt.count(state.topology.generation);
  $("#fact-rules").textContent = fmt.count(state.rules.version);
  $("#fact-updated").textContent = fmt.clock(state.at);
}

function renderUnreachable() {
  const pairs = view.state.topology.unreachable;
  const node = $("#unreachable");
  node.hidden = pairs.length === 0;
  node.textContent = pairs.length
    ? `Writes never reach: ${pairs.map((p) => `${p.source} → ${p.destination}`).join(", ")} (no active path)`
    : "";
}

function renderLinkList(lagByLink) {
  const items = [{ id: ALL }, ...links()];
  reconcile($("#link-list"), items, (item) => item.id, (item) => {
    const button = html("button", { type: "button", class: "link-button", "data-link": item.id,
                                    onclick: () => select(item.id === ALL ? null : item.id) });
    button.append(html("span", { class: "name" }), html("span", { class: "state" }), html("span", { class: "rate" }));
    return html("li", {}, button);
  }, (li, item) => {
    const button = li.firstElementChild;
    const selected = item.id === ALL ? view.link == null : view.link === item.id;
    button.setAttribute("aria-pressed", String(selected));
    if (item.id === ALL) {
      button.querySelector(".name").textContent = "All links";
      button.querySelector(".state").textContent = `${links().length} links`;
      const lastMinute = view.state.stats.links.reduce((sum, l) => sum + l.throughput.records_per_s, 0);
      button.querySelector(".rate").textContent = `${fmt.rate(currentRate(ALL, lastMinute))}/s`;
      return;
    }
    const lag = lagByLink.get(item.id) || 0;
    button.dataset.state = item.state;
    button.className = `link-button ${edgeClass(item, lag)}`;
    button.title = describe(item, lag, currentRate(item.id, item.records_per_s));
    button.querySelector(".name").textContent = `${item.source} → ${item.destination}`;
    button.querySelector(".state").textContent = item.state;
    button.querySelector(".rate").textContent = `${fmt.rate(currentRate(item.id, item.records_per_s))}/s`;
  });
}

function renderDetail() {
  const link = selectedLink();
  const heading = $("#detail-heading");
  heading.textContent = link ? `${link.id}${view.topic ? ` · ${view.topic}` : ""}` : "All links";
  const badge = $("#detail-state");
  badge.hidden = !link;
  if (link) {
    const state = link.problem ? `${link.state}: ${link.problem}` : link.state;
    badge.textContent = link.worker ? `${state} · worker ${link.worker}` : state;
    badge.dataset.state = link.state;
  }
  const pause = $("#pause-button");
  pause.hidden = !link;
  if (link) pause.textContent = link.state === "paused" ? "Resume link" : "Pause link";
  $("#back-button").hidden = !link;
}

const TILES = [
  { id: "throughput", label: "Throughput", unit: "records/s", field: "records_per_s", show: fmt.rate,
    note: (row) => `${fmt.bytes(row && row[column("bytes_per_s")])}/s` },
  { id: "lag-records", label: "Lag", unit: "records", field: "lag_records", show: fmt.count },
  { id: "lag-seconds", label: "Lag", unit: "seconds", field: "lag_seconds", show: fmt.seconds },
  { id: "dropped", label: "Loop drops", unit: "records/s", field: "dropped_per_s", show: fmt.rate },
  { id: "conflicts", label: "Conflicts", unit: "detected/s", field: "conflicts_per_s", show: fmt.rate,
    note: (row) => `stale ${fmt.rate(row && row[column("stale_per_s")])}/s` },
  { id: "dead", label: "Dead letters", unit: "records/s", field: "dead_lettered_per_s", show: fmt.rate },
];

function renderTiles() {
  const rows = view.series.get(seriesKey()) || [];
  const latest = rows.length ? rows[rows.length - 1] : null;
  const span = [view.lastAt - HISTORY_S, view.lastAt];
  reconcile($("#tiles"), TILES, (tile) => tile.id, (tile) => {
    const figure = html("figure", { class: "tile", id: `tile-${tile.id}` });
    const caption = html("figcaption", {}, tile.label, " ", html("span", { class: "unit" }, tile.unit));
    figure.append(caption, html("p", { class: "value", id: `value-${tile.id}` }), chart(tile.id),
                  html("p", { class: "scale" }));
    return figure;
  }, (figure, tile) => {
    const at = column(tile.field);
    figure.querySelector(".value").textContent = tile.show(latest ? latest[at] : null);
    const top = draw(figure.querySelector("svg"), rows, at, span);
    const scale = top == null ? "no data in the last 5 min" : `peak ${tile.show(top)} · last 5 min`;
    figure.querySelector(".scale").textContent = tile.note ? `${tile.note(latest)} · ${scale}` : scale;
  });
}

function renderCounters() {
  const counts = scopeCounts();
  const entries = [
    ["replicated", "Replicated", fmt.count(counts.replicated)],
    ["bytes", "Bytes written", fmt.bytes(counts.bytes)],
    ["keyless", "Keyless", fmt.count(counts.keyless)],
    ["dropped", "Loop drops", fmt.byReason(counts.dropped, "0")],
    ["conflicts", "Conflicts detected", fmt.count(counts.conflicts.detected)],
    ["resolved", "Conflicts resolved", fmt.count(counts.conflicts.resolved)],
    ["stale", "Stale, not applied", fmt.count(counts.conflicts.stale)],
    ["conflicts-topic", "Conflicts-topic entries", fmt.count(counts.conflicts.conflicts_topic)],
    ["dead-lettered", "Dead letters", fmt.byReason(counts.dead_lettered, "0")],
  ];
  reconcile($("#counters"), entries, ([id]) => id, ([id, label]) => html(
    "div", {}, html("dt", {}, label), html("dd", { id: `total-${id}` })), (div, [, , value]) => {
    div.querySelector("dd").textContent = value;
  });
}

function renderTopics() {
  const filter = view.filter.toLowerCase();
  const entries = view.state.stats.topics.filter((t) => (view.link == null || t.link === view.link) &&
                                                       t.topic.toLowerCase().includes(filter));
  const span = [view.lastAt - HISTORY_S, view.lastAt];
  $("#topics").classList.toggle("one-link", view.link != null);
  const body = $("#topics tbody");
  reconcile(body, entries, (t) => `${t.link}|${t.topic}`, (t) => {
    const button = html("button", { type: "button", class: "topic-button", onclick: () => select(t.link, t.topic) },
                        t.topic);
    const row = html("tr", {}, html("th", { scope: "row" }, button));
    for (const name of ["link", "rate num"]) row.append(html("td", { class: name }));
    row.append(html("td", { class: "trend" }, chart("small")));
    for (const name of ["replicated num", "lag num", "dropped", "conflicts", "dead"]) {
      row.append(html("td", { class: name }));
    }
    return row;
  }, (row, t) => {
    const key = `${t.link}|${t.topic}`;
    const rows = view.series.get(key) || [];
    const selected = view.link === t.link && view.topic === t.topic;
    row.classList.toggle("selected", selected);
    row.querySelector(".topic-button").setAttribute("aria-pressed", String(selected));
    const cell = (name, text) => { row.querySelector(`.${name}`).textContent = text; };
    cell("link", t.link);
    cell("rate", fmt.rate(currentRate(key, t.throughput.records_per_s)));
    cell("replicated", fmt.count(t.total.replicated));
    cell("lag", `${fmt.count(t.lag_records)} · ${fmt.seconds(t.lag_seconds)}`);
    cell("dropped", fmt.byReason(t.total.dropped));
    const c = t.total.conflicts;
    cell("conflicts", c.detected || c.stale || c.conflicts_topic
      ? `${fmt.count(c.detected)} · ${fmt.count(c.stale)} · ${fmt.count(c.conflicts_topic)}` : fmt.DASH);
    cell("dead", fmt.byReason(t.total.dead_lettered));
    draw(row.querySelector(".trend svg"), rows, column("records_per_s"), span);
  });
  $("#topics-empty").hidden = entries.length > 0;
  $("#topics-empty").textContent = view.state.stats.topics.length ? "No topic matches the filter." :
    "No records counted yet.";
}

function ruleDetails(rule) {
  if (!rule) return "none";
  const parts = [rule.policy];
  if (rule.field) parts.push(`field ${rule.field}`);
  if (rule.regions && rule.regions.length) parts.push(`regions ${rule.regions.join(" > ")}`);
  if (rule.fallback) parts.push(`fallback ${rule.fallback}`);
  if (rule.first_hop === "timestamp") parts.push("first hop from the record timestamp");
  return parts.join(", ");
}

function renderRules() {
  const { rules, rule_changes: changes } = view.state;
  reconcile($("#rules tbody"), rules.rules.map((rule, i) => [i, rule]), ([, rule]) => rule.topic,
            () => html("tr", {}, html("td", { class: "num" }), html("th", { scope: "row" }), html("td"), html("td"),
                       html("td", { class: "num" })), (row, [i, rule]) => {
      const cells = row.children;
      cells[0].textContent = String(i + 1);
      cells[1].textContent = rule.topic;
      cells[2].textContent = rule.policy;
      cells[3].textContent = ruleDetails(rule).split(", ").slice(1).join(", ") || fmt.DASH;
      cells[4].textContent = fmt.seconds(rule.max_skew_ms / 1000);
    });
  $("#rules-empty").hidden = rules.rules.length > 0;
  reconcile($("#history"), changes, (change) => String(change.version), (change) => {
    const item = html("li", {});
    item.append(html("span", { class: "version" }, `v${change.version}`), " ",
                html("time", { datetime: change.at }, fmt.dateTime(change.at)), " ",
                html("span", { class: "actor" }, change.actor), " ",
                change.action === "set"
                  ? `set ${change.topic}: ${ruleDetails(change.before)} → ${ruleDetails(change.after)}`
                  : `removed the rule for ${change.topic} (was ${ruleDetails(change.before)})`);
    return item;
  }, () => {});
}

// ---- actions -----------------------------------------------------------------------------------

function say(text) {
  $("#action-message").textContent = text;
}

async function togglePause() {
  const link = selectedLink();
  if (!link) return;
  const action = link.state === "paused" ? "resume" : "pause";
  const headers = token() ? { Authorization: `Bearer ${token()}` } : {};
  try {
    const response = await fetch(`/v1/links/${encodeURIComponent(link.id)}/${action}`, { method: "POST", headers });
    if (response.ok) {
      say(`${link.id} ${action === "pause" ? "paused" : "resumed"}; workers follow at their next heartbeat.`);
    } else if (response.status === 401) {
      say("Pausing and resuming need the coordinator's API token: enter it under “API token”.");
    } else {
      say(`The coordinator refused: ${(await response.json()).detail}`);
    }
  } catch (error) {
    say(`Could not reach the coordinator: ${error.message}`);
  }
}

function moveInLinkList(step) {
  const buttons = [...document.querySelectorAll("#link-list button")];
  const at = buttons.indexOf(document.activeElement);
  const next = buttons[Math.max(0, Math.min(buttons.length - 1, at + step))];
  next.focus();
  next.click();
}

function onKey(event) {
  const typing = event.target.matches("input, textarea");
  if (event.key === "Escape") {
    if (typing) {
      event.target.blur();
      return;
    }
    if (view.topic) select(view.link);
    else if (view.link) select(null);
    return;
  }
  if (typing || event.altKey || event.ctrlKey || event.metaKey) return;
  if (event.key === "/") {
    event.preventDefault();
    $("#topic-filter").focus();
  } else if (event.key === "p" && view.link) {
    togglePause();
  } else if ((event.key === "ArrowDown" || event.key === "ArrowUp") && event.target.closest("#link-list")) {
    event.preventDefault();
    moveInLinkList(event.key === "ArrowDown" ? 1 : -1);
  }
}

function start() {
  document.addEventListener("keydown", onKey);
  $("#pause-button").addEventListener("click", togglePause);
  $("#back-button").addEventListener("click", () => select(null));
  $("#topic-filter").addEventListener("input", (event) => {
    view.filter = event.target.value;
    render();
  });
  const stream = connect({ url: "/v1/events", since: () => view.lastAt, token, onEvent, onStatus: status });
  $("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("#token-input").value.trim());
    $("#token-input").value = "";
    say("Token set for this browser tab.");
    stream.retryNow();
  });
  $("#token-forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    say("Token forgotten.");
  });
}

start();
