// The kubernetes_logs source with multiline rules, on real files: rules chosen per
// namespace and container, idle traces flushed by the read loop, a trace carried across
// a rotation, and a restart from a checkpoint taken while a trace was open: every line
// comes out once, in one record with the rest of its trace.

import assert from "node:assert/strict";
import { appendFileSync, mkdirSync, renameSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DEFAULT_POLICY } from "../../../lib/policy/policy.ts";
import { ShipperMetrics } from "../../metrics.ts";
import type { FileCheckpoint } from "../../state/checkpoint.ts";
import { type MultilineRule, parseMultilineRules } from "../../transforms/multiline/config.ts";
import { GO_PANIC, JAVA_CHAINED, PYTHON_CHAINED } from "../../transforms/multiline/samples.ts";
import type { DecodedLine } from "./file_decoder.ts";
import { KubernetesLogsSource } from "./source.ts";

interface Rec {
  file: string;
  stream: string;
  text: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function rules(raw: unknown[]): MultilineRule[] {
  const r = parseMultilineRules(raw, "test");
  assert.ok(r.rules, r.problems.join("\n"));
  return r.rules;
}

class Node {
  readonly root: string;
  #clock = Date.UTC(2026, 10, 21, 12);

  constructor(root: string) {
    this.root = root;
  }

  dir(ns: string, container: string): string {
    const dir = join(this.root, `${ns}_api-7c9f_uid-${ns}`, container);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  /** Appends CRI lines, 1 ms apart, to `<ns>/<container>/0.log`. */
  write(ns: string, container: string, stream: string, lines: readonly string[]): void {
    const text = lines.map((l) => `${new Date(this.#clock++).toISOString()} ${stream} F ${l}\n`).join("");
    appendFileSync(join(this.dir(ns, container), "0.log"), text);
  }
}

function source(
  root: string,
  multiline: MultilineRule[],
  out: Rec[],
  options: { once?: boolean; restore?: FileCheckpoint[]; finishGraceMs?: number } = {},
): KubernetesLogsSource {
  return new KubernetesLogsSource(
    {
      globs: [`${root}/*/*/*.log*`],
      node: "node-a",
      maxLineBytes: 1024 * 1024,
      multiline,
      policy: DEFAULT_POLICY,
      finishGraceMs: options.finishGraceMs ?? 0,
      once: options.once ?? true,
      metrics: new ShipperMetrics({ defaultMetrics: false }),
      log: () => {},
      lineSink: (tf) => (l: DecodedLine) =>
        out.push({
          file: `${tf.namespace}/${tf.context.meta.container}`,
          stream: l.stream,
          text: l.bytes.toString("utf8", l.start, l.end),
        }),
    },
    options.restore ?? [],
  );
}

/** Reads everything there, then emits open traces, as the shipper's `--once` run and drain do. */
async function drain(src: KubernetesLogsSource): Promise<void> {
  const buf = Buffer.allocUnsafe(64 * 1024);
  await src.scan();
  for (let i = 0; i < 100 && !(src.caughtUp() && (await src.readStep(buf)) === 0); i++) {
    await src.readStep(buf);
    await src.scan();
  }
  src.flushMultiline();
}

describe("kubernetes_logs source with multiline rules", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-multiline-src-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("merges only in the namespaces and containers a rule names", async () => {
    const root = join(dir, "select");
    const node = new Node(root);
    for (const [ns, container] of [
      ["payments", "app"],
      ["payments", "istio-proxy"],
      ["web", "app"],
    ] as const) {
      node.write(ns, container, "stderr", ["start", ...JAVA_CHAINED, "end"]);
    }
    const out: Rec[] = [];
    const src = source(root, rules([{ namespaces: ["pay*"], containers: ["app"], mode: "java" }]), out);
    await drain(src);
    await src.close();
    const count = (file: string) => out.filter((r) => r.file === file).length;
    assert.equal(count("payments/app"), 3, "start, the trace, end");
    assert.equal(count("payments/istio-proxy"), JAVA_CHAINED.length + 2, "another container: untouched");
    assert.equal(count("web/app"), JAVA_CHAINED.length + 2, "another namespace: untouched");
    assert.ok(out.some((r) => r.file === "payments/app" && r.text === JAVA_CHAINED.join("\n")));
  });

  it("emits a trace whose stream went quiet after flush_timeout, while the file stays open", async () => {
    const root = join(dir, "idle");
    const node = new Node(root);
    node.write("web", "app", "stdout", ["before", ...GO_PANIC]);
    const out: Rec[] = [];
    const src = source(root, rules([{ namespaces: ["*"], mode: "go", flush_timeout: "100ms" }]), out, {
      once: false,
    });
    const buf = Buffer.allocUnsafe(64 * 1024);
    await src.scan();
    await src.readStep(buf);
    assert.deepEqual(
      out.map((r) => r.text),
      ["before"],
      "the panic is held while it may go on",
    );
    await sleep(150);
    await src.readStep(buf);
    assert.deepEqual(
      out.map((r) => r.text),
      ["before", GO_PANIC.join("\n")],
    );
    await src.close();
  });

  it("carries a trace across a rotation into the next file", async () => {
    const root = join(dir, "rotate");
    const node = new Node(root);
    node.write("ml", "app", "stderr", PYTHON_CHAINED.slice(0, 5));
    const live = join(node.dir("ml", "app"), "0.log");
    renameSync(live, `${live}.20261121-120000`);
    node.write("ml", "app", "stderr", [...PYTHON_CHAINED.slice(5), "next"]);
    const out: Rec[] = [];
    const src = source(root, rules([{ namespaces: ["ml"], mode: "python" }]), out);
    await drain(src);
    await src.close();
    assert.deepEqual(
      out.map((r) => r.text),
      [PYTHON_CHAINED.join("\n"), "next"],
    );
  });

  it("does not time a trace out while its file waits to be finished after a rotation", async () => {
    const root = join(dir, "rotate-live");
    const node = new Node(root);
    node.write("ml", "app", "stderr", PYTHON_CHAINED.slice(0, 5));
    const out: Rec[] = [];
    // flush_timeout is far shorter than the grace a rotated file gets before it is finished.
    const src = source(root, rules([{ namespaces: ["ml"], mode: "python", flush_timeout: "50ms" }]), out, {
      once: false,
      finishGraceMs: 400,
    });
    const buf = Buffer.allocUnsafe(64 * 1024);
    await src.scan();
    await src.readStep(buf);
    const live = join(node.dir("ml", "app"), "0.log");
    renameSync(live, `${live}.20261121-120000`);
    node.write("ml", "app", "stderr", [...PYTHON_CHAINED.slice(5), "next"]);
    for (const until = Date.now() + 1500; Date.now() < until; ) {
      await src.scan();
      await src.readStep(buf);
      await sleep(20);
    }
    await src.close();
    assert.deepEqual(
      out.map((r) => r.text),
      [PYTHON_CHAINED.join("\n"), "next"],
    );
  });

  it("restarts from a checkpoint taken with a trace open: no line lost, none doubled", async () => {
    const root = join(dir, "restart");
    const node = new Node(root);
    const ml = rules([{ namespaces: ["*"], mode: "auto" }]);
    const buf = Buffer.allocUnsafe(64 * 1024);
    node.write("pay", "app", "stderr", ["a", ...JAVA_CHAINED.slice(0, 4)]);
    node.write("pay", "app", "stdout", ["b", ...GO_PANIC.slice(0, 6)]);

    // First life: reads what is there; the commit takes the checkpoint (both traces open)
    // together with the records emitted so far.
    const committed: Rec[] = [];
    const first = source(root, ml, committed, { once: false });
    await first.scan();
    await first.readStep(buf);
    const checkpoint = JSON.parse(JSON.stringify(first.checkpoints())) as FileCheckpoint[];
    assert.deepEqual(
      committed.map((r) => r.text),
      ["a", "b"],
    );
    assert.ok(checkpoint[0]!.multiline, "the open traces are in the checkpoint");
    assert.equal(checkpoint[0]!.multiline.groups.length, 2);
    // After the commit it reads on and emits more, then is killed before the next commit:
    // those records are lost with the process, and the checkpoint's offset precedes them.
    node.write("pay", "app", "stderr", [...JAVA_CHAINED.slice(4), "c"]);
    const uncommitted: Rec[] = [];
    const lost = source(root, ml, uncommitted, { once: false, restore: checkpoint });
    await drain(lost);
    await first.close();
    await lost.close();

    // Second life, from the committed checkpoint.
    node.write("pay", "app", "stdout", [...GO_PANIC.slice(6), "d"]);
    const after: Rec[] = [];
    const second = source(root, ml, after, { restore: checkpoint });
    await drain(second);
    await second.close();
    const archived = [...committed, ...after];
    const byStream = (stream: string) => archived.filter((r) => r.stream === stream).map((r) => r.text);
    assert.deepEqual(byStream("stderr"), ["a", JAVA_CHAINED.join("\n"), "c"]);
    assert.deepEqual(byStream("stdout"), ["b", GO_PANIC.join("\n"), "d"]);
  });
});
