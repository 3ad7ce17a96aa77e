// Hot reload (docs/reload.md): what of a changed site file a running gateway can take without a
// restart, and the answer to a reload asked for by SIGHUP or POST /api/config/reload.
import { EQUIPMENT_BASE_KEYS, type SiteConfig } from '../config/schema.js';
import { formatPath } from '../config/load.js';
import { isLabInstrument } from './lab/daily.js';
import { RULES_ONLY_KEYS, type ConnectionChanges } from './services/devices.js';

/**
 * The keys of an equipment entry a reload swaps in. The rules read its limits and its template's
 * rules; its driver reads its connection, poll interval, its own keys (unit_id...) and the points'
 * addresses. Its points (names, units, types) are followed by every part that describes them
 * (pointsChanged). Everything else of an equipment (its id, name, code, category, template, dates,
 * lab settings, a lab instrument's points) is also read by parts made once at start (the InfluxDB
 * writer's tags, the platform's incidents, the risk judgement, the lab services): changing it needs
 * a restart.
 */
const EQUIPMENT_RELOADABLE = new Set([...RULES_ONLY_KEYS, 'connection', 'poll_interval']);
/** The equipment keys read beyond the rules and the driver: every entry's own keys and what the loader adds from a template. */
const EQUIPMENT_FIXED = new Set([...EQUIPMENT_BASE_KEYS, 'points', 'risk_factors']);
/** The keys of a point every part reads; its other keys are its driver's (address, register, scale...). */
const POINT_FIXED = ['name', 'unit', 'type'];
/** The site-file sections a reload swaps in whole; any other section needs a restart. */
const SECTIONS_RELOADABLE = new Set(['rules', 'connections', 'equipment']);
/** At most this many paths are listed; the rest are counted. */
const MAX_LISTED = 20;

/** What an operator is told when a reload is refused: one `path: message` line each. */
export interface ReloadRefusal {
  ok: false;
  /** `invalid`: the new file does not load; `restart`: it changes what needs a restart; `busy`: not now. */
  reason: 'invalid' | 'restart' | 'busy';
  message: string;
  problems: string[];
}

export interface ReloadDone {
  ok: true;
  /** Alarms (rules per equipment) by what the reload did to them. */
  alarms: { unchanged: number; changed: number; added: number; removed: number };
  connections: ConnectionChanges;
  ms: number;
}

export type ReloadOutcome = ReloadDone | ReloadRefusal;

/**
 * The paths where `next` differs from `running` in what a reload cannot swap in, as
 * `path: needs a restart` lines (empty: the reload can apply it all). Values are never shown: a
 * changed password is named by its path only.
 */
export function restartNeeded(running: SiteConfig, next: SiteConfig): string[] {
  const out: string[] = [];
  const a = running as unknown as Record<string, unknown>;
  const b = next as unknown as Record<string, unknown>;
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (SECTIONS_RELOADABLE.has(key)) continue;
    differences(a[key], b[key], [key], out);
  }
  const changed = equipmentChanged(running, next);
  const added = next.equipment.filter((e) => changed.added.includes(e.id));
  const removed = running.equipment.filter((e) => changed.removed.includes(e.id));
  // The risk judgement and the lab services are made from the equipment at start (docs/reload.md).
  const why = (list: SiteConfig['equipment']) =>
    next.risk.enabled ? ' with risk.enabled' : list.some(isLabInstrument) ? ' (lab instruments)' : undefined;
  const say = (what: string, list: SiteConfig['equipment']) => {
    const reason = list.length > 0 ? why(list) : undefined;
    if (reason !== undefined) out.push(`equipment: equipment ${what} (${list.map((e) => e.id).join(', ')})${reason}: needs a restart`);
  };
  say('added', added);
  say('removed', removed);
  next.equipment.forEach((e, i) => {
    const before = running.equipment.find((r) => r.id === e.id);
    if (before) differences(fixedOf(before), fixedOf(e), ['equipment', i], out);
  });
  if (out.length <= MAX_LISTED) return out;
  return [...out.slice(0, MAX_LISTED), `(root): and ${out.length - MAX_LISTED} more changes that need a restart`];
}

/** What of an equipment entry needs a restart to change. */
function fixedOf(e: SiteConfig['equipment'][number]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) {
    // A key of the driver's (unit_id, byte_order, topic...) is the driver's alone: it reopens the connection.
    if (EQUIPMENT_RELOADABLE.has(k) || !EQUIPMENT_FIXED.has(k)) continue;
    // Points are swapped in (pointsChanged), except a lab instrument's: its analytes are the lab services'.
    if (k === 'points' && !isLabInstrument(e)) continue;
    out[k] =
      k === 'points' && Array.isArray(v)
        ? v.map((p: Record<string, unknown>) => Object.fromEntries(POINT_FIXED.filter((f) => f in p).map((f) => [f, p[f]])))
        : v;
  }
  return out;
}

/** The equipment ids of `next` that `running` did not have, and those it had that `next` has not. */
export function equipmentChanged(running: SiteConfig, next: SiteConfig): { added: string[]; removed: string[] } {
  const before = new Set(running.equipment.map((e) => e.id));
  const after = new Set(next.equipment.map((e) => e.id));
  return { added: [...after].filter((id) => !before.has(id)), removed: [...before].filter((id) => !after.has(id)) };
}

/** The equipment (of both configs) whose points differ in name, unit or type: the parts that describe them follow. */
export function pointsChanged(running: SiteConfig, next: SiteConfig): string[] {
  const described = (e: SiteConfig['equipment'][number]) =>
    JSON.stringify(e.points.map((p) => POINT_FIXED.map((f) => (p as unknown as Record<string, unknown>)[f])));
  return next.equipment
    .filter((e) => {
      const before = running.equipment.find((r) => r.id === e.id);
      return before !== undefined && described(before) !== described(e);
    })
    .map((e) => e.id);
}

function differences(a: unknown, b: unknown, path: Array<string | number>, out: string[]): void {
  if (Object.is(a, b)) return;
  const objects = a !== null && b !== null && typeof a === 'object' && typeof b === 'object';
  if (!objects || Array.isArray(a) !== Array.isArray(b) || (Array.isArray(a) && a.length !== (b as unknown[]).length)) {
    out.push(`${formatPath(path)}: needs a restart`);
    return;
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  for (const key of new Set([...Object.keys(x), ...Object.keys(y)]))
    differences(x[key], y[key], [...path, Array.isArray(a) ? Number(key) : key], out);
}

/** One line for the log and the audit journal. */
export function describeOutcome(o: ReloadOutcome): string {
  if (!o.ok) return `refused (${o.reason}): ${o.message}`;
  const c = o.connections;
  const list = (name: string, ids: string[]) => (ids.length > 0 ? [`${name} ${ids.join(', ')}`] : []);
  return [
    `applied in ${o.ms} ms`,
    `alarms ${o.alarms.unchanged} unchanged, ${o.alarms.changed} changed, ${o.alarms.added} added, ${o.alarms.removed} removed`,
    `connections kept ${c.kept.length}`,
    ...list('restarted', c.restarted),
    ...list('added', c.added),
    ...list('removed', c.removed),
    ...list('failed to start', c.failed),
  ].join('; ');
}
