// ---- cache (phase 11): the Workers Cache API, per data centre ----

// A body over this is passed through and not stored (as the reference).
const CACHE_MAX_ENTRY = 1 << 20;
// The stored copy's own headers: the upstream's headers (JSON, encoded),
// and when it stops being served (ms since the epoch).
const CACHE_HEADERS = "x-gatefold-headers";
const CACHE_EXPIRES = "x-gatefold-expires";

// Phase 11 around phase 12: a stored answer (a hit skips phase 12, not
// phase 13), else the upstream's, stored when it may be.
async function cached(route, request, S, up) {
  const key = await cacheKey(route.cache, request, S);
  const hit = key === null ? null : await cacheLookup(key);
  if (hit !== null) return hit;
  return cacheStore(route.cache, key, await proxy(route, request, S, up), S);
}

// The key of a request for policy `c`, as a GET Request the Cache API
// takes, or null when the method is not cached. The key's text is the
// spec's (method, host, path and query as received, the consumer, the
// `vary` headers) under the policy and the spec's hash; the Cache API
// sees its SHA-256 as the path of a URL of the Worker's own origin (a
// host of its zone), with no header, so that a match never answers a
// conditional or range request with 304 or 206.
async function cacheKey(c, request, S) {
  if (!c.methods.includes(request.method)) return null;
  let k = GW.hash + "\n" + c.id + "\n" + request.method + "\n" + S.host.replace(/[A-Z]+/g, (s) => s.toLowerCase());
  k += "\n" + S.rawPath + (S.query !== null ? "?" + S.query : "") + "\n" + (S.consumer === null ? "" : S.consumer);
  for (const h of c.vary) {
    const v = request.headers.get(h);
    k += "\n" + (v === null ? "" : v + ",");
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", UTF8.encode(k)));
  let hex = "";
  for (const b of digest) hex += (b < 16 ? "0" : "") + b.toString(16);
  return new Request(new URL(request.url).origin + "/.gatefold-cache/" + hex);
}

// A stored response still within its ttl, with the upstream's own
// headers, or null.
async function cacheLookup(key) {
  let hit;
  try {
    hit = await caches.default.match(key);
  } catch (e) {
    // The cache is an optimisation: a failing lookup is a miss.
    return null;
  }
  if (!hit) return null;
  const expires = Number(hit.headers.get(CACHE_EXPIRES));
  let headers = null;
  try {
    headers = expires > Date.now() ? JSON.parse(decodeURIComponent(hit.headers.get(CACHE_HEADERS))) : null;
  } catch (e) {
    // Not a copy this Worker stored: a miss.
  }
  if (headers === null) {
    if (hit.body !== null) await hit.body.cancel().catch(() => {});
    return null;
  }
  return new Response(hit.body, { status: hit.status, headers });
}

// Whether an upstream response may be stored: a 200 without set-cookie
// and without cache-control no-store or private.
function cacheable(resp) {
  if (resp.status !== 200 || resp.headers.has("set-cookie")) return false;
  const cc = resp.headers.get("cache-control");
  return cc === null || !cc.split(",").some((d) => /^(no-store|private)$/i.test(d.trim()));
}

// Passes the response through, storing a copy once its body has been
// read whole (within CACHE_MAX_ENTRY). Cloudflare's cache obeys the
// copy's own headers: it carries only `cache-control` for the ttl (whole
// seconds, rounded up; the exact end is CACHE_EXPIRES) and the
// upstream's headers as data, so the upstream's cache-control, expires,
// vary or etag never change what is stored or for how long.
function cacheStore(c, key, resp, S) {
  if (key === null || !cacheable(resp)) return resp;
  const headers = encodeURIComponent(JSON.stringify([...resp.headers]));
  const expires = String(Date.now() + c.ttl);
  const copy = (body) =>
    new Response(body, {
      status: 200,
      headers: {
        "cache-control": "public, max-age=" + Math.ceil(c.ttl / 1000),
        [CACHE_HEADERS]: headers,
        [CACHE_EXPIRES]: expires,
      },
    });
  const put = (body) => caches.default.put(key, copy(body)).catch(() => {});
  if (resp.body === null) {
    S.ctx.waitUntil(put(null));
    return resp;
  }
  const [client, mine] = resp.body.tee();
  S.ctx.waitUntil(
    // Past CACHE_MAX_ENTRY, or when the body fails, nothing is stored.
    readStream(mine, CACHE_MAX_ENTRY).then(
      (body) => (body === TOO_LARGE ? undefined : put(body)),
      () => {},
    ),
  );
  return new Response(client, resp);
}
