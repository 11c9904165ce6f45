// A sales user's leads in the browser, offline first: the records live in a LocalDb kept in
// IndexedDB (@crm/wasm/local), every edit is a crm-core use case run in the tab and queued, and
// Sync pushes the queue and pulls the server's changes (crm-core's sync round over fetch). This file
// signs in, draws, and shows what the core answers; no rule is decided here.
import init, { isCrmError } from '@crm/wasm/web';   // offline.html's import map
import { openLocalDb } from '@crm/wasm/local';

await init();
const opening = performance.now();
const db = await openLocalDb('my-leads');
document.body.dataset.openMs = String(Math.round(performance.now() - opening));
const $ = (id) => document.getElementById(id);
const session = () => JSON.parse(localStorage.getItem('crm-session') ?? 'null');

// One id per installation of this page in this browser: the server answers each device's change sets.
const device = localStorage.getItem('crm-device') ?? `browser-${crypto.randomUUID()}`;
localStorage.setItem('crm-device', device);

function show(problem) {
  $('problem').textContent = problem ?? '';
}

function draw() {
  const s = session();
  $('sign-in').hidden = !!s;
  $('session').hidden = !s;
  $('leads').hidden = !s;
  if (!s) return;
  $('pending').textContent = String(db.pendingChanges(s.actor, 1000).length);
  $('rejections').replaceChildren(...db.syncRejections(s.actor, 50).map((r) => {
    const li = document.createElement('li');
    li.textContent = `Not accepted by the server: ${r.error.message}`;
    return li;
  }));
  const rows = db.list(s.actor, 'lead', { sort: 'first_name', limit: 100 }).items.map((lead) => {
    const tr = document.createElement('tr');
    tr.dataset.id = lead.id;
    const cell = (text) => Object.assign(document.createElement('td'), { textContent: text ?? '' });
    const notes = Object.assign(document.createElement('input'), { value: lead.notes ?? '', name: 'notes' });
    notes.setAttribute('aria-label', `Notes on ${lead.first_name ?? ''} ${lead.last_name ?? ''}`);
    const save = Object.assign(document.createElement('button'), { type: 'button', textContent: 'Save' });
    save.addEventListener('click', () => attempt(() => db.update(s.actor, 'lead', lead.id, lead.version, { notes: notes.value })));
    const input = document.createElement('td');
    input.append(notes);
    const button = document.createElement('td');
    button.append(save);
    // A photo: the core sniffs and hashes the bytes here; they go up with the next sync.
    const photo = Object.assign(document.createElement('input'), { type: 'file', accept: 'image/*', name: 'photo' });
    photo.setAttribute('aria-label', `Add a photo of ${lead.first_name ?? 'the lead'}`);
    photo.addEventListener('change', async () => {
      const file = photo.files[0];
      if (!file) return;
      const bytes = new Uint8Array(await file.arrayBuffer());
      attempt(() => db.attach(s.actor, 'lead', lead.id, { kind: 'photo', file_name: file.name }, bytes));
    });
    const photos = cell(`${db.attachments(s.actor, 'lead', lead.id).length} photo(s)`);
    photos.className = 'photos';
    photos.append(photo);
    tr.append(cell(`${lead.first_name ?? ''} ${lead.last_name ?? ''}`.trim()), cell(lead.city), input, button, photos);
    return tr;
  });
  $('leads').tBodies[0].replaceChildren(...rows);
}

/** Runs one local use case; the core's refusal is shown as it is. */
function attempt(f) {
  try {
    f();
    show();
  } catch (e) {
    if (!isCrmError(e)) throw e;
    show(e.code === 'validation' ? e.errors.map((x) => x.message).join('; ') : e.message);
  }
  draw();
}

async function sync() {
  const s = session();
  $('status').textContent = 'syncing…';
  $('status').dataset.state = 'syncing';
  let said, state, problem = '';
  try {
    const r = await db.sync(s.actor, { serverUrl: s.server, token: s.token, device });
    [said, state] = [`synced: ${r.push.accepted + r.push.merged} sent, ${r.pull.upserts} received`, 'synced'];
    if (r.push.kept_server.length) problem = `The server kept its value of: ${r.push.kept_server.map((k) => k.field).join(', ')}`;
  } catch (e) {
    [said, state] = ['not synced', 'failed'];
    problem = e.name === 'CrmRemoteError' ? `The server could not be reached or refused (${e.code}): your changes are kept` : String(e);
  }
  const saving = performance.now();
  await db.save();
  $('status').dataset.saveMs = String(Math.round(performance.now() - saving));
  draw();
  show(problem);
  $('status').textContent = said;
  $('status').dataset.state = state;
}

$('sign-in').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const server = $('server').value.replace(/\/$/, '');
  try {
    const resp = await fetch(`${server}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ organization: $('organization').value, email: $('email').value, password: $('password').value }),
    });
    const body = await resp.json();
    if (!resp.ok) return show(body.detail ?? body.title);
    const token = body.access_token;
    const actor = await db.connect({ serverUrl: server, token });
    localStorage.setItem('crm-session', JSON.stringify({ server, token, actor }));
    draw();
    await sync();
  } catch (e) {
    show(`Sign-in failed: ${e.message}`);
  }
});
$('sync').addEventListener('click', sync);

$('server').value = new URLSearchParams(location.search).get('server') ?? location.origin;
draw();
document.body.dataset.ready = 'true';
