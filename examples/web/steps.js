// A crew member's step checklist for one job, offline in the browser: every tick is a transition run by
// crm-core (WebAssembly) in a LocalDb; this file only draws what comes back and shows the core's
// refusals (a guard's reason on its field) as they are.
import init, { LocalDb, checkUpload, isCrmError } from '@crm/wasm/web';   // steps.html's import map

await init();

const db = new LocalDb();
const org = db.createOrganization({ name: 'Swift Movers' });
const admin = { tenant: org.id };
const dana = db.create(admin, 'user', { name: 'Dana', email: 'dana@movers.example', role: 'field_tech' });
const crew = { tenant: org.id, user: dana.id };
const client = db.create(admin, 'contact', { first_name: 'Cleo', last_name: 'Ito' });
db.create(admin, 'job_template', {
  job_type: 'local_move',
  steps: [{ name: 'Walkthrough' }, { name: 'Load the truck' }, { name: 'Unload' }, { name: 'Photos', required: false }],
});
const now = new Date();
const at = (h) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), h)).toISOString();
let job = db.create(admin, 'job', {
  kind: 'journey', title: 'Cleo to Elm St', job_type: 'local_move', contact_id: client.id,
  signature_required: true, crew_assignments: [{ user_id: dana.id, role: 'driver', starts_at: at(8), ends_at: at(12) }],
});
job = db.transition(crew, 'job', job.id, job.version, 'start', {});

const refusal = document.getElementById('refusal');

/** Runs one core call; a CrmError's field messages are shown, anything else is a bug. */
function attempt(f) {
  try {
    f();
    refusal.textContent = '';
    refusal.dataset.codes = '';
  } catch (e) {
    if (!isCrmError(e)) throw e;
    const fields = e.code === 'validation' ? e.fields : [];
    refusal.textContent = fields.length ? fields.map((x) => x.message).join('; ') : e.message;
    refusal.dataset.codes = fields.map((x) => x.code).join(',');
  }
  draw();
}

function draw() {
  job = db.get(crew, 'job', job.id);
  document.getElementById('title').textContent = job.title;
  document.getElementById('status').textContent = job.status.replaceAll('_', ' ');
  document.getElementById('progress').value = job.progress;
  document.getElementById('progress-text').textContent = `${job.steps_finished} of ${job.step_count} steps`;
  document.getElementById('signed').checked = job.customer_signed;
  document.getElementById('signed').disabled = job.customer_signed;
  const list = document.getElementById('steps');
  list.replaceChildren();
  for (const s of db.children(crew, 'job', job.id).job_steps) {
    const li = document.createElement('li');
    li.className = s.status;
    li.dataset.step = s.name;
    const box = Object.assign(document.createElement('input'), { type: 'checkbox', id: `step-${s.id}` });
    box.checked = s.status === 'done';
    box.disabled = s.status !== 'pending' && s.status !== 'in_progress';
    box.addEventListener('change', () => attempt(() => db.transition(crew, 'job_step', s.id, s.version, 'complete', {})));
    const label = Object.assign(document.createElement('label'), { htmlFor: box.id, textContent: s.name });
    if (s.required) label.className = 'required';
    li.append(box, label);
    if (!box.disabled && !s.required) {
      const skip = Object.assign(document.createElement('button'), { type: 'button', textContent: 'Skip' });
      skip.addEventListener('click', () => attempt(() => db.transition(crew, 'job_step', s.id, s.version, 'skip', { skip_reason: 'Not needed today' })));
      li.append(skip);
    }
    if (s.completed_at) {
      li.append(Object.assign(document.createElement('small'), { textContent: `${s.status} ${new Date(s.completed_at).toLocaleTimeString()}` }));
    }
    list.append(li);
  }
}

// The customer signs on the crew's phone: the signature is an attachment of kind `signature` (here
// a PNG drawn on a canvas), which signs the job in the core. The box cannot be unticked.
document.getElementById('signed').addEventListener('change', (ev) => attempt(() => {
  if (!ev.target.checked) return;
  const canvas = Object.assign(document.createElement('canvas'), { width: 120, height: 40 });
  const ctx = canvas.getContext('2d');
  ctx.font = '20px cursive';
  ctx.fillText('Cleo Ito', 4, 28);
  const png = Uint8Array.from(atob(canvas.toDataURL('image/png').split(',')[1]), (c) => c.charCodeAt(0));
  db.attach(crew, 'job', job.id, { kind: 'signature', file_name: 'signature.png', signer_name: 'Cleo Ito' }, png);
}));
// A photo picked for the job is checked in the tab before it is attached (or sent to a server):
// crm-core's own upload checks, writing nothing. A refusal shows the core's messages; a photo that
// passes is attached with the SHA-256 the check computed as its declared hash.
document.getElementById('photo').addEventListener('change', async (ev) => {
  const file = ev.target.files[0];
  if (!file) return;
  const bytes = new Uint8Array(await file.arrayBuffer());
  const input = { kind: 'photo', file_name: file.name, media_type: file.type || null, size: file.size };
  const checked = checkUpload('job', input, bytes);
  const out = document.getElementById('photo-check');
  out.dataset.sha256 = checked.sha256;
  out.dataset.codes = checked.errors.map((e) => e.code).join(',');
  if (!checked.ok) {
    out.textContent = checked.limit_exceeded ? `over the limit of ${checked.limit} bytes` : checked.errors.map((e) => e.message).join('; ');
    return;
  }
  attempt(() => db.attach(crew, 'job', job.id, { ...input, sha256: checked.sha256 }, bytes));
  out.textContent = `${file.name}: ${checked.media_type}, ${checked.size} bytes`;
  out.dataset.attached = String(db.attachments(crew, 'job', job.id).length);
});
document.getElementById('complete').addEventListener('click', () => attempt(() => {
  db.transition(crew, 'job', job.id, job.version, 'complete', {});
}));
draw();
document.body.dataset.ready = 'true';
