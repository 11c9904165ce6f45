// The lead form: every keystroke is validated and scored by crm-core (WebAssembly); this file only
// moves values between the form and the package and shows what comes back.
import init, { validate, scoreLead, schema, LocalDb } from '@crm/wasm/web';   // index.html's import map

await init();

const form = document.getElementById('lead-form');
const fieldNames = [...form.querySelectorAll('input, select')].map((el) => el.name);
const specs = Object.fromEntries(schema('lead').fields.map((f) => [f.name, f]));

// Option lists come from the entity declaration.
for (const name of ['source', 'project_type']) {
  const select = document.getElementById(name);
  select.append(new Option('—', ''));
  for (const o of specs[name].options) select.append(new Option(o.replaceAll('_', ' '), o));
}

const db = new LocalDb();
const org = db.createOrganization({ name: 'Offline Roofing' });
const admin = { tenant: org.id };

function input() {
  const out = {};
  for (const name of fieldNames) {
    const v = form.elements[name].value;
    if (v !== '') out[name] = v;
  }
  return out;
}

function show() {
  const lead = input();
  const result = validate('lead', lead);
  for (const name of fieldNames) {
    const e = result.errors.find((x) => x.path === name);
    document.getElementById(`error-${name}`).textContent = e ? e.message : '';
    form.elements[name].setAttribute('aria-invalid', e ? 'true' : 'false');
  }
  const status = document.getElementById('status');
  status.textContent = result.ok ? 'Looks good.' : result.errors.map((e) => `${e.path}: ${e.message}`).join('; ');
  status.dataset.codes = result.errors.map((e) => e.code).join(',');
  document.getElementById('save').disabled = !result.ok;

  const score = document.getElementById('score');
  const temperature = document.getElementById('temperature');
  const rows = document.querySelector('#explanation tbody');
  rows.replaceChildren();
  if (!result.ok) {
    score.textContent = '–';
    temperature.textContent = '';
    return;
  }
  const s = scoreLead({ lead });
  score.textContent = String(s.score);
  score.className = s.temperature;
  temperature.textContent = `${s.temperature} · tier ${s.tier}`;
  for (const c of s.contributions) {
    const tr = rows.insertRow();
    tr.insertCell().textContent = `${c.group} / ${c.rule}`;
    const pts = tr.insertCell();
    pts.className = 'pts';
    pts.textContent = (c.points > 0 ? '+' : '') + c.points;
  }
}

form.addEventListener('input', show);
form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  try {
    const rec = db.create(admin, 'lead', input());
    const n = db.list(admin, 'lead', { limit: 100 }).items.length;
    document.getElementById('saved').textContent = `Saved ${rec.first_name ?? rec.email ?? rec.id} (score ${rec.score}); ${n} lead(s) in this tab.`;
  } catch (e) {
    document.getElementById('saved').textContent = `${e.code}: ${e.message}`;
  }
});
show();
document.body.dataset.ready = 'true';
