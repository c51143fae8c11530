// `logarchive verify MANIFEST|BUNDLE`: re-check a delivered retrieval bundle against its
// manifest (lib/retrieval/verify.ts, docs/compliance.md#verify). Exit 0 when the bundle is
// intact and its manifest records a complete retrieval, 1 when a check fails or the retrieval
// it records is incomplete, 2 on a usage mistake (a path that is not there, a bad hash).

import { Command, InvalidArgumentError } from "commander";
import { UserError } from "../../lib/config/errors.ts";
import { EXIT } from "../options.ts";

function parseSha256(value: string): string {
  if (!/^[0-9a-fA-F]{64}$/.test(value)) throw new InvalidArgumentError("expected a SHA-256: 64 hex digits.");
  return value.toLowerCase();
}

export function verifyCommand(): Command {
  return new Command("verify")
    .description(
      "Re-check a retrieval bundle (a directory, a .tar.gz, or its manifest.json) against its manifest: the manifest's and the records' SHA-256, the line count, and that every line is in the query's namespace, range and filters, in time order, from an object the manifest says was verified. Exit 0 when intact and complete, 1 when a check fails or the retrieval it records is incomplete, 2 on a usage mistake.",
    )
    .argument(
      "<bundle>",
      "the bundle directory, FILE.tar.gz, or a manifest.json with its files beside it (or a hold manifest with its .sha256)",
    )
    .option(
      "--expect-sha256 <hex>",
      "the manifest's SHA-256 as recorded when the bundle was delivered (retrieve prints it)",
      parseSha256,
    )
    .action(async (bundle: string, o: { expectSha256?: string }) => {
      const { VerifyInputError, verifyBundle } = await import("../../lib/retrieval/verify.ts");
      let report: Awaited<ReturnType<typeof verifyBundle>>;
      try {
        report = await verifyBundle(
          bundle,
          o.expectSha256 === undefined ? {} : { expectSha256: o.expectSha256 },
        );
      } catch (error) {
        if (error instanceof VerifyInputError) throw new UserError(error.message);
        throw error;
      }
      const lines = report.checks.map((c) => `${c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.detail}`);
      const r = report.retrieval;
      const what = report.kind === "hold" ? "legal hold" : "retrieval";
      if (!report.intact) {
        lines.push(
          `verify: ${bundle} does NOT match its manifest (${report.checks.filter((c) => !c.ok).length} check(s) failed)`,
        );
      } else if (r !== null && !r.complete) {
        lines.push(
          report.kind === "hold"
            ? `verify: ${bundle} is intact, but the legal hold it records is INCOMPLETE (${r.problems} version(s) failed, or none matched)`
            : `verify: ${bundle} is intact, but the retrieval it records is INCOMPLETE (${r.problems} problem(s) in the manifest's verdict)`,
        );
      } else {
        lines.push(
          `verify: ${bundle} is intact and records a COMPLETE ${what}${r !== null && r.warnings > 0 ? ` (${r.warnings} warning(s) in the manifest's verdict)` : ""}; manifest sha256 ${report.manifestSha256}`,
        );
      }
      process.stdout.write(`${lines.join("\n")}\n`);
      process.exitCode = report.intact && r?.complete === true ? EXIT.ok : EXIT.verdict;
    });
}
