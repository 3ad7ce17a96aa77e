// The queries of the exported dashboards, in InfluxQL (InfluxDB 1.x, and 2.x/3.x through their v1
// compatibility) and in Flux (InfluxDB 2.x), over what the gateway writes (gateway/influx/line-protocol.ts):
// telemetry in the measurement named after the equipment category (tags site, equipment, code; one
// field per point; a reading that is not good as its own line with the tag point and the fields
// quality and reason), alarm events in `alarm`, risk assessments in `risk`, lab results in
// `lab_result`. Grafana fills in $timeFilter, $__interval, v.timeRangeStart... and ${equipment:regex}.

export type Flavor = 'influxql' | 'flux';

/** The dashboard variable that holds the equipment shown, as a regular expression of Grafana's. */
const EQUIPMENT_REGEX = '${equipment:regex}';

const influxqlString = (s: string) => `'${s.replace(/[\\']/g, (c) => `\\${c}`)}'`;
const influxqlName = (s: string) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
const fluxString = (s: string) => `"${s.replace(/[\\"$]/g, (c) => `\\${c}`)}"`;

/** How a point's values are summed up per interval: a mean for measured values, the last for states and codes. */
export type Reduce = 'mean' | 'last';

export interface QueryScope {
  site: string;
  /** The InfluxDB bucket (Flux only). */
  bucket: string;
  /** The retention policy the gateway writes to (InfluxQL only); the database's default when absent. */
  retentionPolicy?: string | undefined;
}

/** A measurement in an InfluxQL FROM clause, in the retention policy written to. */
const from = (s: QueryScope, measurement: string) =>
  s.retentionPolicy ? `${influxqlName(s.retentionPolicy)}.${influxqlName(measurement)}` : influxqlName(measurement);

export interface Query {
  text: string;
  format: 'time_series' | 'table';
  /** The legend of InfluxQL series. */
  alias?: string;
}

/** Equipment ids (letters, digits, `_`, `.`, `-`) as one regular expression of InfluxQL and Flux. */
const anyOf = (ids: readonly string[]) => `/^(${ids.map((id) => id.replace(/[^A-Za-z0-9_-]/g, (c) => `\\${c}`)).join('|')})$/`;

/**
 * A point's values per equipment. `only`: the equipment the panel is limited to besides the
 * dashboard's selection (those that give the point in the panel's unit).
 */
export function pointQuery(
  flavor: Flavor,
  s: QueryScope,
  measurement: string,
  point: string,
  reduce: Reduce,
  only?: readonly string[],
): Query {
  if (flavor === 'influxql')
    return {
      text: `SELECT ${reduce}(${influxqlName(point)}) FROM ${from(s, measurement)} WHERE "site" = ${influxqlString(s.site)} AND "equipment" =~ /^${EQUIPMENT_REGEX}$/${only ? ` AND "equipment" =~ ${anyOf(only)}` : ''} AND $timeFilter GROUP BY time($__interval), "equipment" fill(none)`,
      format: 'time_series',
      alias: '$tag_equipment',
    };
  return {
    text: [
      fluxFrom(s, measurement),
      `  |> filter(fn: (r) => r._field == ${fluxString(point)} and r.equipment =~ /^${EQUIPMENT_REGEX}$/${only ? ` and r.equipment =~ ${anyOf(only)}` : ''})`,
      '  |> keep(columns: ["_time", "_value", "_field", "equipment"])',
      `  |> aggregateWindow(every: v.windowPeriod, fn: ${reduce}, createEmpty: false)`,
    ].join('\n'),
    format: 'time_series',
  };
}

/** Readings that were not good, counted per equipment and point (their lines carry the tag `point`). */
export function qualityQuery(flavor: Flavor, s: QueryScope, measurement: string): Query {
  if (flavor === 'influxql')
    return {
      text: `SELECT count("quality") FROM ${from(s, measurement)} WHERE "site" = ${influxqlString(s.site)} AND "equipment" =~ /^${EQUIPMENT_REGEX}$/ AND $timeFilter GROUP BY time($__interval), "equipment", "point" fill(none)`,
      format: 'time_series',
      alias: '$tag_equipment $tag_point',
    };
  return {
    text: [
      fluxFrom(s, measurement),
      `  |> filter(fn: (r) => r._field == "quality" and r.equipment =~ /^${EQUIPMENT_REGEX}$/)`,
      '  |> keep(columns: ["_time", "_value", "_field", "equipment", "point"])',
      '  |> aggregateWindow(every: v.windowPeriod, fn: count, createEmpty: false)',
    ].join('\n'),
    format: 'time_series',
  };
}

/** Lab results of the instruments shown, per analyte. */
export function labResultQuery(flavor: Flavor, s: QueryScope): Query {
  if (flavor === 'influxql')
    return {
      text: `SELECT mean("value") FROM ${from(s, 'lab_result')} WHERE "site" = ${influxqlString(s.site)} AND "instrument" =~ /^${EQUIPMENT_REGEX}$/ AND $timeFilter GROUP BY time($__interval), "instrument", "analyte" fill(none)`,
      format: 'time_series',
      alias: '$tag_instrument $tag_analyte',
    };
  return {
    text: [
      fluxFrom(s, 'lab_result'),
      `  |> filter(fn: (r) => r._field == "value" and r.instrument =~ /^${EQUIPMENT_REGEX}$/)`,
      '  |> keep(columns: ["_time", "_value", "_field", "instrument", "analyte"])',
      '  |> aggregateWindow(every: v.windowPeriod, fn: mean, createEmpty: false)',
    ].join('\n'),
    format: 'time_series',
  };
}

/** Alarm events per interval by level: how busy the alarm system is. */
export function alarmRateQuery(flavor: Flavor, s: QueryScope): Query {
  if (flavor === 'influxql')
    return {
      text: `SELECT count("state") FROM ${from(s, 'alarm')} WHERE "site" = ${influxqlString(s.site)} AND $timeFilter GROUP BY time($__interval), "level" fill(none)`,
      format: 'time_series',
      alias: '$tag_level',
    };
  return {
    text: [
      fluxFrom(s, 'alarm'),
      '  |> filter(fn: (r) => r._field == "state")',
      '  |> keep(columns: ["_time", "_value", "_field", "level"])',
      '  |> aggregateWindow(every: v.windowPeriod, fn: count, createEmpty: false)',
    ].join('\n'),
    format: 'time_series',
  };
}

/**
 * Each alarm's last event in the time range: its state now, as the gateway last reported it. One row
 * per equipment and rule, not per level: an escalated alarm's level changes within its incident, and
 * a row per level would keep showing the state of the levels it has left (raised, at yellow) after
 * it cleared at red. The level is a column of the last event.
 */
export function alarmStateQuery(flavor: Flavor, s: QueryScope): Query {
  if (flavor === 'influxql')
    return {
      // A raw query grouped by tags: LIMIT applies to each series, so this is each alarm's last event.
      text: `SELECT "level", "state", "type" AS "event", "message" FROM ${from(s, 'alarm')} WHERE "site" = ${influxqlString(s.site)} AND $timeFilter GROUP BY "equipment", "rule" ORDER BY time DESC LIMIT 1`,
      format: 'table',
    };
  return {
    text: [
      fluxFrom(s, 'alarm'),
      '  |> filter(fn: (r) => r._field == "state" or r._field == "type" or r._field == "message")',
      '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")',
      '  |> group(columns: ["equipment", "rule"])',
      '  |> sort(columns: ["_time"])',
      '  |> last(column: "state")',
      '  |> group()',
      '  |> keep(columns: ["_time", "equipment", "rule", "level", "state", "type", "message"])',
    ].join('\n'),
    format: 'table',
  };
}

/** The alarm journal: the latest events, newest first. */
export function alarmLogQuery(flavor: Flavor, s: QueryScope): Query {
  if (flavor === 'influxql')
    return {
      text: `SELECT "equipment", "rule", "level", "type", "state", "message" FROM ${from(s, 'alarm')} WHERE "site" = ${influxqlString(s.site)} AND $timeFilter ORDER BY time DESC LIMIT 500`,
      format: 'table',
    };
  return {
    text: [
      fluxFrom(s, 'alarm'),
      '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")',
      '  |> group()',
      '  |> keep(columns: ["_time", "equipment", "rule", "level", "type", "state", "message"])',
      '  |> sort(columns: ["_time"], desc: true)',
      '  |> limit(n: 500)',
    ].join('\n'),
    format: 'table',
  };
}

/** One field of the risk assessments per equipment over time (`score`, `level_code`). */
export function riskQuery(flavor: Flavor, s: QueryScope, field: 'score' | 'level_code'): Query {
  if (flavor === 'influxql')
    return {
      text: `SELECT last(${influxqlName(field)}) FROM ${from(s, 'risk')} WHERE "site" = ${influxqlString(s.site)} AND $timeFilter GROUP BY time($__interval), "equipment" fill(none)`,
      format: 'time_series',
      alias: '$tag_equipment',
    };
  return {
    text: [
      fluxFrom(s, 'risk'),
      `  |> filter(fn: (r) => r._field == ${fluxString(field)})`,
      '  |> keep(columns: ["_time", "_value", "_field", "equipment"])',
      '  |> aggregateWindow(every: v.windowPeriod, fn: last, createEmpty: false)',
    ].join('\n'),
    format: 'time_series',
  };
}

/** Each equipment's latest risk assessment in the time range. */
export function riskTableQuery(flavor: Flavor, s: QueryScope): Query {
  if (flavor === 'influxql')
    return {
      text: `SELECT last("level") AS "level", last("score") AS "score", last("likelihood") AS "likelihood", last("consequence") AS "consequence" FROM ${from(s, 'risk')} WHERE "site" = ${influxqlString(s.site)} AND $timeFilter GROUP BY "equipment"`,
      format: 'table',
    };
  return {
    text: [
      fluxFrom(s, 'risk'),
      '  |> filter(fn: (r) => r._field == "level" or r._field == "score" or r._field == "likelihood" or r._field == "consequence")',
      '  |> last()',
      '  |> pivot(rowKey: ["equipment"], columnKey: ["_field"], valueColumn: "_value")',
      '  |> group()',
      '  |> keep(columns: ["equipment", "level", "score", "likelihood", "consequence"])',
    ].join('\n'),
    format: 'table',
  };
}

function fluxFrom(s: QueryScope, measurement: string): string {
  return [
    `from(bucket: ${fluxString(s.bucket)})`,
    '  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)',
    `  |> filter(fn: (r) => r._measurement == ${fluxString(measurement)} and r.site == ${fluxString(s.site)})`,
  ].join('\n');
}
