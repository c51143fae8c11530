import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  archiveTransitions,
  DEFAULT_ARCHIVE_TIER_DAYS,
  objectLifeCost,
  transitionMinimumSizes,
  transitionSizeBands,
  transitionsForSize,
} from "./archive-lifecycle.ts";
import { applyPriceOverrides, DEFAULT_PRICES } from "./economics/prices.ts";

const lifecycle = archiveTransitions(DEFAULT_ARCHIVE_TIER_DAYS); // IA@30 → GIR@90 → DA@180
const GIB = 2 ** 30;
const MONTH = 365 / 12;
const names = (bands: ReturnType<typeof transitionSizeBands>) =>
  bands.map((b) => [b.minBytes, b.maxBytes, b.transitions.map((t) => t.storageClass).join("+")]);

describe("size-aware transitions: where each transition pays for itself", () => {
  it("the default lifecycle over 730 days, computed by hand", () => {
    // Glacier IR alone (Standard 0-90, GIR 90-730 billed as 128 KB) against Standard for 730 days,
    // under 128 KB: 0.023·s·640/M = 0.02/1000·2^30 + 0.004·131072·640/M, M = 365/12
    //   → s = (21,474.84 + 11,031.60) / 0.483945 = 67,169.9 → 67,170 bytes.
    // Standard-IA before it (IA 30-90 instead of Standard), over 128 KB:
    //   0.01/1000·2^30 = (0.023 − 0.0125)·s·60/M → s = 10,737.42 / 0.0207123 = 518,407.6 → 518,408.
    // Deep Archive at 180 (instead of staying in GIR to 730: 550 days; +32 KB at its rate, +8 KB at Standard's):
    //   (0.004 − 0.00099)·s·550/M = 0.05/1000·2^30 + (0.00099·32768 + 0.023·8192)·550/M
    //   → 0.0544274·s = 53,687.09 + 3,993.59 → s = 1,059,772.6 → 1,059,773.
    const bands = transitionSizeBands(lifecycle, 730, DEFAULT_PRICES);
    assert.deepEqual(names(bands), [
      [0, 67_170, ""],
      [67_170, 518_408, "GLACIER_IR"],
      [518_408, 1_059_773, "STANDARD_IA+GLACIER_IR"],
      [1_059_773, null, "STANDARD_IA+GLACIER_IR+DEEP_ARCHIVE"],
    ]);
    assert.deepEqual(
      transitionMinimumSizes(lifecycle, bands).map((m) => [m.step.storageClass, m.minBytes]),
      [
        ["STANDARD_IA", 518_408],
        ["GLACIER_IR", 67_170],
        ["DEEP_ARCHIVE", 1_059_773],
      ],
    );
    // The reference scenario's median archived object (666 KiB) skips Deep Archive and stays in GIR.
    assert.deepEqual(
      transitionsForSize(bands, 666 * 1024).map((t) => t.storageClass),
      ["STANDARD_IA", "GLACIER_IR"],
    );
    assert.deepEqual(transitionsForSize(bands, 10_000), []);
  });

  it("at each bound the two sides cost the same, and each band's choice is the cheapest of all eight", () => {
    const bands = transitionSizeBands(lifecycle, 730, DEFAULT_PRICES);
    for (const [i, band] of bands.entries()) {
      if (i === 0) continue;
      const below = bands[i - 1]!.transitions;
      const at = band.minBytes;
      const diff =
        objectLifeCost(at, band.transitions, 730, DEFAULT_PRICES) -
        objectLifeCost(at, below, 730, DEFAULT_PRICES);
      assert.ok(diff <= 0 && diff > -1e-9, `band at ${at}: ${diff}`);
      assert.ok(
        objectLifeCost(at - 2, band.transitions, 730, DEFAULT_PRICES) >
          objectLifeCost(at - 2, below, 730, DEFAULT_PRICES),
      );
    }
    const all = [
      [],
      ...lifecycle.map((t) => [t]),
      ...lifecycle.flatMap((a, i) => lifecycle.slice(i + 1).map((b) => [a, b])),
      lifecycle,
    ];
    for (const size of [1_000, 100_000, 300_000, 700_000, 5_000_000]) {
      const chosen = objectLifeCost(size, transitionsForSize(bands, size), 730, DEFAULT_PRICES);
      for (const other of all) assert.ok(chosen <= objectLifeCost(size, other, 730, DEFAULT_PRICES) + 1e-15);
    }
  });

  it("an object's life cost, by hand: 1 MiB through IA and GIR for 730 days", () => {
    const s = 2 ** 20;
    const expected = (s * (0.023 * 30 + 0.0125 * 60 + 0.004 * 640)) / MONTH / GIB + 0.01 / 1000 + 0.02 / 1000;
    assert.ok(Math.abs(objectLifeCost(s, lifecycle.slice(0, 2), 730, DEFAULT_PRICES) - expected) < 1e-15);
    // Deep Archive left before its 180-day minimum bills the rest: 30 days in it still bill 180.
    const da = [{ storageClass: "DEEP_ARCHIVE" as const, afterDays: 200 }];
    const short =
      ((s + 32768) * 0.00099 * 180 + 8192 * 0.023 * 30 + s * 0.023 * 200) / MONTH / GIB + 0.05 / 1000;
    assert.ok(Math.abs(objectLifeCost(s, da, 230, DEFAULT_PRICES) - short) < 1e-15);
  });

  it("follows the prices (--prices) and the retention", () => {
    // Free transitions: every object at least 128 KB takes all three (the 128 KB billing
    // minimum still keeps the smallest in Standard until GIR's floor pays).
    const free = applyPriceOverrides({
      s3_transition_standard_ia_per_1k: 0,
      s3_transition_glacier_ir_per_1k: 0,
      s3_transition_deep_archive_per_1k: 0,
    });
    const cheap = transitionSizeBands(lifecycle, 730, free);
    assert.deepEqual(
      cheap.at(-1)!.transitions.map((t) => t.storageClass),
      ["STANDARD_IA", "GLACIER_IR", "DEEP_ARCHIVE"],
    );
    assert.ok(cheap.at(-1)!.minBytes < transitionSizeBands(lifecycle, 730, DEFAULT_PRICES).at(-1)!.minBytes);
    // A year's retention: Deep Archive has 185 days to pay back, not 550, so it needs a bigger object.
    const year = transitionMinimumSizes(lifecycle, transitionSizeBands(lifecycle, 365, DEFAULT_PRICES));
    assert.ok(year[2]!.minBytes! > 2_900_000);
    // Transitions at or after the retention never happen and get no band.
    assert.deepEqual(
      transitionSizeBands([{ storageClass: "DEEP_ARCHIVE", afterDays: 400 }], 365, DEFAULT_PRICES).flatMap(
        (b) => b.transitions,
      ),
      [],
    );
  });
});
