// A local Athena endpoint for tests: the three operations `logarchive query --engine athena`
// calls, on Athena's wire protocol, AWS JSON 1.1 (a POST to `/` with the operation in
// `X-Amz-Target: AmazonAthena.<Operation>`, JSON bodies with the API reference's member names,
// errors as HTTP 400 with `{"__type": "...", "Message": "..."}`), so the official
// @aws-sdk/client-athena talks to it unchanged. It runs no SQL: each started query follows the
// script the test queued (how many polls it stays QUEUED and RUNNING, then SUCCEEDED with rows
// or FAILED with a reason). Every request is recorded.
//
// https://smithy.io/2.0/aws/protocols/aws-json-1_1-protocol.html
// https://docs.aws.amazon.com/athena/latest/APIReference/API_StartQueryExecution.html
// https://docs.aws.amazon.com/athena/latest/APIReference/API_GetQueryExecution.html
// https://docs.aws.amazon.com/athena/latest/APIReference/API_GetQueryResults.html
// https://docs.aws.amazon.com/athena/latest/APIReference/API_QueryExecutionStatus.html
// https://docs.aws.amazon.com/athena/latest/ug/querying-with-prepared-statements.html (ExecutionParameters)

import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface AthenaScript {
  /** GetQueryExecution answers QUEUED this many times, then RUNNING `runningPolls` times. */
  queuedPolls?: number;
  runningPolls?: number;
  /** Column names and Athena types ("varchar", "bigint", "double", "timestamp", "boolean"…). */
  columns?: { name: string; type: string }[];
  /** Cells as Athena's VarCharValue text; null is a cell without a value. */
  rows?: (string | null)[][];
  dataScannedInBytes?: number;
  /** A FAILED query: its StateChangeReason and AthenaError. */
  failure?: { reason: string; errorCategory: 1 | 2 | 3; errorType: number };
}

export interface RecordedAthenaRequest {
  operation: string;
  body: Record<string, unknown>;
}

export interface FakeAthena {
  url: string;
  readonly requests: RecordedAthenaRequest[];
  queue(script: AthenaScript): void;
  stop(): Promise<void>;
}

interface Execution {
  id: string;
  request: Record<string, unknown>;
  script: AthenaScript;
  polls: number;
  submitted: number;
}

class AthenaError extends Error {
  readonly type: string;
  constructor(type: string, message: string) {
    super(message);
    this.type = type;
  }
}

/** GetQueryResults returns at most 1000 rows per call (API reference: MaxResults 1-1000). */
const MAX_RESULTS = 1000;

export async function startFakeAthena(): Promise<FakeAthena> {
  const requests: RecordedAthenaRequest[] = [];
  const scripts: AthenaScript[] = [];
  const executions = new Map<string, Execution>();

  function state(execution: Execution): "QUEUED" | "RUNNING" | "SUCCEEDED" | "FAILED" {
    const queued = execution.script.queuedPolls ?? 0;
    const running = execution.script.runningPolls ?? 0;
    if (execution.polls < queued) return "QUEUED";
    if (execution.polls < queued + running) return "RUNNING";
    return execution.script.failure === undefined ? "SUCCEEDED" : "FAILED";
  }

  function find(body: Record<string, unknown>): Execution {
    const id = body.QueryExecutionId;
    const execution = typeof id === "string" ? executions.get(id) : undefined;
    if (execution === undefined) {
      throw new AthenaError("InvalidRequestException", `QueryExecution ${String(id)} was not found`);
    }
    return execution;
  }

  const operations: Record<string, (body: Record<string, unknown>) => unknown> = {
    StartQueryExecution(body) {
      if (typeof body.QueryString !== "string" || body.QueryString.length === 0) {
        throw new AthenaError("InvalidRequestException", "QueryString is required");
      }
      const script = scripts.shift();
      if (script === undefined) throw new Error("fake Athena: no query script queued");
      const execution: Execution = {
        id: randomUUID(),
        request: body,
        script,
        polls: 0,
        submitted: Date.now(),
      };
      executions.set(execution.id, execution);
      return { QueryExecutionId: execution.id };
    },
    GetQueryExecution(body) {
      const execution = find(body);
      const now = state(execution);
      execution.polls++;
      const done = now === "SUCCEEDED" || now === "FAILED";
      const context = execution.request.QueryExecutionContext as Record<string, unknown> | undefined;
      return {
        QueryExecution: {
          QueryExecutionId: execution.id,
          Query: execution.request.QueryString,
          StatementType: "DML",
          ...(context === undefined ? {} : { QueryExecutionContext: context }),
          WorkGroup: execution.request.WorkGroup ?? "primary",
          ...(execution.request.ExecutionParameters === undefined
            ? {}
            : { ExecutionParameters: execution.request.ExecutionParameters }),
          Status: {
            State: now,
            SubmissionDateTime: execution.submitted / 1000,
            ...(done ? { CompletionDateTime: Date.now() / 1000 } : {}),
            ...(now === "FAILED"
              ? {
                  StateChangeReason: execution.script.failure!.reason,
                  AthenaError: {
                    ErrorCategory: execution.script.failure!.errorCategory,
                    ErrorType: execution.script.failure!.errorType,
                    Retryable: false,
                    ErrorMessage: execution.script.failure!.reason,
                  },
                }
              : {}),
          },
          Statistics: {
            // Scanned bytes grow while the query runs; the final count once it is done.
            DataScannedInBytes: done ? (execution.script.dataScannedInBytes ?? 0) : 0,
            EngineExecutionTimeInMillis: done ? 1234 : 0,
          },
        },
      };
    },
    GetQueryResults(body) {
      const execution = find(body);
      const now = state(execution);
      if (now === "FAILED") {
        throw new AthenaError("InvalidRequestException", execution.script.failure!.reason);
      }
      if (now !== "SUCCEEDED") {
        throw new AthenaError("InvalidRequestException", `Query has not yet finished. Current state: ${now}`);
      }
      const max = typeof body.MaxResults === "number" ? body.MaxResults : MAX_RESULTS;
      if (max < 1 || max > MAX_RESULTS) {
        throw new AthenaError(
          "InvalidRequestException",
          `1 validation error detected: Value '${max}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to ${MAX_RESULTS}`,
        );
      }
      const columns = execution.script.columns ?? [];
      // The first row of a SELECT's first page is the column labels.
      const all = [columns.map((c) => c.name), ...(execution.script.rows ?? [])];
      const start = typeof body.NextToken === "string" ? Number(body.NextToken) : 0;
      const end = Math.min(start + max, all.length);
      return {
        UpdateCount: 0,
        ResultSet: {
          Rows: all.slice(start, end).map((row) => ({
            Data: row.map((cell) => (cell === null ? {} : { VarCharValue: cell })),
          })),
          ResultSetMetadata: {
            ColumnInfo: columns.map((c) => ({
              CatalogName: "hive",
              SchemaName: "",
              TableName: "",
              Name: c.name,
              Label: c.name,
              Type: c.type,
              Precision: 0,
              Scale: 0,
              Nullable: "UNKNOWN",
              CaseSensitive: c.type === "varchar",
            })),
          },
        },
        ...(end < all.length ? { NextToken: String(end) } : {}),
      };
    },
  };

  const server = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const send = (status: number, body: unknown) => {
        const data = Buffer.from(JSON.stringify(body));
        res.writeHead(status, {
          "content-type": "application/x-amz-json-1.1",
          "content-length": data.length,
          "x-amzn-requestid": randomUUID(),
        });
        res.end(data);
      };
      const target = String(req.headers["x-amz-target"] ?? "");
      const operation = target.startsWith("AmazonAthena.") ? target.slice("AmazonAthena.".length) : "";
      try {
        if (req.method !== "POST" || req.url !== "/" || !(operation in operations)) {
          throw new AthenaError("UnknownOperationException", `unknown operation ${target}`);
        }
        if (!String(req.headers["content-type"]).startsWith("application/x-amz-json-1.1")) {
          throw new AthenaError("SerializationException", "expected application/x-amz-json-1.1");
        }
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as Record<string, unknown>;
        requests.push({ operation, body });
        send(200, operations[operation]!(body));
      } catch (error) {
        if (error instanceof AthenaError) send(400, { __type: error.type, Message: error.message });
        else send(500, { __type: "InternalServerException", Message: (error as Error).message });
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    queue: (script) => void scripts.push(script),
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
