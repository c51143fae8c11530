// `logarchive hold --on|--off`: set or clear S3 legal hold on every object version of a
// namespace's hours, and write a manifest of what changed (lib/retrieval/hold.ts,
// docs/compliance.md#retention-object-lock-and-legal-hold). Exit 0 when every version is in
// the asked state, 1 when a version could not be changed or nothing matched, 2 on a usage
// mistake, a bucket without Object Lock among them (nothing is changed then).

import { createHash } from "node:crypto";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { UserError } from "../../lib/config/errors.ts";
import { formatRfc3339Nano, type Instant } from "../../lib/record/timestamp.ts";
import { EXIT, parseNamespaceArg, s3SetupError } from "../options.ts";
import {
  type ArchiveLocationOptions,
  archiveLocation,
  archiveS3Target,
  parseInstantArg,
  withArchiveLocationOptions,
} from "./retrieve.ts";

interface HoldOptions extends ArchiveLocationOptions {
  namespace: string;
  from: Instant;
  to: Instant;
  on?: boolean;
  off?: boolean;
  out: string;
}

export function holdCommand(version: string): Command {
  const command = new Command("hold")
    .description(
      "Set (--on) or clear (--off) S3 Object Lock legal hold on every object version of a namespace's hours in [--from, --to), in every long-lived tier, with the compacted parts and manifests of those hours and the loss records and hour indexes a retrieval reads, and write a manifest of what changed. Versions already in that state are left alone, so a re-run is safe. Exit 0 when every version is in the asked state, 1 when one could not be changed or nothing matched, 2 on a usage mistake or a bucket without Object Lock.",
    )
    .requiredOption("--namespace <ns>", "the namespace", parseNamespaceArg)
    .requiredOption(
      "--from <time>",
      "start, inclusive, UTC (2026-03-03, 2026-03-03T10 or RFC 3339); the hold covers whole hours",
      parseInstantArg,
    )
    .requiredOption("--to <time>", "end, exclusive, UTC", parseInstantArg)
    .option("--on", "set the legal hold")
    .option("--off", "clear the legal hold")
    .requiredOption(
      "--out <file.json>",
      "where the manifest of what changed goes (and FILE.sha256 beside it)",
    );
  return withArchiveLocationOptions(command).action(async (o: HoldOptions) => {
    if (o.on === o.off) throw new InvalidArgumentError("give exactly one of --on or --off.");
    if (
      o.to.epochSeconds < o.from.epochSeconds ||
      (o.to.epochSeconds === o.from.epochSeconds && o.to.nanos <= o.from.nanos)
    ) {
      throw new InvalidArgumentError("--to must be after --from.");
    }
    const status = o.on ? "ON" : "OFF";
    const location = await archiveLocation(o);
    const { S3Client } = await import("@aws-sdk/client-s3");
    const { applyLegalHold, holdManifest, NoObjectLockError } = await import("../../lib/retrieval/hold.ts");
    const { longLivedTiers } = await import("../../lib/keys/tiers.ts");
    const s3 = new S3Client({
      region: location.region ?? "us-east-1",
      ...(location.s3Endpoint ? { endpoint: location.s3Endpoint, forcePathStyle: true } : {}),
    });
    try {
      let outcome: Awaited<ReturnType<typeof applyLegalHold>>;
      try {
        outcome = await applyLegalHold({
          s3,
          bucket: location.bucket,
          prefix: location.prefix,
          namespace: o.namespace,
          from: o.from,
          to: o.to,
          status,
        });
      } catch (error) {
        if (error instanceof NoObjectLockError) throw new UserError(`--bucket: ${error.message}`);
        throw s3SetupError(error, archiveS3Target(o, location)) ?? error;
      }
      const now = new Date();
      const { manifest, data } = holdManifest(outcome, {
        toolVersion: version,
        status,
        namespace: o.namespace,
        from: formatRfc3339Nano(o.from),
        to: formatRfc3339Nano(o.to),
        bucket: location.bucket,
        prefix: location.prefix,
        tiers: longLivedTiers(),
        now,
      });
      await mkdir(dirname(o.out), { recursive: true });
      await writeFile(`${o.out}.partial`, data);
      await rename(`${o.out}.partial`, o.out);
      const sha = createHash("sha256").update(data).digest("hex");
      await writeFile(`${o.out}.sha256`, `${sha}  ${o.out.split("/").at(-1)}\n`);
      const t = manifest.totals;
      const lines = [
        `hold: legal hold ${status} on ${t.versions} object version(s) of ${o.namespace} (hours ${manifest.request.hours.first ?? "-"} to ${manifest.request.hours.last ?? "-"}): ${t.changed} changed, ${t.unchanged} already ${status}, ${t.failed} failed`,
        ...outcome.versions
          .filter((v) => v.result === "failed")
          .map((v) => `FAILED ${v.key} (version ${v.versionId}): ${v.error}`),
        `hold: manifest written to ${o.out}, sha256 ${sha}`,
      ];
      if (t.versions === 0) {
        lines.push(
          `hold: no object of namespace ${o.namespace} in ${formatRfc3339Nano(o.from)} → ${formatRfc3339Nano(o.to)}; nothing was held`,
        );
      }
      process.stdout.write(`${lines.join("\n")}\n`);
      process.exitCode = manifest.complete ? EXIT.ok : EXIT.verdict;
    } finally {
      s3.destroy();
    }
  });
}
