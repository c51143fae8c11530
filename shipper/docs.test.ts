// docs/shipper.md is the user guide; these tests fail when it drifts from the code: the
// option table from config.ts, the metric table from metrics.ts, the config examples, and
// the alert table from deploy/prometheus-rules.yaml.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { optionsMarkdownTable, parseShipperConfigFile, resolveShipperConfig } from "./config.ts";
import { ShipperMetrics } from "./metrics.ts";
import { multilineFieldsMarkdownTable } from "./transforms/multiline/config.ts";

const DOC = readFileSync(join(import.meta.dirname, "../docs/shipper.md"), "utf8");

function between(start: string, end: string): string {
  const a = DOC.indexOf(`<!-- ${start} -->`);
  const b = DOC.indexOf(`<!-- ${end} -->`);
  assert.ok(a >= 0 && b > a, `docs/shipper.md needs <!-- ${start} --> before <!-- ${end} -->`);
  return DOC.slice(a + start.length + 9, b).trim();
}

/** The first fenced block of `lang` after a heading. */
function blockAfter(heading: string, lang: string): string {
  const at = DOC.indexOf(`\n${heading}\n`);
  assert.ok(at >= 0, `no heading ${heading}`);
  const m = new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``).exec(DOC.slice(at));
  assert.ok(m, `no ${lang} block after ${heading}`);
  return m[1]!;
}

/**
 * A Markdown table as rows of trimmed cells, the separator row as one marker: Biome's
 * Markdown formatter pads columns, which changes nothing a reader sees.
 */
function tableCells(markdown: string): string[][] {
  return markdown
    .trim()
    .split("\n")
    .map((line) =>
      /^\|[-:| ]+\|$/.test(line)
        ? ["---"]
        : line
            .trim()
            .slice(1, -1)
            .split(/(?<!\\)\|/)
            .map((c) => c.trim()),
    );
}

/** The body rows of a table (header and separator dropped). */
function tableRows(markdown: string): string[][] {
  return tableCells(markdown)
    .filter((r) => r[0] !== "---")
    .slice(1);
}

/** The table whose header row starts with `| first |`. */
function tableStartingWith(first: string): string {
  const lines = DOC.split("\n");
  const at = lines.findIndex((l) => new RegExp(`^\\| ${first}\\s+\\|`).test(l));
  assert.ok(at >= 0, `no table starting with ${first}`);
  const end = lines.findIndex((l, k) => k > at && !l.startsWith("|"));
  return lines.slice(at, end < 0 ? undefined : end).join("\n");
}

describe("docs/shipper.md", () => {
  it("has exactly optionsMarkdownTable() between the options markers, cell for cell", () => {
    assert.deepEqual(tableCells(between("options:start", "options:end")), tableCells(optionsMarkdownTable()));
  });

  it("has exactly multilineFieldsMarkdownTable() between the multiline markers, cell for cell", () => {
    assert.deepEqual(
      tableCells(between("multiline:start", "multiline:end")),
      tableCells(multilineFieldsMarkdownTable()),
    );
  });

  it("has a multiline example the shipper accepts", () => {
    const heading = "## Multi-line stack traces";
    const values = parseShipperConfigFile(`bucket: acme-logs\n${blockAfter(heading, "yaml")}`, heading);
    const config = resolveShipperConfig({ file: { path: heading, values }, env: {} });
    assert.deepEqual(
      config.multiline.map((r) => r.mode),
      ["off", "java", "python", "auto"],
    );
  });

  it("compares tables by their cells, so only column padding may differ", () => {
    const table = "| a | b |\n|---|---|\n| `x` | y z |";
    assert.deepEqual(tableCells("| a   | b     |\n| --- | ----- |\n| `x` | y z   |"), tableCells(table));
    assert.notDeepEqual(tableCells("| a | b |\n|---|---|\n| `x` | y  z |"), tableCells(table));
    assert.notDeepEqual(tableCells("| a | b |\n|---|---|"), tableCells(table));
  });

  it("lists every metric the shipper registers, with its type, labels and help, and no others", async () => {
    const documented = new Map(tableRows(between("metrics:start", "metrics:end")).map((r) => [r[0]!, r]));
    const registry = new ShipperMetrics({ defaultMetrics: false }).registry;
    const registered = await registry.getMetricsAsJSON();
    const missing = registered.map((m) => `\`${m.name}\``).filter((n) => !documented.has(n));
    assert.deepEqual(missing, [], `metrics missing from docs/shipper.md: ${missing.join(", ")}`);
    assert.equal(documented.size, registered.length, "docs/shipper.md lists metrics that do not exist");
    for (const m of registered) {
      const labelNames = (registry.getSingleMetric(m.name) as unknown as { labelNames: string[] }).labelNames;
      const labels = labelNames.map((l) => `\`${l}\``).join(", ");
      assert.deepEqual(
        documented.get(`\`${m.name}\``),
        [`\`${m.name}\``, String(m.type), labels, m.help],
        m.name,
      );
    }
  });

  it("has configuration examples the shipper accepts", () => {
    for (const heading of ["### Minimal configuration", "### Advanced configuration"]) {
      const values = parseShipperConfigFile(blockAfter(heading, "yaml"), heading);
      const config = resolveShipperConfig({ file: { path: heading, values }, env: {} });
      assert.equal(config.bucket, "acme-logs", heading);
    }
  });

  it("grants the shipper only PutObject and GetObject on the archive prefix", () => {
    const policy = JSON.parse(blockAfter("### AWS", "json")) as {
      Statement: { Effect: string; Action: string[]; Resource: string }[];
    };
    assert.deepEqual(
      policy.Statement.flatMap((s) => s.Action),
      ["s3:PutObject", "s3:GetObject"],
    );
    for (const s of policy.Statement) assert.match(s.Resource, /^arn:aws:s3:::[^/]+\/.+\/\*$/);
  });

  it("describes every alert of deploy/prometheus-rules.yaml", () => {
    const rules = parse(readFileSync(join(import.meta.dirname, "deploy/prometheus-rules.yaml"), "utf8")) as {
      groups: { rules: { alert: string; labels: { severity: string } }[] }[];
    };
    const alerts = rules.groups.flatMap((g) => g.rules);
    const rows = new Map(tableRows(tableStartingWith("alert")).map((r) => [r[0], r[2]]));
    for (const a of alerts) assert.equal(rows.get(`\`${a.alert}\``), a.labels.severity, a.alert);
    assert.ok(rows.size >= alerts.length);
  });
});
