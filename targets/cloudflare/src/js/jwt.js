// ---- jwt (phase 6): a bearer token verified with WebCrypto ----

const UTF8 = new TextEncoder();

function b64url(s) {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) return null;
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function jsonPart(s) {
  const bytes = b64url(s);
  if (bytes === null) return null;
  try {
    const v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    return v !== null && typeof v === "object" && !Array.isArray(v) ? v : null;
  } catch (e) {
    return null;
  }
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

function bearer(headers) {
  const v = headers.get("authorization");
  if (v === null) return null;
  const sp = v.indexOf(" ");
  if (sp < 0 || v.slice(0, sp).toLowerCase() !== "bearer") return null;
  return v.slice(sp + 1).trim();
}

// The token's claims when it verifies, else null.
async function verifyJwt(m, token, env) {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  const header = jsonPart(parts[0]);
  const claims = jsonPart(parts[1]);
  const sig = b64url(parts[2]);
  // One algorithm per key: a token naming another is refused.
  if (header === null || claims === null || sig === null || header.alg !== m.alg) return null;
  const key = await jwtKey(m, env);
  if (key === null) return null;
  const ok = await crypto.subtle
    .verify(ALGORITHMS[m.alg], key, sig, UTF8.encode(parts[0] + "." + parts[1]))
    .catch(() => false);
  if (!ok) return null;
  const now = Date.now() / 1000;
  if ("exp" in claims && (typeof claims.exp !== "number" || now >= claims.exp + m.leeway)) return null;
  if ("nbf" in claims && (typeof claims.nbf !== "number" || now + m.leeway < claims.nbf)) return null;
  if (m.issuer !== null && claims.iss !== m.issuer) return null;
  if (m.audiences.length > 0) {
    const aud = typeof claims.aud === "string" ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : [];
    if (!aud.some((a) => typeof a === "string" && m.audiences.includes(a))) return null;
  }
  return claims;
}

async function tryJwt(m, request, S, up) {
  const token = bearer(request.headers);
  const claims = token === null ? null : await verifyJwt(m, token, S.env);
  if (claims === null) return false;
  const name = claims[m.consumerClaim];
  S.consumer = typeof name === "string" && Object.prototype.hasOwnProperty.call(CONSUMERS, name) ? name : null;
  S.claimHeaders = [];
  for (const [claim, header] of m.claims) {
    if (!(claim in claims)) continue;
    const v = claims[claim];
    S.claimHeaders.push([header, typeof v === "string" ? v : JSON.stringify(v)]);
  }
  return true;
}
