// Real log samples from /work/shared/corpora (see its SOURCES.md), which CI checks out
// beside the repository. A missing file throws: a test that silently skipped its corpus
// would pass while testing nothing.

import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const CORPORA_DIR = fileURLToPath(new URL("../../../shared/corpora/", import.meta.url));

export function readCorpus(relativePath: string): Buffer {
  const path = `${CORPORA_DIR}${relativePath}`;
  if (!existsSync(path)) {
    throw new Error(`corpus file ${path} is missing: check out shared/corpora beside the repository`);
  }
  return readFileSync(path);
}

/** The corpus file's non-empty lines, as raw bytes. */
export function corpusLines(relativePath: string): Buffer[] {
  const data = readCorpus(relativePath);
  const lines: Buffer[] = [];
  let start = 0;
  for (let nl = data.indexOf(10); nl >= 0; nl = data.indexOf(10, start)) {
    if (nl > start) lines.push(data.subarray(start, nl));
    start = nl + 1;
  }
  if (start < data.length) lines.push(data.subarray(start));
  return lines;
}
