// ---- rate-limit (phase 8): fixed windows counted by a Durable Object ----
// One object per policy instance (idFromName of its id) counts every
// request of that instance wherever the Worker runs: Durable Objects are
// single-threaded and unique, and each count is a read and a write of the
// object's transactional storage, so the limit is the spec's, exactly.

import { DurableObject } from "cloudflare:workers";

export class GatefoldRateLimit extends DurableObject {
  // [count, milliseconds left in the window] after counting one request.
  async hit(key, perMs) {
    const now = Date.now();
    const window = Math.floor(now / perMs);
    const storage = this.ctx.storage;
    // A new window: the old counts go.
    const current = await storage.get("window");
    if (current !== window) {
      await storage.deleteAll();
      await storage.put("window", window);
    }
    const n = ((await storage.get("k:" + key)) || 0) + 1;
    await storage.put("k:" + key, n);
    return [n, perMs - (now % perMs)];
  }
}

async function rateLimit(r, request, S) {
  let key;
  if (r.key[0] === "global") key = "g";
  else if (r.key[0] === "consumer" && S.consumer !== null) key = "c:" + S.consumer;
  else if (r.key[0] === "header" && request.headers.get(r.key[1]) !== null) key = "t:" + request.headers.get(r.key[1]);
  else key = "i:" + S.client;
  const ns = S.env.GATEFOLD_RATE_LIMIT;
  const [count, leftMs] = await ns.get(ns.idFromName(r.id)).hit(key, r.per);
  const reset = String(Math.ceil(leftMs / 1000));
  promise(S, "x-ratelimit-limit", String(r.requests));
  promise(S, "x-ratelimit-remaining", String(Math.max(r.requests - count, 0)));
  promise(S, "x-ratelimit-reset", reset);
  if (count > r.requests) {
    const resp = errorResponse(429, "too many requests");
    resp.headers.set("retry-after", reset);
    return resp;
  }
  return null;
}
