#!/usr/bin/env python3
"""Writes a synthetic gatefold spec with N routes (bench/run.sh uses it for
the RSS and PUT /config measurements). Deterministic: same N, same file.

Routes are spread over apis of 50 routes each, with a realistic mix: every
api has an upstream and a response header; every 5th api needs a key and is
rate limited; routes alternate exact, templated and prefix paths and carry
a route-level policy now and then.

    gen_spec.py N [UPSTREAM] [--scripts]

With --scripts every route carries the tenant-routing script of
../shared/design/scripts.md (request and response side), one policy
instance each: the compile-time figure of issue 12."""
import sys

SCRIPT = [
    "          - script:",
    "              request: |",
    '                const v = req.header("x-version");',
    '                if (v === "2") { req.setHeader("x-upstream-version", "2"); }',
    '                const tenant = req.query("tenant");',
    '                if (!tenant) { return respond(400, { error: "tenant required" }); }',
    "                ctx.tenant = tenant.toLowerCase();",
    "              response: |",
    '                res.setHeader("x-tenant", ctx.tenant ?? "none");',
    '                if (res.status >= 500) { res.setHeader("cache-control", "no-store"); }',
]

def spec(n_routes: int, upstream: str, scripts: bool = False) -> str:
    per_api = 50
    apis = max(1, (n_routes + per_api - 1) // per_api)
    out = [
        "gatefold: 1",
        "gateway:",
        "  name: bench",
        "  policies:",
        "    - response-headers: { set: { x-served-by: gatefold } }",
        "upstreams:",
        f"  up: {{ targets: [{{ url: {upstream} }}] }}",
        "consumers:",
        "  bench: { credentials: { key: { env: BENCH_KEY } } }",
        "apis:",
    ]
    made = 0
    for a in range(apis):
        out.append(f"  api{a}:")
        out.append(f"    base-path: /api{a}")
        out.append("    upstream: up")
        if a % 5 == 0:
            out.append("    policies: [{ key-auth: {} }, { rate-limit: { requests: 1000, per: 1m, key: consumer } }]")
        out.append("    routes:")
        for r in range(per_api):
            if made == n_routes:
                break
            kind = r % 3
            if kind == 0:
                path = f"/r{r}"
            elif kind == 1:
                path = f'"/r{r}/{{id}}"'
            else:
                path = f"/r{r}/files/*"
            if scripts:
                out.append(f"      r{r}:")
                out.append(f"        path: {path}")
                out.append("        methods: [GET, POST]")
                out.append("        policies:")
                out.extend(SCRIPT)
                made += 1
                continue
            line = f"      r{r}: {{ path: {path}, methods: [GET, POST]"
            if r % 7 == 0:
                line += ", policies: [{ request-headers: { set: { x-route: r" + str(r) + " } } }]"
            line += " }"
            out.append(line)
            made += 1
    return "\n".join(out) + "\n"

if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--scripts"]
    n = int(args[0])
    upstream = args[1] if len(args) > 1 else "http://127.0.0.1:19000"
    sys.stdout.write(spec(n, upstream, "--scripts" in sys.argv))
