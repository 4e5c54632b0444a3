// Routing cost of the Cloudflare target's Worker (path normalization plus
// the compiled router), in Node (V8, as workerd), one path per route:
//
//   python3 bench/gen_spec.py 10000 > D/gatefold.yaml
//   gatefold compile D --target cloudflare --out OUT
//   node bench/cloudflare_routing.mjs OUT/worker.js D/gatefold.yaml
//
// The module's Durable Object import and exports are stripped so that its
// functions can be called directly; nothing is sent over a network.
import fs from "fs";

const [worker, spec] = process.argv.slice(2);
const src = fs
  .readFileSync(worker, "utf8")
  .replace('import { DurableObject } from "cloudflare:workers";', "class DurableObject {}")
  .replace(/export class/g, "class")
  .replace(/export default \{[\s\S]*?\n\};\n/, "");
const { route, normalizePath } = new Function(src + "\nreturn { route, normalizePath };")();

// One request path per route of the spec bench/gen_spec.py writes.
const paths = [];
let base = "";
for (const line of fs.readFileSync(spec, "utf8").split("\n")) {
  const b = /base-path: (\S+)/.exec(line);
  if (b) {
    base = b[1];
    continue;
  }
  const p = /path: "?([^",]+)"?,/.exec(line);
  if (p) paths.push(base + p[1].replace("{id}", "42").replace("/*", "/a/b"));
}
let matched = 0;
const run = (n) => {
  for (let i = 0; i < n; i++) {
    if (route("example.com", normalizePath(paths[i % paths.length])) !== null) matched++;
  }
};
run(3 * paths.length); // warm-up
const n = 200000;
const t0 = process.hrtime.bigint();
run(n);
const t1 = process.hrtime.bigint();
const per = Number(t1 - t0) / n / 1000;
console.log(`${paths.length} routes: ${per.toFixed(2)} µs per request (normalize + route), ${matched} of ${n + 3 * paths.length} matched`);
