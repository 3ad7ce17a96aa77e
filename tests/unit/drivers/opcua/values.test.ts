// OPC UA values as readings: sizes measured before anything is derived, values converted, and the
// transport limits the client holds the server to.
import { coerceLocalizedText, DataType, DataValue, makeEUInformation, StatusCodes, Variant, VariantArrayType } from 'node-opcua';
import { describe, expect, it } from 'vitest';
import { BoundedTransport, checkedValue, transportLimits, valueOf, variantSize } from '../../../../drivers/opcua/values.js';

const MiB = 1024 * 1024;

describe('OPC UA values', () => {
  it.each([
    ['a String, in UTF-8 bytes', new Variant({ dataType: DataType.String, value: 'é'.repeat(1000) }), 2000],
    ['a ByteString', new Variant({ dataType: DataType.ByteString, value: Buffer.alloc(MiB) }), MiB],
    ['a Double array', new Variant({ dataType: DataType.Double, arrayType: VariantArrayType.Array, value: new Float64Array(1000) }), 8000],
    // Every element costs at least 8 bytes, a null too: a million null Variants are 8 MB, not 0.
    [
      'a String array',
      new Variant({ dataType: DataType.String, arrayType: VariantArrayType.Array, value: ['abc', 'de', null, 'x'.repeat(20)] }),
      8 + 8 + 8 + 20,
    ],
    [
      'a Variant array of nulls',
      new Variant({
        dataType: DataType.Variant,
        arrayType: VariantArrayType.Array,
        value: Array.from({ length: 1000 }, () => new Variant({ dataType: DataType.Null })),
      }),
      8000,
    ],
    ['a Byte array', new Variant({ dataType: DataType.Byte, arrayType: VariantArrayType.Array, value: new Uint8Array(1000) }), 8000],
    [
      'a LocalizedText',
      new Variant({ dataType: DataType.LocalizedText, value: coerceLocalizedText({ text: 'x'.repeat(500), locale: 'en' }) }),
      502,
    ],
    ['an XmlElement', new Variant({ dataType: DataType.XmlElement, value: '<a/>' }), 4],
    ['a number', new Variant({ dataType: DataType.Double, value: 1.5 }), 8],
    ['nothing', new Variant({ dataType: DataType.Null }), 0],
  ])('measures %s', (_what, variant, bytes) => {
    expect(variantSize(variant)).toBe(bytes);
  });

  it('measures an ExtensionObject by its encoding', () => {
    const eu = makeEUInformation('m', 'x'.repeat(10_000), 'y'.repeat(10_000));
    expect(variantSize(new Variant({ dataType: DataType.ExtensionObject, value: eu }))).toBeGreaterThan(20_000);
  });

  it('refuses a value over the limit with its size, before converting it', () => {
    const dv = new DataValue({ value: new Variant({ dataType: DataType.String, value: 'x'.repeat(MiB) }), statusCode: StatusCodes.Good });
    expect(checkedValue(dv, 65_536)).toEqual({ ok: false, reason: 'value of 1048576 bytes, at most 65536' });
    expect(checkedValue(dv, MiB)).toEqual({ ok: true, value: 'x'.repeat(MiB) });
  });

  it('refuses a value whose text is over the limit, though its bytes are not (JSON of an array, base64)', () => {
    // 8,000 bytes of doubles, about 19 characters each as JSON text.
    const doubles = new Float64Array(1000).map((_, i) => Math.PI * i);
    const dv = new DataValue({
      value: new Variant({ dataType: DataType.Double, arrayType: VariantArrayType.Array, value: doubles }),
      statusCode: StatusCodes.Good,
    });
    expect(checkedValue(dv, 10_000)).toEqual({ ok: false, reason: expect.stringMatching(/^value of \d+ bytes as text, at most 10000$/) });
    expect(checkedValue(dv, 100_000)).toMatchObject({ ok: true });
  });

  it('converts values: 64-bit integers exactly, ByteStrings as base64, arrays as JSON', () => {
    expect(valueOf([0, 5], DataType.Int64)).toBe(5);
    expect(valueOf([0x7fffffff, 0xffffffff], DataType.Int64)).toBe('9223372036854775807');
    expect(valueOf([1, 2], DataType.Double)).toBe('[1,2]');
    expect(valueOf(Buffer.from('hi'))).toBe('aGk=');
    expect(valueOf(new Float64Array([1.5, 2]))).toBe('[1.5,2]');
    expect(valueOf(coerceLocalizedText({ text: 'Door open', locale: 'en' }))).toBe('Door open');
  });

  it('holds the server to the lower of its limits and ours, and to ours where it says none', () => {
    const own = transportLimits(16 * MiB);
    expect(own).toEqual({ maxMessageSize: 16 * MiB, maxChunkCount: 2048, receiveBufferSize: 65_536, sendBufferSize: 65_536 });
    const t = new BoundedTransport(own);
    t.setLimits({ receiveBufferSize: 0, sendBufferSize: 0, maxMessageSize: 0, maxChunkCount: 0 });
    expect([t.maxMessageSize, t.maxChunkCount, t.receiveBufferSize, t.sendBufferSize]).toEqual([16 * MiB, 2048, 65_536, 65_536]);
    t.setLimits({ receiveBufferSize: 2 ** 31, sendBufferSize: 2 ** 31, maxMessageSize: 2 ** 32 - 1, maxChunkCount: 2 ** 32 - 1 });
    expect([t.maxMessageSize, t.maxChunkCount, t.receiveBufferSize, t.sendBufferSize]).toEqual([16 * MiB, 2048, 65_536, 65_536]);
    t.setLimits({ receiveBufferSize: 8192, sendBufferSize: 8192, maxMessageSize: MiB, maxChunkCount: 128 });
    expect([t.maxMessageSize, t.maxChunkCount, t.receiveBufferSize, t.sendBufferSize]).toEqual([MiB, 128, 8192, 8192]);
    t.dispose();
  });
});
