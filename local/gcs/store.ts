// Durable object store under dataDir. Each live object is a JSON sidecar plus a body file named after its
// generation; a write becomes visible only when its fsynced sidecar is renamed into place, so a crash can never
// expose a partial object, and every acknowledged write survives a restart.
//
//   <dataDir>/buckets/<bucket>/bucket.json
//   <dataDir>/buckets/<bucket>/objects/<sha256(name)>.json
//   <dataDir>/buckets/<bucket>/objects/<sha256(name)>.<generation>.bin
//   <dataDir>/tmp/   uploads in progress; wiped on start, so unfinished uploads never surface

import { createHash, randomBytes } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import { copyFile, mkdir, open, readdir, readFile, rename, rm, unlink } from "node:fs/promises";
import { join } from "node:path";
import { fsyncDir, isErrno, writeFileAtomic } from "./durable.ts";
import { bucketNotFound, conflict, invalid, objectNotFound } from "./errors.ts";
import { compareNames } from "./listing.ts";
import { checkPreconditions, type Preconditions } from "./preconditions.ts";
import type { FieldUpdate, StoredBucket, StoredObject, WritableFields } from "./resources.ts";
import { applyFieldUpdate, assemble, core, pickWritable } from "./resources.ts";

/** A fully received, fsynced body waiting in the tmp directory to be committed. */
export interface ReceivedBody {
  path: string;
  size: number;
  md5Hash: string;
  crc32c: string;
}

export type Log = (message: string, error?: unknown) => void;

interface BucketState {
  meta: StoredBucket;
  dir: string;
  objects: Map<string, StoredObject>;
  sorted: StoredObject[] | undefined;
  // Commits in flight; a bucket with any cannot be deleted, or the commit would land in a removed directory.
  writes: number;
}

function validateObjectName(name: string): void {
  const bytes = Buffer.byteLength(name);
  if (bytes === 0 || bytes > 1024 || name === "." || name === ".." || /[\r\n]/.test(name)) {
    throw invalid(`Invalid object name: ${JSON.stringify(name)}`);
  }
}

const objectKey = (name: string): string => createHash("sha256").update(name).digest("hex");

export class Store {
  readonly #bucketsDir: string;
  readonly #tmpDir: string;
  readonly #log: Log;
  readonly #buckets = new Map<string, BucketState>();
  readonly #locks = new Map<string, Promise<void>>();
  #lastGeneration = 0;

  private constructor(dataDir: string, log: Log) {
    this.#bucketsDir = join(dataDir, "buckets");
    this.#tmpDir = join(dataDir, "tmp");
    this.#log = log;
  }

  static async open(dataDir: string, log: Log): Promise<Store> {
    const store = new Store(dataDir, log);
    await mkdir(store.#bucketsDir, { recursive: true });
    await rm(store.#tmpDir, { recursive: true, force: true });
    await mkdir(store.#tmpDir, { recursive: true });
    for (const entry of await readdir(store.#bucketsDir, { withFileTypes: true })) {
      if (entry.isDirectory()) await store.#loadBucket(entry.name);
    }
    return store;
  }

  async #loadBucket(name: string): Promise<void> {
    const dir = join(this.#bucketsDir, name);
    let meta: StoredBucket;
    try {
      meta = JSON.parse(await readFile(join(dir, "bucket.json"), "utf8")) as StoredBucket;
    } catch (error) {
      if (!isErrno(error, "ENOENT")) throw error;
      // A bucket whose creation or deletion was interrupted.
      await rm(dir, { recursive: true, force: true });
      return;
    }
    const objectsDir = join(dir, "objects");
    await mkdir(objectsDir, { recursive: true });
    const files = new Set(await readdir(objectsDir));
    const objects = new Map<string, StoredObject>();
    const referenced = new Set<string>();
    for (const file of files) {
      if (!file.endsWith(".json")) continue;
      referenced.add(file);
      let object: StoredObject;
      try {
        object = JSON.parse(await readFile(join(objectsDir, file), "utf8")) as StoredObject;
      } catch (error) {
        this.#log(`local GCS: skipping unreadable object sidecar ${join(objectsDir, file)}`, error);
        continue;
      }
      const body = `${objectKey(object.name)}.${object.generation}.bin`;
      if (!files.has(body)) {
        this.#log(`local GCS: skipping ${name}/${object.name}: body file ${body} is missing`);
        continue;
      }
      referenced.add(body);
      objects.set(object.name, object);
      this.#lastGeneration = Math.max(this.#lastGeneration, Number(object.generation));
    }
    // Bodies of replaced or deleted generations and sidecar temp files left by a crash.
    for (const file of files) {
      if (!referenced.has(file)) await rm(join(objectsDir, file), { force: true });
    }
    this.#buckets.set(name, { meta, dir, objects, sorted: undefined, writes: 0 });
  }

  /** Strictly increasing microseconds since the epoch, also across restarts with a clock that went back. */
  #nextGeneration(): string {
    const now = Math.floor((performance.timeOrigin + performance.now()) * 1000);
    this.#lastGeneration = Math.max(now, this.#lastGeneration + 1);
    return String(this.#lastGeneration);
  }

  async #withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(key);
    let release = (): void => {};
    const current = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous === undefined ? current : previous.then(() => current);
    this.#locks.set(key, tail);
    try {
      if (previous !== undefined) await previous;
      return await fn();
    } finally {
      release();
      if (this.#locks.get(key) === tail) this.#locks.delete(key);
    }
  }

  #bucket(name: string): BucketState {
    const bucket = this.#buckets.get(name);
    if (bucket === undefined) throw bucketNotFound();
    return bucket;
  }

  #bodyPath(bucket: BucketState, o: StoredObject): string {
    return join(bucket.dir, "objects", `${objectKey(o.name)}.${o.generation}.bin`);
  }

  async #writeSidecar(bucket: BucketState, o: StoredObject): Promise<void> {
    await writeFileAtomic(join(bucket.dir, "objects", `${objectKey(o.name)}.json`), JSON.stringify(o));
  }

  tmpPath(): string {
    return join(this.#tmpDir, randomBytes(12).toString("hex"));
  }

  listBuckets(): StoredBucket[] {
    return [...this.#buckets.values()].map((b) => b.meta).sort((a, b) => compareNames(a.name, b.name));
  }

  getBucket(name: string): StoredBucket {
    return this.#bucket(name).meta;
  }

  async createBucket(
    input: Pick<StoredBucket, "name" | "location" | "storageClass" | "labels">,
  ): Promise<StoredBucket> {
    const { name } = input;
    if (!/^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$/.test(name) || name.includes("..")) {
      throw invalid(`Invalid bucket name: '${name}'`);
    }
    return this.#withLock(`b\0${name}`, async () => {
      if (this.#buckets.has(name)) {
        throw conflict("Your previous request to create the named bucket succeeded and you already own it.");
      }
      const now = new Date().toISOString();
      const meta: StoredBucket = { ...input, timeCreated: now, updated: now, metageneration: "1" };
      const dir = join(this.#bucketsDir, name);
      await mkdir(join(dir, "objects"), { recursive: true });
      await writeFileAtomic(join(dir, "bucket.json"), JSON.stringify(meta));
      await fsyncDir(this.#bucketsDir);
      this.#buckets.set(name, { meta, dir, objects: new Map(), sorted: undefined, writes: 0 });
      return meta;
    });
  }

  async deleteBucket(name: string): Promise<void> {
    await this.#withLock(`b\0${name}`, async () => {
      const bucket = this.#bucket(name);
      if (bucket.objects.size > 0 || bucket.writes > 0) {
        throw conflict("The bucket you tried to delete is not empty.");
      }
      this.#buckets.delete(name);
      await unlink(join(bucket.dir, "bucket.json"));
      await fsyncDir(bucket.dir);
      await rm(bucket.dir, { recursive: true, force: true });
    });
  }

  /** Live objects of a bucket in listing order. */
  listObjects(bucketName: string): readonly StoredObject[] {
    const bucket = this.#bucket(bucketName);
    bucket.sorted ??= [...bucket.objects.values()].sort((a, b) => compareNames(a.name, b.name));
    return bucket.sorted;
  }

  getObject(bucketName: string, name: string, generation?: string): StoredObject {
    const object = this.#bucket(bucketName).objects.get(name);
    if (object === undefined || (generation !== undefined && generation !== object.generation)) {
      throw objectNotFound(bucketName, name);
    }
    return object;
  }

  /** Opens the body of the object; retries if a concurrent overwrite removed the body between lookup and open. */
  async openObject(
    bucketName: string,
    name: string,
    generation?: string,
  ): Promise<{ object: StoredObject; handle: FileHandle }> {
    for (let attempt = 0; ; attempt++) {
      const object = this.getObject(bucketName, name, generation);
      try {
        return { object, handle: await open(this.#bodyPath(this.#bucket(bucketName), object), "r") };
      } catch (error) {
        if (!isErrno(error, "ENOENT") || attempt >= 3) throw error;
      }
    }
  }

  /** Copies a source body into the tmp directory, ready to be committed under another name. */
  async copyBody(source: StoredObject): Promise<ReceivedBody> {
    const path = this.tmpPath();
    try {
      await copyFile(this.#bodyPath(this.#bucket(source.bucket), source), path);
      const handle = await open(path, "r+");
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    } catch (error) {
      await rm(path, { force: true });
      // The source generation was replaced or deleted while we looked at it.
      if (isErrno(error, "ENOENT")) throw objectNotFound(source.bucket, source.name);
      throw error;
    }
    return { path, size: Number(source.size), md5Hash: source.md5Hash, crc32c: source.crc32c };
  }

  /**
   * Commits a received body as the new live generation of `name`. Commits to one name are serialized, so of
   * several concurrent `ifGenerationMatch=0` writers exactly one succeeds. The temp file is consumed either way.
   */
  async insertObject(
    bucketName: string,
    name: string,
    body: ReceivedBody,
    fields: WritableFields,
    pre: Preconditions,
  ): Promise<StoredObject> {
    let bucket: BucketState | undefined;
    try {
      validateObjectName(name);
      bucket = this.#bucket(bucketName);
      bucket.writes++;
      const b = bucket;
      return await this.#withLock(`o\0${bucketName}\0${name}`, async () => {
        const current = b.objects.get(name);
        checkPreconditions(current, pre);
        const now = new Date().toISOString();
        const object = assemble(
          {
            bucket: bucketName,
            name,
            generation: this.#nextGeneration(),
            metageneration: "1",
            size: String(body.size),
            md5Hash: body.md5Hash,
            crc32c: body.crc32c,
            timeCreated: now,
            updated: now,
            storageClass: b.meta.storageClass,
          },
          fields,
        );
        await rename(body.path, this.#bodyPath(b, object));
        await this.#writeSidecar(b, object);
        b.objects.set(name, object);
        b.sorted = undefined;
        if (current !== undefined) await this.#removeBody(b, current);
        return object;
      });
    } finally {
      if (bucket !== undefined) bucket.writes--;
      await rm(body.path, { force: true });
    }
  }

  async patchObject(
    bucketName: string,
    name: string,
    generation: string | undefined,
    update: FieldUpdate,
    pre: Preconditions,
  ): Promise<StoredObject> {
    const bucket = this.#bucket(bucketName);
    return this.#withLock(`o\0${bucketName}\0${name}`, async () => {
      const current = this.getObject(bucketName, name, generation);
      checkPreconditions(current, pre);
      const fields = applyFieldUpdate(pickWritable(current), update, true);
      const object = assemble(
        {
          ...core(current),
          metageneration: String(Number(current.metageneration) + 1),
          updated: new Date().toISOString(),
        },
        fields,
      );
      await this.#writeSidecar(bucket, object);
      bucket.objects.set(name, object);
      bucket.sorted = undefined;
      return object;
    });
  }

  async deleteObject(bucketName: string, name: string, generation: string | undefined, pre: Preconditions) {
    const bucket = this.#bucket(bucketName);
    await this.#withLock(`o\0${bucketName}\0${name}`, async () => {
      const current = this.getObject(bucketName, name, generation);
      checkPreconditions(current, pre);
      await unlink(join(bucket.dir, "objects", `${objectKey(name)}.json`));
      await fsyncDir(join(bucket.dir, "objects"));
      bucket.objects.delete(name);
      bucket.sorted = undefined;
      await this.#removeBody(bucket, current);
    });
  }

  async #removeBody(bucket: BucketState, o: StoredObject): Promise<void> {
    // Readers that already opened the body keep reading it; a leftover file is swept on the next start.
    await rm(this.#bodyPath(bucket, o), { force: true }).catch((error: unknown) => {
      this.#log(`local GCS: could not remove old body of ${o.bucket}/${o.name}`, error);
    });
  }
}
