"""The phone UI's single page: HTML, CSS and a little JavaScript, no external resources.

Kept as a Python string so it ships with the package without data-file configuration.
Elements the browser test uses carry ``data-testid`` attributes. Every sentence comes from
:data:`TEXT` (catalogue msgids, :mod:`kagiya.sdk.i18n`): ``{{name}}`` in the HTML, ``T.name``
in the script; the server sends everything else already translated.
"""

from __future__ import annotations

import html
import json

from kagiya.sdk.i18n import LANGUAGE_NAMES, LANGUAGES, N_, translate

TEXT: dict[str, str] = {
    "title": N_("Kagiya phone"),
    "phone": N_("phone"),
    "welcome": N_("Welcome."),
    "enroll_title": N_("Enroll this phone"),
    "enroll_hint": N_("Paste the enrollment link from your operator, or scan its QR code."),
    "code_placeholder": N_("Enrollment link or code"),
    "server_more": N_("Only a code, without a link?"),
    "server_placeholder": N_("Key server address (only for a bare code)"),
    "enroll_button": N_("Enroll & download keys"),
    "keys": N_("Keys"),
    "unlock": N_("Unlock"),
    "lock": N_("Lock"),
    "drive_on": N_("Drive on"),
    "drive_off": N_("Drive off"),
    "vehicle": N_("Vehicle"),
    "live": N_("live"),
    "no_status": N_("no status yet"),
    "refresh": N_("Refresh status"),
    "fetch_log": N_("Fetch log"),
    "sync": N_("Sync"),
    "recent_log": N_("Recent log"),
    "activity": N_("Activity"),
    "online": N_("online"),
    "offline": N_("offline — keys still work at the vehicle"),
    "no_keys": N_("No keys yet — sync while online to download them."),
    "no_usable": N_("No usable key for this vehicle. The buttons stay off until a sync "
                    "brings a valid key."),
    "cancelled_at": N_("cancelled {at}"),
    "key": N_("key"),
    "syncing": N_("Syncing"),
    "fetching": N_("Fetching log"),
    "enrolling": N_("Enrolling"),
    "unexpected": N_("Something went wrong in the phone app. Try again."),
    "language": N_("Language"),
}

_PAGE = r"""<!doctype html>
<html lang="{{lang}}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}}</title>
<style>
:root { --bg:#0f172a; --card:#1e293b; --fg:#e2e8f0; --dim:#94a3b8; --ok:#22c55e; --bad:#ef4444;
        --acc:#38bdf8; --warn:#f59e0b; }
* { box-sizing:border-box; }
body { margin:0; min-height:100vh; display:flex; align-items:center; justify-content:center;
       background:#020617; font:15px/1.4 system-ui, sans-serif; color:var(--fg); }
.phone { width:390px; height:800px; border-radius:44px; border:10px solid #334155;
         background:var(--bg); overflow:hidden; display:flex; flex-direction:column; }
header { padding:18px 20px 10px; display:flex; justify-content:space-between; align-items:center; }
header h1 { margin:0; font-size:20px; letter-spacing:.5px; white-space:nowrap; }
.netrow { padding:0 20px 6px; }
.pill { font-size:12px; padding:3px 10px; border-radius:99px; background:#334155; }
.pill.on { background:#14532d; color:#bbf7d0; } .pill.off { background:#334155; color:#cbd5e1; }
.langs a { color:var(--dim); font-size:12px; margin-left:6px; } .langs a.cur { color:var(--fg); }
main { flex:1; overflow-y:auto; padding:0 16px 16px; }
section { margin-bottom:14px; }
h2 { font-size:13px; text-transform:uppercase; color:var(--dim); margin:14px 4px 6px; }
.card { background:var(--card); border-radius:16px; padding:12px 14px; margin-bottom:8px;
        border:2px solid transparent; cursor:pointer; }
.card.sel { border-color:var(--acc); }
.card .lock { font-weight:600; font-size:17px; }
.card .meta { color:var(--dim); font-size:12px; }
.badge { float:right; font-size:12px; padding:2px 8px; border-radius:99px; }
.badge.valid { background:#14532d; } .badge.expired, .badge.cancelled { background:#7f1d1d; }
.card.gone { opacity:.8; border-color:#7f1d1d; } .card .why { color:#fca5a5; font-size:12px; }
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
#msg.ok { border-left:4px solid var(--ok); } #msg.error { border-left:4px solid var(--bad); }
#msg.warn { border-left:4px solid var(--warn); } #msg.info { border-left:4px solid var(--dim); }
.status { display:flex; gap:6px; flex-wrap:wrap; }
.status span { background:#0b1220; border-radius:8px; padding:4px 8px; font-size:13px; }
ul { list-style:none; margin:0; padding:0; font-size:13px; }
li { padding:4px 6px; border-bottom:1px solid #1e293b; color:var(--dim); }
li.bad { color:#fca5a5; }
.row { display:flex; gap:8px; } .row button { flex:1; }
</style></head>
<body><div class="phone">
<header><h1>Kagiya <small style="color:var(--dim);font-size:13px">{{phone}}</small></h1>
  <nav class="langs" aria-label="{{language}}">{{langs}}</nav></header>
<div class="netrow"><span id="net" class="pill" data-testid="net">…</span></div>
<main>
 <div id="msg" role="status" aria-live="polite" data-testid="message">{{welcome}}</div>
 <section id="enroll" hidden data-testid="enroll-form">
  <h2>{{enroll_title}}</h2>
  <p class="meta">{{enroll_hint}}</p>
  <input id="code" placeholder="{{code_placeholder}}" aria-label="{{code_placeholder}}"
         autocomplete="off" data-testid="code">
  <details><summary class="meta">{{server_more}}</summary>
  <input id="server" placeholder="{{server_placeholder}}" aria-label="{{server_placeholder}}"
         data-testid="server"></details>
  <button id="enroll-btn" data-testid="enroll">{{enroll_button}}</button>
 </section>
 <section id="app" hidden>
  <h2>{{keys}}</h2><div id="keys" data-testid="keys"></div>
  <p id="no-usable" class="meta" hidden data-testid="no-usable">{{no_usable}}</p>
  <div class="big">
   <button class="main unlock" data-cmd="unlock" data-testid="unlock">{{unlock}}</button>
   <button class="main lockb" data-cmd="lock" data-testid="lock">{{lock}}</button>
   <button class="main drive" data-cmd="drive-on" data-testid="drive-on">{{drive_on}}</button>
   <button class="main stop" data-cmd="drive-off" data-testid="drive-off">{{drive_off}}</button>
  </div>
  <h2>{{vehicle}} <label style="float:right;text-transform:none">
   <input type="checkbox" id="live" data-testid="live" style="width:auto;margin:0"> {{live}}</label>
  </h2><div class="status" id="status" data-testid="lock-status">
   <span>{{no_status}}</span></div>
  <div class="row" style="margin-top:8px">
   <button data-cmd="status" data-testid="refresh">{{refresh}}</button>
   <button id="logs-btn" data-testid="fetch-logs">{{fetch_log}}</button>
   <button id="sync-btn" data-testid="sync">{{sync}}</button>
  </div>
  <h2>{{recent_log}}</h2><ul id="log" data-testid="recent-log"><li>—</li></ul>
  <h2>{{activity}}</h2><ul id="activity" data-testid="activity"></ul>
  <p class="meta" id="who" style="color:var(--dim);font-size:12px"></p>
 </section>
</main></div>
<script>
const TOKEN = "__TOKEN__";
const T = __TEXT__;
let S = null, selected = null, busy = false;
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;',
  '"':'&quot;',"'":'&#39;'}[c]));
async function api(path, body) {
  let r, j;
  try {
    r = await fetch(path, {method: body === undefined ? 'GET' : 'POST',
      headers: {'Content-Type': 'application/json', 'X-Kagiya-UI': TOKEN},
      body: body === undefined ? undefined : JSON.stringify(body)});
    j = await r.json();
  } catch (e) { j = null; }
  if (!j || typeof j.message !== 'string' && j.ok === undefined)
    j = {ok: false, level: 'error', message: T.unexpected};  // never a bare HTTP status
  if (r && !r.ok && j.ok === undefined) j.ok = false;
  if (j.ok === false && typeof j.message !== 'string') j.message = T.unexpected;
  return j;
}
function say(text, level) {
  const m = $('msg'); m.textContent = text; m.className = level || 'ok';
}
function card(k, gone) {
  return `<div class="card ${k.lock_id === selected ? 'sel' : ''} ${gone ? 'gone' : ''}"
       data-lock="${esc(k.lock_id)}" data-status="${esc(k.status)}" data-testid="key-card">
     <span class="badge ${esc(k.status.replace(/ /g, '-'))}">${esc(k.status_text)}</span>
     <div class="lock">${esc(k.lock_id)}</div>
     ${gone ? `<div class="meta">${esc(T.cancelled_at.replace('{at}', k.at_text))}</div>`
            : `<div class="meta">${esc(k.window)}</div>
     <div class="meta">${esc(k.permissions.join(' · '))} · ${esc(T.key)}
       ${esc(k.key_id.slice(0, 8))}</div>`}
     ${k.reason ? `<div class="why" data-testid="key-reason">${esc(k.reason)}</div>` : ''}
    </div>`;
}
function render() {
  $('net').textContent = S.online ? T.online : T.offline;
  $('net').className = 'pill ' + (S.online ? 'on' : 'off');
  $('enroll').hidden = !!S.enrolled; $('app').hidden = !S.enrolled;
  if (!S.enrolled) return;
  const all = S.keys.concat(S.withdrawn);
  if (!selected && all.length) selected = (S.keys[0] || all[0]).lock_id;
  $('keys').innerHTML = all.length ? S.keys.map(k => card(k, false)).join('')
      + S.withdrawn.map(k => card(k, true)).join('')
    : `<div class="card" data-testid="no-keys">${esc(T.no_keys)}</div>`;
  document.querySelectorAll('.card[data-lock]').forEach(c => c.onclick = () => {
    selected = c.dataset.lock; render(); });
  const usable = !!(selected && S.usable[selected]);
  $('no-usable').hidden = usable || !all.length;
  const st = selected && S.lock_status[selected];
  $('status').innerHTML = (st ? st.chips : [T.no_status])
    .map(s => `<span>${esc(s)}</span>`).join('');
  const log = (selected && S.recent_log[selected]) || [];
  $('log').innerHTML = log.length ? log.map(r => `<li class="${r.code ? 'bad' : ''}">#${r.seq}
    ${esc(r.time_text)} ${esc(r.event_text)} — ${esc(r.outcome)}
    ${r.who_text ? '· ' + esc(r.who_text) : ''}</li>`).join('') : '<li>—</li>';
  $('activity').innerHTML = S.activity.map(a => `<li class="${a.ok ? '' : 'bad'}">
    ${esc(a.at_text)} ${a.ok ? '✓' : '✗'} ${esc(a.text)}</li>`).join('');
  $('who').textContent = S.who;
  document.querySelectorAll('button[data-cmd]').forEach(b => b.disabled = busy || !usable);
  $('logs-btn').disabled = busy || !usable;
}
async function refresh() { const j = await api('/api/state'); if (j.ok) { S = j; render(); } }
async function act(label, path, body) {
  if (busy) return; busy = true; if (S) render(); say(label + '…', 'info');
  try { const j = await api(path, body);
        say(j.message, j.level || (j.ok ? 'ok' : 'error'));
        document.body.dataset.last = j.ok ? 'ok' : 'refused'; }
  finally { busy = false; await refresh(); }
}
document.querySelectorAll('button[data-cmd]').forEach(b => b.onclick = () =>
  act(b.textContent, '/api/command', {lock_id: selected, command: b.dataset.cmd}));
$('sync-btn').onclick = () => act(T.syncing, '/api/sync', {});
$('logs-btn').onclick = () => act(T.fetching, '/api/logs', {lock_id: selected});
$('enroll-btn').onclick = () => act(T.enrolling, '/api/enroll',
  {server: $('server').value.trim(), code: $('code').value.trim()});
refresh(); setInterval(() => { if (!busy) refresh(); }, 5000);
// "live": poll the lock's authenticated status every 5 s (one short BLE session each)
setInterval(() => { if ($('live').checked && !busy && selected && !document.hidden
  && S && S.usable[selected])
  act(T.refresh, '/api/command', {lock_id: selected, command: 'status'}); }, 5000);
</script></body></html>
"""


def render_page(ui_token: str, lang: str = "en") -> str:
    """The page in ``lang`` with this run's UI token embedded."""
    text = {name: translate(lang, msgid) for name, msgid in TEXT.items()}
    page = _PAGE.replace("__TOKEN__", html.escape(ui_token, quote=True))
    script_text = json.dumps(text, ensure_ascii=False).replace("</", "<\\/")
    page = page.replace("__TEXT__", script_text)
    links = " ".join(
        f'<a href="?lang={code}" lang="{code}" class="{"cur" if code == lang else ""}"'
        f' data-testid="lang-{code}">{LANGUAGE_NAMES[code]}</a>' for code in LANGUAGES
    )
    for name, value in {**text, "lang": lang}.items():
        page = page.replace("{{" + name + "}}", html.escape(value, quote=True))
    return page.replace("{{langs}}", links)
