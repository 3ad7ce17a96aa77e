// HL7 acknowledgements (original mode): MSA-1 AA (taken), AE (it cannot be taken: the reason in
// MSA-3 and ERR, sending it again will not help) or AR (refused for now: a bound, the store failing;
// the sender sends it again). An ACK is written in the message's delimiters, version and character
// set, with a control id of its own and MSA-2 = the message's control id.
import {
  DEFAULT_DELIMITERS,
  decode,
  delimitersOf,
  encode,
  errorText,
  escape,
  hl7Time,
  MSH18_OF,
  type Charset,
  type Delimiters,
  type ErrorCode,
  type Hl7Error,
  type Hl7Message,
} from './hl7-message.js';

export type AckCode = 'AA' | 'AE' | 'AR';

/** What the ACK echoes of the message it answers: as much as could be read of it. */
export interface AckHeader {
  delimiters: Delimiters;
  charset: Charset;
  /** MSH-3 to MSH-6 of the message, as sent (escaped). */
  sendingApplication: string;
  sendingFacility: string;
  receivingApplication: string;
  receivingFacility: string;
  /** MSH-10 as sent: MSA-2 echoes it unchanged, for the sender to match it to the message. */
  controlId: string;
  processingId: string;
  version: string;
}

/** The header of a parsed message. */
export function headerOf(m: Hl7Message): AckHeader {
  return {
    delimiters: m.delimiters,
    charset: m.charset,
    sendingApplication: m.msh.raw(3),
    sendingFacility: m.msh.raw(4),
    receivingApplication: m.msh.raw(5),
    receivingFacility: m.msh.raw(6),
    controlId: m.msh.raw(10),
    processingId: m.msh.raw(11),
    version: m.version,
  };
}

/**
 * The header of a message that could not be parsed (bad MSH, a charset it does not have), read as
 * far as it goes: an AE or AR must still name the control id when there is one. Only printable ASCII
 * is echoed; the ACK is then plain ASCII.
 */
export function headerOfBytes(bytes: Uint8Array): AckHeader {
  const text = decode(bytes.subarray(0, Math.min(bytes.length, 4096)), 'latin1');
  // As parseMessage reads it: a UTF-8 byte order mark and line ends before MSH skipped.
  const first = text.replace(/^(\u00ef\u00bb\u00bf)?[\r\n]*/, '').split(/\r|\n/)[0] ?? '';
  let d = DEFAULT_DELIMITERS;
  try {
    d = delimitersOf(first);
  } catch {
    // No usable MSH: the ACK has the standard delimiters and echoes nothing.
    return { ...blank(d), charset: 'latin1' };
  }
  const fields = ['MSH', d.field, ...first.split(d.field).slice(1)];
  const ascii = (n: number, first = false) => {
    let v = fields[n] ?? '';
    if (first) v = v.split(d.repetition)[0]!.split(d.component)[0]!;
    return /^[\x20-\x7e]{0,199}$/.test(v) ? v : '';
  };
  return {
    delimiters: d,
    charset: 'latin1',
    sendingApplication: ascii(3),
    sendingFacility: ascii(4),
    receivingApplication: ascii(5),
    receivingFacility: ascii(6),
    controlId: ascii(10),
    processingId: ascii(11),
    version: ascii(12, true),
  };
}

function blank(d: Delimiters): Omit<AckHeader, 'charset'> {
  return {
    delimiters: d,
    sendingApplication: '',
    sendingFacility: '',
    receivingApplication: '',
    receivingFacility: '',
    controlId: '',
    processingId: '',
    version: '',
  };
}

let sequence = 0;

/** A control id for an ACK: unique in this process and across restarts (the time), at most 20 characters (MSH-10 in 2.3.1). */
export function ackControlId(now = Date.now()): string {
  sequence = (sequence + 1) % 1_000_000;
  return `A${now.toString(36).toUpperCase()}${sequence.toString(36).toUpperCase().padStart(4, '0')}`;
}

/**
 * The ACK's bytes (without MLLP framing), in the message's charset. An ACK answers in the message's
 * version when it is one the gateway knows, else in 2.5.1; the ERR segment is written the way that
 * version has it (2.5 on: ERR-3 and ERR-4; before: ERR-1).
 */
export function buildAck(
  header: AckHeader,
  code: AckCode,
  error?: Pick<Hl7Error, 'message' | 'code' | 'location'>,
  now = new Date(),
): Buffer {
  const d = header.delimiters;
  const f = d.field;
  const version = /^2\.\d(\.\d)?$/.test(header.version) ? header.version : '2.5.1';
  const charsetField = header.charset === 'latin1' ? '' : MSH18_OF[header.charset];
  const msh = [
    `MSH${f}${d.component}${d.repetition}${d.escape}${d.subcomponent}`,
    header.receivingApplication || 'GATEWAY',
    header.receivingFacility,
    header.sendingApplication,
    header.sendingFacility,
    hl7Time(now),
    '',
    `ACK${d.component}R01${d.component}ACK`,
    ackControlId(now.getTime()),
    header.processingId || 'P',
    version,
    '',
    '',
    '',
    '',
    '',
    charsetField,
  ].join(f);
  const segments = [msh];
  // MSA-3 (text message) is 80 characters at most; ERR carries the whole reason.
  const reason = error ? escape(error.message.slice(0, 80), d) : '';
  segments.push(['MSA', code, header.controlId, ...(error ? [reason] : [])].join(f));
  if (error) segments.push(errSegment(error, d, version));
  return encode(`${segments.join('\r')}\r`, header.charset);
}

function errSegment(error: Pick<Hl7Error, 'message' | 'code' | 'location'>, d: Delimiters, version: string): string {
  const f = d.field;
  const c = d.component;
  const s = d.subcomponent;
  const code: ErrorCode = error.code;
  const loc = error.location;
  const text = escape(error.message.slice(0, 250), d);
  if (Number(version.slice(2, 3)) >= 5) {
    // ERR-2 location (segment^sequence^field), ERR-3 code (table 0357), ERR-4 severity, ERR-8 user message.
    const location = loc ? [loc.segment, loc.sequence, loc.field ?? ''].join(c) : '';
    return ['ERR', '', location, [code, escape(errorText(code), d), 'HL70357'].join(c), 'E', '', '', '', text].join(f);
  }
  // 2.3.1 and 2.4: ERR-1 (segment^sequence^field^code&text&table).
  const where = loc ? [loc.segment, loc.sequence, loc.field ?? ''] : ['', '', ''];
  return ['ERR', [...where, [code, text, 'HL70357'].join(s)].join(c)].join(f);
}
