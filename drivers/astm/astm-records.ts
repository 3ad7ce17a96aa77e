// ASTM E1394 / CLSI LIS2-A2 records (H header, P patient, O order, R result, C comment, Q query,
// L terminator) into lab results. Delimiters come from the header: `H|\^&` = field `|`, repeat `\`,
// component `^`, escape `&`.
import { resultIdFromContent, type LabResult } from '../common/result.js';

interface Delimiters {
  field: string;
  repeat: string;
  component: string;
  escape: string;
}

const STATUS: Record<string, string> = {
  F: 'final',
  P: 'preliminary',
  C: 'correction',
  X: 'cannot be done',
  I: 'pending',
  S: 'partial',
  M: 'MIC',
  R: 'previously transmitted',
  N: 'new',
};

export class AstmRecordError extends Error {
  override name = 'AstmRecordError';
}

/** The results of one message; a message whose records do not parse is refused whole. */
export function resultsOf(records: readonly string[], instrument: string): LabResult[] {
  const header = records[0];
  if (!header?.startsWith('H') || header.length < 5) throw new AstmRecordError('the message does not start with a header record (H)');
  const d: Delimiters = { field: header[1]!, repeat: header[2]!, component: header[3]!, escape: header[4]! };
  const unescape = (s: string) =>
    s
      .replaceAll(`${d.escape}F${d.escape}`, d.field)
      .replaceAll(`${d.escape}S${d.escape}`, d.component)
      .replaceAll(`${d.escape}R${d.escape}`, d.repeat)
      .replaceAll(`${d.escape}E${d.escape}`, d.escape);
  const fieldsOf = (record: string) => record.split(d.field);
  const components = (field: string | undefined) => (field ?? '').split(d.component).map(unescape);
  const headerFields = fieldsOf(header);
  const messageTime = parseTime(headerFields[13]);
  const out: LabResult[] = [];
  let sampleId: string | undefined;
  let operatorOfOrder: string | undefined;
  for (const [k, record] of records.entries()) {
    const f = fieldsOf(record);
    switch (record[0]) {
      case 'O': {
        // Specimen id (field 3), or the instrument's specimen id (field 4).
        const id = components(f[2])[0] || components(f[3])[0];
        if (!id) throw new AstmRecordError(`record ${k + 1} (O): no specimen id in fields 3 or 4`);
        if (!/^[\x20-\x7e]{1,64}$/.test(id))
          throw new AstmRecordError(
            `record ${k + 1} (O): specimen id ${JSON.stringify(id)} is not printable text of at most 64 characters`,
          );
        sampleId = id;
        operatorOfOrder = undefined;
        break;
      }
      case 'R': {
        if (!sampleId) throw new AstmRecordError(`record ${k + 1} (R): a result before any order record (O) with its specimen id`);
        const test = components(f[2]);
        const analyte = test[3] || test.filter(Boolean).at(-1);
        if (!analyte) throw new AstmRecordError(`record ${k + 1} (R): no test id in field 3`);
        const rawValue = unescape(f[3] ?? '').trim();
        const number = Number(rawValue);
        const value =
          rawValue === '' ? null : Number.isFinite(number) && /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(rawValue) ? number : rawValue;
        const unit = unescape(f[4] ?? '').trim() || undefined;
        const reference = parseRange(unescape((f[5] ?? '').replaceAll(d.component, '-')));
        const flags = (f[6] ?? '').split(d.repeat).map(unescape).filter(Boolean);
        const status = STATUS[(f[8] ?? '').trim()] ?? ((f[8] ?? '').trim() || 'final');
        const operator = components(f[10])[0] || operatorOfOrder;
        const resultAt = parseTime(f[12]) ?? parseTime(f[11]) ?? messageTime;
        if (!resultAt) throw new AstmRecordError(`record ${k + 1} (R): no completion time (field 13) and no message time in the header`);
        const base = {
          instrument,
          sampleId,
          analyte,
          value,
          ...(unit ? { unit } : {}),
          flags,
          status,
          resultAt: resultAt.toISOString(),
          ...(operator ? { operator } : {}),
          ...(reference ? { reference } : {}),
        };
        out.push({ resultId: resultIdFromContent(base), ...base, raw: record });
        break;
      }
      case 'H':
      case 'P':
      case 'C':
      case 'M':
      case 'S':
      case 'Q':
      case 'L':
        break;
      default:
        throw new AstmRecordError(`record ${k + 1}: unknown record type ${JSON.stringify(record[0] ?? '')}`);
    }
  }
  return out;
}

/** `YYYYMMDD[HHMM[SS]]` in the instrument's (and gateway's) local time. */
function parseTime(text: string | undefined): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})?(\d{2})?(\d{2})?/.exec((text ?? '').trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m;
  const date = new Date(Number(y), Number(mo) - 1, Number(d), Number(h ?? 0), Number(mi ?? 0), Number(s ?? 0));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** `3.9-6.1`, `3.9 to 6.1`, `<5`, `>1`. */
function parseRange(text: string): { lo?: number; hi?: number } | undefined {
  const t = text.trim();
  if (!t) return undefined;
  let m = /^(-?[\d.]+)\s*(?:-|to)\s*(-?[\d.]+)$/.exec(t);
  if (m) return { lo: Number(m[1]), hi: Number(m[2]) };
  m = /^<\s*(-?[\d.]+)$/.exec(t);
  if (m) return { hi: Number(m[1]) };
  m = /^>\s*(-?[\d.]+)$/.exec(t);
  if (m) return { lo: Number(m[1]) };
  return undefined;
}
