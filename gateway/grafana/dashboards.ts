// The dashboards of `gateway grafana export`: one per equipment template the site uses (equipment
// without a template: one per category), with a variable for that template's equipment of the site
// and one panel per point, and a site overview with the alarms and the risk levels. Everything comes
// from the site file and the templates; nothing depends on the time or the order of a map, so two
// exports of one site file are byte for byte the same.
import { createHash } from 'node:crypto';
import { CATEGORIES, type SiteConfig } from '../../config/schema.js';
import type { Template } from '../../config/templates.js';
import type { RuleConfig } from '../../config/rules-schema.js';
import type { GatewayDashboard, GatewayPanel, InfluxTarget, Json, StateTimelinePanel, TablePanel, TimeSeriesPanel } from './model.js';
import type { ThresholdsConfig, ValueMapping } from '@grafana/schema';
import {
  alarmLogQuery,
  alarmRateQuery,
  alarmStateQuery,
  type Flavor,
  labResultQuery,
  pointQuery,
  type Query,
  type QueryScope,
  qualityQuery,
  type Reduce,
  riskQuery,
  riskTableQuery,
} from './queries.js';

/** The dashboard JSON model version of Grafana 12 and 13 (@grafana/schema's defaultDashboard). */
export const SCHEMA_VERSION = 42;

export interface Exported {
  uid: string;
  /** The file name under dashboards/. */
  file: string;
  dashboard: GatewayDashboard;
}

type Equipment = SiteConfig['equipment'][number];

/** Stable ids: the same site, group and flavor give the same uid, so a new export replaces the dashboard. */
export function stableUid(site: string, ...parts: string[]): string {
  const slug = (s: string, n: number) =>
    s
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, n);
  const hash = createHash('sha256')
    .update([site, ...parts].join('\0'))
    .digest('hex')
    .slice(0, 8);
  // Grafana takes at most 40 characters of [A-Za-z0-9_-].
  return `gw-${slug(site, 14)}-${slug(parts[0] ?? '', 10)}-${hash}`.replace(/--+/g, '-');
}

const LEVEL_COLORS: Record<string, string> = { blue: 'blue', yellow: 'yellow', orange: 'orange', red: 'red' };

/** Grafana's unit ids for the units templates use; any other is shown as written. */
const UNITS: Record<string, string> = {
  '°C': 'celsius',
  '%': 'percent',
  Pa: 'pressurepa',
  kPa: 'pressurekpa',
  bar: 'pressurebar',
  mbar: 'pressurembar',
  psi: 'pressurepsi',
  kg: 'masskg',
  t: 'masst',
  'm/s': 'velocityms',
  mm: 'lengthmm',
  m: 'lengthm',
  W: 'watt',
  kW: 'kwatt',
  kWh: 'kwatth',
  V: 'volt',
  A: 'amp',
  Hz: 'hertz',
  s: 's',
};

export function grafanaUnit(unit: string | undefined): string | undefined {
  if (unit === undefined || unit === '') return undefined;
  return UNITS[unit] ?? `suffix: ${unit}`;
}

export interface DashboardContext {
  config: SiteConfig;
  templates: ReadonlyMap<string, Template>;
  flavor: Flavor;
  datasourceUid: string;
  /** The bucket of Flux queries. */
  bucket: string;
  /** The retention policy of InfluxQL queries, when the site writes to one. */
  retentionPolicy?: string | undefined;
  /** Appended to each title when one export writes both flavors. */
  titleSuffix: string;
}

interface Group {
  key: string;
  title: string;
  measurement: string;
  template?: Template | undefined;
  equipment: Equipment[];
  points: Array<{
    name: string;
    unit?: string | undefined;
    description?: string | undefined;
    /** The equipment the panel is limited to: those that give the point in this unit, where others give another. */
    only?: string[] | undefined;
  }>;
}

/** The equipment by template (or category when it has none), in a stable order. */
function groupsOf(config: SiteConfig, templates: ReadonlyMap<string, Template>): Group[] {
  const groups = new Map<string, Group>();
  for (const e of config.equipment) {
    const template = typeof e.template === 'string' ? templates.get(e.template) : undefined;
    const key = template ? template.template : `category-${e.category}`;
    let g = groups.get(key);
    if (!g) {
      g = {
        key,
        title: template ? template.name : `${e.category.replace(/_/g, ' ')} (no template)`,
        measurement: e.category,
        template,
        equipment: [],
        points: [],
      };
      groups.set(key, g);
    }
    g.equipment.push(e);
  }
  for (const g of groups.values()) {
    g.equipment.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    // The template's points in its order, then the site's own points of these equipment by name.
    const seen = new Map<string, Group['points'][number]>();
    for (const p of g.template?.points ?? []) if (g.equipment.some((e) => e.points.some((q) => q.name === p.name))) seen.set(p.name, p);
    const own = g.equipment
      .flatMap((e) => e.points)
      .filter((p) => !seen.has(p.name))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const p of own) if (!seen.has(p.name)) seen.set(p.name, { name: p.name, unit: p.unit as string | undefined });
    // The unit the site gives wins over the template's (the loader refuses a different one for a
    // template's point). A point of the site's own that its equipment give in different units (a
    // meter's power in W, another's in kW) gets a panel per unit, each limited to its equipment:
    // one panel would show the kW in W.
    g.points = [...seen.values()].flatMap((p) => {
      const byUnit = new Map<string | undefined, string[]>();
      for (const e of g.equipment) {
        const q = e.points.find((x) => x.name === p.name);
        if (!q) continue;
        const unit = (q.unit as string | undefined) ?? p.unit;
        byUnit.set(unit, [...(byUnit.get(unit) ?? []), e.id]);
      }
      if (byUnit.size <= 1) return [{ ...p, unit: byUnit.keys().next().value ?? p.unit }];
      return [...byUnit].map(([unit, only]) => ({ ...p, unit, only }));
    });
  }
  return [...groups.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** The dashboards of the site for one flavor: one per group, and the overview. */
export function buildDashboards(ctx: DashboardContext): Exported[] {
  const site = ctx.config.gateway.site;
  const groups = groupsOf(ctx.config, ctx.templates);
  const out: Exported[] = [];
  const overviewUid = stableUid(site, 'overview', ctx.flavor);
  for (const g of groups) {
    const uid = groupUid(site, g.template?.template, g.measurement, ctx.flavor);
    out.push({ uid, file: `${uid}.json`, dashboard: groupDashboard(ctx, g, uid) });
  }
  out.push({ uid: overviewUid, file: `${overviewUid}.json`, dashboard: overviewDashboard(ctx, overviewUid) });
  return out;
}

/** The uid of the dashboard of a template's equipment, or of a category's without a template. */
function groupUid(site: string, template: string | undefined, category: string, flavor: Flavor): string {
  return template ? stableUid(site, template, template, flavor) : stableUid(site, category, `category-${category}`, flavor);
}

/**
 * The file names of every dashboard an export of this site could make, with any template and
 * category and either flavor: what a later export may remove as its own. The site is in each
 * name's hash, so another site's files and anyone else's are never among them.
 */
export function possibleFiles(site: string, templates: ReadonlyMap<string, Template>): Set<string> {
  const files = new Set<string>();
  for (const flavor of ['influxql', 'flux'] as const) {
    files.add(`${stableUid(site, 'overview', flavor)}.json`);
    for (const t of templates.keys()) files.add(`${groupUid(site, t, '', flavor)}.json`);
    for (const c of CATEGORIES) files.add(`${groupUid(site, undefined, c, flavor)}.json`);
  }
  return files;
}

function scope(ctx: DashboardContext): QueryScope {
  return { site: ctx.config.gateway.site, bucket: ctx.bucket, retentionPolicy: ctx.retentionPolicy };
}

function target(ctx: DashboardContext, q: Query, refId = 'A'): InfluxTarget {
  return {
    refId,
    datasource: { type: 'influxdb', uid: ctx.datasourceUid },
    query: q.text,
    rawQuery: true,
    resultFormat: q.format,
    ...(q.alias !== undefined ? { alias: q.alias } : {}),
  };
}

/** Panels two to a row, 12 columns by 8 rows each; ids from 1 in order. */
function laidOut(panels: Array<Omit<GatewayPanel, 'id' | 'gridPos'> & { width?: number }>): GatewayPanel[] {
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  return panels.map((p, i) => {
    const { width = 12, ...panel } = p;
    if (x + width > 24) {
      x = 0;
      y += rowHeight;
      rowHeight = 0;
    }
    const gridPos = { h: 8, w: width, x, y };
    x += width;
    rowHeight = Math.max(rowHeight, 8);
    return { ...panel, id: i + 1, gridPos } as GatewayPanel;
  });
}

function base(
  ctx: DashboardContext,
  uid: string,
  title: string,
  description: string,
  tags: string[],
): Omit<GatewayDashboard, 'panels' | 'templating'> {
  const site = ctx.config.gateway.site;
  return {
    uid,
    title: `${site}: ${title}${ctx.titleSuffix}`,
    description,
    tags: ['gateway', site, ...tags].sort(),
    editable: true,
    graphTooltip: 1,
    schemaVersion: SCHEMA_VERSION,
    version: 1,
    refresh: '10s',
    time: { from: 'now-6h', to: 'now' },
    timepicker: {},
    timezone: 'browser',
    fiscalYearStartMonth: 0,
    liveNow: false,
    annotations: { list: [] },
    links: [
      {
        title: 'Site dashboards',
        type: 'dashboards',
        tags: ['gateway', site],
        asDropdown: true,
        includeVars: false,
        keepTime: true,
        icon: 'external link',
        targetBlank: false,
        tooltip: '',
        url: '',
      },
    ],
  };
}

function groupDashboard(ctx: DashboardContext, g: Group, uid: string): GatewayDashboard {
  const s = scope(ctx);
  const panels: Array<Omit<GatewayPanel, 'id' | 'gridPos'>> = [];
  for (const p of g.points) {
    // A point with a unit is a measured value, graphed by its mean; one without is a state, a code
    // or a counter (`flame`, `fault_code`), shown by its last value per interval (a mean of a
    // boolean InfluxDB refuses, and one of a code means nothing).
    const reduce: Reduce = p.unit ? 'mean' : 'last';
    const q = target(ctx, pointQuery(ctx.flavor, s, g.measurement, p.name, reduce, p.only));
    const only = p.only ? `: ${p.only.join(', ')}` : '';
    const description = `${p.description ?? p.name}${p.unit ? ` (${p.unit})` : ''}: field ${p.name} of measurement ${g.measurement}.${
      p.only ? ` Only ${p.only.join(', ')}: the other equipment here give ${p.name} in another unit, in a panel of their own.` : ''
    }`;
    if (p.unit) {
      const limits = thresholdsOf(p.only ? { ...g, equipment: g.equipment.filter((e) => p.only!.includes(e.id)) } : g, p.name);
      panels.push(
        timeSeries(
          `${p.name} (${p.unit})${only}`,
          limits.note ? `${description} ${limits.note}` : description,
          [q],
          grafanaUnit(p.unit),
          limits.thresholds,
        ),
      );
    } else {
      panels.push(stateTimeline(`${p.name}${only}`, description, [q]));
    }
  }
  panels.push(
    timeSeries(
      'Readings not good',
      `Readings of bad or uncertain quality per equipment and point (lines of measurement ${g.measurement} with the tag point): the gateway never writes a made-up value for them.`,
      [target(ctx, qualityQuery(ctx.flavor, s, g.measurement))],
      'short',
    ),
  );
  if (g.measurement === 'lab_analyzer')
    panels.push(
      timeSeries(
        'Lab results',
        'Numeric results of the instruments shown, per analyte (measurement lab_result; the sample id is a field, never a tag).',
        [target(ctx, labResultQuery(ctx.flavor, s))],
      ),
    );
  const ids = g.equipment.map((e) => e.id);
  const names = g.equipment.map((e) => `${e.id}${e.name ? ` (${String(e.name)})` : ''}`).join(', ');
  return {
    ...base(
      ctx,
      uid,
      g.title,
      `${g.title} of site ${ctx.config.gateway.site}: ${names}. Generated by gateway grafana export from the site file; export again rather than edit.`,
      [g.template ? g.template.template : g.measurement, g.measurement],
    ),
    panels: laidOut(panels),
    templating: {
      list: [
        {
          type: 'custom',
          name: 'equipment',
          label: 'Equipment',
          description: 'Equipment of the site file with this template',
          query: ids.join(','),
          multi: true,
          includeAll: true,
          current: { selected: true, text: ['All'], value: ['$__all'] },
          options: [{ selected: true, text: 'All', value: '$__all' }, ...ids.map((id) => ({ selected: false, text: id, value: id }))],
          hide: 0,
          skipUrlSync: false,
        },
      ],
    },
  };
}

function overviewDashboard(ctx: DashboardContext, uid: string): GatewayDashboard {
  const s = scope(ctx);
  const panels: Array<Omit<GatewayPanel, 'id' | 'gridPos'> & { width?: number }> = [
    {
      ...table(
        'Alarms: last state',
        "Each alarm's last event in the last 30 days, whatever the dashboard's time range, so an alarm raised before that range and still active is listed (measurement alarm): its time, its level then (an escalated alarm's rises), its state, the event and the message. An alarm with no event in 30 days is not: the gateway lists every alarm that is not normal at GET /api/alarms.",
        [target(ctx, alarmStateQuery(ctx.flavor, s))],
      ),
      // The state now of an alarm is its last event, however long ago: the dashboard's range (6 h)
      // would leave out a red alarm raised yesterday and still unacknowledged.
      timeFrom: LAST_STATE_LOOKBACK,
      width: 24,
    },
    timeSeries(
      'Alarm events by level',
      'Alarm events (raised, acknowledged, cleared...) per interval, by level.',
      [target(ctx, alarmRateQuery(ctx.flavor, s))],
      'short',
      undefined,
      true,
    ),
    stateTimeline(
      'Risk level',
      'Risk level of each equipment (measurement risk, field level_code: 0 blue, 1 yellow, 2 orange, 3 red; docs/risk.md).',
      [target(ctx, riskQuery(ctx.flavor, s, 'level_code'))],
      LEVEL_MAPPINGS,
    ),
    timeSeries(
      'Risk score',
      'Risk score of each equipment (measurement risk, field score).',
      [target(ctx, riskQuery(ctx.flavor, s, 'score'))],
      'short',
    ),
    {
      ...table(
        'Risk now',
        "Each equipment's latest risk assessment in the last 30 days, whatever the dashboard's time range (the gateway writes one when it changes): level, score, likelihood and consequence class.",
        [target(ctx, riskTableQuery(ctx.flavor, s))],
        true,
      ),
      timeFrom: LAST_STATE_LOOKBACK,
    },
    { ...table('Alarm journal', 'The latest alarm events, newest first.', [target(ctx, alarmLogQuery(ctx.flavor, s))]), width: 24 },
  ];
  return {
    ...base(
      ctx,
      uid,
      'site overview',
      `Alarms and risk of site ${ctx.config.gateway.site}. Generated by gateway grafana export from the site file.`,
      ['overview'],
    ),
    panels: laidOut(panels),
    templating: { list: [] },
  };
}

/**
 * How far back the tables of each alarm's state and each equipment's risk now look, whatever the
 * dashboard's time range (Grafana's relative time): the gateway writes a change only.
 */
const LAST_STATE_LOOKBACK = '30d';

const LEVEL_MAPPINGS: Array<Json<ValueMapping>> = [
  {
    type: 'value',
    options: {
      '0': { text: 'blue', color: 'blue', index: 0 },
      '1': { text: 'yellow', color: 'yellow', index: 1 },
      '2': { text: 'orange', color: 'orange', index: 2 },
      '3': { text: 'red', color: 'red', index: 3 },
    },
  },
];

const NO_THRESHOLDS: Json<ThresholdsConfig> = { mode: 'absolute', steps: [{ color: 'green', value: null }] };

function timeSeries(
  title: string,
  description: string,
  targets: InfluxTarget[],
  unit?: string,
  thresholds?: Json<ThresholdsConfig>,
  bars = false,
): Omit<TimeSeriesPanel, 'id' | 'gridPos'> {
  return {
    type: 'timeseries',
    title,
    description,
    datasource: targets[0]!.datasource,
    targets,
    options: {
      legend: { calcs: [], displayMode: 'list', placement: 'bottom', showLegend: true },
      tooltip: { mode: 'multi', sort: 'none' },
    },
    fieldConfig: {
      defaults: {
        ...(unit !== undefined ? { unit } : {}),
        thresholds: thresholds ?? NO_THRESHOLDS,
        custom: {
          drawStyle: bars ? 'bars' : 'line',
          lineWidth: 1,
          fillOpacity: bars ? 80 : 0,
          spanNulls: false,
          showPoints: 'never',
          ...(bars ? { stacking: { mode: 'normal', group: 'A' } } : {}),
          thresholdsStyle: { mode: thresholds ? 'line' : 'off' },
        },
      },
      overrides: [],
    },
  };
}

function stateTimeline(
  title: string,
  description: string,
  targets: InfluxTarget[],
  mappings?: Array<Json<ValueMapping>>,
): Omit<StateTimelinePanel, 'id' | 'gridPos'> {
  return {
    type: 'state-timeline',
    title,
    description,
    datasource: targets[0]!.datasource,
    targets,
    options: {
      legend: { calcs: [], displayMode: 'list', placement: 'bottom', showLegend: false },
      tooltip: { mode: 'single', sort: 'none' },
      rowHeight: 0.9,
      showValue: 'auto',
      mergeValues: true,
      alignValue: 'left',
    },
    fieldConfig: {
      defaults: {
        thresholds: NO_THRESHOLDS,
        mappings: mappings ?? [],
        custom: { fillOpacity: 70, lineWidth: 0 },
        color: { mode: mappings ? 'thresholds' : 'palette-classic' },
      },
      overrides: [],
    },
  };
}

/**
 * A table. `hideTime`: for InfluxQL queries of several last() (each equipment's last risk), whose
 * time column is the start of the time range, not a time of the data.
 */
function table(title: string, description: string, targets: InfluxTarget[], hideTime = false): Omit<TablePanel, 'id' | 'gridPos'> {
  return {
    type: 'table',
    title,
    description,
    datasource: targets[0]!.datasource,
    targets,
    ...(hideTime ? { transformations: [{ id: 'organize', options: { excludeByName: { Time: true } } }] } : {}),
    options: { showHeader: true, frameIndex: 0, cellHeight: 'sm' },
    fieldConfig: {
      defaults: { thresholds: NO_THRESHOLDS, custom: { align: 'auto', cellOptions: { type: 'auto' }, inspect: false, filterable: true } },
      overrides: [],
    },
  };
}

type Bound = { value: number; color: string; low: boolean };

/**
 * Thresholds of a point from its template's rules and each equipment's limits: a `limits` rule's
 * hihi/hi/lo/lolo, and a `when` comparing the point with a number or a limit (`steam_pressure >=
 * 0.96 * safety_valve_pressure`). Shown only when every equipment of the dashboard has the same.
 */
export function thresholdsOf(
  g: Pick<Group, 'template' | 'equipment'>,
  point: string,
): { thresholds?: Json<ThresholdsConfig>; note?: string } {
  const rules = g.template?.rules ?? [];
  const perEquipment = g.equipment.map((e) => {
    const disabled = (e.disabled_rules as string[] | undefined) ?? [];
    return boundsOf(
      rules.filter((r) => !disabled.includes(r.id)),
      point,
      e.limits as Record<string, unknown>,
    );
  });
  const first = perEquipment[0];
  if (!first || first.length === 0) return {};
  if (perEquipment.some((b) => JSON.stringify(b) !== JSON.stringify(first)))
    return { note: 'The equipment shown have different limits on it: no threshold is drawn.' };
  const lows = first.filter((b) => b.low).sort((a, b) => a.value - b.value);
  const highs = first.filter((b) => !b.low).sort((a, b) => a.value - b.value);
  // Grafana colours from each step's value upward: below the lowest low limit is that limit's colour.
  const steps: Json<ThresholdsConfig>['steps'] = [{ color: lows[0]?.color ?? 'green', value: null }];
  lows.forEach((b, i) => steps.push({ color: lows[i + 1]?.color ?? 'green', value: b.value }));
  for (const b of highs) steps.push({ color: b.color, value: b.value });
  return { thresholds: { mode: 'absolute', steps } };
}

function boundsOf(rules: RuleConfig[], point: string, limits: Record<string, unknown>): Bound[] {
  const valueOf = (v: unknown): number | undefined => {
    const n = typeof v === 'string' ? limits[v] : v;
    return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
  };
  const out: Bound[] = [];
  for (const r of rules) {
    if (r.limits && r.limits.point === point) {
      const levels = r.limits.levels ?? {};
      for (const [key, low, fallback] of [
        ['lolo', true, 'red'],
        ['lo', true, 'yellow'],
        ['hi', false, 'yellow'],
        ['hihi', false, 'red'],
      ] as const) {
        const value = valueOf(r.limits[key]);
        if (value !== undefined) out.push({ value, low, color: LEVEL_COLORS[levels[key] ?? fallback] ?? fallback });
      }
    }
    const m = r.when
      ? /^\s*([A-Za-z_]\w*)\s*(>=|>|<=|<)\s*(?:(\d+(?:\.\d+)?)\s*\*\s*)?([A-Za-z_]\w*|-?\d+(?:\.\d+)?)\s*$/.exec(r.when)
      : null;
    if (m && m[1] === point) {
      const base = /^[A-Za-z_]/.test(m[4]!) ? valueOf(m[4]) : Number(m[4]);
      if (base !== undefined) {
        const value = Math.round(base * (m[3] ? Number(m[3]) : 1) * 1e9) / 1e9;
        out.push({ value, low: m[2]!.startsWith('<'), color: LEVEL_COLORS[r.level ?? 'red'] ?? 'red' });
      }
    }
  }
  // One limit given by two rules (a limits rule and a when) is drawn once.
  const seen = new Set<string>();
  return out
    .filter((b) => {
      const k = `${b.value}:${b.low}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    })
    .sort((a, b) => a.value - b.value || Number(a.low) - Number(b.low));
}
