// ---- proxy (phases 10 and 12): upstream request, balancing, retries ----

const HOP_BY_HOP = ["connection", "te", "trailer", "transfer-encoding", "upgrade", "proxy-authenticate", "keep-alive", "proxy-connection"];
const NO_BODY = ["GET", "HEAD"];
const IDEMPOTENT = ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"];
const TOO_LARGE = {};
// Per isolate: round-robin positions and requests in flight per target.
const turns = new Map();
const inFlight = new Map();

function stripHopByHop(h) {
  const named = h.get("connection");
  if (named !== null) {
    for (const n of named.split(",")) {
      const t = n.trim();
      if (TOKEN.test(t)) h.delete(t);
    }
  }
  for (const n of HOP_BY_HOP) h.delete(n);
}

// The body, read whole (bounded by the route's limit): TOO_LARGE past it.
async function readBody(request, max) {
  if (request.body === null) return null;
  return readStream(request.body, max);
}

// A stream read whole into bytes; TOO_LARGE past `max` bytes (the rest is
// cancelled). A failing read throws.
async function readStream(stream, max) {
  const reader = stream.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => {});
      return TOO_LARGE;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

function fnv1a(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

// A target of upstream `name` not tried yet, or -1.
function pickTarget(name, headers, tried) {
  const u = UP[name];
  const free = [];
  for (let i = 0; i < u.targets.length; i++) if (!tried.includes(i)) free.push(i);
  if (free.length === 0) return -1;
  if (u.balance[0] === "hash") {
    const v = headers.get(u.balance[1]);
    if (v !== null) return free[fnv1a(v) % free.length];
  }
  if (u.balance[0] === "least") {
    let best = free[0];
    for (const i of free) {
      if ((inFlight.get(name + i) || 0) < (inFlight.get(name + best) || 0)) best = i;
    }
    return best;
  }
  // Weighted round robin over the free targets.
  const total = free.reduce((s, i) => s + u.targets[i].weight, 0);
  const turn = turns.get(name) || 0;
  turns.set(name, turn + 1);
  let roll = turn % total;
  for (const i of free) {
    if (roll < u.targets[i].weight) return i;
    roll -= u.targets[i].weight;
  }
  return free[0];
}

function chooseDestination(route, headers) {
  const s = route.proxy.split;
  if (!s) return route.proxy.to[0];
  for (const [name, value, dest] of s.match) {
    if (headers.get(name) === value) return route.proxy.to[dest];
  }
  let roll = Math.floor(Math.random() * s.total);
  for (const [weight, dest] of s.weighted) {
    if (roll < weight) return route.proxy.to[dest];
    roll -= weight;
  }
  return route.proxy.to[s.weighted[0][1]];
}

function upstreamPath(route, S) {
  const p = route.upPath;
  // A request script's `req.setPath` is the path phase 10 starts from.
  const base = S.scriptPath !== undefined ? S.scriptPath : S.path;
  if (!p) return base;
  if (p.template) {
    const params = bindParams(route.pat, S.path);
    let out = "";
    for (const seg of p.template) out += "/" + (seg[0] === "l" ? seg[1] : params[seg[1]] || "");
    return out === "" ? "/" : out;
  }
  let rest = base;
  if (p.strip !== null && p.strip !== "/") {
    if (rest.startsWith(p.strip) && (rest.length === p.strip.length || rest[p.strip.length] === "/")) {
      rest = rest.slice(p.strip.length);
    }
  }
  let out = p.add !== null && p.add !== "/" ? p.add + rest : rest;
  return out === "" ? "/" : out;
}

async function proxy(route, request, S, up) {
  // Phase 10.
  const h = up.headers;
  stripHopByHop(h);
  h.delete("forwarded");
  h.delete("x-real-ip");
  h.delete("host");
  h.delete("cf-connecting-ip");
  h.set("x-forwarded-host", S.host);
  const xff = h.get("x-forwarded-for");
  h.set("x-forwarded-for", (xff !== null ? xff + ", " : "") + S.peer);
  h.set("x-forwarded-proto", S.scheme);
  if (S.requestId !== undefined) h.set("x-request-id", S.requestId);
  if (route.auth) stripCredentials(route.auth, h);
  if (route.reqh) applyTransform(h, route.reqh);
  const path = upstreamPath(route, S);
  const target = path + (up.query !== null ? "?" + up.query : "");
  // Phase 12.
  const dest = chooseDestination(route, h);
  const body = await readBody(request, route.maxBody);
  if (body === TOO_LARGE) return errorResponse(413, "payload too large");
  let left = dest.retry ? dest.retry.attempts : 0;
  const on = dest.retry ? dest.retry.on : [];
  const idempotent = IDEMPOTENT.includes(request.method);
  // preserve-host: the client's host, unless phase 10 set one (see the
  // capability note: Cloudflare decides whether the origin gets it).
  if (route.keepHost && !h.has("host")) h.set("host", S.host);
  const hostSet = h.has("host");
  if (route.mirror) mirrorCopy(route.mirror, request.method, target, h, body, S); //@mirror
  const tried = [];
  let failure = "other";
  for (;;) {
    const i = pickTarget(dest.upstream, h, tried);
    if (i < 0) {
      return tried.length === 0 ? errorResponse(503, "no healthy upstream") : failureResponse(failure);
    }
    const t = UP[dest.upstream].targets[i];
    // `h` itself goes (fetch() copies it): no copy per attempt. The
    // target's host is set for this attempt only, so the next pick (a
    // hash on a header) sees the headers as before.
    if (!hostSet) h.set("host", t.authority);
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), dest.read);
    const key = dest.upstream + i;
    inFlight.set(key, (inFlight.get(key) || 0) + 1);
    let resp = null;
    try {
      resp = await fetch(t.base + target, {
        method: request.method,
        headers: h,
        // fetch() refuses a body on GET and HEAD (declared).
        body: body !== null && body.byteLength > 0 && !NO_BODY.includes(request.method) ? body : null,
        redirect: "manual",
        signal: ctl.signal,
      });
      failure = null;
    } catch (e) {
      failure = ctl.signal.aborted ? "timeout" : "connect";
    } finally {
      clearTimeout(timer);
      if (!hostSet) h.delete("host");
      inFlight.set(key, inFlight.get(key) - 1);
    }
    tried.push(i);
    if (resp !== null) {
      const retry = on.includes(String(resp.status)) && idempotent;
      if (!(retry && left > 0)) return new Response(resp.body, resp);
    } else {
      const retry =
        failure === "connect" ? on.includes("connect-failure") : on.includes("timeout") && idempotent;
      if (!(retry && left > 0)) return failureResponse(failure);
    }
    left -= 1;
    // Another target first; once each was tried, any again.
    if (tried.length >= UP[dest.upstream].targets.length) tried.length = 0;
  }
}

function failureResponse(failure) {
  return failure === "timeout" ? errorResponse(504, "upstream timeout") : errorResponse(502, "bad gateway");
}
