import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatLossKey, formatObjectKey } from "../keys/layout.ts";
import {
  encodeHourIndex,
  type HourIndex,
  type HourIndexEntry,
  HourIndexError,
  hourStartText,
  parseHourIndex,
} from "./hour-index.ts";

const id = { node: "node-a", epoch: "9f2c1a7b" };
const key = (seq: number, namespace = "payments") =>
  formatObjectKey({ prefix: "logs", tier: "archive", namespace, dt: "2026-11-21", hour: "09", ...id, seq });
const entry = (seq: number) => ({
  seq,
  kind: "batch" as const,
  key: key(seq),
  namespace: "payments",
  tier: "archive" as const,
  sha256: "a".repeat(64),
  bytes: 100,
  records: 3,
  firstTimestamp: "2026-11-21T09:00:00.000000001Z",
  lastTimestamp: "2026-11-21T09:10:00Z",
});
const index: HourIndex = {
  format: "logarchive-hour-index",
  version: 1,
  ...id,
  hour: "2026-11-21T10:00:00Z",
  first: 5,
  last: 6,
  previous: { hour: "2026-11-21T08:00:00Z", last: 4 },
  batches: [
    entry(5),
    {
      ...entry(6),
      kind: "loss",
      tier: null,
      records: 0,
      key: formatLossKey({
        prefix: "logs",
        namespace: "payments",
        dt: "2026-11-21",
        hour: "09",
        ...id,
        seq: 6,
      }),
    },
  ],
};

describe("hour index body", () => {
  it("round-trips, and the same facts in another order make the same bytes", () => {
    const bytes = encodeHourIndex(index);
    assert.deepEqual(parseHourIndex(bytes), index);
    const shuffled = { ...index, batches: [...index.batches].reverse() } as HourIndex;
    assert.ok(encodeHourIndex(shuffled).equals(bytes));
    assert.equal(hourStartText(Date.UTC(2026, 10, 21, 10) / 3_600_000), "2026-11-21T10:00:00Z");
  });

  it("accepts a chain link to a later hour: the shipper's clock was stepped back past it", () => {
    const stepped = { ...index, previous: { hour: "2026-11-21T15:00:00Z", last: 4 } };
    assert.deepEqual(parseHourIndex(encodeHourIndex(stepped)).previous, stepped.previous);
  });

  it("refuses a body that is not a consistent index, naming the field", () => {
    const refuse = (value: unknown, why: RegExp) =>
      assert.throws(
        () => parseHourIndex(JSON.stringify(value)),
        (e: Error) => e instanceof HourIndexError && why.test(e.message),
      );
    /** The index with its first entry (number 5) changed. */
    const firstEntryChanged = (change: Partial<HourIndexEntry>) => ({
      ...index,
      batches: [{ ...entry(5), ...change }, index.batches[1]],
    });
    assert.throws(() => parseHourIndex("{"), /not JSON/);
    refuse({ ...index, version: 2 }, /field version/);
    refuse(firstEntryChanged({ sha256: "XYZ" }), /batches\.0\.sha256/);
    // A number missing, or out of place.
    refuse({ ...index, last: 7 }, /lists 2 batches for numbers 5\.\.7/);
    refuse({ ...index, batches: [index.batches[1], index.batches[0]] }, /entry 0 has number 6/);
    // A key of another number, node or namespace.
    refuse(firstEntryChanged({ key: key(9) }), /not this node's/);
    refuse(firstEntryChanged({ namespace: "web" }), /namespace or tier/);
    refuse(firstEntryChanged({ kind: "loss", tier: null }), /entry 5/);
    // The chain link must end right before `first`, in another hour.
    refuse({ ...index, previous: { hour: "2026-11-21T08:00:00Z", last: 3 } }, /right before first/);
    refuse({ ...index, previous: { hour: "2026-11-21T10:00:00Z", last: 4 } }, /is this index's hour/);
    refuse({ ...index, hour: "2026-11-21T10:30:00Z" }, /field hour/);
  });
});
