// The daily report as one self-contained HTML page: opened from disk or printed, with no script, no
// font and nothing fetched. Every value is escaped: equipment names, alarm messages and sample ids
// come from site files and from peers, and a page that ran what they hold would be an attack on
// whoever opens it.
import { createHash } from 'node:crypto';
import type { Counts, DailyReport, Durations, IncidentList } from './types.js';
import { localDateTime, localTime } from './time.js';

const LEVEL_NAMES = { blue: 'blue 蓝', yellow: 'yellow 黄', orange: 'orange 橙', red: 'red 红' } as const;
const LEVEL_ORDER = ['red', 'orange', 'yellow', 'blue'] as const;

export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const e = escapeHtml;

function duration(ms: number | undefined): string {
  if (ms === undefined) return '–';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function level(l: string | undefined): string {
  return l ? `<span class="lv lv-${e(l)}">${e(LEVEL_NAMES[l as keyof typeof LEVEL_NAMES] ?? l)}</span>` : '–';
}

function table(head: string[], rows: string[][], empty: string): string {
  if (rows.length === 0) return `<p class="none">${e(empty)}</p>`;
  return `<table><thead><tr>${head.map((h) => `<th>${e(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

/** "and N more", when a list shows fewer than there are. */
function more(shown: number, total: number, what: string): string {
  return total > shown ? `<p class="more">and ${total - shown} more ${e(what)} (还有 ${total - shown} 条未列出)</p>` : '';
}

function section(id: string, title: string, chinese: string, body: string): string {
  return `<section id="${id}"><h2>${e(title)} <span class="zh">${e(chinese)}</span></h2>${body}</section>`;
}

function counts(c: Counts): string {
  return LEVEL_ORDER.map((l) => `${level(l)} ${c[l]}`).join(' &nbsp; ');
}

function durationsLine(name: string, d: Durations): string {
  return `<tr><th>${e(name)}</th><td>${d.count}</td><td>${duration(d.medianMs)}</td><td>${duration(d.p90Ms)}</td><td>${duration(d.maxMs)}</td></tr>`;
}

function incidents(list: IncidentList, tz: string, what: string): string {
  const t = (iso: string | undefined) => (iso ? e(localDateTime(Date.parse(iso), tz)) : '–');
  const rows = list.incidents.map((i) => [
    level(i.level),
    e(i.equipment),
    `${e(i.message)}<div class="sub">${e(i.rule)} · ${e(i.incidentId)}</div>`,
    i.carriedOver ? 'earlier 此前' : t(i.raisedAt),
    `${t(i.acknowledgedAt)}${i.acknowledgedBy ? `<div class="sub">${e(i.acknowledgedBy)}</div>` : ''}`,
    t(i.clearedAt),
    e(duration(i.timeToAckMs)),
    e(duration(i.timeToClearMs)),
  ]);
  return (
    `<p>Raised 发生: <b>${list.raised}</b> &nbsp; ${counts(list.byLevel)} &nbsp; · incidents with events this day 当日涉及: ${list.total}</p>` +
    table(
      [
        'Level 等级',
        'Equipment 设备',
        'Alarm 报警',
        'Raised 发生',
        'Acknowledged 确认',
        'Cleared 消除',
        'To ack 确认用时',
        'To clear 消除用时',
      ],
      rows,
      `No ${what} this day. 当日无。`,
    ) +
    more(list.incidents.length, list.total, what)
  );
}

const CSS = `
  body { font: 14px/1.45 system-ui, "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; margin: 24px; color: #1a1a1a; }
  h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 2px solid #333; padding-bottom: 2px; }
  .zh { color: #555; font-weight: normal; } .meta { color: #444; } .sub { color: #666; font-size: 12px; }
  table { border-collapse: collapse; width: 100%; margin: 6px 0; } th, td { border: 1px solid #bbb; padding: 3px 6px; text-align: left; vertical-align: top; }
  thead th { background: #eee; } .none, .more { color: #555; font-style: italic; } .notes li { color: #7a4b00; }
  .lv { display: inline-block; padding: 0 6px; border-radius: 3px; font-weight: 600; white-space: nowrap; }
  .lv-blue { background: #dbe9ff; color: #0b3d91; } .lv-yellow { background: #fff3b0; color: #6b5500; }
  .lv-orange { background: #ffd9b0; color: #7a3a00; } .lv-red { background: #ffc9c9; color: #8a0000; }
  @media print {
    body { margin: 0; font-size: 11px; } h2 { break-after: avoid; } tr, .lv { break-inside: avoid; }
    section { break-inside: auto; } thead { display: table-header-group; }
    .lv { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
    @page { size: A4; margin: 12mm; }
  }`;

/**
 * The CSP source that allows the report's one style block and nothing else: the dashboard opens a
 * kept report in a tab of its own (a blob: page, under the dashboard's policy), where an inline
 * style needs its hash.
 */
export const REPORT_STYLE_SOURCE = `'sha256-${createHash('sha256').update(CSS).digest('base64')}'`;

/** The report's style block, for a page that shows a report under another policy (tests). */
export const REPORT_CSS = CSS;

/** The report as a page; its title names the site and the date. */
export function renderDailyReport(r: DailyReport): string {
  const tz = r.timezone;
  const names = new Map(r.equipment.map((q) => [q.id, q.name]));
  const eq = (id: string) => `${e(id)}${names.get(id) ? `<div class="sub">${e(names.get(id))}</div>` : ''}`;
  const at = (iso: string) => e(localTime(Date.parse(iso), tz));
  const title = `Daily safety report 安全日报 — ${r.site} — ${r.date}`;

  const risk =
    table(
      ['Equipment 设备', 'Start of day 日初', 'End of day 日末', 'Highest 最高', 'Changes 变化次数'],
      r.risk.equipment.map((q) => [eq(q.id), level(q.startLevel), level(q.endLevel), level(q.maxLevel), String(q.changes)]),
      'No equipment. 无设备。',
    ) +
    table(
      ['Time 时间', 'Equipment 设备', 'From 由', 'To 至', 'Score 分值'],
      r.risk.changes.map((c) => [at(c.at), eq(c.equipment), level(c.from), level(c.to), e(c.score ?? '–')]),
      'No risk level changed this day. 当日风险等级无变化。',
    ) +
    more(r.risk.changes.length, r.risk.changesTotal, 'risk changes');

  const a = r.alarms;
  const alarms =
    `<p>Alarm events 报警事件: ${a.events} · acknowledged 已确认: ${a.acknowledged} · cleared 已消除: ${a.cleared}</p>` +
    `<table><thead><tr><th>Handling 处置</th><th>Incidents 次数</th><th>Median 中位数</th><th>90th pct 90分位</th><th>Longest 最长</th></tr></thead><tbody>${durationsLine(
      'Time to acknowledge 确认用时',
      a.timeToAck,
    )}${durationsLine('Time to clear 消除用时', a.timeToClear)}</tbody></table>` +
    `<h3>Per equipment 按设备</h3>` +
    table(
      ['Equipment 设备', 'Raised 发生', ...LEVEL_ORDER.map((l) => LEVEL_NAMES[l])],
      a.byEquipment.map((q) => [eq(q.equipment), String(q.raised), ...LEVEL_ORDER.map((l) => String(q.byLevel[l]))]),
      'No alarm raised. 当日无报警。',
    ) +
    `<h3>Most frequent 最频繁</h3>` +
    table(
      ['Count 次数', 'Level 等级', 'Equipment 设备', 'Alarm 报警'],
      a.top.map((t) => [String(t.count), level(t.level), eq(t.equipment), `${e(t.message)}<div class="sub">${e(t.rule)}</div>`]),
      'No alarm raised. 当日无报警。',
    ) +
    `<h3>Incidents 报警明细</h3>` +
    incidents(a, tz, 'alarms');

  const adm = r.administrative;
  const STATUS = { overdue: 'overdue 已逾期', due: 'due soon 即将到期', ok: 'in date 正常' } as const;
  const KIND = {
    inspection: 'periodic inspection 定期检验',
    maintenance: 'maintenance 维护保养',
    certificate: 'certificate of use 使用登记证',
  } as const;
  const administrative =
    table(
      ['Equipment 设备', 'What 项目', 'Due 到期日', 'Days 天数', 'Status 状态'],
      adm.dates.map((d) => [
        eq(d.equipment),
        e(KIND[d.kind]),
        e(d.due),
        String(d.days),
        `<span class="st-${e(d.status)}">${e(STATUS[d.status])}</span>`,
      ]),
      'No inspection, maintenance or certificate date in the site file. 站点文件未填写检验、维保或登记日期。',
    ) + incidents(adm, tz, 'administrative warnings');

  const nm = r.nearMisses;
  const nearMisses =
    `<p>Near misses 未遂事件: <b>${nm.total}</b>${nm.byEquipment.map((q) => ` · ${e(q.equipment)}: ${q.count}`).join('')}</p>` +
    table(
      ['Time 时间', 'Equipment 设备', 'Point 测点', 'Limit 限值', 'Closest 最接近值', 'Level 等级'],
      nm.list.map((n) => [
        at(n.at),
        eq(n.equipment),
        e(n.point),
        `${e(n.direction)} ${e(n.limit)}<div class="sub">${e(n.rule)}</div>`,
        e(n.closest),
        level(n.level),
      ]),
      'No near miss this day. 当日无未遂事件。',
    ) +
    more(nm.list.length, nm.total, 'near misses');

  const availability = table(
    ['Equipment 设备', 'Availability 可用率', 'Hours 小时数'],
    r.availability.map((q) => [eq(q.equipment), `${e(q.percent)} %`, String(q.hours)]),
    'No hourly summary this day. 当日无小时汇总。',
  );

  const lab =
    `<p>Results captured 采集结果: <b>${r.lab.total}</b> · flagged abnormal 异常标记: ${r.lab.flaggedTotal}</p>` +
    table(
      ['Instrument 仪器', 'Analyte 项目', 'Results 数量', 'Flagged 异常', 'Min 最小', 'Max 最大'],
      r.lab.instruments.flatMap((i) =>
        i.analytes.map((x) => [
          e(i.instrument),
          e(x.analyte),
          String(x.count),
          String(x.flagged),
          e(x.min ?? '–'),
          `${e(x.max ?? '–')} ${e(x.unit ?? '')}`,
        ]),
      ),
      'No lab result captured this day. 当日无化验结果。',
    ) +
    table(
      ['Captured 采集', 'Instrument 仪器', 'Sample 样品', 'Analyte 项目', 'Value 结果', 'Flags 标记'],
      r.lab.flagged.map((f) => [
        at(f.at),
        e(f.instrument),
        e(f.sampleId),
        e(f.analyte),
        `${e(f.value)} ${e(f.unit ?? '')}`,
        e(f.flags.join(' ')),
      ]),
      'No abnormal result. 无异常结果。',
    ) +
    more(r.lab.flagged.length, r.lab.flaggedTotal, 'flagged results');

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>${e(title)}</title><style>${CSS}</style></head>
<body>
<h1>${e(title)}</h1>
<p class="meta">Gateway 网关 ${e(r.gatewayId)} · ${e(r.date)} 00:00–24:00 ${e(tz)} · generated 生成于 ${e(localDateTime(Date.parse(r.generatedAt), tz))}</p>
${r.notes.length > 0 ? `<ul class="notes">${r.notes.map((n) => `<li>${e(n)}</li>`).join('')}</ul>` : ''}
${section('risk', 'Risk levels', '风险等级', risk)}
${section('alarms', 'Alarms and their handling', '报警与处置', alarms)}
${section('predicted', 'Predicted warnings', '预测预警', incidents(r.predicted, tz, 'predicted warnings'))}
${section('near-misses', 'Near misses', '未遂事件', nearMisses)}
${section('administrative', 'Inspections, maintenance and certificates', '检验、维保与使用登记', administrative)}
${section('availability', 'Communication availability', '通信可用率', availability)}
${section('lab', 'Lab results', '化验结果', lab)}
</body></html>
`;
}
