// Real log samples kept in the repository under test/fixtures/corpora (see its SOURCES.md
// for origin and licence), so a fresh clone tests with nothing beside it. A missing file
// throws: a test that silently skipped its corpus would pass while testing nothing.

import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const CORPORA_DIR = fileURLToPath(new URL("../../test/fixtures/corpora/", import.meta.url));

export function readCorpus(relativePath: string): Buffer {
  const path = `${CORPORA_DIR}${relativePath}`;
  if (!existsSync(path)) {
    throw new Error(
      `corpus file ${path} is missing: test/fixtures/corpora is part of the repository; restore it with git`,
    );
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
