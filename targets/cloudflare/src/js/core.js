// ---- core: request model, dispatch, phases (always present) ----

const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"];
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

// The bit of a method in the masks the router's groups hold (256: any
// other method), as the compiler's MethodSet numbers them.
function methodBit(m) {
  const i = METHODS.indexOf(m);
  return i < 0 ? 256 : 1 << i;
}

// A response the gateway makes itself: `{"error":"..."}` as JSON.
function errorResponse(status, message) {
  return new Response(JSON.stringify({ error: message }), {
    status,
    headers: { "content-type": "application/json" },
  });
}

const UTF8 = new TextEncoder();

// The bytes of `s` (UTF-8) with each `%XX` decoded; a `%` without two hex
// digits stays itself. `plus`: `+` is a space (forms, URLSearchParams).
// One decoder for key-auth's query key, `match` conditions and scripts'
// req.query(), which differ only in `+` and in how they read the bytes.
function percentBytes(s, plus) {
  const raw = UTF8.encode(s);
  const out = new Uint8Array(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i];
    if (plus && b === 0x2b) {
      out[n++] = 0x20;
    } else if (b === 0x25 && i + 2 < raw.length && isHex(raw[i + 1]) && isHex(raw[i + 2])) {
      out[n++] = parseInt(String.fromCharCode(raw[i + 1], raw[i + 2]), 16);
      i += 2;
    } else {
      out[n++] = b;
    }
  }
  return out.subarray(0, n);
}

function isHex(b) {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
}

function isUnreserved(c) {
  return /^[A-Za-z0-9\-._~]$/.test(c);
}

// policy-spec "The request path" (standard): decode unreserved escapes,
// merge slashes, resolve dot segments; null when the path is malformed.
function normalizePath(raw) {
  if (raw[0] !== "/") return null;
  let text = "";
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === "%") {
      const h = raw.substr(i + 1, 2);
      if (!/^[0-9A-Fa-f]{2}$/.test(h)) return null;
      const d = String.fromCharCode(parseInt(h, 16));
      text += isUnreserved(d) ? d : "%" + h;
      i += 2;
    } else {
      text += c;
    }
  }
  const out = [];
  let trailing = false;
  const parts = text.slice(1).split("/");
  for (let n = 0; n < parts.length; n++) {
    const seg = parts[n];
    const last = n + 1 === parts.length;
    if (seg === "" || seg === ".") {
      trailing = last;
    } else if (seg === "..") {
      if (out.pop() === undefined) return null;
      trailing = last;
    } else {
      out.push(seg);
      trailing = false;
    }
  }
  let path = out.length ? "/" + out.join("/") : "";
  if (trailing || path === "") path += "/";
  return path;
}

// `[v6]:port` or `v4:port` as workerd's `cf.clientIp` gives it, without
// the port; IPv4-mapped IPv6 as IPv4.
function stripPort(addr) {
  if (addr.startsWith("[")) {
    const end = addr.indexOf("]");
    addr = end < 0 ? addr : addr.slice(1, end);
  } else if (addr.indexOf(":") === addr.lastIndexOf(":")) {
    addr = addr.split(":")[0];
  }
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  return m ? m[1] : addr;
}

// The connection's peer: workerd reports it in `cf.clientIp`; on
// Cloudflare's edge the peer is the client Cloudflare names in
// `cf-connecting-ip` (set by the edge, never taken from the client).
function peerAddress(request) {
  const cf = request.cf;
  if (cf && typeof cf.clientIp === "string" && cf.clientIp !== "") return stripPort(cf.clientIp);
  return stripPort((request.headers.get("cf-connecting-ip") || "").trim());
}

// Headers promised by earlier phases: each replaces the response's own,
// except `vary`, which is added to.
function applyPromised(headers, promised) {
  const seen = new Set();
  for (const [k, v] of promised) {
    if (k !== "vary" && !seen.has(k)) headers.set(k, v);
    else headers.append(k, v);
    seen.add(k);
  }
}

function promise(S, name, value) {
  S.promised.push([name, value]);
}

// A response before phase 9: promised headers only.
function early(resp, S) {
  applyPromised(resp.headers, S.promised);
  return resp;
}

// A response from phase 9 on: promised headers, then phase 13.
function late(resp, route, S) {
  applyPromised(resp.headers, S.promised);
  if (route.resph) applyTransform(resp.headers, route.resph);
  // Phase 13 ends with the response script; its failure replaces the answer.
  if (route.sres && !responseScript(route.sres, resp, S)) return early(errorResponse(500, "script failed"), S);
  return resp;
}

// A well-formed incoming x-request-id is kept, otherwise a new one.
function requestId(headers) {
  const v = headers.get("x-request-id");
  if (v !== null && /^[A-Za-z0-9._:\-]{1,128}$/.test(v)) return v;
  return crypto.randomUUID();
}

// The request target as received: workerd puts the raw path and query
// after the scheme and the host header in `request.url`.
function rawTarget(url, host) {
  let rest = url.slice(url.indexOf("://") + 3);
  if (host !== null && rest.startsWith(host)) {
    rest = rest.slice(host.length);
  } else {
    const at = rest.indexOf("/");
    rest = at < 0 ? "/" : rest.slice(at);
  }
  const hash = rest.indexOf("#");
  if (hash >= 0) rest = rest.slice(0, hash);
  const q = rest.indexOf("?");
  return q < 0 ? [rest, null] : [rest.slice(0, q), rest.slice(q + 1)];
}

// The host without its port, lower-cased, for choosing a host class.
function hostWithoutPort(host) {
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    return end < 0 ? host : host.slice(0, end + 1);
  }
  const c = host.lastIndexOf(":");
  return c < 0 ? host : host.slice(0, c);
}

// The params a route's path binds: name -> the (normalized) segment.
function bindParams(pattern, path) {
  const parts = path.slice(1).split("/");
  const out = {};
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i][0] === "p") out[pattern[i][1]] = parts[i];
  }
  return out;
}

async function handle(request, env, ctx) {
  const S = { promised: [], env, ctx, consumer: null, preflight: false };
  if (GW.requestId) {
    S.requestId = requestId(request.headers);
    promise(S, "x-request-id", S.requestId);
  }
  let resp;
  try {
    resp = await pipeline(request, S);
  } catch (e) {
    // A defect or an exhausted isolate: never a stack trace to the client.
    console.error("gatefold worker:", e && e.stack ? e.stack : String(e));
    resp = early(errorResponse(500, "internal error"), S);
  }
  if (GW.server && !resp.headers.has("server")) resp.headers.set("server", GW.server);
  return resp;
}

async function pipeline(request, S) {
  const host = request.headers.get("host");
  const [rawPath, query] = rawTarget(request.url, host);
  const path = normalizePath(rawPath);
  // Two host lines arrive joined with a comma (RFC 9112 3.2: refused).
  if (path === null || host === null || host.includes(",")) {
    return early(errorResponse(400, "bad request"), S);
  }
  S.path = path;
  S.rawPath = rawPath; //@cache
  S.query = query;
  S.host = host;
  S.scheme = request.url.startsWith("https:") ? "https" : "http";
  S.peer = peerAddress(request);
  S.client = clientAddress(request, S.peer);
  const method = request.method;
  // ASCII only, as the compiler does: a Unicode lower-casing would let
  // a hostile host (the Kelvin sign) take another api's name.
  const hostKey = hostWithoutPort(host).replace(/[A-Z]+/g, (c) => c.toLowerCase());
  const group = route(hostKey, path);
  let found = null;
  if (group !== null && method === "OPTIONS" && request.headers.has("origin")) {
    const asked = request.headers.get("access-control-request-method");
    if (asked !== null && TOKEN.test(asked)) {
      const bit = methodBit(asked);
      const g = group.m.find((mg) => (mg[0] & bit) !== 0 && meets(mg, request, S));
      if (g !== undefined && R[g[1]].cors) {
        found = R[g[1]];
        S.preflight = true;
      }
    }
  }
  if (found === null) {
    if (group === null) return early(errorResponse(404, "no route"), S);
    const picked = pick(group, methodBit(method), request, S);
    if (picked === null) return early(errorResponse(404, "no route"), S);
    if (typeof picked === "string") {
      const resp = errorResponse(405, "method not allowed");
      resp.headers.set("allow", picked);
      return early(resp, S);
    }
    found = picked;
  }
  return runRoute(found, request, S);
}

// Whether a method group admits this request: unconditional (`[mask,
// route]`), or its route's `match` conditions hold (`[mask, route, 1]`).
function meets(mg, request, S) {
  return mg.length < 3 || conditionsHold(R[mg[1]].cond, request, S);
}

// The path group's answer for a method bit, as the dispatch view's
// `dispatch_with`: the first group holding the method that admits the
// request (a route), else the 405's `allow` (a string), or null (404)
// when the group has conditional routes and none admits the request.
function pick(group, bit, request, S) {
  let allowed = 0;
  let conditional = false;
  for (const mg of group.m) {
    const ok = meets(mg, request, S);
    if (ok && (mg[0] & bit) !== 0) return R[mg[1]];
    if (mg.length >= 3) conditional = true;
    if (ok) allowed |= mg[0];
  }
  if (!conditional) return group.allow || "";
  if (allowed === 0) return null;
  return METHODS.filter((_, i) => (allowed & (1 << i)) !== 0).join(", ");
}

async function runRoute(route, request, S) {
  // Phases 1-2.
  if (route.ipf && !ipAllowed(route.ipf, S.client)) return early(errorResponse(403, "forbidden"), S);
  if (route.cors) {
    const answer = corsFilter(route.cors, request, S);
    if (answer) return early(answer, S);
  }
  // Phase 3: the declared length; bytes received are counted when read.
  const length = request.headers.get("content-length");
  if (length !== null && /^\d+$/.test(length) && Number(length) > route.maxBody) {
    return early(errorResponse(413, "payload too large"), S);
  }
  // Phases 4-9.
  const up = { headers: new Headers(request.headers), query: S.query, path: S.path };
  if (route.auth) {
    const refused = await authenticate(route.auth, request, S, up);
    if (refused) return early(refused, S);
  }
  if (route.acl && !aclAdmits(route.acl, S.consumer)) return early(errorResponse(403, "forbidden"), S);
  if (route.rate) {
    const refused = await rateLimit(route.rate, request, S);
    if (refused) return early(refused, S);
  }
  // deprecation: promised from phase 7 on, so on every later answer and
  // on no refusal before it.
  if (route.dep) S.promised.push(...route.dep);
  // Phase 8: request scripts change `up` (headers, the path) or answer.
  if (route.sreq) {
    const answer = requestScripts(route, request, S, up);
    if (answer !== null) return early(answer, S);
  }
  if (route.mock) return late(mockResponse(route.mock), route, S);
  if (route.redirect) {
    const resp = redirectResponse(route, S);
    return resp.status === 400 ? early(resp, S) : late(resp, route, S);
  }
  if (!route.proxy) return late(errorResponse(502, "bad gateway"), route, S);
  if (route.cache) return late(await cached(route, request, S, up), route, S); //@cache
  return late(await proxy(route, request, S, up), route, S);
}

export default {
  fetch(request, env, ctx) {
    return handle(request, env, ctx);
  },
};
