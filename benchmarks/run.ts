// `npm run bench`: runs every benchmarks/*.bench.ts (or the names given) one after another,
// each in its own process so one's heap does not skew the next's RSS: e2e, loader (the
// loader against the local GCS and the BigQuery fake), compaction (the compactor against the local
// S3, and its hour-index memory), parse_encode, shipper.

import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { cpus, totalmem } from "node:os";

const dir = new URL(".", import.meta.url);
const wanted = process.argv.slice(2);
const benches = readdirSync(dir)
  .filter((f) => f.endsWith(".bench.ts"))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.startsWith(w)))
  .sort();
if (benches.length === 0) {
  process.stderr.write(`no benchmark matches ${wanted.join(", ")}\n`);
  process.exit(2);
}
process.stdout.write(
  `# ${new Date().toISOString()} · ${cpus().length} × ${cpus()[0]?.model ?? "cpu"} · ${Math.round(totalmem() / 2 ** 30)} GiB · Node ${process.version}\n`,
);
let failed = 0;
for (const bench of benches) {
  process.stdout.write(`\n## ${bench}\n`);
  const r = spawnSync(process.execPath, [new URL(bench, dir).pathname], { stdio: "inherit" });
  if (r.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
