// ---- authentication (phases 4-6): any one method admits ----

// key -> consumer and user -> [password, consumer], read from the Worker's
// secret bindings (`env.NAME`) once per isolate.
let credentials = null;
function consumerIndex(env) {
  if (credentials !== null && credentials.env === env) return credentials;
  const byKey = new Map();
  const byUser = new Map();
  for (const [name, c] of Object.entries(CONSUMERS)) {
    for (const v of c.keys) {
      const key = env[v];
      if (typeof key === "string" && key !== "") byKey.set(key, name);
    }
    if (c.user !== null) {
      const p = env[c.password];
      if (typeof p === "string" && p !== "") byUser.set(c.user, [p, name]);
    }
  }
  credentials = { env, byKey, byUser };
  return credentials;
}

function percentDecode(s) {
  if (!s.includes("%")) return s;
  // ignoreBOM keeps a leading U+FEFF: it is part of the credential.
  return new TextDecoder("utf-8", { ignoreBOM: true }).decode(percentBytes(s, false));
}

function queryParam(query, name) {
  if (query === null) return null;
  for (const pair of query.split("&")) {
    const eq = pair.indexOf("=");
    const k = eq < 0 ? pair : pair.slice(0, eq);
    if (k === name) return percentDecode(eq < 0 ? "" : pair.slice(eq + 1));
  }
  return null;
}

function withoutParam(query, name) {
  if (query === null) return null;
  const kept = query.split("&").filter((pair) => {
    const eq = pair.indexOf("=");
    return (eq < 0 ? pair : pair.slice(0, eq)) !== name;
  });
  return kept.length ? kept.join("&") : null;
}

function sameSecret(a, b) {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    diff |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0);
  }
  return diff === 0;
}

function basicCredential(headers) {
  const v = headers.get("authorization");
  if (v === null) return null;
  const sp = v.indexOf(" ");
  if (sp < 0 || v.slice(0, sp).toLowerCase() !== "basic") return null;
  return v.slice(sp + 1).trim();
}

function tryMethod(m, request, S, index) {
  if (m.kind === "key") {
    const key = m.query ? queryParam(S.query, m.name) : request.headers.get(m.name);
    if (key === null || !index.byKey.has(key)) return false;
    S.consumer = index.byKey.get(key);
    return true;
  }
  // basic
  const b64 = basicCredential(request.headers);
  if (b64 === null || b64.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) return false;
  let text;
  try {
    const bin = atob(b64);
    // ignoreBOM keeps a leading U+FEFF: it is part of the user name.
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
  } catch (e) {
    return false;
  }
  const colon = text.indexOf(":");
  if (colon < 0) return false;
  const entry = index.byUser.get(text.slice(0, colon));
  if (entry === undefined || !sameSecret(entry[0], text.slice(colon + 1))) return false;
  S.consumer = entry[1];
  return true;
}

// Null when admitted (credentials then removed from what goes on), else
// the 401.
async function authenticate(a, request, S, up) {
  const index = consumerIndex(S.env);
  let admitted = false;
  for (const m of a.methods) {
    admitted = m.kind === "jwt" ? await tryJwt(m, request, S, up) : tryMethod(m, request, S, index);
    if (admitted) break;
  }
  // Claim headers never come from the client.
  for (const m of a.methods) {
    if (m.kind === "jwt") for (const [, header] of m.claims) up.headers.delete(header);
  }
  if (!admitted) {
    const resp = errorResponse(401, "unauthorized");
    if (a.challenge !== null) resp.headers.set("www-authenticate", a.challenge);
    return resp;
  }
  // Credentials never go upstream, whichever method admitted: a key in
  // the query is gone from here on, header credentials at phase 10
  // (`stripCredentials`), as the reference removes them.
  for (const m of a.methods) {
    if (m.kind === "key" && m.query) {
      S.query = withoutParam(S.query, m.name);
      up.query = S.query;
    }
  }
  for (const [header, value] of S.claimHeaders || []) {
    try {
      up.headers.append(header, value);
    } catch (e) {
      // A claim that cannot be a header value is not sent (as the reference).
    }
  }
  return null;
}

// Phase 10: header credentials removed from what goes upstream (a request
// script at phase 8 still reads the request as it came).
function stripCredentials(a, headers) {
  for (const m of a.methods) {
    if (m.kind === "key" && !m.query) {
      headers.delete(m.name);
    } else if (m.kind === "basic" && basicCredential(headers) !== null) {
      headers.delete("authorization");
    }
  }
}
