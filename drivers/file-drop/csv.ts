// CSV and TSV as instrument software writes them, read as text arrives: RFC 4180 quoting (a quoted
// field may hold delimiters, line ends and doubled quotes), any line end (LF, CRLF, a lone CR, even
// mixed), blank lines skipped. Our own small reader rather than csv-parse: that one settles on the
// first line's line end (a file with mixed ones keeps a CR in its fields) and counts lines loosely,
// and a `.reason` file must name the exact line of a bad row.
import { FileProblem } from './decode.js';

/** Characters of one row, at most: a file without line ends is refused, not held whole. */
export const MAX_ROW_CHARS = 8 * 1024 * 1024;

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

  constructor(
    private readonly opts: { delimiter: string; quote: string; skipLines: number },
    private readonly onRow: (row: CsvRow) => void,
  ) {
    this.skip = opts.skipLines;
  }

  /** The next piece of text; the rows it completes are handed over before this returns. */
  feed(text: string): void {
    const d = this.opts.delimiter;
    const q = this.opts.quote;
    let i = 0;
    if (this.quoteAtEnd && text.length > 0) {
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
    for (; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (this.cr) {
        this.cr = false;
        if (c === 10) {
          start = i + 1;
          continue;
        }
      }
      if (this.skip > 0) {
        if (c === 10 || c === 13) {
          this.skip--;
          this.newLine(c);
          this.rowLine = this.line;
        }
        start = i + 1;
        continue;
      }
      const ch = text[i]!;
      if (this.quoted) {
        if (ch === q) {
          this.field += text.slice(start, i);
          if (i + 1 === text.length) {
            this.quoteAtEnd = true;
            return this.check();
          }
          if (text[i + 1] === q) {
            this.field += q;
            i++;
          } else {
            this.quoted = false;
            this.closed = true;
          }
          start = i + 1;
        } else if (c === 10 || c === 13) {
          // A line end inside a quoted field is part of it; lines are still counted (CRLF once, across chunks too).
          if (!(c === 10 && this.quotedCr)) this.line++;
          this.quotedCr = c === 13;
          continue;
        }
        this.quotedCr = false;
        continue;
      }
      if (ch === d) {
        this.endField(text, start, i);
        start = i + 1;
      } else if (c === 10 || c === 13) {
        this.endField(text, start, i);
        this.endRow();
        this.newLine(c);
        this.rowLine = this.line;
        start = i + 1;
      } else if (this.closed) {
        throw new FileProblem(
          `line ${this.line}`,
          'text after the closing quote of a field (a quote inside a quoted field is written twice: "")',
        );
      } else if (ch === q && i === start && this.field === '') {
        this.quoted = true;
        start = i + 1;
      }
    }
    if (this.skip === 0 && start < text.length) this.field += text.slice(start);
    this.check();
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
