// The shipper's Prometheus metrics, all prefixed `logarchive_shipper_`. The Grafana
// dashboard and alert rules in shipper/deploy/ use these names; deploy/deploy.test.ts checks
// that every name they use exists here.

import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";

export const METRIC_PREFIX = "logarchive_shipper_";

export class ShipperMetrics {
  readonly registry = new Registry();

  readonly bytesRead = this.#counter(
    "read_bytes_total",
    "Bytes read from container log files (decompressed for .gz).",
  );
  readonly linesRead = this.#counter("read_lines_total", "Physical lines read from container log files.");
  readonly records = this.#counter(
    "records_total",
    "Records (logical lines) added to batches, per namespace.",
    ["namespace"],
  );
  readonly parseErrors = this.#counter(
    "parse_errors_total",
    "Lines that were not valid CRI or Docker json-file, archived raw with parse_error.",
  );
  readonly linesTruncated = this.#counter(
    "lines_truncated_total",
    "Lines longer than max_line_bytes, archived cut and marked truncated.",
  );
  readonly bytesTruncated = this.#counter("truncated_bytes_total", "Bytes cut off truncated lines.");
  readonly multilineRecords = this.#counter(
    "multiline_records_total",
    "Records merged from several lines by the multiline rules, by what ended them: next_line, timeout, limit (max_lines or max_bytes; the trace goes on in the next record), end (the file chain ended or the shipper drained).",
    ["reason"],
  );
  readonly multilineLines = this.#counter(
    "multiline_lines_total",
    "Lines merged into multiline records (each counted once in read_lines_total too).",
  );
  readonly bytesLost = this.#counter(
    "lost_bytes_total",
    "Log bytes that could not be read, by reason: rotation (a file vanished before it was read to the end), truncation (a file was truncated past the read offset), corrupt_gzip (compressed bytes of a damaged rotated .gz from the damage to its end, at least 1; the whole file when the damage is inside a gzip member).",
    ["reason"],
  );
  readonly batchesSealed = this.#counter(
    "batches_sealed_total",
    "Batches cut, spooled and queued for upload.",
  );
  readonly batchesUploaded = this.#counter("batches_uploaded_total", "Batches acknowledged by S3.");
  readonly bytesUploaded = this.#counter("uploaded_bytes_total", "Compressed bytes acknowledged by S3.");
  readonly rawBytesUploaded = this.#counter(
    "uploaded_raw_bytes_total",
    "NDJSON bytes, before gzip, acknowledged by S3.",
  );
  readonly uploadFailures = this.#counter(
    "upload_failures_total",
    "Failed PutObject attempts, by error code.",
    ["code"],
  );
  readonly uploadRetries = this.#counter("upload_retries_total", "PutObject attempts that were retries.");
  readonly spoolBytes = this.#gauge(
    "spool_bytes",
    "Bytes in the spool: open batches and sealed batches not yet in S3.",
  );
  readonly spoolLimitBytes = this.#gauge("spool_limit_bytes", "The spool_max_bytes setting.");
  readonly backpressure = this.#gauge("backpressure", "1 while reading is paused because the spool is full.");
  readonly backpressureSeconds = this.#counter(
    "backpressure_seconds_total",
    "Time spent with reading paused because the spool was full.",
  );
  readonly openBatches = this.#gauge("open_batches", "Batches being filled.");
  readonly uploadQueue = this.#gauge("upload_queue_batches", "Sealed batches waiting for or in upload.");
  readonly filesTracked = this.#gauge("files_tracked", "Log files being followed.");
  readonly fileLagBytes = this.#gauge("file_lag_bytes", "Bytes of a log file not yet read, per file.", [
    "file",
  ]);
  readonly lagBytes = this.#gauge("lag_bytes", "Bytes of all log files not yet read.");
  readonly commits = this.#counter(
    "checkpoint_commits_total",
    "Checkpoints committed (offsets made durable).",
  );
  readonly lastCommit = this.#gauge(
    "last_commit_timestamp_seconds",
    "Unix time of the last committed checkpoint.",
  );

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true)
      collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
  }

  #counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return new Counter({ name: METRIC_PREFIX + name, help, labelNames, registers: [this.registry] });
  }

  #gauge<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    return new Gauge({ name: METRIC_PREFIX + name, help, labelNames, registers: [this.registry] });
  }
}
