// Modbus addresses as the site file writes them: `area:offset[.bit]`, 0-based offsets.
export const AREAS = ['hr', 'ir', 'co', 'di'] as const;
export type Area = (typeof AREAS)[number];

export interface Address {
  area: Area;
  offset: number;
  bit?: number;
}

export const ADDRESS_PATTERN = /^(hr|ir|co|di):(\d{1,5})(?:\.(\d{1,2}))?$/;

export function parseAddress(text: string): Address | undefined {
  const m = ADDRESS_PATTERN.exec(text);
  if (!m) return undefined;
  const offset = Number(m[2]);
  if (offset > 65535) return undefined;
  return m[3] === undefined ? { area: m[1] as Area, offset } : { area: m[1] as Area, offset, bit: Number(m[3]) };
}

export const isBitArea = (a: Area) => a === 'co' || a === 'di';

/** Protocol limits per read request (Modbus application protocol v1.1b3, function codes 1-4). */
export const MAX_REGISTERS_PER_READ = 125;
export const MAX_BITS_PER_READ = 2000;
