// Errors in the GCS JSON API wire format, so the Node client turns them into ApiError with the right `code`.

export interface ErrorDetail {
  domain: string;
  reason: string;
  message: string;
  locationType?: string;
  location?: string;
}

export class GcsError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly detail: Partial<ErrorDetail>;
  readonly headers: Record<string, string>;

  constructor(
    code: number,
    reason: string,
    message: string,
    detail: Partial<ErrorDetail> = {},
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "GcsError";
    this.code = code;
    this.reason = reason;
    this.detail = detail;
    this.headers = headers;
  }

  toJSON(): { error: { code: number; message: string; errors: ErrorDetail[] } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        errors: [{ message: this.message, domain: "global", reason: this.reason, ...this.detail }],
      },
    };
  }
}

export const invalid = (message: string): GcsError => new GcsError(400, "invalid", message);

export const bucketNotFound = (): GcsError =>
  new GcsError(404, "notFound", "The specified bucket does not exist.");

export const objectNotFound = (bucket: string, name: string): GcsError =>
  new GcsError(404, "notFound", `No such object: ${bucket}/${name}`);

export const routeNotFound = (): GcsError => new GcsError(404, "notFound", "Not Found");

export const conflict = (message: string): GcsError => new GcsError(409, "conflict", message);

export const preconditionFailed = (): GcsError =>
  new GcsError(412, "conditionNotMet", "At least one of the pre-conditions you specified did not hold.", {
    locationType: "header",
    location: "If-Match",
  });

export const notModified = (): GcsError => new GcsError(304, "notModified", "Not Modified");

export const rangeNotSatisfiable = (size: number): GcsError =>
  new GcsError(
    416,
    "requestedRangeNotSatisfiable",
    "The requested range cannot be satisfied.",
    {},
    {
      "Content-Range": `bytes */${size}`,
    },
  );

export const methodNotAllowed = (): GcsError => new GcsError(405, "methodNotAllowed", "Method Not Allowed");
