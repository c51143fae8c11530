// The restore table: every tier S3 offers for each archive class has a time and a price, the
// one it does not (Expedited from Deep Archive) is refused, and the local archive front takes
// exactly the time the plan promises.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { defaultRestoreHours } from "../../local/s3-archive/state.ts";
import { DEFAULT_PRICES } from "../economics/prices.ts";
import type { InspectedVersion } from "./find.ts";
import { RESTORE_CLASSES } from "./find.ts";
import { planRestores, RESTORE_TIERS, RestorePlanError, restoreHours, tierProblem } from "./plan.ts";

const GB = 1024 ** 3;

function archived(storageClass: string, size: number): InspectedVersion {
  return {
    key: `logs/archive/namespace=payments/dt=2026-03-03/hour=10/node-a_0a0a0a0a_${String(size).padStart(12, "0")}.ndjson.gz`,
    parsed: {} as InspectedVersion["parsed"],
    versionId: "null",
    isLatest: true,
    isDeleteMarker: false,
    size,
    etag: null,
    lastModified: null,
    hourStart: 0,
    storageClass,
    restore: { state: "archived" },
    lock: { mode: null, retainUntil: null, legalHold: null },
    metadata: null,
    metadataProblem: null,
  };
}

describe("restore plan", () => {
  for (const storageClass of RESTORE_CLASSES) {
    for (const tier of RESTORE_TIERS) {
      const offered = !(storageClass === "DEEP_ARCHIVE" && tier === "Expedited");
      it(`${storageClass} ${tier}: ${offered ? "timed and priced" : "refused"}`, () => {
        const versions = [archived(storageClass, GB), archived(storageClass, 2 * GB)];
        if (!offered) {
          assert.match(tierProblem(storageClass, tier) ?? "", /not available for DEEP_ARCHIVE/);
          assert.throws(() => planRestores(versions, tier, 1, DEFAULT_PRICES), RestorePlanError);
          assert.equal(restoreHours(storageClass, tier), undefined);
          return;
        }
        const plan = planRestores(versions, tier, 1, DEFAULT_PRICES);
        const [c] = plan.byClass;
        assert.equal(c?.toRestore, 2);
        assert.ok(c?.costUsd !== null && c?.costUsd !== undefined && c.costUsd >= 0, c?.costNote ?? "");
        assert.equal(plan.costUsd, c?.costUsd);
        assert.match(
          c?.costNote ?? "",
          /\$\/GB \+ .*\$\/1,000 requests \(https:\/\/aws\.amazon\.com\/s3\/pricing\/\)/,
        );
        assert.equal(plan.estimatedHours, restoreHours(storageClass, tier));
        assert.equal(defaultRestoreHours(storageClass, tier), restoreHours(storageClass, tier));
      });
    }
  }

  it("prices Standard and Expedited from prices.ts: 3 GB and 2 requests", () => {
    const versions = [archived("GLACIER", GB), archived("GLACIER", 2 * GB)];
    const expedited = planRestores(versions, "Expedited", 1, DEFAULT_PRICES);
    assert.equal(
      expedited.costUsd,
      3 * DEFAULT_PRICES.s3_restore_glacier_fr_expedited_gb.value +
        (2 / 1000) * DEFAULT_PRICES.s3_restore_glacier_fr_expedited_per_1k.value,
    );
    const deep = planRestores(
      [archived("DEEP_ARCHIVE", GB), archived("DEEP_ARCHIVE", 2 * GB)],
      "Standard",
      1,
      DEFAULT_PRICES,
    );
    assert.equal(
      deep.costUsd,
      3 * DEFAULT_PRICES.s3_restore_deep_archive_standard_gb.value +
        (2 / 1000) * DEFAULT_PRICES.s3_restore_deep_archive_standard_per_1k.value,
    );
    assert.equal(deep.estimatedHours, 12);
  });
});
