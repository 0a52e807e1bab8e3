// The topology as a graph: regions on a circle, each link an arrow curving to its own side, so
// that us→eu and eu→us never overlap. Drawn again only when regions or links come or go;
// otherwise only states and labels change, so keyboard focus stays where it was.

import { count, rate } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 400;
const heightFor = (regions) => (regions <= 2 ? 190 : 300);
const RADIUS = 30;
const BEND = 34;
const LAGGING_S = 30;

function element(name, attributes = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (parent) parent.append(node);
  return node;
}

function positions(names) {
  const h = heightFor(names.length);
  const centre = [W / 2, h / 2];
  if (names.length === 1) return { [names[0]]: centre };
  const orbit = names.length === 2 ? 130 : Math.min(W, h) / 2 - RADIUS - 12;
  const start = names.length === 2 ? Math.PI : -Math.PI / 2;
  return Object.fromEntries(names.map((name, i) => {
    const angle = start + (2 * Math.PI * i) / names.length;
    return [name, [centre[0] + orbit * Math.cos(angle), centre[1] + orbit * Math.sin(angle)]];
  }));
}

// A quadratic curve from the rim of one region to the rim of the other, bent to the right of travel.
function curve([x1, y1], [x2, y2]) {
  const [dx, dy] = [x2 - x1, y2 - y1];
  const length = Math.hypot(dx, dy) || 1;
  const [nx, ny] = [-dy / length, dx / length];
  const control = [(x1 + x2) / 2 + nx * BEND, (y1 + y2) / 2 + ny * BEND];
  const rim = (from, towards, gap) => {
    const [vx, vy] = [towards[0] - from[0], towards[1] - from[1]];
    const d = Math.hypot(vx, vy) || 1;
    return [from[0] + (vx / d) * gap, from[1] + (vy / d) * gap];
  };
  const start = rim([x1, y1], control, RADIUS + 2);
  const end = rim([x2, y2], control, RADIUS + 8);
  const label = [(start[0] + 2 * control[0] + end[0]) / 4, (start[1] + 2 * control[1] + end[1]) / 4];
  return { d: `M${start.join(",")} Q${control.join(",")} ${end.join(",")}`, label };
}

export function edgeClass(link, lagSeconds) {
  if (link.state === "running" && lagSeconds > LAGGING_S) return "lagging";
  return link.state;
}

export function describe(link, lagSeconds, perSecond = link.records_per_s) {
  const state = { running: "running", paused: "paused", unassigned: "no worker holds it",
                  degraded: "a region it joins is down",
                  retrying: `failing and retrying (${link.problem || "no reason given"})` }[link.state] || link.state;
  return `${link.source} to ${link.destination}: ${state}, ${rate(perSecond)} records per second, ` +
    `${count(link.lag_records)} records behind${lagSeconds > LAGGING_S ? ", lagging" : ""}`;
}

// live: { lag: Map link -> lag seconds, rates: Map link -> records per second now }
export function renderTopology(svg, topology, live, selected, onSelect) {
  const names = topology.regions.map((region) => region.name);
  const shape = JSON.stringify([names, topology.links.map((l) => [l.id, l.source, l.destination])]);
  if (svg.dataset.shape !== shape) build(svg, topology, names, onSelect);
  svg.dataset.shape = shape;
  for (const region of topology.regions) {
    const node = svg.querySelector(`g.region[data-region="${CSS.escape(region.name)}"]`);
    node.dataset.status = region.status;
    node.querySelector("title").textContent = `region ${region.name}: ${region.status}`;
  }
  for (const link of topology.links) {
    const lag = live.lag.get(link.id) || 0;
    const perSecond = live.rates.get(link.id) ?? link.records_per_s;
    const edge = svg.querySelector(`g.link[data-link="${CSS.escape(link.id)}"]`);
    edge.dataset.state = link.state;
    edge.setAttribute("class", `link ${edgeClass(link, lag)}${selected === link.id ? " selected" : ""}`);
    edge.setAttribute("aria-label", describe(link, lag, perSecond));
    edge.setAttribute("aria-pressed", String(selected === link.id));
    edge.querySelector("text").textContent = ["running", "degraded", "retrying"].includes(link.state)
      ? `${rate(perSecond)}/s` : link.state === "paused" ? "paused" : "no worker";
  }
}

function build(svg, topology, names, onSelect) {
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${W} ${heightFor(names.length)}`);
  const defs = element("defs", {}, svg);
  for (const kind of ["running", "lagging", "paused", "unassigned", "degraded", "retrying"]) {
    const marker = element("marker", { id: `arrow-${kind}`, viewBox: "0 0 10 10", refX: "8", refY: "5",
                                       markerWidth: "11", markerHeight: "11", markerUnits: "userSpaceOnUse", orient: "auto-start-reverse",
                                       class: `arrow ${kind}` }, defs);
    element("path", { d: "M0,0 L10,5 L0,10 z" }, marker);
  }
  const at = positions(names);
  const edges = element("g", { class: "links" }, svg);
  for (const link of topology.links) {
    if (!at[link.source] || !at[link.destination]) continue;
    const { d, label } = curve(at[link.source], at[link.destination]);
    const edge = element("g", { class: "link", "data-link": link.id, tabindex: "0", role: "button" }, edges);
    element("path", { class: "hit", d }, edge);
    element("path", { class: "wire", d }, edge);
    const text = element("text", { x: label[0].toFixed(1), y: label[1].toFixed(1), "text-anchor": "middle",
                                    "dominant-baseline": "middle" }, edge);
    text.textContent = "";
    edge.addEventListener("click", () => onSelect(link.id));
    edge.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        onSelect(link.id);
      }
    });
  }
  const nodes = element("g", { class: "regions" }, svg);
  for (const name of names) {
    const [x, y] = at[name];
    const node = element("g", { class: "region", "data-region": name, transform: `translate(${x},${y})` }, nodes);
    element("title", {}, node);
    element("circle", { r: RADIUS }, node);
    const text = element("text", { "text-anchor": "middle", "dominant-baseline": "central" }, node);
    text.textContent = name;
  }
}
