// The local stand-in for Eventarc's Cloud Storage trigger: each object finalized in the local
// GCS becomes a `google.cloud.storage.object.v1.finalized` CloudEvent, POSTed to the loader
// function's HTTP server (functions-framework) as Eventarc does.
//
// Wire format (https://cloud.google.com/eventarc/docs/cloudevents): binary content mode by
// default, the attributes in `ce-*` headers and the StorageObjectData (the JSON API object
// resource: sizes and generations as strings) as the JSON body; structured mode
// (application/cloudevents+json) as an option. Besides the required attributes, storage
// events carry `subject` (objects/<name>) and the `bucket` extension Eventarc filters on.
//
// Delivery is at least once, like Eventarc over Pub/Sub: any answer but Pub/Sub push's
// success codes (200, 201, 202, 204) and any connection error is retried with exponential
// backoff, with the same event id, until maxAttempts or maxAgeMs (Eventarc keeps trying for
// 24 h). `duplicate: true` sends every event twice, for testing that the receiver dedupes.

import { createHash } from "node:crypto";
import type { StageLog } from "../lib/log.ts";
import type { GcsObjectResource } from "./gcs/server.ts";

export const STORAGE_FINALIZED = "google.cloud.storage.object.v1.finalized";

/** What Eventarc sends as `data` for a storage event: the object's JSON API resource. */
export type StorageObjectData = GcsObjectResource & { timeStorageClassUpdated: string };

export interface StorageCloudEvent {
  specversion: "1.0";
  id: string;
  source: string;
  type: string;
  subject: string;
  time: string;
  datacontenttype: "application/json";
  /** Eventarc's extension attribute for storage events (what triggers filter on). */
  bucket: string;
  data: StorageObjectData;
}

export type ContentMode = "binary" | "structured";

export interface EventarcDeliveryOptions {
  /** URL of the function (functions-framework serves events at its root). */
  target: string;
  /** Default "binary", what Eventarc sends. */
  mode?: ContentMode;
  /** First retry delay; doubles per attempt up to maxBackoffMs. Defaults 100 ms and 10 s (Eventarc: 10 s to 600 s). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Attempts per event before it is dropped. Default unlimited; 1 is a function deployed without retries. */
  maxAttempts?: number;
  /** Age after which an event is no longer retried. Default 24 h, Eventarc's retention. */
  maxAgeMs?: number;
  /** How long one request may take, like the function's timeout. Default 540 s. */
  requestTimeoutMs?: number;
  /** Requests in flight at once. Default 4. */
  concurrency?: number;
  /** Send every event twice (same id), as at-least-once delivery may. */
  duplicate?: boolean;
  log?: StageLog;
}

export interface EventarcStats {
  /** Objects handed to deliver(). */
  received: number;
  /** Events acknowledged by the target, duplicates included. */
  delivered: number;
  /** HTTP requests made. */
  attempts: number;
  /** Attempts that failed and were scheduled again. */
  retries: number;
  /** Events given up after maxAttempts or maxAgeMs. */
  dropped: number;
  /** Events dropped by stop() before they were acknowledged. */
  abandoned: number;
  /** Events waiting to be sent or retried, and requests in flight. */
  queued: number;
  inFlight: number;
}

/** Pub/Sub push treats these as acknowledgements; anything else is retried. */
const ACK_STATUSES = new Set([200, 201, 202, 204]);

interface Delivery {
  event: StorageCloudEvent;
  attempt: number;
  firstAttemptAt: number;
}

/**
 * The event id, stable for one object generation so retries and duplicates share it (with
 * the source, what a receiver dedupes on). Decimal, like the Pub/Sub message ids Eventarc uses.
 */
export function storageEventId(object: Pick<GcsObjectResource, "bucket" | "name" | "generation">): string {
  const digest = createHash("sha256")
    .update(`${object.bucket}\0${object.name}\0${object.generation}\0finalized`)
    .digest("hex");
  return BigInt(`0x${digest.slice(0, 13)}`).toString(10);
}

export function storageFinalizedEvent(object: GcsObjectResource): StorageCloudEvent {
  return {
    specversion: "1.0",
    id: storageEventId(object),
    source: `//storage.googleapis.com/projects/_/buckets/${object.bucket}`,
    type: STORAGE_FINALIZED,
    subject: `objects/${object.name}`,
    time: object.updated,
    datacontenttype: "application/json",
    bucket: object.bucket,
    data: { ...object, timeStorageClassUpdated: object.timeCreated },
  };
}

/**
 * A `ce-*` header value: CloudEvents' HTTP binding percent-encodes space, `"`, `%` and
 * everything outside printable ASCII (an object name may hold any UTF-8). Receivers should
 * read the name from `data.name`, which is plain JSON.
 */
export function encodeHeaderValue(value: string): string {
  return Array.from(Buffer.from(value, "utf8"), (byte) =>
    byte <= 0x20 || byte >= 0x7f || byte === 0x22 || byte === 0x25
      ? `%${byte.toString(16).toUpperCase().padStart(2, "0")}`
      : String.fromCharCode(byte),
  ).join("");
}

/** The HTTP request Eventarc makes for an event, in either content mode. */
export function cloudEventRequest(
  event: StorageCloudEvent,
  mode: ContentMode,
): { headers: Record<string, string>; body: string } {
  if (mode === "structured") {
    return {
      headers: { "content-type": "application/cloudevents+json; charset=utf-8" },
      body: JSON.stringify(event),
    };
  }
  const { data, datacontenttype, ...attributes } = event;
  const headers: Record<string, string> = { "content-type": datacontenttype };
  for (const [name, value] of Object.entries(attributes)) headers[`ce-${name}`] = encodeHeaderValue(value);
  return { headers, body: JSON.stringify(data) };
}

export class EventarcDelivery {
  readonly #target: string;
  readonly #mode: ContentMode;
  readonly #initialBackoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #maxAttempts: number;
  readonly #maxAgeMs: number;
  readonly #requestTimeoutMs: number;
  readonly #concurrency: number;
  readonly #duplicate: boolean;
  readonly #log: StageLog;
  readonly #counters = { received: 0, delivered: 0, attempts: 0, retries: 0, dropped: 0, abandoned: 0 };
  readonly #ready: Delivery[] = [];
  readonly #retryTimers = new Map<NodeJS.Timeout, Delivery>();
  readonly #stopSignal = new AbortController();
  #inFlight = new Set<Promise<void>>();
  #idleWaiters: (() => void)[] = [];
  #stopped = false;

  constructor(options: EventarcDeliveryOptions) {
    this.#target = options.target;
    this.#mode = options.mode ?? "binary";
    this.#initialBackoffMs = options.initialBackoffMs ?? 100;
    this.#maxBackoffMs = options.maxBackoffMs ?? 10_000;
    this.#maxAttempts = options.maxAttempts ?? Number.POSITIVE_INFINITY;
    this.#maxAgeMs = options.maxAgeMs ?? 24 * 60 * 60 * 1000;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 540_000;
    this.#concurrency = options.concurrency ?? 4;
    this.#duplicate = options.duplicate ?? false;
    this.#log = options.log ?? (() => {});
    if (!(this.#concurrency >= 1)) throw new RangeError("concurrency must be at least 1");
    if (!(this.#maxAttempts >= 1)) throw new RangeError("maxAttempts must be at least 1");
  }

  /** Queues the finalize event of `object`; fits `cloud.onGcsFinalize(delivery.deliver)`. */
  readonly deliver = (object: GcsObjectResource): void => {
    if (this.#stopped) {
      this.#log("warn", "eventarc_event_refused", { object: object.name, reason: "delivery stopped" });
      return;
    }
    this.#counters.received++;
    const event = storageFinalizedEvent(object);
    const now = Date.now();
    this.#ready.push({ event, attempt: 0, firstAttemptAt: now });
    if (this.#duplicate) this.#ready.push({ event, attempt: 0, firstAttemptAt: now });
    this.#pump();
  };

  stats(): EventarcStats {
    return {
      ...this.#counters,
      queued: this.#ready.length + this.#retryTimers.size,
      inFlight: this.#inFlight.size,
    };
  }

  /** Resolves once nothing is queued, waiting for a retry, or in flight. */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Stops delivering: queued events and pending retries are dropped (counted as abandoned)
   * and requests in flight are cut. Unlike Eventarc, which keeps undelivered events for 24 h,
   * the local delivery keeps nothing across a restart.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#counters.abandoned += this.#ready.length + this.#retryTimers.size;
    this.#ready.length = 0;
    for (const timer of this.#retryTimers.keys()) clearTimeout(timer);
    this.#retryTimers.clear();
    this.#stopSignal.abort();
    await Promise.allSettled([...this.#inFlight]);
    this.#settle();
  }

  #isIdle(): boolean {
    return this.#ready.length === 0 && this.#retryTimers.size === 0 && this.#inFlight.size === 0;
  }

  #settle(): void {
    if (!this.#isIdle()) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  #pump(): void {
    while (!this.#stopped && this.#inFlight.size < this.#concurrency && this.#ready.length > 0) {
      const delivery = this.#ready.shift()!;
      const sending: Promise<void> = this.#send(delivery).finally(() => {
        this.#inFlight.delete(sending);
        this.#pump();
        this.#settle();
      });
      this.#inFlight.add(sending);
    }
  }

  async #send(delivery: Delivery): Promise<void> {
    delivery.attempt++;
    this.#counters.attempts++;
    const { event } = delivery;
    const { headers, body } = cloudEventRequest(event, this.#mode);
    let failure: string;
    try {
      const response = await fetch(this.#target, {
        method: "POST",
        headers,
        body,
        signal: AbortSignal.any([this.#stopSignal.signal, AbortSignal.timeout(this.#requestTimeoutMs)]),
      });
      const text = await response.text();
      if (ACK_STATUSES.has(response.status)) {
        this.#counters.delivered++;
        this.#log("debug", "eventarc_delivered", {
          id: event.id,
          subject: event.subject,
          attempt: delivery.attempt,
          status: response.status,
        });
        return;
      }
      failure = `HTTP ${response.status}${text ? `: ${text.slice(0, 200)}` : ""}`;
    } catch (error) {
      if (this.#stopped) {
        this.#counters.abandoned++;
        return;
      }
      failure = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    }
    this.#retryOrDrop(delivery, failure);
  }

  #retryOrDrop(delivery: Delivery, failure: string): void {
    const { event, attempt } = delivery;
    const age = Date.now() - delivery.firstAttemptAt;
    if (this.#stopped) {
      this.#counters.abandoned++;
      return;
    }
    if (attempt >= this.#maxAttempts || age >= this.#maxAgeMs) {
      this.#counters.dropped++;
      this.#log("error", "eventarc_event_dropped", {
        id: event.id,
        subject: event.subject,
        attempts: attempt,
        ageMs: age,
        failure,
      });
      return;
    }
    const retryInMs = Math.min(this.#maxBackoffMs, this.#initialBackoffMs * 2 ** (attempt - 1));
    this.#counters.retries++;
    this.#log("warn", "eventarc_delivery_retry", {
      id: event.id,
      subject: event.subject,
      attempt,
      retryInMs,
      failure,
    });
    const timer = setTimeout(() => {
      this.#retryTimers.delete(timer);
      this.#ready.push(delivery);
      this.#pump();
    }, retryInMs);
    this.#retryTimers.set(timer, delivery);
  }
}
