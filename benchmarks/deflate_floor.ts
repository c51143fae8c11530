// A floor for the shipper's own deflate: Node's zlib (the library the shipper's gzip runs on,
// which is faster than GNU gzip's deflate at the same level) over a file in 256 KiB reads,
// one gzip stream, output discarded. shipper.bench.ts times it as a child process, like
// `gzip -6`, over the records the shipper wrote. Not a benchmark of its own (no .bench.ts),
// so `npm run bench` does not run it alone.
//
//   node benchmarks/deflate_floor.ts FILE [LEVEL]

import { createReadStream, createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";

const [file, level = "6"] = process.argv.slice(2);
if (file === undefined || !/^[1-9]$/.test(level)) {
  process.stderr.write("usage: node benchmarks/deflate_floor.ts FILE [LEVEL 1-9]\n");
  process.exit(2);
}
await pipeline(
  createReadStream(file, { highWaterMark: 256 * 1024 }),
  createGzip({ level: Number(level) }),
  createWriteStream("/dev/null"),
);
