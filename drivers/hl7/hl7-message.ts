// HL7 v2 messages, by hand and strictly: segments split on CR (LF and CRLF tolerated, as many senders
// use them), fields, repetitions, components and subcomponents by the delimiters MSH-1 and MSH-2
// declare, escape sequences, and the character set MSH-18 declares. No HL7 library on npm is
// maintained and small; what the driver needs of the standard is this file.
import iconv from 'iconv-lite';
import { instantOfWallClock, zoneOffset } from '../common/time-zone.js';
import type { Charset } from './schema.js';

export type { Charset };

/** The separators of one message, from MSH-1 and MSH-2 (`|^~\&`). */
export interface Delimiters {
  field: string;
  component: string;
  repetition: string;
  escape: string;
  subcomponent: string;
}

export const DEFAULT_DELIMITERS: Delimiters = { field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&' };

/**
 * MSH-18 values (HL7 table 0211 and the spellings analyzers use) and the charset each one means.
 * ASCII is read as Latin-1, which it is a part of; GB 2312 as GB18030, which contains it.
 */
const MSH18: Record<string, Charset> = {
  ASCII: 'latin1',
  '8859/1': 'latin1',
  'ISO-8859-1': 'latin1',
  'ISO8859-1': 'latin1',
  LATIN1: 'latin1',
  'UNICODE UTF-8': 'utf-8',
  'UTF-8': 'utf-8',
  UTF8: 'utf-8',
  'GB 18030-2000': 'gb18030',
  'GB 18030-2005': 'gb18030',
  'GB18030-2000': 'gb18030',
  GB18030: 'gb18030',
  'GB 18030': 'gb18030',
  GBK: 'gbk',
  'GB 2312': 'gb18030',
  GB2312: 'gb18030',
};

/** What MSH-18 is written as in the messages the gateway sends (its ACKs), by charset. */
export const MSH18_OF: Record<Charset, string> = { 'utf-8': 'UNICODE UTF-8', gb18030: 'GB 18030-2000', gbk: 'GBK', latin1: '8859/1' };

/** HL7 table 0357 (message error condition codes) as far as the driver uses them. */
export const ERROR_CODES = {
  segmentSequence: '100',
  requiredFieldMissing: '101',
  dataType: '102',
  tableValue: '103',
  unsupportedMessageType: '200',
  unsupportedVersion: '203',
  applicationError: '207',
} as const;
export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

const ERROR_TEXT: Record<ErrorCode, string> = {
  '100': 'Segment sequence error',
  '101': 'Required field missing',
  '102': 'Data type error',
  '103': 'Table value not found',
  '200': 'Unsupported message type',
  '203': 'Unsupported version id',
  '207': 'Application internal error',
};

export const errorText = (code: ErrorCode): string => ERROR_TEXT[code];

/** Why a message cannot be taken: its reason for the ACK (MSA-3, ERR) and the log. */
export class Hl7Error extends Error {
  override name = 'Hl7Error';
  constructor(
    message: string,
    readonly code: ErrorCode,
    /** Where in the message: segment, its ordinal (1-based) and field, when known. */
    readonly location?: { segment: string; sequence: number; field?: number },
  ) {
    super(message);
  }
}

/** One segment: `fields[n]` is SEG-n as sent (escaped); `fields[0]` is the segment's name. */
export class Segment {
  constructor(
    readonly name: string,
    readonly fields: readonly string[],
    private readonly d: Delimiters,
    private readonly charset: Charset,
    /** The segment's text as received, for audit. */
    readonly text: string,
  ) {}

  /** SEG-n as sent, all repetitions, escaped; '' when absent. */
  raw(n: number): string {
    return this.fields[n] ?? '';
  }

  /** Fields already split into repetitions: a reader walking a field's repetitions must not split it again for each one. */
  private readonly split = new Map<number, readonly string[]>();

  /** The repetitions of SEG-n, each still escaped. */
  repetitions(n: number): readonly string[] {
    let reps = this.split.get(n);
    if (reps === undefined) {
      const raw = this.raw(n);
      reps = raw === '' ? [] : raw.split(this.d.repetition);
      this.split.set(n, reps);
    }
    return reps;
  }

  /**
   * SEG-n.c.s of the first repetition (or of repetition `rep`), unescaped and trimmed: what a reader
   * of the field wants. Components and subcomponents count from 1.
   */
  get(n: number, component = 1, subcomponent = 1, rep = 0): string {
    const repetition = this.repetitions(n)[rep] ?? '';
    const c = repetition.split(this.d.component)[component - 1] ?? '';
    const s = c.split(this.d.subcomponent)[subcomponent - 1] ?? '';
    return this.unescape(s).trim();
  }

  /** The components of one repetition of SEG-n, unescaped (subcomponents left joined). */
  components(n: number, rep = 0): string[] {
    const repetition = this.repetitions(n)[rep] ?? '';
    return repetition.split(this.d.component).map((c) => this.unescape(c));
  }

  unescape(text: string): string {
    return unescape(text, this.d, this.charset);
  }
}

/** A parsed message: its segments, in order, and what MSH says about it. */
export interface Hl7Message {
  delimiters: Delimiters;
  charset: Charset;
  segments: Segment[];
  msh: Segment;
  /** MSH-9.1 and MSH-9.2: `ORU`, `R01`. */
  type: string;
  event: string;
  /** MSH-10. */
  controlId: string;
  /** MSH-12.1. */
  version: string;
}

/** The segments of a text: CR ends a segment; LF and CRLF are taken as CR; empty lines are skipped. */
export function splitSegments(text: string): string[] {
  return text.split(/\r\n|\r|\n/).filter((s) => s.trim() !== '');
}

/** The delimiters of a message from its MSH segment's first characters. */
export function delimitersOf(msh: string): Delimiters {
  if (!msh.startsWith('MSH')) throw new Hl7Error('the message does not start with an MSH segment', ERROR_CODES.segmentSequence);
  const field = msh[3];
  const end = field === undefined ? -1 : msh.indexOf(field, 4);
  const encoding = end < 0 ? msh.slice(4) : msh.slice(4, end);
  const chars = [field ?? '', ...encoding];
  if (!field || encoding.length < 4 || encoding.length > 5)
    throw new Hl7Error(
      'MSH-1 and MSH-2 do not declare the field separator and encoding characters (|^~\\&)',
      ERROR_CODES.requiredFieldMissing,
      {
        segment: 'MSH',
        sequence: 1,
        field: 2,
      },
    );
  // MSH-2 may carry a fifth, the truncation character of v2.7; it means nothing to a reader here.
  if (new Set(chars).size !== chars.length || chars.some((c) => /[\r\n A-Za-z0-9]/.test(c)))
    throw new Hl7Error(
      `MSH-1 and MSH-2 (${JSON.stringify(chars.join(''))}) are not distinct punctuation characters`,
      ERROR_CODES.dataType,
      {
        segment: 'MSH',
        sequence: 1,
        field: 2,
      },
    );
  return { field, component: encoding[0]!, repetition: encoding[1]!, escape: encoding[2]!, subcomponent: encoding[3]! };
}

/** The charset an MSH-18 value names (its first repetition); the default when it is empty. */
export function charsetOf(msh18: string, fallback: Charset): Charset {
  const name = msh18.trim().toUpperCase();
  if (name === '') return fallback;
  const charset = MSH18[name];
  if (!charset)
    throw new Hl7Error(
      `MSH-18 character set ${JSON.stringify(msh18.slice(0, 40))} is not supported (UNICODE UTF-8, GB 18030-2000, GBK, 8859/1, ASCII)`,
      ERROR_CODES.tableValue,
      { segment: 'MSH', sequence: 1, field: 18 },
    );
  return charset;
}

/** Bytes to text in a charset; bytes that are not valid in it are an error, never replaced silently. */
export function decode(bytes: Uint8Array, charset: Charset): string {
  if (charset === 'latin1') return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  try {
    return new TextDecoder(charset, { fatal: true }).decode(bytes);
  } catch {
    throw new Hl7Error(
      `the message is not valid ${charset.toUpperCase()} text (its character set, MSH-18 or the connection's default)`,
      ERROR_CODES.dataType,
      {
        segment: 'MSH',
        sequence: 1,
        field: 18,
      },
    );
  }
}

/** Text to bytes in a charset (TextEncoder knows only UTF-8; iconv-lite writes GB18030 and GBK). */
export function encode(text: string, charset: Charset): Buffer {
  if (charset === 'utf-8') return Buffer.from(text, charset);
  // Latin-1 keeps only the low byte of a character beyond it, which may be a CR or a delimiter: such a character is written `?`.
  if (charset === 'latin1') return Buffer.from(text.replace(/[^\p{Cc}\u0020-\u00ff]/gu, '?'), 'latin1');
  return iconv.encode(text, charset);
}

/** MSH-n of the first segment of raw bytes, read as Latin-1: MSH-1 to MSH-18 are ASCII in any charset the driver knows. */
function mshFieldOfBytes(bytes: Uint8Array, n: number): string {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 64 * 1024)).toString('latin1');
  // Line ends before MSH (some senders start the frame with one) are skipped, as between segments.
  const head = text.replace(/^[\r\n]+/, '').split(/\r|\n/)[0]!;
  const d = delimitersOf(head);
  const fields = head.split(d.field);
  return (fields[n - 1] ?? '').split(d.repetition)[0]!.split(d.component)[0]!;
}

/**
 * A message from the bytes of one MLLP frame. MSH-18 is read from the bytes first (it is ASCII), the
 * frame decoded by it (or by `fallback` when it is empty), and the MSH of the decoded text must name
 * the same charset: a GBK character whose second byte is `|` before MSH-18 would otherwise move it.
 */
export function parseMessage(frame: Uint8Array, fallback: Charset): Hl7Message {
  // A UTF-8 byte order mark (Windows software writes one) is no part of the message.
  const bytes = frame[0] === 0xef && frame[1] === 0xbb && frame[2] === 0xbf ? frame.subarray(3) : frame;
  const charset = charsetOf(mshFieldOfBytes(bytes, 18), fallback);
  return parseText(decode(bytes, charset), charset, fallback);
}

/** A message from text already decoded in `charset`. */
export function parseText(text: string, charset: Charset, fallback: Charset = charset): Hl7Message {
  const lines = splitSegments(text);
  const first = lines[0];
  if (first === undefined) throw new Hl7Error('the message is empty', ERROR_CODES.segmentSequence);
  const d = delimitersOf(first);
  const counts = new Map<string, number>();
  const segments = lines.map((line, k) => {
    const parts = line.split(d.field);
    const name = parts[0]!;
    if (!/^[A-Z][A-Z0-9]{2}$/.test(name))
      throw new Hl7Error(
        `segment ${k + 1} has no segment name (three capitals or digits): ${JSON.stringify(line.slice(0, 20))}`,
        ERROR_CODES.segmentSequence,
      );
    counts.set(name, (counts.get(name) ?? 0) + 1);
    // MSH-1 is the field separator itself: MSH-n is then parts[n - 1].
    const fields = name === 'MSH' ? ['MSH', d.field, ...parts.slice(1)] : parts;
    return new Segment(name, fields, d, charset, line);
  });
  if (segments.slice(1).some((s) => s.name === 'MSH'))
    throw new Hl7Error('more than one MSH segment: one frame carries one message (batches are not taken)', ERROR_CODES.segmentSequence);
  const msh = segments[0]!;
  const declared = charsetOf(msh.get(18), fallback);
  if (declared !== charset)
    throw new Hl7Error(
      `MSH-18 read as ${charset} before decoding and as ${declared} after: the MSH segment is not plain text`,
      ERROR_CODES.dataType,
      {
        segment: 'MSH',
        sequence: 1,
        field: 18,
      },
    );
  return {
    delimiters: d,
    charset,
    segments,
    msh,
    type: msh.get(9, 1),
    event: msh.get(9, 2),
    controlId: msh.get(10),
    version: msh.get(12, 1),
  };
}

const FORMATTING = /^\.(br|sp|in|ti|sk|ce|fi|nf)([+-]?\d*)$/;

/**
 * An HL7 text with its escape sequences resolved: \F\ \S\ \T\ \R\ \E\ (the delimiters), \Xhh..\
 * (bytes in the message's charset), \.br\ and \.sp\ (line breaks). Highlighting (\H\ \N\), the other
 * formatting commands and locally defined escapes (\Z..\) carry no text and are dropped; an escape
 * character without its closing one is text, as senders that do not escape a backslash mean it.
 */
export function unescape(text: string, d: Delimiters, charset: Charset = 'utf-8'): string {
  const e = d.escape;
  if (!e || !text.includes(e)) return text;
  let out = '';
  let i = 0;
  while (i < text.length) {
    const start = text.indexOf(e, i);
    if (start < 0) break;
    const end = text.indexOf(e, start + 1);
    if (end < 0) break;
    out += text.slice(i, start);
    const seq = text.slice(start + 1, end);
    const resolved = escapeValue(seq, d, charset);
    if (resolved === undefined) {
      // Not an escape sequence: the escape character is text; the scan goes on after it.
      out += e;
      i = start + 1;
      continue;
    }
    out += resolved;
    i = end + 1;
  }
  return out + text.slice(i);
}

function escapeValue(seq: string, d: Delimiters, charset: Charset): string | undefined {
  switch (seq) {
    case 'F':
      return d.field;
    case 'S':
      return d.component;
    case 'T':
      return d.subcomponent;
    case 'R':
      return d.repetition;
    case 'E':
      return d.escape;
    case 'H':
    case 'N':
      return '';
  }
  if (/^X(?:[0-9A-Fa-f]{2})+$/.test(seq)) return decodeEscaped(Buffer.from(seq.slice(1), 'hex'), charset);
  const f = FORMATTING.exec(seq);
  if (f) {
    if (f[1] === 'br') return '\n';
    if (f[1] === 'sp') return '\n'.repeat(Math.max(1, Math.min(Number(f[2] || 1), 100)));
    return '';
  }
  // Locally defined (\Z..\) and character set switches (\C..\, \M..\): no text of their own.
  if (/^[ZCM][0-9A-Za-z]*$/.test(seq)) return '';
  return undefined;
}

/** Hex-escaped bytes, read as strictly as the message's own: bytes not valid in its charset are refused, never shown as replacement characters. */
function decodeEscaped(bytes: Buffer, charset: Charset): string {
  if (charset === 'latin1') return bytes.toString('latin1');
  try {
    return new TextDecoder(charset, { fatal: true }).decode(bytes);
  } catch {
    throw new Hl7Error(
      `an escape \\X${bytes.toString('hex').toUpperCase().slice(0, 40)}\\ is not valid ${charset.toUpperCase()} text`,
      ERROR_CODES.dataType,
    );
  }
}

/**
 * Text made safe for one HL7 field: its delimiters and the escape character as escape sequences,
 * line breaks as \.br\, other control characters as \Xhh\.
 */
export function escape(text: string, d: Delimiters = DEFAULT_DELIMITERS): string {
  const e = d.escape;
  let out = '';
  for (const ch of text) {
    if (ch === e) out += `${e}E${e}`;
    else if (ch === d.field) out += `${e}F${e}`;
    else if (ch === d.component) out += `${e}S${e}`;
    else if (ch === d.subcomponent) out += `${e}T${e}`;
    else if (ch === d.repetition) out += `${e}R${e}`;
    else if (ch === '\r' || ch === '\n') out += `${e}.br${e}`;
    // Other control characters (a NUL quoted from a broken message) as hex escapes: no reader trips on them.
    else if (ch.charCodeAt(0) < 0x20 || ch === '\x7f') out += `${e}X${ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}${e}`;
    else out += ch;
  }
  return out;
}

/** `YYYYMMDDHHMMSS+ZZZZ`: the machine's local time with its offset, so that no reader has to guess the zone. */
export function hl7Time(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const offset = -d.getTimezoneOffset();
  const zone = `${offset < 0 ? '-' : '+'}${p(Math.floor(Math.abs(offset) / 60))}${p(Math.abs(offset) % 60)}`;
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}${zone}`;
}

/**
 * An HL7 TS/DTM: `YYYY[MM[DD[HH[MM[SS[.S...]]]]]][+/-ZZZZ]`; with an offset it is that instant,
 * without one a wall-clock time in `timeZone` (the site's), or in the machine's zone when none is
 * given. Undefined when it is empty; an invalid date when it is not a time (a 31 February too).
 */
export function parseHl7Time(text: string, timeZone?: string): Date | undefined {
  const t = text.trim();
  if (t === '') return undefined;
  const m = /^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?([+-]\d{4})?$/.exec(t);
  if (!m) return new Date(Number.NaN);
  const [, y, mo, dd, h, mi, s, frac, zone] = m;
  const ms = frac ? Math.round(Number(`0.${frac}`) * 1000) : 0;
  const parts = [Number(y), Number(mo ?? 1) - 1, Number(dd ?? 1), Number(h ?? 0), Number(mi ?? 0), Number(s ?? 0), ms] as const;
  const wall = Date.UTC(...parts);
  const check = new Date(wall);
  if (
    parts[0] < 1000 ||
    check.getUTCMonth() !== parts[1] ||
    check.getUTCDate() !== parts[2] ||
    parts[3] > 23 ||
    parts[4] > 59 ||
    parts[5] > 59
  )
    return new Date(Number.NaN);
  if (zone) {
    // No zone is more than 14 hours from UTC: `+9999` is a typing error, not an instant to compute.
    if (Number(zone.slice(1, 3)) > 14 || Number(zone.slice(3, 5)) > 59) return new Date(Number.NaN);
    const offset = (zone[0] === '-' ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(3, 5)));
    return new Date(wall - offset * 60_000);
  }
  if (timeZone === undefined) return new Date(...parts);
  return new Date(instantOfWallClock(wall, (at) => zoneOffset(timeZone, at)));
}
