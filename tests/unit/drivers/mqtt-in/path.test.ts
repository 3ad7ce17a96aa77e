// The path evaluator: what a point's path reaches in a payload, and what it never reaches.
import { describe, expect, it } from 'vitest';
import { evaluatePath, MAX_PATH_STEPS, parsePath } from '../../../../drivers/mqtt-in/path.js';
import { topicFilterProblem, topicMatches } from '../../../../drivers/mqtt-in/topic.js';

const at = (doc: unknown, path: string) => {
  const steps = parsePath(path);
  if (typeof steps === 'string') throw new Error(steps);
  return evaluatePath(doc, steps);
};

describe('parsePath', () => {
  it.each([
    ['temperature', ['temperature']],
    ['ENERGY.Power', ['ENERGY', 'Power']],
    ['sensors[0].value', ['sensors', 0, 'value']],
    ['[2]', [2]],
    ['a[1][0]', ['a', 1, 0]],
    ['["battery.level"]', ['battery.level']],
    ["DS18B20-1['Temperature']", ['DS18B20-1', 'Temperature']],
  ])('%s', (text, steps) => expect(parsePath(text)).toEqual(steps));

  it.each(['', 'a..b', '.a', 'a.', 'a[', 'a[x]', 'a[-1]', 'a["b]', 'a.[0]', 'a]b', `x${'.x'.repeat(MAX_PATH_STEPS)}`, 'y'.repeat(257)])(
    'refuses %j',
    (text) => expect(typeof parsePath(text)).toBe('string'),
  );
});

describe('evaluatePath', () => {
  const tasmota = { Time: '2026-05-01T10:00:00', ENERGY: { Power: 350, Total: 1520.4 }, sensors: [{ value: 1 }, { value: null }] };

  it('reaches values of objects and arrays', () => {
    expect(at(tasmota, 'ENERGY.Power')).toEqual({ found: true, value: 350 });
    expect(at(tasmota, 'sensors[1].value')).toEqual({ found: true, value: null });
    expect(at(tasmota, 'ENERGY')).toEqual({ found: true, value: tasmota.ENERGY });
    expect(at([5, 6], '[1]')).toEqual({ found: true, value: 6 });
  });

  it('finds nothing where a step is missing or walks into the wrong kind of node', () => {
    for (const path of ['energy.Power', 'ENERGY.Power.x', 'sensors[2].value', 'sensors.value', 'Time[0]', 'ENERGY[0]', 'sensors.length'])
      expect(at(tasmota, path), path).toEqual({ found: false });
    expect(at(null, 'a')).toEqual({ found: false });
    expect(at('text', 'length')).toEqual({ found: false });
  });

  it('never reaches inherited properties, only what the payload itself has', () => {
    for (const path of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'a.constructor.name'])
      expect(at({ a: {} }, path), path).toEqual({ found: false });
    // A payload's own "__proto__" key is data like any other.
    expect(at(JSON.parse('{"__proto__": {"x": 1}}'), '__proto__.x')).toEqual({ found: true, value: 1 });
  });
});

describe('topic filters', () => {
  it.each([
    ['zigbee2mqtt/sensor', 'zigbee2mqtt/sensor', true],
    ['zigbee2mqtt/sensor', 'zigbee2mqtt/sensor/availability', false],
    ['tele/+/SENSOR', 'tele/plug-4/SENSOR', true],
    ['tele/+/SENSOR', 'tele/a/b/SENSOR', false],
    ['lab/#', 'lab', true],
    ['lab/#', 'lab/fridge/temp', true],
    ['#', '$SYS/broker/uptime', false],
    ['+/x', '$SYS/x', false],
  ])('%s matches %s: %s', (filter, topic, matches) => expect(topicMatches(filter, topic)).toBe(matches));

  it.each(['a/#/b', 'a/b#', 'a+/b', ''])('refuses the filter %j', (f) => expect(topicFilterProblem(f)).toBeDefined());
});
