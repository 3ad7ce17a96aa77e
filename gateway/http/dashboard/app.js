// The dashboard: equipment cards with live values, the active alarms with acknowledge and shelve, a
// trend of one point, the platform outbox, the risk board (each equipment's risk level, its
// reasons and the trend of its score) with the alarm KPIs, and the lab panel (each instrument's
// latest results with their QC status, and a Levey-Jennings chart of each control series). Plain
// JavaScript, no external resources (sites are often offline); live data comes from the API's
// Server-Sent Events stream, read with fetch so the token travels in a header, not in the URL.
const T = {
  en: {
    title: 'Site gateway',
    token: 'API token',
    signin: 'Sign in',
    logout: 'Sign out',
    alarms: 'Active alarms',
    trend: 'Trend',
    pick: 'Pick a value on a card.',
    outbox: 'Platform outbox',
    none: 'No active alarm',
    ack: 'Acknowledge',
    shelve: 'Shelve 1 h',
    pending: 'pending',
    dead: 'dead letters',
    bad: 'bad token',
    stale: 'stale',
    online: 'online',
    degraded: 'degraded',
    offline: 'offline',
    unknown: 'unknown',
    lang: '中文',
    noPlatform: 'no platform configured',
    forbidden: 'your role may not do this',
    risk: 'Risk by equipment',
    reasons: 'Reasons',
    pickRisk: 'Pick an equipment on the risk board.',
    kpi: 'Alarm performance',
    w10m: '10 min',
    w1h: '1 h',
    w24h: '24 h',
    topAlarms: 'Most frequent alarms',
    dailyReport: 'Daily safety report',
    openReport: 'Open',
    noReport: 'No report kept for that date.',
    since: 'since {t}',
    score: 'risk index',
    likelihood: 'likelihood',
    consequence: 'consequence',
    factor: 'Factor',
    value: 'Value',
    points: 'Points',
    noFactor: 'nothing adds to the risk',
    target: 'Target',
    perOperator: 'Annunciated per operator per 10 min',
    flood: '10-min periods in flood',
    peak: 'Peak in 10 min',
    standing: 'Standing (active over 24 h)',
    staleAlarms: 'Stale (unacknowledged over 24 h)',
    chattering: 'Chattering',
    fleeting: 'Fleeting',
    shelvedNow: 'Shelved',
    shelveTime: 'Shelve duration (median / longest)',
    ackTime: 'Time to acknowledge (median / p90)',
    priority: 'Priority low / medium / high',
    annunciated: 'Annunciated',
    apart: 'Predicted / administrative (counted apart)',
    noneInWindow: 'none in this window',
    dropped: 'Events past the kept history (figures short)',
    s: 's',
    min: 'min',
    h: 'h',
    lab: 'Lab results',
    qc: 'Quality control (Levey-Jennings)',
    noQc: 'No control series: the site sets no control targets.',
    time: 'Time',
    sample: 'Sample',
    analyte: 'Analyte',
    unit: 'Unit',
    flags: 'Flags',
    qcStatus: 'QC',
    control: 'control',
    level: 'level {l}',
    mean: 'mean',
    sd: 'SD',
    runs: '{n} runs',
    lj: 'Levey-Jennings chart of {s}: {n} runs, {state}',
  },
  zh: {
    title: '现场网关',
    token: 'API 令牌',
    signin: '登录',
    logout: '退出',
    alarms: '当前报警',
    trend: '趋势',
    pick: '点击卡片上的数值查看趋势。',
    outbox: '平台发件箱',
    none: '无报警',
    ack: '确认',
    shelve: '搁置 1 小时',
    pending: '待发送',
    dead: '死信',
    bad: '令牌无效',
    stale: '过期',
    online: '在线',
    degraded: '降级',
    offline: '离线',
    unknown: '未知',
    lang: 'English',
    noPlatform: '未配置平台',
    forbidden: '当前角色无此权限',
    risk: '设备风险',
    reasons: '风险原因',
    pickRisk: '点击风险列表中的设备查看原因。',
    kpi: '报警绩效',
    w10m: '10 分钟',
    w1h: '1 小时',
    w24h: '24 小时',
    dailyReport: '安全日报',
    openReport: '打开',
    noReport: '该日期没有保存的日报。',
    topAlarms: '最频繁的报警',
    since: '{t} 起',
    score: '风险指数',
    likelihood: '可能性',
    consequence: '后果',
    factor: '因素',
    value: '数值',
    points: '分值',
    noFactor: '无增加风险的因素',
    target: '目标',
    perOperator: '每名操作员每 10 分钟报警数',
    flood: '报警泛滥的 10 分钟时段',
    peak: '10 分钟内峰值',
    standing: '长期报警（持续超过 24 小时）',
    staleAlarms: '陈旧报警（超过 24 小时未确认）',
    chattering: '振荡报警',
    fleeting: '瞬时报警',
    shelvedNow: '已搁置',
    shelveTime: '搁置时长（中位数 / 最长）',
    ackTime: '确认时间（中位数 / 90 分位）',
    priority: '优先级 低 / 中 / 高',
    annunciated: '报警总数',
    apart: '预测 / 管理类（另计）',
    noneInWindow: '此时段内无',
    dropped: '超出保留历史的事件（数据不全）',
    s: '秒',
    min: '分',
    h: '小时',
    lab: '检验结果',
    qc: '质控（Levey-Jennings 图）',
    noQc: '无质控序列：现场文件未设置质控靶值。',
    time: '时间',
    sample: '样本号',
    analyte: '项目',
    unit: '单位',
    flags: '标记',
    qcStatus: '质控',
    control: '质控品',
    level: '水平 {l}',
    mean: '均值',
    sd: '标准差',
    runs: '{n} 次',
    lj: '{s} 的 Levey-Jennings 图：{n} 次质控，{state}',
  },
};
// The four risk levels by their names in the national classification (重大, 较大, 一般, 低).
const RISK_LEVELS = {
  en: { blue: 'low (blue)', yellow: 'moderate (yellow)', orange: 'high (orange)', red: 'major (red)' },
  zh: { blue: '低风险（蓝）', yellow: '一般风险（黄）', orange: '较大风险（橙）', red: '重大风险（红）' },
};
// The risk factors by name (docs/risk.md says what each counts); one not listed here shows its own name.
const FACTORS = {
  en: {
    alarm_red: 'Active red alarms',
    alarm_orange: 'Active orange alarms',
    alarm_yellow: 'Active yellow alarms',
    alarm_blue: 'Active blue alarms',
    predicted: 'Predicted warnings',
    near_misses: 'Near misses in 24 h',
    chattering: 'Chattering alarms',
    standing: 'Standing alarms (over 24 h)',
    communication: 'Connection down (% of the last hour)',
    silence: 'Minutes without a good reading',
    inspection_overdue: 'Periodic inspection overdue',
    maintenance_overdue: 'Maintenance overdue',
    certificate_overdue: 'Certificate of use expired',
  },
  zh: {
    alarm_red: '红色报警',
    alarm_orange: '橙色报警',
    alarm_yellow: '黄色报警',
    alarm_blue: '蓝色报警',
    predicted: '预测预警',
    near_misses: '24 小时内险情',
    chattering: '振荡报警',
    standing: '长期报警（超过 24 小时）',
    communication: '通信中断（近 1 小时占比 %）',
    silence: '无有效读数（分钟）',
    inspection_overdue: '定期检验逾期',
    maintenance_overdue: '维保逾期',
    certificate_overdue: '使用登记证过期',
  },
};
/** How often the risk board and the KPIs are read again. */
const RISK_POLL_MS = 5000;
/** The score trend's span and its points at most (the API keeps each span's peak). */
const RISK_TREND_MS = 24 * 3_600_000;
const RISK_TREND_POINTS = 150;
// A result's QC status and a control series' state, as the lab service gives them (docs/labs.md).
const QC_STATUS = {
  en: {
    pending: 'QC pending',
    passed: 'QC passed',
    accepted: 'control in range',
    warning: 'control warning',
    rejected: 'control rejected',
  },
  zh: { pending: '待质控', passed: '质控通过', accepted: '质控在控', warning: '质控警告', rejected: '质控失控' },
};
const QC_STATE = {
  en: { 'no-data': 'no run yet', 'in-control': 'in control', warning: 'warning', rejected: 'rejected' },
  zh: { 'no-data': '尚无质控结果', 'in-control': '在控', warning: '警告', rejected: '失控' },
};
/** How often the lab panel is read again (and at once on an alarm event: a QC rejection raises one). */
const LAB_POLL_MS = 5000;
/** The results shown of each instrument, newest first, and of all instruments at most. */
const LAB_ROWS = 8;
const LAB_RESULTS = 200;
/** The runs of each control series a chart shows. */
const LAB_RUNS = 40;
const STATES = {
  en: {
    active_unacknowledged: 'active, unacknowledged',
    active_acknowledged: 'active, acknowledged',
    returned_unacknowledged: 'returned, unacknowledged',
    shelved: 'shelved',
    suppressed: 'suppressed',
    out_of_service: 'out of service',
  },
  zh: {
    active_unacknowledged: '报警中，未确认',
    active_acknowledged: '报警中，已确认',
    returned_unacknowledged: '已恢复，未确认',
    shelved: '已搁置',
    suppressed: '已抑制',
    out_of_service: '停用',
  },
};
const LEVELS = ['blue', 'yellow', 'orange', 'red'];
// Alarms set aside on purpose: listed, but they colour no card, take no banner and cannot be shelved.
const SET_ASIDE = ['shelved', 'out_of_service'];
let lang = localStorage.getItem('gw-lang') || (navigator.language.startsWith('zh') ? 'zh' : 'en');
// The token lives as long as this tab (sessionStorage), not on disk for the control-room computer's
// next user or any later page of this origin. Earlier versions kept it in localStorage: that copy is
// removed, and the user signs in once more. The page has no inline script, style or handler: the
// API's Content-Security-Policy allows only these files.
localStorage.removeItem('gw-token');
let token = window.sessionStorage.getItem('gw-token') || '';
const equipment = new Map(); // id -> { info, points: Map(name -> { value, unit, quality, reason, ts }) }
let alarms = [];
let trend; // { equipment, point, data: [[ts, value]] }
// The risk board's state, each replaced whole at every poll so nothing grows over months of running.
let risk; // { equipment: [assessment] } from /api/risk, undefined until read or when the site judges no risk
let riskSelected; // the equipment whose reasons are shown
let riskHistory = []; // [{ ts, level, score }] of the selected equipment, at most RISK_TREND_POINTS
let kpi; // the alarm KPIs of the chosen window
let riskTimer;
// The lab panel's state, replaced whole at every read: the latest results (newest first) and the
// control series, with their JSON texts so an unchanged part is not drawn again (a tooltip stays open).
let lab; // { results, series, texts: { results, series } } from /api/lab/*, undefined until read or when the API has no lab routes
let labTimer;
const $ = (id) => document.getElementById(id);
const t = (k) => T[lang][k] ?? k;

function applyLanguage() {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  for (const el of document.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
  $('lang').textContent = t('lang');
  render();
  renderRisk();
  renderLab();
}

async function api(path, options = {}) {
  const res = await fetch(path, {
    ...options,
    headers: {
      ...(options.headers || {}),
      Authorization: `Bearer ${token}`,
      ...(options.body ? { 'Content-Type': 'application/json' } : {}),
    },
  });
  if (res.status === 401) {
    signOut(t('bad'));
    throw new Error('unauthorized');
  }
  return res;
}

function signOut(message = '') {
  token = '';
  window.clearInterval(riskTimer);
  window.clearInterval(labTimer);
  window.sessionStorage.removeItem('gw-token');
  $('main').hidden = true;
  $('banner').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
}

async function start() {
  $('login').hidden = true;
  $('main').hidden = false;
  const list = await (await api('/api/equipment')).json();
  for (const info of list) {
    const detail = await (await api(`/api/equipment/${encodeURIComponent(info.id)}`)).json();
    equipment.set(info.id, { info, points: new Map(detail.points.map((p) => [p.name, p])) });
  }
  alarms = await (await api('/api/alarms')).json();
  render();
  void refreshOutbox();
  setInterval(refreshOutbox, 10_000);
  setInterval(render, 2000); // stale marks appear even when nothing arrives
  window.clearInterval(riskTimer);
  riskTimer = setInterval(refreshRisk, RISK_POLL_MS);
  void refreshRisk();
  window.clearInterval(labTimer);
  labTimer = setInterval(refreshLab, LAB_POLL_MS);
  void refreshLab();
  void stream();
}

async function stream() {
  for (;;) {
    try {
      const res = await api('/api/stream');
      $('conn').dataset.state = 'on';
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const chunk = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.+)$/m.exec(chunk)?.[1];
          const data = /^data: (.+)$/m.exec(chunk)?.[1];
          if (event && data) onEvent(event, JSON.parse(data));
        }
      }
    } catch {
      // The connection broke (the gateway restarted, the network): try again below.
      if (!token) return;
    }
    $('conn').dataset.state = 'off';
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function onEvent(event, data) {
  if (event === 'readings') {
    for (const r of data) {
      const eq = equipment.get(r.equipment);
      if (!eq) continue;
      const p = eq.points.get(r.point) || { name: r.point };
      eq.points.set(r.point, { ...p, value: r.value, quality: r.quality, reason: r.reason, ts: r.ts });
      // At the reading's own time, as the history endpoint gives it (the source time unless it is ahead).
      if (trend && trend.equipment === r.equipment && trend.point === r.point && typeof r.value === 'number' && r.quality === 'good')
        trend.data.push([r.sourceTs > 0 && r.sourceTs <= r.ts ? r.sourceTs : r.ts, r.value]);
    }
    render();
  } else if (event === 'alarm') {
    // A QC rejection (or a refused file) is a lab alarm: the lab panel shows it now, not at the next poll.
    if (data.origin === 'lab' && lab) void refreshLab();
    void api('/api/alarms')
      .then((res) => res.json())
      .then((list) => {
        alarms = list;
        render();
      });
  }
}

function levelOf(list) {
  return list.reduce((best, a) => (LEVELS.indexOf(a.level) > LEVELS.indexOf(best) ? a.level : best), undefined);
}

function render() {
  if ($('main').hidden) return;
  const cards = $('cards');
  cards.replaceChildren();
  const now = Date.now();
  for (const [id, eq] of equipment) {
    const mine = alarms.filter((a) => a.equipment === id && !SET_ASIDE.includes(a.state));
    const card = document.createElement('article');
    card.className = 'card';
    card.dataset.equipment = id;
    const level = levelOf(mine);
    if (level) card.classList.add(`level-${level}`);
    // The status from the points as they are now: online, degraded (some not good), offline (none readable).
    const points = [...eq.points.values()];
    const good = points.filter((p) => p.quality === 'good').length;
    const state =
      points.length === 0 || points.every((p) => p.quality === undefined || p.quality === 'unknown')
        ? eq.info.status
        : good === points.length
          ? 'online'
          : points.every((p) => p.quality === 'bad')
            ? 'offline'
            : 'degraded';
    const h = document.createElement('h3');
    h.textContent = `${eq.info.name || id} `;
    const badge = document.createElement('span');
    badge.className = 'status';
    badge.dataset.state = state;
    badge.textContent = t(state);
    h.append(badge);
    const table = document.createElement('table');
    for (const p of eq.points.values()) {
      const row = table.insertRow();
      row.dataset.point = p.name;
      row.insertCell().textContent = p.name;
      const v = row.insertCell();
      v.className = 'v';
      // A polled value not refreshed for three polls is stale; one reported on change is not.
      const stale = !eq.info.on_change && p.ts !== undefined && now - p.ts > 3 * (eq.info.poll_interval || 1000) + 2000;
      if (p.quality === 'bad' || p.value === null || p.value === undefined) {
        v.classList.add('bad');
        v.textContent = `— ${p.reason || p.quality || ''}`.trim();
      } else {
        v.textContent = `${typeof p.value === 'number' ? Number(p.value.toPrecision(6)) : p.value}${p.unit ? ` ${p.unit}` : ''}`;
        if (p.quality !== 'good') v.classList.add('uncertain');
        if (stale) {
          v.classList.add('stale');
          v.title = t('stale');
          v.textContent += ` (${t('stale')})`;
        }
      }
      row.onclick = () => selectTrend(id, p.name, p.unit);
    }
    card.append(h, table);
    cards.append(card);
  }
  renderAlarms();
  drawTrend();
}

function renderAlarms() {
  const list = $('alarms');
  list.replaceChildren();
  const shown = [...alarms].sort((a, b) => LEVELS.indexOf(b.level) - LEVELS.indexOf(a.level));
  if (shown.length === 0) {
    const li = document.createElement('li');
    li.textContent = t('none');
    list.append(li);
  }
  for (const a of shown) {
    const li = document.createElement('li');
    li.className = `level-${a.level}`;
    li.dataset.alarm = a.key;
    li.dataset.state = a.state;
    const text = document.createElement('div');
    text.textContent = `${a.level.toUpperCase()} · ${a.equipment} · ${a.message}`;
    const st = document.createElement('div');
    st.className = 'state';
    st.textContent = STATES[lang][a.state] || a.state;
    li.append(text, st);
    if (a.state === 'active_unacknowledged' || a.state === 'returned_unacknowledged')
      li.append(button(t('ack'), 'ack', () => act(a.key, 'acknowledge', {})));
    if (!SET_ASIDE.includes(a.state)) li.append(button(t('shelve'), 'shelve', () => act(a.key, 'shelve', { duration_minutes: 60 })));
    list.append(li);
  }
  const top = shown.find((a) => !SET_ASIDE.includes(a.state));
  const banner = $('banner');
  banner.hidden = !top;
  if (top) {
    banner.className = `level-${top.level}`;
    banner.textContent = `${top.level.toUpperCase()} · ${top.equipment} · ${top.message} · ${STATES[lang][top.state] || top.state}`;
  }
}

function button(label, name, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.dataset.action = name;
  b.onclick = onClick;
  return b;
}

async function act(key, action, body) {
  const comment = action === 'acknowledge' ? 'acknowledged from the dashboard' : 'shelved from the dashboard';
  const res = await api(`/api/alarms/${key}/${action}`, { method: 'POST', body: JSON.stringify({ comment, ...body }) });
  if (res.status === 403) alert(t('forbidden'));
  alarms = await (await api('/api/alarms')).json();
  render();
}

async function selectTrend(id, point, unit) {
  // The last 10 minutes: what the gateway keeps in memory, the older part from InfluxDB when the site has one.
  const since = Date.now() - 10 * 60_000;
  const res = await api(`/api/equipment/${encodeURIComponent(id)}/history?point=${encodeURIComponent(point)}&since=${since}`);
  const history = res.ok ? await res.json() : [];
  trend = {
    equipment: id,
    point,
    unit,
    data: history.filter((r) => typeof r.value === 'number' && r.quality === 'good').map((r) => [r.ts, r.value]),
  };
  // The gateway says when it could not give the whole 10 minutes (memory budget, InfluxDB away).
  const incomplete = res.headers.get('x-history-incomplete');
  $('trend-label').textContent = `${id} · ${point}${unit ? ` (${unit})` : ''}${incomplete ? ` · ${incomplete}` : ''}`;
  drawTrend();
}

function drawTrend() {
  const canvas = $('trend');
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!trend) return;
  const since = Date.now() - 10 * 60_000;
  // Readings can come out of time order (late source times): the line goes by time.
  trend.data = trend.data.filter(([ts]) => ts >= since).sort((a, b) => a[0] - b[0]);
  const data = trend.data;
  if (data.length < 2) return;
  const values = data.map(([, v]) => v);
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const span = hi - lo || 1;
  const t0 = data[0][0];
  const tspan = data.at(-1)[0] - t0 || 1;
  ctx.strokeStyle = '#1d4ed8';
  ctx.lineWidth = 2;
  ctx.beginPath();
  data.forEach(([ts, v], k) => {
    const x = 30 + ((ts - t0) / tspan) * (canvas.width - 40);
    const y = 10 + (1 - (v - lo) / span) * (canvas.height - 30);
    if (k === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  ctx.stroke();
  ctx.fillStyle = '#374151';
  ctx.font = '12px system-ui';
  ctx.fillText(String(Number(hi.toPrecision(5))), 2, 12);
  ctx.fillText(String(Number(lo.toPrecision(5))), 2, canvas.height - 20);
}

async function refreshOutbox() {
  const res = await api('/api/outbox');
  $('outbox').textContent =
    res.status === 404 ? t('noPlatform') : ((s) => `${s.pending} ${t('pending')}, ${s.dead} ${t('dead')}`)(await res.json());
}

async function refreshRisk() {
  try {
    const res = await api('/api/risk');
    if (res.status === 404) {
      // The site judges no risk (risk.enabled: false): the board stays hidden and is not asked again.
      window.clearInterval(riskTimer);
      risk = undefined;
      $('risk-panel').hidden = true;
      return;
    }
    if (!res.ok) return;
    risk = await res.json();
    $('risk-panel').hidden = false;
    const [windowed, history] = await Promise.all([
      api(`/api/kpi?window=${encodeURIComponent($('kpi-window').value)}`),
      riskSelected ? api(riskHistoryUrl(riskSelected)) : undefined,
    ]);
    if (windowed.ok) kpi = await windowed.json();
    if (history?.ok) riskHistory = (await history.json()).history;
    renderRisk();
  } catch {
    // The gateway is away (restarting, the network): the board keeps what it showed and the next poll tries again.
  }
}

function riskHistoryUrl(id) {
  return `/api/risk/${encodeURIComponent(id)}?from=${Date.now() - RISK_TREND_MS}&max_points=${RISK_TREND_POINTS}`;
}

async function selectRisk(id) {
  riskSelected = riskSelected === id ? undefined : id;
  riskHistory = [];
  renderRisk();
  if (!riskSelected) return;
  const res = await api(riskHistoryUrl(id));
  if (res.ok && riskSelected === id) riskHistory = (await res.json()).history;
  renderRisk();
}

/** An assessed equipment's name: its own, else the one /api/equipment gave, else its id. */
function nameOf(a) {
  return a.name || equipment.get(a.equipment)?.info.name || a.equipment;
}

/** A time of day, or a date and time when it is not today. */
function when(ts) {
  const d = new Date(ts);
  const locale = lang === 'zh' ? 'zh-CN' : 'en-GB';
  return d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString(locale) : d.toLocaleString(locale);
}

/** A duration in words of the page's language: 45 s, 3 min 20 s, 2 h 5 min. */
function duration(ms) {
  if (ms === undefined || ms === null) return '—';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} ${t('s')}`;
  if (s < 3600) return `${Math.floor(s / 60)} ${t('min')}${s % 60 ? ` ${s % 60} ${t('s')}` : ''}`;
  return `${Math.floor(s / 3600)} ${t('h')}${Math.floor(s / 60) % 60 ? ` ${Math.floor(s / 60) % 60} ${t('min')}` : ''}`;
}

function renderRisk() {
  if (!risk) return;
  const board = $('risk-board');
  board.replaceChildren();
  for (const a of risk.equipment) {
    const row = document.createElement('button');
    row.type = 'button';
    row.className = `risk-row level-${a.level}`;
    if (a.equipment === riskSelected) row.classList.add('selected');
    row.dataset.equipment = a.equipment;
    row.dataset.level = a.level;
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = nameOf(a) === a.equipment ? a.equipment : `${nameOf(a)} (${a.equipment})`;
    const level = document.createElement('span');
    level.className = `badge level-${a.level}`;
    level.textContent = RISK_LEVELS[lang][a.level] || a.level;
    const score = document.createElement('span');
    score.className = 'score';
    score.textContent = `${t('score')} ${a.score}`;
    const since = document.createElement('span');
    since.className = 'since';
    since.textContent = t('since').replace('{t}', when(a.since));
    row.append(name, level, score, since);
    row.onclick = () => void selectRisk(a.equipment);
    board.append(row);
  }
  renderRiskDetail();
  renderKpi();
}

function renderRiskDetail() {
  const a = risk.equipment.find((x) => x.equipment === riskSelected);
  const table = $('risk-factors');
  table.replaceChildren();
  $('risk-trend').replaceChildren();
  const label = $('risk-detail-label');
  $('risk-detail').classList.toggle('picked', Boolean(a));
  if (!a) {
    label.textContent = t('pickRisk');
    return;
  }
  label.textContent = `${nameOf(a)} · ${RISK_LEVELS[lang][a.level] || a.level} · ${t('score')} ${a.score} = ${t('likelihood')} ${a.likelihood} × ${t('consequence')} ${a.consequence}`;
  const head = table.createTHead().insertRow();
  for (const k of ['factor', 'value', 'points']) head.append(Object.assign(document.createElement('th'), { textContent: t(k) }));
  const body = table.createTBody();
  const shown = a.factors.filter((f) => f.points > 0).sort((x, y) => y.points - x.points);
  if (shown.length === 0) body.insertRow().insertCell().textContent = t('noFactor');
  for (const f of shown) {
    const row = body.insertRow();
    row.dataset.factor = f.factor;
    row.insertCell().textContent = `${FACTORS[lang][f.factor] || f.factor}${f.detail ? ` (${f.detail})` : ''}`;
    row.insertCell().textContent = typeof f.value === 'number' ? String(Number(f.value.toPrecision(4))) : String(f.value);
    // The points with how they came: the weight per unit of value, up to the cap.
    row.insertCell().textContent = `${Number(f.points.toPrecision(4))} (×${f.weight}, ≤ ${f.cap})`;
  }
  drawRiskTrend(a);
}

/**
 * The score as a step line (a score holds until it changes) up to now, from its oldest point within
 * the last 24 h: a gateway started a minute ago draws its minute across the width.
 */
function drawRiskTrend(a) {
  const svg = $('risk-trend');
  const now = Date.now();
  const points = riskHistory.filter((p) => p.ts >= now - RISK_TREND_MS && p.ts <= now);
  const from = Math.min(points[0]?.ts ?? a.since, now - 60_000);
  const span = now - Math.max(from, now - RISK_TREND_MS);
  // The line starts at the left edge with the first score known, and ends at now with the current one.
  const steps = [[now - span, points[0]?.score ?? a.score], ...points.map((p) => [p.ts, p.score]), [now, a.score]];
  const x = (ts) => ((1 - (now - ts) / span) * 300).toFixed(1);
  const y = (score) => (62 - (Math.min(20, Math.max(0, score)) / 20) * 60).toFixed(1);
  const coords = [];
  let last;
  for (const [ts, score] of steps) {
    if (last !== undefined) coords.push(`${x(ts)},${y(last)}`);
    coords.push(`${x(ts)},${y(score)}`);
    last = score;
  }
  const ns = 'http://www.w3.org/2000/svg';
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('points', coords.join(' '));
  line.setAttribute('class', `spark level-${a.level}`);
  svg.append(line);
}

function renderKpi() {
  const table = $('kpi');
  table.replaceChildren();
  const top = $('kpi-top');
  top.replaceChildren();
  if (!kpi) return;
  const pct = (v) => `${Number(v.toFixed(1))} %`;
  const rows = [
    // [label, value, target, out of target] after ISA-18.2 and EEMUA 191.
    ['annunciated', String(kpi.annunciated), '', false],
    ['perOperator', String(Number(kpi.perOperatorPer10Min.toFixed(2))), '≤ 1 (2)', kpi.perOperatorPer10Min > 2],
    ['flood', pct(kpi.floodPercent), '< 1 %', kpi.floodPercent >= 1],
    ['peak', String(kpi.peakPer10Min), '≤ 10', kpi.peakPer10Min > 10],
    ['standing', String(kpi.standing), '< 5', kpi.standing >= 5],
    ['staleAlarms', String(kpi.stale), '< 5', kpi.stale >= 5],
    ['chattering', String(kpi.chattering), '0', kpi.chattering > 0],
    ['fleeting', String(kpi.fleeting), '0', kpi.fleeting > 0],
    ['shelvedNow', String(kpi.shelvedNow), '', false],
    ['shelveTime', `${duration(kpi.shelveDurations.median)} / ${duration(kpi.shelveDurations.max)}`, '', false],
    ['ackTime', `${duration(kpi.timeToAcknowledge.median)} / ${duration(kpi.timeToAcknowledge.p90)}`, '', false],
    [
      'priority',
      `${pct(kpi.priority.low)} / ${pct(kpi.priority.medium)} / ${pct(kpi.priority.high)}`,
      `${kpi.priority.target.low} / ${kpi.priority.target.medium} / ${kpi.priority.target.high} %`,
      // Over the recommended share of high or medium alarms: an operator can no longer tell the urgent ones.
      kpi.annunciated > 0 && (kpi.priority.high > kpi.priority.target.high || kpi.priority.medium > kpi.priority.target.medium),
    ],
    ['apart', `${kpi.predicted} / ${kpi.administrative}`, '', false],
    // The gateway keeps a bounded alarm history: a window reaching past it is said to be short.
    ...(kpi.dropped > 0 ? [['dropped', String(kpi.dropped), '0', true]] : []),
  ];
  const head = table.createTHead().insertRow();
  for (const k of ['kpi', 'value', 'target'])
    head.append(Object.assign(document.createElement('th'), { textContent: k === 'kpi' ? '' : t(k) }));
  const body = table.createTBody();
  for (const [key, value, target, over] of rows) {
    const row = body.insertRow();
    row.dataset.kpi = key;
    if (over) row.className = 'over';
    row.insertCell().textContent = t(key);
    row.insertCell().textContent = value;
    row.insertCell().textContent = target;
  }
  if (kpi.top.length === 0) top.append(Object.assign(document.createElement('li'), { textContent: t('noneInWindow') }));
  for (const { key, count } of kpi.top.slice(0, 10))
    top.append(Object.assign(document.createElement('li'), { textContent: `${key} × ${count}` }));
}

$('kpi-window').onchange = () => void refreshRisk();

/** Yesterday, in this browser's time zone, as YYYY-MM-DD: the latest day a report is made for. */
function yesterday() {
  const d = new Date(Date.now() - 86_400_000);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}
$('report-date').value = yesterday();
// A kept daily report opens in a tab of its own. The API wants the token in a header, which a link
// cannot send, so the page is fetched here and shown from a blob: URL (under this page's policy,
// which allows the report's style block by its hash; the report has no script).
$('report-form').onsubmit = async (ev) => {
  ev.preventDefault();
  $('report-error').textContent = '';
  const date = $('report-date').value;
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) return;
  // Opened now, while the click is being handled: a window opened after an await is taken for a pop-up.
  const view = window.open('', '_blank');
  try {
    const res = await api(`/api/reports/daily/${encodeURIComponent(date)}`);
    if (!res.ok) {
      view?.close();
      $('report-error').textContent = t('noReport');
      return;
    }
    const url = URL.createObjectURL(new Blob([await res.text()], { type: 'text/html' }));
    if (view) view.location.href = url;
    else window.location.href = url;
    window.setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch {
    view?.close();
  }
};
let labReading = false;
async function refreshLab() {
  // One read at a time: a burst of lab alarms does not pile up requests.
  if (labReading) return;
  labReading = true;
  try {
    const [results, qc] = await Promise.all([
      api(`/api/lab/results?per_instrument=${LAB_ROWS}&limit=${LAB_RESULTS}`),
      api(`/api/lab/qc?runs=${LAB_RUNS}`),
    ]);
    if (results.status === 404) {
      // This gateway's API has no lab routes: the panel stays hidden and is not asked again.
      window.clearInterval(labTimer);
      lab = undefined;
      $('lab-panel').hidden = true;
      return;
    }
    if (!results.ok || !qc.ok) return;
    const next = { results: (await results.json()).results, series: (await qc.json()).series };
    const texts = { results: JSON.stringify(next.results), series: JSON.stringify(next.series) };
    // Each part drawn again only when it changed: a new patient result leaves the charts alone.
    const changed = { results: texts.results !== lab?.texts.results, series: texts.series !== lab?.texts.series };
    lab = { ...next, texts };
    renderLab(changed);
  } catch {
    // The gateway is away (restarting, the network): the panel keeps what it showed and the next poll tries again.
  } finally {
    labReading = false;
  }
}

/** An instrument's name and id, as the equipment list gives it. */
function instrumentName(id) {
  const name = equipment.get(id)?.info.name;
  return name && name !== id ? `${name} (${id})` : id;
}

/** A number as the instrument would print it (at most 6 significant digits), a text as it is, null as a dash. */
function shown(value) {
  if (value === null || value === undefined) return '—';
  return typeof value === 'number' ? String(Number(value.toPrecision(6))) : String(value);
}

// Right-to-left letters and bidi controls in an instrument's text reorder what follows it on the same
// line (an RLO in a sample id showed its value 5.1 as 1.5 in a chart's tooltip): such a text is set
// in an isolate (FSI ... PDI), which keeps its reordering to itself. Such texts go into a message by
// a function, so that a "$&" in one is not read as a replacement pattern.
const BIDI = /[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc\u061c\u200f\u202a-\u202e\u2066-\u2069\u{10800}-\u{10fff}\u{1e800}-\u{1efff}]/u;
/** An instrument's text, isolated when it could reorder the line around it. */
function own(text) {
  const s = String(text);
  return BIDI.test(s) ? `\u2068${s}\u2069` : s;
}

/** A QC badge: its status in words, with the rule that fired or held the analyte. */
function qcBadge(qc) {
  const badge = document.createElement('span');
  badge.className = `qc-badge qc-${qc.status}`;
  badge.dataset.qc = qc.status;
  const rules = qc.rule ? [qc.rule] : (qc.rules ?? []);
  badge.textContent = `${QC_STATUS[lang][qc.status] || qc.status}${rules.length ? ` · ${rules.join(', ')}` : ''}`;
  return badge;
}

function renderLab(changed = { results: true, series: true }) {
  if (!lab) return;
  // Shown once the gateway has a result or a control series to show.
  $('lab-panel').hidden = lab.results.length === 0 && lab.series.length === 0;
  if (changed.results) renderLabResults();
  if (changed.series) renderQc();
}

/** Each instrument's latest results, newest first, one table per instrument. */
function renderLabResults() {
  const box = $('lab-results');
  box.replaceChildren();
  const byInstrument = new Map();
  for (const r of lab.results) {
    const mine = byInstrument.get(r.instrument) ?? [];
    if (mine.length < LAB_ROWS) mine.push(r);
    byInstrument.set(r.instrument, mine);
  }
  for (const [instrument, results] of [...byInstrument].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const table = document.createElement('table');
    table.className = 'lab-results';
    table.dataset.instrument = instrument;
    table.createCaption().textContent = instrumentName(instrument);
    const head = table.createTHead().insertRow();
    for (const k of ['time', 'sample', 'analyte', 'value', 'unit', 'flags', 'qcStatus'])
      head.append(Object.assign(document.createElement('th'), { textContent: t(k), scope: 'col' }));
    const body = table.createTBody();
    for (const r of results) {
      const row = body.insertRow();
      row.dataset.result = r.resultId;
      if (r.control) row.className = 'control';
      const at = Date.parse(r.resultAt);
      row.insertCell().textContent = Number.isFinite(at) ? when(at) : r.resultAt;
      // A control sample says so, with its level when the instrument gave one.
      row.insertCell().textContent = r.control
        ? `${own(r.sampleId)} (${t('control')}${r.control.level ? ` ${t('level').replace('{l}', () => own(r.control.level))}` : ''})`
        : r.sampleId;
      row.insertCell().textContent = r.analyte;
      const value = row.insertCell();
      value.className = 'v';
      value.textContent = shown(r.value);
      row.insertCell().textContent = r.unit ?? '';
      const flags = row.insertCell();
      flags.textContent = r.flags.join(' ');
      // N is the instrument's "normal"; any other flag marks the value.
      if (r.flags.some((f) => f !== 'N' && f !== '')) {
        value.classList.add('flagged');
        flags.className = 'flagged';
      }
      const qc = row.insertCell();
      qc.className = 'qc';
      if (r.qc) qc.append(qcBadge(r.qc));
    }
    box.append(table);
  }
}

/** A Levey-Jennings chart of each control series, with its target and state. */
function renderQc() {
  const box = $('lab-qc');
  box.replaceChildren();
  $('lab-qc-none').hidden = lab.series.length > 0;
  for (const s of lab.series) {
    const figure = document.createElement('figure');
    figure.className = `lj lj-${s.state}`;
    figure.dataset.series = `${s.instrument}/${s.analyte}/${s.level}`;
    figure.dataset.state = s.state;
    const caption = document.createElement('figcaption');
    const name = document.createElement('span');
    name.className = 'name';
    const label = `${own(instrumentName(s.instrument))} · ${own(s.analyte)} · ${t('level').replace('{l}', () => own(s.level))}`;
    name.textContent = label;
    const state = document.createElement('span');
    state.className = `qc-badge qc-${s.state}`;
    state.textContent = `${QC_STATE[lang][s.state] || s.state}${s.rule ? ` · ${s.rule}` : ''}`;
    const target = document.createElement('span');
    target.className = 'target';
    target.textContent = `${t('mean')} ${shown(s.target.mean)}, ${t('sd')} ${shown(s.target.sd)}${s.unit ? ` ${own(s.unit)}` : ''} · ${t('runs').replace('{n}', s.points.length)}`;
    caption.append(name, state, target);
    figure.append(caption, levey(s, label));
    box.append(figure);
  }
}

const SVG = 'http://www.w3.org/2000/svg';
/** An SVG element with its attributes. */
function svgEl(name, attributes = {}) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attributes)) el.setAttribute(k, String(v));
  return el;
}

/**
 * A Levey-Jennings chart: one run after another from left to right, the value upwards, against lines
 * at the mean and at 1, 2 and 3 SD either side; each run a dot coloured by its verdict, its sample,
 * value, z-score, time and the rules that fired in its title (the browser's tooltip). A run beyond
 * 4 SD is drawn at the edge, its title giving the real value.
 */
function levey(s, label) {
  const W = 320;
  const H = 150;
  const left = 30;
  const right = 6;
  const top = 6;
  const bottom = 6;
  const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'lj-chart' });
  const stateText = `${QC_STATE[lang][s.state] || s.state}${s.rule ? ` (${s.rule})` : ''}`;
  const description = t('lj')
    .replace('{s}', () => label)
    .replace('{n}', s.points.length)
    .replace('{state}', () => stateText);
  svg.setAttribute('aria-label', description);
  svg.append(Object.assign(svgEl('title'), { textContent: description }));
  const { mean, sd } = s.target;
  const zOf = (p) => (Number.isFinite(p.z) ? p.z : sd > 0 ? (p.value - mean) / sd : 0);
  const y = (z) => (top + ((4 - Math.max(-4, Math.min(4, z))) / 8) * (H - top - bottom)).toFixed(1);
  for (const k of [-3, -2, -1, 0, 1, 2, 3]) {
    const cls = k === 0 ? 'mean' : `sd${Math.abs(k)}`;
    svg.append(svgEl('line', { x1: left, x2: W - right, y1: y(k), y2: y(k), class: `lj-line ${cls}`, 'data-sd': k > 0 ? `+${k}` : k }));
    const tick = svgEl('text', { x: left - 3, y: y(k), class: `lj-tick ${cls}` });
    tick.textContent = k === 0 ? 'x̄' : `${k > 0 ? '+' : '−'}${Math.abs(k)}s`;
    svg.append(tick);
  }
  const n = s.points.length;
  if (n === 0) return svg;
  const step = (W - left - right) / Math.max(n, 10);
  const x = (i) => (left + (i + 0.5) * step).toFixed(1);
  svg.append(svgEl('polyline', { points: s.points.map((p, i) => `${x(i)},${y(zOf(p))}`).join(' '), class: 'lj-path' }));
  s.points.forEach((p, i) => {
    const dot = svgEl('circle', { cx: x(i), cy: y(zOf(p)), r: p.status === 'accepted' ? 3 : 4, class: `lj-run ${p.status}` });
    dot.dataset.status = p.status;
    dot.dataset.sample = p.sampleId;
    const z = zOf(p);
    const rules = p.rules.length ? ` · ${p.rules.join(', ')}` : '';
    const title = `${own(p.sampleId)} · ${shown(p.value)}${s.unit ? ` ${own(s.unit)}` : ''} · z ${z >= 0 ? '+' : ''}${z.toFixed(2)} · ${when(p.ts)} · ${QC_STATUS[lang][p.status] || p.status}${rules}`;
    dot.append(Object.assign(svgEl('title'), { textContent: title }));
    svg.append(dot);
  });
  return svg;
}

$('lang').onclick = () => {
  lang = lang === 'en' ? 'zh' : 'en';
  localStorage.setItem('gw-lang', lang);
  applyLanguage();
};
$('logout').onclick = () => signOut();
$('login').onsubmit = (e) => {
  e.preventDefault();
  token = $('token').value.trim();
  window.sessionStorage.setItem('gw-token', token);
  start().catch(() => {});
};
applyLanguage();
if (token) start().catch(() => {});
else signOut();
