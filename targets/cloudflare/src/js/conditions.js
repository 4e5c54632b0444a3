
// ---- match conditions (language 1.1) ----
// A route's `cond`: `h` header name (lower case) -> value, compared with
// the header as the Worker sees it (repeated lines joined by ", ": the
// declared approximation); `q` query name -> value, the first part of
// the raw query whose percent-decoded name is the name, its value
// percent-decoded, compared byte for byte (`+` is a plus sign).

const CONDITION_UTF8 = new TextEncoder();

// The bytes of `s` with %XX decoded (a `%` without two hex digits is
// itself) and everything else UTF-8 encoded.
function conditionBytes(s) {
  const out = [];
  for (let i = 0; i < s.length; i++) {
    const h = s.substr(i + 1, 2);
    if (s[i] === "%" && /^[0-9A-Fa-f]{2}$/.test(h)) {
      out.push(parseInt(h, 16));
      i += 2;
    } else {
      const cp = s.codePointAt(i);
      if (cp > 0xffff) i++;
      out.push(...CONDITION_UTF8.encode(String.fromCodePoint(cp)));
    }
  }
  return out;
}

function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function firstQueryValue(query, name) {
  const want = Array.from(CONDITION_UTF8.encode(name));
  for (const part of (query || "").split("&")) {
    const eq = part.indexOf("=");
    const k = eq < 0 ? part : part.slice(0, eq);
    if (sameBytes(conditionBytes(k), want)) return eq < 0 ? "" : part.slice(eq + 1);
  }
  return null;
}

function conditionsHold(cond, request, S) {
  for (const [name, value] of cond.h) {
    if (request.headers.get(name) !== value) return false;
  }
  for (const [name, value] of cond.q) {
    const v = firstQueryValue(S.query, name);
    if (v === null || !sameBytes(conditionBytes(v), Array.from(CONDITION_UTF8.encode(value)))) {
      return false;
    }
  }
  return true;
}
