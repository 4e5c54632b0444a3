// ---- request-headers / response-headers: remove, then set, then add ----

function applyTransform(headers, t) {
  for (const name of t.remove) headers.delete(name);
  for (const [k, v] of t.set) headers.set(k, v);
  for (const [k, v] of t.add) headers.append(k, v);
}
