"""The phone UI's single page: HTML, CSS and a little JavaScript, no external resources.

Kept as a Python string so it ships with the package without data-file configuration.
Elements the browser test uses carry ``data-testid`` attributes.
"""

from __future__ import annotations

import html

_PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Kagiya phone</title>
<style>
:root { --bg:#0f172a; --card:#1e293b; --fg:#e2e8f0; --dim:#94a3b8; --ok:#22c55e; --bad:#ef4444;
        --acc:#38bdf8; --warn:#f59e0b; }
* { box-sizing:border-box; }
body { margin:0; min-height:100vh; display:flex; align-items:center; justify-content:center;
       background:#020617; font:15px/1.4 system-ui, sans-serif; color:var(--fg); }
.phone { width:390px; height:800px; border-radius:44px; border:10px solid #334155;
         background:var(--bg); overflow:hidden; display:flex; flex-direction:column; }
header { padding:18px 20px 10px; display:flex; justify-content:space-between; align-items:center; }
header h1 { margin:0; font-size:20px; letter-spacing:.5px; }
.pill { font-size:12px; padding:3px 10px; border-radius:99px; background:#334155; }
.pill.on { background:#14532d; color:#bbf7d0; } .pill.off { background:#7f1d1d; color:#fecaca; }
main { flex:1; overflow-y:auto; padding:0 16px 16px; }
section { margin-bottom:14px; }
h2 { font-size:13px; text-transform:uppercase; color:var(--dim); margin:14px 4px 6px; }
.card { background:var(--card); border-radius:16px; padding:12px 14px; margin-bottom:8px;
        border:2px solid transparent; cursor:pointer; }
.card.sel { border-color:var(--acc); }
.card .lock { font-weight:600; font-size:17px; }
.card .meta { color:var(--dim); font-size:12px; }
.badge { float:right; font-size:12px; padding:2px 8px; border-radius:99px; }
.badge.valid { background:#14532d; } .badge.expired, .badge.revoked { background:#7f1d1d; }
.badge.not-yet-valid { background:#78350f; }
.big { display:grid; grid-template-columns:1fr 1fr; gap:10px; }
button { font:inherit; color:var(--fg); background:#334155; border:0; border-radius:14px;
         padding:12px; cursor:pointer; }
button.main { font-size:19px; padding:22px 8px; font-weight:600; }
button.unlock { background:#0369a1; } button.lockb { background:#475569; }
button.drive { background:#15803d; } button.stop { background:#9a3412; }
button:disabled { opacity:.45; cursor:default; }
input { width:100%; font:inherit; padding:10px; border-radius:10px; border:1px solid #475569;
        background:#0b1220; color:var(--fg); margin-bottom:8px; }
#msg { min-height:42px; margin:8px 0; padding:10px 12px; border-radius:12px; background:#0b1220;
       font-size:14px; }
#msg.ok { border-left:4px solid var(--ok); } #msg.bad { border-left:4px solid var(--bad); }
.status { display:flex; gap:6px; flex-wrap:wrap; }
.status span { background:#0b1220; border-radius:8px; padding:4px 8px; font-size:13px; }
ul { list-style:none; margin:0; padding:0; font-size:13px; }
li { padding:4px 6px; border-bottom:1px solid #1e293b; color:var(--dim); }
li.bad { color:#fca5a5; }
.row { display:flex; gap:8px; } .row button { flex:1; }
</style></head>
<body><div class="phone">
<header><h1>Kagiya <small style="color:var(--dim);font-size:13px">phone</small></h1>
  <span id="net" class="pill" data-testid="net">…</span></header>
<main>
 <div id="msg" data-testid="message">Welcome.</div>
 <section id="enroll" hidden data-testid="enroll-form">
  <h2>Enroll this phone</h2>
  <input id="server" placeholder="Key server URL" data-testid="server">
  <input id="code" placeholder="One-time code XXXX-XXXX-XXXX" data-testid="code">
  <button id="enroll-btn" data-testid="enroll">Enroll &amp; download keys</button>
 </section>
 <section id="app" hidden>
  <h2>Keys</h2><div id="keys" data-testid="keys"></div>
  <div class="big">
   <button class="main unlock" data-cmd="unlock" data-testid="unlock">Unlock</button>
   <button class="main lockb" data-cmd="lock" data-testid="lock">Lock</button>
   <button class="main drive" data-cmd="drive-on" data-testid="drive-on">Drive on</button>
   <button class="main stop" data-cmd="drive-off" data-testid="drive-off">Drive off</button>
  </div>
  <h2>Vehicle <label style="float:right;text-transform:none">
   <input type="checkbox" id="live" data-testid="live" style="width:auto;margin:0"> live</label>
  </h2><div class="status" id="status" data-testid="lock-status">
   <span>no status yet</span></div>
  <div class="row" style="margin-top:8px">
   <button data-cmd="status" data-testid="refresh">Refresh status</button>
   <button id="logs-btn" data-testid="fetch-logs">Fetch log</button>
   <button id="sync-btn" data-testid="sync">Sync</button>
  </div>
  <h2>Recent log</h2><ul id="log" data-testid="recent-log"><li>—</li></ul>
  <h2>Activity</h2><ul id="activity" data-testid="activity"></ul>
  <p class="meta" id="who" style="color:var(--dim);font-size:12px"></p>
 </section>
</main></div>
<script>
const TOKEN = "__TOKEN__";
let S = null, selected = null, busy = false;
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;',
  '"':'&quot;',"'":'&#39;'}[c]));
const fmt = (t) => new Date(t * 1000).toISOString().replace('T', ' ').slice(0, 16);
async function api(path, body) {
  const r = await fetch(path, {method: body === undefined ? 'GET' : 'POST',
    headers: {'Content-Type': 'application/json', 'X-Kagiya-UI': TOKEN},
    body: body === undefined ? undefined : JSON.stringify(body)});
  let j; try { j = await r.json(); } catch (e) { j = {ok: false, message: 'HTTP ' + r.status}; }
  if (!r.ok && j.ok === undefined) j.ok = false;
  return j;
}
function say(text, ok) {
  const m = $('msg'); m.textContent = text; m.className = ok ? 'ok' : 'bad';
}
function render() {
  $('net').textContent = S.online ? 'online' : 'offline';
  $('net').className = 'pill ' + (S.online ? 'on' : 'off');
  $('enroll').hidden = !!S.enrolled; $('app').hidden = !S.enrolled;
  if (!S.enrolled) return;
  if (!selected && S.keys.length) selected = S.keys[0].lock_id;
  $('keys').innerHTML = S.keys.length ? S.keys.map(k => `
    <div class="card ${k.lock_id === selected ? 'sel' : ''}" data-lock="${esc(k.lock_id)}"
         data-testid="key-card">
     <span class="badge ${esc(k.status.replace(/ /g, '-'))}">${esc(k.status)}</span>
     <div class="lock">${esc(k.lock_id)}</div>
     <div class="meta">${fmt(k.nbf)} → ${fmt(k.exp)} UTC</div>
     <div class="meta">${esc(k.permissions.join(' · '))} · key ${esc(k.key_id.slice(0, 8))}</div>
    </div>`).join('') : '<div class="card">No keys yet — sync while online.</div>';
  document.querySelectorAll('.card[data-lock]').forEach(c => c.onclick = () => {
    selected = c.dataset.lock; render(); });
  const st = selected && S.lock_status[selected];
  $('status').innerHTML = st ? [st.doors_locked ? 'doors locked' : 'doors unlocked',
    st.drive_enabled ? 'drive enabled' : 'drive disabled', st.moving ? 'moving' : '',
    st.time_trusted ? 'clock trusted' : 'clock untrusted']
    .filter(Boolean).map(s => `<span>${s}</span>`).join('') : '<span>no status yet</span>';
  const log = (selected && S.recent_log[selected]) || [];
  $('log').innerHTML = log.length ? log.map(r => `<li class="${r.code ? 'bad' : ''}">#${r.seq}
    ${fmt(r.time)} ${esc(r.event)} ${r.code ? '✗ code ' + r.code : '✓'}
    ${r.user_id ? esc(r.user_id) : ''}</li>`).join('') : '<li>—</li>';
  $('activity').innerHTML = S.activity.map(a => `<li class="${a.ok ? '' : 'bad'}">
    ${fmt(a.at).slice(11)} ${a.ok ? '✓' : '✗'} ${esc(a.text)}</li>`).join('');
  $('who').textContent = `phone ${S.phone_id} · user ${S.user_id} · ${S.outbox} upload(s) queued`
    + ` · last sync ${S.last_sync ? fmt(S.last_sync) : 'never'}`;
  document.querySelectorAll('button[data-cmd]').forEach(b => b.disabled = busy || !selected);
}
async function refresh() { const j = await api('/api/state'); if (j.ok) { S = j; render(); } }
async function act(label, path, body) {
  if (busy) return; busy = true; if (S) render(); say(label + '…', true);
  try { const j = await api(path, body); say(j.message + (j.code !== undefined ? '' : ''), j.ok);
        document.body.dataset.last = j.ok ? 'ok' : 'refused'; }
  finally { busy = false; await refresh(); }
}
document.querySelectorAll('button[data-cmd]').forEach(b => b.onclick = () =>
  act(b.textContent, '/api/command', {lock_id: selected, command: b.dataset.cmd}));
$('sync-btn').onclick = () => act('Syncing', '/api/sync', {});
$('logs-btn').onclick = () => act('Fetching log', '/api/logs', {lock_id: selected});
$('enroll-btn').onclick = () => act('Enrolling', '/api/enroll',
  {server: $('server').value.trim(), code: $('code').value.trim()});
refresh(); setInterval(() => { if (!busy) refresh(); }, 5000);
// "live": poll the lock's authenticated status every 5 s (one short BLE session each)
setInterval(() => { if ($('live').checked && !busy && selected && !document.hidden)
  act('Status', '/api/command', {lock_id: selected, command: 'status'}); }, 5000);
</script></body></html>
"""


def render_page(ui_token: str) -> str:
    """The page with this run's UI token embedded."""
    return _PAGE.replace("__TOKEN__", html.escape(ui_token, quote=True))
