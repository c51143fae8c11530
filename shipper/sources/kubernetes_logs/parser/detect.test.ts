import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { detectFormat, FormatDetector } from "./detect.ts";
import { ParsedLine } from "./parsed_line.ts";

const CRI = Buffer.from("2026-11-21T11:17:37.5Z stdout F hello");
const DOCKER = Buffer.from('{"log":"hello\\n","stream":"stdout","time":"2026-11-21T11:17:37.5Z"}');

describe("format detection", () => {
  it("tells CRI from Docker json-file by the first line", () => {
    assert.equal(detectFormat(CRI, 0, CRI.length), "cri");
    assert.equal(detectFormat(DOCKER, 0, DOCKER.length), "docker");
  });

  it("detects nothing from a line that is neither", () => {
    for (const text of ["", "hello", '{"msg":"app json, not docker"}', "2026-11-21 garbage"]) {
      const b = Buffer.from(text);
      assert.equal(detectFormat(b, 0, b.length), null, text);
    }
  });

  it("reports garbage before the first recognisable line as parse errors, then sticks to the detected format", () => {
    const d = new FormatDetector();
    const out = new ParsedLine();
    const garbage = Buffer.from("Starting up...");
    assert.equal(d.parse(garbage, 0, garbage.length, out), false);
    assert.equal(out.error, "invalid timestamp");
    assert.equal(d.format, null);

    assert.equal(d.parse(DOCKER, 0, DOCKER.length, out), true);
    assert.equal(d.format, "docker");
    assert.equal(out.bytes.subarray(out.start, out.end).toString(), "hello");

    // A CRI line in a Docker file is malformed there, not a reason to switch.
    assert.equal(d.parse(CRI, 0, CRI.length, out), false);
    assert.equal(out.error, "not a JSON object");
    assert.equal(d.format, "docker");
  });

  it("explains JSON-looking garbage with the Docker parser's reason", () => {
    const d = new FormatDetector();
    const out = new ParsedLine();
    const line = Buffer.from('{"msg":"x"}');
    assert.equal(d.parse(line, 0, line.length, out), false);
    assert.equal(out.error, "missing log");
  });
});
