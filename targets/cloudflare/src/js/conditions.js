
// ---- match conditions (language 1.1) ----
// A route's `cond`: `h` header name (lower case) -> value, compared with
// the header as the Worker sees it (repeated lines joined by ", ": the
// declared approximation); `q` query name -> value, the first part of
// the raw query whose percent-decoded name is the name, its value
// percent-decoded, compared byte for byte (`+` is a plus sign).

function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function firstQueryValue(query, name) {
  const want = UTF8.encode(name);
  for (const part of (query || "").split("&")) {
    const eq = part.indexOf("=");
    const k = eq < 0 ? part : part.slice(0, eq);
    if (sameBytes(percentBytes(k, false), want)) return eq < 0 ? "" : part.slice(eq + 1);
  }
  return null;
}

function conditionsHold(cond, request, S) {
  for (const [name, value] of cond.h) {
    if (request.headers.get(name) !== value) return false;
  }
  for (const [name, value] of cond.q) {
    const v = firstQueryValue(S.query, name);
    if (v === null || !sameBytes(percentBytes(v, false), UTF8.encode(value))) {
      return false;
    }
  }
  return true;
}
