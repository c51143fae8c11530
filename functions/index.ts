// Entry point of the Cloud Functions deployment (`--entry-point logarchiveFinalize` or
// `logarchiveFlush`, both from this module). Configuration comes from LOGARCHIVE_*
// environment variables; docs/loader.md lists them.

import { registerLoaderFunctions } from "./handlers.ts";
import { loaderFromEnv } from "./loader/from-env.ts";
import type { Loader } from "./loader/loader.ts";

// One loader per instance, built on first use so a bad config fails the invocation with
// a message naming the variable, and is retried once it is fixed.
let loader: Promise<Loader> | null = null;

function cloudLog(line: object): void {
  // Cloud Logging reads one JSON object per stdout line; `severity` sets the level.
  process.stdout.write(`${JSON.stringify({ component: "loader", ...line })}\n`);
}

registerLoaderFunctions(() => {
  loader ??= loaderFromEnv(process.env, cloudLog);
  loader.catch(() => {
    loader = null;
  });
  return loader;
}, cloudLog);
