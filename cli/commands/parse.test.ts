import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { after, before, describe, it } from "node:test";
import { constants, gunzipSync, gzipSync } from "node:zlib";
import { checkRecordLine } from "../../lib/record/codec.ts";
import { corpusLines, readCorpus } from "../../shipper/test_support/corpora.ts";
import { parseMultilineRules } from "../../shipper/transforms/multiline/config.ts";
import {
  checkLogPaths,
  multilineForEveryFile,
  type ParseOptions,
  parseByteSize,
  parseMaxLineBytes,
  writeParsedFiles,
} from "./parse.ts";

const UID = "8d3f0a6e-2b1c-4e2f-9a57-0c1d2e3f4a5b";
const PARSE_TS = new URL("./parse.ts", import.meta.url).pathname;

async function run(files: string[], options: Partial<ParseOptions> = {}): Promise<Record<string, unknown>[]> {
  const { metas, problems } = checkLogPaths(files);
  assert.deepEqual(problems, []);
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on("data", (c: Buffer) => chunks.push(c));
  await writeParsedFiles(
    files,
    metas,
    { merge: true, node: "node-a", maxLineBytes: 1024 * 1024, ...options },
    sink,
  );
  const text = Buffer.concat(chunks).toString();
  assert.ok(text.endsWith("\n"));
  return text
    .slice(0, -1)
    .split("\n")
    .map((l) => JSON.parse(l));
}

/** Runs `logarchive parse` as a process would, without cli/program.ts (wired separately). */
function cli(args: string[]) {
  const script = `import { parseCommand } from ${JSON.stringify(PARSE_TS)};
await parseCommand().parseAsync(${JSON.stringify(args)}, { from: "user" });`;
  return spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
}

describe("logarchive parse", () => {
  let dir: string;
  let current: string;
  let rotatedGz: string;
  let containersLink: string;
  const messages = corpusLines("k8s_access/beats_nginx_ingress_controller_test.log").slice(0, 5);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-parse-"));
    const containerDir = join(dir, "pods", `payments_api-7c9f.canary_${UID}`, "api");
    await mkdir(containerDir, { recursive: true });
    current = join(containerDir, "2.log");
    await writeFile(
      current,
      [
        "not a CRI line",
        `2026-11-21T11:17:37.1Z stdout F ${messages[0]}`,
        "2026-11-21T11:17:37.2Z stderr P half ",
        `2026-11-21T11:17:37.3Z stdout F ${messages[1]}`,
        "2026-11-21T12:17:37.400000000+01:00 stderr F and half",
        "",
      ].join("\n"),
    );
    await utimes(current, 1_700_000_000, 1_700_000_000);
    rotatedGz = join(containerDir, "2.log.20261121-111737.gz");
    await writeFile(
      rotatedGz,
      gzipSync(Buffer.concat(messages.map((m) => Buffer.from(`2026-11-21T11:00:00Z stdout F ${m}\n`)))),
    );
    await mkdir(join(dir, "containers"));
    containersLink = join(dir, "containers", `api-7c9f.canary_payments_api-${"ab".repeat(32)}.log`);
    await writeFile(
      containersLink,
      '{"log":"from docker\\n","stream":"stdout","time":"2026-11-21T11:17:37Z"}\n',
    );
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("prints merged records with metadata from the file name, every line accounted for", async () => {
    const records = await run([current]);
    assert.deepEqual(
      records.map((r) => [r.stream, r.message, r.parse_error]),
      [
        ["stdout", "not a CRI line", "invalid timestamp"],
        ["stdout", messages[0]!.toString(), undefined],
        ["stdout", messages[1]!.toString(), undefined],
        ["stderr", "half and half", undefined],
      ],
    );
    assert.deepEqual(
      { ...records[1], message: undefined },
      {
        timestamp: "2026-11-21 11:17:37.100000",
        timestamp_nanos: 100_000_000,
        namespace: "payments",
        pod: "api-7c9f.canary",
        pod_uid: UID,
        container: "api",
        restart_count: 2,
        node: "node-a",
        stream: "stdout",
        message: undefined,
      },
    );
    // Before any good line, a malformed one is dated by the file's mtime.
    assert.equal(records[0]!.timestamp, "2023-11-14 22:13:20.000000");
  });

  it("prints records that become schema-valid once batch_id and seq are added", async () => {
    const records = await run([current, rotatedGz, containersLink]);
    assert.equal(records.length, 4 + messages.length + 1);
    for (const [seq, r] of records.entries()) {
      assert.equal(r.batch_id, undefined);
      assert.equal(checkRecordLine(JSON.stringify({ ...r, batch_id: "b", seq })), null);
    }
  });

  it("reads gzip-compressed rotated files", async () => {
    const records = await run([rotatedGz]);
    assert.deepEqual(
      records.map((r) => r.message),
      messages.map((m) => m.toString()),
    );
  });

  it("reads Docker json-file logs under /var/log/containers", async () => {
    const [r] = await run([containersLink]);
    assert.deepEqual(
      [r?.message, r?.container, r?.container_id, r?.pod_uid],
      ["from docker", "api", "ab".repeat(32), undefined],
    );
  });

  it("with --no-merge prints one record per physical line with a partial field", async () => {
    const records = await run([current], { merge: false });
    assert.deepEqual(
      records.slice(2, 5).map((r) => [r.message, r.partial]),
      [
        ["half ", true],
        [messages[1]!.toString(), false],
        ["and half", false],
      ],
    );
  });

  it("cuts lines at --max-line-bytes and marks them truncated", async () => {
    const records = await run([current], { maxLineBytes: 6 });
    assert.deepEqual(
      records.map((r) => [r.message, r.truncated]),
      [
        ["not a ", true],
        [messages[0]!.subarray(0, 6).toString(), true],
        [messages[1]!.subarray(0, 6).toString(), true],
        ["half a", true],
      ],
    );
  });

  it("exits 2 naming each bad file and the accepted layouts, before printing anything", () => {
    const r = cli([current, "/var/log/messages", join(dir, "pods", "x", "app", "0.log")]);
    assert.equal(r.status, 2);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /\/var\/log\/messages: not a kubelet container log file name/);
    assert.match(r.stderr, /x\/app\/0\.log: directory "x" is not <namespace>_<pod>_<pod-uid>/);
    assert.match(
      r.stderr,
      /accepted layouts:\n {2}<pods-dir>\/<namespace>_<pod>_<pod-uid>\/<container>\/<restart-count>\.log\n/,
    );
    assert.match(
      r.stderr,
      /\/var\/log\/messages: not a kubelet container log file name; to parse it anyway, name its pod with --namespace, --pod and --container\n/,
    );
  });

  describe("files named any other way", () => {
    let plain: string;
    let gz: string;
    before(async () => {
      plain = join(dir, "app.log");
      await writeFile(plain, `2026-11-21T11:17:37Z stderr F ${messages[0]}\nnot a CRI line\n`);
      gz = join(dir, "app.log.1.gz");
      await writeFile(
        gz,
        gzipSync('{"log":"from docker\\n","stream":"stdout","time":"2026-11-21T11:17:37Z"}\n'),
      );
    });
    const pod = ["--namespace", "payments", "--pod", "api-0", "--container", "api"];

    it("are parsed with the pod named by --namespace, --pod and --container (and gunzipped as .gz)", () => {
      const r = cli([...pod, "--container-id", "ab12", "--restart-count", "3", plain, gz]);
      assert.equal(r.status, 0, r.stderr);
      const records = r.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.deepEqual(
        records.map((x) => [
          x.namespace,
          x.pod,
          x.container,
          x.container_id,
          x.restart_count,
          x.stream,
          x.message,
        ]),
        [
          ["payments", "api-0", "api", "ab12", 3, "stderr", messages[0]!.toString()],
          ["payments", "api-0", "api", "ab12", 3, "stdout", "not a CRI line"],
          ["payments", "api-0", "api", "ab12", 3, "stdout", "from docker"],
        ],
      );
      for (const [seq, x] of records.entries()) {
        assert.equal(checkRecordLine(JSON.stringify({ ...x, batch_id: "b", seq })), null);
      }
    });

    it("the flags replace what a kubelet file name says", () => {
      const { metas, problems } = checkLogPaths([current], { namespace: "web", podUid: "u-2" });
      assert.deepEqual(problems, []);
      assert.deepEqual(
        [metas[0]!.namespace, metas[0]!.pod, metas[0]!.podUid, metas[0]!.restartCount],
        ["web", "api-7c9f.canary", "u-2", 2],
      );
    });

    it("refuse a file when some of --namespace, --pod and --container are missing, naming them", () => {
      const r = cli(["--namespace", "payments", plain]);
      assert.equal(r.status, 2);
      assert.equal(r.stdout, "");
      assert.match(
        r.stderr,
        /app\.log: not a kubelet container log file name; to parse it anyway, also give --pod and --container\n/,
      );
    });

    it("refuse names Kubernetes would not accept", () => {
      for (const [flag, value] of [
        ["--namespace", "Payments"],
        ["--pod", "api_0"],
        ["--container", "-api"],
        ["--container-id", "xyz"],
        ["--restart-count", "-1"],
      ] as const) {
        const r = cli([...pod, flag, value, plain]);
        assert.notEqual(r.status, 0, `${flag} ${value}`);
        assert.equal(r.stdout, "");
        assert.match(r.stderr, new RegExp(`${flag} .*'${value}' is invalid\\. expected`), r.stderr);
      }
    });

    it("refuse a path that is a directory, naming it", () => {
      const r = cli([...pod, dir]);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /cannot read .*: not a regular file/);
    });
  });

  describe("damaged .gz files", () => {
    const lines = Array.from(
      { length: 2500 },
      (_, i) => `2026-11-21T11:17:37.${String(i).padStart(9, "0")}Z stdout F line ${i} ${"x".repeat(i % 97)}`,
    );
    const sound = gzipSync(`${lines.join("\n")}\n`);
    const damaged = {
      "trailing garbage": Buffer.concat([sound, Buffer.from("garbage after the member\n")]),
      truncation: sound.subarray(0, Math.floor(sound.length * 0.7)),
    };
    const containerDir = () => join(dir, "pods", `payments_api-7c9f.canary_${UID}`, "api");

    for (const [what, bytes] of Object.entries(damaged)) {
      it(`print every record readable before ${what}, then one line naming the file and the damage, and exit 1`, async () => {
        const file = join(containerDir(), `2.log.20261121-0${Object.keys(damaged).indexOf(what)}0000.gz`);
        await writeFile(file, bytes);
        const r = cli([file]);
        assert.equal(r.status, 1, r.stderr);
        const stderr = r.stderr.split("\n");
        assert.equal(stderr.pop(), "");
        assert.equal(stderr.length, 1, r.stderr);
        assert.match(
          stderr[0]!,
          new RegExp(
            `^logarchive parse: ${file.replace(/[.]/g, "\\.")}: damaged gzip data at compressed byte \\d+: [a-z ]+; the \\d+ record\\(s\\) before it were printed$`,
          ),
        );
        const printed = r.stdout
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l) as { message: string });
        // Every line whose bytes inflate before the damage: the longest prefix zlib takes.
        let readable = Buffer.alloc(0);
        for (let n = bytes.length; n > 0; n--) {
          try {
            readable = gunzipSync(bytes.subarray(0, n), { finishFlush: constants.Z_SYNC_FLUSH });
            break;
          } catch {
            // damaged: one byte less
          }
        }
        const complete = readable.toString().split("\n").slice(0, -1);
        let intact = 0;
        while (intact < complete.length && complete[intact] === lines[intact]) intact++;
        assert.ok(intact > lines.length / 3, `${intact} intact readable lines`);
        assert.equal(intact, complete.length);
        assert.deepEqual(
          printed.slice(0, intact).map((p) => p.message),
          lines.slice(0, intact).map((l) => l.slice(l.indexOf(" F ") + 3)),
        );
        assert.ok(printed.length <= complete.length + 1, "at most the cut last line more");
        assert.match(stderr[0]!, new RegExp(`the ${printed.length} record`));
      });
    }

    it("print nothing of a file with a flipped bit inside its member (zlib would inflate invented lines), name the damage, and exit 1", async () => {
      const flipped = Buffer.from(sound);
      flipped[Math.floor(sound.length / 2)]! ^= 0x08;
      const file = join(containerDir(), "2.log.20261121-080000.gz");
      await writeFile(file, flipped);
      const r = cli([file]);
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.stdout, "");
      assert.equal(
        r.stderr,
        `logarchive parse: ${file}: damaged gzip data at compressed byte 0: incorrect data check inside a gzip member: its inflated bytes cannot be trusted, so none of the file is read; no record was printed\n`,
      );
    });

    it("report the damage in the summary, with the records of the files around it", async () => {
      const file = join(containerDir(), "2.log.20261121-090000.gz");
      await writeFile(file, damaged.truncation);
      const sink = new PassThrough();
      sink.resume();
      const { metas } = checkLogPaths([rotatedGz, file, current]);
      const summary = await writeParsedFiles(
        [rotatedGz, file, current],
        metas,
        { merge: true, node: "n", maxLineBytes: 1024 * 1024 },
        sink,
      );
      assert.equal(summary.damaged.length, 1);
      assert.equal(summary.damaged[0]!.file, file);
      assert.deepEqual(summary.damaged[0]!.damage, {
        offset: damaged.truncation.length,
        message: "unexpected end of file",
        code: "Z_BUF_ERROR",
      });
      assert.equal(summary.records, messages.length + summary.damaged[0]!.records + 4);
    });
  });

  it("exits 2 for a well-named file that does not exist", () => {
    const r = cli([join(dir, "pods", `ns_pod_${UID}`, "app", "0.log")]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /cannot read .*0\.log/);
  });

  it("runs as a command and says in --help that batch_id and seq are left out", () => {
    const r = cli(["--node", "n1", rotatedGz]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim().split("\n").length, messages.length);
    assert.equal(JSON.parse(r.stdout.split("\n")[0]!).node, "n1");
    assert.match(cli(["--help"]).stdout, /every field but batch_id and seq/);
  });

  describe("multi-line stack traces", () => {
    // Fluent Bit's multiline example (a Java trace and a Go panic between plain lines) as the
    // stderr of a container in two namespaces.
    const corpus = readCorpus("multiline/fluentbit_filter_multiline_example.log")
      .toString()
      .split("\n")
      .slice(0, -1);
    let payments: string;
    let web: string;
    let configFile: string;
    let long: string;
    before(async () => {
      const body = corpus
        .map((l, i) => `2026-11-21T11:17:37.${String(i + 1).padStart(9, "0")}Z stderr F ${l}\n`)
        .join("");
      for (const ns of ["payments", "web"]) {
        const d = join(dir, "pods", `${ns}_api-1_${UID}`, "app");
        await mkdir(d, { recursive: true });
        await writeFile(join(d, "0.log"), body);
      }
      payments = join(dir, "pods", `payments_api-1_${UID}`, "app", "0.log");
      web = join(dir, "pods", `web_api-1_${UID}`, "app", "0.log");
      const longDir = join(dir, "pods", `web_api-2_${UID}`, "app");
      await mkdir(longDir, { recursive: true });
      long = join(longDir, "0.log");
      await writeFile(long, `2026-11-21T11:17:37Z stdout F ${"x".repeat(3000)}\n`);
      configFile = join(dir, "shipper.yaml");
      await writeFile(
        configFile,
        "bucket: b\nmax_line_bytes: 1KiB\nmultiline:\n  - namespaces: [payments]\n    mode: auto\n",
      );
    });

    it("are merged by the rules given, with the first line's time, the rest untouched", async () => {
      const rules = parseMultilineRules([{ namespaces: ["payments"], mode: "auto" }], "test").rules!;
      const records = await run([payments, web], { multiline: rules });
      const fromPayments = records.filter((r) => r.namespace === "payments");
      assert.deepEqual(
        fromPayments.map((r) => (r.message as string).split("\n").length),
        [1, 6, 1, 51, 1],
      );
      assert.equal(fromPayments[1]!.timestamp_nanos, 2, "the trace's first line");
      assert.equal(
        records.filter((r) => r.namespace === "web").length,
        corpus.length,
        "web: no rule, no merging",
      );
      assert.deepEqual(
        fromPayments.flatMap((r) => (r.message as string).split("\n")),
        corpus,
        "every line, once, in order",
      );
      for (const [seq, r] of records.entries()) {
        assert.equal(checkRecordLine(JSON.stringify({ ...r, batch_id: "b", seq })), null);
      }
    });

    it("--multiline <mode> merges in every file", () => {
      const r = cli(["--multiline", "java", payments, web]);
      assert.equal(r.status, 0, r.stderr);
      const records = r.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { message: string });
      assert.equal(records.length, 2 * (corpus.length - 5));
      assert.equal(records.filter((x) => x.message.startsWith("Dec 14 06:41:08 Exception")).length, 2);
      assert.deepEqual(multilineForEveryFile("go")[0]!.namespaces, ["*"]);
    });

    it("--config applies the config file's rules by namespace, and its max_line_bytes", () => {
      const r = cli(["--config", configFile, payments, web, long]);
      assert.equal(r.status, 0, r.stderr);
      const records = r.stdout
        .trim()
        .split("\n")
        .map(
          (l) => JSON.parse(l) as { namespace: string; pod: string; message: string; truncated?: boolean },
        );
      assert.equal(records.filter((x) => x.namespace === "payments").length, 5);
      assert.equal(records.filter((x) => x.pod === "api-1" && x.namespace === "web").length, corpus.length);
      const cut = records.find((x) => x.pod === "api-2")!;
      assert.deepEqual([cut.message.length, cut.truncated], [1024, true], "max_line_bytes: 1KiB");
      const flag = cli(["--config", configFile, "--max-line-bytes", "2KiB", long]);
      assert.equal((JSON.parse(flag.stdout) as { message: string }).message.length, 2048, "the flag wins");
    });

    it("refuses an unknown mode, a bad config naming the field, --no-merge and both sources at once", async () => {
      const unknown = cli(["--multiline", "ruby", payments]);
      assert.notEqual(unknown.status, 0);
      assert.match(unknown.stderr, /argument 'ruby' is invalid\. Allowed choices are java, go, python, auto/);
      const bad = join(dir, "bad.yaml");
      await writeFile(bad, "multiline:\n  - namespaces: [payments]\n    mode: jav\n");
      const badRun = cli(["--config", bad, payments]);
      assert.equal(badRun.status, 2);
      assert.match(
        badRun.stderr,
        /multiline\[0\]\.mode \(in .*bad\.yaml\): expected java, go, python, auto or off/,
      );
      const noMerge = cli(["--no-merge", "--multiline", "java", payments]);
      assert.equal(noMerge.status, 2);
      assert.match(noMerge.stderr, /cannot go with --no-merge/);
      assert.notEqual(cli(["--multiline", "java", "--config", configFile, payments]).status, 0);
    });
  });

  it("refuses a line cap that would let a record grow past what the loader accepts", async () => {
    assert.equal(parseMaxLineBytes("1MiB"), 1024 * 1024);
    assert.throws(() => parseMaxLineBytes("2MiB"), /at most 1MiB/);
    const flag = cli(["--max-line-bytes", "2MiB", current]);
    assert.notEqual(flag.status, 0);
    assert.equal(flag.stdout, "");
    assert.match(flag.stderr, /--max-line-bytes .*'2MiB' is invalid\. at most 1MiB/);
    const lineCap = join(dir, "big-lines.yaml");
    await writeFile(lineCap, "bucket: b\nmax_line_bytes: 2MiB\n");
    const fromConfig = cli(["--config", lineCap, current]);
    assert.equal(fromConfig.status, 2);
    assert.match(fromConfig.stderr, /max_line_bytes \(in .*big-lines\.yaml\): at most 1MiB/);
    const groupCap = join(dir, "big-traces.yaml");
    await writeFile(
      groupCap,
      "multiline:\n  - namespaces: [payments]\n    mode: java\n    max_bytes: 4MiB\n",
    );
    const fromRule = cli(["--config", groupCap, current]);
    assert.equal(fromRule.status, 2);
    assert.match(
      fromRule.stderr,
      /multiline\[0\]\.max_bytes \(in .*big-traces\.yaml\): (must be )?at most 1MiB/,
    );
  });

  it("reads --max-line-bytes as bytes or with a unit, like every size option", () => {
    assert.deepEqual(["100", "64KiB", "1MiB", "1GB"].map(parseByteSize), [100, 65_536, 1_048_576, 1e9]);
    for (const bad of ["0", "-1", "1.5", "1XB", ""]) assert.throws(() => parseByteSize(bad), /positive size/);
  });
});
