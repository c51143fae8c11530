// Writes one compacted part to S3 as its bytes arrive, hashing them on the way, as a multipart
// upload whose upload parts are one fixed-size buffer each, so memory stays at one buffer
// however large the part is.
//
// Always a multipart upload, also for a part smaller than one upload part: a multipart
// upload's object does not exist until CompleteMultipartUpload, so the compactor can upload
// (and verify) every part of a generation, write the generation's plan, and only then make
// the parts visible (compact.ts), where a PutObject would make each part visible at once.
// That is allowed at any size: S3's limits
// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html) are "Part size 5 MiB
// to 5 GiB. There is no minimum size limit on the last part of your multipart upload", and the
// only upload part of a one-part upload is its last; at most 10,000 upload parts.
//
// A multipart upload's object has no whole-object SHA-256 (S3's SHA-256 checksum of a
// multipart object is a checksum of the parts' checksums,
// https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html), so
// the part's SHA-256 is computed here and kept in the compaction manifest. An upload never
// completed (a crash, an abort that failed) is removed by the bucket's
// AbortIncompleteMultipartUpload lifecycle rule; until then it is invisible to LIST and GET.

import { createHash, type Hash } from "node:crypto";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  type S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { DEFAULT_UPLOAD_CHUNK_BYTES } from "./defaults.ts";

/** The default upload part size (defaults.ts, where the cost model reads it too). */
export { DEFAULT_UPLOAD_CHUNK_BYTES };

/** S3's smallest upload part (all but the last). */
export const MIN_UPLOAD_PART_BYTES = 5 * 1024 * 1024;
/** S3's most upload parts in one multipart upload. */
export const MAX_UPLOAD_PARTS = 10_000;

export interface PartWriterOptions {
  s3: S3Client;
  bucket: string;
  key: string;
  /** The part's size, known from the plan: picks the upload part size and is checked at the end. */
  plannedBytes: number;
  /** Upload part size (at least MIN_UPLOAD_PART_BYTES). */
  chunkBytes: number;
  metadata: Record<string, string>;
}

export interface WrittenPart {
  bytes: number;
  sha256: string;
}

export class PartWriter {
  readonly #o: PartWriterOptions;
  readonly #hash: Hash = createHash("sha256");
  readonly #chunkBytes: number;
  #buffers: Buffer[] = [];
  #buffered = 0;
  #written = 0;
  #uploadId: string | undefined;
  #sealed: WrittenPart | undefined;
  #completed = false;
  readonly #uploaded: { ETag: string; PartNumber: number }[] = [];

  constructor(options: PartWriterOptions) {
    if (options.chunkBytes < MIN_UPLOAD_PART_BYTES) {
      throw new RangeError(
        `upload part size ${options.chunkBytes} is under S3's minimum ${MIN_UPLOAD_PART_BYTES}`,
      );
    }
    this.#o = options;
    // Large parts use bigger upload parts so they fit in S3's 10,000.
    this.#chunkBytes = Math.max(options.chunkBytes, Math.ceil(options.plannedBytes / MAX_UPLOAD_PARTS));
  }

  get key(): string {
    return this.#o.key;
  }

  /** Appends bytes to the part; uploads a full upload part when one is buffered. */
  async write(bytes: Buffer): Promise<void> {
    if (this.#sealed !== undefined) throw new Error(`part ${this.#o.key}: written after it was sealed`);
    this.#hash.update(bytes);
    this.#written += bytes.length;
    if (this.#written > this.#o.plannedBytes) {
      throw new Error(
        `part ${this.#o.key}: ${this.#written} bytes written, more than the ${this.#o.plannedBytes} planned`,
      );
    }
    this.#buffers.push(bytes);
    this.#buffered += bytes.length;
    while (this.#buffered >= this.#chunkBytes) {
      const all = Buffer.concat(this.#buffers, this.#buffered);
      await this.#uploadPart(all.subarray(0, this.#chunkBytes));
      const rest = all.subarray(this.#chunkBytes);
      this.#buffers = rest.length === 0 ? [] : [Buffer.from(rest)];
      this.#buffered = rest.length;
    }
  }

  /**
   * Uploads the last upload part and returns the part's size and SHA-256, without making the
   * object visible: it exists only after complete().
   */
  async seal(): Promise<WrittenPart> {
    if (this.#sealed !== undefined) return this.#sealed;
    if (this.#written !== this.#o.plannedBytes) {
      throw new Error(
        `part ${this.#o.key}: ${this.#written} bytes written, not the ${this.#o.plannedBytes} planned`,
      );
    }
    const body = Buffer.concat(this.#buffers, this.#buffered);
    this.#buffers = [];
    this.#buffered = 0;
    if (body.length > 0 || this.#uploaded.length === 0) await this.#uploadPart(body);
    this.#sealed = { bytes: this.#written, sha256: this.#hash.digest("hex") };
    return this.#sealed;
  }

  /** CompleteMultipartUpload: the part becomes an object, visible to LIST and GET. */
  async complete(): Promise<void> {
    if (this.#sealed === undefined) throw new Error(`part ${this.#o.key}: completed before it was sealed`);
    const { s3, bucket, key } = this.#o;
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: this.#uploadId,
        MultipartUpload: { Parts: this.#uploaded },
      }),
    );
    this.#completed = true;
  }

  /** seal() then complete(). */
  async finish(): Promise<WrittenPart> {
    const sealed = await this.seal();
    await this.complete();
    return sealed;
  }

  /**
   * Gives up the part: a started, not completed multipart upload is aborted (best effort), so
   * its upload parts are not billed and it can never be completed.
   */
  async abort(): Promise<void> {
    this.#buffers = [];
    if (this.#uploadId === undefined || this.#completed) return;
    try {
      await this.#o.s3.send(
        new AbortMultipartUploadCommand({
          Bucket: this.#o.bucket,
          Key: this.#o.key,
          UploadId: this.#uploadId,
        }),
      );
    } catch {
      // A bucket lifecycle rule (AbortIncompleteMultipartUpload) removes what this could not.
    }
  }

  async #uploadPart(body: Buffer): Promise<void> {
    const { s3, bucket, key, metadata } = this.#o;
    if (this.#uploadId === undefined) {
      const created = await s3.send(
        new CreateMultipartUploadCommand({
          Bucket: bucket,
          Key: key,
          // A gzip file, not gzip-encoded NDJSON (as the shipper writes archive objects).
          ContentType: "application/gzip",
          Metadata: metadata,
        }),
      );
      if (created.UploadId === undefined)
        throw new Error(`CreateMultipartUpload for ${key} returned no UploadId`);
      this.#uploadId = created.UploadId;
    }
    const partNumber = this.#uploaded.length + 1;
    const uploaded = await s3.send(
      new UploadPartCommand({
        Bucket: bucket,
        Key: key,
        UploadId: this.#uploadId,
        PartNumber: partNumber,
        Body: body,
        ContentLength: body.length,
      }),
    );
    if (uploaded.ETag === undefined) throw new Error(`UploadPart ${partNumber} of ${key} returned no ETag`);
    this.#uploaded.push({ ETag: uploaded.ETag, PartNumber: partNumber });
  }
}
