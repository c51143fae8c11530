// A minimal POSIX ustar writer for the bundle's few flat files (`--out FILE.tar.gz`): no
// dependency for three regular files. Format: POSIX.1-1988 ustar, as `tar` and every unpacker
// read it (https://www.gnu.org/software/tar/manual/html_node/Standard.html).

const BLOCK = 512;

function field(header: Buffer, offset: number, length: number, value: string): void {
  header.write(value, offset, length, "utf8");
}

function octal(value: number, length: number): string {
  // length - 1 digits and a NUL, as tar writes them.
  return `${value.toString(8).padStart(length - 1, "0")}\0`;
}

function header(name: string, size: number, mtimeSeconds: number): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar entry name ${name} is longer than 100 bytes`);
  const h = Buffer.alloc(BLOCK);
  field(h, 0, 100, name);
  field(h, 100, 8, octal(0o644, 8));
  field(h, 108, 8, octal(0, 8));
  field(h, 116, 8, octal(0, 8));
  field(h, 124, 12, octal(size, 12));
  field(h, 136, 12, octal(mtimeSeconds, 12));
  field(h, 148, 8, "        ");
  field(h, 156, 1, "0");
  field(h, 257, 6, "ustar\0");
  field(h, 263, 2, "00");
  let sum = 0;
  for (const byte of h) sum += byte;
  field(h, 148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
  return h;
}

/** A tar archive (uncompressed) of `files`, in the order given. */
export function tarFiles(files: readonly { name: string; data: Buffer }[], mtime: Date): Buffer {
  const parts: Buffer[] = [];
  const seconds = Math.floor(mtime.getTime() / 1000);
  for (const file of files) {
    parts.push(header(file.name, file.data.length, seconds), file.data);
    const pad = (BLOCK - (file.data.length % BLOCK)) % BLOCK;
    if (pad > 0) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}

export class TarFormatError extends Error {
  override name = "TarFormatError";
}

function readOctal(block: Buffer, offset: number, length: number): number {
  const text = block
    .subarray(offset, offset + length)
    .toString("latin1")
    .replace(/[\0 ]+$/g, "")
    .trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`not an octal number: ${JSON.stringify(text)}`);
  return Number.parseInt(text, 8);
}

function readName(block: Buffer, offset: number, length: number): string {
  const raw = block.subarray(offset, offset + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end < 0 ? length : end).toString("utf8");
}

/**
 * The regular files of a (uncompressed) ustar archive, as `tarFiles` writes it and as `tar`
 * writes ustar; other entry types (directories, links, extended headers) are skipped. Each
 * header's checksum is checked, so a damaged archive is refused rather than half read.
 */
export function untarFiles(archive: Buffer): { name: string; data: Buffer }[] {
  const files: { name: string; data: Buffer }[] = [];
  let at = 0;
  while (at + BLOCK <= archive.length) {
    const block = archive.subarray(at, at + BLOCK);
    if (block.every((byte) => byte === 0)) return files;
    const stored = readOctal(block, 148, 8);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : (block[i] as number);
    if (sum !== stored) throw new TarFormatError(`tar header at byte ${at} has a bad checksum`);
    const size = readOctal(block, 124, 12);
    const type = String.fromCharCode(block[156] as number);
    const prefix = readName(block, 345, 155);
    const base = readName(block, 0, 100);
    const name =
      block.subarray(257, 262).toString("latin1") === "ustar" && prefix !== "" ? `${prefix}/${base}` : base;
    const start = at + BLOCK;
    if (start + size > archive.length) throw new TarFormatError(`tar entry ${name} is cut short`);
    if (type === "0" || type === "\0")
      files.push({ name, data: Buffer.from(archive.subarray(start, start + size)) });
    at = start + Math.ceil(size / BLOCK) * BLOCK;
  }
  throw new TarFormatError("the tar archive ends without its end-of-archive blocks");
}
