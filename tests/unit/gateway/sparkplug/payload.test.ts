// The gateway's Sparkplug B encoder, read back by Eclipse Tahu's own decoder (sparkplug-payload),
// and commands Tahu encodes read by the gateway.
import sparkplug from 'sparkplug-payload';
import { describe, expect, it } from 'vitest';
import { DataType, QUALITY_CODE, decodeCommand, encodePayload, fits } from '../../../../gateway/sparkplug/payload.js';

const tahu = sparkplug.get('spBv1.0')!;
const num = (v: unknown) => (typeof v === 'number' ? v : (v as { toNumber(): number }).toNumber());

describe('Sparkplug B payloads', () => {
  it('uses only the quality codes Sparkplug 3.0 defines (0 bad, 192 good, 500 stale), and never good for an uncertain reading', () => {
    // 6.4.9.1: the Quality property MUST be 0, 192 or 500; an Ignition 8 host reads 64 (no level bits) as Good.
    for (const code of Object.values(QUALITY_CODE)) expect([0, 192, 500]).toContain(code);
    expect(QUALITY_CODE.uncertain).not.toBe(QUALITY_CODE.good);
    expect(QUALITY_CODE.bad).toBe(0);
  });

  it('encodes each data type, null, historical and properties as Tahu decodes them', () => {
    const decoded = tahu.decodePayload(
      encodePayload({
        timestamp: 1_700_000_000_123,
        seq: 255,
        metrics: [
          {
            name: 'steam_pressure',
            alias: 2,
            timestamp: 1_700_000_000_000,
            datatype: DataType.Double,
            value: 1.259,
            isHistorical: true,
            properties: {
              engUnit: { type: DataType.String, value: 'MPa' },
              Quality: { type: DataType.Int32, value: QUALITY_CODE.good },
            },
          },
          { name: 'flame', alias: 3, datatype: DataType.Boolean, value: true },
          { name: 'mode', alias: 4, datatype: DataType.String, value: 'auto' },
          { name: 'bdSeq', alias: 0, datatype: DataType.Int64, value: 254 },
          { name: 'offset', datatype: DataType.Int32, value: -5 },
          {
            name: 'drum_level',
            alias: 5,
            datatype: DataType.Double,
            value: null,
            properties: { Quality: { type: DataType.Int32, value: 0 } },
          },
        ],
      }),
    );
    expect(num(decoded.timestamp)).toBe(1_700_000_000_123);
    expect(num(decoded.seq)).toBe(255);
    const [p, flame, mode, bd, offset, level] = decoded.metrics!;
    expect(p).toMatchObject({ name: 'steam_pressure', type: 'Double', value: 1.259, isHistorical: true });
    expect(num(p!.alias)).toBe(2);
    expect(num(p!.timestamp)).toBe(1_700_000_000_000);
    expect(p!.properties).toEqual({ engUnit: { type: 'String', value: 'MPa' }, Quality: { type: 'Int32', value: 192 } });
    expect(flame).toMatchObject({ type: 'Boolean', value: true });
    expect(mode).toMatchObject({ type: 'String', value: 'auto' });
    expect(bd!.type).toBe('Int64');
    expect(num(bd!.value)).toBe(254);
    expect(offset).toMatchObject({ type: 'Int32', value: -5 });
    expect(level).toMatchObject({ type: 'Double', value: null });
    expect(level!.properties).toEqual({ Quality: { type: 'Int32', value: 0 } });
  });

  it('reads an NCMD Tahu encodes, by name or by alias, and refuses bytes that are no payload', () => {
    const byName = tahu.encodePayload({ timestamp: 1, metrics: [{ name: 'Node Control/Rebirth', type: 'Boolean', value: true }] });
    expect(decodeCommand(byName).metrics).toEqual([{ name: 'Node Control/Rebirth', value: true }]);
    const byAlias = tahu.encodePayload({ timestamp: 1, metrics: [{ alias: 1, type: 'Boolean', value: true }] });
    expect(decodeCommand(byAlias).metrics).toEqual([{ alias: 1, value: true }]);
    expect(() => decodeCommand(Buffer.from([0x12, 0xff, 0xff, 0xff]))).toThrow();
  });

  it('a value fits its data type or calls for a new birth', () => {
    expect(fits(DataType.Double, 1)).toBe(true);
    expect(fits(DataType.Double, 'x')).toBe(false);
    expect(fits(DataType.Boolean, 1)).toBe(false);
    expect(fits(DataType.String, null)).toBe(true);
  });
});
