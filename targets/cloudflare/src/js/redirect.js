// ---- redirect (phase 9): location from the spec and the request ----

function fill(template, params) {
  return template.replace(/\{([^}]*)\}/g, (all, name) =>
    Object.prototype.hasOwnProperty.call(params, name) ? params[name] : all,
  );
}

// `//host` or `/\host`: a browser would leave this host.
function networkPath(location) {
  return /^[/\\][/\\]/.test(location);
}

function prefixTail(pattern, path) {
  let tail = path;
  for (let i = 0; i < pattern.length; i++) {
    const after = tail.startsWith("/") ? tail.slice(1) : tail;
    const slash = after.indexOf("/");
    tail = slash < 0 ? "" : after.slice(slash);
  }
  return tail;
}

function plainHost(host) {
  if (host.startsWith("[") && host.endsWith("]")) return parseIp(host.slice(1, -1)) !== null;
  return /^[A-Za-z0-9._-]+$/.test(host);
}

function location(r, route, S) {
  const params = bindParams(route.pat, S.path);
  if (r.template !== undefined) {
    let loc = r.origin + fill(r.template, params);
    if (networkPath(loc)) return null;
    if (S.query !== null) loc += (r.hasQuery ? "&" : "?") + S.query;
    return loc + r.fragment;
  }
  let path = S.path;
  if (r.path !== null && r.path[0] === "t") path = fill(r.path[1], params);
  if (r.path !== null && r.path[0] === "p") {
    path = r.path[1].replace(/\/+$/, "") + prefixTail(route.pat, S.path);
    if (path === "") path = "/";
  }
  if (!path.startsWith("/") || networkPath(path)) return null;
  const reqHost = hostWithoutPort(S.host);
  if (!plainHost(reqHost)) return null;
  let reqPort = null;
  const portText = S.host.slice(reqHost.length);
  if (portText !== "") {
    if (!/^:\d{1,5}$/.test(portText) || Number(portText.slice(1)) > 65535) return null;
    reqPort = Number(portText.slice(1));
  }
  const scheme = r.scheme !== null ? r.scheme : S.scheme;
  const port = r.port !== null ? r.port : r.scheme === null ? reqPort : null;
  const host = r.host !== null ? r.host : reqHost;
  let loc = scheme + "://" + host;
  if (port !== null && port !== (scheme === "https" ? 443 : 80)) loc += ":" + port;
  loc += path;
  if (S.query !== null) loc += "?" + S.query;
  return loc;
}

function redirectResponse(route, S) {
  const loc = location(route.redirect, route, S);
  if (loc === null) return errorResponse(400, "bad request");
  return new Response(null, { status: route.redirect.status, headers: { location: loc } });
}
