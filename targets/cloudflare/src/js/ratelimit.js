// ---- rate-limit (phase 6): fixed windows counted by a Durable Object ----
// One object per policy instance (idFromName of its id) counts every
// request of that instance wherever the Worker runs: Durable Objects are
// single-threaded and unique, and each count is written to the object's
// transactional storage before its answer leaves (the output gate), so
// the limit is the spec's, exactly, also when the object is evicted or
// restarted mid-window.

import { DurableObject } from "cloudflare:workers";

export class GatefoldRateLimit extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    // The window whose counts `counts` holds (null: none yet). `known`:
    // this object began the window itself, so a key not in `counts` has
    // no count yet; otherwise (a restarted object) its count is read
    // from storage the first time the key comes.
    this.window = null;
    this.counts = new Map();
    this.known = false;
  }

  // "COUNT MS" after counting one request: the count and the milliseconds
  // left in the window (one string: an array costs workerd's RPC about
  // 10 us more to carry back). Synchronous once the key's count is in
  // memory: the write is not awaited, the output gate holds the answer
  // until it is stored (and a failed write breaks the object: the caller
  // gets an error, never an uncounted admission).
  hit(key, perMs) {
    const now = Date.now();
    let n = -1;
    if (this.window === Math.floor(now / perMs)) {
      const held = this.counts.get(key);
      n = held !== undefined ? held : this.known ? 0 : -1;
    }
    if (n < 0) return this.load(key, perMs);
    this.counts.set(key, n + 1);
    this.ctx.storage.put("k:" + key, n + 1);
    return n + 1 + " " + (perMs - (now % perMs));
  }

  // The window's state into memory: a new window drops the old counts
  // (stored and held); a window begun before a restart is read key by
  // key. Storage calls hold the input gate: no other hit runs meanwhile.
  async load(key, perMs) {
    const storage = this.ctx.storage;
    const window = Math.floor(Date.now() / perMs);
    if (this.window !== window) {
      this.counts = new Map();
      this.known = (await storage.get("window")) !== window;
      if (this.known) {
        await storage.deleteAll();
        await storage.put("window", window);
      }
      this.window = window;
    }
    if (!this.known && !this.counts.has(key)) {
      this.counts.set(key, (await storage.get("k:" + key)) || 0);
    }
    return this.hit(key, perMs);
  }
}

// The object of each policy instance: policy id -> [namespace, object id],
// the id derived once per isolate and binding (idFromName hashes the
// name); a stub belongs to the request that made it, so each request gets
// its own.
const rateLimitIds = new Map();

async function rateLimit(r, request, S) {
  let key;
  if (r.key[0] === "global") key = "g";
  else if (r.key[0] === "consumer" && S.consumer !== null) key = "c:" + S.consumer;
  else if (r.key[0] === "header" && request.headers.get(r.key[1]) !== null) key = "t:" + request.headers.get(r.key[1]);
  else key = "i:" + S.client;
  const ns = S.env.GATEFOLD_RATE_LIMIT;
  let known = rateLimitIds.get(r.id);
  if (known === undefined || known[0] !== ns) {
    known = [ns, ns.idFromName(r.id)];
    rateLimitIds.set(r.id, known);
  }
  const answer = await ns.get(known[1]).hit(key, r.per);
  const sp = answer.indexOf(" ");
  const count = Number(answer.slice(0, sp));
  const leftMs = Number(answer.slice(sp + 1));
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
