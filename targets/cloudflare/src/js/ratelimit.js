// ---- rate-limit (phase 6): fixed windows counted by a Durable Object ----
// One object per policy instance (idFromName of its id) counts every
// request of that instance wherever the Worker runs: Durable Objects are
// single-threaded and unique, and each count is written to the object's
// transactional storage before its answer leaves (the output gate), so
// no more than the spec's limit is ever admitted in a window, also when
// the object is evicted or restarted mid-window.
//
// The object lends counts to isolates: an isolate that spent its last
// loan within LEASE_FAST_MS asks for twice as many next time (at most
// LEASE_MAX), within LEASE_STEADY_MS for as many, and one that is not that
// busy asks for one at a time, as every isolate does when few are left
// (the object lends at most an eighth of what is left). A busy isolate so calls the object once per many
// requests instead of once per request. Every admission spends a count
// the object lent and stored: never more than the limit is admitted.
// Counts an isolate leaves unspent for LEASE_IDLE_MS go back to the
// object to be lent again; until they do (or for the rest of the window
// when an isolate is lost with them) a request on another isolate may be
// refused before the limit is reached (docs: the Cloudflare target's
// README).

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

  // Lends up to `want` counts of `key` in the window, never past `limit`
  // and at most an eighth of what is left (one when fewer than 16 are):
  // "GRANT COUNT MS W", how many it lent (0: none left), the key's count
  // with them, the milliseconds left in the window and its number (one
  // string: an array costs workerd's RPC about 10 us more to carry back).
  // Synchronous once the key's count is in memory: the write is not
  // awaited, the output gate holds the answer until it is stored (and a
  // failed write breaks the object: the caller gets an error, never an
  // unstored count).
  lease(key, perMs, limit, want) {
    const now = Date.now();
    const n = this.held(key, perMs, now);
    if (n < 0) return this.load(key, perMs).then(() => this.lease(key, perMs, limit, want));
    const left = limit - n;
    const grant = Math.max(0, Math.min(want, Math.max(1, Math.floor(left / 8)), left));
    if (grant > 0) this.store(key, n + grant);
    return grant + " " + (n + grant) + " " + (perMs - (now % perMs)) + " " + Math.floor(now / perMs);
  }

  // Takes back `n` unspent counts of `key` lent in window `w` (its number
  // as `lease` gave it): they can be lent again. A window that is over
  // has none to take back.
  giveBack(key, perMs, w, n) {
    const now = Date.now();
    if (Math.floor(now / perMs) !== w) return 0;
    const c = this.held(key, perMs, now);
    if (c < 0) return this.load(key, perMs).then(() => this.giveBack(key, perMs, w, n));
    const back = Math.min(n, c);
    this.store(key, c - back);
    return back;
  }

  // "COUNT MS" after counting one request, past the limit too: how
  // Workers of gatefold before leases counted. Kept so that isolates still
  // running one while a deploy rolls out count on the same object.
  hit(key, perMs) {
    const now = Date.now();
    const n = this.held(key, perMs, now);
    if (n < 0) return this.load(key, perMs).then(() => this.hit(key, perMs));
    this.store(key, n + 1);
    return n + 1 + " " + (perMs - (now % perMs));
  }

  // The key's count in the current window, or -1 when it must be loaded.
  held(key, perMs, now) {
    if (this.window !== Math.floor(now / perMs)) return -1;
    const held = this.counts.get(key);
    return held !== undefined ? held : this.known ? 0 : -1;
  }

  store(key, n) {
    this.counts.set(key, n);
    this.ctx.storage.put("k:" + key, n);
  }

  // The window's state into memory: a new window drops the old counts
  // (stored and held); a window begun before a restart is read key by
  // key. Storage calls hold the input gate: no other call runs meanwhile.
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
  }
}

// The object of each policy instance: policy id -> [namespace, object id],
// the id derived once per isolate and binding (idFromName hashes the
// name); a stub belongs to the request that made it, so each request gets
// its own.
const rateLimitIds = new Map();

// A loan is at most this many counts.
const LEASE_MAX = 256;
// An isolate that spent its last loan within LEASE_FAST_MS asks for twice
// as many, within LEASE_STEADY_MS as many again, else for one.
const LEASE_FAST_MS = 100;
const LEASE_STEADY_MS = 1000;
// Counts an isolate has not spent for this long go back to the object.
const LEASE_IDLE_MS = 200;
// Once the object had none left to lend, refusals need no call for this
// long (counts other isolates give back may be lent again after it).
const LEASE_RECHECK_MS = 500;
// ctx.waitUntil lasts 30 s after the response: a watch for idle counts
// ends before, and the next request that spends one starts another.
const LEASE_WATCH_MS = 20000;
// Past this many keys with loans in the isolate, the ended windows' go,
// then all (their unspent counts with them: refused early, never
// admitted twice).
const LEASES_KEPT = 10000;
// Per policy instance and key, in this isolate: the counts lent and not
// spent yet (`left`), the key's count at the object once they were lent
// (`count`), the window's number at the object (`w`) and its end by this
// isolate's clock (`end`, early rather than late), the size and time of
// the last loan (`size`, `at`), the time of the last spend (`used`), until
// when refusals need no call (`refuseUntil`), and whether a watch gives
// idle counts back (`watched`); `ns`, `object`, `key` and `per` address
// the object.
const leases = new Map();
// Per policy instance and key: loans under way in this isolate. While one
// is, other requests ask for one count each (each request makes its own
// call: workerd keeps I/O to the request that began it), so concurrent
// requests do not each borrow a large loan.
const asking = new Map();

function remember(id, lease) {
  if (leases.size >= LEASES_KEPT && !leases.has(id)) {
    const now = Date.now();
    for (const [k, l] of leases) if (l.end <= now) leases.delete(k);
    if (leases.size >= LEASES_KEPT) leases.clear();
  }
  leases.set(id, lease);
}

async function rateLimit(r, request, S) {
  let key;
  if (r.key[0] === "global") key = "g";
  else if (r.key[0] === "consumer" && S.consumer !== null) key = "c:" + S.consumer;
  else if (r.key[0] === "header" && request.headers.get(r.key[1]) !== null) key = "t:" + request.headers.get(r.key[1]);
  else key = "i:" + S.client;
  const ns = S.env.GATEFOLD_RATE_LIMIT;
  const id = r.id + "\n" + key;
  const now = Date.now();
  let l = leases.get(id);
  if (l !== undefined && l.ns === ns && l.end > now) {
    if (l.left > 0) return spend(r, S, l, now);
    if (l.refuseUntil > now) return rateAnswer(r, S, 0, l.end - now, true);
  }
  const busy = asking.get(id) || 0;
  let want = 1;
  if (busy === 0 && l !== undefined && now - l.at < LEASE_STEADY_MS) {
    want = now - l.at < LEASE_FAST_MS ? Math.min(l.size * 2, LEASE_MAX) : l.size;
  }
  let known = rateLimitIds.get(r.id);
  if (known === undefined || known[0] !== ns) {
    known = [ns, ns.idFromName(r.id)];
    rateLimitIds.set(r.id, known);
  }
  asking.set(id, busy + 1);
  let answer;
  try {
    answer = (await ns.get(known[1]).lease(key, r.per, r.requests, want)).split(" ");
  } finally {
    const n = asking.get(id) - 1;
    if (n > 0) asking.set(id, n);
    else asking.delete(id);
  }
  const grant = Number(answer[0]);
  const leftMs = Number(answer[2]);
  const w = Number(answer[3]);
  // Other requests of this isolate may have been lent counts meanwhile:
  // a loan of the same window joins theirs.
  l = leases.get(id);
  if (l === undefined || l.ns !== ns || l.w !== w) {
    l = { ns, object: known[1], key, per: r.per, w, end: 0, left: 0, count: 0, size: 1, at: now, used: now, refuseUntil: 0, watched: false };
    remember(id, l);
  }
  // `now` was read before the call: the end is early, never late.
  l.end = Math.max(l.end, now + leftMs);
  l.count = Math.max(l.count, Number(answer[1]));
  if (grant === 0) {
    // None left at the object, but a loan that came back meanwhile may
    // still hold some here.
    if (l.left > 0) return spend(r, S, l, now);
    l.refuseUntil = now + LEASE_RECHECK_MS;
    return rateAnswer(r, S, 0, leftMs, true);
  }
  l.left += grant;
  l.at = now;
  if (busy === 0) l.size = grant;
  l.refuseUntil = 0;
  return spend(r, S, l, now);
}

// Admits the request on one of the counts lent to this isolate.
function spend(r, S, l, now) {
  l.left -= 1;
  l.used = now;
  if (l.left > 0 && !l.watched && S.ctx !== undefined) {
    l.watched = true;
    S.ctx.waitUntil(giveBackWhenIdle(l, now));
  }
  return rateAnswer(r, S, r.requests - l.count + l.left, l.end - now, false);
}

// Gives the counts of a loan back to the object once the isolate has not
// spent one for LEASE_IDLE_MS, so that other isolates can be lent them:
// without it, counts lent to an isolate that stops getting requests would
// be refused to everyone until the window ends.
async function giveBackWhenIdle(l, since) {
  let n = 0;
  try {
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, LEASE_IDLE_MS));
      const now = Date.now();
      if (l.left === 0 || now >= l.end || now - since >= LEASE_WATCH_MS) break;
      if (now - l.used >= LEASE_IDLE_MS) {
        // Out of this isolate's hands before the call: never spent twice.
        n = l.left;
        l.left = 0;
        l.count -= n;
        break;
      }
    }
  } finally {
    l.watched = false;
  }
  if (n === 0) return;
  try {
    await l.ns.get(l.object).giveBack(l.key, l.per, l.w, n);
  } catch {
    // Not given back: the counts stay lent until the window ends (refused
    // early at worst, never admitted twice).
  }
}

// The x-ratelimit headers, and the 429 when refused.
function rateAnswer(r, S, remaining, leftMs, refused) {
  const reset = String(Math.ceil(leftMs / 1000));
  promise(S, "x-ratelimit-limit", String(r.requests));
  promise(S, "x-ratelimit-remaining", String(Math.max(remaining, 0)));
  promise(S, "x-ratelimit-reset", reset);
  if (!refused) return null;
  const resp = errorResponse(429, "too many requests");
  resp.headers.set("retry-after", reset);
  return resp;
}
