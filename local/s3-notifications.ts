// The local stand-in for an S3 bucket notification configuration: it turns s3rver's
// object events into SQS messages in the exact format S3 sends, filtered by the same
// rules infra/ puts on the real bucket (both come from notificationRules(policy)).
//
// Like S3 it delivers at least once: a failed send is retried with backoff, and a
// configuration being enabled first sends an s3:TestEvent.

import type { EventEmitter } from "node:events";
import { SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { formatS3EventMessage, formatS3TestEvent } from "../lib/events/s3-event.ts";
import { type NotificationRule, ruleMatches } from "../lib/policy/policy.ts";

export interface NotificationBridgeOptions {
  /** The s3rver instance whose 'event' is observed. */
  s3: EventEmitter;
  sqs: SQSClient;
  queueUrl: string;
  bucket: string;
  region: string;
  rules: readonly NotificationRule[];
  /** Backoff of retried sends, in ms; doubles per attempt up to 30 s. */
  retryBaseMs?: number;
  log?: (event: string, fields: Record<string, unknown>) => void;
}

export interface NotificationCounts {
  /** Messages delivered to SQS. */
  sent: number;
  /** Object events no rule selected (archive-only namespaces, other keys). */
  filtered: number;
  /** Send attempts that failed and were retried. */
  retries: number;
}

interface S3rverRecord {
  eventName: string;
  eventTime: string;
  requestParameters?: { sourceIPAddress?: string };
  s3: { bucket: { name: string }; object: { key: string; size?: number; eTag?: string } };
}

export class NotificationBridge {
  readonly counts: NotificationCounts = { sent: 0, filtered: 0, retries: 0 };
  readonly #options: NotificationBridgeOptions;
  readonly #inFlight = new Set<Promise<void>>();
  #sequence = 0n;
  #stopped = false;
  readonly #onEvent = (event: { Records: S3rverRecord[] }) => {
    for (const record of event.Records) this.#handle(record);
  };

  constructor(options: NotificationBridgeOptions) {
    this.#options = options;
  }

  /** Starts observing the bucket, sending the s3:TestEvent S3 sends when a configuration is enabled. */
  async start(): Promise<void> {
    this.#options.s3.on("event", this.#onEvent);
    await this.#track(this.#send(formatS3TestEvent(this.#options.bucket, new Date())));
  }

  /**
   * Stops observing and waits up to `graceMs` for messages already accepted to be sent;
   * past it, sends still retrying are abandoned, as when a real bucket's config is removed.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.#options.s3.off("event", this.#onEvent);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([Promise.allSettled([...this.#inFlight]), deadline]);
    clearTimeout(timer);
    this.#stopped = true;
  }

  #handle(record: S3rverRecord): void {
    const { bucket, object } = record.s3;
    if (bucket.name !== this.#options.bucket) return;
    const eventName = realEventName(record.eventName, object.eTag);
    const rule = this.#options.rules.find((r) => ruleMatches(r, eventName, object.key));
    if (rule === undefined) {
      this.counts.filtered++;
      return;
    }
    const body = formatS3EventMessage({
      eventName,
      eventTime: new Date(record.eventTime),
      awsRegion: this.#options.region,
      bucket: bucket.name,
      key: object.key,
      size: object.size ?? 0,
      eTag: object.eTag ?? "",
      sequencer: this.#nextSequencer(),
      configurationId: rule.id,
      sourceIp: record.requestParameters?.sourceIPAddress ?? "127.0.0.1",
    });
    void this.#track(this.#send(body));
  }

  // S3's sequencer is a hex string that grows for events of one key; s3rver's is the
  // millisecond clock, which repeats, so a counter is appended.
  #nextSequencer(): string {
    this.#sequence++;
    return (BigInt(Date.now()) * 1_000_000n + (this.#sequence % 1_000_000n))
      .toString(16)
      .toUpperCase()
      .padStart(18, "0");
  }

  #track(p: Promise<void>): Promise<void> {
    this.#inFlight.add(p);
    return p.finally(() => this.#inFlight.delete(p));
  }

  async #send(body: string): Promise<void> {
    const base = this.#options.retryBaseMs ?? 100;
    for (let attempt = 0; !this.#stopped; attempt++) {
      try {
        await this.#options.sqs.send(
          new SendMessageCommand({ QueueUrl: this.#options.queueUrl, MessageBody: body }),
        );
        this.counts.sent++;
        return;
      } catch (error) {
        this.counts.retries++;
        const delay = Math.min(30_000, base * 2 ** Math.min(attempt, 10)) * (0.5 + Math.random() / 2);
        this.#options.log?.("s3_notification_send_failed", {
          error: String(error),
          retryInMs: Math.round(delay),
        });
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }
}

// s3rver reports a completed multipart upload as a POST; S3 calls it
// CompleteMultipartUpload. Multipart ETags end in -<part count>.
function realEventName(name: string, eTag: string | undefined): string {
  if (name === "ObjectCreated:Post" && eTag !== undefined && /-\d+"?$/.test(eTag)) {
    return "ObjectCreated:CompleteMultipartUpload";
  }
  return name;
}
