// The checkpoint store: what `save` writes is the checkpoint as it was when save was called,
// whatever the caller changes while the write is under way (an upload acknowledged then).

import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CheckpointStore } from "./checkpoint.ts";

describe("checkpoint store", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "logarchive-checkpoint-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("saves the checkpoint as it was when save was called, not as the caller changed it during the write", async () => {
    const store = new CheckpointStore(join(dir, "a"));
    const checkpoint = await store.load();
    checkpoint.nextSeq = 3;
    const saving = store.save(checkpoint);
    // Changed while the save awaits the file system, as the sink's live state is.
    checkpoint.nextSeq = 4;
    checkpoint.sealed.push({
      seq: 2,
      key: "k",
      file: "f",
      bytes: 1,
      metadata: {
        schemaVersion: 1,
        records: 1,
        firstTimestamp: "2026-11-21T10:00:00Z",
        lastTimestamp: "2026-11-21T10:00:00Z",
        sha256: "0".repeat(64),
        rawBytes: 1,
        batchId: "b",
        shipperVersion: "test",
      },
    });
    await saving;
    const saved = JSON.parse(await readFile(store.path, "utf8"));
    assert.equal(saved.nextSeq, 3);
    assert.deepEqual(saved.sealed, []);
    assert.equal((await store.load()).epoch, checkpoint.epoch);
  });
});
