// ---- cors (phase 2): preflight answers, allow headers on actual answers ----

function originAllowed(c, origin) {
  if (c.any) return true;
  const lower = origin.toLowerCase();
  for (const o of c.origins) {
    if (o.startsWith("=")) {
      if (o.slice(1) === lower) return true;
      continue;
    }
    // "~scheme://*.domain[:port]": one or more whole labels for the `*`.
    const [scheme, suffix] = o.slice(1).split("://*");
    const prefix = scheme + "://";
    if (!lower.startsWith(prefix) || !lower.endsWith(suffix)) continue;
    const labels = lower.slice(prefix.length, lower.length - suffix.length);
    if (labels !== "" && labels.split(".").every((l) => /^[a-z0-9-]+$/.test(l))) return true;
  }
  return false;
}

// Answers a preflight (a Response) or promises the actual answer's headers.
function corsFilter(c, request, S) {
  const origin = request.headers.get("origin");
  const allowed = origin !== null && originAllowed(c, origin);
  const star = c.any && !c.credentials;
  if (S.preflight) {
    const resp = new Response(null, { status: 204 });
    if (allowed) {
      const h = resp.headers;
      h.set("access-control-allow-origin", star ? "*" : origin);
      if (!star) h.append("vary", "origin");
      let methods = c.methods;
      if (methods === null) {
        methods = c.credentials ? request.headers.get("access-control-request-method") : "*";
      }
      if (methods !== null) h.set("access-control-allow-methods", methods);
      const asked = request.headers.get("access-control-request-headers");
      const headers = c.anyHeader && !c.credentials ? "*" : c.headers !== null ? c.headers : asked;
      if (headers !== null) h.set("access-control-allow-headers", headers);
      if (c.expose !== null) h.set("access-control-expose-headers", c.expose);
      if (c.credentials) h.set("access-control-allow-credentials", "true");
      if (c.maxAge !== null) h.set("access-control-max-age", c.maxAge);
    }
    return resp;
  }
  if (allowed) {
    promise(S, "access-control-allow-origin", star ? "*" : origin);
    if (!star) promise(S, "vary", "origin");
    if (c.credentials) promise(S, "access-control-allow-credentials", "true");
    if (c.expose !== null) promise(S, "access-control-expose-headers", c.expose);
  }
  return null;
}
