// ---- mirror (phase 12): a copy of the upstream request, answer ignored ----

// Copies under way at once, per mirror policy (per isolate): further
// copies are skipped while the mirror is behind.
const MIRROR_MAX_IN_FLIGHT = 64;
const mirrorsInFlight = new Map();

// Sends a copy of the request as it goes upstream (method, path and
// query after phase 10, the headers, the body already read whole) to
// the mirror's upstream, for `m.percent` % of the requests. It runs
// after the answer under ctx.waitUntil: it never delays or fails the
// request, it is bounded by the mirror upstream's timeouts, and its
// target's failures are not held against anyone.
function mirrorCopy(m, method, target, headers, body, S) {
  if (m.percent === 0 || (m.percent < 100 && Math.random() * 100 >= m.percent)) return;
  const busy = mirrorsInFlight.get(m.id) || 0;
  if (busy >= MIRROR_MAX_IN_FLIGHT) return;
  const i = pickTarget(m.upstream, headers, []);
  if (i < 0) return;
  const t = UP[m.upstream].targets[i];
  const h = new Headers(headers);
  if (!h.has("host")) h.set("host", t.authority);
  mirrorsInFlight.set(m.id, busy + 1);
  const key = m.upstream + i;
  inFlight.set(key, (inFlight.get(key) || 0) + 1);
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), m.timeout);
  const sent = fetch(t.base + target, {
    method,
    headers: h,
    body: body !== null && body.byteLength > 0 && !NO_BODY.includes(method) ? body : null,
    redirect: "manual",
    signal: ctl.signal,
  })
    // Read to the end (bounded by the same deadline), then forget it.
    .then((resp) => (resp.body === null ? undefined : resp.body.pipeTo(new WritableStream())))
    .catch(() => {})
    .finally(() => {
      clearTimeout(timer);
      mirrorsInFlight.set(m.id, mirrorsInFlight.get(m.id) - 1);
      inFlight.set(key, inFlight.get(key) - 1);
    });
  S.ctx.waitUntil(sent);
}
