// The dashboard: equipment cards with live values, the active alarms with acknowledge and shelve, a
// trend of one point, the platform outbox. Plain JavaScript, no external resources (sites are often
// offline); live data comes from the API's Server-Sent Events stream, read with fetch so the token
// travels in a header, not in the URL.
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
  },
};
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
const $ = (id) => document.getElementById(id);
const t = (k) => T[lang][k] ?? k;

function applyLanguage() {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  for (const el of document.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
  $('lang').textContent = t('lang');
  render();
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
