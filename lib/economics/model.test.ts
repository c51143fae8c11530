import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import fc from "fast-check";
import { DEFAULT_FINALIZE_MAX_INSTANCES, DEFAULT_FUNCTION_MEMORY } from "../gcp-deploy.ts";
import { DEFAULT_POLICY } from "../policy/policy.ts";
import { compactionManifestBytes, costModel, hourIndexBytes } from "./cost.ts";
import { designFromConfig, functionsDesign } from "./design.ts";
import {
  batchShape,
  type CompactionDesign,
  DEFAULT_ASSUMPTIONS,
  type LoaderDesign,
  namespaceNodeCounts,
  type PlanInputs,
  planModel,
  type ShipperDesign,
  type Workload,
} from "./model.ts";
import { DEFAULT_PRICES } from "./prices.ts";
import { quotaChecks } from "./quotas.ts";

const SHIPPER: ShipperDesign = {
  analyticsBatchAgeSeconds: 60,
  archiveBatchAgeSeconds: 60,
  batchMaxBytes: 8 * 2 ** 20,
  analyticsStream: false,
};
const LOADER: LoaderDesign = {
  windowSeconds: 120,
  flushIntervalSeconds: 60,
  flushDeadlineSeconds: 300,
  maxUrisPerJob: 10_000,
  tables: 1,
  stateBucketIsLanding: true,
  validateObjects: true,
  markers: "per-object",
  flushConcurrency: 16,
  batchEstimateSecondsPerObject: 0.015,
  sweepIntervalSeconds: 300,
  sweepMaxObjectsPerRun: 10_000,
  sweepMaxListsPerRun: 500,
  tableJobsPerDay: 1500,
  projectJobsPerDay: 100_000,
  tableJobGuard: 1200,
};
const COST = {
  retentionDays: 365,
  lifecycle: [
    { storageClass: "STANDARD_IA" as const, afterDays: 30 },
    { storageClass: "DEEP_ARCHIVE" as const, afterDays: 90 },
  ],
  transitionSizes: "break-even" as const,
  smallObjects: "all_storage_classes_128K" as const,
  streamRetentionDays: 3,
  gcsStagingDays: 7,
  markerRetentionDays: 365,
  bigqueryDays: 90,
  bigqueryBilling: "logical" as const,
  athenaTbPerMonth: 1,
  restoreGbPerMonth: 100,
  shipperCpu: 0.1,
  shipperMemoryGiB: 0.125,
  compactorCpu: 1,
  compactorMemoryGiB: 1,
};

const workloadArb = fc.record({
  nodes: fc.integer({ min: 1, max: 20_000 }),
  rawBytesPerNodeDay: fc.double({ min: 1e6, max: 5e10, noNaN: true }),
  namespaces: fc.integer({ min: 1, max: 2000 }),
  activePerNode: fc.integer({ min: 1, max: 60 }),
  zipfExponent: fc.double({ min: 0, max: 2, noNaN: true }),
  analyticsShare: fc.double({ min: 0, max: 1, noNaN: true }),
  storedPerRaw: fc.double({ min: 0.05, max: 0.6, noNaN: true }),
  rawLineBytes: fc.double({ min: 60, max: 2000, noNaN: true }),
  recordPerRaw: fc.double({ min: 1, max: 3, noNaN: true }),
});

function inputs(workload: Workload, shipper: ShipperDesign = SHIPPER): PlanInputs {
  return {
    workload,
    shipper,
    loader: LOADER,
    functions: functionsDesign(),
    assumptions: DEFAULT_ASSUMPTIONS,
    notificationRules: 1,
  };
}

describe("volume model", () => {
  it("keeps every byte: the objects' bytes add up to nodes × raw × stored/raw", () => {
    fc.assert(
      fc.property(workloadArb, fc.boolean(), (w, stream) => {
        const m = planModel(inputs(w, { ...SHIPPER, analyticsStream: stream }));
        // With an analytics stream the analytics bytes are written twice: archive and stream.
        // Plus each object's fixed gzip cost.
        const expected =
          w.nodes * w.rawBytesPerNodeDay * w.storedPerRaw * (stream ? 1 + w.analyticsShare : 1) +
          m.sizes.all.objectsPerDay * DEFAULT_ASSUMPTIONS.gzipObjectOverheadBytes;
        const actual = m.classes.reduce((s, c) => s + c.perDay * c.bytes, 0);
        assert.ok(Math.abs(actual - expected) <= expected * 1e-6, `${actual} vs ${expected}`);
      }),
      { numRuns: 60 },
    );
  });

  it("grows with the fleet: more nodes never mean fewer objects, requests, dollars or headroom used", () => {
    fc.assert(
      fc.property(workloadArb, fc.integer({ min: 1, max: 10_000 }), (w, more) => {
        const small = planModel(inputs(w));
        const big = planModel(inputs({ ...w, nodes: w.nodes + more }));
        assert.ok(big.sizes.all.objectsPerDay >= small.sizes.all.objectsPerDay);
        assert.ok(big.gcs.perDay.classA >= small.gcs.perDay.classA);
        assert.ok(big.s3.hottestPrefix.putsPerSecond >= small.s3.hottestPrefix.putsPerSecond * (1 - 1e-9));
        const bill = (m: typeof small) => costModel(m, COST, DEFAULT_PRICES).totals.steady.total;
        assert.ok(bill(big) >= bill(small));
        const use = (m: typeof small) => new Map(quotaChecks(m).map((q) => [q.id, q.use]));
        const [u1, u2] = [use(small), use(big)];
        for (const [id, v] of u1) assert.ok(u2.get(id)! >= v * (1 - 1e-9), id);
      }),
      { numRuns: 40 },
    );
  });

  it("writes fewer objects as batches get longer", () => {
    fc.assert(
      fc.property(
        workloadArb,
        fc.integer({ min: 1, max: 1800 }),
        fc.integer({ min: 1, max: 1800 }),
        (w, a, extra) => {
          const short = planModel(
            inputs(w, { ...SHIPPER, analyticsBatchAgeSeconds: a, archiveBatchAgeSeconds: a }),
          );
          const long = planModel(
            inputs(w, { ...SHIPPER, analyticsBatchAgeSeconds: a + extra, archiveBatchAgeSeconds: a + extra }),
          );
          assert.ok(long.sizes.all.objectsPerDay <= short.sizes.all.objectsPerDay * (1 + 1e-9));
        },
      ),
      { numRuns: 60 },
    );
  });

  it("counts batches per hour between one per hour with lines and one per line", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.001, max: 1e6, noNaN: true }),
        fc.integer({ min: 1, max: 3600 }),
        (bytesPerSecond, age) => {
          const s = batchShape(bytesPerSecond, 100, 0.25, age, 8 * 2 ** 20);
          const lines = (bytesPerSecond / 100) * 3600;
          assert.ok(s.objectsPerHour <= lines * (1 + 1e-9));
          assert.ok(s.objectsPerHour >= -Math.expm1(-lines) * (1 - 1e-9));
          assert.ok(s.fullBytes >= 0 && s.partialBytes >= 0);
        },
      ),
    );
    // An hour-long batch: exactly the chance that the hour has a line.
    const hourly = batchShape(1, 100, 0.25, 3600, 8 * 2 ** 20);
    assert.ok(Math.abs(hourly.objectsPerHour - -Math.expm1(-36)) < 1e-12);
    // A steady stream cut every 60 s: 60 an hour.
    assert.ok(Math.abs(batchShape(1e5, 100, 0.25, 60, 8 * 2 ** 20).objectsPerHour - 60) < 1e-6);
    // Cut by size: 8 MiB at 250 KB/s compressed is 33.6 s, about 107 an hour.
    const bySize = batchShape(1e6, 100, 0.25, 3600, 8 * 2 ** 20);
    assert.ok(Math.abs(bySize.objectsPerHour - Math.ceil(3600 / ((8 * 2 ** 20) / 250_000))) <= 1);
  });

  it("puts the most popular namespace on every node once the skew makes it so", () => {
    const counts = namespaceNodeCounts({
      nodes: 10_000,
      rawBytesPerNodeDay: 5e9,
      namespaces: 1000,
      activePerNode: 30,
      zipfExponent: 1.1,
      analyticsShare: 1,
      storedPerRaw: 0.2,
      rawLineBytes: 250,
      recordPerRaw: 2,
    });
    assert.equal(counts[0], 10_000);
    assert.ok(Math.abs(counts.reduce((a, b) => a + b, 0) - 10_000 * 30) < 1e-6 * 300_000);
  });
});

describe("loader operations", () => {
  it("counts a finalize for every marker written into the landing bucket when state shares it", () => {
    // plan.test.ts's worked example: 14,400 objects a day in 720 batches. In the landing
    // bucket, claims/ and pending/ (finalize) and done/ (flush) fire a finalize each, and so
    // do the 5 writes per batch: 3 × 14,400 + 5 × 720 = 46,800.
    const m = planModel({
      ...inputs({
        nodes: 10,
        rawBytesPerNodeDay: 8.64e9,
        namespaces: 1,
        activePerNode: 1,
        zipfExponent: 0,
        analyticsShare: 1,
        storedPerRaw: 0.25,
        rawLineBytes: 100,
        recordPerRaw: 2.1,
      }),
    });
    assert.ok(Math.abs(m.functions.finalizeIgnored - 46_800) < 1);
    const separate = planModel({ ...m.inputs, loader: { ...LOADER, stateBucketIsLanding: false } });
    assert.equal(separate.functions.finalizeIgnored, 0);
  });
});

describe("loader capacity (functions/loader/flush.ts: full jobs start at once)", () => {
  // 6,000 nodes, one analytics namespace, a 60 s batch each: 6,000 × 1,440 = 8,640,000 objects
  // a day into one table; its 120 s window brings 8,640,000 / 720 = 12,000, more than a job.
  const workload: Workload = {
    nodes: 6000,
    rawBytesPerNodeDay: 1e9,
    namespaces: 1,
    activePerNode: 1,
    zipfExponent: 0,
    analyticsShare: 1,
    storedPerRaw: 0.2,
    rawLineBytes: 250,
    recordPerRaw: 1.5,
  };
  const close = (actual: number, expected: number, what: string) =>
    assert.ok(Math.abs(actual - expected) <= expected * 1e-6, `${what}: ${actual} vs ${expected}`);

  it("is the job guard × URIs per job when the flush is fast, and loads a backlog in full jobs", () => {
    // flush_concurrency 160, 10× the 16 the measured 0.015 s/object holds at: 0.015 × 10^-0.89
    // = 0.0019323 s/object (flush.ts's measured speed-up), a full batch 19.32 s + the 20 s job =
    // 39.32 s. A run starts a batch while the time left before its 300 s deadline covers the last
    // batch and flush.ts's estimate at 160 (10,000 × 1.932 ms = 19.32 s): at 300, 260.7, 221.4,
    // 182.0, 142.7, 103.4 and 64.1 s left, not at 24.8: 7 batches, 275.2 s, next run at 300 s:
    // 288 × 7 × 10,000 = 20.16M a day, over the jobs' min(1,200, 1,500, 100,000) × 10,000 = 12M.
    const m = planModel({ ...inputs(workload), loader: { ...LOADER, flushConcurrency: 160 } });
    close(m.loader.fullBatchSeconds, 10_000 * 0.015 * 0.1 ** 0.89 + 20, "full batch seconds");
    close(m.loader.loadedObjectsPerTablePerDay, 8_640_000, "objects/table/day");
    close(m.loader.flushCeilingObjectsPerTablePerDay, 20_160_000, "flush ceiling");
    close(m.loader.capacityObjectsPerTablePerDay, 12_000_000, "capacity");
    assert.equal(m.loader.capacityBoundBy, "jobs");
    // Every object loads, 8.64M / 10,000 = 864 full jobs (the old model's one job per window
    // made 720 and a backlog); freshness is bounded.
    close(m.loader.jobsPerTablePerDay, 864, "jobs/table/day");
    assert.equal(m.loader.loadedShare, 1);
    assert.equal(m.loader.backlogGrowthPerDay, 0);
    assert.notEqual(m.freshness, null);
    const q = quotaChecks(m).find((c) => c.id === "loader_objects_per_table_day");
    close(q?.headroom ?? 0, 12_000_000 / 8_640_000, "headroom");
  });

  it("is the flush runs' ceiling at the default speed: over it the backlog grows", () => {
    // 170 s a batch, 1 per 300 s run (130 s left after it), 180 s apart: 4.8M a day
    // (plan.test.ts's worked example).
    const m = planModel(inputs(workload));
    close(m.loader.capacityObjectsPerTablePerDay, 4_800_000, "capacity");
    assert.equal(m.loader.capacityBoundBy, "flush-deadline");
    close(m.loader.backlogGrowthPerDay, 8_640_000 - 4_800_000, "backlog");
    assert.equal(m.freshness, null);
  });
});

const close = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= expected * 1e-6, `${what}: ${actual} vs ${expected}`);

describe("what the deploy decides", () => {
  it("reads the functions' size and the finalize max instances from the deploy's settings, not assumptions", () => {
    // These were assumptions (0.167 vCPU, 0.25 GiB, Cloud Run's default of 100 max instances)
    // while infra deployed 512 MiB and set no max; now both sides read lib/gcp-deploy.ts
    // (infra/economics.test.ts checks the deployed resources carry the same values).
    for (const gone of ["functionVcpu", "functionMemoryGiB", "functionMaxInstances"])
      assert.ok(!(gone in DEFAULT_ASSUMPTIONS), gone);
    const infra = readFileSync(new URL("../../infra/components/loader.ts", import.meta.url), "utf8");
    assert.match(infra, /maxInstanceCount: args\.finalizeMaxInstances/);
    const design = designFromConfig({ policy: DEFAULT_POLICY });
    assert.deepEqual(design.functions, {
      memory: DEFAULT_FUNCTION_MEMORY,
      memoryGiB: 0.5,
      vcpu: 0.333,
      finalizeMaxInstances: DEFAULT_FINALIZE_MAX_INSTANCES,
    });
  });

  it("bills the function compute at the deployed size and checks instances against the deployed max", () => {
    const w: Workload = {
      nodes: 1000,
      rawBytesPerNodeDay: 5e9,
      namespaces: 100,
      activePerNode: 30,
      zipfExponent: 1.1,
      analyticsShare: 0.97,
      storedPerRaw: 0.224,
      rawLineBytes: 250,
      recordPerRaw: 2.1,
    };
    const small = planModel({ ...inputs(w), functions: functionsDesign({ functionMemory: "256Mi" }) });
    const big = planModel({ ...inputs(w), functions: functionsDesign({ functionMemory: "1Gi" }) });
    // Same billed seconds; CPU and memory scale with the tier (0.167 → 0.583 vCPU, 0.25 → 1 GiB).
    close(big.functions.vcpuSecondsPerDay / small.functions.vcpuSecondsPerDay, 0.583 / 0.167, "vCPU");
    close(big.functions.gibSecondsPerDay / small.functions.gibSecondsPerDay, 4, "GiB");
    const limited = planModel({ ...inputs(w), functions: functionsDesign({ finalizeMaxInstances: 7 }) });
    const q = quotaChecks(limited).find((c) => c.id === "function_instances");
    assert.equal(q?.limit, 7);
    close(q?.headroom ?? 0, 7 / limited.functions.concurrentInstances, "headroom");
    assert.match(
      q?.source ?? "",
      /7 × 512Mi take 2\.331 vCPU and 3\.5 GiB .*\(at most the default max instances\)/,
    );
    // Past the default, the region's Cloud Run CPU and memory quota bounds it: 500 × 512Mi fit
    // the documented example baseline (1,000 vCPU, 2,000 GiB), 4,000 do not (1,332 vCPU).
    const source = (finalizeMaxInstances: number) =>
      quotaChecks(planModel({ ...inputs(w), functions: functionsDesign({ finalizeMaxInstances }) })).find(
        (c) => c.id === "function_instances",
      )?.source ?? "";
    assert.match(
      source(500),
      /500 × 512Mi take 166\.5 vCPU and 250 GiB .*, under the documented example baseline/,
    );
    assert.match(source(4000), /4000 × 512Mi take 1332 vCPU and 2000 GiB .*: needs a quota increase/);
  });
});

describe("archive compaction (docs/design/compaction.md)", () => {
  // Worked example: 10 nodes, one archive-only namespace, 8.64e8 raw B a day each = 10,000 B/s
  // (100 lines/s of 100 B), gzip 0.25: 9,000,000 B an hour. Hourly batches under a 64 MiB cap, so
  // each node-hour is one object of 9,000,000 + 250 (gzip's fixed cost) = 9,000,250 B: 240 a day,
  // 2,160,060,000 B. Compacted: each hour's 10 objects, 90,002,500 B, in parts of at most 32 MiB
  // (33,554,432): k = ceil(2.682) = 3 parts of 30,000,833.33 B, 72 a day.
  const WORKLOAD: Workload = {
    nodes: 10,
    rawBytesPerNodeDay: 8.64e8,
    namespaces: 1,
    activePerNode: 1,
    zipfExponent: 0,
    analyticsShare: 0,
    storedPerRaw: 0.25,
    rawLineBytes: 100,
    recordPerRaw: 2,
  };
  const HOURLY: ShipperDesign = {
    analyticsBatchAgeSeconds: 3600,
    archiveBatchAgeSeconds: 3600,
    batchMaxBytes: 64 * 2 ** 20,
    analyticsStream: false,
  };
  const DESIGN: CompactionDesign = {
    landingDays: 3,
    deleteAfterHours: 6,
    partMaxBytes: 32 * 2 ** 20,
    uploadPartBytes: 16 * 2 ** 20,
    lookbackHours: 48,
    settleMinutes: 75,
    indexMarginHours: 2,
    shards: 2,
  };
  const PART = 90_002_500 / 3;
  const M = 365 / 12;
  const GIB = 2 ** 30;
  const modelWith = (supplementShare: number, design: CompactionDesign | null = DESIGN, keptWholeShare = 0) =>
    planModel({
      ...inputs(WORKLOAD, HOURLY),
      assumptions: {
        ...DEFAULT_ASSUMPTIONS,
        compactionSupplementShare: supplementShare,
        compactionKeptWholeShare: keptWholeShare,
      },
      compaction: design,
    });

  it("counts the compactor's objects, requests and compute by hand", () => {
    const m = modelWith(0);
    close(m.sizes.all.objectsPerDay, 240, "originals/day");
    close(m.sizes.all.medianBytes, 9_000_250, "original size");
    const c = m.compaction;
    assert.ok(c !== null);
    close(c.membersPerDay, 240, "members");
    close(c.namespaceHoursPerDay, 24, "namespace-hours");
    close(c.sizes.objectsPerDay, 72, "parts/day");
    close(c.sizes.medianBytes, PART, "part size");
    close(c.manifestsPerDay, 24, "manifests");
    // PUT-class: each part a multipart upload: create + ceil(30,000,833 / 16,777,216) = 2
    // UploadParts + complete = 4, × 72 = 288; and 24 plans and 24 manifests: 336.
    close(c.compacting.putsPerDay, 288 + 24 + 24, "PUT-class requests");
    assert.equal(c.putsPerDay, c.compacting.putsPerDay);
    // The run at 01:20 (settle 75 min + 5) looks at hours from 47 h back to the one that ended
    // 80 min ago: 47 hours.
    assert.equal(c.windowHours, 47);
    // Enumeration, a run: the namespaces in 2 tiers (2 delimiter LISTs) by each of the 2 shards:
    // 4; the namespace's 470 originals in the window (one page) and its compacted keys (one
    // page), by its own shard only: 2; the 46 committed hours' manifests: 46.
    close(c.enumeration.listPagesPerDay, 24 * (4 + 2), "enumeration LIST");
    close(c.enumeration.getsPerDay, 24 * 46, "enumeration GET");
    // Hour indexes: 4 index hours a run (H-1 to H+2), one LIST page and 10 GETs each, by each shard.
    close(c.indexes.listPagesPerDay, 24 * 2 * 4, "index LIST");
    close(c.indexes.getsPerDay, 24 * 2 * 4 * 10, "index GET");
    // Compacting a namespace-hour: its manifests' LIST and one per tier: 3; one GET per original
    // and no HEAD (version and size from the listing, SHA-256 from the hour index: 240 a day),
    // two HEADs per part (72) and a GET for a stored plan (24): 408.
    close(c.compacting.listPagesPerDay, 24 * 3, "compacting LIST");
    close(c.compacting.getsPerDay, 240 + 2 * 72 + 24, "compacting GET/HEAD");
    close(c.getsPerDay, 1104 + 1920 + 408, "GETs");
    close(c.listPagesPerDay, 144 + 192 + 72, "LIST pages");
    // Run time at 11 CPU-s per GB: 2.16006 GB × 11 = 23.76066 s a day, plus 240 members × 0.0025 s
    // = 0.6 s: 24.36066 pod-seconds; a run's 2 pods take 24.36066 / 24 / 2 s each.
    close(c.podSecondsPerDay, 24.36066, "pod-seconds a day");
    close(c.runSecondsPerRun, 24.36066 / 24 / 2, "run seconds of each pod");
    // One pod a run: the same pod-seconds, each run twice as long.
    const one = modelWith(0, { ...DESIGN, shards: 1 }).compaction;
    assert.ok(one !== null);
    close(one.podSecondsPerDay, 24.36066, "pod-seconds a day, one shard");
    close(one.runSecondsPerRun, 24.36066 / 24, "run seconds, one shard");
    assert.equal(modelWith(0, null).compaction, null);
  });

  it("bills the originals' landing days, the parts' life, the manifests and the compactor by hand", () => {
    const cost = (mm: ReturnType<typeof modelWith>) =>
      costModel(
        mm,
        { ...COST, retentionDays: 30, lifecycle: [], restoreGbPerMonth: 0, athenaTbPerMonth: 0 },
        DEFAULT_PRICES,
      );
    const line = (r: ReturnType<typeof cost>, prefix: string) => {
      const found = r.lines.find((l) => l.item.startsWith(prefix));
      assert.ok(found, prefix);
      return found;
    };
    const r = cost(modelWith(0));
    // Standard: each original its hour, then (deleted 6 h + up to a 1 h run after it, sooner than
    // its 3-day retention ends) noncurrent to 3 days after its hour, then 1 noncurrent day:
    // 1/24 + 3 + 1 days; the parts (the same 2,160,060,000 B a day) 30 days, the 240 hour indexes
    // of one batch each and the 24 manifests (10 members, 3 parts) and their 24 plans (the same
    // bytes) 30 days, and the 240 delete markers a day at their key's 116 B for the 30 days.
    const gib =
      (2_160_060_000 * (1 / 24 + 3 + 1) +
        2_160_060_000 * 30 +
        240 * hourIndexBytes(1) * 30 +
        2 * 24 * compactionManifestBytes(10, 3) * 30 +
        240 * 116 * 30) /
      GIB;
    close(line(r, "S3 Standard").steady, gib * 0.023, "S3 Standard");
    assert.match(line(r, "S3 Standard").item, /4\.04 days: deleted 6 h after its hour/);
    // The originals' PUTs are unchanged: 240 × M / 1,000 × $0.005.
    close(line(r, "S3 PUT (one per object)").steady, ((240 * M) / 1000) * 0.005, "original PUTs");
    close(line(r, "S3 GET/HEAD by the compactor").steady, ((408 * M) / 1000) * 0.0004, "compacting GETs");
    close(
      line(r, "S3 GET by the compactor's enumeration").steady,
      ((1104 * M) / 1000) * 0.0004,
      "enumeration",
    );
    close(
      line(r, "S3 GET by the compactor: hour indexes").steady,
      ((1920 * M) / 1000) * 0.0004,
      "index GETs",
    );
    close(line(r, "S3 LIST by the compactor").steady, ((408 * M) / 1000) * 0.005, "compactor LIST");
    close(line(r, "S3 PUT by the compactor").steady, ((336 * M) / 1000) * 0.005, "compactor PUT");
    // No tag: the originals carry none, nothing expires them by age.
    assert.equal(r.lines.filter((l) => /tag/i.test(l.item)).length, 0);
    // One DeleteObject per compacted original, 240 a day: free on S3's pricing page.
    const deletes = line(r, "S3 DELETE by the compactor");
    close(deletes.quantity, 240 * M, "deletes");
    assert.equal(deletes.steady, 0);
    close(line(r, "S3 PutObjectRetention by the compactor").quantity, 0, "nothing kept whole");
    // The pods: 24.36066 pod-seconds a day × M / 3,600 hours at 1 vCPU × $0.04048 and 1 GiB (1.074 GB) × $0.004445.
    const compute = ((24.36066 * M) / 3600) * (1 * 0.04048 + 1 * (GIB / 1e9) * 0.004445);
    const pod = line(r, "Compactor CronJob pod requests");
    close(pod.steady, compute, "compactor pod");
    assert.equal(pod.group, "requests");
    const withoutEgress = r.totals.steady.total - r.totals.steady.egress;
    close(r.requestShare, r.totals.steady.requests / withoutEgress, "share, compute as requests");
    close(
      r.requestShareCompactorAsFleet,
      (r.totals.steady.requests - compute) / withoutEgress,
      "share, compute as fleet",
    );
    close(r.medianArchivedObjectBytes, PART, "median archived object is a part");
    // Without compaction: no compactor lines, the originals kept 30 days.
    const plain = cost(modelWith(0, null));
    assert.equal(plain.lines.filter((l) => /compactor/i.test(l.item)).length, 0);
    close(
      line(plain, "S3 Standard").steady,
      ((2_160_060_000 * 30 + 240 * hourIndexBytes(1) * 30) / GIB) * 0.023,
      "S3 Standard without compaction",
    );
  });

  it("sends the parts, not the originals, through the lifecycle, with Glacier's per-object overhead", () => {
    // Age-only Deep Archive at 90, retention 200: 110 days there, billed its 180-day minimum, each
    // part + 32 KB; 8 KB each in Standard for the 110 days; one transition a part: 72 × M.
    const r = costModel(
      modelWith(0),
      {
        ...COST,
        retentionDays: 200,
        lifecycle: [{ storageClass: "DEEP_ARCHIVE", afterDays: 90 }],
        transitionSizes: "off",
        restoreGbPerMonth: 0,
      },
      DEFAULT_PRICES,
    );
    const da = r.lines.find((l) => l.item.startsWith("S3 DEEP_ARCHIVE"));
    close(da?.steady ?? 0, ((72 * (PART + 32_768) * 180) / GIB) * 0.00099, "Deep Archive");
    const moves = r.lines.find((l) => l.item === "S3 lifecycle transitions into DEEP_ARCHIVE");
    close(moves?.steady ?? 0, ((72 * M) / 1000) * 0.05, "transitions");
    assert.match(moves?.note ?? "", /compacted parts/);
    const standard = r.lines.find((l) => l.item.startsWith("S3 Standard"));
    const standardGib =
      (2_160_060_000 * (1 / 24 + 4) +
        2_160_060_000 * 90 +
        72 * 8192 * 110 +
        240 * hourIndexBytes(1) * 200 +
        2 * 24 * compactionManifestBytes(10, 3) * 200 +
        240 * 116 * 200) /
      GIB;
    close(standard?.steady ?? 0, standardGib * 0.023, "Standard");
  });

  it("keeps a share of originals whole: out of the parts, a retention extension each, the tier rules for the retention", () => {
    // 10% of the 240 originals a day (24, 9,000,250 B each) are never compacted: the compactor
    // deletes the other 216 and extends the 24's lock with one PutObjectRetention each.
    const mm = modelWith(0, DESIGN, 0.1);
    const c = mm.compaction;
    assert.ok(c);
    close(c.membersPerDay, 216, "compacted members");
    close(c.deletesPerDay, 216, "deletes");
    close(c.keptWholePerDay, 24, "kept whole");
    const partBytes = c.parts.reduce((sum, p) => sum + p.perDay * p.bytes, 0);
    close(partBytes, 0.9 * 2_160_060_000, "parts hold the compacted 90%");
    const r = costModel(
      mm,
      {
        ...COST,
        retentionDays: 200,
        lifecycle: [{ storageClass: "DEEP_ARCHIVE", afterDays: 90 }],
        transitionSizes: "off",
        restoreGbPerMonth: 0,
      },
      DEFAULT_PRICES,
    );
    const line = (prefix: string) => {
      const found = r.lines.find((l) => l.item.startsWith(prefix));
      assert.ok(found, prefix);
      return found;
    };
    close(line("S3 PutObjectRetention by the compactor").steady, ((24 * M) / 1000) * 0.005, "retention PUTs");
    close(line("S3 DELETE by the compactor").quantity, 216 * M, "deletes a month");
    // Deep Archive from day 90 to 200, billed its 180-day minimum: the 72 parts (0.9 × PART each) and the 24 kept originals.
    close(
      line("S3 DEEP_ARCHIVE").steady,
      (((72 * (0.9 * PART + 32_768) + 24 * (9_000_250 + 32_768)) * 180) / GIB) * 0.00099,
      "Deep Archive",
    );
    close(
      line("S3 lifecycle transitions into DEEP_ARCHIVE").steady,
      (((72 + 24) * M) / 1000) * 0.05,
      "transitions",
    );
    // Standard: the compacted originals (90%) their 4 days and an hour, the parts and the kept
    // originals 90 days (with Glacier's 8 KB each for 110), indexes, manifests, 216 markers a day.
    close(
      line("S3 Standard").steady,
      ((0.9 * 2_160_060_000 * (1 / 24 + 4) +
        2_160_060_000 * 90 +
        (72 + 24) * 8192 * 110 +
        240 * hourIndexBytes(1) * 200 +
        2 * 24 * compactionManifestBytes(9, 3) * 200 +
        216 * 116 * 200) /
        GIB) *
        0.023,
      "Standard",
    );
  });

  it("writes late batches as supplement parts and manifests, keeping every byte in one part", () => {
    // Half the 24 namespace-hours get a supplement: 12 parts of one member (9,000,250 B: create,
    // one UploadPart, complete) and 12 more plans and manifests; the 72 main parts give up those
    // bytes: 2,160,060,000 − 108,003,000.
    const c = modelWith(0.5).compaction;
    assert.ok(c !== null);
    close(c.supplementsPerDay, 12, "supplements");
    close(c.sizes.objectsPerDay, 84, "parts");
    close(c.manifestsPerDay, 36, "manifests");
    close(c.sizes.storedBytesPerDay, 2_160_060_000, "bytes kept");
    close(c.putsPerDay, 72 * 4 + 12 * 3 + 2 * 36, "PUT-class");
  });

  it("keeps every archived byte, in fewer objects, whatever the workload", () => {
    fc.assert(
      fc.property(workloadArb, fc.boolean(), (w, stream) => {
        const m = planModel({
          ...inputs(w, { ...SHIPPER, analyticsStream: stream }),
          compaction: {
            landingDays: 3,
            deleteAfterHours: 6,
            partMaxBytes: 2 ** 30,
            uploadPartBytes: 64 * 2 ** 20,
            lookbackHours: 48,
            settleMinutes: 75,
            indexMarginHours: 2,
            shards: 4,
          },
        });
        const c = m.compaction;
        assert.ok(c !== null);
        // Every archived byte is in a part or an original kept whole, never both.
        const archived = m.classes.filter((x) => x.archived);
        const bytes =
          archived.reduce((s, x) => s + x.perDay * x.bytes, 0) -
          c.keptWhole.reduce((s, x) => s + x.perDay * x.bytes, 0);
        const objects = archived.reduce((s, x) => s + x.perDay, 0);
        assert.ok(
          Math.abs(c.sizes.storedBytesPerDay - bytes) <= bytes * 1e-9,
          `${c.sizes.storedBytesPerDay} vs ${bytes}`,
        );
        assert.ok(c.sizes.objectsPerDay <= objects * (1 + 1e-9) + c.supplementsPerDay);
        for (const part of c.parts) assert.ok(part.bytes <= 2 ** 30 * (1 + 1e-9));
      }),
      { numRuns: 40 },
    );
  });
});
