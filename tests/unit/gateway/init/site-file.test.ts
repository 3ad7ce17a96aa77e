// The pieces of the file `gateway init` writes: values that read back as written, comments a
// device's text cannot break out of, and the rules left out for the points not mapped yet.
import { parse } from 'yaml';
import { expect, it } from 'vitest';
import { loadTemplates } from '../../../../config/templates.js';
import { commentText, rulesWithoutPoints, scalar } from '../../../../gateway/init/site-file.js';
import { matchVariables } from '../../../../gateway/init/scan.js';

it('writes every string so that YAML reads back the same string', () => {
  const hostile = [
    'ns=1;s=Lift3.Floor',
    'a: b',
    '#x',
    'yes',
    '1e3',
    '0x10',
    ' lead',
    'trail ',
    'line\nbreak',
    'rlo\u202eevil',
    'del\u007f',
    '"q"',
    "it's",
    '*alias',
    '&anchor',
    '- item',
    '[a]',
    '{a}',
    '%x',
    '@x',
    '`x',
    '',
    'Steam boiler',
    'null',
    '~',
    '.inf',
    '-.Inf',
    '.NaN',
  ];
  for (const s of hostile) {
    const text = `v: ${scalar(s)}\n`;
    expect(parse(text), text).toEqual({ v: s });
    expect(text).not.toMatch(/[\u202e\u007f]/);
  }
  expect(scalar('Steam boiler')).toBe('Steam boiler');
  expect(scalar(1.5)).toBe('1.5');
});

it('keeps a device text on one line of a comment', () => {
  expect(commentText('a\nb\u202ec')).toBe('a\\u000ab\\u202ec');
  expect(commentText('x'.repeat(100), 10)).toBe(`${'x'.repeat(10)}...`);
});

it("leaves out exactly the template's rules that read a point the entry lacks", () => {
  const boiler = loadTemplates().get('boiler-steam')!;
  const all = new Set(boiler.points.map((p) => p.name));
  expect(rulesWithoutPoints(boiler, all)).toEqual([]);
  const withoutLevel = new Set([...all].filter((p) => p !== 'drum_level'));
  const ids = rulesWithoutPoints(boiler, withoutLevel).map((r) => r.id);
  // The limits rule (point: drum_level) and the expression rule (when: drum_level <= ...).
  expect(ids).toContain('drum-level');
  expect(ids).toContain('drum-level-low-low');
  expect(ids).not.toContain('overpressure');
});

it('matches browse names to points without regard to case, underscores and spaces, nearest the top first', () => {
  const v = (path: string) => ({ nodeId: `ns=1;s=${path}`, path, dataType: 'Double', value: 1, status: 'Good' });
  const found = matchVariables(
    ['door_open', 'load', 'speed'],
    [v('/1:Car/1:DoorOpen'), v('/1:Car/1:Load Cell/1:LOAD'), v('/1:Car/1:Deep/1:Load'), v('/1:Car/1:Spee')],
  );
  expect(found.get('door_open')?.nodeId).toBe('ns=1;s=/1:Car/1:DoorOpen');
  expect(found.get('load')?.nodeId).toBe('ns=1;s=/1:Car/1:Load Cell/1:LOAD');
  expect(found.has('speed')).toBe(false);
});
