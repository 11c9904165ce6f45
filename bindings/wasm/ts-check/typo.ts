// Must fail `tsc --strict`: a misspelt member of a request object (`limt` for `limit`) is an error,
// not an `any` that compiles. .ci/wasm.sh runs tsc on this file and insists on an excess-property error (TS2561, or TS2353
// without a spelling suggestion) naming it.
import { LocalDb } from '@crm/wasm';

const db = new LocalDb();
const org = db.createOrganization({ name: 'Acme' });
db.list({ tenant: org.id }, 'lead', { limt: 5 });
