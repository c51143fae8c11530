import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { parsePolicy } from "../lib/policy/policy.ts";
import { archiveOnlyShipped, describeLoaded } from "./run.ts";

const shippedPolicy = parsePolicy(readFileSync(new URL("../namespaces.yaml", import.meta.url), "utf8"));

describe("logarchive local's shipped/loaded status", () => {
  it("counts the lines of namespaces the policy archives but does not load, from the policy", () => {
    const shipped = new Map([
      ["payments", 853],
      ["kube-system", 241],
      ["checkout", 509],
    ]);
    assert.deepEqual(archiveOnlyShipped(shipped, shippedPolicy), { lines: 241, namespaces: ["kube-system"] });
    const loadsNothing = parsePolicy("analytics:\n  include: []\n");
    assert.deepEqual(archiveOnlyShipped(shipped, loadsNothing), {
      lines: 1603,
      namespaces: ["checkout", "kube-system", "payments"],
    });
    const notArchived = parsePolicy('archive:\n  exclude: ["kube-system"]\nanalytics:\n  include: ["*"]\n');
    assert.deepEqual(archiveOnlyShipped(shipped, notArchived), { lines: 0, namespaces: [] });
  });

  it("says why loaded rows are fewer than shipped lines, and nothing when every line loads", () => {
    assert.equal(
      describeLoaded(2759, { lines: 241, namespaces: ["kube-system"] }),
      "loaded 2,759 rows (241 lines of archive-only namespace kube-system not loaded)",
    );
    assert.equal(
      describeLoaded(10, { lines: 5, namespaces: ["a", "b"] }),
      "loaded 10 rows (5 lines of archive-only namespaces a, b not loaded)",
    );
    assert.equal(describeLoaded(3000, { lines: 0, namespaces: [] }), "loaded 3,000 rows");
  });
});
