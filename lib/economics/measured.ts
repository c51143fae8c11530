// Workload inputs measured on a real node: the shipper's /metrics (Prometheus text) or a
// JSON/YAML map. From the metrics: stored/raw = uploaded_bytes / read_bytes, record/raw =
// uploaded_raw_bytes / read_bytes, raw bytes per line = read_bytes / read_lines.

export interface Measured {
  /** Aggregate gzip bytes per raw byte, objects' fixed costs included. */
  storedPerRaw?: number;
  /** From the metrics: what the run read and uploaded, for the per-object split. */
  readBytes?: number;
  uploadedBytes?: number;
  objects?: number;
  recordPerRaw?: number;
  rawLineBytes?: number;
  /** Objects per node-hour the run produced, when the file states it (JSON only). */
  objectsPerNodeHour?: number;
}

export class MeasuredError extends Error {
  override name = "MeasuredError";
}

function metric(text: string, name: string): number | undefined {
  let total: number | undefined;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== " " && rest[0] !== "{") continue;
    const value = Number(rest.slice(rest.lastIndexOf(" ") + 1));
    if (Number.isFinite(value)) total = (total ?? 0) + value;
  }
  return total;
}

/** Parses shipper metrics text, or a map with storedPerRaw / compression, recordPerRaw, rawLineBytes. */
export function parseMeasured(text: string, parsed: unknown): Measured {
  if (text.includes("logarchive_shipper_read_bytes_total")) {
    const read = metric(text, "logarchive_shipper_read_bytes_total");
    const lines = metric(text, "logarchive_shipper_read_lines_total");
    const uploaded = metric(text, "logarchive_shipper_uploaded_bytes_total");
    const uploadedRaw = metric(text, "logarchive_shipper_uploaded_raw_bytes_total");
    const objects = metric(text, "logarchive_shipper_batches_uploaded_total");
    if (!read || !uploaded) {
      throw new MeasuredError(
        "the metrics show no bytes read and uploaded yet; measure after the shipper uploaded some batches",
      );
    }
    return {
      storedPerRaw: uploaded / read,
      readBytes: read,
      uploadedBytes: uploaded,
      ...(objects ? { objects } : {}),
      ...(uploadedRaw ? { recordPerRaw: uploadedRaw / read } : {}),
      ...(lines ? { rawLineBytes: read / lines } : {}),
    };
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new MeasuredError(
      "expected the shipper's /metrics text or a map with compression, recordPerRaw, rawLineBytes",
    );
  }
  const map = parsed as Record<string, unknown>;
  const out: Measured = {};
  const take = (key: keyof Measured, ...names: string[]) => {
    for (const n of names) {
      const v = map[n];
      if (v === undefined) continue;
      if (typeof v !== "number" || !(v > 0)) throw new MeasuredError(`${n}: expected a number > 0`);
      out[key] = v;
    }
  };
  take("storedPerRaw", "compression", "storedPerRaw");
  take("recordPerRaw", "recordPerRaw");
  take("rawLineBytes", "rawLineBytes", "lineBytes");
  take("objectsPerNodeHour", "objectsPerNodeHour");
  return out;
}
