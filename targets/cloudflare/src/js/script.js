// ---- script (phases 8 and 13): the checks the script IR asks for ----
// The functions compiled from each script call these where JavaScript
// alone would not fail (or would fail differently) as the IR says.

const SC_MAX_LIST = 100;
const SC_MAX_STRING = 65536;
const SC_NULL_BODY = [101, 204, 205, 304];

// A run-time failure at a site of the script (-1: none).
class ScriptFail {
  constructor(site, reason) {
    this.site = site;
    this.reason = reason;
  }
}

// An object literal: its entries as written (a later duplicate wins, the
// first keeps its place), no prototype lookups, `[object Object]` as text.
class ScObj {
  constructor(e) {
    this.e = e;
  }
  [Symbol.toPrimitive]() {
    return "[object Object]";
  }
}

function scKind(v) {
  if (v === undefined) return "undefined";
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (v instanceof ScObj) return "an object";
  return typeof v === "string" ? "a string" : typeof v === "number" ? "a number" : "a boolean";
}

function scGet(o, key) {
  for (let i = o.e.length - 1; i >= 0; i--) if (o.e[i][0] === key) return o.e[i][1];
  return undefined;
}

// Bytes of UTF-8 (strings here are well-formed: a pair counts 2 + 2).
function scBytes(s) {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) n += c >= 0x800 && (c < 0xd800 || c > 0xdfff) ? 2 : 1;
  }
  return n;
}

function scCheck(s, site) {
  if (s.length * 3 > SC_MAX_STRING && (s.length > SC_MAX_STRING || scBytes(s) > SC_MAX_STRING)) {
    throw new ScriptFail(site, "a string grew past " + SC_MAX_STRING + " bytes");
  }
  return s;
}

function scAdd(a, b, site) {
  const r = a + b;
  return typeof r === "string" ? scCheck(r, site) : r;
}

// Half of a surrogate pair, cut off by a slice or an index, becomes
// U+FFFD (only the ends of a piece of a well-formed string can be one).
function scWf(s) {
  if (s.length === 0) return s;
  const a = s.charCodeAt(0);
  const z = s.charCodeAt(s.length - 1);
  if (a >= 0xdc00 && a <= 0xdfff) s = "\ufffd" + s.slice(1);
  if (z >= 0xd800 && z <= 0xdbff) s = s.slice(0, -1) + "\ufffd";
  return s;
}

function scStr(t, method, site) {
  if (typeof t !== "string") throw new ScriptFail(site, "`" + method + "` is a string method, called on " + scKind(t));
  return t;
}

function scStartsWith(t, a, site) {
  return scStr(t, "startsWith", site).startsWith(String(a));
}

function scEndsWith(t, a, site) {
  return scStr(t, "endsWith", site).endsWith(String(a));
}

function scIncludes(t, a, site) {
  if (Array.isArray(t)) return t.includes(a);
  return scStr(t, "includes", site).includes(String(a));
}

function scLower(t, site) {
  return scCheck(scStr(t, "toLowerCase", site).toLowerCase(), site);
}

function scUpper(t, site) {
  return scCheck(scStr(t, "toUpperCase", site).toUpperCase(), site);
}

function scTrim(t, site) {
  return scStr(t, "trim", site).trim();
}

function scSlice(t, a, b, site) {
  return scWf(scStr(t, "slice", site).slice(a, b));
}

function scSplit(t, sep, limit, site) {
  const s = scStr(t, "split", site);
  const lim = limit === undefined ? 4294967295 : limit >>> 0;
  let parts;
  if (sep === undefined) {
    parts = lim === 0 ? [] : [s];
  } else {
    const by = String(sep);
    parts = s.split(by, Math.min(lim, SC_MAX_LIST + 1));
    if (by === "") parts = parts.map(scWf);
  }
  if (parts.length > SC_MAX_LIST) throw new ScriptFail(site, "split() gave more than " + SC_MAX_LIST + " items");
  return parts;
}

function scLen(t, site) {
  if (typeof t === "string" || Array.isArray(t)) return t.length;
  if (t instanceof ScObj) return scGet(t, "length");
  if (t === undefined || t === null) throw new ScriptFail(site, "cannot read `length` of " + scKind(t));
  return undefined;
}

function scIndex(t, i, site) {
  if (t === undefined || t === null) throw new ScriptFail(site, "cannot index " + scKind(t));
  if (t instanceof ScObj) return scGet(t, String(i));
  // A canonical array index string ("1", not "01" or "1.0") reads item 1.
  if (typeof i === "string" && /^(0|[1-9][0-9]{0,14})$/.test(i)) i = Number(i);
  if (typeof i !== "number" || !Number.isInteger(i) || i < 0) return undefined;
  if (Array.isArray(t)) return i < t.length ? t[i] : undefined;
  if (typeof t === "string") return i < t.length ? scWf(t[i]) : undefined;
  return undefined;
}

function scProp(t, key, site) {
  if (t instanceof ScObj) return scGet(t, key);
  if (t === undefined || t === null) throw new ScriptFail(site, "cannot read `" + key + "` of " + scKind(t));
  return undefined;
}

function scList(v, site) {
  if (!Array.isArray(v)) throw new ScriptFail(site, "for ... of needs a list, got " + scKind(v));
  if (v.length > SC_MAX_LIST) throw new ScriptFail(site, "a list grew past " + SC_MAX_LIST + " items");
  return v;
}

function scCtxGet(S, key) {
  return S.vars === undefined ? undefined : S.vars.get(key);
}

function scCtxSet(S, key, v) {
  if (S.vars === undefined) S.vars = new Map();
  if (v === undefined || v === null) S.vars.delete(key);
  else S.vars.set(key, String(v));
}

// Header names as the reader takes them: any case; not a name, no value.
function scHeader(H, name) {
  const n = String(name).replace(/[A-Z]+/g, (c) => c.toLowerCase());
  return TOKEN.test(n) ? H.get(n) : null;
}

// A header name the script writes: an HTTP token, lower-cased.
function scName(n, site) {
  const s = String(n);
  if (s.length > 256 || !TOKEN.test(s)) {
    throw new ScriptFail(site, "`" + s + "` is not a header name: use letters, digits and `-` (an HTTP token)");
  }
  return s.replace(/[A-Z]+/g, (c) => c.toLowerCase());
}

// A header value the script writes: printable ASCII and tabs only.
function scValue(name, v, site) {
  const s = String(v);
  if (!/^[\t\x20-\x7e]*$/.test(s)) {
    throw new ScriptFail(site, "header `" + name + "`: a header value may hold printable ASCII only: no line breaks or control characters");
  }
  return s;
}

function scSetHeader(H, name, v, site) {
  H.set(name, scValue(name, v, site));
}

function scSetPath(S, p, site) {
  const s = String(p);
  if (!s.startsWith("/") || !/^[\t\x20-\x7e]*$/.test(s) || /[?#]/.test(s)) {
    throw new ScriptFail(site, "req.setPath() takes a path that starts with `/`, in printable ASCII, without `?` or `#`");
  }
  S.scriptPath = s;
}

function scLog(id, m) {
  console.log("gatefold: script `" + id + "`: " + String(m));
}

// `+` in `%XX` escapes decoded as bytes, then UTF-8 (lossy), as
// URLSearchParams decodes a query.
function scFormDecode(s) {
  // ignoreBOM: a leading U+FEFF is part of the value, not a byte-order mark.
  return new TextDecoder("utf-8", { ignoreBOM: true }).decode(percentBytes(s, true));
}

// The first value of a query parameter, or null.
function scQuery(S, name) {
  if (S.query === null) return null;
  const want = String(name);
  for (const pair of S.query.split("&")) {
    // Empty pairs (`&&`, a trailing `&`) are skipped, as URLSearchParams does.
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    if (scFormDecode(eq < 0 ? pair : pair.slice(0, eq)) === want) {
      return scFormDecode(eq < 0 ? "" : pair.slice(eq + 1));
    }
  }
  return null;
}

function scStatus(v, site) {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 100 || n > 599) {
    throw new ScriptFail(site, "respond() status must be an integer from 100 to 599, got " + String(n));
  }
  return n;
}

// JSON of a respond() body: keys in JavaScript's order (array indexes
// ascending, then the rest where first written; a duplicate keeps the first
// place, the last value), `undefined` members left out.
function scJson(v) {
  if (v === undefined || v === null) return "null";
  if (Array.isArray(v)) return "[" + v.map((x) => scJson(x)).join(",") + "]";
  if (v instanceof ScObj) {
    const isIndex = (k) => /^(0|[1-9][0-9]{0,9})$/.test(k) && Number(k) < 4294967295;
    const keys = [...new Set(v.e.map(([k]) => k))];
    const ordered = keys.filter(isIndex).sort((a, b) => Number(a) - Number(b)).concat(keys.filter((k) => !isIndex(k)));
    const out = [];
    for (const k of ordered) {
      const x = scGet(v, k);
      if (x !== undefined) out.push(JSON.stringify(k) + ":" + scJson(x));
    }
    return "{" + out.join(",") + "}";
  }
  return JSON.stringify(v);
}

function scRespond(status, body, headers, site) {
  let text = null;
  const h = new Headers();
  if (Array.isArray(body) || body instanceof ScObj) {
    text = scJson(body);
    h.set("content-type", "application/json");
  } else if (body !== undefined && body !== null) {
    text = String(body);
    h.set("content-type", "text/plain; charset=utf-8");
  }
  if (headers instanceof ScObj) {
    for (const [k, v] of headers.e) {
      const name = scName(k, site);
      h.set(name, scValue(name, v, site));
    }
  } else if (headers !== undefined && headers !== null) {
    throw new ScriptFail(site, "respond() headers must be an object, got " + scKind(headers));
  }
  return new Response(SC_NULL_BODY.includes(status) ? null : text, { status, headers: h });
}

// A failure, logged with its place in the spec.
function scFailed(side, s, e) {
  const where = e instanceof ScriptFail && e.site >= 0 && e.site < s[2].length ? s[2][e.site] : s[3];
  const reason = e instanceof ScriptFail ? e.reason : String(e && e.message ? e.message : e);
  console.error("gatefold: " + side + " script of `" + s[1] + "` failed at " + where + ": " + reason);
  return errorResponse(500, "script failed");
}

// Phase 8: the route's request scripts, in order; an answer (respond()
// or a failure) or null to go on.
function requestScripts(route, request, S, up) {
  for (const s of route.sreq) {
    try {
      const answer = s[0](up.headers, S, request.method);
      if (answer !== undefined) return answer;
    } catch (e) {
      return scFailed("request", s, e);
    }
  }
  return null;
}

// Phase 13, after response-headers: false when the script failed.
function responseScript(s, resp, S) {
  try {
    s[0](resp.headers, S, resp.status);
    return true;
  } catch (e) {
    scFailed("response", s, e);
    return false;
  }
}
