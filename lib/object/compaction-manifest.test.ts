// The compaction manifest's schema and serialisation: the same facts make the same bytes
// whatever order they come in, a body parses back to what was encoded, and each kind of
// malformed or inconsistent manifest is refused with one error naming what is wrong.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatCompactedPartKey, formatObjectKey } from "../keys/layout.ts";
import {
  COMPACTION_MANIFEST_FORMAT,
  COMPACTION_MANIFEST_VERSION,
  type CompactionManifest,
  CompactionManifestError,
  type CompactionMember,
  encodeCompactionManifest,
  parseCompactionManifest,
  partPlanDigest,
} from "./compaction-manifest.ts";

const hourKey = { prefix: "logs", namespace: "payments", dt: "2026-11-21", hour: "09" };

function member(node: string, seq: number, part: number, offset: number, length: number): CompactionMember {
  return {
    key: formatObjectKey({ ...hourKey, tier: "archive", node, epoch: "9f2c1a7b", seq }),
    versionId: null,
    tier: "archive",
    node,
    epoch: "9f2c1a7b",
    seq,
    part,
    offset,
    length,
    sha256: String(seq).padStart(64, "a"),
    records: seq + 1,
    firstTimestamp: "2026-11-21T09:00:00.000000001Z",
    lastTimestamp: "2026-11-21T09:59:59.999999999Z",
  };
}

function sample(): CompactionManifest {
  const members = [
    member("node-a", 1, 0, 0, 100),
    member("node-b", 2, 0, 100, 50),
    member("node-c", 3, 1, 0, 70),
  ];
  const parts = [0, 1].map((part) => {
    const inPart = members.filter((m) => m.part === part);
    return {
      part,
      key: formatCompactedPartKey({ ...hourKey, generation: 0, part, plan: partPlanDigest(inPart) }),
      bytes: inPart.reduce((n, m) => n + m.length, 0),
      sha256: "f".repeat(64),
      members: inPart.length,
      records: inPart.reduce((n, m) => n + m.records, 0),
    };
  });
  return {
    format: COMPACTION_MANIFEST_FORMAT,
    version: COMPACTION_MANIFEST_VERSION,
    namespace: "payments",
    hour: "2026-11-21T09:00:00Z",
    generation: 0,
    previous: null,
    parts,
    members,
    totals: { parts: 2, members: 3, bytes: 220, records: 9 },
  };
}

/** The sample encoded, then changed as JSON (so the change reaches parse, not encode's checks). */
/** A manifest as raw JSON: any field may be set to anything. */
type RawManifest = CompactionManifest & Record<string, unknown>;

function tampered(change: (m: RawManifest) => void): Buffer {
  const value = JSON.parse(encodeCompactionManifest(sample()).toString());
  change(value);
  return Buffer.from(JSON.stringify(value));
}

describe("compaction manifest", () => {
  it("round-trips, and the same facts in any order make the same bytes", () => {
    const body = encodeCompactionManifest(sample());
    assert.deepEqual(parseCompactionManifest(body), sample());
    const shuffled = sample();
    shuffled.members.reverse();
    shuffled.parts.reverse();
    const reordered = Object.fromEntries(Object.entries(shuffled).reverse()) as unknown as CompactionManifest;
    assert.deepEqual(encodeCompactionManifest(reordered), body);
    assert.ok(body.toString().endsWith("}\n") && !body.toString().slice(0, -1).includes("\n"), "one line");
  });

  it("names a part by the plan of its members: other members, versions or lengths, another key", () => {
    const [a, b] = sample().members as [CompactionMember, CompactionMember];
    const digest = partPlanDigest([a, b]);
    assert.match(digest, /^[0-9a-f]{16}$/);
    assert.equal(partPlanDigest([{ ...a }, { ...b }]), digest);
    for (const other of [
      [b, a],
      [a],
      [{ ...a, versionId: "v2" }, b],
      [{ ...a, length: 101 }, b],
      [{ ...a, sha256: "b".repeat(64) }, b],
    ]) {
      assert.notEqual(partPlanDigest(other), digest);
    }
  });

  const refusals: [string, ((m: RawManifest) => void) | null, RegExp][] = [
    ["not JSON", null, /is not JSON/],
    [
      "another format",
      (m) => {
        (m as { format: string }).format = "x";
      },
      /field format is invalid/,
    ],
    [
      "a later version",
      (m) => {
        (m as { version: number }).version = 2;
      },
      /field version is invalid/,
    ],
    [
      "an unknown field",
      (m) => {
        m.extra = 1;
      },
      /invalid/,
    ],
    [
      "a bad member checksum",
      (m) => {
        m.members[1]!.sha256 = "ABC";
      },
      /field members\.1\.sha256 is invalid \(expected 64 lowercase hex digits\)/,
    ],
    [
      "a negative offset",
      (m) => {
        m.members[0]!.offset = -1;
      },
      /members\.0\.offset/,
    ],
    [
      "a bad hour",
      (m) => {
        m.hour = "2026-11-21T09:30:00Z";
      },
      /field hour/,
    ],
    [
      "no parts",
      (m) => {
        m.parts = [];
      },
      /field parts/,
    ],
    [
      "members out of key order",
      (m) => {
        m.members.reverse();
      },
      /is not after/,
    ],
    [
      "a member twice",
      (m) => {
        m.members[1] = m.members[0]!;
      },
      /is not after/,
    ],
    [
      "a member of another hour",
      (m) => {
        m.members[0]!.key = m.members[0]!.key.replace("hour=09", "hour=08");
      },
      /not an object of namespace payments in hour/,
    ],
    [
      "a member whose seq disagrees with its key",
      (m) => {
        m.members[0]!.seq = 7;
      },
      /disagrees with its key/,
    ],
    [
      "a gap between members of a part",
      (m) => {
        m.members[1]!.offset = 101;
      },
      /not right after the member before \(100\)/,
    ],
    [
      "a part of another size",
      (m) => {
        m.parts[0]!.bytes = 151;
      },
      /is 151 bytes but its members fill 150/,
    ],
    [
      "a part whose key is another plan's",
      (m) => {
        m.parts[0]!.key = m.parts[1]!.key.replace("part-0000-0001", "part-0000-0000");
      },
      /expected key/,
    ],
    [
      "a member in a part that does not exist",
      (m) => {
        m.members[2]!.part = 5;
      },
      /names part 5, of 2/,
    ],
    [
      "wrong totals",
      (m) => {
        m.totals.records = 10;
      },
      /totals\.records is 10, not 9/,
    ],
    [
      "a previous link on generation 0",
      (m) => {
        m.previous = { generation: 0, sha256: "a".repeat(64) };
      },
      /previous must name generation - 1/,
    ],
  ];
  for (const [what, change, error] of refusals) {
    it(`refuses ${what} with one error naming it`, () => {
      const body = change === null ? Buffer.from("{not json") : tampered(change);
      assert.throws(
        () => parseCompactionManifest(body),
        (e: Error) =>
          e instanceof CompactionManifestError && error.test(e.message) && !e.message.includes("\n"),
      );
    });
  }

  it("refuses to encode what it could not parse back", () => {
    const bad = sample();
    bad.parts[1]!.records = 0;
    assert.throws(() => encodeCompactionManifest(bad), /says 0 records, its members 4/);
  });
});
