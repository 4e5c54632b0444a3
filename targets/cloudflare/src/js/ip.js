// ---- ip: addresses and CIDR blocks (ip-filter, client-address) ----

// An address as [version, BigInt], or null when `s` is not one.
function parseIp(s) {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(s)) {
    const o = s.split(".").map(Number);
    if (o.some((x) => x > 255)) return null;
    return [4, BigInt(((o[0] << 24) >>> 0) + (o[1] << 16) + (o[2] << 8) + o[3])];
  }
  if (!/^[0-9A-Fa-f:.]+$/.test(s) || !s.includes(":")) return null;
  const v4 = /:(\d{1,3}(\.\d{1,3}){3})$/.exec(s);
  if (v4) {
    // The IPv4 tail as its two words.
    const a = parseIp(v4[1]);
    if (a === null) return null;
    const hi = (a[1] >> 16n).toString(16);
    const lo = (a[1] & 0xffffn).toString(16);
    s = s.slice(0, s.length - v4[1].length) + hi + ":" + lo;
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const words = (h) => (h === "" ? [] : h.split(":"));
  const head = words(halves[0]);
  const rest = halves.length === 2 ? words(halves[1]) : [];
  const fill = 8 - head.length - rest.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return null;
  const all = head.concat(Array(halves.length === 2 ? fill : 0).fill("0"), rest);
  let n = 0n;
  for (const w of all) {
    if (!/^[0-9A-Fa-f]{1,4}$/.test(w)) return null;
    n = (n << 16n) | BigInt(parseInt(w, 16));
  }
  // IPv4-mapped IPv6 counts as IPv4.
  if (n >> 32n === 0xffffn) return [4, n & 0xffffffffn];
  return [6, n];
}

// Blocks as the compiler writes them, [version, "network", prefix], made
// BigInt masks once per isolate.
function blocks(list) {
  return list.map(([v, net, len]) => {
    const bits = v === 4 ? 32n : 128n;
    const mask = ((1n << bits) - 1n) ^ ((1n << (bits - BigInt(len))) - 1n);
    return [v, BigInt(net), mask];
  });
}

function inBlocks(addr, list) {
  return addr !== null && list.some(([v, net, mask]) => v === addr[0] && (addr[1] & mask) === net);
}
