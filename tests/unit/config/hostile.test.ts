// Site files written to hurt the loader or to read what it knows (issue 17, items 2, 3 and 8): the
// process environment stays untouched and unrepeated, hostile texts are refused before the YAML
// parser works on them, deep rule expressions say so at their path, and an entry whose connection
// is unknown still has its other mistakes reported in the same pass.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, formatProblem, type ConfigProblem } from '../../../config/errors.js';
import { parseSite, SITE_FILE_LIMITS, type ParseOptions } from '../../../config/load.js';
import { prescanYaml } from '../../../config/prescan.js';
import { MAX_EXPRESSION_DEPTH } from '../../../rules/expression.js';

const SECRET = 'platform-secret-7f3a9c1e5b';

function outcome(text: string, opts: ParseOptions = {}): { problems: string[]; notes: string[] } {
  const notes: ConfigProblem[] = [];
  try {
    parseSite(text, { ...opts, onNote: (n) => notes.push(n) });
    return { problems: [], notes: notes.map(formatProblem) };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return { problems: err.problems.map(formatProblem), notes: notes.map(formatProblem) };
  }
}

const minimal = (gateway: string, rest = '') => `version: 2
gateway:
${gateway}
connections: [{ id: sim, type: sim }]
equipment:
  - { id: B-1, category: boiler, connection: sim, model: steam-boiler, points: [{ name: drum_level }] }
${rest}`;

describe('a site file checked without the environment (the HTTP API)', () => {
  beforeEach(() => {
    process.env.PLATFORM_SECRET = SECRET;
  });
  afterEach(() => {
    delete process.env.PLATFORM_SECRET;
  });

  it('never expands ${VAR} and says where the value comes from instead', () => {
    const text = minimal('  id: gw-1\n  site: plant-1\n  log_level: "${PLATFORM_SECRET}"');
    const r = outcome(text, { env: false, echoValues: false });
    expect(r.problems).toEqual([]);
    expect(r.notes).toEqual([
      'gateway.log_level: takes its value from ${PLATFORM_SECRET} when the gateway starts; not checked here (line 5)',
    ]);
    expect(JSON.stringify(r)).not.toContain(SECRET);
  });

  it('takes the default of a placeholder, never the variable of this process', () => {
    process.env.LOG_LEVEL = 'loud';
    try {
      const text = minimal('  id: gw-1\n  site: plant-1\n  log_level: ${LOG_LEVEL:-info}');
      expect(outcome(text, { env: false, echoValues: false }).problems).toEqual([]);
      // The same file with this process's environment: LOG_LEVEL is read, and refused.
      expect(outcome(text).problems).toHaveLength(1);
    } finally {
      delete process.env.LOG_LEVEL;
    }
  });

  it('checks a placeholder with a default by its default, without repeating the value', () => {
    const r = outcome(minimal('  id: gw-1\n  site: plant-1\n  log_level: ${PLATFORM_SECRET:-loud}'), { env: false, echoValues: false });
    expect(r.problems).toEqual([
      'gateway.log_level: expected one of fatal, error, warn, info, debug, trace, got a text that is not one of them (line 5)',
    ]);
    expect(r.notes).toEqual([
      'gateway.log_level: takes its value from ${PLATFORM_SECRET} when the gateway starts; checked here with its default (line 5)',
    ]);
    expect(JSON.stringify(r)).not.toContain(SECRET);
  });

  it('repeats no value of the file when asked not to', () => {
    const r = outcome(minimal('  id: gw-1\n  site: plant-1\n  log_level: hunter2-password', 'mqtt:\n  port: "hunter2-port"'), {
      env: false,
      echoValues: false,
    });
    expect(r.problems).toHaveLength(2);
    expect(r.problems.join('\n')).not.toContain('hunter2');
  });

  it('never repeats a value that came from the environment, even where values are repeated (the CLI)', () => {
    const r = outcome(minimal('  id: gw-1\n  site: plant-1\n  log_level: "${PLATFORM_SECRET}"'));
    expect(r.problems).toEqual([
      'gateway.log_level: expected one of fatal, error, warn, info, debug, trace, got a text that is not one of them (line 5)',
    ]);
    expect(JSON.stringify(r)).not.toContain(SECRET);
    // A message that quotes the value (a connection id) names the variable instead.
    const id = outcome(minimal('  id: gw-1\n  site: plant-1').replace('connection: sim', 'connection: "${PLATFORM_SECRET}"'));
    expect(id.problems).toEqual(['equipment[0].connection: no connection "<the value of PLATFORM_SECRET>"; connections are sim (line 7)']);
    // A value written in the file itself is repeated there: it helps, and it is the operator's own.
    expect(outcome(minimal('  id: gw-1\n  site: plant-1\n  log_level: loud')).problems).toEqual([
      'gateway.log_level: expected one of fatal, error, warn, info, debug, trace, got "loud" (line 5)',
    ]);
  });
});

describe('texts refused before the YAML parser', () => {
  const problemsOf = (text: string) => outcome(text, { env: {} }).problems;

  it('refuses 1 MB of nested brackets in milliseconds, with one path: message line', () => {
    const half = 500_000;
    for (const [open, close] of [
      ['[', ']'],
      ['{', '}'],
    ] as const) {
      const text = `a: ${open.repeat(half)}${close.repeat(half)}`;
      const t0 = performance.now();
      expect(problemsOf(text)).toEqual(['(yaml): nested too deeply: at most 64 levels of mappings and lists (line 1)']);
      // Measured: under 5 ms (the parser took 3.7 s and 570 MB). The bound only catches a return to that.
      expect(performance.now() - t0).toBeLessThan(2000);
    }
    // Unclosed, the parser ran out of heap in a regular expression and took the process down.
    expect(problemsOf(`a: ${'['.repeat(1_000_000)}`)).toEqual([
      '(yaml): nested too deeply: at most 64 levels of mappings and lists (line 1)',
    ]);
  });

  it('refuses an alias bomb and an alias flood by counting', () => {
    let bomb = 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n';
    for (let i = 1; i < 20; i++)
      bomb += `a${i}: &a${i} [${Array<string>(10)
        .fill(`*a${i - 1}`)
        .join(', ')}]\n`;
    expect(problemsOf(bomb)).toEqual([
      expect.stringMatching(/^\(yaml\): more than 100 aliases \(\*name\): a YAML alias bomb\? \(line \d+\)$/),
    ]);
    const flood = `a: &a x\nb: [${Array<string>(200_000).fill('*a').join(', ')}]\n`;
    const t0 = performance.now();
    expect(problemsOf(flood)).toEqual(['(yaml): more than 100 aliases (*name): a YAML alias bomb? (line 2)']);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('refuses deep indentation, and counts what only looks deep as text', () => {
    const deep = Array.from({ length: 200 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n') + ' 1\n';
    expect(problemsOf(deep)).toEqual([
      expect.stringMatching(/^\(yaml\): nested too deeply: at most 64 levels of mappings and lists \(line 6\d\)$/),
    ]);
    // Brackets, ampersands and stars inside quotes, comments, block scalars and plain text are text.
    const text = [
      'a: "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["',
      "b: '{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{'",
      `c: level ${'['.repeat(100)} & *${'*'.repeat(200)}`,
      `# ${'['.repeat(100)}`,
      'd: |',
      ...Array.from({ length: 100 }, (_, i) => `${' '.repeat(i + 2)}[{ &x *y`),
      'e: 1',
    ].join('\n');
    expect(prescanYaml(text, SITE_FILE_LIMITS)).toBeUndefined();
  });

  it('passes every example site file', async () => {
    const { readdirSync, readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const root = join(import.meta.dirname, '..', '..', '..', 'config');
    const files = [
      join(root, 'demo.yaml'),
      ...readdirSync(join(root, 'examples'))
        .filter((f) => f.endsWith('.yaml'))
        .map((f) => join(root, 'examples', f)),
      ...readdirSync(join(root, 'templates')).map((f) => join(root, 'templates', f)),
    ];
    for (const f of files) expect(prescanYaml(readFileSync(f, 'utf8'), SITE_FILE_LIMITS), f).toBeUndefined();
  });
});

describe('rule expressions nested too deeply', () => {
  it('answer rules[N].when: nested too deeply, once, never a RangeError', () => {
    const rule = (when: string) =>
      minimal('  id: gw-1\n  site: plant-1', `rules:\n  - { id: deep, equipment: { category: boiler }, level: red, when: "${when}" }\n`);
    for (const when of [
      `${'('.repeat(5000)}drum_level${')'.repeat(5000)} > 1`,
      `${'!'.repeat(5000)}true`,
      `${'-'.repeat(20000)}1 > 0`,
      `${'abs('.repeat(5000)}1${')'.repeat(5000)} > 0`,
    ]) {
      expect(outcome(rule(when), { env: {} }).problems).toEqual([
        `rules[0].when: nested too deeply (at most ${MAX_EXPRESSION_DEPTH} levels) (line 9)`,
      ]);
    }
  });
});

describe('an equipment entry whose connection is unknown', () => {
  it('reports every mistake of the entry in one pass, and which driver it was checked as', () => {
    const text = `version: 1
gateway: { id: gw-1, site: plant-1 }
connections:
  - { id: plc, type: modbus-tcp, host: 127.0.0.1, port: 5020 }
equipment:
  - id: B-1
    category: boiler
    connection: plcc
    unit_id: 1
    pol_interval: 1s
    points:
      - { name: drum_level, address: hr:0, type: float33 }
`;
    expect(outcome(text, { env: {} }).problems).toEqual([
      'equipment[0].connection: no connection "plcc"; connections are plc; checked as a modbus entry, the driver it fits best (line 8)',
      'equipment[0].pol_interval: unknown key (line 10)',
      'equipment[0].points[0].type: expected one of bool, int16, uint16, int32, uint32, int64, uint64, float32, float64, string, got "float33" (line 12)',
    ]);
    // The same for an entry whose connection exists but has no known type.
    const typo = text.replace('type: modbus-tcp', 'type: modbus-tcpp').replace('connection: plcc', 'connection: plc');
    expect(outcome(typo, { env: {} }).problems).toEqual([
      'connections[0].type: expected one of the connection types: sim, modbus-tcp, modbus-rtu, modbus-rtu-over-tcp, opcua, astm-tcp, astm-serial, hl7-mllp, mqtt-in, file-drop (line 4)',
      'equipment[0].connection: its connection has no known type; checked as a modbus entry, the driver it fits best (line 8)',
      'equipment[0].pol_interval: unknown key (line 10)',
      'equipment[0].points[0].type: expected one of bool, int16, uint16, int32, uint32, int64, uint64, float32, float64, string, got "float33" (line 12)',
    ]);
  });
});
