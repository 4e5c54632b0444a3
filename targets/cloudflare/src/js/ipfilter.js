// ---- ip-filter (phase 1): deny wins; with an allow list, only it passes ----

function ipAllowed(f, client) {
  if (!f.ready) {
    f.allowB = blocks(f.allow);
    f.denyB = blocks(f.deny);
    f.ready = true;
  }
  const addr = parseIp(client);
  if (inBlocks(addr, f.denyB)) return false;
  return f.allowB.length === 0 || inBlocks(addr, f.allowB);
}
