// The block planner: turns the points of one connection into the fewest read requests the
// protocol allows. Pure: no I/O, no clock.
import { type Area, isBitArea, MAX_BITS_PER_READ, MAX_REGISTERS_PER_READ } from './address.js';

export interface PlannedRead {
  unit: number;
  area: Area;
  /** First register (or bit) of the point. */
  offset: number;
  /** Registers (or bits) the point occupies. */
  count: number;
}

export interface Request {
  unit: number;
  area: Area;
  start: number;
  count: number;
  /** Indexes into the input list of the points this request covers. */
  points: number[];
}

export interface PlanOptions {
  /** Unused registers a request may read to join two points (bits: 16 times as many). */
  maxGap: number;
  /** Registers per request at most (devices that refuse long reads ask for fewer than 125). */
  maxRegisters: number;
}

/**
 * Per unit id and area, points sorted by offset are merged greedily while the gap between them is
 * at most maxGap and the request stays within the limit. Greedy is minimal here: a block can only
 * end where the next point cannot join it, and ending it earlier never lets a later block hold more.
 */
export function planRequests(points: readonly PlannedRead[], opts: PlanOptions): Request[] {
  const groups = new Map<string, number[]>();
  points.forEach((p, i) => {
    const key = `${p.unit}:${p.area}`;
    const list = groups.get(key);
    if (list) list.push(i);
    else groups.set(key, [i]);
  });
  const requests: Request[] = [];
  for (const indexes of groups.values()) {
    indexes.sort((a, b) => points[a]!.offset - points[b]!.offset || points[a]!.count - points[b]!.count);
    const first = points[indexes[0]!]!;
    const bits = isBitArea(first.area);
    const limit = bits ? MAX_BITS_PER_READ : Math.min(MAX_REGISTERS_PER_READ, opts.maxRegisters);
    const gap = bits ? opts.maxGap * 16 : opts.maxGap;
    let current: Request | undefined;
    let end = 0;
    for (const i of indexes) {
      const p = points[i]!;
      const pEnd = p.offset + p.count;
      if (current && p.offset - end <= gap && Math.max(end, pEnd) - current.start <= limit) {
        current.points.push(i);
        end = Math.max(end, pEnd);
        current.count = end - current.start;
      } else {
        current = { unit: p.unit, area: p.area, start: p.offset, count: p.count, points: [i] };
        end = pEnd;
        requests.push(current);
      }
    }
  }
  return requests;
}
