// Hand-written, shipped in the AAR beside the uniffi-generated bindings (same package, so
// `import uniffi.crm_mobile.*` brings both). Paging only: no rule of the CRM lives here.
// Compiled and exercised on the JVM by .ci/mobile.sh (bindings/mobile/tests/kotlin/Main.kt).
package uniffi.crm_mobile

import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.ensureActive
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.flow

/**
 * Every page of [Crm.listLeads] for [query] (its `cursor`, if any, is where paging starts), as a
 * cold [Flow]: one suspend call per page, made only when the collector asks for the next page.
 * Cancelling the collecting coroutine stops it between pages: no further call starts, and a page
 * already on its way is dropped.
 */
fun Crm.leadPages(query: ListQuery = ListQuery()): Flow<LeadPage> =
    pages(query, { listLeads(it) }, { it.nextCursor })

/** Every page of [Crm.myLeads] (the user's assigned leads), as [leadPages] does. */
fun Crm.myLeadPages(query: ListQuery = ListQuery()): Flow<LeadPage> =
    pages(query, { myLeads(it) }, { it.nextCursor })

/** Every page of [Crm.list] for [entity] (`contact`, `activity`, ...), as [leadPages] does. */
fun Crm.recordPages(entity: String, query: ListQuery = ListQuery()): Flow<RecordPage> =
    pages(query, { list(entity, it) }, { it.nextCursor })

private fun <P> pages(start: ListQuery, fetch: suspend (ListQuery) -> P, next: (P) -> String?): Flow<P> = flow {
    var query = start
    while (true) {
        currentCoroutineContext().ensureActive()
        val page = fetch(query)
        emit(page)
        val cursor = next(page) ?: break
        query = query.copy(cursor = cursor)
    }
}
