// Numbers as a person reads them at a glance: few digits, a unit, and a dash for "not known".

const counts = new Intl.NumberFormat("en", { maximumFractionDigits: 0 });
const compact = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 1 });

export const DASH = "–";

export function count(value) {
  if (value == null) return DASH;
  return Math.abs(value) < 100000 ? counts.format(value) : compact.format(value);
}

export function rate(value) {
  if (value == null) return DASH;
  if (value === 0) return "0";
  if (Math.abs(value) < 10) return value.toFixed(1);
  return count(Math.round(value));
}

export function seconds(value) {
  if (value == null) return DASH;
  if (value < 60) return `${value.toFixed(value < 10 ? 1 : 0)} s`;
  const minutes = Math.floor(value / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(value % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function bytes(value) {
  if (value == null) return DASH;
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let scaled = value;
  let unit = 0;
  while (Math.abs(scaled) >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    unit += 1;
  }
  return `${scaled.toFixed(unit === 0 || scaled >= 100 ? 0 : 1)} ${units[unit]}`;
}

export function clock(epochSeconds) {
  if (epochSeconds == null) return DASH;
  return new Date(epochSeconds * 1000).toLocaleTimeString([], { hour12: false });
}

export function dateTime(iso) {
  const when = new Date(iso);
  return `${when.toLocaleDateString()} ${when.toLocaleTimeString([], { hour12: false })}`;
}

// "loop 1,200 · max-hops 3", or `none` when nothing was counted for any reason.
export function byReason(reasons, none = DASH) {
  const entries = Object.entries(reasons || {}).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  return entries.length ? entries.map(([reason, n]) => `${reason} ${count(n)}`).join(" · ") : none;
}

export function sum(values) {
  return Object.values(values || {}).reduce((total, n) => total + n, 0);
}
