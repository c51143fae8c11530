import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import { parse } from "yaml";
import {
  DEFAULT_COST_LIFECYCLE,
  DEFAULT_COST_RETENTION_DAYS,
  DEFAULT_COST_TRANSITION_SIZES,
} from "../cli/commands/cost.ts";
import { archiveTransitions } from "../lib/archive-lifecycle.ts";
import { DEFAULT_PART_MAX_BYTES, DEFAULT_SETTLE_MS } from "../lib/compaction/defaults.ts";
import {
  EXAMPLE_OIDC_PROVIDER_ARN,
  EXAMPLE_RETRIEVAL_PRINCIPAL,
  EXAMPLE_SHIPPER_IMAGE,
  exampleStackYaml,
  parseStackConfig,
  STACK_SETTINGS,
  StackConfigError,
  shipperLockOptions,
} from "./config.ts";
import { DEPLOY_DOC, EXAMPLE_STACK, withConfigTable } from "./generate.ts";

const PROVIDERS = { "aws:region": "us-east-1", "gcp:project": "p", "gcp:region": "us-central1" } as const;
const REQUIRED = {
  eksOidcProviderArn: EXAMPLE_OIDC_PROVIDER_ARN,
  shipper: JSON.stringify({ image: EXAMPLE_SHIPPER_IMAGE }),
  retrievalPrincipals: JSON.stringify([EXAMPLE_RETRIEVAL_PRINCIPAL]),
};

/** The problems parseStackConfig reports for this raw config, or [] when it accepts it. */
function problemsOf(
  raw: Record<string, string>,
  providers: Record<string, string | undefined> = PROVIDERS,
): string[] {
  try {
    parseStackConfig(raw, providers as typeof PROVIDERS);
    return [];
  } catch (error) {
    assert.ok(error instanceof StackConfigError, String(error));
    return [...error.problems];
  }
}

describe("stack config", () => {
  it("deploys the lifecycle and retention `logarchive cost` prices by default (one source: lib/archive-lifecycle.ts)", () => {
    const c = parseStackConfig(REQUIRED, PROVIDERS);
    assert.equal(c.retentionDays, DEFAULT_COST_RETENTION_DAYS);
    assert.deepEqual(archiveTransitions(c.archiveTiers), DEFAULT_COST_LIFECYCLE);
    assert.equal(c.archiveTransitionSizes, DEFAULT_COST_TRANSITION_SIZES);
    assert.equal(c.archiveTransitionSizes, "break-even");
    assert.equal(
      parseStackConfig({ ...REQUIRED, archiveTransitionSizes: "off" }, PROVIDERS).archiveTransitionSizes,
      "off",
    );
  });

  it("finalizeMaxInstances and functionMemory: defaults from lib/gcp-deploy.ts, overridable, checked", () => {
    const c = parseStackConfig(REQUIRED, PROVIDERS);
    assert.equal(c.finalizeMaxInstances, 500);
    assert.equal(c.functionMemory, "512Mi");
    const set = parseStackConfig(
      { ...REQUIRED, finalizeMaxInstances: "800", functionMemory: "1Gi" },
      PROVIDERS,
    );
    assert.equal(set.finalizeMaxInstances, 800);
    assert.equal(set.functionMemory, "1Gi");
    assert.equal(
      parseStackConfig({ ...REQUIRED, functionMemory: "1024Mi" }, PROVIDERS).functionMemory,
      "1024Mi",
    );
    for (const [raw, problem] of [
      [{ finalizeMaxInstances: "0" }, /^logarchive:finalizeMaxInstances: must be at least 1/],
      [{ finalizeMaxInstances: "2.5" }, /^logarchive:finalizeMaxInstances: must be a whole number/],
      [
        { functionMemory: "768Mi" },
        /^logarchive:functionMemory: is not a Cloud Run functions memory tier \(128Mi, /,
      ],
      [{ functionMemory: "64Gi" }, /^logarchive:functionMemory: is not a Cloud Run functions memory tier/],
    ] as const) {
      const problems = problemsOf({ ...REQUIRED, ...raw });
      assert.equal(problems.length, 1, problems.join("\n"));
      assert.match(problems[0]!, problem);
    }
  });

  it("defaults: the issue's tiers, 7-day landing, 90-day partitions, physical billing, the loader's own defaults", () => {
    const c = parseStackConfig(REQUIRED, PROVIDERS);
    assert.deepEqual(c.archiveTiers, { standardIa: 30, glacierIr: 90, deepArchive: 180 });
    assert.equal(c.landingRetentionDays, 7);
    assert.equal(c.partitionExpirationDays, 90);
    assert.equal(c.storageBillingModel, "PHYSICAL");
    assert.equal(c.objectLockMode, "GOVERNANCE");
    assert.equal(c.bigqueryLocation, "US");
    assert.equal(c.functionRegion, "us-central1");
    assert.equal(c.loaderConfig.flushFunctionTimeoutMs, 540_000);
    assert.equal(c.athenaBytesScannedCutoff, 10 * 2 ** 30);
    assert.equal(c.finalizeTimeout, 300_000);
    assert.equal(c.deployShipper, true);
    // A stack without the shipper cannot run the compactor, so it turns compaction off.
    assert.deepEqual(
      parseStackConfig(
        {
          ...REQUIRED,
          shipper: "{}",
          deployShipper: "false",
          archiveCompaction: JSON.stringify({ enabled: false }),
        },
        PROVIDERS,
      ).shipper,
      {},
    );
  });

  it("each error is one line that starts with the key", () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ ...REQUIRED, retentionDays: '"two years"' }, /^logarchive:retentionDays: /],
      [{ ...REQUIRED, retentionDays: "not json{" }, /^logarchive:retentionDays: is not a YAML\/JSON value/],
      [{ ...REQUIRED, objectLockMode: "FOREVER" }, /^logarchive:objectLockMode: /],
      [{ ...REQUIRED, archiveTransitionSizes: "by-age" }, /^logarchive:archiveTransitionSizes: /],
      [
        { ...REQUIRED, archiveTiers: '{"standardIa": 10}' },
        /^logarchive:archiveTiers\.standardIa: must be at least 30 days/,
      ],
      [
        { ...REQUIRED, archiveTiers: '{"glacierIr": 40}' },
        /^logarchive:archiveTiers\.glacierIr: must be at least 60/,
      ],
      [{ ...REQUIRED, objectLockDays: "1000" }, /^logarchive:objectLockDays: must be at most retentionDays/],
      [{ ...REQUIRED, retentionDays: "100" }, /^logarchive:(objectLockDays|retentionDays): /],
      [{ ...REQUIRED, bigqueryLocation: "EU" }, /^logarchive:bigqueryLocation: must equal landingLocation/],
      [{ ...REQUIRED, finalizeTimeout: "10m" }, /^logarchive:finalizeTimeout: /],
      [
        { ...REQUIRED, athenaBytesScannedCutoff: "1KB" },
        /^logarchive:athenaBytesScannedCutoff: must be at least 10MB/,
      ],
      [{ ...REQUIRED, stateMarkerDays: "30" }, /^logarchive:stateMarkerDays: must be at least 365 days/],
      [
        { ...REQUIRED, warehouseReaders: '[{"member": "bob", "dataset": "logarchive"}]' },
        /^logarchive:warehouseReaders\[0\]\.member: /,
      ],
      [
        { ...REQUIRED, loader: '{"landing_bucket": "x"}' },
        /^logarchive:loader\.landing_bucket: is set by the infra/,
      ],
      [
        { ...REQUIRED, loader: '{"flush_intervall": "1m"}' },
        /^logarchive:loader\.flush_intervall: is not a loader option/,
      ],
      [
        { ...REQUIRED, loader: '{"flush_deadline": "20m"}' },
        /^logarchive:loader\.flush_deadline: must be at most/,
      ],
      [{ ...REQUIRED, retentionDay: "3" }, /^logarchive:retentionDay: is not a setting of this stack/],
      [{}, /^logarchive:eksOidcProviderArn: /],
      [{ ...REQUIRED, shipper: "{}" }, /^logarchive:shipper\.image: required when deployShipper is true/],
      [
        { eksOidcProviderArn: EXAMPLE_OIDC_PROVIDER_ARN, shipper: REQUIRED.shipper },
        /^logarchive:retrievalPrincipals: required: the role or user ARNs that may assume the retrieval role/,
      ],
      [{ ...REQUIRED, retrievalPrincipals: "[]" }, /^logarchive:retrievalPrincipals: must name at least one/],
      [
        { ...REQUIRED, retrievalPrincipals: '["arn:aws:iam::123456789012:root"]' },
        /^logarchive:retrievalPrincipals\[0\]: must not be an account root/,
      ],
      [
        { ...REQUIRED, shipper: '{"image": "x", "bucket": "other"}' },
        /^logarchive:shipper\.bucket: is set by the stack/,
      ],
      [{ ...REQUIRED, shipper: '{"image": "x", "runAs": "nobody"}' }, /^logarchive:shipper\.runAs: /],
      [{ ...REQUIRED, shipper: '{"image": "x", "replicas": 3}' }, /^logarchive:shipper: /],
    ];
    for (const [raw, expected] of cases) {
      const problems = problemsOf(raw);
      assert.ok(problems.length >= 1, `accepted ${JSON.stringify(raw)}`);
      assert.match(problems[0]!, expected, JSON.stringify(raw));
      for (const p of problems) assert.ok(!p.includes("\n"), p);
    }
    assert.match(
      problemsOf(REQUIRED, { ...PROVIDERS, "gcp:project": undefined })[0]!,
      /^gcp:project: required/,
    );
  });

  it("the loader's settings reach its options: a longer flush timeout makes room for a longer deadline", () => {
    const c = parseStackConfig(
      {
        ...REQUIRED,
        loader: JSON.stringify({
          flush_function_timeout: "900s",
          flush_deadline: "600s",
          flush_interval: "5m",
        }),
      },
      PROVIDERS,
    );
    assert.equal(c.loaderConfig.flushFunctionTimeoutMs, 900_000);
    assert.equal(c.loaderConfig.flushIntervalMs, 300_000);
  });
});

describe("stack config: every check before anything is registered", () => {
  const POLICY_YAML = `
archive:
  prefix: logs
analytics:
  include: ["*"]
warehouse:
  dataset: logarchive
  routes:
    - namespaces: [payments]
      dataset: finance
      table: payments_logs
    - namespaces: ["team-*"]
      table: "logs_{namespace}"
`;
  const readPolicy = () => POLICY_YAML;
  const problemsWithPolicy = (raw: Record<string, string>) => {
    try {
      parseStackConfig(raw, PROVIDERS, readPolicy);
      return [];
    } catch (error) {
      assert.ok(error instanceof StackConfigError, String(error));
      return [...error.problems];
    }
  };

  it("a flush interval Cloud Scheduler cannot run is refused, named by its key", () => {
    const problems = problemsWithPolicy({ ...REQUIRED, loader: '{"flush_interval": "7m"}' });
    assert.equal(problems.length, 1, problems.join("\n"));
    assert.match(problems[0]!, /^logarchive:loader\.flush_interval: Cloud Scheduler cannot run every 7m/);
    assert.ok(!problems[0]!.includes("LOGARCHIVE_"), problems[0]);
  });

  it("the Scheduler's settings are derived once, at parse time", () => {
    const c = parseStackConfig({ ...REQUIRED, loader: '{"flush_interval": "5m"}' }, PROVIDERS, readPolicy);
    assert.equal(c.flushScheduler.schedule, "*/5 * * * *");
    assert.equal(c.flushScheduler.attemptDeadline, "540s");
  });

  it("shipper settings the manifests refuse are refused, named under logarchive:shipper", () => {
    const cases: [object, RegExp][] = [
      [{ namespace: "Bad_NS" }, /^logarchive:shipper\.namespace: "Bad_NS" is not a namespace name$/],
      [
        { resources: { limits: { cpu: "lots" } } },
        /^logarchive:shipper\.resources\.limits\.cpu: expected a quantity/,
      ],
      [{ shipperConfig: { batch_max_age: "zz" } }, /^logarchive:shipper\.shipperConfig\.batch_max_age: /],
    ];
    for (const [extra, expected] of cases) {
      const problems = problemsWithPolicy({
        ...REQUIRED,
        shipper: JSON.stringify({ image: EXAMPLE_SHIPPER_IMAGE, ...extra }),
      });
      assert.equal(problems.length, 1, `${JSON.stringify(extra)}: ${problems.join(" | ")}`);
      assert.match(problems[0]!, expected);
      assert.ok(!problems[0]!.includes("\n"));
    }
  });

  it("warehouseReaders must name a dataset the policy routes to and a table the stack creates", () => {
    const reader = (r: object) => ({ ...REQUIRED, warehouseReaders: JSON.stringify([r]) });
    assert.match(
      problemsWithPolicy(reader({ member: "group:a@example.com", dataset: "nope" }))[0]!,
      /^logarchive:warehouseReaders\[0\]\.dataset: nope is not a dataset the policy routes to \(logarchive, finance\)$/,
    );
    assert.match(
      problemsWithPolicy(
        reader({ member: "group:a@example.com", dataset: "logarchive", table: "logs_team_b" }),
      )[0]!,
      /^logarchive:warehouseReaders\[0\]\.table: logarchive\.logs_team_b is not a table the stack creates/,
    );
    assert.deepEqual(
      problemsWithPolicy({
        ...reader({ member: "group:a@example.com", dataset: "logarchive", table: "logs_team_b" }),
        warehouseNamespaces: '["team-b"]',
      }),
      [],
    );
  });

  it("the policy file is read and parsed at parse time; a bad one is named by logarchive:policyFile", () => {
    const problems = (() => {
      try {
        parseStackConfig(REQUIRED, PROVIDERS, () => {
          throw new Error("ENOENT: no such file");
        });
        return [];
      } catch (error) {
        return [...(error as StackConfigError).problems];
      }
    })();
    assert.match(
      problems[0]!,
      /^logarchive:policyFile: cannot read namespaces\.yaml \(ENOENT: no such file\)$/,
    );
    const c = parseStackConfig(REQUIRED, PROVIDERS, readPolicy);
    assert.equal(c.policy.archive.prefix, "logs");
    assert.equal(c.policyYaml, POLICY_YAML);
  });

  it("numbers and booleans under logarchive:loader, as `pulumi config set --path` stores them, are taken as their text", () => {
    const c = parseStackConfig(
      { ...REQUIRED, loader: '{"flush_interval": "2m", "max_uris_per_job": 500, "validate_objects": false}' },
      PROVIDERS,
      readPolicy,
    );
    assert.deepEqual(c.loader, { flush_interval: "2m", max_uris_per_job: "500", validate_objects: "false" });
    assert.equal(c.loaderConfig.maxUrisPerJob, 500);
    assert.equal(c.loaderConfig.validateObjects, false);
    assert.equal(c.loaderConfig.flushIntervalMs, 120_000);
  });
});

describe("stack config: the cross-checks the docs promise", () => {
  it("retentionDays must come after the last tier plus its minimum storage duration", () => {
    // Deep Archive at 180 keeps an object at least 180 days: expiring before day 361 pays for days never stored.
    assert.match(
      problemsOf({ ...REQUIRED, objectLockDays: "300", retentionDays: "360" })[0]!,
      /^logarchive:retentionDays: must be more than 360 days: deepArchive at 180 days plus Deep Archive's 180-day minimum storage duration/,
    );
    assert.deepEqual(problemsOf({ ...REQUIRED, objectLockDays: "300", retentionDays: "361" }), []);
    // Without Deep Archive the last tier is Glacier Instant Retrieval, with its 90 days.
    const noDeep = { ...REQUIRED, objectLockDays: "100", archiveTiers: '{"deepArchive": null}' };
    assert.match(
      problemsOf({ ...noDeep, retentionDays: "180" })[0]!,
      /^logarchive:retentionDays: must be more than 180 days: glacierIr at 90 days plus Glacier Instant Retrieval's 90-day/,
    );
    assert.deepEqual(problemsOf({ ...noDeep, retentionDays: "181" }), []);
  });

  it("transferWindowDays must leave the transferred objects' Deep Archive transition its 180 days before expiration", () => {
    assert.match(
      problemsOf({ ...REQUIRED, transferWindowDays: "600" })[0]!,
      /^logarchive:transferWindowDays: must be at most 549: /,
    );
    assert.deepEqual(problemsOf({ ...REQUIRED, transferWindowDays: "549" }), []);
    // With no Deep Archive tier nothing is held back, so the window is free.
    assert.deepEqual(
      problemsOf({ ...REQUIRED, transferWindowDays: "600", archiveTiers: '{"deepArchive": null}' }),
      [],
    );
  });

  it("archiveCompaction: on by default with the compactor's own defaults, the shipper gets the bucket's lock mode and landing_days; off: landing_days 0", () => {
    const c = parseStackConfig(REQUIRED, PROVIDERS);
    assert.deepEqual(c.archiveCompaction, {
      enabled: true,
      landingDays: 3,
      settleMinutes: DEFAULT_SETTLE_MS / 60_000,
      partMaxBytes: DEFAULT_PART_MAX_BYTES,
      athenaCutoffHours: 6,
      shards: 4,
    });
    assert.deepEqual(shipperLockOptions(c), { object_lock_mode: "GOVERNANCE", landing_days: 3 });
    const off = parseStackConfig(
      { ...REQUIRED, archiveCompaction: JSON.stringify({ enabled: false }) },
      PROVIDERS,
    );
    assert.equal(off.archiveCompaction.enabled, false);
    assert.deepEqual(shipperLockOptions(off), { object_lock_mode: "GOVERNANCE", landing_days: 0 });
    const on = parseStackConfig(
      {
        ...REQUIRED,
        objectLockMode: "COMPLIANCE",
        archiveCompaction: JSON.stringify({ enabled: true, landingDays: 4, partMaxBytes: "256MiB" }),
      },
      PROVIDERS,
    );
    assert.equal(on.archiveCompaction.partMaxBytes, 256 * 2 ** 20);
    assert.equal(on.archiveCompaction.settleMinutes, 75);
    assert.deepEqual(shipperLockOptions(on), { object_lock_mode: "COMPLIANCE", landing_days: 4 });
  });

  it("archiveCompaction: each bad value is one line naming its field; the cross-checks name the field to change", () => {
    const problems = (value: unknown, extra: Record<string, string> = {}) =>
      problemsOf({ ...REQUIRED, ...extra, archiveCompaction: JSON.stringify(value) });
    assert.deepEqual(problems({ enabled: "yes" }), [
      "logarchive:archiveCompaction.enabled: Invalid input: expected boolean, received string",
    ]);
    assert.match(
      problems({ landingDays: 0 })[0]!,
      /^logarchive:archiveCompaction\.landingDays: must be at least 2 days$/,
    );
    assert.match(
      problems({ settleMinutes: 7.5 })[0]!,
      /^logarchive:archiveCompaction\.settleMinutes: must be a whole number/,
    );
    assert.match(
      problems({ partMaxBytes: "1MiB" })[0]!,
      /^logarchive:archiveCompaction\.partMaxBytes: must be at least 5242880 bytes/,
    );
    assert.match(
      problems({ partMaxBytes: "lots" })[0]!,
      /^logarchive:archiveCompaction\.partMaxBytes: is not a size/,
    );
    assert.match(
      problems({ athenaCutoffHours: 0 })[0]!,
      /^logarchive:archiveCompaction\.athenaCutoffHours: must be at least 1 hour/,
    );
    assert.match(
      problems({ shards: 0 })[0]!,
      /^logarchive:archiveCompaction\.shards: must be at least 1 pod$/,
    );
    assert.match(
      problems({ shards: 2.5 })[0]!,
      /^logarchive:archiveCompaction\.shards: must be a whole number of pods$/,
    );
    assert.match(
      problems({ shards: 5000 })[0]!,
      /^logarchive:archiveCompaction\.shards: must be at most 1024 pods$/,
    );
    assert.match(
      problems({ landingDay: 3 })[0]!,
      /^logarchive:archiveCompaction: Unrecognized key: "landingDay"/,
    );
    // Cross-checks, only when enabled.
    assert.deepEqual(problems({ enabled: false, athenaCutoffHours: 1 }), []);
    assert.deepEqual(problems({ enabled: true, settleMinutes: 75, athenaCutoffHours: 2 }), [
      "logarchive:archiveCompaction.athenaCutoffHours: must be more than 3 hour(s): an hour is compacted up to settleMinutes (75) plus the CronJob's 60-minute period after it ends, and Athena reads newer hours from the originals",
    ]);
    assert.deepEqual(problems({ enabled: true, landingDays: 2, athenaCutoffHours: 40 }), [
      "logarchive:archiveCompaction.athenaCutoffHours: must be less than 35: the compactor removes an hour's compacted originals athenaCutoffHours after it ends, which must fall at least one run (60 minutes) inside its lookback (36 hours, from landingDays)",
    ]);
    // One landing day would leave no run in which to extend an uncompacted original's lock.
    assert.match(
      problems({ enabled: true, landingDays: 1 })[0]!,
      /^logarchive:archiveCompaction\.landingDays: must be at least 2 days$/,
    );
    // The lookback (landingDays × 24 − 12 hours, at most 48) must cover the settle and two runs.
    assert.deepEqual(
      problems({ enabled: true, landingDays: 2, settleMinutes: 2100, athenaCutoffHours: 37 }),
      [
        "logarchive:archiveCompaction.landingDays: must be at least 3 with settleMinutes 2100: each run looks back landingDays × 24 − 12 hours (36), which must cover settleMinutes plus two runs' 60 minutes, or an hour may be left uncompacted until its originals expire",
        "logarchive:archiveCompaction.athenaCutoffHours: must be less than 35: the compactor removes an hour's compacted originals athenaCutoffHours after it ends, which must fall at least one run (60 minutes) inside its lookback (36 hours, from landingDays)",
      ],
    );
    // The delete-after (athenaCutoffHours) must come at least one run before the lookback's end:
    // 35 hours at two landing days (lookback 36 h), 47 at the default three (lookback 48 h).
    assert.deepEqual(
      problems({ enabled: true, landingDays: 2, settleMinutes: 75, athenaCutoffHours: 34 }),
      [],
    );
    assert.deepEqual(problems({ enabled: true, landingDays: 2, settleMinutes: 75, athenaCutoffHours: 35 }), [
      "logarchive:archiveCompaction.athenaCutoffHours: must be less than 35: the compactor removes an hour's compacted originals athenaCutoffHours after it ends, which must fall at least one run (60 minutes) inside its lookback (36 hours, from landingDays)",
    ]);
    assert.deepEqual(problems({ enabled: true, athenaCutoffHours: 46 }), []);
    assert.match(
      problems({ enabled: true, athenaCutoffHours: 47 }).join("\n"),
      /^logarchive:archiveCompaction\.athenaCutoffHours: must be less than 47: .*lookback \(48 hours, from landingDays\)$/,
    );
    assert.deepEqual(
      problems({ enabled: true, landingDays: 5, settleMinutes: 2761, athenaCutoffHours: 60 }),
      [
        "logarchive:archiveCompaction.settleMinutes: must be at most 2760: each run looks back at most 48 hours, which must cover settleMinutes plus two runs' 60 minutes",
        // A cutoff after the settle and a run (required above) cannot then fit in the lookback either.
        "logarchive:archiveCompaction.athenaCutoffHours: must be less than 47: the compactor removes an hour's compacted originals athenaCutoffHours after it ends, which must fall at least one run (60 minutes) inside its lookback (48 hours, from landingDays)",
      ],
    );
    // Originals also match their tier's transition rules: they stay in Standard while the compactor reads them.
    assert.deepEqual(problems({ enabled: true, landingDays: 30 }), [
      "logarchive:archiveCompaction.landingDays: must be less than the first archiveTiers transition (day 30): the originals also match the tier prefixes' transition rules and must stay in Standard while the compactor reads them",
    ]);
    assert.deepEqual(
      problems(
        { enabled: true, landingDays: 30 },
        { archiveTiers: JSON.stringify({ standardIa: null, glacierIr: 90, deepArchive: 180 }) },
      ),
      [],
    );
    assert.match(
      problems({ enabled: true }, { deployShipper: "false" }).join("\n"),
      /^logarchive:archiveCompaction\.enabled: needs deployShipper true/m,
    );
    // On by default: a stack without the shipper that does not mention archiveCompaction is
    // told to turn it off, in the same one line.
    assert.deepEqual(
      problemsOf({ ...REQUIRED, shipper: "{}", deployShipper: "false" }).map((p) =>
        /^logarchive:archiveCompaction\.enabled: needs deployShipper true: .*set archiveCompaction \{"enabled": false\} for a stack without deployShipper\)$/.test(
          p,
        ),
      ),
      [true],
    );
  });

  it("the shipper's object_lock_mode and landing_days are the stack's, not shipperConfig's", () => {
    assert.deepEqual(
      problemsOf({
        ...REQUIRED,
        shipper: JSON.stringify({
          image: EXAMPLE_SHIPPER_IMAGE,
          shipperConfig: { object_lock_mode: "off", landing_days: 9 },
        }),
      }),
      [
        "logarchive:shipper.shipperConfig.object_lock_mode: is set by the stack from objectLockMode and archiveCompaction",
        "logarchive:shipper.shipperConfig.landing_days: is set by the stack from objectLockMode and archiveCompaction",
      ],
    );
  });

  it("archiveBucketName must be a valid S3 bucket name", () => {
    for (const bad of [
      "ab",
      "a".repeat(64),
      "My-Bucket",
      "logs..archive",
      "192.168.1.10",
      "-logs",
      "logs-",
      "xn--logs",
      "sthree-logs",
      "amzn-s3-demo-logs",
      "logs-s3alias",
      "logs--ol-s3",
      "logs.mrap",
      "logs--x-s3",
      "logs_archive",
    ]) {
      const problems = problemsOf({ ...REQUIRED, archiveBucketName: bad });
      assert.equal(problems.length, 1, `${bad} accepted`);
      assert.match(problems[0]!, /^logarchive:archiveBucketName: /, bad);
    }
    for (const good of ["abc", "logs.archive-2026", "a".repeat(63), "1-logs"])
      assert.deepEqual(problemsOf({ ...REQUIRED, archiveBucketName: good }), [], good);
  });
});

describe("generated files", () => {
  it("Pulumi.dev.yaml is current, and every setting it shows is accepted as the defaults", async () => {
    const text = await readFile(EXAMPLE_STACK, "utf8");
    assert.equal(text, exampleStackYaml(), "Pulumi.dev.yaml is stale: run `node infra/generate.ts`");
    const values = parse(text).config as Record<string, unknown>;
    const own: Record<string, string> = {};
    for (const [k, v] of Object.entries(values)) {
      if (!k.startsWith("logarchive:")) continue;
      // As Pulumi hands config to a program: strings as they are, anything else as JSON.
      own[k.slice("logarchive:".length)] = typeof v === "string" ? v : JSON.stringify(v);
    }
    const shown = new Set(Object.keys(own));
    for (const s of STACK_SETTINGS) {
      assert.ok(
        shown.has(s.key) || text.includes(`# logarchive:${s.key}:`),
        `Pulumi.dev.yaml does not show ${s.key}`,
      );
    }
    assert.deepEqual(parseStackConfig(own, PROVIDERS), parseStackConfig(REQUIRED, PROVIDERS));
  });

  it("docs/deploy.md enables every GCP API the stack calls, cloudresourcemanager included", async () => {
    const doc = await readFile(DEPLOY_DOC, "utf8");
    const command = /gcloud services enable ([^`]*)```/s.exec(doc);
    assert.ok(command, "no `gcloud services enable` command in docs/deploy.md");
    const enabled = command[1]!.split(/[\s\\]+/).filter((w) => w.endsWith(".googleapis.com"));
    for (const api of [
      "storagetransfer", // the transfer job, getTransferProjectServiceAccount
      "cloudfunctions",
      "run", // gen2 functions are Cloud Run services; invoker grants
      "cloudbuild",
      "artifactregistry",
      "eventarc",
      "pubsub",
      "cloudscheduler",
      "bigquery",
      "iam", // service accounts
      "cloudresourcemanager", // getProject (the project number) and project IAM members
    ])
      assert.ok(enabled.includes(`${api}.googleapis.com`), `${api} is not enabled by the docs' command`);
  });

  it("docs/deploy.md's config table is current", async () => {
    const doc = await readFile(DEPLOY_DOC, "utf8");
    assert.equal(doc, withConfigTable(doc), "docs/deploy.md's table is stale: run `node infra/generate.ts`");
  });
});
