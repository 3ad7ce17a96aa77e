import { describe, expect, it } from 'vitest';
import { bodyOf } from '../../../../gateway/influx/writer.js';

const chunk = (id: number, lines: string[]) => {
  const text = lines.join('\n');
  return { id, text, lines: lines.length, bytes: Buffer.byteLength(text), createdAt: 0 };
};

describe('request body of spool chunks', () => {
  it('is the chunks joined by newlines, byte for byte, also with text beyond ASCII', () => {
    const chunks = [
      chunk(1, ['boiler,site=s,equipment=B-07 steam_pressure=1.25 1000000000', 'boiler,site=s,equipment=B-07 drum_level=-12 2000000000']),
      chunk(2, ['boiler,site=上海三厂,equipment=锅炉\\ 7 note="水位 −212 mm" 3000000000']),
      chunk(3, ['elevator,site=s,equipment=L-3 floor=7 4000000000']),
    ];
    const body = bodyOf(chunks);
    expect(body.toString('utf8')).toBe(chunks.map((c) => c.text).join('\n'));
    expect(body.length).toBe(Buffer.byteLength(chunks.map((c) => c.text).join('\n')));
    expect(bodyOf([chunks[1]!]).toString('utf8')).toBe(chunks[1]!.text);
  });
});
