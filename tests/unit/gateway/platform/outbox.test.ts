import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { headersFor, incidentBody, sign, verify, type IncidentBody } from '../../../../gateway/platform/contract.js';
import { Outbox } from '../../../../gateway/platform/outbox.js';

const incident = (n: number): Omit<IncidentBody, 'seq'> => ({
  schema: 'gw.incident.v1',
  eventId: `e${n}`,
  incidentId: 'i1',
  type: 'raised',
  level: 'red',
  gatewayId: 'gw',
  site: 's',
  equipment: { id: 'B-1', category: 'boiler' },
  rule: { id: 'r', message: 'm' },
  occurredAt: new Date(1000 * n).toISOString(),
});

describe('outbox', () => {
  it('gives seqs from 1 that grow by one and are never reused, also after deletions and a reopen', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'gw-outbox-')), 'outbox.db');
    let outbox = new Outbox(file);
    expect(outbox.add([incident(1), incident(2), incident(3)])).toEqual([1, 2, 3]);
    for (const seq of [1, 2, 3]) outbox.delivered(seq);
    expect(outbox.stats()).toMatchObject({ pending: 0, lastSeq: 3 });
    outbox.close();
    outbox = new Outbox(file);
    expect(outbox.add([incident(4)])).toEqual([4]);
    // The same event twice is taken once.
    expect(outbox.add([incident(4)])).toEqual([]);
    outbox.close();
  });

  it('keeps dead letters with their answer out of the way, and puts them back on retry', () => {
    const outbox = new Outbox(join(mkdtempSync(join(tmpdir(), 'gw-outbox-')), 'outbox.db'));
    outbox.add([incident(1), incident(2)]);
    outbox.dead(1, '400 {"error":"bad"}');
    expect(outbox.pending(10).map((r) => r.seq)).toEqual([2]);
    expect(outbox.list('dead')).toMatchObject([{ seq: 1, answer: '400 {"error":"bad"}', attempts: 1 }]);
    expect(outbox.retry()).toBe(1);
    expect(outbox.pending(10).map((r) => r.seq)).toEqual([1, 2]);
    expect(outbox.pending(10, new Set([1])).map((r) => r.seq)).toEqual([2]);
  });

  it('gives the pending events after a seq, skipping those in flight, in seq order', () => {
    const outbox = new Outbox(join(mkdtempSync(join(tmpdir(), 'gw-outbox-')), 'outbox.db'));
    outbox.add([incident(1), incident(2), incident(3), incident(4), incident(5)]);
    outbox.dead(3, '400 {}');
    expect(outbox.pending(2, new Set(), 1).map((r) => r.seq)).toEqual([2, 4]);
    // In flight above the cursor (after a failed send set it back): skipped, and the limit still filled.
    expect(outbox.pending(2, new Set([2, 4]), 1).map((r) => r.seq)).toEqual([5]);
    expect(outbox.pending(2, new Set([1]), 0).map((r) => r.seq)).toEqual([2, 4]);
    outbox.delivered(4);
    expect(outbox.pending(10, new Set(), 0).map((r) => r.seq)).toEqual([1, 2, 5]);
    expect(outbox.stats()).toMatchObject({ pending: 3, dead: 1 });
    outbox.close();
  });

  it('with an uplink, an event leaves only when both the platform and the broker have it', () => {
    const outbox = new Outbox(join(mkdtempSync(join(tmpdir(), 'gw-outbox-')), 'outbox.db'), { uplink: true });
    outbox.add([incident(1)]);
    outbox.delivered(1);
    expect(outbox.stats()).toMatchObject({ pending: 0, uplinkPending: 1 });
    expect(outbox.uplinkPending(10).map((r) => r.seq)).toEqual([1]);
    outbox.uplinked(1);
    expect(outbox.stats()).toMatchObject({ pending: 0, uplinkPending: 0 });
    expect(outbox.uplinkPending(10)).toEqual([]);
  });
});

describe('contract', () => {
  it('signs timestamp.body with HMAC-SHA256 and verifies only the same secret, body and timestamp', () => {
    const body = incidentBody(JSON.stringify(incident(1)), 7);
    expect(JSON.parse(body)).toMatchObject({ eventId: 'e1', seq: 7 });
    const h = headersFor('secret-secret-secret', 'gw', body, 'e1', 1_700_000_000_000);
    expect(h).toMatchObject({ 'Idempotency-Key': 'e1', 'X-Gateway-Id': 'gw', 'X-Gateway-Timestamp': '1700000000000' });
    // Known answer, from `printf '1.{}' | openssl dgst -sha256 -hmac k`.
    expect(sign('k', '1', '{}')).toBe('sha256=3dd49b2593d0f9a349e9e71c4bde3e2b862c2be4003fe9b4ba81332029310158');
    expect(verify('secret-secret-secret', '1700000000000', body, h['X-Gateway-Signature']!)).toBe(true);
    expect(verify('another-secret-xxxxx', '1700000000000', body, h['X-Gateway-Signature']!)).toBe(false);
    expect(verify('secret-secret-secret', '1700000000001', body, h['X-Gateway-Signature']!)).toBe(false);
    expect(verify('secret-secret-secret', '1700000000000', `${body} `, h['X-Gateway-Signature']!)).toBe(false);
  });
});
