// Small inline SVG line charts over the last minutes. The SVG stretches to its box
// (preserveAspectRatio="none", non-scaling strokes), so labels live in HTML beside it.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 300;
const HEIGHT = 60;
const GAP_S = 5; // points further apart than this were not watched in between: the line breaks

export function chart(className) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("class", `chart ${className || ""}`);
  svg.setAttribute("aria-hidden", "true");
  for (const part of ["area", "line"]) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("class", part);
    path.setAttribute("vector-effect", "non-scaling-stroke");
    svg.append(path);
  }
  return svg;
}

// rows: [[t, v0, v1, ...], ...] oldest first; column: which value; window: [from, to] in seconds.
// Returns the largest value drawn, for the caller's scale label.
export function draw(svg, rows, column, [from, to], ceiling = 0) {
  const values = rows.filter((row) => row[0] >= from && row[column] != null);
  const top = Math.max(ceiling, ...values.map((row) => row[column])) || 1;
  const x = (t) => ((t - from) / (to - from)) * WIDTH;
  const y = (v) => HEIGHT - 2 - (v / top) * (HEIGHT - 4);
  const runs = [];
  let run = [];
  let previous = null;
  for (const row of values) {
    if (previous != null && row[0] - previous > GAP_S && run.length) {
      runs.push(run);
      run = [];
    }
    run.push([x(row[0]), y(row[column])]);
    previous = row[0];
  }
  if (run.length) runs.push(run);
  const line = runs.map((points) => `M${points.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join("L")}`);
  const area = runs.filter((points) => points.length > 1).map((points) => {
    const [first, last] = [points[0], points[points.length - 1]];
    return `M${first[0].toFixed(1)},${HEIGHT}L${points.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join("L")}` +
      `L${last[0].toFixed(1)},${HEIGHT}Z`;
  });
  svg.querySelector(".line").setAttribute("d", line.join(""));
  svg.querySelector(".area").setAttribute("d", area.join(""));
  return values.length ? top : null;
}
