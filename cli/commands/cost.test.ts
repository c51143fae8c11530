import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { UserError } from "../../lib/config/errors.ts";
import { compactionManifestBytes, hourIndexBytes } from "../../lib/economics/cost.ts";
import { costCommand, DEFAULT_COST_LIFECYCLE, DEFAULT_COST_RETENTION_DAYS } from "./cost.ts";
import { close, runCommand, workedExampleFixture, workedFleetArgs } from "./plan_test_support.ts";

const fixture = workedExampleFixture("cost");
const { dir, policy } = fixture;

// The worked example of plan.test.ts (10 nodes, 14,400 objects a day of ~1.5 MB, STORED =
// 2.16e10 + 14,400 × 250 = 2.16036e10 compressed bytes a day, all loaded), kept 30 days in S3 Standard only, 30 days in
// BigQuery, no Athena, no restores. A month is 365 / 12 = 30.4167 days; storage is in GiB.
// WORKED bills the shipper's objects kept as they are, so it turns compaction off explicitly (it
// is on by default, COMPACTION_ENABLED_BY_DEFAULT); the --archive-compaction test bills the same
// fleet compacted, from WORKED_FLEET.
const WORKED_FLEET = [
  "cost",
  ...workedFleetArgs(fixture),
  "--retention-days",
  "30",
  "--lifecycle",
  "none",
  "--bigquery-days",
  "30",
  "--athena-tb-month",
  "0",
  "--restore-gb-month",
  "0",
  "--format",
  "json",
];
const WORKED = [...WORKED_FLEET, "--no-archive-compaction"];
const M = 365 / 12;
const GIB = 2 ** 30;
const STORED = 2.16e10 + 14_400 * 250;

interface Line {
  item: string;
  steady: number;
  quantity: number;
  first: number;
  note?: string;
}

function line(lines: Line[], prefix: string): Line {
  const found = lines.find((l) => l.item.startsWith(prefix));
  assert.ok(found, `no line ${prefix}`);
  return found;
}

describe("logarchive cost", () => {
  it("matches the worked example computed by hand", async () => {
    const { out, code } = await runCommand(costCommand, WORKED);
    assert.equal(code, 0);
    const { lines } = JSON.parse(out).report as { lines: Line[] };
    // Hour indexes: 10 nodes × 24 = 240 a day, each listing 14,400 / 240 = 60 batches; their
    // bytes come from the shipper's encoder (lib/object/hour-index.ts), about 24 KB each.
    const INDEXED = 240 * hourIndexBytes(60);
    assert.ok(INDEXED > 240 * 60 * 300 && INDEXED < 240 * 60 * 600, `index bytes ${INDEXED}`);
    // S3 Standard: 30 days × (2.16036e10 + the indexes) B = 603.7 GiB × $0.023 = $13.89.
    close(line(lines, "S3 Standard").steady, ((30 * (STORED + INDEXED)) / GIB) * 0.023, "S3 Standard steady");
    // First month, starting empty: cohort-days = (30²/2 + (M − 30) × 30) / M = 15.205 →
    // 2.16036e10 × 15.205 / 2^30 = 305.9 GiB × $0.023 = $7.04.
    const firstDays = (30 ** 2 / 2 + (M - 30) * 30) / M;
    close(
      line(lines, "S3 Standard").first,
      ((firstDays * (STORED + INDEXED)) / GIB) * 0.023,
      "S3 Standard first",
    );
    // PUTs: 14,400 × M = 438,000 × $0.005/1,000 = $2.19; and the indexes' 240 × M = 7,300: $0.0365.
    close(line(lines, "S3 PUT (one per object)").steady, ((14_400 * M) / 1000) * 0.005, "PUT");
    close(line(lines, "S3 PUT of hour indexes").steady, ((240 * M) / 1000) * 0.005, "index PUT");
    // Storage Transfer reads each object with a GET and a HEAD: 876,000 × $0.0004/1,000 = $0.35.
    close(line(lines, "S3 GET/HEAD by Storage Transfer").steady, ((2 * 14_400 * M) / 1000) * 0.0004, "GET");
    // SQS: 3 requests per message: 1,314,000 × $0.40/M = $0.53.
    close(line(lines, "SQS").steady, ((3 * 14_400 * M) / 1e6) * 0.4, "SQS");
    // GCS class A 67,372.8 a day, class B 48,096 a day (plan.test.ts): $10.25 and $0.59.
    close(line(lines, "GCS Class A").steady, ((67_372.8 * M) / 1000) * 0.005, "class A");
    close(line(lines, "GCS Class B").steady, ((48_096 * M) / 1000) * 0.0004, "class B");
    // Invocations: 14,400 finalizes + 1,440 flushes = 15,840 a day × M × $0.40/M = $0.19.
    close(line(lines, "Function invocations").steady, ((15_840 * M) / 1e6) * 0.4, "invocations");
    // Pub/Sub: 14,400 finalize events a day, each published and delivered at 1,500 B:
    // 14,400 × M × 3,000 B / 2^40 × $40 = $0.048.
    close(line(lines, "Pub/Sub").steady, ((14_400 * M * 3000) / 2 ** 40) * 40, "Pub/Sub");
    // Egress: 2.16036e10 × M = 612.0 GiB, all in the first 10 TB tier: × $0.09 = $55.08.
    close(line(lines, "AWS data transfer out").steady, ((STORED * M) / GIB) * 0.09, "egress");
    // BigQuery logical: 864M rows × 303 B × 30 days / 2^30 = 7,314.7 GiB × $0.02 = $146.29.
    close(line(lines, "BigQuery active logical").steady, ((864e6 * 303 * 30) / GIB) * 0.02, "BigQuery");
    // Function compute at the deployed size (lib/gcp-deploy.ts: 512Mi, the tier's 0.333 vCPU and
    // 0.5 GiB). A finalize checks an object of 6,000,000 raw B × 2.1 = 12.02 MiB of records:
    // 0.2 s + 0.2 s × 12.02 = 2.603 s, billed 2.7 s (100 ms steps); the flush works 0.015 s an
    // object plus a 20 s job per window: 14,400 × 2.7 + 14,400 × 0.015 + 720 × 20 = 53,496 s a
    // day × M × (0.333 × $0.000024 + 0.5 × $0.0000025) = $15.04.
    const compute = line(lines, "Function compute");
    assert.match(compute.item, /^Function compute \(512Mi: 0\.333 vCPU, 0\.5 GiB/);
    close(
      compute.steady,
      (14_400 * 2.7 + 14_400 * 0.015 + 720 * 20) * M * (0.333 * 0.000024 + 0.5 * 0.0000025),
      "compute",
    );
    // GCS landing copies kept 7 days: 2.16036e10 × 7 / 2^30 = 140.8 GiB × $0.02 = $2.82.
    close(line(lines, "GCS landing copies").steady, ((STORED * 7) / GIB) * 0.02, "GCS staging");
    // Markers: claims/ + done/ (2 × 350 B) for 30 days, manifests and attempts (2 × 350 B)
    // for 7: 14,400 × 700 × 37 / 2^30 × $0.02 = $0.0069.
    close(line(lines, "GCS loader markers").steady, ((14_400 * 700 * 37) / GIB) * 0.02, "markers");
    // The DaemonSet requests 50m CPU and 160 MiB (shipper/deploy/daemonset.ts): 10 nodes ×
    // 730 h × (0.05 × $0.04048 + 0.15625 GiB × 1.0737 GB/GiB × $0.004445) = $20.23.
    close(
      line(lines, "Shipper DaemonSet").steady,
      10 * M * 24 * (0.05 * 0.04048 + 0.15625 * (GIB / 1e9) * 0.004445),
      "fleet",
    );
    // No lifecycle, so no transitions and no other classes.
    assert.equal(
      lines.filter((l) => l.item.includes("transitions") || l.item.includes("DEEP_ARCHIVE")).length,
      0,
    );
  });

  it("bills Deep Archive with its per-object overhead, its 180-day minimum and a transition per object", async () => {
    // The worked example's objects (all ~1.5 MB, so they transition) kept 200 days, moved to
    // Deep Archive at 90: 110 days there, under its 180-day minimum, so 70 more are billed.
    const args = WORKED.map((a, i) =>
      WORKED[i - 1] === "--retention-days" ? "200" : WORKED[i - 1] === "--lifecycle" ? "DEEP_ARCHIVE:90" : a,
    );
    const { lines } = JSON.parse((await runCommand(costCommand, args)).out).report as { lines: Line[] };
    // Standard: 90 days of STORED, plus 8 KB per Deep Archive object for its 110 days:
    // (90 × 2.16036e10 + 14,400 × 8,192 × 110) / 2^30 = 1,822.3 GiB × $0.023 = $41.91.
    close(
      line(lines, "S3 Standard").steady,
      ((90 * STORED + 14_400 * 8192 * 110) / GIB) * 0.023,
      "Standard with the 8 KB overhead",
    );
    // Deep Archive: each object + 32 KB, for max(110, 180) days:
    // (2.16036e10 + 14,400 × 32,768) × 180 / 2^30 = 3,700.6 GiB × $0.00099 = $3.66.
    close(
      line(lines, "S3 DEEP_ARCHIVE").steady,
      (((STORED + 14_400 * 32_768) * 180) / GIB) * 0.00099,
      "Deep Archive with overhead and minimum",
    );
    // One transition per object: 438,000 a month × $0.05/1,000 = $21.90; none in the first
    // month, when nothing is 90 days old yet.
    const transitions = line(lines, "S3 lifecycle transitions into DEEP_ARCHIVE");
    close(transitions.steady, ((14_400 * M) / 1000) * 0.05, "transitions");
    assert.equal(transitions.first, 0);
    assert.equal(line(lines, "S3 DEEP_ARCHIVE").first, 0);
  });

  it("bills small objects in Standard, and the 128 KB minimum and transition per object once they move", async () => {
    // 1,000 namespaces of 100 B/s each on 1 node: a 60 s batch holds 6,000 B raw × 0.25 =
    // 1.5 KB, far under 128 KB: with S3's default rule no object ever transitions.
    const small = [
      "cost",
      "--nodes",
      "1",
      "--gb-per-node-day",
      "8.64",
      "--namespaces",
      "1000",
      "--active-per-node",
      "1000",
      "--skew",
      "zipf:0",
      "--compression",
      "0.25",
      "--line-bytes",
      "100",
      "--policy",
      policy,
      "--format",
      "json",
      "--lifecycle",
      "GLACIER_IR:30",
      // The shipper's small objects themselves, as kept without compaction (on by default).
      "--no-archive-compaction",
    ];
    const byDefault = JSON.parse((await runCommand(costCommand, small)).out).report;
    assert.equal(line(byDefault.lines, "S3 lifecycle transitions into GLACIER_IR").steady, 0);
    assert.equal(line(byDefault.lines, "S3 GLACIER_IR").steady, 0);
    assert.match(
      line(byDefault.lines, "S3 Standard").note ?? "",
      /^100\.0% of archived objects stay in Standard for the whole retention \(below every transition's break-even size\)/,
    );
    // Age-only, S3's default minimum keeps them out too.
    const ageOnly = JSON.parse(
      (await runCommand(costCommand, [...small, "--transition-sizes", "off"])).out,
    ).report;
    assert.equal(line(ageOnly.lines, "S3 lifecycle transitions into GLACIER_IR").steady, 0);
    assert.match(line(ageOnly.lines, "S3 Standard").note ?? "", /^100\.0% .* \(under 128 KB\)/);
  });

  it("break-even sizes: a transition that cannot pay for itself is not made; --transition-sizes off makes it", async () => {
    // The worked example's ~1.5 MB objects, Deep Archive at 180 days, expired at 200: 20 days
    // there bill its 180-day minimum. Break-even s (M = 365/12):
    //   0.023·s·20/M = 0.05/1000·2^30 + 0.00099·(s + 32,768)·180/M + 0.023·8,192·20/M
    //   s·(0.0151233 − 0.0058586) = 53,687.09 + 191.97 + 123.89 → s ≈ 5,828,900 bytes,
    // so no worked-example object moves, and Standard bills all 200 days.
    const args = WORKED.map((a, i) =>
      WORKED[i - 1] === "--retention-days" ? "200" : WORKED[i - 1] === "--lifecycle" ? "DEEP_ARCHIVE:180" : a,
    );
    const sized = JSON.parse((await runCommand(costCommand, args)).out).report;
    const [deep] = sized.transitionsBySize;
    assert.equal(deep.storageClass, "DEEP_ARCHIVE");
    assert.ok(Math.abs(deep.minBytes - 5_828_900) < 600, String(deep.minBytes));
    assert.equal(deep.movingObjectsPerDay, 0);
    assert.equal(deep.stayingObjectsPerDay, 14_400);
    assert.equal(line(sized.lines, "S3 lifecycle transitions into DEEP_ARCHIVE").steady, 0);
    close(line(sized.lines, "S3 Standard").steady, ((200 * STORED) / GIB) * 0.023, "Standard all 200 days");
    // Age-only: every object moves at 180 and bills Deep Archive's minimum: 14,400 × M transitions.
    const ageOnly = JSON.parse(
      (await runCommand(costCommand, [...args, "--transition-sizes", "off"])).out,
    ).report;
    close(
      line(ageOnly.lines, "S3 lifecycle transitions into DEEP_ARCHIVE").steady,
      ((14_400 * M) / 1000) * 0.05,
      "age-only transitions",
    );
    assert.equal(ageOnly.transitionsBySize[0].movingObjectsPerDay, 14_400);
    assert.ok(ageOnly.totals.steady.total > sized.totals.steady.total);
  });

  it("with --archive-compaction bills the originals' landing days, the parts, the manifests and the compactor, by hand", async () => {
    // plan.test.ts: one 900,150,000 B part per hour (24 a day), 14,400 members; 2 landing days.
    const noLate = join(dir, "no-late.yaml");
    writeFileSync(noLate, "compactionSupplementShare: 0\ncompactionKeptWholeShare: 0\n");
    const args = [...WORKED_FLEET, "--archive-compaction", "--landing-days", "2", "--assumptions", noLate];
    const { lines, medianArchivedObjectBytes } = JSON.parse((await runCommand(costCommand, args)).out)
      .report as {
      lines: Line[];
      medianArchivedObjectBytes: number;
    };
    const INDEXED = 240 * hourIndexBytes(60);
    // Standard: the originals their hour, then to 2 days after it (the compactor deletes them 6 h
    // + up to a 1 h run after it) + 1 noncurrent day, the parts (the same STORED bytes a day) 30,
    // the hour indexes and the 24 manifests of 600 members and one part and their 24 plans (the
    // same bytes) 30, and 14,400 delete markers a day at their key's 116 B, 30.
    close(
      line(lines, "S3 Standard").steady,
      (((1 / 24 + 3) * STORED +
        30 * STORED +
        30 * INDEXED +
        30 * 2 * 24 * compactionManifestBytes(600, 1) +
        30 * 14_400 * 116) /
        GIB) *
        0.023,
      "S3 Standard",
    );
    // Requests a day (as plan.test.ts, with 2 landing days the CronJob's lookback is 2 × 24 − 12
    // = 36 h, a 35-hour window at the run at 01:20): GET 19,128 (enumeration 34 committed hours'
    // manifests a run, 816; indexes 4 hours × 10 nodes by each of 4 pods a run, 3,840;
    // compacting 14,472: one GET per original, no HEAD, 2 HEADs a part, a plan GET an hour), LIST 1,176 (a run: 2 × 4 namespace LISTs, 21 pages of the window's
    // 21,000 originals, 1 of compacted keys, 16 index pages; 3 per pending hour), PUT-class 744.
    const gets = [
      ["S3 GET/HEAD by the compactor", 14_472],
      ["S3 GET by the compactor's enumeration", 816],
      ["S3 GET by the compactor: hour indexes", 3_840],
    ] as const;
    for (const [item, perDay] of gets) close(line(lines, item).steady, ((perDay * M) / 1000) * 0.0004, item);
    close(line(lines, "S3 LIST by the compactor").steady, ((1_176 * M) / 1000) * 0.005, "compactor LIST");
    close(line(lines, "S3 PUT by the compactor").steady, ((744 * M) / 1000) * 0.005, "compactor PUT");
    // No tags; one free DeleteObject per original (14,400 a day), none kept whole here.
    assert.equal(lines.filter((l) => /tag/i.test(l.item)).length, 0);
    close(line(lines, "S3 DELETE by the compactor").quantity, 14_400 * M, "deletes");
    assert.equal(line(lines, "S3 DELETE by the compactor").steady, 0);
    // The pods: 21.6036 GB × 11 CPU-s/GB = 237.6396 s + 14,400 × 0.0025 s = 273.6396 pod-seconds a
    // day (4 pods a run, each a quarter), at each pod's 1 CPU and 1Gi (1.073741824 GB) priced like the fleet.
    close(
      line(lines, "Compactor CronJob pod requests").steady,
      ((273.6396 * M) / 3600) * (1 * 0.04048 + 1.073741824 * 0.004445),
      "compactor pod",
    );
    // The originals' PUTs are as before; the median archived object is the part.
    close(line(lines, "S3 PUT (one per object)").steady, ((14_400 * M) / 1000) * 0.005, "PUT");
    close(medianArchivedObjectBytes, 900_150_000, "median archived object");
  });

  it("--help shows each default once, the lifecycle as the flag's own syntax", () => {
    const help = costCommand().helpInformation().replace(/\s+/g, " ");
    assert.equal(help.match(/STANDARD_IA:30,GLACIER_IR:90,DEEP_ARCHIVE:180/g)?.length, 1, help);
    assert.doesNotMatch(help, /storageClass/);
    assert.match(help, /--retention-days <d> [^-]*\(default: 730\)/);
  });

  it("adds up the BigQuery billing model infra deploys (physical, lib/gcp-deploy.ts) unless told otherwise", async () => {
    const inTotal = async (args: string[]) => {
      const { lines } = JSON.parse((await runCommand(costCommand, args)).out).report as {
        lines: (Line & { inTotal: boolean })[];
      };
      return lines.filter((l) => l.item.startsWith("BigQuery") && l.inTotal).map((l) => l.item);
    };
    const withoutBilling = WORKED.filter(
      (a, i) => a !== "--bigquery-billing" && WORKED[i - 1] !== "--bigquery-billing",
    );
    assert.deepEqual(await inTotal(withoutBilling), [
      "BigQuery active physical (+14 days time travel and fail-safe) (30-day partitions)",
      "BigQuery long-term physical (30-day partitions)",
    ]);
    assert.deepEqual(await inTotal([...withoutBilling, "--bigquery-billing", "logical"]), [
      "BigQuery active logical (30-day partitions)",
      "BigQuery long-term logical (30-day partitions)",
    ]);
  });

  it("defaults to the lifecycle and retention infra deploys (lib/archive-lifecycle.ts)", async () => {
    assert.equal(DEFAULT_COST_RETENTION_DAYS, 730);
    assert.deepEqual(DEFAULT_COST_LIFECYCLE, [
      { storageClass: "STANDARD_IA", afterDays: 30 },
      { storageClass: "GLACIER_IR", afterDays: 90 },
      { storageClass: "DEEP_ARCHIVE", afterDays: 180 },
    ]);
    const { out } = await runCommand(costCommand, ["cost", ...workedFleetArgs(fixture)]);
    assert.match(out, /retention 730 days, lifecycle STANDARD_IA@30d → GLACIER_IR@90d → DEEP_ARCHIVE@180d/);
  });

  it("takes prices from a file, and refuses an unknown price id with a one-line error", async () => {
    const prices = join(dir, "prices.yaml");
    writeFileSync(prices, "s3_put_per_1k: { value: 0.01, source: negotiated }\n");
    const { out } = await runCommand(costCommand, [...WORKED, "--prices", prices]);
    const report = JSON.parse(out).report;
    close(line(report.lines, "S3 PUT").steady, ((14_400 * M) / 1000) * 0.01, "PUT at the override");
    assert.equal(report.prices.s3_put_per_1k.source, "negotiated");
    writeFileSync(prices, "s3_puts: 1\n");
    await assert.rejects(
      runCommand(costCommand, [...WORKED, "--prices", prices]),
      (error: Error) => error instanceof UserError && /s3_puts: unknown price id/.test(error.message),
    );
    await assert.rejects(
      runCommand(costCommand, [...WORKED, "--lifecycle", "GLACIER:x"]),
      /--lifecycle: expected/,
    );
  });
});
