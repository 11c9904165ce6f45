// Types of local.js: a LocalDb kept in IndexedDB across page loads.
import type { LocalDb, LocalDbOptions } from './crm_wasm.js';

/** A LocalDb whose writes are saved to IndexedDB. */
export type PersistentLocalDb = LocalDb & {
  /** Resolves once everything written so far is stored (rejects if IndexedDB refused; nothing is lost: the next save retries). */
  save(): Promise<void>;
  /** Saves, then closes the database; the handle is unusable afterwards. */
  close(): Promise<void>;
};

/** Opens (or creates) the local database `name` of this origin, with what was saved before. */
export function openLocalDb(name: string, options?: LocalDbOptions): Promise<PersistentLocalDb>;

/** Deletes the stored database `name` of this origin. */
export function deleteLocalDb(name: string): Promise<void>;
