import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { COMPACTION_ENABLED_BY_DEFAULT, DEFAULT_LANDING_DAYS } from "../../lib/compaction/defaults.ts";
import { ConfigError, UserError } from "../../lib/config/errors.ts";
import { planCommand } from "./plan.ts";
import { close, runCommand, workedExampleFixture, workedFleetArgs } from "./plan_test_support.ts";

const fixture = workedExampleFixture("plan");
const { dir, policy } = fixture;

// Worked example: 10 nodes, one namespace each, 8.64 GB/day per node = 100,000 B/s, lines of
// 100 B (λ = 1,000 lines/s), gzip 0.25 (25,000 B/s compressed). The shipper's defaults
// (shipper/config.ts): batch_max_age 60 s, batch_max_bytes 8 MiB; a minute holds 1.5 MB, so
// every batch is cut by age. Lines never stop, so each hour holds exactly 3,600 / 60 = 60
// batches: 59 of 1 + 1,000 × 60 lines = 60,001 lines × 25 B = 1,500,025 B, and the hour's
// last one the rest, 90,000,000 − 59 × 1,500,025 = 1,498,525 B. Each object also carries
// gzip's fixed 250 B (the header, trailer and first record: gzipObjectOverheadBytes).
const WORKED = [...workedFleetArgs(fixture), "--format", "json"];

describe("logarchive plan", () => {
  it("matches the worked example computed by hand", async () => {
    const { out, code } = await runCommand(planCommand, ["plan", ...WORKED]);
    const plan = JSON.parse(out);
    // Objects: 10 nodes × 60 per hour × 24 = 14,400 a day, all under analytics/.
    close(plan.sizes.all.objectsPerDay, 14_400, "objects/day");
    close(plan.sizes.byTier.analytics.objectsPerDay, 14_400, "analytics objects/day");
    assert.equal(plan.sizes.byTier.archive, undefined);
    // Bytes: 10 × 25,000 B/s × 86,400 s = 2.16e10 B a day + 14,400 × 250 B = 2.16036e10; the
    // median object is a full one, 1,500,025 + 250 = 1,500,275 B.
    close(plan.sizes.all.storedBytesPerDay, 2.16e10 + 14_400 * 250, "stored bytes/day", 1e-9);
    close(plan.sizes.all.medianBytes, 1_500_275, "median object");
    assert.equal(plan.sizes.all.shareUnder128KiB, 0);
    // S3: 14,400 / 86,400 = 0.1667 PUT/s; the one namespace is on all 10 nodes, so its prefix takes them all.
    close(plan.s3.putsPerSecond, 14_400 / 86_400, "PUT/s");
    close(plan.s3.hottestPrefix.putsPerSecond, 14_400 / 86_400, "hottest prefix PUT/s");
    // SQS: every object is notified: 0.1667 messages/s, × 3 requests, × 10 s in flight = 1.667.
    close(plan.sqs.messagesPerSecond, 14_400 / 86_400, "SQS messages/s");
    close(plan.sqs.requestsPerSecond, (3 * 14_400) / 86_400, "SQS requests/s");
    close(plan.sqs.inFlight, (10 * 14_400) / 86_400, "SQS in flight");
    // Loader (functions/loader/plan.ts, 1 table): min(1,500 × 0.5, 100,000 × 0.5) = 750 jobs →
    // 86,400 / 750 = 115.2 s, rounded up to whole 60 s flushes = 120 s: 720 windows a day,
    // 14,400 / 720 = 20 objects each, one job per window (1 − e^−20 ≈ 1).
    assert.equal(plan.loader.windowSeconds, 120);
    close(plan.loader.objectsPerWindow, 20, "objects per window");
    close(plan.loader.jobsPerTablePerDay, 720, "jobs/table/day");
    close(plan.loader.jobsPerProjectPerDay, 720, "jobs/project/day");
    // Capacity: jobs min(guard 1,200, 1,500, 100,000 / 1) = 1,200 × 10,000 URIs = 12,000,000 a
    // day; the flush (flush_concurrency 16, the speed's own concurrency): a full batch is
    // 10,000 × 0.015 s + a 20 s job = 170 s. A run starts a batch while the time left before
    // its 300 s deadline covers the last batch and 10,000 × 15 ms = 150 s: the first (300 s
    // left), not a second (130 s left < 170 s), so the next run is at 180 s (whole 60 s
    // flushes): 86,400 / 180 = 480 runs × 1 × 10,000 = 4,800,000 a day.
    close(plan.loader.jobCeilingObjectsPerTablePerDay, 12_000_000, "job ceiling");
    close(plan.loader.flushCeilingObjectsPerTablePerDay, 4_800_000, "flush ceiling");
    close(plan.loader.capacityObjectsPerTablePerDay, 4_800_000, "capacity");
    assert.equal(plan.loader.capacityBoundBy, "flush-deadline");
    // GCS class A a day: per object the copy, claims/, pending/, done/ = 4 × 14,400 = 57,600;
    // per batch 5 writes × 720 = 3,600; per flush run 2 listings × 1,440 = 2,880 and per
    // table per run 2 listings × 1,440 = 2,880: 66,960.
    // The sweeper (a run every 5 min: 288 a day) takes its watermark each run (288 writes) and
    // in the 24 runs that find a settled hour lists the namespace directories (24), the
    // namespace's hour (24) and a page per 1,000 objects (14.4), swapping the watermark after
    // each list (62.4 writes): 288 + 2 × 62.4 = 412.8. Total 67,372.8.
    close(plan.gcs.perDay.classA, 66_960 + 412.8, "class A/day");
    // Class B: the finalize's object read (14,400) + 1 flush read per object (the live-generation
    // check under the attempt's lease; the pending/ marker comes with its listing: 14,400) + 4
    // per batch (2,880) + the head read per table per run (1,440) = 33,120.
    // The sweeper: a claim check per object (14,400) and the watermark read (2 × 288 = 576).
    close(plan.gcs.perDay.classB, 33_120 + 14_976, "class B/day");
    // Functions: 14,400 finalizes of objects, none of markers (they are in the state
    // bucket; model.test.ts counts the landing-bucket case); a flush every 60 s = 1,440.
    close(plan.functions.finalizeChecked, 14_400, "finalize of objects");
    assert.equal(plan.functions.finalizeIgnored, 0);
    close(plan.functions.flushRuns, 1_440, "flush runs");
    // BigQuery: 10 × 8.64e9 / 100 = 864M rows a day; a row's logical size is 32 (4 numbers)
    // + 16 (8 string headers) + 195 (metadata values) + 60 (message: 100 − the 40-byte CRI
    // prefix) = 303 B: 2.618e11 B a day.
    close(plan.bigquery.rowsPerDay, 864e6, "rows/day");
    close(plan.bigquery.logicalBytesPerDay, 864e6 * 303, "logical bytes/day");
    // Freshness: a line waits at most the 60 s batch and the 120 s window on top of the delays.
    assert.ok(plan.freshness.p50Seconds > 30 && plan.freshness.p95Seconds > plan.freshness.p50Seconds);
    assert.ok(plan.freshness.p95Seconds < 60 + 120 + 60 + 120 + 10 + 60 + 1);
    // Every quota has at least 2× headroom here.
    assert.equal(code, 0);
    assert.ok(plan.quotas.every((q: { ok: boolean; hard: boolean }) => q.ok || !q.hard));
  });

  it("shows which archived objects each transition of infra's lifecycle moves, at lib's break-even sizes", async () => {
    // The worked example's objects are all ~1.5 MB (14,400 a day, every one archived): above all
    // three break-even sizes at the 730-day default (67,170 / 518,408 / 1,059,773 bytes,
    // lib/archive-lifecycle.test.ts), so every transition moves every one of them. These are the
    // shipper's objects kept as they are: compaction off explicitly (it is on by default; the
    // --archive-compaction test below checks the lifecycle table of the parts).
    const { lifecycle } = JSON.parse(
      (await runCommand(planCommand, ["plan", ...WORKED, "--no-archive-compaction"])).out,
    );
    assert.equal(lifecycle.retentionDays, 730);
    assert.deepEqual(
      lifecycle.transitions.map((t: Record<string, number | string>) => [
        t.storageClass,
        t.afterDays,
        t.minBytes,
        t.movingObjectsPerDay,
        t.stayingObjectsPerDay,
      ]),
      [
        ["STANDARD_IA", 30, 518_408, 14_400, 0],
        ["GLACIER_IR", 90, 67_170, 14_400, 0],
        ["DEEP_ARCHIVE", 180, 1_059_773, 14_400, 0],
      ],
    );
  });

  it("exits 1 on a missed quota and names it with the setting to change", async () => {
    // 100 nodes × 30 namespaces, a batch a minute each: 100 × 30 × 60 × 24 = 4.32M objects a
    // day against the flush's 7.2M a day at the default flush_concurrency 32 (the next test):
    // 1.67× headroom; the job ceiling (12M a day) has 2.78×. The first setting named is
    // flush_concurrency.
    const { out, code } = await runCommand(planCommand, [
      "plan",
      "--nodes",
      "100",
      "--gb-per-node-day",
      "5",
      "--namespaces",
      "30",
      "--policy",
      policy,
    ]);
    assert.equal(code, 1);
    assert.match(out, /verdict: 1 quota\(s\) under 2× headroom: loader_flush_throughput/);
    assert.match(
      out,
      /\| 7,200,000 objects\/day +\| 4,320,000 +\| 1\.67× +\| SHORT +\| LOGARCHIVE_FLUSH_CONCURRENCY/,
    );
    assert.match(out, /\| 12,000,000 objects\/day +\| 4,320,000 +\| 2\.78× +\| ok /);
  });

  it("meets the quota when the same fleet's batches are longer", async () => {
    const { code } = await runCommand(planCommand, [
      "plan",
      "--nodes",
      "100",
      "--gb-per-node-day",
      "5",
      "--namespaces",
      "30",
      "--policy",
      policy,
      "--shipper-config",
      writeConfig("shipper.yaml", "batch_max_age: 5m\n"),
    ]);
    assert.equal(code, 0);
  });

  it("models the policy's stream delivery from its own ages, as the hypothetical switches did", async () => {
    const fleet = ["--nodes", "100", "--gb-per-node-day", "5", "--namespaces", "30", "--format", "json"];
    const streamPolicy = writeConfig(
      "stream.yaml",
      'analytics:\n  include: ["*"]\n  exclude: ["kube-system"]\n  delivery: stream\n  stream_batch_max_age: 2m\narchive:\n  batch_max_age: 30m\n',
    );
    const configured = JSON.parse(
      (await runCommand(planCommand, ["plan", ...fleet, "--policy", streamPolicy])).out,
    );
    const perNamespacePolicy = writeConfig(
      "per-ns.yaml",
      'analytics:\n  include: ["*"]\n  exclude: ["kube-system"]\n',
    );
    const switched = JSON.parse(
      (
        await runCommand(planCommand, [
          "plan",
          ...fleet,
          "--policy",
          perNamespacePolicy,
          "--analytics-stream",
          "--analytics-batch-age",
          "2m",
          "--archive-batch-age",
          "30m",
        ])
      ).out,
    );
    assert.ok(configured.sizes.byTier.stream.objectsPerDay > 0, "stream objects are modelled");
    assert.deepEqual(configured.sizes, switched.sizes);
    assert.deepEqual(configured.freshness, switched.freshness);
    // The policy's delivery, not batch_max_age, sets the ages.
    const perNamespace = JSON.parse(
      (await runCommand(planCommand, ["plan", ...fleet, "--policy", perNamespacePolicy])).out,
    );
    assert.equal(perNamespace.sizes.byTier.stream, undefined);
    assert.ok(configured.sizes.all.objectsPerDay < perNamespace.sizes.all.objectsPerDay / 5);
  });

  it("takes the loader's configuration: a 10-minute minimum window holds 5× the objects per job", async () => {
    const { out } = await runCommand(planCommand, [
      "plan",
      ...WORKED,
      "--loader-config",
      writeConfig(
        "loader-window.yaml",
        "LOGARCHIVE_MIN_WINDOW: 10m\nlanding_bucket: landing\nstate_bucket: state\n",
      ),
    ]);
    const plan = JSON.parse(out);
    assert.equal(plan.loader.windowSeconds, 600);
    close(plan.loader.objectsPerWindow, 100, "objects per window");
  });

  it("takes flush_concurrency and the sweeper's bounds from the loader's configuration", async () => {
    // The worked example with flush_concurrency 32: 0.015 s × (16 / 32)^0.89 = 0.00809 s an
    // object (the speed-up measured from 16 to 32, flush.ts), a full batch 80.9 s + the 20 s job
    // = 100.9 s. A run starts a batch while the time left before its 300 s deadline covers the
    // last batch and flush.ts's estimate at 32, 10,000 × 8.09 ms = 80.9 s: at 300 and 199 s
    // left, not at 98: 2 batches, 202 s, next run at 240 s: 360 runs × 2 × 10,000 = 7,200,000 a
    // day. The sweeper: 20,000 objects every 10 min = 144 × 20,000 = 2,880,000 a day.
    const { out } = await runCommand(planCommand, [
      "plan",
      ...WORKED,
      "--loader-config",
      writeConfig(
        "loader-concurrency.yaml",
        "flush_concurrency: 32\nLOGARCHIVE_SWEEP_MAX_OBJECTS: 20000\nsweep_interval: 10m\nlanding_bucket: landing\nstate_bucket: state\n",
      ),
    ]);
    const plan = JSON.parse(out);
    assert.equal(plan.inputs.loader.flushConcurrency, 32);
    close(plan.loader.fullBatchSeconds, 10_000 * 0.015 * 0.5 ** 0.89 + 20, "full batch seconds");
    close(plan.loader.flushCeilingObjectsPerTablePerDay, 7_200_000, "flush ceiling");
    close(plan.loader.sweepCapacityPerDay, 2_880_000, "sweep capacity");
    const flush = plan.quotas.find((q: { id: string }) => q.id === "loader_flush_throughput");
    assert.match(
      flush.source,
      /flush_concurrency 32 .*flush speed 0\.00809\d* s\/object \(0\.015 s at concurrency 16 × \(16\/32\)\^0\.89/,
    );
  });

  it("checks the finalize instances against the deployed max, and prices the deployed memory", async () => {
    // The worked example keeps 14,400 × 2.603 s / 86,400 s = 0.434 finalize instances busy
    // (cost.test.ts derives the 2.603 s): against infra's 500 by default; with
    // --finalize-max-instances 1 the headroom is 1 / 0.434 = 2.30×.
    const instances = async (...extra: string[]) => {
      const { out, code } = await runCommand(planCommand, ["plan", ...WORKED, ...extra]);
      const plan = JSON.parse(out);
      return { q: plan.quotas.find((x: { id: string }) => x.id === "function_instances"), plan, code };
    };
    const byDefault = await instances();
    assert.equal(byDefault.q.limit, 500);
    close(byDefault.q.use, (14_400 * (0.2 + 0.2 * ((6e6 * 2.1) / 2 ** 20))) / 86_400, "instances");
    assert.deepEqual(byDefault.plan.inputs.functions, {
      memory: "512Mi",
      memoryGiB: 0.5,
      vcpu: 0.333,
      finalizeMaxInstances: 500,
    });
    const one = await instances("--finalize-max-instances", "1", "--function-memory", "2Gi");
    assert.equal(one.q.limit, 1);
    assert.equal(one.q.ok, true);
    close(one.q.headroom, 1 / byDefault.q.use, "headroom");
    assert.deepEqual(one.plan.inputs.functions, {
      memory: "2Gi",
      memoryGiB: 2,
      vcpu: 1,
      finalizeMaxInstances: 1,
    });
  });

  it("reads measured inputs from the shipper's metrics", async () => {
    const metrics = writeConfig(
      "metrics.txt",
      [
        "# TYPE logarchive_shipper_read_bytes_total counter",
        "logarchive_shipper_read_bytes_total 1000000",
        "logarchive_shipper_read_lines_total 4000",
        "logarchive_shipper_uploaded_bytes_total 200000",
        "logarchive_shipper_uploaded_raw_bytes_total 2100000",
      ].join("\n"),
    );
    const args = without(WORKED, "--compression", "--line-bytes");
    const { out } = await runCommand(planCommand, ["plan", ...args, "--measured", metrics]);
    const w = JSON.parse(out).inputs.workload;
    assert.equal(w.storedPerRaw, 0.2);
    assert.equal(w.rawLineBytes, 250);
    assert.equal(w.recordPerRaw, 2.1);
  });

  it("counts the analytics bytes once when a stream-delivery shipper's metrics counted them twice", async () => {
    // In stream delivery every analytics line is uploaded in an archive object and in a stream
    // object, and the shipper's counters add both. With every namespace loaded (share 1) the
    // 1,000,000 bytes read were uploaded as 400,000 gzip bytes in 10 objects: (400,000 −
    // 10 × 250) / (1,000,000 × 2) = 0.19875 per raw byte, and 4,200,000 record bytes / 2 = 2.1.
    const metrics = writeConfig(
      "stream-metrics.txt",
      [
        "logarchive_shipper_read_bytes_total 1000000",
        "logarchive_shipper_read_lines_total 4000",
        "logarchive_shipper_uploaded_bytes_total 400000",
        "logarchive_shipper_uploaded_raw_bytes_total 4200000",
        "logarchive_shipper_batches_uploaded_total 10",
      ].join("\n"),
    );
    const streamPolicy = writeConfig(
      "stream-policy.yaml",
      'analytics:\n  include: ["*"]\n  delivery: stream\n',
    );
    const args = without(WORKED, "--compression", "--line-bytes", "--policy");
    const run = async (policyFile: string) =>
      JSON.parse(
        (await runCommand(planCommand, ["plan", ...args, "--policy", policyFile, "--measured", metrics])).out,
      ).inputs.workload;
    const stream = await run(streamPolicy);
    close(stream.storedPerRaw, 0.19875, "stored/raw, stream delivery", 1e-9);
    close(stream.recordPerRaw, 2.1, "record/raw, stream delivery", 1e-9);
    // Per-namespace delivery uploads each byte once: the same metrics mean twice the ratio.
    const perNamespace = await run(policy);
    close(perNamespace.storedPerRaw, 0.3975, "stored/raw, per-namespace delivery", 1e-9);
    close(perNamespace.recordPerRaw, 4.2, "record/raw, per-namespace delivery", 1e-9);
  });

  it("refuses bad inputs with a one-line usage error naming the flag or file", async () => {
    await assert.rejects(
      runCommand(planCommand, ["plan", ...WORKED, "--skew", "pareto:2"]),
      /--skew: expected zipf:S/,
    );
    await assert.rejects(
      runCommand(planCommand, [
        "plan",
        ...WORKED,
        "--shipper-config",
        writeConfig("bad.yaml", "batch_max_agee: 5m\n"),
      ]),
      (error: Error) =>
        error instanceof UserError && /batch_max_agee/.test(error.message) && !error.message.includes("\n"),
    );
    await assert.rejects(
      runCommand(planCommand, ["plan", ...WORKED, "--assumptions", writeConfig("a.yaml", "nope: 1\n")]),
      (error: Error) => error instanceof UserError && /nope: unknown assumption/.test(error.message),
    );
    // The functions' size and max instances are the deploy's settings now, not assumptions.
    await assert.rejects(
      runCommand(planCommand, [
        "plan",
        ...WORKED,
        "--assumptions",
        writeConfig("old.yaml", "functionMaxInstances: 500\n"),
      ]),
      (error: Error) =>
        error instanceof UserError &&
        /functionMaxInstances: no longer an assumption: the deploy sets it \(the stack's finalizeMaxInstances; --finalize-max-instances\)/.test(
          error.message,
        ),
    );
    await assert.rejects(
      runCommand(planCommand, ["plan", ...WORKED, "--function-memory", "768Mi"]),
      /--function-memory: expected a Cloud Run functions memory tier \(128Mi, 256Mi, 512Mi, 1Gi/,
    );
    await assert.rejects(
      runCommand(planCommand, ["plan", ...WORKED, "--finalize-max-instances", "0"]),
      /--finalize-max-instances: expected a whole number ≥ 1/,
    );
    await assert.rejects(
      runCommand(planCommand, [
        "plan",
        ...without(WORKED, "--compression"),
        "--measured",
        join(dir, "missing.txt"),
      ]),
      (error: Error) => error instanceof UserError && /--measured .*missing\.txt: ENOENT/.test(error.message),
    );
    await assert.rejects(
      runCommand(planCommand, ["plan", ...WORKED, "--policy", join(dir, "nope.yaml")]),
      (error: Error) =>
        error instanceof ConfigError && /nope\.yaml is invalid:\n.*ENOENT/.test(error.message),
    );
  });
});

describe("logarchive plan --archive-compaction (docs/design/compaction.md)", () => {
  it("shows the compacted parts' count and median size, and the compactor's work, by hand", async () => {
    // The worked example's 14,400 archived objects a day (60 a node-hour): each hour's 600 from
    // the 10 nodes, 10 × 90,000,000 + 600 × 250 = 900,150,000 B, fit one 1 GiB part: 24 a day.
    const noLate = writeConfig("no-late.yaml", "compactionSupplementShare: 0\ncompactionKeptWholeShare: 0\n");
    const args = ["plan", ...WORKED, "--archive-compaction", "--assumptions", noLate];
    const plan = JSON.parse((await runCommand(planCommand, args)).out);
    const c = plan.compaction;
    close(c.membersPerDay, 14_400, "members");
    close(c.sizes.objectsPerDay, 24, "parts/day");
    close(c.sizes.medianBytes, 900_150_000, "median part");
    assert.equal(c.design.landingDays, 3);
    assert.equal(c.design.partMaxBytes, 2 ** 30);
    assert.equal(c.design.shards, 4);
    assert.equal(c.design.lookbackHours, 48);
    // PUT-class: ceil(900,150,000 / 32 MiB) = 27 UploadParts + create + complete = 29 a part, and
    // 24 plans and 24 manifests: 744.
    close(c.putsPerDay, 24 * 29 + 2 * 24, "PUT-class");
    // GET: enumeration 46 committed hours' manifests a run; 4 index hours × 10 nodes a run by each
    // of the 4 pods; one GET per original (no HEAD: the listing and hour index give its version,
    // size and SHA-256), 2 HEADs a part, a stored plan's GET an hour.
    close(c.getsPerDay, 24 * 46 + 24 * 4 * 40 + 14_400 + 2 * 24 + 24, "GETs");
    // LIST: a run's 2 namespace LISTs by each of 4 pods, 29 pages of the window's 28,200
    // originals, one of its compacted keys, 4 index pages by each pod; each pending hour's
    // manifests and 2 tiers.
    close(c.listPagesPerDay, 24 * (2 * 4 + 29 + 1 + 4 * 4) + 24 * 3, "LIST pages");
    // Each pod's run: 21.6036 GB a day × 11 CPU-s/GB + 14,400 × 0.0025 s = 273.6396 s a day, over
    // 24 runs of 4 pods.
    close(c.podSecondsPerDay, 273.6396, "pod-seconds");
    close(c.runSecondsPerRun, 273.6396 / 24 / 4, "seconds a run");
    // The lifecycle table is of the parts now.
    assert.equal(
      plan.lifecycle.transitions[0].movingObjectsPerDay + plan.lifecycle.transitions[0].stayingObjectsPerDay,
      24,
    );
    const text = (
      await runCommand(
        planCommand,
        args.filter((a) => a !== "--format" && a !== "json"),
      )
    ).out;
    assert.match(text, /\| compacted\/ \(replaces archived objects after their landing days\) \| 24 +\|/);
    assert.match(text, /\| Compacted parts \(median 858 MiB, 0\.0% under 128 KiB\) +\| 24 +\|/);
    assert.match(text, /\| compactorCpuSecondsPerGB +\| 11 +\|/);
    assert.match(text, /One hourly compactor run against the CronJob/);
    // Turned off: no compaction, and its assumptions are not listed.
    const off = [...WORKED, "--no-archive-compaction"];
    assert.equal(JSON.parse((await runCommand(planCommand, ["plan", ...off])).out).compaction, null);
    const plainText = (await runCommand(planCommand, ["plan", ...without(off, "--format")])).out;
    assert.doesNotMatch(plainText, /compactor|compacted\//);
  });

  it("models compaction by default exactly when infra deploys it by default (COMPACTION_ENABLED_BY_DEFAULT)", async () => {
    const plan = JSON.parse((await runCommand(planCommand, ["plan", ...WORKED])).out);
    assert.equal(plan.compaction !== null, COMPACTION_ENABLED_BY_DEFAULT);
    const on = JSON.parse((await runCommand(planCommand, ["plan", ...WORKED, "--archive-compaction"])).out);
    assert.notEqual(on.compaction, null);
    assert.equal(on.compaction.design.landingDays, DEFAULT_LANDING_DAYS);
    const help = planCommand().helpInformation().replace(/\s+/g, " ");
    assert.match(help, new RegExp(`default: ${COMPACTION_ENABLED_BY_DEFAULT ? "on" : "off"}, as infra's`));
    assert.match(help, /--no-archive-compaction/);
  });

  it("refuses compaction settings without the switch, and out-of-range ones, naming the flag", async () => {
    await assert.rejects(
      runCommand(planCommand, ["plan", ...WORKED, "--no-archive-compaction", "--landing-days", "2"]),
      (error: Error) =>
        error instanceof UserError && error.message === "--landing-days: only with --archive-compaction",
    );
    await assert.rejects(
      runCommand(planCommand, ["plan", ...WORKED, "--archive-compaction", "--landing-days", "0"]),
      /--landing-days: expected a whole number of days from 1 to 365/,
    );
    await assert.rejects(
      runCommand(planCommand, ["plan", ...WORKED, "--archive-compaction", "--compaction-part-max", "10KiB"]),
      /--compaction-part-max: expected a size from 1048576 B/,
    );
    await assert.rejects(
      runCommand(planCommand, [
        "plan",
        ...WORKED,
        "--archive-compaction",
        "--compaction-upload-part",
        "1MiB",
      ]),
      /--compaction-upload-part: expected a size from 5242880 B/,
    );
  });
});

function writeConfig(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** The arguments without the given flags and their values. */
function without(args: readonly string[], ...flags: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (flags.includes(args[i]!)) i++;
    else out.push(args[i]!);
  }
  return out;
}
