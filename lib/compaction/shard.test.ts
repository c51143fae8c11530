// The shard a namespace is in must never change (pods of one Indexed Job, or a by-hand run,
// built from different releases must agree), so fixed namespaces are asserted against fixed
// shards, computed by hand from their SHA-256: e.g. "payments" hashes to df384ae9…, and
// 0xdf384ae9 = 3,745,008,361, which is 1 mod 3 and 1 mod 8.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { formatShard, inShard, namespaceShard, parseShard, WHOLE_ARCHIVE } from "./shard.ts";

describe("namespace shards", () => {
  it("a fixed namespace is in a fixed shard (the first 4 bytes of its SHA-256, big-endian, mod count)", () => {
    assert.equal(createHash("sha256").update("payments").digest("hex").slice(0, 8), "df384ae9");
    assert.equal(0xdf384ae9, 3_745_008_361);
    for (const [namespace, of3, of8] of [
      ["payments", 1, 1],
      ["web", 1, 6],
      ["kube-system", 0, 0],
      ["ns-00", 0, 4],
      ["ns-01", 2, 7],
      ["ns-10", 2, 3],
    ] as const) {
      assert.equal(namespaceShard(namespace, 3), of3, `${namespace} of 3`);
      assert.equal(namespaceShard(namespace, 8), of8, `${namespace} of 8`);
      assert.equal(namespaceShard(namespace, 1), 0);
    }
  });

  it("every namespace is in exactly one shard of a count", () => {
    for (let i = 0; i < 200; i++) {
      const ns = `team-${i}`;
      const holders = [0, 1, 2, 3, 4].filter((index) => inShard(ns, { index, count: 5 }));
      assert.deepEqual(holders, [namespaceShard(ns, 5)]);
      assert.ok(inShard(ns, WHOLE_ARCHIVE));
    }
  });

  it("parses <index>/<count> and refuses anything else, saying why", () => {
    assert.deepEqual(parseShard("0/1"), { index: 0, count: 1 });
    assert.deepEqual(parseShard("7/8"), { index: 7, count: 8 });
    assert.equal(formatShard(parseShard("2/3")), "2/3");
    for (const [text, why] of [
      ["3", /expected <index>\/<count>/],
      ["1/", /expected <index>\/<count>/],
      ["-1/3", /expected <index>\/<count>/],
      ["1.5/3", /expected <index>\/<count>/],
      [" 1/3", /expected <index>\/<count>/],
      ["3/3", /the index 3 must be below the count 3/],
      ["0/0", /the count 0 must be from 1 to 1024/],
      ["0/1025", /the count 1025 must be from 1 to 1024/],
    ] as const) {
      assert.throws(() => parseShard(text), why, text);
    }
  });
});
