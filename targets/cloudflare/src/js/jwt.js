// ---- jwt (phase 6): a bearer token verified with WebCrypto ----
// (`UTF8`, a TextEncoder, is core.js's.)

function b64url(s) {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) return null;
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

// JSON as serde_json reads it into a `Value` (what jsonwebtoken reads a
// token with), the same rules as the Lua core the NGINX and Envoy targets
// share: strict grammar, valid UTF-8, no raw control characters or lone
// surrogates, finite numbers that keep their text (integers that fit
// u64/i64 stay integers), at most 127 levels, objects keep the last of
// duplicate keys and remember which were duplicated. null when malformed.
const JNULL = { json: "null" };
class JNum {
  constructor(text, value, integer) {
    this.text = text;
    this.value = value;
    this.integer = integer;
  }
}
class JObj {
  constructor() {
    this.map = new Map();
    this.dup = new Set();
  }
}

function jsonKind(v) {
  if (v === undefined) return "nil";
  if (v === JNULL) return "null";
  if (v instanceof JNum) return "number";
  if (v instanceof JObj) return "object";
  if (Array.isArray(v)) return "array";
  return typeof v; // "string" | "boolean"
}

const U64_MAX = 18446744073709551615n;
const I64_MIN = -9223372036854775808n;

function jsonNumber(text) {
  if (!/[.eE]/.test(text) && text !== "-0") {
    const n = BigInt(text);
    if (n >= I64_MIN && n <= U64_MAX) return new JNum(text, Number(text), true);
  }
  const f = Number(text);
  if (!Number.isFinite(f)) throw new Error("number out of range");
  return new JNum(text, f, false);
}

function jsonParse(s) {
  let i = 0;
  const ws = () => {
    while (i < s.length && " \t\n\r".includes(s[i])) i++;
    return s[i];
  };
  const fail = (why) => {
    throw new Error(why);
  };
  const hex4 = () => {
    const h = s.slice(i, i + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) fail("hex");
    i += 4;
    return parseInt(h, 16);
  };
  const str = () => {
    i++;
    let out = "";
    for (;;) {
      const c = s.charCodeAt(i);
      if (Number.isNaN(c)) fail("eof");
      if (c === 34) {
        i++;
        return out;
      }
      if (c === 92) {
        const e = s[i + 1];
        i += 2;
        if (e === "u") {
          let cp = hex4();
          if (cp >= 0xd800 && cp <= 0xdbff) {
            if (s.slice(i, i + 2) !== "\\u") fail("lone surrogate");
            i += 2;
            const lo = hex4();
            if (lo < 0xdc00 || lo > 0xdfff) fail("lone surrogate");
            cp = 0x10000 + (cp - 0xd800) * 0x400 + (lo - 0xdc00);
          } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            fail("lone surrogate");
          }
          out += String.fromCodePoint(cp);
        } else {
          const esc = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" }[e];
          if (esc === undefined) fail("escape");
          out += esc;
        }
      } else if (c < 32) {
        fail("control character");
      } else {
        out += s[i];
        i++;
      }
    }
  };
  const num = () => {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(s.slice(i));
    if (m === null) fail("number");
    const next = s[i + m[0].length];
    if (next === "." || next === "e" || next === "E") fail("number");
    i += m[0].length;
    return jsonNumber(m[0]);
  };
  const value = (depth) => {
    const c = ws();
    if (c === "{" || c === "[") {
      // serde_json's recursion limit: 128 levels fail.
      if (depth + 1 >= 128) fail("depth");
      i++;
      if (c === "[") {
        const out = [];
        if (ws() === "]") {
          i++;
          return out;
        }
        for (;;) {
          out.push(value(depth + 1));
          const d = ws();
          i++;
          if (d === "]") return out;
          if (d !== ",") fail("array");
        }
      }
      const out = new JObj();
      if (ws() === "}") {
        i++;
        return out;
      }
      for (;;) {
        if (ws() !== '"') fail("key");
        const k = str();
        if (ws() !== ":") fail("colon");
        i++;
        const v = value(depth + 1);
        if (out.map.has(k)) out.dup.add(k);
        out.map.set(k, v);
        const d = ws();
        i++;
        if (d === "}") return out;
        if (d !== ",") fail("object");
      }
    }
    if (c === '"') return str();
    if (s.startsWith("true", i)) return (i += 4), true;
    if (s.startsWith("false", i)) return (i += 5), false;
    if (s.startsWith("null", i)) return (i += 4), JNULL;
    if (c === "-" || (c >= "0" && c <= "9")) return num();
    fail("value");
  };
  try {
    const v = value(0);
    if (ws() !== undefined) return null;
    return v;
  } catch (e) {
    return null;
  }
}

function jsonPart(s) {
  const bytes = b64url(s);
  if (bytes === null) return null;
  let text;
  try {
    // ignoreBOM keeps a leading U+FEFF, which JSON then refuses, as the
    // spec's parser does.
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch (e) {
    return null;
  }
  return jsonParse(text);
}

// serde_json's compact output of a `Value`: keys in byte (code point)
// order, floats in the shortest form that reads back, as ryu writes them.
function jsonFloat(x) {
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const sign = x < 0 ? "-" : "";
  const [m, e] = Math.abs(x).toExponential().split("e");
  const digits = m.replace(".", "");
  const exp = parseInt(e, 10);
  const len = digits.length;
  if (exp >= -5 && exp <= 15) {
    if (len - 1 <= exp) return sign + digits + "0".repeat(exp - len + 1) + ".0";
    if (exp >= 0) return sign + digits.slice(0, exp + 1) + "." + digits.slice(exp + 1);
    return sign + "0." + "0".repeat(-exp - 1) + digits;
  }
  const mant = len > 1 ? digits[0] + "." + digits.slice(1) : digits;
  return sign + mant + "e" + (exp < 0 ? "-" : "+") + Math.abs(exp);
}

function jsonString(s) {
  return (
    '"' +
    s.replace(/["\\\x00-\x1f]/g, (c) => {
      const map = { '"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r" };
      return map[c] || "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0");
    }) +
    '"'
  );
}

function byCodePoint(a, b) {
  const x = [...a];
  const y = [...b];
  for (let k = 0; k < Math.min(x.length, y.length); k++) {
    const d = x[k].codePointAt(0) - y[k].codePointAt(0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

function jsonEncode(v) {
  switch (jsonKind(v)) {
    case "string":
      return jsonString(v);
    case "boolean":
      return String(v);
    case "null":
      return "null";
    case "number":
      return v.integer ? v.text : jsonFloat(v.value);
    case "array":
      return "[" + v.map(jsonEncode).join(",") + "]";
  }
  const keys = [...v.map.keys()].sort(byCodePoint);
  return "{" + keys.map((k) => jsonString(k) + ":" + jsonEncode(v.map.get(k))).join(",") + "}";
}

// The header and claims as jsonwebtoken types them: these fields absent,
// null or strings (or lists of strings), none given twice.
const HEADER_STRINGS = ["typ", "cty", "jku", "kid", "x5u", "x5t", "x5t#S256", "url", "nonce", "enc", "zip"];
const HEADER_LISTS = ["x5c", "crit"];
const JWK_STRINGS = ["use", "alg", "kid", "x5u", "x5t", "x5t#S256"];
const JWK_LISTS = ["key_ops", "x5c"];

function typed(o, strings, lists) {
  for (const name of strings) {
    const t = jsonKind(o.map.get(name));
    if (o.dup.has(name) || (t !== "nil" && t !== "null" && t !== "string")) return false;
  }
  for (const name of lists) {
    const v = o.map.get(name);
    const t = jsonKind(v);
    if (o.dup.has(name)) return false;
    if (t === "array") {
      if (!v.every((x) => typeof x === "string")) return false;
    } else if (t !== "nil" && t !== "null") {
      return false;
    }
  }
  return true;
}

function headerOk(h, alg) {
  if (jsonKind(h) !== "object" || h.map.get("alg") !== alg || h.dup.has("alg")) return false;
  if (!typed(h, HEADER_STRINGS, HEADER_LISTS) || h.dup.has("jwk")) return false;
  // An embedded `jwk` is parsed (then ignored).
  const jwk = h.map.get("jwk");
  const t = jsonKind(jwk);
  return t === "nil" || t === "null" || (t === "object" && typed(jwk, JWK_STRINGS, JWK_LISTS));
}

// The claims jsonwebtoken's own validation reads: a duplicate of one, or
// a `sub` that is an array or object, fails the whole token.
const VALIDATED = ["exp", "nbf", "sub", "iss", "aud"];

function claimsOk(c, m, now) {
  if (jsonKind(c) !== "object") return false;
  if (VALIDATED.some((name) => c.dup.has(name))) return false;
  const tsub = jsonKind(c.map.get("sub"));
  if (tsub === "array" || tsub === "object") return false;
  const exp = c.map.get("exp");
  if (exp !== undefined && (jsonKind(exp) !== "number" || now >= exp.value + m.leeway)) return false;
  const nbf = c.map.get("nbf");
  if (nbf !== undefined && (jsonKind(nbf) !== "number" || now + m.leeway < nbf.value)) return false;
  if (m.issuer !== null && c.map.get("iss") !== m.issuer) return false;
  if (m.audiences.length > 0) {
    const aud = c.map.get("aud");
    const list = typeof aud === "string" ? [aud] : Array.isArray(aud) ? aud : [];
    if (!list.some((a) => typeof a === "string" && m.audiences.includes(a))) return false;
  }
  return true;
}

const ALGORITHMS = {
  HS256: { name: "HMAC", hash: "SHA-256" },
  RS256: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
  ES256: { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" },
};

// The verifying key, imported once per isolate and secret environment.
const jwtKeys = new Map();
async function jwtKey(m, env) {
  const cached = jwtKeys.get(m);
  if (cached !== undefined && cached.env === env) return cached.key;
  const alg = ALGORITHMS[m.alg];
  let key = null;
  try {
    if (m.secret !== undefined) {
      const secret = env[m.secret];
      if (typeof secret === "string" && secret !== "") {
        key = await crypto.subtle.importKey("raw", UTF8.encode(secret), alg, false, ["verify"]);
      }
    } else if (m.jwk !== undefined) {
      key = await crypto.subtle.importKey("jwk", m.jwk, alg, false, ["verify"]);
    } else {
      const pem = env[m.pemEnv];
      const body = typeof pem === "string" ? /-----BEGIN PUBLIC KEY-----([^-]*)-----END PUBLIC KEY-----/.exec(pem) : null;
      if (body !== null) {
        const der = Uint8Array.from(atob(body[1].replace(/\s+/g, "")), (c) => c.charCodeAt(0));
        key = await crypto.subtle.importKey("spki", der, alg, false, ["verify"]);
      }
    }
  } catch (e) {
    console.error("gatefold worker: jwt key unusable:", String(e));
    key = null;
  }
  jwtKeys.set(m, { env, key });
  return key;
}

// The token of `authorization: Bearer TOKEN` (scheme in any case), when
// the value is visible ASCII and tab only (http's HeaderValue::to_str).
function bearer(headers) {
  const v = headers.get("authorization");
  if (v === null || /[^\t\x20-\x7e]/.test(v)) return null;
  const sp = v.indexOf(" ");
  if (sp < 0 || v.slice(0, sp).toLowerCase() !== "bearer") return null;
  return v.slice(sp + 1).replace(/^[ \t]+|[ \t]+$/g, "");
}

// The token's claims (a JObj) when it verifies, else null.
async function verifyJwt(m, token, env) {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  const header = jsonPart(parts[0]);
  const sig = b64url(parts[2]);
  // One algorithm per key: a token naming another is refused.
  if (header === null || sig === null || !headerOk(header, m.alg)) return null;
  const key = await jwtKey(m, env);
  if (key === null) return null;
  const ok = await crypto.subtle
    .verify(ALGORITHMS[m.alg], key, sig, UTF8.encode(parts[0] + "." + parts[1]))
    .catch(() => false);
  if (!ok) return null;
  const claims = jsonPart(parts[1]);
  return claims !== null && claimsOk(claims, m, Date.now() / 1000) ? claims : null;
}

async function tryJwt(m, request, S, up) {
  const token = bearer(request.headers);
  const claims = token === null ? null : await verifyJwt(m, token, S.env);
  if (claims === null) return false;
  const name = claims.map.get(m.consumerClaim);
  S.consumer = typeof name === "string" && Object.prototype.hasOwnProperty.call(CONSUMERS, name) ? name : null;
  S.claimHeaders = [];
  for (const [claim, header] of m.claims) {
    const v = claims.map.get(claim);
    if (v === undefined) continue;
    const text = typeof v === "string" ? v : jsonEncode(v);
    // What is no header value (a line break, a control byte) is left out.
    if (!/[\x00-\x08\x0a-\x1f\x7f]/.test(text)) S.claimHeaders.push([header, text]);
  }
  return true;
}
