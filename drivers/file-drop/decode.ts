// Bytes of a result file to text, chunk by chunk: a character split between two chunks is joined,
// and bytes that are not text in the declared encoding make the file unreadable, never U+FFFD in a
// sample id. Node's TextDecoder knows GBK and GB18030 (full ICU).
import { TextDecoder } from 'node:util';

/** A problem with the file's content: the file is rejected with this reason. */
export class FileProblem extends Error {
  constructor(
    /** Where in the file: `line 12`, `record 3`, `byte 1048576`; empty for the whole file. */
    readonly where: string,
    message: string,
  ) {
    super(message);
    this.name = 'FileProblem';
  }

  /** `line 12: value "abc" is not a number`, as the `.reason` file and the log give it. */
  get reason(): string {
    return this.where ? `${this.where}: ${this.message}` : this.message;
  }
}

/**
 * Text of the file quoted in a reason, cut to `max` characters: a reason goes to the log, the
 * `.reason` file, the lab event and the platform, and a cell may hold 8 MiB.
 */
export function clip(text: string, max = 80): string {
  return text.length <= max ? text : `${text.slice(0, max)}... (${text.length} characters)`;
}

const UTF8_BOM = [0xef, 0xbb, 0xbf];

/** Labels the XML declaration may give for the encodings files come in; anything else TextDecoder knows works too. */
const ALIASES: Record<string, string> = { gb2312: 'gbk', 'x-gbk': 'gbk', cp936: 'gbk', utf8: 'utf-8' };

export class ChunkDecoder {
  private decoder: TextDecoder | undefined;
  private offset = 0;

  /** `encoding`: as declared; a UTF-8 byte order mark overrides it. */
  constructor(private encoding: string) {}

  /**
   * The text of the next chunk (`last`: nothing follows, so a character left unfinished is a problem).
   * `line`: the line the text so far ends on, for the reason of bytes that are not text.
   */
  decode(bytes: Uint8Array, last: boolean, line: () => number): string {
    if (!this.decoder) {
      const bom = UTF8_BOM.every((b, i) => bytes[i] === b);
      const label = bom ? 'utf-8' : (ALIASES[this.encoding.toLowerCase()] ?? this.encoding.toLowerCase());
      try {
        // The UTF-8 decoder drops the mark itself (ignoreBOM: false).
        this.decoder = new TextDecoder(label, { fatal: true });
      } catch {
        throw new FileProblem('', `encoding "${this.encoding}" is not one this gateway reads (utf-8, gbk, gb18030)`);
      }
      this.encoding = label;
    }
    try {
      const text = this.decoder.decode(bytes, { stream: !last });
      this.offset += bytes.length;
      return text;
    } catch {
      if (last) {
        throw new FileProblem(
          `line ${line()}, end of file`,
          `not ${this.encoding.toUpperCase()} text (a character is cut: the file may be truncated) (is the encoding setting right?)`,
        );
      }
      throw new FileProblem(
        `line ${line() + this.linesBeforeBadByte(bytes)}`,
        `not ${this.encoding.toUpperCase()} text (is the encoding setting right?)`,
      );
    }
  }

  /**
   * Line ends in the chunk before its first byte that is not text, found by decoding it again with
   * replacement characters. A chunk after the first may start inside a character the last one began:
   * the few replacements that gives at its start are passed over.
   */
  private linesBeforeBadByte(bytes: Uint8Array): number {
    const loose = new TextDecoder(this.encoding).decode(bytes);
    let k = loose.indexOf('\uFFFD');
    if (this.offset > 0) while (k >= 0 && k < 3) k = loose.indexOf('\uFFFD', k + 1);
    const before = loose.slice(0, k < 0 ? 0 : k);
    return (before.match(/\r\n?|\n/g) ?? []).length;
  }
}

/** The encoding an XML declaration names in the file's first bytes, if any. */
export function declaredXmlEncoding(head: Uint8Array): string | undefined {
  const start = Buffer.from(head.subarray(0, 200)).toString('latin1');
  const m = /^(?:\uFEFF|\u00EF\u00BB\u00BF)?\s*<\?xml[^>]*\bencoding\s*=\s*["']([A-Za-z0-9._-]+)["']/.exec(start);
  return m?.[1];
}
