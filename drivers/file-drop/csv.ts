// CSV and TSV as instrument software writes them, read as text arrives: RFC 4180 quoting (a quoted
// field may hold delimiters, line ends and doubled quotes), any line end (LF, CRLF, a lone CR, even
// mixed), blank lines skipped. Our own small reader rather than csv-parse: that one settles on the
// first line's line end (a file with mixed ones keeps a CR in its fields) and counts lines loosely,
// and a `.reason` file must name the exact line of a bad row.
import { FileProblem } from './decode.js';

/** Characters of one row, at most: a file without line ends is refused, not held whole. */
export const MAX_ROW_CHARS = 8 * 1024 * 1024;

/** Fields of one row, at most: a row of a million empty fields is 8 MiB but some 100 MiB of strings held. */
export const MAX_ROW_FIELDS = 100_000;

const LINE_END = /[\r\n]/g;

export interface CsvRow {
  fields: string[];
  /** Line (from 1, in the file) where the row starts. */
  line: number;
}

export class CsvReader {
  private fields: string[] = [];
  private field = '';
  private rowChars = 0;
  private quoted = false;
  /** The quoted field was closed: only a delimiter or a line end may follow. */
  private closed = false;
  /** The last chunk ended on a quote inside a quoted field: the next character tells whether it was doubled. */
  private quoteAtEnd = false;
  /** A CR was the last character: an LF right after it belongs to the same line end. */
  private cr = false;
  /** The same inside a quoted field, where the line end is kept. */
  private quotedCr = false;
  private line = 1;
  private rowLine = 1;
  private skip: number;
  /** The characters that end or open something outside a quoted field. */
  private readonly special: RegExp;

  constructor(
    private readonly opts: { delimiter: string; quote: string; skipLines: number },
    private readonly onRow: (row: CsvRow) => void,
  ) {
    this.skip = opts.skipLines;
    const esc = (ch: string) => ch.replace(/[\\\]^-]/g, '\\$&');
    this.special = new RegExp(`[${esc(opts.delimiter)}${esc(opts.quote)}\\r\\n]`, 'g');
  }

  /** The line the text so far ends on (from 1). */
  get lineNow(): number {
    return this.line;
  }

  /** The next piece of text; the rows it completes are handed over before this returns. */
  feed(text: string): void {
    const q = this.opts.quote;
    const n = text.length;
    let i = 0;
    if (this.quoteAtEnd && n > 0) {
      this.quoteAtEnd = false;
      if (text[0] === q) {
        this.field += q;
        i = 1;
      } else {
        this.quoted = false;
        this.closed = true;
      }
    }
    let start = i;
    // Native searches jump from one character that matters to the next: a 30 KiB quoted curve is
    // one indexOf, not 30,000 steps of this loop.
    while (i < n) {
      if (this.cr) {
        this.cr = false;
        if (text.charCodeAt(i) === 10) {
          start = ++i;
          continue;
        }
      }
      if (this.skip > 0) {
        LINE_END.lastIndex = i;
        const m = LINE_END.exec(text);
        if (!m) {
          start = n;
          break;
        }
        this.skip--;
        this.newLine(text.charCodeAt(m.index));
        this.rowLine = this.line;
        start = i = m.index + 1;
        continue;
      }
      if (this.quoted) {
        const j = text.indexOf(q, i);
        const end = j < 0 ? n : j;
        this.countQuotedLines(text, i, end);
        if (j < 0) break;
        this.field += text.slice(start, j);
        this.quotedCr = false;
        if (j + 1 === n) {
          this.quoteAtEnd = true;
          return this.check();
        }
        if (text[j + 1] === q) {
          this.field += q;
          start = i = j + 2;
        } else {
          this.quoted = false;
          this.closed = true;
          start = i = j + 1;
        }
        continue;
      }
      this.special.lastIndex = i;
      const m = this.special.exec(text);
      const j = m ? m.index : n;
      if (this.closed && (j > i || text[j] === q))
        throw new FileProblem(
          `line ${this.line}`,
          'text after the closing quote of a field (a quote inside a quoted field is written twice: "")',
        );
      if (!m) break;
      const c = text.charCodeAt(j);
      if (c === 10 || c === 13) {
        this.endField(text, start, j);
        this.endRow();
        this.newLine(c);
        this.rowLine = this.line;
        start = i = j + 1;
      } else if (text[j] === q) {
        // A quote opens a quoted field only at its start; elsewhere it is text.
        if (j === start && this.field === '') {
          this.quoted = true;
          start = j + 1;
        }
        i = j + 1;
      } else {
        this.endField(text, start, j);
        start = i = j + 1;
      }
    }
    if (this.skip === 0 && start < n) this.field += text.slice(start);
    this.check();
  }

  /** Line ends inside a quoted field are part of it; lines are still counted (a CRLF once, across chunks too). */
  private countQuotedLines(text: string, from: number, to: number): void {
    LINE_END.lastIndex = from;
    for (let m = LINE_END.exec(text); m && m.index < to; m = LINE_END.exec(text)) {
      const k = m.index;
      const lf = text.charCodeAt(k) === 10;
      const afterCr = k === from ? this.quotedCr : text.charCodeAt(k - 1) === 13;
      if (!(lf && afterCr)) this.line++;
    }
    if (to > from) this.quotedCr = text.charCodeAt(to - 1) === 13;
  }

  /** The text has ended: a last row without its line end is still a row. */
  end(): void {
    if (this.quoteAtEnd) {
      this.quoteAtEnd = false;
      this.quoted = false;
      this.closed = true;
    }
    if (this.quoted) throw new FileProblem(`line ${this.rowLine}`, 'a quoted field is never closed (the file may be truncated)');
    if (this.fields.length > 0 || this.field !== '' || this.closed) {
      this.endField('', 0, 0);
      this.endRow();
    }
  }

  private newLine(c: number): void {
    this.line++;
    this.cr = c === 13;
  }

  private check(): void {
    if (this.rowChars + this.field.length > MAX_ROW_CHARS)
      throw new FileProblem(`line ${this.rowLine}`, `a row longer than ${MAX_ROW_CHARS / 1024 / 1024} MiB (no line ends?)`);
  }

  private endField(text: string, start: number, i: number): void {
    this.field += text.slice(start, i);
    this.rowChars += this.field.length + 1;
    this.fields.push(this.field);
    this.field = '';
    this.closed = false;
    this.check();
    if (this.fields.length > MAX_ROW_FIELDS) throw new FileProblem(`line ${this.rowLine}`, `a row of more than ${MAX_ROW_FIELDS} fields`);
  }

  private endRow(): void {
    const fields = this.fields;
    this.fields = [];
    this.rowChars = 0;
    // A blank line is no row.
    if (fields.length === 1 && fields[0] === '') return;
    this.onRow({ fields, line: this.rowLine });
  }
}

/** A row written back as CSV (quoted where needed), for audit: LabResult.raw. */
export function rowText(fields: readonly string[], delimiter: string, quote: string): string {
  return fields
    .map((f) =>
      f.includes(delimiter) || f.includes(quote) || f.includes('\n') || f.includes('\r')
        ? quote + f.split(quote).join(quote + quote) + quote
        : f,
    )
    .join(delimiter);
}
