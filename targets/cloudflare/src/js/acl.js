// ---- acl (phase 7): by the admitted consumer's groups ----

function aclAdmits(a, consumer) {
  const groups = consumer === null ? [] : CONSUMERS[consumer].groups;
  return groups.some((g) => a.groups.includes(g)) === a.allow;
}
