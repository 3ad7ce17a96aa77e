// The rule expression language: comparisons, arithmetic and logic over an equipment's points and
// limits, compiled once into closures. No eval, no property access: a name is a point or a limit,
// resolved when the rule is compiled, and nothing else can be reached.
//
//   expr    := or
//   or      := and (("||" | "or") and)*
//   and     := not (("&&" | "and") not)*
//   not     := ("!" | "not") not | compare
//   compare := sum (("<" | "<=" | ">" | ">=" | "==" | "!=") sum)?
//   sum     := product (("+" | "-") product)*
//   product := unary (("*" | "/" | "%") unary)*
//   unary   := "-" unary | primary
//   primary := number | string | true | false | name | name "(" args ")" | "(" expr ")"

export type Value = number | boolean | string;

/** Where a compiled expression reads point values. `undefined`: no usable (good) value. */
export interface Scope {
  point(name: string): Value | undefined;
  /**
   * While an alarm is active its comparisons hold on by this much (hysteresis): `x <= -200` with a
   * deadband of 10 stays true until x rises above -190.
   */
  deadband: number;
  active: boolean;
}

/**
 * Bounds on what one expression may cost to compile and evaluate: far beyond any real rule, far
 * below what exhausts the stack (parsing recurses once per level of nesting, and so does evaluation).
 */
export const MAX_EXPRESSION_LENGTH = 65_536;
export const MAX_EXPRESSION_DEPTH = 64;

export class ExpressionError extends Error {
  constructor(
    /** What is wrong, without the position. */
    readonly reason: string,
    /** 1-based column in the expression text. */
    readonly column: number,
    /** The text is refused whatever the equipment (too long, nested too deeply): reported once, not per equipment. */
    readonly ofText = false,
  ) {
    super(`column ${column}: ${reason}`);
    this.name = 'ExpressionError';
  }
}

/** Thrown while evaluating when a point has no usable value: the rule's result is uncertain. */
const UNKNOWN = Symbol('unknown');

export interface Compiled {
  /** true / false, or undefined when a point it reads has no good value (uncertain). */
  evaluate(scope: Scope): boolean | undefined;
  /** The value of the expression (for messages), or undefined when uncertain. */
  value(scope: Scope): Value | undefined;
  /** Points the expression reads. */
  readonly points: ReadonlySet<string>;
  /** The first point it compares, for the event's `point` and `{value}`. */
  readonly primaryPoint: string | undefined;
  readonly source: string;
  /**
   * Set when the whole expression compares one point with a side that reads no point and is a
   * number (`drum_level <= drum_level_lolo`, `steam_pressure >= 0.96 * safety_valve_pressure`):
   * a limit that predictions and near misses can follow. Written with the point on the left.
   */
  readonly comparison?: Comparison;
}

export interface Comparison {
  point: string;
  op: '<' | '<=' | '>' | '>=';
  limit: number;
}

/** The comparison with its sides swapped (`-200 >= x` is `x <= -200`). */
const FLIPPED = { '<': '>', '<=': '>=', '>': '<', '>=': '<=' } as const;

export interface Names {
  /** Is this a point of the equipment? */
  isPoint(name: string): boolean;
  /** A limit or parameter by that name (a constant), or undefined. */
  constant(name: string): Value | undefined;
  /** For the error message: what names exist. */
  describe(): string;
}

type Node = (s: Scope) => Value;

const FUNCTIONS: Record<string, { arity: [number, number]; fn: (args: number[]) => number }> = {
  abs: { arity: [1, 1], fn: ([a]) => Math.abs(a!) },
  min: { arity: [2, 8], fn: (a) => Math.min(...a) },
  max: { arity: [2, 8], fn: (a) => Math.max(...a) },
  round: { arity: [1, 1], fn: ([a]) => Math.round(a!) },
};

interface Token {
  kind: 'num' | 'str' | 'name' | 'op' | 'end';
  text: string;
  value?: number | string;
  col: number;
}

const OPERATORS = ['<=', '>=', '==', '!=', '&&', '||', '<', '>', '+', '-', '*', '/', '%', '!', '(', ')', ','];

function tokenize(src: string): Token[] {
  if (src.length > MAX_EXPRESSION_LENGTH)
    throw new ExpressionError(`longer than ${MAX_EXPRESSION_LENGTH} characters`, MAX_EXPRESSION_LENGTH + 1, true);
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const col = i + 1;
    const num = /^(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/.exec(src.slice(i));
    if (num) {
      out.push({ kind: 'num', text: num[0], value: Number(num[0]), col });
      i += num[0].length;
      continue;
    }
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i));
    if (name) {
      out.push({ kind: 'name', text: name[0], col });
      i += name[0].length;
      continue;
    }
    if (c === '"' || c === "'") {
      const end = src.indexOf(c, i + 1);
      if (end < 0) throw new ExpressionError('unterminated string', col);
      out.push({ kind: 'str', text: src.slice(i, end + 1), value: src.slice(i + 1, end), col });
      i = end + 1;
      continue;
    }
    const op = OPERATORS.find((o) => src.startsWith(o, i));
    if (op) {
      out.push({ kind: 'op', text: op, col });
      i += op.length;
      continue;
    }
    if (c === '=') throw new ExpressionError('"=" is not a comparison; write "=="', col);
    if (c === '&' || c === '|') throw new ExpressionError(`"${c}" is not an operator; write "${c}${c}"`, col);
    throw new ExpressionError(`unexpected character "${c}"`, col);
  }
  out.push({ kind: 'end', text: 'end of expression', col: src.length + 1 });
  return out;
}

export function compile(source: string, names: Names): Compiled {
  const tokens = tokenize(source);
  let pos = 0;
  const points = new Set<string>();
  let primaryPoint: string | undefined;
  /** The last ordered comparison parsed, with the node it compiled to: the whole expression's if that node is the root. */
  let lastComparison: { node: Node; comparison: Comparison } | undefined;
  const peek = () => tokens[pos]!;
  const isOp = (...ops: string[]) => peek().kind === 'op' && ops.includes(peek().text);
  const isWord = (...words: string[]) => peek().kind === 'name' && words.includes(peek().text);
  const expect = (text: string) => {
    const t = peek();
    if (t.kind !== 'op' || t.text !== text) throw new ExpressionError(`expected "${text}" but found ${describe(t)}`, t.col);
    pos++;
  };
  // Parentheses, !, unary minus and calls nest; each level is a level of recursion here and when
  // the rule is evaluated. Chains (a + b + c, a && b && c) are loops, not nesting.
  let depth = 0;
  /** Point names read so far (each occurrence), to tell a side that reads none. */
  let reads = 0;
  const nested = <T>(t: Token, parse: () => T): T => {
    if (++depth > MAX_EXPRESSION_DEPTH)
      throw new ExpressionError(`nested too deeply (at most ${MAX_EXPRESSION_DEPTH} levels)`, t.col, true);
    const out = parse();
    depth--;
    return out;
  };

  const or = (): Node => {
    const operands = [and()];
    while (isOp('||') || isWord('or')) {
      pos++;
      operands.push(and());
    }
    if (operands.length === 1) return operands[0]!;
    return (s) => {
      // Strict: a rule that reads a point without a good value is uncertain, whatever the other side says.
      let any = false;
      for (const o of operands) any = truth(o(s)) || any;
      return any;
    };
  };
  const and = (): Node => {
    const operands = [not()];
    while (isOp('&&') || isWord('and')) {
      pos++;
      operands.push(not());
    }
    if (operands.length === 1) return operands[0]!;
    return (s) => {
      let all = true;
      for (const o of operands) all = truth(o(s)) && all;
      return all;
    };
  };
  const not = (): Node => {
    if (isOp('!') || isWord('not')) {
      const t = tokens[pos++]!;
      const inner = nested(t, not);
      return (s) => !truth(inner(s));
    }
    return compare();
  };
  const compare = (): Node => {
    const leftSide = side(sum);
    const left = leftSide.node;
    if (!isOp('<', '<=', '>', '>=', '==', '!=')) return left;
    const op = tokens[pos++]!;
    const rightSide = side(sum);
    const right = rightSide.node;
    if (isOp('<', '<=', '>', '>=', '==', '!=')) throw new ExpressionError('comparisons do not chain; join them with &&', peek().col);
    if (op.text === '==' || op.text === '!=') {
      const negate = op.text === '!=';
      return (s) => equal(left(s), right(s)) !== negate;
    }
    // Ordered comparisons are numeric, and hold on by the deadband while the alarm is active.
    const num = numeric(op.col);
    const node = ((): Node => {
      switch (op.text) {
        case '<':
          return (s) => num(left(s)) < num(right(s)) + (s.active ? s.deadband : 0);
        case '<=':
          return (s) => num(left(s)) <= num(right(s)) + (s.active ? s.deadband : 0);
        case '>':
          return (s) => num(left(s)) > num(right(s)) - (s.active ? s.deadband : 0);
        default:
          return (s) => num(left(s)) >= num(right(s)) - (s.active ? s.deadband : 0);
      }
    })();
    const ordered = op.text as Comparison['op'];
    const comparison =
      leftSide.bare !== undefined && rightSide.reads === 0
        ? limitOf(leftSide.bare, ordered, right)
        : rightSide.bare !== undefined && leftSide.reads === 0
          ? limitOf(rightSide.bare, FLIPPED[ordered], left)
          : undefined;
    if (comparison) lastComparison = { node, comparison };
    return node;
  };
  /** A side of a comparison: how many points it reads, and the point when it is nothing but one point's name. */
  const side = (parse: () => Node): { node: Node; reads: number; bare: string | undefined } => {
    const from = pos;
    const before = reads;
    const node = parse();
    const t = tokens[from]!;
    const bare = pos === from + 1 && t.kind === 'name' && names.isPoint(t.text) ? t.text : undefined;
    return { node, reads: reads - before, bare };
  };
  /** Left to right, as ((a + b) - c); text where a number is needed names the operator's column. */
  const chain = (operand: () => Node, ops: string[], apply: (op: string, a: number, b: number) => number): Node => {
    const first = operand();
    const rest: Array<{ op: string; node: Node; num: (v: Value) => number }> = [];
    while (isOp(...ops)) {
      const op = tokens[pos++]!;
      rest.push({ op: op.text, node: operand(), num: numeric(op.col) });
    }
    if (rest.length === 0) return first;
    return (s) => {
      let acc = rest[0]!.num(first(s));
      for (const r of rest) acc = apply(r.op, acc, r.num(r.node(s)));
      return acc;
    };
  };
  const sum = (): Node => chain(product, ['+', '-'], (op, a, b) => (op === '+' ? a + b : a - b));
  const product = (): Node => chain(unary, ['*', '/', '%'], (op, a, b) => (op === '*' ? a * b : op === '/' ? a / b : a % b));
  const unary = (): Node => {
    if (isOp('-')) {
      const op = tokens[pos++]!;
      const inner = nested(op, unary);
      const num = numeric(op.col);
      return (s) => -num(inner(s));
    }
    return primary();
  };
  const primary = (): Node => {
    const t = peek();
    if (t.kind === 'num' || t.kind === 'str') {
      pos++;
      const v = t.value!;
      return () => v;
    }
    if (t.kind === 'op' && t.text === '(') {
      pos++;
      const inner = nested(t, or);
      expect(')');
      return inner;
    }
    if (t.kind === 'name') {
      pos++;
      if (t.text === 'true' || t.text === 'false') {
        const v = t.text === 'true';
        return () => v;
      }
      if (isOp('(')) return nested(t, () => call(t));
      if (names.isPoint(t.text)) {
        const name = t.text;
        reads++;
        points.add(name);
        primaryPoint ??= name;
        return (s) => {
          const v = s.point(name);
          if (v === undefined) throw UNKNOWN;
          return v;
        };
      }
      const c = names.constant(t.text);
      if (c !== undefined) return () => c;
      throw new ExpressionError(`unknown name "${t.text}": ${names.describe()}`, t.col);
    }
    throw new ExpressionError(`expected a value but found ${describe(t)}`, t.col);
  };
  const call = (t: Token): Node => {
    const f = FUNCTIONS[t.text];
    if (!f || !Object.hasOwn(FUNCTIONS, t.text))
      throw new ExpressionError(`unknown function "${t.text}" (functions: ${Object.keys(FUNCTIONS).join(', ')})`, t.col);
    expect('(');
    const args: Node[] = [];
    if (!isOp(')')) {
      args.push(or());
      while (isOp(',')) {
        pos++;
        args.push(or());
      }
    }
    expect(')');
    if (args.length < f.arity[0] || args.length > f.arity[1]) {
      const count = f.arity[0] === f.arity[1] ? String(f.arity[0]) : `${f.arity[0]} to ${f.arity[1]}`;
      throw new ExpressionError(`${t.text}() takes ${count} argument${count === '1' ? '' : 's'}`, t.col);
    }
    const num = numeric(t.col);
    return (s) => f.fn(args.map((a) => num(a(s))));
  };

  const root = or();
  if (peek().kind !== 'end') throw new ExpressionError(`unexpected ${describe(peek())}`, peek().col);

  const run = (s: Scope): Value | undefined => {
    try {
      return root(s);
    } catch (e) {
      if (e === UNKNOWN) return undefined;
      throw e;
    }
  };
  const comparison = lastComparison?.node === root ? lastComparison.comparison : undefined;
  return {
    source,
    points,
    primaryPoint,
    ...(comparison ? { comparison } : {}),
    value: run,
    evaluate(s) {
      const v = run(s);
      return v === undefined ? undefined : truth(v);
    },
  };
}

/**
 * The limit of `point <op> side` when the side (which reads no point) is a number; text, booleans
 * and what cannot be computed (a division by zero) are not a limit.
 */
function limitOf(point: string, op: Comparison['op'], side: Node): Comparison | undefined {
  let limit: Value;
  try {
    limit = side({ point: () => undefined, deadband: 0, active: false });
  } catch (e) {
    if (e instanceof ExpressionError) return undefined;
    throw e;
  }
  return typeof limit === 'number' && Number.isFinite(limit) ? { point, op, limit } : undefined;
}

/** A number from a value (true is 1); text where a number is needed is an error of the rule. */
function numeric(col: number) {
  return (v: Value): number => {
    if (typeof v === 'number') return v;
    if (typeof v === 'boolean') return v ? 1 : 0;
    throw new ExpressionError(`expected a number, got the text "${v}"`, col);
  };
}

/** Booleans and numbers compare as numbers (a flag read as 0/1 equals false/true); text only with text. */
function equal(a: Value, b: Value): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  return Number(a) === Number(b);
}

function truth(v: Value): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0 && !Number.isNaN(v);
  return v.length > 0;
}

function describe(t: Token): string {
  return t.kind === 'end' ? 'the end of the expression' : `"${t.text}"`;
}
