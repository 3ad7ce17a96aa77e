// One pass over a result file: its bytes read in chunks (never the whole file, JSON aside), hashed,
// decoded and parsed; the records' results handed over chunk by chunk. The driver reads a file twice:
// once to hash and validate it whole (nothing of a file that will be rejected is stored, and a
// result's id needs the hash of the whole content), once to store; the second pass checks each
// chunk against the first (a CRC per chunk), so a file rewritten in between is noticed, not mixed.
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { CsvReader } from './csv.js';
import { rowText } from './csv.js';
import { ChunkDecoder, clip, declaredXmlEncoding, FileProblem } from './decode.js';
import { jsonRecords } from './json.js';
import { compileMapping, type FieldPlace, type ResultDraft } from './mapping.js';
import type { FileDropConnection } from './schema.js';
import { XmlReader } from './xml.js';

/** Bytes read at a time: what one step holds in memory, besides the results of its records. */
export const CHUNK_BYTES = 256 * 1024;
/** Default max_file_size by format: a JSON file is read whole. */
export const DEFAULT_MAX_FILE_SIZE = { csv: 1024 ** 3, tsv: 1024 ** 3, xml: 1024 ** 3, json: 16 * 1024 ** 2 } as const;

export interface FileRecord {
  /** The record's index in the file, from 0: part of its results' ids. */
  index: number;
  results: ResultDraft[];
}

export interface FileDigest {
  /** SHA-256 of the content, hex. */
  hash: string;
  bytes: number;
  records: number;
  results: number;
  /** CRC-32 of each chunk, for the next pass to check against. */
  chunks: number[];
}

/** The file changed between two passes (the writer was not done after all): tried again later. */
export class FileChanged extends Error {
  constructor() {
    super('The file changed while it was being read');
    this.name = 'FileChanged';
  }
}

export function maxFileSize(c: FileDropConnection): number {
  return c.max_file_size ?? DEFAULT_MAX_FILE_SIZE[c.format];
}

/**
 * The records of a file, a chunk's worth at a time. `expect`: the chunk CRCs of an earlier pass
 * (throws FileChanged on a difference). Content that does not make results throws FileProblem.
 */
export async function* fileRecords(
  path: string,
  c: FileDropConnection,
  opts: { instrument: string; fileTime: number; timeZone?: string | undefined; expect?: readonly number[] },
): AsyncGenerator<FileRecord[], FileDigest> {
  const tabular = c.format === 'csv' || c.format === 'tsv';
  const delimiter = c.csv.delimiter ?? (c.format === 'tsv' ? '\t' : ',');
  const mapping = compileMapping(c.mapping, {
    instrument: opts.instrument,
    decimal: tabular ? c.csv.decimal : '.',
    fileTime: opts.fileTime,
    timeZone: opts.timeZone,
    describePlace: (p) => (tabular ? (typeof p === 'number' ? `column ${p}` : `column "${p}"`) : `path "${p}"`),
  });
  let pending: FileRecord[] = [];
  let records = 0;
  let results = 0;
  const take = (where: string, values: readonly unknown[], raw: string | undefined) => {
    const r = mapping.results(values, where, raw);
    pending.push({ index: records++, results: r });
    results += r.length;
  };
  const parser = tabular
    ? csvParser(mapping.places, { delimiter, quote: c.csv.quote, skipLines: c.csv.skip_lines, header: c.csv.header }, take)
    : c.format === 'xml'
      ? xmlParser(c.xml!.record, mapping.places as string[], take)
      : jsonParser(c.json.records, mapping.places as string[], take);
  const max = maxFileSize(c);
  const hash = createHash('sha256');
  const chunks: number[] = [];
  // Replaced since the scan by a link, a FIFO or a device? O_NONBLOCK: opening a FIFO does not wait
  // for a writer (and a read of one would never end); O_NOFOLLOW: a link is not followed out of the
  // folder. Then the open file itself must be a regular file. Either way the scan sees it again.
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'ELOOP' ? new FileChanged() : err;
  });
  try {
    if (!(await handle.stat()).isFile()) throw new FileChanged();
    const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    let decoder: ChunkDecoder | undefined;
    let position = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, CHUNK_BYTES, position);
      const bytes = buffer.subarray(0, bytesRead);
      if (position + bytesRead > max) throw new FileProblem('', `larger than max_file_size (${max} bytes)`);
      if (bytesRead > 0) {
        hash.update(bytes);
        const crc = crc32(bytes);
        if (opts.expect && opts.expect[chunks.length] !== crc) throw new FileChanged();
        chunks.push(crc);
      }
      decoder ??= new ChunkDecoder(
        tabular ? c.csv.encoding : c.format === 'xml' ? (c.xml!.encoding ?? declaredXmlEncoding(bytes) ?? 'utf-8') : 'utf-8',
      );
      position += bytesRead;
      const last = bytesRead === 0;
      parser.feed(decoder.decode(bytes, last, parser.line));
      if (last) break;
      if (pending.length > 0) {
        const out = pending;
        pending = [];
        yield out;
      }
    }
    if (opts.expect && opts.expect.length !== chunks.length) throw new FileChanged();
    if (position === 0) throw new FileProblem('', 'an empty file');
    parser.end();
    if (pending.length > 0) yield pending;
    if (records === 0) throw new FileProblem('', parser.none);
    return { hash: hash.digest('hex'), bytes: position, records, results, chunks };
  } finally {
    await handle.close();
  }
}

interface Parser {
  feed(text: string): void;
  end(): void;
  /** The line the text fed so far ends on (from 1). */
  line(): number;
  /** Why a file with no records is refused. */
  none: string;
}

function csvParser(
  places: readonly FieldPlace[],
  o: { delimiter: string; quote: string; skipLines: number; header: boolean },
  take: (where: string, values: readonly unknown[], raw: string | undefined) => void,
): Parser {
  let columns: number[] | undefined = o.header ? undefined : places.map((p) => (p as number) - 1);
  let width: number | undefined;
  const needed = Math.max(0, ...places.filter((p): p is number => typeof p === 'number'));
  const reader = new CsvReader(o, ({ fields, line }) => {
    const where = `line ${line}`;
    if (!columns) {
      const names = fields.map((f) => f.trim());
      const lower = names.map((n) => n.toLowerCase());
      width = fields.length;
      columns = places.map((p) => {
        if (typeof p === 'number') return p - 1;
        let i = names.indexOf(p.trim());
        if (i < 0) i = lower.indexOf(p.trim().toLowerCase());
        if (i < 0) throw new FileProblem(where, `no column "${p}" in the header (it has ${headerList(names)})`);
        return i;
      });
      if (needed > width) throw new FileProblem(where, `the mapping reads column ${needed}, the header has ${width} columns`);
      return;
    }
    if (width !== undefined) {
      // A row may end with empty fields the header does not have (a trailing delimiter), no more.
      if (fields.length < width || fields.slice(width).some((f) => f.trim() !== ''))
        throw new FileProblem(where, `${fields.length} fields where the header has ${width} (a cut or malformed row)`);
    } else if (fields.length < needed) {
      throw new FileProblem(where, `${fields.length} fields where the mapping reads column ${needed} (a cut or malformed row)`);
    }
    const raw = fields.reduce((n, f) => n + f.length + 1, 0) <= 4096 ? rowText(fields, o.delimiter, o.quote) : undefined;
    take(
      where,
      columns.map((i) => fields[i]),
      raw,
    );
  });
  return {
    feed: (t) => reader.feed(t),
    end: () => reader.end(),
    line: () => reader.lineNow,
    get none() {
      return columns && o.header ? 'no rows after the header' : 'no rows';
    },
  };
}

/** The header's names for a reason: the first 20, each clipped (a header may have a million). */
function headerList(names: readonly string[]): string {
  const shown = names.slice(0, 20).map((n) => `"${clip(n, 40)}"`);
  return names.length > 20 ? `${shown.join(', ')}... (${names.length} columns)` : shown.join(', ');
}

function xmlParser(
  recordPath: string,
  places: readonly string[],
  take: (where: string, values: readonly unknown[], raw: string | undefined) => void,
): Parser {
  let n = 0;
  const reader = new XmlReader(recordPath, places, (r) => take(`record ${++n} (line ${r.line})`, r.values, r.raw));
  return {
    feed: (t) => reader.feed(t),
    end: () => reader.end(),
    line: () => reader.line,
    none: `no element at the record path "${recordPath}"`,
  };
}

function jsonParser(
  recordsPath: string,
  places: readonly string[],
  take: (where: string, values: readonly unknown[], raw: string | undefined) => void,
): Parser {
  // Read whole (the size is bounded), parsed at the end.
  const parts: string[] = [];
  return {
    feed: (t) => void parts.push(t),
    line: () => 1 + parts.reduce((n, t) => n + (t.match(/\r\n?|\n/g) ?? []).length, 0),
    end: () => {
      for (const r of jsonRecords(parts.join(''), recordsPath, places)) take(`record ${r.index}`, r.values, r.raw);
    },
    none: `no records at ${recordsPath === '' ? 'the top level' : `"${recordsPath}"`}`,
  };
}
