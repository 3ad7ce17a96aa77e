// A single linear pass over a site file's text, before the YAML parser sees it. The parser spends
// seconds and hundreds of MB on some texts before any of its own limits apply (1 MB of nested
// brackets: 3.7 s and 570 MB, to be refused afterwards as too deep; 100 kB of unclosed brackets
// exhausts the heap in a regular expression of the parser). This pass finds such texts in
// milliseconds: flow brackets nested too deeply, block indentation nested too deeply, and more
// anchors or aliases than any site file uses.
//
// It reads YAML the way the parser does only as far as it must to count these: quotes, comments
// and block scalars are skipped, and `[`, `{`, `&` and `*` count only where a node can start (a
// bracket inside a plain scalar such as `message: level [hi]` is text). Where it is unsure it
// counts less, never more: it is a guard in front of the exact checks made after parsing, and a
// file it lets through is still refused by those when it is too deep.

export interface PrescanLimits {
  maxDepth: number;
  maxAliasCount: number;
}

export interface PrescanProblem {
  message: string;
  /** 1-based line where the limit was crossed. */
  line: number;
}

export function prescanYaml(text: string, limits: PrescanLimits): PrescanProblem | undefined {
  const n = text.length;
  let line = 1;
  let i = 0;
  let flow = 0;
  // Columns of the block collections open at this point, innermost last.
  const indents: number[] = [];
  let anchors = 0;
  let aliases = 0;
  // At a place where a node may start (after indentation, `- `, `: `, `? `, `[`, `{`, `,`).
  let nodeStart = true;
  let lineIndent = 0;
  let lineStart = 0;
  // The same words as the exact check after parsing: the two are one limit.
  const tooDeep = (): PrescanProblem => ({ message: `nested too deeply: at most ${limits.maxDepth} levels of mappings and lists`, line });
  const isSpace = (c: string | undefined) => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === undefined;
  const isFlowIndicator = (c: string | undefined) => c === ',' || c === '[' || c === ']' || c === '{' || c === '}';

  const startLine = (): PrescanProblem | undefined => {
    // i is at the first character of a line, in block context.
    let col = 0;
    while (i < n && text[i] === ' ') {
      i++;
      col++;
    }
    const c = text[i];
    if (c === '\n' || c === '\r' || c === '#' || c === undefined) return undefined;
    lineIndent = col;
    while (indents.length > 0 && indents[indents.length - 1]! > col) indents.pop();
    if (indents.length === 0 || indents[indents.length - 1]! < col) indents.push(col);
    if (indents.length + flow > limits.maxDepth) return tooDeep();
    nodeStart = true;
    return undefined;
  };

  let p = startLine();
  if (p) return p;
  while (i < n) {
    const c = text[i]!;
    if (c === '\n') {
      line++;
      i++;
      lineStart = i;
      if (flow === 0) {
        p = startLine();
        if (p) return p;
      }
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '#' && (i === 0 || isSpace(text[i - 1]))) {
      while (i < n && text[i] !== '\n') i++;
      continue;
    }
    if (nodeStart) {
      if (c === '"' || c === "'") {
        // A quoted scalar, which may span lines; `\"` escapes in double quotes, `''` in single.
        i++;
        while (i < n) {
          const q = text[i]!;
          if (q === '\n') line++;
          if (c === '"' && q === '\\') i += text[i + 1] === '\n' ? 0 : 1;
          else if (q === c) {
            if (c === "'" && text[i + 1] === "'") i++;
            else break;
          }
          i++;
        }
        i++;
        nodeStart = false;
        continue;
      }
      if (c === '[' || c === '{') {
        flow++;
        if (indents.length + flow > limits.maxDepth) return tooDeep();
        i++;
        continue;
      }
      if (c === '&' || c === '*') {
        if (c === '&') anchors++;
        else aliases++;
        if (anchors > limits.maxAliasCount) return { message: `more than ${limits.maxAliasCount} anchors (&name)`, line };
        if (aliases > limits.maxAliasCount)
          return { message: `more than ${limits.maxAliasCount} aliases (*name): a YAML alias bomb?`, line };
        i++;
        while (i < n && !isSpace(text[i]) && !(flow > 0 && isFlowIndicator(text[i]))) i++;
        // After an anchor the node itself follows; an alias is the node.
        nodeStart = c === '&';
        continue;
      }
      if (c === '!') {
        while (i < n && !isSpace(text[i]) && !(flow > 0 && isFlowIndicator(text[i]))) i++;
        continue;
      }
      if ((c === '-' || c === '?' || c === ':') && isSpace(text[i + 1])) {
        i++;
        if (flow === 0 && c !== ':') {
          // `- - x` and `- key: x` open a collection at the column after the indicator.
          let col = i - lineStart;
          while (i < n && text[i] === ' ') {
            i++;
            col++;
          }
          if (text[i] !== '\n' && text[i] !== '\r' && text[i] !== '#' && i < n) {
            while (indents.length > 0 && indents[indents.length - 1]! >= col) indents.pop();
            indents.push(col);
            if (indents.length + flow > limits.maxDepth) return tooDeep();
          }
        }
        continue;
      }
      if (flow === 0 && (c === '|' || c === '>')) {
        // A block scalar: its lines are text, however they are indented or whatever they hold.
        while (i < n && text[i] !== '\n') i++;
        while (i < n) {
          let j = i + 1;
          let col = 0;
          while (j < n && text[j] === ' ') {
            j++;
            col++;
          }
          const blank = j >= n || text[j] === '\n' || text[j] === '\r';
          if (!blank && col <= lineIndent) break;
          line++;
          lineStart = i + 1;
          i = j;
          while (i < n && text[i] !== '\n') i++;
        }
        continue;
      }
    }
    if (flow > 0) {
      if (c === ']' || c === '}') {
        flow--;
        nodeStart = false;
      } else if (c === ',' || c === '[' || c === '{') {
        // A bracket after text in a flow collection is still a bracket (plain scalars cannot hold one there).
        if (c !== ',') {
          flow++;
          if (indents.length + flow > limits.maxDepth) return tooDeep();
        }
        nodeStart = true;
      } else if (c === ':' && (isSpace(text[i + 1]) || isFlowIndicator(text[i + 1]))) nodeStart = true;
      else nodeStart = false;
      i++;
      continue;
    }
    // Block context, inside a plain scalar or after a node: only `: ` starts another node on this line.
    if (c === ':' && isSpace(text[i + 1])) nodeStart = true;
    else nodeStart = false;
    i++;
  }
  return undefined;
}
