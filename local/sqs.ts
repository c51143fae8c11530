// Local SQS: fauxqs, persisted in SQLite under the data dir so queued events survive a restart.

import { mkdir } from "node:fs/promises";
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";
import { startFauxqs } from "fauxqs";

export interface LocalSqsOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  dataDir: string;
  queueName: string;
  region: string;
}

export interface LocalSqs {
  endpoint: string;
  port: number;
  queueUrl: string;
  queueArn: string;
  stop(): Promise<void>;
}

export const LOCAL_SQS_CREDENTIALS = { accessKeyId: "local", secretAccessKey: "local" } as const;

export async function startLocalSqs(options: LocalSqsOptions): Promise<LocalSqs> {
  await mkdir(options.dataDir, { recursive: true });
  const server = await startFauxqs({
    port: options.port,
    host: options.host,
    logger: false,
    dataDir: options.dataDir,
    defaultRegion: options.region,
  });
  const endpoint = server.address;
  const sqs = new SQSClient({ endpoint, region: options.region, credentials: LOCAL_SQS_CREDENTIALS });
  try {
    // The real queue keeps messages 4 days by default; the maximum keeps a long outage recoverable.
    const { QueueUrl } = await sqs.send(
      new CreateQueueCommand({
        QueueName: options.queueName,
        Attributes: { MessageRetentionPeriod: "1209600", VisibilityTimeout: "300" },
      }),
    );
    const attributes = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ["QueueArn"] }),
    );
    // fauxqs keeps the URL a queue was created with, port included; after a restart on a new
    // port, say where the queue is now (the SDK routes by endpoint either way).
    // (Not through URL: fauxqs's host `sqs.<region>.127.0.0.1` is not a valid URL host.)
    const queueUrl = QueueUrl!.replace(/^(https?:\/\/[^/:]+):\d+\//, `$1:${server.port}/`);
    return {
      endpoint,
      port: server.port,
      queueUrl,
      queueArn: attributes.Attributes!.QueueArn!,
      stop: () => server.stop(),
    };
  } catch (error) {
    await server.stop();
    throw error;
  } finally {
    sqs.destroy();
  }
}
