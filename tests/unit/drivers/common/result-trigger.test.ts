import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ResultTrigger, type Block } from '../../../../drivers/common/result-trigger.js';
import type { LabResult } from '../../../../drivers/common/result.js';
import type { CounterStore } from '../../../../drivers/types.js';

const silent = pino({ level: 'silent' });

/** The store's counter table in a Map; `full` makes every write fail, as a full disk does. */
function counters(initial: Record<string, unknown> = {}): CounterStore & { data: Map<string, unknown>; full: boolean } {
  const data = new Map(Object.entries(initial));
  const store = {
    data,
    full: false,
    get: (key: string) => data.get(key),
    save(key: string, state: unknown) {
      if (store.full) throw new Error('database or disk is full');
      data.set(key, structuredClone(state));
    },
  };
  return store;
}

function analyzer(store: ReturnType<typeof counters>) {
  let block: Block = { sampleId: 'S-1', values: new Map([['GLU', 5.1]]), trigger: 1 };
  const captured: LabResult[] = [];
  const trigger = new ResultTrigger({
    equipment: 'AN-1',
    kind: 'counter',
    analytes: [{ name: 'GLU', unit: 'mmol/L' }],
    read: async () => block,
    // As the gateway's sink: the results and the counter state are taken together, or neither.
    sink: (results, counter) => {
      if (store.full) throw new Error('database or disk is full');
      captured.push(...results);
      if (counter) store.data.set(counter.key, structuredClone(counter.state));
    },
    log: silent,
    counters: store,
  });
  return { trigger, captured, show: (b: Block) => void (block = b) };
}

describe('result trigger', () => {
  it('keeps its counter with the results it counts, and ids stay unique across a counter reset and a restart', async () => {
    const store = counters();
    const a = analyzer(store);
    a.trigger.init();
    await a.trigger.onValue(1);
    expect(store.data.get('lab-results/AN-1')).toEqual({ series: 0, last: 1 });
    a.show({ sampleId: 'S-2', values: new Map([['GLU', 6]]), trigger: 1 });
    await a.trigger.onValue(0); // the analyzer was reset
    await a.trigger.onValue(1);
    expect(a.captured.map((r) => r.sampleId)).toEqual(['S-1', 'S-2']);
    expect(new Set(a.captured.map((r) => r.resultId)).size).toBe(2);
    // Restarted: the counter comes back from the store; the same result is not taken again.
    const b = analyzer(store);
    b.trigger.init();
    await b.trigger.onValue(1);
    expect(b.captured).toEqual([]);
  });

  it('a store that cannot write neither stops the gateway nor loses the result: it is taken once it can', async () => {
    const store = counters({ 'lab-results/AN-1': { series: 0, last: 3 } });
    const a = analyzer(store);
    a.trigger.init();
    store.full = true;
    await expect(a.trigger.onValue(0)).resolves.toBeUndefined(); // a counter state alone: kept in memory
    expect(a.trigger.pendingSave).toBe(true);
    a.show({ sampleId: 'S-9', values: new Map([['GLU', 4.4]]), trigger: 1 });
    await a.trigger.onValue(1);
    expect(a.captured).toEqual([]);
    expect(a.trigger.stats.blockErrors).toBe(1);
    store.full = false;
    await a.trigger.onValue(1);
    expect(a.captured.map((r) => r.sampleId)).toEqual(['S-9']);
    expect(store.data.get('lab-results/AN-1')).toEqual({ series: 1, last: 1 });
    expect(a.trigger.pendingSave).toBe(false);
  });

  it('a counter reset to a value other than 0 whose capture fails is taken at the next reading, not skipped', async () => {
    const store = counters({ 'lab-results/AN-1': { series: 0, last: 3 } });
    const a = analyzer(store);
    a.trigger.init();
    a.show({ sampleId: 'S-4', values: new Map([['GLU', 4.4]]), trigger: 1 });
    store.full = true;
    await a.trigger.onValue(1);
    expect(a.captured).toEqual([]);
    store.full = false;
    await a.trigger.onValue(1);
    expect(a.captured.map((r) => r.sampleId)).toEqual(['S-4']);
    expect(store.data.get('lab-results/AN-1')).toEqual({ series: 1, last: 1 });
  });

  it('refuses a counter state that does not read instead of starting over', () => {
    const a = analyzer(counters({ 'lab-results/AN-1': { series: 'two', last: 3 } }));
    expect(() => a.trigger.init()).toThrow(/result counter state of AN-1 .* does not read/);
  });
});
