// A log-domain Sinkhorn in plain JavaScript: reads a reference file, writes a results file for
// `python -m optical_ref reference verify --results FILE.json` (the conventions: reference.schema.json).
const fs = require("fs");
const [, , referencePath, outPath] = process.argv;
const ref = JSON.parse(fs.readFileSync(referencePath, "utf8"));
const lse = (xs) => { const m = Math.max(...xs); return m + Math.log(xs.reduce((s, x) => s + Math.exp(x - m), 0)); };
const results = {};
for (const c of ref.cases) {
  const { a, b, C, eps, n_iter } = c.inputs;
  let f = a.map(() => 0), g = b.map(() => 0);
  for (let it = 0; it < n_iter; it++) {
    f = a.map((ai, i) => eps * Math.log(ai) - eps * lse(b.map((_, j) => (g[j] - C[i][j]) / eps)));
    g = b.map((bj, j) => eps * Math.log(bj) - eps * lse(a.map((_, i) => (f[i] - C[i][j]) / eps)));
  }
  const plan = a.map((_, i) => b.map((_, j) => Math.exp((f[i] + g[j] - C[i][j]) / eps)));
  results[c.name] = { plan, f, g };
}
fs.writeFileSync(outPath, JSON.stringify({ kind: ref.kind, producer: "node " + process.version, results }));
