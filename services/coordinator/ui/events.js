// Server-sent events read with fetch rather than EventSource, because EventSource cannot send the
// Authorization header a coordinator with AMITY_READ_REQUIRES_TOKEN asks for. Reconnects by itself:
// at once when the server ends a stream (it does every half minute), with backoff after errors, and
// when nothing arrived for a while (a silent proxy or a suspended laptop).

const SILENCE_MS = 10000;
const MAX_BACKOFF_MS = 10000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function connect({ url, since, token, onEvent, onStatus }) {
  let backoff = 1000;
  let wake = null;

  async function once() {
    const controller = new AbortController();
    let watchdog = setTimeout(() => controller.abort(), SILENCE_MS);
    const heard = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => controller.abort(), SILENCE_MS);
    };
    try {
      const after = since();
      const target = after == null ? url : `${url}?since=${encodeURIComponent(after)}`;
      const headers = { Accept: "text/event-stream" };
      const secret = token();
      if (secret) headers.Authorization = `Bearer ${secret}`;
      const response = await fetch(target, { headers, signal: controller.signal, cache: "no-store" });
      if (response.status === 401) {
        onStatus("unauthorized", "this coordinator wants an API token to read: enter it under “API token”");
        return "unauthorized";
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      onStatus("live", "live");
      backoff = 1000;
      await readEvents(response.body, (kind, data) => {
        heard();
        onEvent(kind, data);
      });
      return "ended";
    } finally {
      clearTimeout(watchdog);
      controller.abort();
    }
  }

  async function run() {
    for (;;) {
      try {
        if ((await once()) === "unauthorized") {
          await new Promise((resolve) => {
            wake = resolve;
            setTimeout(resolve, 5000);
          });
        }
      } catch (error) {
        onStatus("reconnecting", `reconnecting… (${error.name === "AbortError" ? "no news" : error.message})`);
        await sleep(backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    }
  }

  run();
  return { retryNow: () => wake && wake() };
}

async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const parsed = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (parsed) onEvent(parsed.kind, parsed.data);
    }
  }
}

function parseEvent(block) {
  let kind = "message";
  const data = [];
  for (const line of block.split("\n")) {
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") kind = value;
    else if (field === "data") data.push(value);
  }
  return data.length ? { kind, data: data.join("\n") } : null;
}
