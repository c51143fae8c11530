// `logarchive policy`: check a namespace policy and show what it does.

import { Command, InvalidArgumentError } from "commander";
import {
  classifyNamespace,
  destinations,
  lifecycleExpirationRules,
  loadPolicy,
  notificationRules,
  streamDelivery,
} from "../../lib/policy/policy.ts";
import { parseNamespaceArg } from "../options.ts";

export function policyCommand(): Command {
  return new Command("policy")
    .description(
      "Validate a namespace policy file and show its S3 notification rules, tables and, per namespace, what happens.",
    )
    .argument("<file>", "namespace policy YAML")
    .argument("[namespaces...]", "namespaces to classify")
    .action(async (file: string, namespaces: string[]) => {
      // A name no namespace can have would only be classified by accident.
      for (const ns of namespaces) {
        try {
          parseNamespaceArg(ns);
        } catch (error) {
          throw new InvalidArgumentError(`namespace ${JSON.stringify(ns)}: ${(error as Error).message}`);
        }
      }
      const policy = await loadPolicy(file);
      const stream = streamDelivery(policy);
      const out: string[] = [
        `${file}: valid`,
        stream === null
          ? "Delivery: per-namespace (analytics namespaces' own objects, under analytics/, are loaded)"
          : `Delivery: stream (every namespace archived under archive/ in batches of ${policy.archive.batch_max_age}; analytics lines also in per-table stream objects every ${policy.analytics.stream_batch_max_age}, which are loaded)`,
        "S3 → SQS notification rules (one bucket configuration):",
      ];
      for (const r of notificationRules(policy)) {
        out.push(`  ${r.id}: events ${r.events.join(",")} prefix ${r.prefix} suffix ${r.suffix}`);
      }
      for (const r of lifecycleExpirationRules(policy)) {
        out.push(`S3 lifecycle: ${r.id}: objects under ${r.prefix} expire after ${r.expirationDays} days`);
      }
      out.push("Destination tables:");
      for (const d of destinations(policy)) out.push(`  ${d.dataset}.${d.table}`);
      for (const ns of namespaces) {
        const c = classifyNamespace(policy, ns);
        out.push(
          !c.archived
            ? `${ns}: not shipped (${c.reason})`
            : c.destination === null
              ? `${ns}: archived, not loaded`
              : `${ns}: archived and loaded into ${c.destination.dataset}.${c.destination.table}${stream === null ? "" : " (through its stream)"}`,
        );
      }
      process.stdout.write(`${out.join("\n")}\n`);
    });
}
