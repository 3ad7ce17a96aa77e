// XML result files read as text arrives (saxes): only the element that is one record is built as a
// small tree; of the elements around it the reader keeps their attributes and the text of their
// first leaf children (`<Sample id="S-1"><Time>...</Time><Analyte .../></Sample>`), so a field path
// may reach out of the record (`../@id`, `../Time`) without the file ever being held whole.
import { SaxesParser } from 'saxes';
import { FileProblem } from './decode.js';
import { parseXmlPath, type XmlStep } from './paths.js';

/** Text and attributes of one record element, at most: a runaway element is refused, not held. */
export const MAX_RECORD_CHARS = 1024 * 1024;
/** Leaf children an enclosing element keeps (by name, the first of each), and the length of their text. */
const MAX_LEAVES = 64;
/** Elements around a record, at most: each one kept costs memory whatever its size. */
const MAX_DEPTH = 256;
const MAX_LEAF_CHARS = 4096;
/**
 * Characters the parser may take without a single event, at most: saxes holds a text, a tag, an
 * attribute value or a comment whole until its end, so a file of one endless text would be held
 * whole. Text outside records (an embedded image, say) may be large, within this.
 */
export const MAX_PIECE_CHARS = 8 * 1024 * 1024;
/** What an element inside a record costs, besides its name, attributes and text. */
const NODE_CHARS = 32;

interface XmlNode {
  name: string;
  attrs: Record<string, string>;
  children: XmlNode[];
  text: string;
}

/** An element around records: its attributes and its leaf children's text, no more. */
interface Frame {
  name: string;
  attrs: Record<string, string>;
  leaves: Map<string, string>;
  text: string;
  hasChildren: boolean;
  /** It matches the record path this far (its depth is the path's length: it is a record). */
  matches: boolean;
}

export interface XmlRecord {
  /** Line (from 1) where the record element ends. */
  line: number;
  /** The value at each path, in the order given to the reader. */
  values: Array<string | undefined>;
  /** The record element written back, for audit, when short. */
  raw: string | undefined;
}

const localName = (name: string) => name.slice(name.indexOf(':') + 1);

export class XmlReader {
  private readonly parser = new SaxesParser({ xmlns: false, position: true });
  private readonly record: XmlStep[];
  private readonly fields: XmlStep[][];
  private readonly frames: Frame[] = [];
  /** The record being built: its elements from the record element down. */
  private nodes: XmlNode[] = [];
  private chars = 0;
  /** Characters written to the parser since its last event (an overestimate by at most one piece). */
  private sinceEvent = 0;
  private error: Error | undefined;

  constructor(recordPath: string, fieldPaths: readonly string[], onRecord: (r: XmlRecord) => void) {
    this.record = parseXmlPath(recordPath, { absolute: true });
    this.fields = fieldPaths.map((p) => parseXmlPath(p));
    const p = this.parser;
    p.on('error', (err) => {
      this.error ??= err;
    });
    const event = () => {
      this.sinceEvent = 0;
    };
    // One handler per event in saxes: text, cdata, opentag and closetag note it in their own.
    for (const e of ['opentagstart', 'attribute', 'comment', 'processinginstruction', 'doctype', 'xmldecl'] as const) p.on(e, event);
    p.on('opentag', (tag) => {
      this.sinceEvent = 0;
      const name = localName(tag.name);
      const attrs: Record<string, string> = {};
      for (const [k, v] of Object.entries(tag.attributes)) attrs[localName(k)] = v;
      if (this.frames.length + this.nodes.length >= MAX_DEPTH)
        throw new FileProblem(`line ${this.parser.line}`, `elements nested deeper than ${MAX_DEPTH}`);
      if (this.nodes.length > 0) {
        this.grow(NODE_CHARS + name.length + Object.entries(attrs).reduce((n, [k, v]) => n + k.length + v.length, 0));
        const node: XmlNode = { name, attrs, children: [], text: '' };
        this.nodes.at(-1)!.children.push(node);
        this.nodes.push(node);
        return;
      }
      const parent = this.frames.at(-1);
      if (parent) parent.hasChildren = true;
      const depth = this.frames.length;
      const step = this.record[depth];
      const matches = (depth === 0 || parent!.matches) && step?.kind === 'element' && (step.name === '*' || step.name === name);
      if (matches && depth === this.record.length - 1) {
        this.chars = 0;
        this.nodes = [{ name, attrs, children: [], text: '' }];
        return;
      }
      this.frames.push({ name, attrs, leaves: new Map(), text: '', hasChildren: false, matches });
    });
    const onText = (text: string) => {
      this.sinceEvent = 0;
      const node = this.nodes.at(-1);
      if (node) {
        this.grow(text.length);
        node.text += text;
        return;
      }
      const frame = this.frames.at(-1);
      if (frame && frame.text.length < MAX_LEAF_CHARS) frame.text += text.slice(0, MAX_LEAF_CHARS - frame.text.length);
    };
    p.on('text', onText);
    p.on('cdata', onText);
    p.on('closetag', () => {
      this.sinceEvent = 0;
      if (this.nodes.length > 1) {
        this.nodes.pop();
        return;
      }
      if (this.nodes.length === 1) {
        const node = this.nodes.pop()!;
        // Not well-formed before here (an undefined entity left as "&b;"): that is the reason, not
        // what the mapping makes of the text.
        this.raise();
        onRecord({
          line: this.parser.line,
          values: this.fields.map((f) => this.valueAt(node, f)),
          raw: this.chars <= 4096 ? xmlText(node) : undefined,
        });
        return;
      }
      const frame = this.frames.pop()!;
      const parent = this.frames.at(-1);
      if (parent && !frame.hasChildren && parent.leaves.size < MAX_LEAVES && !parent.leaves.has(frame.name))
        parent.leaves.set(frame.name, frame.text);
    });
  }

  /** The line the text so far ends on (from 1). */
  get line(): number {
    return this.parser.line;
  }

  /** The next piece of text; the records it completes are handed over before this returns. */
  feed(text: string): void {
    this.parser.write(text);
    this.raise();
    this.sinceEvent += text.length;
    if (this.sinceEvent > MAX_PIECE_CHARS)
      throw new FileProblem(
        `line ${this.parser.line}`,
        `a text, tag, attribute or comment longer than ${MAX_PIECE_CHARS / 1024 / 1024} MiB (no markup in it: a broken file?)`,
      );
  }

  end(): void {
    this.parser.close();
    this.raise();
  }

  private raise(): void {
    if (!this.error) return;
    // saxes writes `LINE:COLUMN: message`: the place goes first, as for CSV.
    const m = /^(?:[^:\d][^:]*:)?(\d+):(\d+): (.*)$/s.exec(this.error.message);
    throw m
      ? new FileProblem(`line ${m[1]}`, `not well-formed XML: ${m[3]}`)
      : new FileProblem('', `not well-formed XML: ${this.error.message}`);
  }

  private grow(n: number): void {
    this.chars += n;
    if (this.chars > MAX_RECORD_CHARS)
      throw new FileProblem(`line ${this.parser.line}`, `a record element larger than ${MAX_RECORD_CHARS / 1024 / 1024} MiB`);
  }

  /** A path from the record element: down into it, or up into the elements around it. */
  private valueAt(node: XmlNode, steps: readonly XmlStep[]): string | undefined {
    let at: { node: XmlNode } | { frame: number } = { node };
    for (const step of steps) {
      if (step.kind === 'parent') {
        // Up from the record element is the innermost frame; up from a frame, the one around it.
        if ('node' in at) {
          if (at.node !== node) return undefined;
          at = { frame: this.frames.length - 1 };
        } else at = { frame: at.frame - 1 };
        if (at.frame < 0) return undefined;
      } else if (step.kind === 'attribute') {
        return 'node' in at ? at.node.attrs[step.name] : this.frames[at.frame]!.attrs[step.name];
      } else if ('node' in at) {
        const child: XmlNode | undefined = at.node.children.find((c) => step.name === '*' || c.name === step.name);
        if (!child) return undefined;
        at = { node: child };
      } else {
        // Around the record only leaf children are known: the path must end there.
        const frame = this.frames[at.frame]!;
        const text = step.name === '*' ? frame.leaves.values().next().value : frame.leaves.get(step.name);
        return steps.at(-1) === step ? text?.trim() : undefined;
      }
    }
    // An element's own text, not its children's: `<Analyte>5.21<Flag>H</Flag></Analyte>` is 5.21.
    return 'node' in at ? at.node.text.trim() : this.frames[at.frame]!.text.trim();
  }
}

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The record element written back as XML, for audit (LabResult.raw). */
function xmlText(node: XmlNode): string {
  const attrs = Object.entries(node.attrs)
    .map(([k, v]) => ` ${k}="${escape(v)}"`)
    .join('');
  const inner = escape(node.text.trim()) + node.children.map(xmlText).join('');
  return inner === '' ? `<${node.name}${attrs}/>` : `<${node.name}${attrs}>${inner}</${node.name}>`;
}
