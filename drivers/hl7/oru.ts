// ORU^R01 (unsolicited observation results) into lab results: one result per OBX, with the sample id
// of its order (SPM-2, OBR-3 or OBR-2, in the order the connection says), its analyte (OBX-3), value
// (OBX-5 read by its type, OBX-2), unit, reference range, abnormal flags, status and time. A message
// either gives all its results or is refused whole with the reason, which goes back in the ACK.
import { createHash } from 'node:crypto';
import type { LabResult } from '../common/result.js';
import { ERROR_CODES, Hl7Error, parseHl7Time, type Hl7Message, type Segment } from './hl7-message.js';
import type { SampleIdField } from './schema.js';

/** Versions whose ORU^R01 the driver reads (the fields it reads are the same in all of them). */
export const VERSIONS = ['2.3', '2.3.1', '2.4', '2.5', '2.5.1', '2.6', '2.7', '2.7.1', '2.8', '2.8.1', '2.8.2'] as const;

/** OBX-11, HL7 table 0085, in the words the other lab drivers use. */
const STATUS: Record<string, string> = {
  F: 'final',
  P: 'preliminary',
  C: 'correction',
  R: 'not verified',
  S: 'partial',
  X: 'cannot be done',
  I: 'pending',
  D: 'deleted',
  U: 'final',
  W: 'wrong',
  N: 'not asked',
  O: 'order detail',
};

/** OBX-2 value types read as text; NM and SN are numbers; any other type (ED, RP...) is no result. */
const TEXT_TYPES = new Set(['ST', 'TX', 'FT', 'CE', 'CWE', 'CNE', 'CF', 'IS', 'ID', 'DT', 'TM', 'DTM', 'TS']);

// The platform's bounds on a result body (gateway/platform/contract.ts): a message with a longer
// field is refused with the reason rather than taken and then refused by the platform.
const MAX = { sampleId: 200, analyte: 200, unit: 100, flag: 20, flags: 50, value: 1000, status: 100 } as const;

export interface OruOptions {
  instrument: string;
  /** Where the sample id is read, the first field that has one wins. */
  sampleIdFrom: readonly SampleIdField[];
  /** The site's time zone, for times sent without an offset; the machine's when undefined. */
  timeZone?: string | undefined;
  /** A field that marks the instrument's QC messages or orders (`MSH-16` = `2`...), besides SPM-11 = Q. */
  controlFlag?: { field: string; values: readonly string[] } | undefined;
}

export interface OruResults {
  results: LabResult[];
  /** OBX segments that are no result: a value type the gateway does not read (an image, a reference pointer). */
  skipped: number;
}

/** The message header checks: the type and version the driver reads, and a control id to answer. */
export function checkHeader(m: Hl7Message): void {
  const at = (field: number) => ({ segment: 'MSH', sequence: 1, field });
  if (m.controlId === '') throw new Hl7Error('MSH-10 (message control id) is empty', ERROR_CODES.requiredFieldMissing, at(10));
  if (m.controlId.length > 199)
    throw new Hl7Error('MSH-10 (message control id) is longer than 199 characters', ERROR_CODES.dataType, at(10));
  if (!(VERSIONS as readonly string[]).includes(m.version))
    throw new Hl7Error(
      `version ${JSON.stringify(m.version.slice(0, 20))} (MSH-12) is not supported: ${VERSIONS[0]} to ${VERSIONS.at(-1)}`,
      ERROR_CODES.unsupportedVersion,
      at(12),
    );
  // ORU without its event (senders of 2.3 leave MSH-9.2 out) can only be R01 here.
  if (m.type !== 'ORU' || (m.event !== 'R01' && m.event !== ''))
    throw new Hl7Error(
      `message type ${JSON.stringify(`${m.type}^${m.event}`.slice(0, 20))} (MSH-9) is not supported: only ORU^R01 results are taken`,
      ERROR_CODES.unsupportedMessageType,
      at(9),
    );
}

/**
 * The results of an ORU^R01. Their ids are stable: the instrument, the sender (MSH-3 and MSH-4), the
 * message's control id (MSH-10), the OBX's place in the message and a digest of the result's content,
 * so a message sent again gives the same ids and is taken once, and a control id reused for other
 * results loses none of them.
 */
export function resultsOfOru(m: Hl7Message, opts: OruOptions): OruResults {
  checkHeader(m);
  const sender = `${m.msh.get(3)}^${m.msh.get(4)}`;
  const idBase = resultIdBase(opts.instrument, sender, m.controlId);
  const time = (s: Segment, field: number, sequence: number) => timeOf(s, field, sequence, opts.timeZone);
  const messageTime = time(m.msh, 7, 1);
  const flaggedControl = opts.controlFlag ? isFlagged(m, opts.controlFlag) : false;
  const results: LabResult[] = [];
  let skipped = 0;
  let observations = 0;
  let order:
    | { obr: Segment; sequence: number; spm?: Segment | undefined; pending: Array<{ obx: Segment; sequence: number; ordinal: number }> }
    | undefined;
  const sequences = new Map<string, number>();

  const flush = () => {
    if (!order) return;
    const { obr, spm } = order;
    const sampleId = sampleIdOf(obr, order.sequence, spm, opts.sampleIdFrom);
    const control = flaggedControl || spm?.get(11).toUpperCase() === 'Q';
    const orderTime = time(obr, 7, order.sequence) ?? time(obr, 22, order.sequence);
    for (const { obx, sequence, ordinal } of order.pending) {
      const r = resultOf(obx, sequence, {
        sampleId,
        orderTime,
        messageTime,
        control,
        instrument: opts.instrument,
        timeZone: opts.timeZone,
      });
      if (r === undefined) {
        skipped++;
        continue;
      }
      results.push({ resultId: `${idBase}:${ordinal}:${contentDigest(sampleId, obx, obr)}`, ...r });
    }
    order = undefined;
  };

  for (const s of m.segments) {
    const sequence = (sequences.get(s.name) ?? 0) + 1;
    sequences.set(s.name, sequence);
    if (s.name === 'OBR') {
      flush();
      order = { obr: s, sequence, pending: [] };
    } else if (s.name === 'OBX') {
      observations++;
      if (!order)
        throw new Hl7Error(`OBX ${sequence} comes before any OBR: an observation without its order`, ERROR_CODES.segmentSequence, {
          segment: 'OBX',
          sequence,
        });
      order.pending.push({ obx: s, sequence, ordinal: observations });
    } else if (s.name === 'SPM' && order) {
      // 2.5.1: the order's specimen; its OBX segments (specimen observations) are taken as results too.
      order.spm ??= s;
    }
  }
  flush();
  if (observations === 0)
    throw new Hl7Error('the message has no OBX segment: no result to take', ERROR_CODES.requiredFieldMissing, {
      segment: 'OBX',
      sequence: 1,
    });
  return { results, skipped };
}

/**
 * What the result is, apart from the message that carried it: its sample, its OBX as sent and its
 * order's times. A message sent again (even with a new MSH-7) gives the same digest; an analyzer that
 * starts its control ids again after a restart, and so reuses one for other results, gives others,
 * and those results are captured rather than taken for ones already captured.
 */
function contentDigest(sampleId: string, obx: Segment, obr: Segment): string {
  return createHash('sha256')
    .update([sampleId, obx.text, obr.raw(7), obr.raw(22)].join('\u0000'))
    .digest('hex')
    .slice(0, 8);
}

/** Instrument, sender and control id, readable when short, hashed when they would make an id over the platform's 200 characters. */
function resultIdBase(instrument: string, sender: string, controlId: string): string {
  const readable = `${instrument}:${sender}:${controlId}`;
  if (readable.length <= 180 && /^[\x21-\x7e]*$/.test(readable)) return readable;
  return `${instrument}:${createHash('sha256').update(`${sender}\u0000${controlId}`).digest('hex').slice(0, 32)}`;
}

function isFlagged(m: Hl7Message, flag: { field: string; values: readonly string[] }): boolean {
  const [name, field, component] = parseFieldPath(flag.field);
  const values = m.segments.filter((s) => s.name === name).map((s) => s.get(field, component));
  return values.some((v) => flag.values.includes(v));
}

/** `MSH-16`, `OBR-11.1`: segment, field, component. */
export function parseFieldPath(path: string): [string, number, number] {
  const m = /^([A-Z][A-Z0-9]{2})-(\d{1,3})(?:\.(\d{1,2}))?$/.exec(path);
  if (!m) throw new Error(`Not an HL7 field path (SEG-n or SEG-n.c): ${JSON.stringify(path)}`);
  return [m[1]!, Number(m[2]), Number(m[3] ?? 1)];
}

function sampleIdOf(obr: Segment, sequence: number, spm: Segment | undefined, from: readonly SampleIdField[]): string {
  for (const f of from) {
    // SPM-2 is an EIP: the placer's id (component 1), the filler's (component 2), each an EI whose first subcomponent is the id.
    const id = f === 'SPM-2' ? (spm ? spm.get(2, 1, 1) || spm.get(2, 2, 1) : '') : f === 'OBR-3' ? obr.get(3, 1) : obr.get(2, 1);
    if (id === '') continue;
    if (id.length > MAX.sampleId || /\p{Cc}/u.test(id))
      throw new Hl7Error(`${f} sample id is not text of at most ${MAX.sampleId} characters`, ERROR_CODES.dataType, {
        segment: f.slice(0, 3),
        sequence,
        field: Number(f.slice(4)),
      });
    return id;
  }
  throw new Hl7Error(`OBR ${sequence} has no sample id (${from.join(', ')} are empty)`, ERROR_CODES.requiredFieldMissing, {
    segment: 'OBR',
    sequence,
    field: Number(from[0]!.slice(4)),
  });
}

function timeOf(s: Segment, field: number, sequence: number, timeZone: string | undefined): Date | undefined {
  const d = parseHl7Time(s.get(field, 1), timeZone);
  if (d && Number.isNaN(d.getTime()))
    throw new Hl7Error(
      `${s.name}-${field} ${JSON.stringify(s.get(field, 1).slice(0, 30))} is not an HL7 time (YYYYMMDDHHMMSS)`,
      ERROR_CODES.dataType,
      {
        segment: s.name,
        sequence,
        field,
      },
    );
  return d;
}

interface OrderContext {
  sampleId: string;
  orderTime: Date | undefined;
  messageTime: Date | undefined;
  control: boolean;
  instrument: string;
  timeZone: string | undefined;
}

function resultOf(obx: Segment, sequence: number, c: OrderContext): Omit<LabResult, 'resultId'> | undefined {
  const at = (field: number) => ({ segment: 'OBX', sequence, field });
  const type = obx.get(2, 1).toUpperCase();
  if (type !== '' && type !== 'NM' && type !== 'SN' && !TEXT_TYPES.has(type)) return undefined;
  const code = obx.get(3, 1);
  const analyte = code || obx.get(3, 2);
  if (analyte === '') throw new Hl7Error(`OBX ${sequence}: no observation identifier (OBX-3)`, ERROR_CODES.requiredFieldMissing, at(3));
  // An escape (\X0A\, \.br\) can put a line break or a NUL in a name: it would split an InfluxDB line or a log line.
  if (analyte.length > MAX.analyte || /\p{Cc}/u.test(analyte))
    throw new Hl7Error(
      `OBX ${sequence}: OBX-3 is not text of at most ${MAX.analyte} characters without control characters`,
      ERROR_CODES.dataType,
      at(3),
    );
  const statusCode = obx.get(11).toUpperCase();
  const status = STATUS[statusCode] ?? (statusCode.toLowerCase() || 'final');
  if (status.length > MAX.status || /\p{Cc}/u.test(status))
    throw new Hl7Error(
      `OBX ${sequence}: OBX-11 is not a result status of at most ${MAX.status} characters`,
      ERROR_CODES.tableValue,
      at(11),
    );
  const value = valueOf(obx, sequence, type);
  const unit = obx.get(6, 1) || obx.get(6, 2);
  if (unit.length > MAX.unit || /\p{Cc}/u.test(unit))
    throw new Hl7Error(
      `OBX ${sequence}: OBX-6 is not text of at most ${MAX.unit} characters without control characters`,
      ERROR_CODES.dataType,
      at(6),
    );
  const flags = obx
    .repetitions(8)
    .map((_, k) => obx.get(8, 1, 1, k))
    .filter(Boolean);
  if (flags.length > MAX.flags || flags.some((f) => f.length > MAX.flag))
    throw new Hl7Error(
      `OBX ${sequence}: OBX-8 has more than ${MAX.flags} flags or one longer than ${MAX.flag} characters`,
      ERROR_CODES.dataType,
      at(8),
    );
  const resultAt = timeOf(obx, 14, sequence, c.timeZone) ?? c.orderTime ?? c.messageTime;
  if (!resultAt)
    throw new Hl7Error(`OBX ${sequence}: no observation time (OBX-14, OBR-7, OBR-22 or MSH-7)`, ERROR_CODES.requiredFieldMissing, at(14));
  const reference = parseRange(obx.get(7));
  const operator = obx.get(16, 2) ? [obx.get(16, 2), obx.get(16, 3)].filter(Boolean).join(' ') : obx.get(16, 1);
  const method = obx.get(17, 2) || obx.get(17, 1) || obx.get(18, 1);
  return {
    instrument: c.instrument,
    sampleId: c.sampleId,
    analyte,
    value,
    ...(unit ? { unit } : {}),
    flags,
    status,
    resultAt: resultAt.toISOString(),
    ...(operator ? { operator: operator.slice(0, 200) } : {}),
    ...(method ? { method: method.slice(0, 200) } : {}),
    ...(reference ? { reference } : {}),
    ...(c.control ? { control: {} } : {}),
    raw: obx.text,
  };
}

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/**
 * The number a text writes, when a double holds it: `1e309` (Infinity, which JSON writes as null) and
 * `1e-400` (which would read as 0) are not taken as numbers.
 */
function numberOf(text: string): number | undefined {
  if (!NUMBER.test(text)) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n)) return undefined;
  if (n === 0 && /[1-9]/.test(text.split(/[eE]/)[0]!)) return undefined;
  return n;
}

function valueOf(obx: Segment, sequence: number, type: string): number | string | null {
  const at = { segment: 'OBX', sequence, field: 5 };
  const raw = obx.raw(5);
  // No value: a result that could not be obtained (X), a deletion (D), an order detail (O).
  if (raw.trim() === '') return null;
  if (obx.repetitions(5).length > 1 && (type === 'NM' || type === 'SN'))
    throw new Hl7Error(`OBX ${sequence}: OBX-5 repeats; a ${type} result has one value`, ERROR_CODES.dataType, at);
  // Without OBX-2, a value that reads as a number is one; any other is text.
  const number = type === 'NM' || type === '' ? numberOf(obx.get(5).trim()) : undefined;
  if (number !== undefined) return number;
  if (type === 'NM')
    throw new Hl7Error(
      `OBX ${sequence}: OBX-5 ${JSON.stringify(obx.get(5).trim().slice(0, 40))} is not a number (OBX-2 is NM)`,
      ERROR_CODES.dataType,
      at,
    );
  if (type === 'SN') {
    // Structured numeric: comparator ^ number [^ separator ^ number]: `^5.2`, `<^0.5`, `^1^:^128`.
    const [comparator = '', n1 = '', separator = '', n2 = ''] = obx.components(5).map((x) => x.trim());
    if (numberOf(n1) === undefined || (n2 !== '' && numberOf(n2) === undefined) || !/^(|[<>]=?|<>|=)$/.test(comparator))
      throw new Hl7Error(
        `OBX ${sequence}: OBX-5 ${JSON.stringify(obx.get(5, 1).slice(0, 40))} is not a structured numeric (OBX-2 is SN)`,
        ERROR_CODES.dataType,
        at,
      );
    if ((comparator === '' || comparator === '=') && separator === '' && n2 === '') return Number(n1);
    return `${comparator}${n1}${separator}${n2}`;
  }
  // Text: a coded value is shown by its text (component 2) when it has one; repetitions joined.
  const coded = type === 'CE' || type === 'CWE' || type === 'CNE' || type === 'CF';
  const parts = obx.repetitions(5).map((_, k) => {
    const comps = obx.components(5, k);
    return (
      (coded ? comps[1] || comps[0] : type === 'TX' || type === 'FT' || type === 'ST' ? obx.unescape(obx.repetitions(5)[k]!) : comps[0]) ??
      ''
    );
  });
  const text = parts.join(type === 'TX' || type === 'FT' ? '\n' : '; ').trim();
  if (text.length > MAX.value)
    throw new Hl7Error(`OBX ${sequence}: OBX-5 is longer than ${MAX.value} characters`, ERROR_CODES.dataType, at);
  return text;
}

/** `3.9-6.1`, `3.9 - 6.1`, `3.9 to 6.1`, `<5`, `>1`, `-2--1`. */
export function parseRange(text: string): { lo?: number; hi?: number } | undefined {
  const t = text.trim();
  if (!t) return undefined;
  // A bound of 400 digits is Infinity, which JSON writes as null: such a range is not read.
  const finite = (r: { lo?: number; hi?: number }) => (Object.values(r).every(Number.isFinite) ? r : undefined);
  let m = /^(-?\d*\.?\d+)\s*(?:-|to|~)\s*(-?\d*\.?\d+)$/.exec(t);
  if (m) return finite({ lo: Number(m[1]), hi: Number(m[2]) });
  m = /^<=?\s*(-?\d*\.?\d+)$/.exec(t);
  if (m) return finite({ hi: Number(m[1]) });
  m = /^>=?\s*(-?\d*\.?\d+)$/.exec(t);
  if (m) return finite({ lo: Number(m[1]) });
  return undefined;
}
