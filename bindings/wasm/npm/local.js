// A LocalDb kept in the browser's IndexedDB across page loads (docs/wasm.md, "Offline in the
// browser"). crm-core's in-memory store tracks what changed since the last save; this module only
// writes those changes into IndexedDB (rows by [tenant, entity, id], the audit log, the event
// outbox and the sync log by [tenant, seq], attachment bytes by [tenant, sha256]) and reads them
// back into a new LocalDb on the next load.
import { LocalDb } from './crm_wasm.js';

const VERSION = 2;
const LOGS = ['audit', 'events', 'sync'];
const STORES = ['rows', ...LOGS, 'meta', 'blobs'];

const request = (r) => new Promise((resolve, reject) => {
  r.onsuccess = () => resolve(r.result);
  r.onerror = () => reject(r.error);
});

const finished = (tx) => new Promise((resolve, reject) => {
  tx.oncomplete = () => resolve();
  tx.onerror = () => reject(tx.error);
  tx.onabort = () => reject(tx.error ?? new Error('the IndexedDB transaction was aborted'));
});

const idbName = (name) => `crm-local-db:${name}`;

async function openIdb(name) {
  const open = indexedDB.open(idbName(name), VERSION);
  open.onupgradeneeded = () => {
    for (const s of STORES) {
      if (!open.result.objectStoreNames.contains(s)) open.result.createObjectStore(s);
    }
  };
  return request(open);
}

/** Everything stored, as one `Saved` per tenant. */
async function load(idb) {
  const tx = idb.transaction(STORES, 'readonly');
  const all = (s) => request(tx.objectStore(s).getAll());
  const [rows, audit, events, sync, meta, blobs] = await Promise.all(STORES.map(all));
  const tenants = new Map();
  const of = (tenant) => {
    if (!tenants.has(tenant)) {
      tenants.set(tenant, { tenant, rows: [], audit: [], events: [], sync: [], sync_seq: 0 });
    }
    return tenants.get(tenant);
  };
  for (const r of rows) of(r.tenant).rows.push({ entity: r.entity, id: r.id, record: r.record });
  for (const [name, list] of [['audit', audit], ['events', events], ['sync', sync]]) {
    for (const e of list) of(e.tenant)[name].push(e.entry);
  }
  for (const m of meta) of(m.tenant).sync_seq = m.sync_seq;
  return { saved: [...tenants.values()], blobs };
}

/**
 * Writes what changed since the last save in one IndexedDB transaction, then marks it saved;
 * `blobs` are attachment bytes written since (`{tenant, sha256, bytes}`), taken from the list once
 * stored.
 */
async function saveNow(db, idb, blobs) {
  const changes = db.changes();
  const taken = blobs.splice(0);
  if (changes.length === 0 && taken.length === 0) return;
  const tx = idb.transaction(STORES, 'readwrite');
  const done = finished(tx);
  for (const b of taken) tx.objectStore('blobs').put(b, [b.tenant, b.sha256]);
  for (const c of changes) {
    const t = c.tenant;
    const rows = tx.objectStore('rows');
    for (const r of c.rows) {
      const key = [t, r.entity, r.id];
      if (r.record === null) rows.delete(key);
      else rows.put({ tenant: t, entity: r.entity, id: r.id, record: r.record }, key);
    }
    for (const name of LOGS) {
      const store = tx.objectStore(name);
      for (const entry of c[name]) store.put({ tenant: t, entry }, [t, entry.seq]);
    }
    // Sync log entries a server acknowledged.
    tx.objectStore('sync').delete(IDBKeyRange.bound([t, 0], [t, c.sync_from], false, true));
    tx.objectStore('meta').put({ tenant: t, sync_seq: c.sync_seq }, t);
  }
  try {
    await done;
  } catch (e) {
    blobs.push(...taken);
    throw e;
  }
  for (const c of changes) db.saved(c.tenant, c.mark);
}

/**
 * Opens the local database `name` of this origin: a LocalDb (with the sync log on unless
 * `syncLog: false`) holding what was saved before. Every call that writes is followed by a save of
 * what it changed; `await db.save()` to know it is stored. A failed save loses nothing: the
 * changes stay pending in memory and the next save writes them.
 */
export async function openLocalDb(name, options = {}) {
  const idb = await openIdb(name);
  const db = new LocalDb({ ...options, syncLog: options.syncLog ?? true });
  const kept = await load(idb);
  for (const saved of kept.saved) db.restore(saved);
  for (const b of kept.blobs) db.putBlob(b.tenant, b.sha256, b.bytes);
  const blobs = [];
  let queue = Promise.resolve();
  const save = () => {
    queue = queue.catch(() => {}).then(() => saveNow(db, idb, blobs));
    return queue;
  };
  let scheduled = null;
  const soon = () => {
    scheduled ??= Promise.resolve().then(() => {
      scheduled = null;
      return save().catch((e) => console.error('crm: saving the local database failed; retried on the next write', e));
    });
  };
  return new Proxy(db, {
    get(target, prop) {
      if (prop === 'save') return save;
      if (prop === 'close') {
        return async () => {
          await save();
          idb.close();
          target.free();
        };
      }
      const v = Reflect.get(target, prop, target);
      if (typeof v !== 'function') return v;
      return (...args) => {
        const out = v.apply(target, args);
        // attach(actor, entity, id, input, bytes): the bytes live in memory only; keep them too.
        if (prop === 'attach') blobs.push({ tenant: args[0].tenant, sha256: out.sha256, bytes: new Uint8Array(args[4]) });
        if (out instanceof Promise) return out.finally(soon);
        soon();
        return out;
      };
    },
  });
}

/** Deletes the stored database `name` of this origin (close it first). */
export async function deleteLocalDb(name) {
  await request(indexedDB.deleteDatabase(idbName(name)));
}
