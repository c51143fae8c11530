// Request preconditions (ifGenerationMatch and friends), parsed from the query and checked against the live
// object while the caller holds that object's lock.

import { notModified, preconditionFailed } from "./errors.ts";
import { int64Param } from "./http.ts";
import type { StoredObject } from "./resources.ts";

export interface Preconditions {
  ifGenerationMatch?: string;
  ifGenerationNotMatch?: string;
  ifMetagenerationMatch?: string;
  ifMetagenerationNotMatch?: string;
}

const CONDITIONS = [
  "GenerationMatch",
  "GenerationNotMatch",
  "MetagenerationMatch",
  "MetagenerationNotMatch",
] as const;

/** Reads ifGenerationMatch & co, or with `source` ifSourceGenerationMatch & co (copy and rewrite sources). */
export function parsePreconditions(q: URLSearchParams, source = false): Preconditions {
  const pre: Preconditions = {};
  for (const condition of CONDITIONS) {
    const value = int64Param(q, `if${source ? "Source" : ""}${condition}`);
    if (value !== undefined) pre[`if${condition}`] = value;
  }
  return pre;
}

/**
 * Semantics from the API reference: `ifGenerationMatch=0` holds only if there is no live object, any other
 * `*Match` needs a live object with that value, and `ifGenerationNotMatch` fails when there is no live object.
 * Reads report failed `*NotMatch` conditions as 304 Not Modified, like GCS; everything else is 412.
 */
export function checkPreconditions(
  current: StoredObject | undefined,
  pre: Preconditions,
  read = false,
): void {
  if (pre.ifGenerationMatch !== undefined && pre.ifGenerationMatch !== (current?.generation ?? "0")) {
    throw preconditionFailed();
  }
  if (
    pre.ifMetagenerationMatch !== undefined &&
    (current === undefined || pre.ifMetagenerationMatch !== current.metageneration)
  ) {
    throw preconditionFailed();
  }
  if (pre.ifGenerationNotMatch !== undefined && current === undefined) throw preconditionFailed();
  if (
    (pre.ifGenerationNotMatch !== undefined && pre.ifGenerationNotMatch === current?.generation) ||
    (pre.ifMetagenerationNotMatch !== undefined && pre.ifMetagenerationNotMatch === current?.metageneration)
  ) {
    throw read ? notModified() : preconditionFailed();
  }
}
