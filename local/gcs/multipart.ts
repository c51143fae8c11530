// An incremental multipart/related reader: part headers are parsed, part bodies stream through unbuffered.

import { invalid } from "./errors.ts";
import { drain } from "./http.ts";

export class MultipartReader {
  readonly #source: AsyncIterator<Buffer>;
  readonly #delimiter: Buffer;
  // Starting with CRLF lets the first delimiter, which has no CRLF before it, match like the others.
  #buf: Buffer = Buffer.from("\r\n");

  constructor(source: AsyncIterable<Buffer>, boundary: string) {
    this.#source = source[Symbol.asyncIterator]();
    this.#delimiter = Buffer.from(`\r\n--${boundary}`);
  }

  async #fill(): Promise<void> {
    const next = await this.#source.next();
    if (next.done) throw invalid("Multipart body ended before its closing boundary.");
    this.#buf = this.#buf.length === 0 ? next.value : Buffer.concat([this.#buf, next.value]);
  }

  /** Yields data up to the next delimiter and consumes the delimiter. */
  async *#untilDelimiter(): AsyncGenerator<Buffer> {
    const keep = this.#delimiter.length - 1;
    for (;;) {
      const at = this.#buf.indexOf(this.#delimiter);
      if (at >= 0) {
        const data = this.#buf.subarray(0, at);
        this.#buf = this.#buf.subarray(at + this.#delimiter.length);
        if (data.length > 0) yield data;
        return;
      }
      if (this.#buf.length > keep) {
        const data = this.#buf.subarray(0, this.#buf.length - keep);
        this.#buf = this.#buf.subarray(this.#buf.length - keep);
        yield data;
      }
      await this.#fill();
    }
  }

  async skipPreamble(): Promise<void> {
    await drain(this.#untilDelimiter());
  }

  /** The next part's headers (lower-cased) and body, or undefined after the closing delimiter. */
  async nextPart(): Promise<{ headers: Map<string, string>; body: AsyncGenerator<Buffer> } | undefined> {
    while (this.#buf.length < 2) await this.#fill();
    if (this.#buf[0] === 0x2d && this.#buf[1] === 0x2d) return undefined;
    let end = this.#buf.indexOf("\r\n\r\n");
    while (end < 0) {
      if (this.#buf.length > 64 * 1024) throw invalid("Multipart part headers are too large.");
      await this.#fill();
      end = this.#buf.indexOf("\r\n\r\n");
    }
    const headers = new Map<string, string>();
    for (const line of this.#buf.subarray(0, end).toString("latin1").split("\r\n")) {
      const colon = line.indexOf(":");
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    this.#buf = this.#buf.subarray(end + 4);
    return { headers, body: this.#untilDelimiter() };
  }

  async drainRest(): Promise<void> {
    this.#buf = Buffer.alloc(0);
    for (let next = await this.#source.next(); !next.done; next = await this.#source.next()) {
      // discard the epilogue
    }
  }
}
