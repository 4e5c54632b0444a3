// ---- rate-limit (phase 6): fixed windows counted by a Durable Object ----
// One object per policy instance (idFromName of its id) counts every
// request of that instance wherever the Worker runs: Durable Objects are
// single-threaded and unique, and each count is written to the object's
// transactional storage before its answer leaves (the output gate), so
// no more than the spec's limit is ever admitted in a window, also when
// the object is evicted or restarted mid-window.
//
// The object lends counts to isolates, which admit requests on them
// without a call: loans grow while an isolate spends them fast (see
// nextSize), a busy isolate asks for the next in the background before it
// runs out, and the object lends at most an eighth of what is left, so
// the last counts go one per request. Every admission spends a count the
// object lent and stored: never more than the limit is admitted. Counts
// an isolate leaves unspent for LEASE_IDLE_MS go back to the object to be
// lent again; until they do (or for the rest of the window when an
// isolate is lost with them) a request on another isolate may be refused
// before the limit is reached (docs: the Cloudflare target's README).

import { DurableObject } from "cloudflare:workers";

// The key that new keys share once a window has keysMax (real keys begin
// with "g", "c:", "t:" or "i:").
const OVERFLOW = "o";

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
    // Distinct keys counted apart in a window; past them, new keys share
    // one count (OVERFLOW): a flood of made-up keys (`header:` keys come
    // from the client) is limited together, as the reference does, instead
    // of growing the object's memory and storage.
    this.keysMax = 100000;
  }

  // The key `key` is counted under: itself, or OVERFLOW once the window
  // in memory (when it is the current one) holds keysMax others.
  counted(key, perMs, now) {
    const full = this.window === Math.floor(now / perMs) && this.counts.size >= this.keysMax;
    return full && !this.counts.has(key) ? OVERFLOW : key;
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
    const k = this.counted(key, perMs, now);
    const n = this.held(k, perMs, now);
    if (n < 0) {
      return this.load(k, perMs).then((ok) =>
        ok ? this.lease(key, perMs, limit, want) : "0 " + limit + " " + (perMs - (now % perMs)) + " " + Math.floor(now / perMs),
      );
    }
    const left = limit - n;
    const grant = Math.max(0, Math.min(want, Math.max(1, Math.floor(left / 8)), left));
    if (grant > 0) this.store(k, n + grant);
    return grant + " " + (n + grant) + " " + (perMs - (now % perMs)) + " " + Math.floor(now / perMs);
  }

  // Takes back `n` unspent counts of `key` lent in window `w` (its number
  // as `lease` gave it): they can be lent again. A window that is over
  // has none to take back.
  giveBack(key, perMs, w, n) {
    const now = Date.now();
    if (Math.floor(now / perMs) !== w) return 0;
    const k = this.counted(key, perMs, now);
    const c = this.held(k, perMs, now);
    if (c < 0) return this.load(k, perMs).then((ok) => (ok ? this.giveBack(key, perMs, w, n) : 0));
    const back = Math.min(n, c);
    this.store(k, c - back);
    return back;
  }

  // "COUNT MS" after counting one request, past the limit too: how
  // Workers of gatefold before loans counted, on an object named by the
  // policy id alone. Kept so that their isolates, while a deploy rolls
  // out, still count (among themselves) instead of failing.
  hit(key, perMs) {
    const now = Date.now();
    const k = this.counted(key, perMs, now);
    const n = this.held(k, perMs, now);
    if (n < 0) {
      return this.load(k, perMs).then((ok) => (ok ? this.hit(key, perMs) : Number.MAX_SAFE_INTEGER + " " + (perMs - (now % perMs))));
    }
    this.store(k, n + 1);
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
  // False, and nothing changed, when this clock is behind the window
  // already stored (a restart on a host whose clock is behind, or a clock
  // stepped back): that window's counts are kept and nothing is lent
  // until the clock reaches it.
  async load(key, perMs) {
    const storage = this.ctx.storage;
    const window = Math.floor(Date.now() / perMs);
    if (this.window !== window) {
      if (this.window !== null && this.window > window) return false;
      const stored = await storage.get("window");
      if (stored !== undefined && stored > window) return false;
      this.counts = new Map();
      this.known = stored !== window;
      if (this.known) {
        await storage.deleteAll();
        await storage.put("window", window);
      }
      this.window = window;
    }
    if (!this.known && !this.counts.has(key)) {
      this.counts.set(key, (await storage.get("k:" + key)) || 0);
    }
    return true;
  }
}

// The object of each policy instance and its options: [namespace, object
// id] per policy id, the id derived once per isolate and binding
// (idFromName hashes the name). The name holds the options, so changed
// options count afresh, as the spec's reload does, and a deploy that
// changes `per` never has two window lengths on one object. A stub
// belongs to the request that made it, so each request gets its own.
const rateLimitIds = new Map();

function rateLimitObject(r, ns) {
  let known = rateLimitIds.get(r.id);
  if (known === undefined || known[0] !== ns) {
    known = [ns, ns.idFromName(r.id + "\n" + r.requests + "/" + r.per + "/" + r.key.join(":"))];
    rateLimitIds.set(r.id, known);
  }
  return known[1];
}

// A loan is at most this many counts.
const LEASE_MAX = 256;
// The next loan is twice the last when the isolate spent three quarters of
// that within LEASE_FAST_MS, as large within LEASE_STEADY_MS, else half.
const LEASE_FAST_MS = 100;
const LEASE_STEADY_MS = 1000;
// Counts an isolate has not spent for this long go back to the object.
const LEASE_IDLE_MS = 200;
// Once the object had none left to lend, refusals need no call for this
// long (counts other isolates give back may be lent again after it).
const LEASE_RECHECK_MS = 500;
// ctx.waitUntil lasts 30 s after the response: a watch for idle counts
// ends before, and a spend in its last second starts the next.
const LEASE_WATCH_MS = 20000;
// A sized loan asked for longer ago than this is taken as lost (its
// request cancelled): another request may ask.
const LEASE_ASK_MS = 2000;
// Past this many keys with loans in the isolate, the ended windows' go,
// then all (their unspent counts with them: refused early, never
// admitted twice).
const LEASES_KEPT = 10000;
// Per policy instance and key, in this isolate (`id`: policy id and key):
// the counts lent and not spent yet (`left`), the key's count at the
// object once they were lent (`count`), the window's number at the object
// (`w`) and its end by this isolate's clock (`end`, early rather than
// late), the size of the last loan and when it came (`size`, `at`), the
// last spend (`used`), until when refusals need no call (`refuseUntil`),
// when the sized loan under way was asked for (`asked`, 0: none), when a
// request last found none meanwhile (`short`, 0: not since the last
// loan) and when the watch that gives idle counts back began (`watched`,
// 0: none); `ns`, `object`, `key` and `per` address the object, `id` is
// the lease's own in `leases`.
const leases = new Map();

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
  } else {
    l = undefined;
  }
  // No counts here: this request asks for some and waits. The loan that
  // sizes the next ones is asked for by one request at a time; others
  // meanwhile ask for the one count each needs (a request cannot wait on
  // another's call: workerd keeps I/O and promises to the request that
  // began them) and mark the isolate short, so that its next loan is
  // larger. An answer of a window already over is asked again once.
  for (let attempt = 0; ; attempt++) {
    const before = Date.now();
    const sized = l === undefined || !asking(l, before);
    if (l !== undefined) {
      if (sized) l.asked = before;
      else l.short = before;
    }
    let answer;
    try {
      answer = await borrow(r, ns, key, sized ? nextSize(l, before) : 1);
    } finally {
      // Unless a later ask took over (this one having counted as lost).
      if (l !== undefined && sized && l.asked === before) l.asked = 0;
    }
    const after = Date.now();
    l = merge(r, ns, key, id, answer, sized, before, after);
    if (l.left > 0) return spend(r, S, l, after);
    if (l.w > answer[3] && attempt === 0) continue;
    // None left at the object in this lease's window.
    if (l.w === answer[3]) l.refuseUntil = after + LEASE_RECHECK_MS;
    return rateAnswer(r, S, 0, Math.max(l.end - after, 0), true);
  }
}

// Whether a sized loan is being asked for: a request cancelled while it
// waited (its client gone) never clears `asked`, so an old one counts as
// none.
function asking(l, now) {
  return l.asked !== 0 && now - l.asked < LEASE_ASK_MS;
}

// The size of the next loan, from how fast the last went (see
// LEASE_FAST_MS); twice the last when requests found none while it was
// asked for (the object's round trip is longer than what is left when
// the isolate asks ahead).
function nextSize(l, now) {
  if (l === undefined) return 1;
  if (l.short !== 0 && now - l.short < LEASE_STEADY_MS) {
    l.short = 0;
    return Math.min(l.size * 2, LEASE_MAX);
  }
  const took = now - l.at;
  if (took < LEASE_FAST_MS) return Math.min(l.size * 2, LEASE_MAX);
  if (took < LEASE_STEADY_MS) return l.size;
  return Math.max(1, l.size >> 1);
}

// One call to the object: [grant, count, ms left, window]. An answer
// that is not four whole numbers fails the request (500), never admits it.
async function borrow(r, ns, key, want) {
  const parts = (await ns.get(rateLimitObject(r, ns)).lease(key, r.per, r.requests, want)).split(" ").map(Number);
  if (parts.length !== 4 || !parts.every(Number.isSafeInteger) || parts[0] < 0) {
    throw new Error("rate limit: a malformed answer from the counting object");
  }
  return parts;
}

// A loan into this isolate's lease of the same window (other requests may
// have been lent counts meanwhile), or a new lease for a new window. The
// call left at `before`: the window's end by this clock is early, never
// late. The lease it joined is returned.
function merge(r, ns, key, id, answer, sized, before, after) {
  const [grant, count, leftMs, w] = answer;
  let l = leases.get(id);
  if (l === undefined || l.ns !== ns || l.w !== w) {
    // Counts of a window older than the lease held are no use: it is over.
    if (l !== undefined && l.ns === ns && l.w > w) return l;
    l = {
      ns, object: rateLimitObject(r, ns), key, id, per: r.per, w, end: 0, left: 0, count: 0,
      size: 1, at: after, used: after, refuseUntil: 0, asked: 0, short: 0, watched: 0,
    };
    remember(id, l);
  }
  l.end = Math.max(l.end, before + leftMs);
  l.count = Math.max(l.count, count);
  if (grant > 0) {
    l.left += grant;
    l.refuseUntil = 0;
    if (sized) {
      l.size = grant;
      l.at = after;
    }
  }
  return l;
}

// Admits the request on one of the counts lent to this isolate; when a
// quarter of the last loan is left, asks for the next one in the
// background (under ctx.waitUntil), so that a busy isolate's requests do
// not wait for the object.
function spend(r, S, l, now) {
  l.left -= 1;
  l.used = now;
  if (S.ctx !== undefined) {
    // A watch near its end (see LEASE_WATCH_MS) is followed by a new one.
    if (l.left > 0 && (l.watched === 0 || now - l.watched >= LEASE_WATCH_MS - 1000)) {
      l.watched = now;
      S.ctx.waitUntil(giveBackWhenIdle(l, now));
    }
    // Only an isolate that has been lent several counts at once is busy
    // enough: one that gets a count per request would call twice (the
    // loan ahead, then its give-back when idle).
    if (!asking(l, now) && l.size >= 4 && l.left <= l.size >> 2 && now - l.at < LEASE_STEADY_MS) {
      l.asked = now;
      S.ctx.waitUntil(refill(r, l, nextSize(l, now), now));
    }
  }
  return rateAnswer(r, S, r.requests - l.count + l.left, l.end - now, false);
}

async function refill(r, l, want, asked) {
  const before = Date.now();
  try {
    const answer = await borrow(r, l.ns, l.key, want);
    merge(r, l.ns, l.key, l.id, answer, true, before, Date.now());
  } catch {
    // No loan: the next request without counts asks itself.
  } finally {
    if (l.asked === asked) l.asked = 0;
  }
}

// Gives the counts of a loan back to the object once the isolate has not
// spent one for LEASE_IDLE_MS, so that other isolates can be lent them:
// without it, counts lent to an isolate that stops getting requests would
// be refused to everyone until the window ends. A watch lasts
// LEASE_WATCH_MS, then one more idle wait at most; a spend in its last
// second starts the next watch.
async function giveBackWhenIdle(l, since) {
  let n = 0;
  try {
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, LEASE_IDLE_MS));
      const now = Date.now();
      if (l.left === 0 || now >= l.end) break;
      if (now - l.used >= LEASE_IDLE_MS) {
        // Out of this isolate's hands before the call: never spent twice.
        n = l.left;
        l.left = 0;
        l.count -= n;
        break;
      }
      if (now - since >= LEASE_WATCH_MS) break;
    }
  } finally {
    if (l.watched === since) l.watched = 0;
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
