// Writes one compacted part to S3 as its bytes arrive, hashing them on the way: a single
// PutObject when the part is small, else a multipart upload whose upload parts are one
// fixed-size buffer each, so memory stays at one buffer however large the part is.
//
// S3's multipart limits (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html):
// every upload part but the last is 5 MiB to 5 GiB, at most 10,000 parts. A multipart
// upload's object has no whole-object SHA-256 (S3's SHA-256 checksum of a multipart object is
// a checksum of the parts' checksums,
// https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html), so
// the part's SHA-256 is computed here and kept in the compaction manifest.

import { createHash, type Hash } from "node:crypto";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";

/** S3's smallest upload part (all but the last). */
export const MIN_UPLOAD_PART_BYTES = 5 * 1024 * 1024;
/** S3's most upload parts in one multipart upload. */
export const MAX_UPLOAD_PARTS = 10_000;
/** The default upload part size, and the largest part sent as one PutObject. */
export const DEFAULT_UPLOAD_CHUNK_BYTES = 8 * 1024 * 1024;

export interface PartWriterOptions {
  s3: S3Client;
  bucket: string;
  key: string;
  /** The part's size, known from the plan: picks PutObject or multipart and the upload part size. */
  plannedBytes: number;
  /** Upload part size (at least MIN_UPLOAD_PART_BYTES); parts up to this size are one PutObject. */
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
  readonly #multipart: boolean;
  #buffers: Buffer[] = [];
  #buffered = 0;
  #written = 0;
  #uploadId: string | undefined;
  readonly #completed: { ETag: string; PartNumber: number }[] = [];

  constructor(options: PartWriterOptions) {
    if (options.chunkBytes < MIN_UPLOAD_PART_BYTES) {
      throw new RangeError(
        `upload part size ${options.chunkBytes} is under S3's minimum ${MIN_UPLOAD_PART_BYTES}`,
      );
    }
    this.#o = options;
    this.#multipart = options.plannedBytes > options.chunkBytes;
    // Large parts use bigger upload parts so they fit in S3's 10,000.
    this.#chunkBytes = Math.max(options.chunkBytes, Math.ceil(options.plannedBytes / MAX_UPLOAD_PARTS));
  }

  /** Appends bytes to the part; uploads a full upload part when one is buffered. */
  async write(bytes: Buffer): Promise<void> {
    this.#hash.update(bytes);
    this.#written += bytes.length;
    if (this.#written > this.#o.plannedBytes) {
      throw new Error(
        `part ${this.#o.key}: ${this.#written} bytes written, more than the ${this.#o.plannedBytes} planned`,
      );
    }
    this.#buffers.push(bytes);
    this.#buffered += bytes.length;
    if (this.#multipart) {
      while (this.#buffered >= this.#chunkBytes) {
        const all = Buffer.concat(this.#buffers, this.#buffered);
        await this.#uploadPart(all.subarray(0, this.#chunkBytes));
        const rest = all.subarray(this.#chunkBytes);
        this.#buffers = rest.length === 0 ? [] : [Buffer.from(rest)];
        this.#buffered = rest.length;
      }
    }
  }

  /** Stores what was written (the last upload part, or the one PutObject) and returns its size and SHA-256. */
  async finish(): Promise<WrittenPart> {
    if (this.#written !== this.#o.plannedBytes) {
      throw new Error(
        `part ${this.#o.key}: ${this.#written} bytes written, not the ${this.#o.plannedBytes} planned`,
      );
    }
    const sha256 = this.#hash.digest();
    const body = Buffer.concat(this.#buffers, this.#buffered);
    this.#buffers = [];
    this.#buffered = 0;
    const { s3, bucket, key, metadata } = this.#o;
    if (!this.#multipart) {
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: body,
          ContentLength: body.length,
          ChecksumSHA256: sha256.toString("base64"),
          // A gzip file, not gzip-encoded NDJSON (as the shipper writes archive objects).
          ContentType: "application/gzip",
          Metadata: metadata,
        }),
      );
    } else {
      if (body.length > 0) await this.#uploadPart(body);
      await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: key,
          UploadId: this.#uploadId,
          MultipartUpload: { Parts: this.#completed },
        }),
      );
    }
    return { bytes: this.#written, sha256: sha256.toString("hex") };
  }

  /** Gives up the part: a started multipart upload is aborted (best effort), so its upload parts are not billed. */
  async abort(): Promise<void> {
    this.#buffers = [];
    if (this.#uploadId === undefined) return;
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
          ContentType: "application/gzip",
          Metadata: metadata,
        }),
      );
      if (created.UploadId === undefined)
        throw new Error(`CreateMultipartUpload for ${key} returned no UploadId`);
      this.#uploadId = created.UploadId;
    }
    const partNumber = this.#completed.length + 1;
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
    this.#completed.push({ ETag: uploaded.ETag, PartNumber: partNumber });
  }
}
