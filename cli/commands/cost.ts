// `logarchive cost`: the monthly bill of the design as configured, line by line, from the
// same volume model as `logarchive plan` (docs/cost.md).

import { Command, InvalidArgumentError, Option } from "commander";
import {
  archiveTransitions,
  DEFAULT_ARCHIVE_RETENTION_DAYS,
  DEFAULT_ARCHIVE_TIER_DAYS,
  DEFAULT_TRANSITION_SIZES,
  lifecycleFlagValue,
  TRANSITION_SIZES,
  type TransitionSizes,
} from "../../lib/archive-lifecycle.ts";
import { UserError } from "../../lib/config/errors.ts";
import type { PriceTable } from "../../lib/economics/prices.ts";
import {
  DEFAULT_BIGQUERY_PARTITION_EXPIRATION_DAYS,
  DEFAULT_BIGQUERY_STORAGE_BILLING,
} from "../../lib/gcp-deploy.ts";
import {
  addWorkloadOptions,
  type CommandIo,
  jsonNumbers,
  runPlanModel,
  type WorkloadOptions,
} from "./plan.ts";

const PROCESS_IO: CommandIo = {
  write: (text) => process.stdout.write(text),
  setExitCode: (code) => {
    process.exitCode = code;
  },
};

/**
 * The bill assumes what `pulumi up` deploys unless told otherwise: infra's default retentionDays
 * and archiveTiers, from the same module (lib/archive-lifecycle.ts).
 */
export const DEFAULT_COST_RETENTION_DAYS = DEFAULT_ARCHIVE_RETENTION_DAYS;
export const DEFAULT_COST_LIFECYCLE = archiveTransitions(DEFAULT_ARCHIVE_TIER_DAYS);
/** infra's archiveTransitionSizes. */
export const DEFAULT_COST_TRANSITION_SIZES: TransitionSizes = DEFAULT_TRANSITION_SIZES;
/** infra's storageBillingModel and partitionExpirationDays, from lib/gcp-deploy.ts. */
export const DEFAULT_COST_BIGQUERY_BILLING = DEFAULT_BIGQUERY_STORAGE_BILLING.toLowerCase() as
  | "logical"
  | "physical";
export const DEFAULT_COST_BIGQUERY_DAYS = DEFAULT_BIGQUERY_PARTITION_EXPIRATION_DAYS;

const CLASSES = ["STANDARD_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"];

function lifecycle(value: string): { storageClass: string; afterDays: number }[] {
  if (value === "" || value === "none") return [];
  return value.split(",").map((part) => {
    const m = /^([A-Z_]+):(\d+)$/.exec(part.trim());
    if (m === null || !CLASSES.includes(m[1]!)) {
      throw new InvalidArgumentError(
        `--lifecycle: expected CLASS:DAYS,… with CLASS one of ${CLASSES.join(", ")} (got ${JSON.stringify(part)}), or none.`,
      );
    }
    return { storageClass: m[1]!, afterDays: Number(m[2]) };
  });
}

function days(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1)
      throw new InvalidArgumentError(`${flag}: expected a whole number of days ≥ 1.`);
    return n;
  };
}

function amount(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!(n >= 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`${flag}: expected a number ≥ 0.`);
    return n;
  };
}

interface CostOptions extends WorkloadOptions {
  retentionDays: number;
  lifecycle: { storageClass: string; afterDays: number }[];
  transitionSizes: TransitionSizes;
  smallObjects: "all_storage_classes_128K" | "varies_by_storage_class";
  bigqueryDays: number;
  bigqueryBilling: "logical" | "physical";
  gcsStagingDays: number;
  markerRetentionDays?: number;
  streamRetentionDays?: number;
  athenaTbMonth: number;
  restoreGbMonth: number;
  prices?: string;
}

export function costCommand(io: CommandIo = PROCESS_IO): Command {
  return addWorkloadOptions(
    new Command("cost").description(
      "The monthly bill of the design as configured, line by line: storage by class, requests, egress and the shipper fleet, for a steady-state and the first month (docs/cost.md).",
    ),
  )
    .option(
      "--retention-days <d>",
      "days the S3 archive keeps an object, as infra's retentionDays",
      days("--retention-days"),
      DEFAULT_COST_RETENTION_DAYS,
    )
    .addOption(
      new Option(
        "--lifecycle <rules>",
        "S3 transitions after Standard, CLASS:DAYS,… or none; the default is infra's archiveTiers",
      )
        .argParser(lifecycle)
        .default(DEFAULT_COST_LIFECYCLE, lifecycleFlagValue(DEFAULT_COST_LIFECYCLE)),
    )
    .addOption(
      new Option(
        "--transition-sizes <mode>",
        "break-even: each transition only for objects big enough to pay for it (from these prices and the retention); off: age-only; the default is infra's archiveTransitionSizes",
      )
        .choices(TRANSITION_SIZES)
        .default(DEFAULT_COST_TRANSITION_SIZES),
    )
    .addOption(
      new Option(
        "--small-objects <rule>",
        "S3 transition_default_minimum_object_size, for --transition-sizes off (size filters take precedence over it)",
      )
        .choices(["all_storage_classes_128K", "varies_by_storage_class"])
        .default("all_storage_classes_128K"),
    )
    .option(
      "--bigquery-days <d>",
      "BigQuery partition expiration, as infra's partitionExpirationDays",
      days("--bigquery-days"),
      DEFAULT_COST_BIGQUERY_DAYS,
    )
    .addOption(
      new Option(
        "--bigquery-billing <model>",
        "BigQuery storage billing model in the total (both are computed); the default is infra's storageBillingModel",
      )
        .choices(["logical", "physical"])
        .default(DEFAULT_COST_BIGQUERY_BILLING),
    )
    .option(
      "--gcs-staging-days <d>",
      "days the landing bucket keeps the transfer's copies",
      days("--gcs-staging-days"),
      7,
    )
    .option(
      "--marker-retention-days <d>",
      "days claims/ and done/ markers are kept (default: the retention)",
      days("--marker-retention-days"),
    )
    .option(
      "--stream-retention-days <d>",
      "stream objects expire after this (default: the policy's analytics.stream_expiration_days)",
      days("--stream-retention-days"),
    )
    .option("--athena-tb-month <tb>", "Athena TB scanned per month", amount("--athena-tb-month"), 1)
    .option(
      "--restore-gb-month <gb>",
      "GB restored from the archive per month (bulk)",
      amount("--restore-gb-month"),
      100,
    )
    .option("--prices <file>", "YAML/JSON of price id → number or { value, source } overriding the table")
    .action(async (o: CostOptions) => {
      const { model, notes, policy } = await runPlanModel(o);
      const { costModel } = await import("../../lib/economics/cost.ts");
      const { applyPriceOverrides, DEFAULT_PRICES, PriceOverrideError } = await import(
        "../../lib/economics/prices.ts"
      );
      const { compactorReservation, shipperReservation } = await import("../../lib/economics/design.ts");
      const { formatCost, bytes, count } = await import("../../lib/economics/format.ts");
      let prices: PriceTable = DEFAULT_PRICES;
      if (o.prices !== undefined) {
        const { parse } = await import("yaml");
        const { readFile } = await import("node:fs/promises");
        let text: string;
        try {
          text = await readFile(o.prices, "utf8");
        } catch (error) {
          throw new UserError(
            `--prices ${o.prices}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
          );
        }
        try {
          prices = applyPriceOverrides(parse(text));
        } catch (error) {
          if (error instanceof PriceOverrideError)
            throw new UserError(`--prices ${o.prices}: ${error.message}`);
          throw new UserError(
            `--prices ${o.prices}: not YAML or JSON: ${(error as Error).message.split("\n")[0]}`,
          );
        }
      }
      const reservation = shipperReservation();
      const compactor = compactorReservation();
      const report = costModel(
        model,
        {
          retentionDays: o.retentionDays,
          lifecycle: o.lifecycle as Parameters<typeof costModel>[1]["lifecycle"],
          transitionSizes: o.transitionSizes,
          smallObjects: o.smallObjects,
          streamRetentionDays: o.streamRetentionDays ?? policy.analytics.stream_expiration_days,
          gcsStagingDays: o.gcsStagingDays,
          markerRetentionDays: o.markerRetentionDays ?? o.retentionDays,
          bigqueryDays: o.bigqueryDays,
          bigqueryBilling: o.bigqueryBilling,
          athenaTbPerMonth: o.athenaTbMonth,
          restoreGbPerMonth: o.restoreGbMonth,
          shipperCpu: reservation.cpu,
          shipperMemoryGiB: reservation.memoryGiB,
          compactorCpu: compactor.cpu,
          compactorMemoryGiB: compactor.memoryGiB,
        },
        prices,
      );
      if (o.format === "json") {
        io.write(`${JSON.stringify({ notes, report }, jsonNumbers, 2)}\n`);
      } else {
        const w = model.inputs.workload;
        const heading = [
          `logarchive cost: ${count(w.nodes)} nodes × ${count(w.rawBytesPerNodeDay / 1e9)} GB/day raw, ${count(model.sizes.all.objectsPerDay)} objects/day (median ${bytes(model.sizes.all.medianBytes)}), retention ${o.retentionDays} days, lifecycle ${o.lifecycle.map((s) => `${s.storageClass}@${s.afterDays}d`).join(" → ") || "none"} (${o.transitionSizes === "off" ? "age-only" : "break-even sizes"}), BigQuery ${o.bigqueryDays} days (${o.bigqueryBilling} billing)`,
          ...notes.map((n) => `  ${n}`),
        ].join("\n");
        io.write(formatCost(report, heading));
      }
      io.setExitCode(0);
    });
}
