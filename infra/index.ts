// The Pulumi program: `pulumi up` at the repository root runs this file (Pulumi.yaml `main`).
// It reads and validates the stack config (infra/config.ts), the namespace policy and the query
// pack, then builds the stack (infra/stack.ts: AWS, GCP and the shipper DaemonSet on Kubernetes)
// and exports what operators need.
// docs/deploy.md walks through it.

import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { ConfigError } from "../lib/config/errors.ts";
import { loadPack, PACK_DIR } from "../queries/pack.ts";
import type { AthenaNamedQuery } from "./components/athena-catalog.ts";
import { CONFIG_NAMESPACE, parseStackConfig, StackConfigError } from "./config.ts";
import { deployLogarchive } from "./stack.ts";

/** A user error ends the run with its message only; Pulumi prints no program text or stack for a RunError. */
function stop(error: unknown): never {
  if (error instanceof StackConfigError || error instanceof ConfigError)
    throw new pulumi.RunError(error.message);
  throw error;
}

function rawStackConfig(): {
  own: Record<string, string>;
  providers: Record<"aws:region" | "gcp:project" | "gcp:region", string | undefined>;
} {
  const all = pulumi.runtime.allConfig();
  const own: Record<string, string> = {};
  for (const [key, value] of Object.entries(all)) {
    if (key.startsWith(`${CONFIG_NAMESPACE}:`)) own[key.slice(CONFIG_NAMESPACE.length + 1)] = value;
  }
  return {
    own,
    providers: {
      "aws:region": all["aws:region"],
      "gcp:project": all["gcp:project"],
      "gcp:region": all["gcp:region"],
    },
  };
}

async function athenaQueries(): Promise<AthenaNamedQuery[]> {
  const pack = (await loadPack()).get("athena") ?? new Map();
  const queries: AthenaNamedQuery[] = [
    {
      name: "_definitions",
      description: "Run once: creates the view the other queries read (queries/athena/_definitions.sql)",
      query: await readFile(join(PACK_DIR, "athena", "_definitions.sql"), "utf8"),
    },
  ];
  for (const q of pack.values())
    queries.push({ name: q.name, description: `${q.title}: ${q.answers}`, query: q.body });
  return queries;
}

async function main() {
  const raw = rawStackConfig();
  let config: ReturnType<typeof parseStackConfig>;
  try {
    config = parseStackConfig(raw.own, raw.providers);
  } catch (error) {
    stop(error);
  }
  const packageJson = resolve(config.functionsPackageDir, "package.json");
  if (!existsSync(packageJson)) {
    stop(
      new StackConfigError([
        `${CONFIG_NAMESPACE}:functionsPackageDir: ${packageJson} does not exist; run \`npm run build:functions\` first (or point the key at the built package)`,
      ]),
    );
  }
  let stack: ReturnType<typeof deployLogarchive>;
  try {
    stack = deployLogarchive({
      config,
      stackName: pulumi.getStack(),
      projectName: pulumi.getProject(),
      athenaQueries: await athenaQueries(),
    });
  } catch (error) {
    stop(error);
  }

  return { ...stack.outputs, awsRegion: config.providers.awsRegion };
}

// Pulumi's Node.js runtime awaits an exported function's result and exports its properties as stack outputs.
export default main;
