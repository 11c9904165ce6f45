// Runs the generated uniffi Kotlin bindings (generated/kotlin) on the JVM against a real SQLite file:
// the same scenarios as tests/python. Every database call is a suspend function: the scenarios run
// in runBlocking. Built and run by .ci/mobile.sh with docs/mobile.md's JVM commands (kotlinc + JNA),
// together with the Android module's Kotlin (bindings/mobile/android/crm/src/main) and the guide's
// Kotlin blocks (extracted into docs/ beside this file).
import uniffi.crm_mobile.*
import kotlinx.coroutines.cancel
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.yield
import java.nio.file.Files
import kotlin.system.exitProcess

fun check(cond: Boolean, what: String) {
    if (!cond) throw AssertionError(what)
}

/** A JSON string literal (or `null`), for building a patch by hand. */
fun jsonText(s: String?): String {
    if (s == null) return "null"
    val out = StringBuilder("\"")
    for (c in s) {
        when {
            c == '"' -> out.append("\\\"")
            c == '\\' -> out.append("\\\\")
            c < ' ' -> out.append(String.format("\\u%04x", c.code))
            else -> out.append(c)
        }
    }
    return out.append('"').toString()
}

/** Every writable typed field of a lead, as read, as a patch: what an edit screen saves. */
fun leadPatch(l: Lead, notes: String? = l.notes): String = listOf(
    "first_name" to l.firstName, "last_name" to l.lastName, "company_name" to l.companyName,
    "email" to l.email, "phone" to l.phone, "city" to l.city, "source" to l.source, "status" to l.status,
    "owner_id" to l.ownerId, "project_type" to l.projectType, "priority" to l.priority,
    "estimated_value" to l.estimatedValue, "notes" to notes,
).joinToString(", ", "{", "}") { (k, v) -> "\"$k\": ${jsonText(v)}" }

/** Signs in to `crm serve` (POST /api/v1/auth/login) and returns the access token. */
fun signIn(url: String, org: String, email: String, password: String): String {
    val body = """{"organization":"$org","email":"$email","password":"$password"}"""
    val req = java.net.http.HttpRequest.newBuilder(java.net.URI.create("$url/api/v1/auth/login"))
        .header("content-type", "application/json")
        .POST(java.net.http.HttpRequest.BodyPublishers.ofString(body))
        .build()
    val resp = java.net.http.HttpClient.newHttpClient().send(req, java.net.http.HttpResponse.BodyHandlers.ofString())
    check(resp.statusCode() == 200, "sign-in answered ${resp.statusCode()}: ${resp.body()}")
    return Regex("\"access_token\"\\s*:\\s*\"([^\"]+)\"").find(resp.body())!!.groupValues[1]
}

inline fun <reified E : Throwable> expect(block: () -> Unit): E {
    try {
        block()
    } catch (e: Throwable) {
        if (e is E) return e
        throw AssertionError("expected ${E::class.simpleName}, got $e")
    }
    throw AssertionError("expected ${E::class.simpleName}, nothing was thrown")
}

fun main(): Unit = runBlocking {
    val path = Files.createTempDirectory("crm-kotlin").resolve("crm.db").toString()
    val demo = loadDemo(path, 20u, 40u, 1u)
    val email = demo.users.groupBy { it.role }.mapValues { it.value.first().email }

    val tests = linkedMapOf<String, suspend () -> Unit>(
        "open as a field tech" to suspend {
            Crm.open(path, email.getValue("field_tech")).use { tech ->
                check(tech.role() == "field_tech", "role")
                check(tech.userId().length == 36, "user id")
            }
        },
        "an unknown user is NotFound" to suspend {
            val e = expect<CrmException.NotFound> { Crm.open(path, "nobody@example.invalid") }
            check(e.code == "not_found", "code ${e.code}")
        },
        "a field tech lists only their assigned leads" to suspend {
            Crm.open(path, email.getValue("field_tech")).use { tech ->
                val mine = tech.myLeads(ListQuery())
                val all = tech.listLeads(ListQuery(limit = 500u))
                check(mine.items.isNotEmpty(), "has leads")
                check(mine.items.map { it.id }.toSet() == all.items.map { it.id }.toSet(), "same leads")
                check(all.items.all { it.ownerId == tech.userId() }, "all owned")
                Crm.open(path, email.getValue("admin")).use { admin ->
                    check(admin.listLeads(ListQuery(limit = 500u)).items.size > all.items.size, "admin sees more")
                }
            }
        },
        "filter language and score explanation" to suspend {
            Crm.open(path, email.getValue("admin")).use { admin ->
                val page = admin.listLeads(ListQuery(q = "score>=0", sort = "-score", limit = 5u))
                check(page.items.isNotEmpty(), "results")
                val scores = page.items.map { it.score!! }
                check(scores == scores.sortedDescending(), "sorted")
                val why = admin.explainScore(page.items[0].id)
                check(why.score == page.items[0].score, "same score")
                check(why.lines.sumOf { it.points } == why.score, "lines add up")
                check(why.temperature == page.items[0].temperature, "the same Temperature enum as the lead's")
                val e = expect<CrmException.InvalidQuery> { admin.listLeads(ListQuery(q = "score>>")) }
                check(e.code == "invalid_query", "code")
            }
        },
        "log an activity and a check-in" to suspend {
            Crm.open(path, email.getValue("field_tech")).use { tech ->
                val lead = tech.myLeads(ListQuery(limit = 1u)).items[0]
                val act = tech.logActivity(ActivityInput(kind = ActivityKind.VISIT, leadId = lead.id,
                    subject = "Roof inspection", direction = Direction.OUTBOUND, durationMinutes = 30))
                check(act.kind == ActivityKind.VISIT && act.leadId == lead.id && act.ownerId == tech.userId(), "activity")
                val ci = tech.checkIn(lead.id, "arrived on site")
                check(ci.kind == ActivityKind.CHECK_IN && ci.body == "arrived on site", "check-in")
                check(tech.changesSince(0u, 1000u).any { it.kind == "activity.created" && it.entityId == ci.id }, "feed")
                val trail = tech.auditTrail(AuditQuery(entity = "lead", entityId = lead.id))
                check(trail.isNotEmpty() && trail[0].action == "create", "audit")
            }
        },
        "my follow-ups today, offline" to suspend {
            Crm.open(path, email.getValue("sales")).use { sales ->
                val me = sales.userId()
                val lead = sales.create("lead", """{"first_name": "Due", "owner_id": "$me"}""")
                val `when` = java.time.Instant.now().minusSeconds(60).truncatedTo(java.time.temporal.ChronoUnit.SECONDS).toString()
                sales.logActivity(ActivityInput(kind = ActivityKind.CALL, leadId = lead.id, direction = Direction.OUTBOUND,
                    extraJson = """{"next_followup_at": "$`when`"}"""))
                val mine = sales.myFollowups(null)
                check(mine.any { it.id == lead.id }, "the planned call is listed")
                check(mine.all { it.status == "overdue" || it.status == "due_today" }, "due today or overdue")
                check(mine.map { it.nextFollowupAt } == mine.map { it.nextFollowupAt }.sorted(), "earliest first")
                check(sales.myFollowups(1u).size == 1, "limit")
                Crm.open(path, email.getValue("field_tech")).use { tech ->
                    check(tech.myFollowups(null).none { it.id == lead.id }, "owed by the sales user only")
                }
            }
        },
        "a staff user's forbidden write names the field" to suspend {
            Crm.open(path, email.getValue("staff")).use { staff ->
                val c = staff.list("contact", ListQuery(limit = 1u)).items[0]
                val e = expect<CrmException.Forbidden> {
                    staff.update("contact", c.id, c.version, """{"email": "new@mail.example"}""")
                }
                check(e.code == "forbidden", "code")
                check(e.fields == listOf("email"), "fields ${e.fields}")
                val ok = staff.update("contact", c.id, c.version, """{"notes": "called back"}""")
                check(ok.version == c.version + 1uL, "notes allowed")
            }
        },
        "staff may change a client's notes and nothing else" to suspend {
            Crm.open(path, email.getValue("admin")).use { admin ->
                val c = admin.create("contact", """{"first_name": "Front", "last_name": "Desk"}""")
                Crm.open(path, email.getValue("staff")).use { staff ->
                    val others = linkedMapOf(
                        "first_name" to "\"Mallory\"", "last_name" to "\"Changed\"",
                        "email" to "\"new@mail.example\"", "phone" to "\"+13035550199\"",
                        "external_id" to "\"CARD-1\"", "segment" to "\"gold\"", "tags" to "[\"vip\"]",
                    )
                    for ((field, value) in others) {
                        val e = expect<CrmException.Forbidden> {
                            staff.update("contact", c.id, c.version, """{"$field": $value, "notes": "no"}""")
                        }
                        check(e.code == "forbidden" && e.action == "update" && e.entity == "contact", "error $e")
                        check(e.fields == listOf(field), "$field: fields ${e.fields}")
                        check(admin.get("contact", c.id).version == c.version, "$field: nothing written")
                    }
                    val both = expect<CrmException.Forbidden> {
                        staff.update("contact", c.id, c.version, """{"email": "a@mail.example", "phone": "+13035550100"}""")
                    }
                    check(both.fields.sorted() == listOf("email", "phone"), "fields ${both.fields}")
                    val created = expect<CrmException.Forbidden> { staff.create("contact", """{"first_name": "Walk"}""") }
                    check(created.action == "create", "create ${created.action}")
                    val ok = staff.update("contact", c.id, c.version, """{"notes": "asked about the yearly plan"}""")
                    check(ok.version == c.version + 1uL, "notes allowed")
                    check(admin.get("contact", c.id).json.contains("\"notes\":\"asked about the yearly plan\""), "stored")
                }
            }
        },
        "a front-desk tablet checks clients in offline" to suspend {
            val desk = Files.createTempDirectory("crm-kotlin-desk").resolve("desk.db").toString()
            val centre = loadEsportsDemo(desk, 30u)
            val staffEmail = centre.users.first { it.role == "staff" }.email
            Crm.open(desk, staffEmail).use { staff ->
                check(staff.pendingChanges(1000u).isEmpty(), "the demo is not this device's change")
                // Card 500001: an active member; 500007: a membership that starts later.
                val ok = staff.checkInClient("500001", null, null)
                check(ok.outcome == "allowed" && ok.status == "active" && ok.checkInId != null, "allowed $ok")
                val pending = staff.pendingChanges(1000u)
                check(pending.size == 1 && pending[0].actor == staff.userId(), "one change set $pending")
                val w = pending[0].writes.first { it.entity == "check_in" }
                check(w.id == ok.checkInId && w.op == SyncOp.INSERT, "the check-in is queued $w")
                check(w.patchJson.contains("\"outcome\":\"allowed\""), "patch ${w.patchJson}")
                val no = staff.checkInClient("500007", null, null)
                check(no.outcome == "refused" && no.status == "upcoming" && no.reason != null, "refused $no")
                val byId = staff.checkInClient(null, ok.contactId, null)
                check(byId.name == ok.name, "by id")
                val e = expect<CrmException.NotFound> { staff.checkInClient("no-such-card", null, null) }
                check(e.code == "not_found", "unknown card")
                val n = staff.membershipNumbers(null)
                check(n.activeMembers > 0uL && n.checkInsByHour.size == 7 && n.months.size == 12, "numbers $n")
                check(n.checkInsPerDay.last().checkIns >= 2uL, "today's visits counted ${n.checkInsPerDay.last()}")
            }
        },
        "a stale version is a Conflict" to suspend {
            Crm.open(path, email.getValue("field_tech")).use { tech ->
                val lead = tech.myLeads(ListQuery(limit = 1u)).items[0]
                val v = lead.version
                val fresh = tech.updateLead(lead.id, v, """{"notes": "ladder needed"}""")
                check(fresh.version == v + 1uL && fresh.notes == "ladder needed", "updated")
                val e = expect<CrmException.Conflict> { tech.updateLead(lead.id, v, """{"notes": "stale"}""") }
                check(e.code == "conflict" && e.expected == v && e.actual == v + 1uL, "conflict $e")
            }
        },
        "offline changes are pending until marked synced" to suspend {
            Crm.open(path, email.getValue("field_tech")).use { tech ->
                // Earlier scenarios wrote too: acknowledge them first.
                tech.pendingChanges(1000u).lastOrNull()?.let { tech.markSynced(it.seq) }
                check(tech.pendingChanges(1000u).isEmpty(), "drained")
                val lead = tech.myLeads(ListQuery(limit = 1u)).items[0]
                val act = tech.logActivity(ActivityInput(kind = ActivityKind.CALL, leadId = lead.id,
                    subject = "Quote follow-up", direction = Direction.OUTBOUND))
                val pending = tech.pendingChanges(1000u)
                check(pending.size == 1, "one pending change set: $pending")
                val entry = pending[0]
                check(entry.actor == tech.userId() && entry.changeSetId.length == 36, "origin $entry")
                val w = entry.writes.single()
                check(w.entity == "activity" && w.id == act.id && w.op == SyncOp.INSERT && w.expectedVersion == 0uL, "write $w")
                check(w.patchJson.contains("\"subject\":\"Quote follow-up\""), "patch ${w.patchJson}")
                check(tech.markSynced(entry.seq) == 1uL, "marked")
                check(tech.pendingChanges(1000u).isEmpty(), "empty after markSynced")
            }
        },
        "an estimator builds and submits a quote offline" to suspend {
            Crm.open(path, email.getValue("sales")).use { est ->
                // Earlier scenarios wrote too: acknowledge them first.
                est.pendingChanges(1000u).lastOrNull()?.let { est.markSynced(it.seq) }
                val contact = est.create("contact", """{"first_name": "Carla", "last_name": "Client"}""")
                // docs/mobile.md's estimateMove (extracted and compiled by .ci/mobile.sh).
                val submitted = estimateMove(est, contact.id, "6.5")
                check(submitted.json.contains("\"total\":\"1115.79\"") && submitted.json.contains("\"status\":\"approved\""), "quote ${submitted.json}")
                val lines = est.children("quote", submitted.id).single()
                check(lines.table == "quote_lines" && lines.entity == "quote_line" && lines.items.size == 2, "lines $lines")
                check(lines.items[0].json.contains("\"quantity\":\"6.5\""), "decimal quantity ${lines.items[0].json}")
                val pending = est.pendingChanges(1000u)
                check(pending.size == 3, "contact, quote with lines, submit: $pending")
                check(pending[1].writes.map { it.entity to it.op } ==
                    listOf("quote" to SyncOp.INSERT, "quote_line" to SyncOp.INSERT, "quote_line" to SyncOp.INSERT), "one change set")
                check(!pending[1].writes[1].patchJson.contains("\"amount\""), "derived amounts left out")
                val w = pending[2].writes.single()
                check(w.entity == "quote" && w.op == SyncOp.UPDATE && w.expectedVersion == submitted.version - 1uL &&
                    w.patchJson.contains("\"status\":\"approved\""), "submit $w")
                // Refusals: typed, nothing written or queued.
                val e = expect<CrmException.Validation> { est.transition("quote", submitted.id, submitted.version, "submit", null) }
                check(e.fields.map { it.code } == listOf("invalid_transition"), "refused ${e.fields}")
                expect<CrmException.Conflict> { est.transition("quote", submitted.id, submitted.version - 1uL, "send", null) }
                val bad = expect<CrmException.Validation> { estimateMove(est, contact.id, "lots") }
                check(bad.fields.map { it.path to it.code } == listOf("quote_lines[0].quantity" to "invalid_type"), "bad ${bad.fields}")
                check(est.pendingChanges(1000u).size == 3, "nothing queued by refusals")
            }
        },
        "a crew member runs the day offline: two steps and an activity are three change sets" to suspend {
            val techId = Crm.open(path, email.getValue("field_tech")).use { it.userId() }
            Crm.open(path, email.getValue("admin")).use { admin ->
                val contact = admin.create("contact", """{"first_name": "Cleo"}""")
                val now = java.time.Instant.now().truncatedTo(java.time.temporal.ChronoUnit.SECONDS)
                admin.create("job", """{"kind": "journey", "title": "Cleo to Elm St", "contact_id": "${contact.id}",
                    "job_steps": [{"name": "Load"}, {"name": "Drive"}, {"name": "Unload"}],
                    "crew_assignments": [{"user_id": "$techId", "role": "driver",
                        "starts_at": "${now.minusSeconds(43200)}", "ends_at": "${now.plusSeconds(43200)}"}]}""")
            }
            Crm.open(path, email.getValue("field_tech")).use { tech ->
                // What was synced before this device went offline.
                tech.pendingChanges(1000u).lastOrNull()?.let { tech.markSynced(it.seq) }
                val day = tech.myDay(null)
                check(day.size == 1 && day[0].openSteps.first().json.contains("\"name\":\"Load\""), "the day: $day")
                check(day[0].openSteps.size == 3, "three open steps")
                val job = day[0].job!!
                val (load, drive) = day[0].openSteps
                val done = tech.transition("job_step", load.id, load.version, "complete", null)
                check(done.json.contains("\"completed_by\":\"$techId\""), "stamped by the core: ${done.json}")
                tech.transition("job_step", drive.id, drive.version, "complete", null)
                tech.create("step_activity", """{"job_id": "${job.id}", "step_id": "${drive.id}", "kind": "measurement",
                    "measure": "odometer", "amount": 12.5, "unit": "mi"}""")
                val pending = tech.pendingChanges(1000u)
                check(pending.size == 3, "two steps and an activity: $pending")
                check(pending.all { it.actor == techId }, "all the crew member's")
                for ((entry, step) in pending.take(2).zip(listOf(load, drive))) {
                    check(entry.writes.any { it.entity == "job_step" && it.op == SyncOp.UPDATE && it.patchJson.contains("\"done\"") &&
                        it.expectedVersion == step.version },
                        "a step's completion: ${entry.writes}")
                    check(entry.writes.any { it.entity == "job" && it.op == SyncOp.UPDATE }, "with its job's progress")
                }
                check(pending[2].writes.any { it.entity == "step_activity" && it.op == SyncOp.INSERT }, "the activity ${pending[2].writes}")
                check(tech.myDay(null).single().openSteps.size == 1, "one step left")
                // A refusal queues nothing: the job cannot complete with Unload open.
                val now = tech.get("job", job.id)
                tech.transition("job", job.id, now.version, "start", null)
                val refused = expect<CrmException.Validation> {
                    val started = tech.get("job", job.id)
                    tech.transition("job", job.id, started.version, "complete", null)
                }
                check(refused.fields.map { it.code } == listOf("open_steps"), "refused ${refused.fields}")
                check(tech.pendingChanges(1000u).size == 4, "the start queued, the refusal not")
            }
        },
        "a technician attaches a photo and a signature offline, and they wait for upload" to suspend {
            val techId = Crm.open(path, email.getValue("field_tech")).use { it.userId() }
            val (job, otherJob) = Crm.open(path, email.getValue("admin")).use { admin ->
                val contact = admin.create("contact", """{"first_name": "Ida"}""")
                val now = java.time.Instant.now().truncatedTo(java.time.temporal.ChronoUnit.SECONDS)
                admin.create("job", """{"kind": "journey", "title": "Ida to Oak St", "contact_id": "${contact.id}",
                    "signature_required": true, "job_steps": [{"name": "Photos"}],
                    "crew_assignments": [{"user_id": "$techId", "role": "driver",
                        "starts_at": "${now.plusSeconds(3 * 86400)}", "ends_at": "${now.plusSeconds(3 * 86400 + 3600)}"}]}""") to
                    admin.create("job", """{"kind": "journey", "title": "Someone else's", "contact_id": "${contact.id}"}""")
            }
            Crm.open(path, email.getValue("field_tech")).use { tech ->
                tech.pendingChanges(1000u).lastOrNull()?.let { tech.markSynced(it.seq) }
                check(tech.pendingUploads().isEmpty(), "nothing waits yet")
                val step = tech.children("job", job.id).first { it.table == "job_steps" }.items.single()
                // The camera's photo and the signature pad's PNG, as files in the app's storage.
                val dir = Files.createTempDirectory("crm-photos")
                val png = byteArrayOf(0x89.toByte(), 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52)
                val photoFile = dir.resolve("IMG_0042.png").also { Files.write(it, png + ByteArray(200) { 1 }) }
                val sigFile = dir.resolve("signature.png").also { Files.write(it, png + ByteArray(50) { 2 }) }
                val photo = tech.attach("job_step", step.id, photoFile.toString(), AttachmentKind.PHOTO, null, null)
                check(photo.fileName == "IMG_0042.png" && photo.mediaType == "image/png" && photo.size == 216uL, "photo $photo")
                check(photo.uploadedBy == techId && photo.sha256.length == 64, "stamped by the core $photo")
                check(!tech.get("job", job.id).json.contains("\"customer_signed\":true"), "not signed yet")
                val sig = tech.attach("job", job.id, sigFile.toString(), AttachmentKind.SIGNATURE, "Ida Customer", null)
                check(sig.kind == AttachmentKind.SIGNATURE && sig.signerName == "Ida Customer" && sig.signedAt != null, "signature $sig")
                val signed = tech.get("job", job.id)
                check(signed.json.contains("\"customer_signed\":true"), "the job is signed: ${signed.json}")
                check(tech.attachmentContent(photo.id).contentEquals(Files.readAllBytes(photoFile)), "the bytes as stored")
                check(tech.attachments("job_step", step.id).map { it.id } == listOf(photo.id), "the step's photo")
                check(java.io.File(path.removeSuffix(".db") + ".blobs").isDirectory, "bytes beside the database")
                // What an uploader sends: the records still in the log, with their size and hash.
                val pending = tech.pendingUploads()
                check(pending.map { it.attachment.id } == listOf(photo.id, sig.id), "pending $pending")
                check(pending[1].attachment.size == 66uL && pending[1].attachment.sha256 == sig.sha256, "size and hash ${pending[1]}")
                val log = tech.pendingChanges(1000u)
                check(pending.all { p -> log.any { it.seq == p.seq && it.writes.any { w -> w.entity == "attachment" && w.id == p.attachment.id } } },
                    "each with the change set that holds it")
                // docs/mobile.md's uploadAttachments: each waiting file's bytes, as stored, with its record.
                val sent = mutableListOf<Pair<String, ByteArray>>()
                uploadAttachments(tech) { p, bytes -> sent.add(p.attachment.id to bytes) }
                check(sent.map { it.first } == listOf(photo.id, sig.id), "sent $sent")
                check(sent[1].second.contentEquals(Files.readAllBytes(sigFile)), "the signature's bytes")
                tech.markSynced(log.last().seq)
                check(tech.pendingUploads().isEmpty(), "uploaded: nothing waits")
                // Refusals: typed, nothing written or queued.
                val big = dir.resolve("video.bin").also { Files.write(it, ByteArray(10 * 1024 * 1024 + 1)) }
                val tooBig = expect<CrmException.LimitExceeded> {
                    tech.attach("job", job.id, big.toString(), AttachmentKind.DOCUMENT, null, null)
                }
                check(tooBig.code == "limit_exceeded" && tooBig.limit == 10uL * 1024uL * 1024uL, "limit $tooBig")
                val notTheirs = expect<CrmException.NotFound> {
                    tech.attach("job", otherJob.id, photoFile.toString(), AttachmentKind.PHOTO, null, null)
                }
                check(notTheirs.code == "not_found", "another crew's job is not found")
                expect<CrmException.NotFound> { tech.attach("activity", job.id, photoFile.toString(), AttachmentKind.PHOTO, null, null) }
                val noSigner = expect<CrmException.Validation> {
                    tech.attach("job", job.id, sigFile.toString(), AttachmentKind.SIGNATURE, null, null)
                }
                check(noSigner.fields.map { it.path to it.code } == listOf("signer_name" to "required"), "signer ${noSigner.fields}")
                check(tech.pendingChanges(1000u).isEmpty() && tech.pendingUploads().isEmpty(), "refusals queue nothing")
            }
        },
        "an external scheduler's rows are upserted with a report per row" to suspend {
            Crm.open(path, email.getValue("admin")).use { admin ->
                val rows = """[{"external_id": "crew-7", "first_name": "Lee", "last_name": "Mover"},
                    {"external_id": "crew-8", "first_name": "Kim", "email": "not an email"}]"""
                val first = admin.upsert("contact", "scheduler", rows, UpsertMode.UPSERT, false, false)
                check(first.created == 1uL && first.rejected == 1uL && first.applied, "valid rows only $first")
                check(first.results[1].errors.map { it.path to it.code } == listOf("email" to "invalid_email"), "row 2 ${first.results[1]}")
                val allOrNothing = admin.upsert("contact", "scheduler", rows, UpsertMode.UPSERT, true, false)
                check(allOrNothing.unchanged == 1uL && allOrNothing.rejected == 1uL && !allOrNothing.applied, "nothing written $allOrNothing")
                val createOnly = admin.upsert("contact", "scheduler", rows, UpsertMode.CREATE_ONLY, false, false)
                check(createOnly.results[0].errors.single().code == "already_bound", "create-only ${createOnly.results}")
                val updateOnly = admin.upsert("contact", "scheduler", """[{"external_id": "crew-9", "first_name": "New"}]""",
                    UpsertMode.UPDATE_ONLY, false, false)
                check(updateOnly.results.single().errors.single().code == "not_bound", "update-only ${updateOnly.results}")
                val changed = admin.upsert("contact", "scheduler", """[{"external_id": "crew-7", "first_name": "Lee", "last_name": "Mover-Smith"}]""",
                    UpsertMode.UPDATE_ONLY, false, false)
                check(changed.updated == 1uL && changed.results.single().id == first.results[0].id, "updated ${changed.results}")
                val bad = expect<CrmException.Validation> { admin.upsert("contact", "scheduler", "{}", UpsertMode.UPSERT, false, false) }
                check(bad.fields.single().path == "rows_json", "rows ${bad.fields}")
            }
        },
        "a field manager reads the numbers of a day" to suspend {
            Crm.open(path, email.getValue("admin")).use { admin ->
                val contact = admin.create("contact", """{"first_name": "Dora"}""")
                for (title in listOf("Pine St", "Ash St")) {
                    admin.create("job", """{"kind": "journey", "title": "$title", "contact_id": "${contact.id}",
                        "scheduled_on": "2026-04-06"}""")
                }
                val day = admin.fieldWorkReport("2026-04-06", null)
                check(day.jobs == 2uL && day.completed == 0uL && day.onTimeRate == null, "the day: $day")
                check(admin.fieldWorkReport("2026-04-07", "2026-04-12").jobs == 0uL, "nothing the next week")
                admin.fieldWorkReport(null, null)
                val bad = expect<CrmException.Validation> { admin.fieldWorkReport("04/06/2026", null) }
                check(bad.fields.map { it.path to it.code } == listOf("from" to "invalid_format"), "bad ${bad.fields}")
            }
        },
        "a lead read and written back unchanged is stored unchanged (money above all)" to suspend {
            Crm.open(path, email.getValue("admin")).use { admin ->
                val id = admin.listLeads(ListQuery(limit = 1u)).items[0].id
                val start = admin.getLead(id)
                admin.updateLead(id, start.version, """{"estimated_value": "18500.00", "notes": "Tear-off\nand \"re-roof\""}""")
                val read = admin.getLead(id)
                check(read.estimatedValue == "18500.00", "money reads as the decimal string it was given: ${read.estimatedValue}")
                admin.pendingChanges(1000u).lastOrNull()?.let { admin.markSynced(it.seq) }
                // Everything read, written back as is: nothing changes, nothing is queued for sync.
                val same = admin.updateLead(id, read.version, leadPatch(read))
                check(same == read, "the write-back changed the lead: $read -> $same")
                check(admin.getLead(id) == read, "stored unchanged")
                check(admin.pendingChanges(1000u).isEmpty(), "nothing to sync")
                // Saving the edit screen with one change: only that field changes; money stays $18,500.
                val edited = admin.updateLead(id, read.version, leadPatch(read, notes = "ladder needed"))
                check(edited.version == read.version + 1uL && edited.notes == "ladder needed", "edited $edited")
                check(edited.estimatedValue == "18500.00", "money unchanged: ${edited.estimatedValue}")
                check(edited.json.contains("\"estimated_value\":\"18500.00\""), "JSON form ${edited.json}")
                val w = admin.pendingChanges(1000u).single().writes.first { it.entity == "lead" }
                check(w.patchJson == """{"notes":"ladder needed"}""", "only the notes changed: ${w.patchJson}")
                // The same unit goes into any record's patch: a cent read is a cent written.
                val rec = admin.get("lead", id)
                val back = admin.update("lead", id, rec.version, """{"estimated_value": "${edited.estimatedValue}"}""")
                check(back == rec, "generic write-back unchanged")
            }
        },
        "a field error names its message as the core and WASM do" to suspend {
            Crm.open(path, email.getValue("admin")).use { admin ->
                val id = admin.listLeads(ListQuery(limit = 1u)).items[0].id
                val v = admin.getLead(id).version
                val e = expect<CrmException.Validation> {
                    admin.updateLead(id, v, """{"estimated_value": "12.345", "email": "nope"}""")
                }
                check(e.fields.map { it.path }.sorted() == listOf("email", "estimated_value"), "all fields at once ${e.fields}")
                check(e.fields.all { it.message.isNotBlank() }, "messages ${e.fields}")
            }
        },
        "calls from several threads share one handle" to suspend {
            Crm.open(path, email.getValue("admin")).use { admin ->
                coroutineScope {
                    (1..4).map {
                        async(Dispatchers.Default) {
                            repeat(5) { check(admin.listLeads(ListQuery(limit = 10u)).items.size == 10, "page") }
                        }
                    }.awaitAll()
                }
            }
        },
        "a suspend call does not block the calling thread" to suspend {
            // runBlocking's one thread: an UNDISPATCHED coroutine runs on it until its first real
            // suspension. The library answers from a worker thread, so loadDemo suspends and this
            // thread keeps turning; were the work done inside the call, it would end before the loop.
            coroutineScope {
                val other = Files.createTempDirectory("crm-kotlin-async").resolve("crm.db").toString()
                val load = async(start = CoroutineStart.UNDISPATCHED) { loadDemo(other, 10u, 40u, 1u) }
                var turns = 0
                while (!load.isCompleted) {
                    turns++
                    yield()
                }
                check(turns > 0, "the calling thread was blocked during the call")
                check(load.await().users.isNotEmpty(), "loaded")
            }
        },
        "a cancelled coroutine stops paging" to suspend {
            Crm.open(path, email.getValue("admin")).use { admin ->
                val total = admin.listLeads(ListQuery(limit = 500u)).items.size
                check(total >= 40, "enough leads for many pages: $total")
                val pages = mutableListOf<LeadPage>()
                coroutineScope {
                    val job = launch {
                        admin.leadPages(ListQuery(sort = "created_at", limit = 5u)).collect { page ->
                            pages.add(page)
                            // Cancelled on the second page, however fast the pages come (a cancel
                            // from outside races them on a loaded machine).
                            if (pages.size == 2) this@launch.cancel()
                        }
                    }
                    job.join()
                    check(job.isCancelled, "the paging job was cancelled")
                }
                // No page reaches a cancelled collector.
                check(pages.size == 2, "paging stopped at the cancellation: ${pages.size} pages of ${total / 5}")
                check(pages.all { it.items.size == 5 }, "full pages")
                // The handle works on after a cancelled call; every page, in order, once each.
                val all = admin.leadPages(ListQuery(sort = "created_at", limit = 7u)).toList()
                check(all.size >= total / 7, "pages ${all.size}")
                val ids = all.flatMap { p -> p.items.map { it.id } }
                check(ids.size == total && ids.toSet().size == total, "each lead once: ${ids.size} of $total")
                check(all.last().nextCursor == null, "the last page has no cursor")
            }
        },
        "the guide's CrmRepository opens off the calling thread and closes" to suspend {
            val repo = CrmRepository.open(java.io.File(path), email.getValue("field_tech"))
            repo.use {
                val leads = it.todaysLeads()
                check(leads.all { l -> l.status == "new" }, "new leads only")
                val scores = leads.map { l -> l.score ?: 0L }
                check(scores == scores.sortedDescending(), "best first")
                val lead = it.allMyLeads().first { l -> l.status != "contacted" && l.status != "qualified" }
                val moved = it.setStatus(lead, "contacted")
                check(moved.status == "contacted" && moved.version > lead.version, "status set $moved")
                // A stale copy: the repository reloads and re-applies (the guide's Conflict handling).
                val again = it.setStatus(lead, "qualified")
                check(again.status == "qualified" && again.version == moved.version + 1uL, "re-applied $again")
            }
            val closed = expect<IllegalStateException> { repo.crm.userId() }
            check(closed.message?.contains("destroyed") == true, "a closed handle refuses calls: ${closed.message}")
        },
        "two phones sync through crm serve: disjoint fields merge, the same field keeps the server's" to suspend {
            // .ci/mobile.sh starts `crm serve --demo` and gives its address, organization, the demo
            // manager's email and password, and a copy of its database as the phones' provisioning.
            val env = { k: String -> System.getenv(k) ?: throw AssertionError("$k is not set: run .ci/mobile.sh") }
            val url = env("CRM_SYNC_URL")
            val token = signIn(url, env("CRM_SYNC_ORG"), env("CRM_SYNC_EMAIL"), env("CRM_SYNC_PASSWORD"))
            val dir = Files.createTempDirectory("crm-kotlin-phones")
            // Phone A starts from a copy of the server's file; phone B from nothing, provisioned by
            // the server for the signed-in user (Crm.connect).
            val pathA = dir.resolve("a.db").also { Files.copy(java.nio.file.Paths.get(env("CRM_SYNC_DB")), it) }.toString()
            val pathB = dir.resolve("b.db").toString()
            Crm.open(pathA, env("CRM_SYNC_EMAIL")).use { a ->
                Crm.connect(pathB, url, token).use { b ->
                    check(b.userId() == a.userId() && b.tenantId() == a.tenantId(), "b is the same user: ${b.userId()}")
                    check(b.listLeads(ListQuery()).items.isEmpty(), "a new phone holds no leads before its first sync")
                    check(a.sync(url, token, "phone-a").pull.reset, "the first sync is a snapshot")
                    check(b.sync(url, token, "phone-b").pull.upserts > 0u, "b's snapshot brings the leads")
                    val lead = a.listLeads(ListQuery(limit = 1u)).items.first()
                    // Offline on both: different fields.
                    a.updateLead(lead.id, lead.version, """{"notes": "gate code 12"}""")
                    b.updateLead(lead.id, lead.version, """{"city": "York"}""")
                    check(a.sync(url, token, "phone-a").push.accepted == 1u, "a's edit accepted")
                    val rb = b.sync(url, token, "phone-b")
                    check(rb.push.merged == 1u && rb.push.keptServer.isEmpty(), "b's edit merged: $rb")
                    a.sync(url, token, "phone-a")
                    for (p in listOf(a, b)) {
                        val l = p.getLead(lead.id)
                        check(l.notes == "gate code 12" && l.city == "York", "both fields on both phones: $l")
                    }
                    // Offline on both again: the same field.
                    val now = a.getLead(lead.id)
                    a.updateLead(lead.id, now.version, """{"notes": "from phone A"}""")
                    b.updateLead(lead.id, now.version, """{"notes": "from phone B"}""")
                    a.sync(url, token, "phone-a")
                    val conflict = b.sync(url, token, "phone-b").push.keptServer
                    check(conflict.size == 1 && conflict[0].field == "notes", "the conflict is reported: $conflict")
                    check(conflict[0].deviceJson == "\"from phone B\"" && conflict[0].serverJson == "\"from phone A\"",
                        "with both values: ${conflict[0]}")
                    a.sync(url, token, "phone-a")
                    val (la, lb) = listOf(a, b).map { it.getLead(lead.id) }
                    check(la.notes == "from phone A" && lb.notes == "from phone A", "the server's value stays: $la / $lb")
                    check(la.city == "York" && la.version == lb.version, "the same lead on both: $la / $lb")
                    check(a.pendingChanges(10u).isEmpty() && b.pendingChanges(10u).isEmpty(), "nothing left to send")
                    // A photo taken offline goes up with its bytes in the next sync.
                    val png = byteArrayOf(0x89.toByte(), 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52)
                    val file = dir.resolve("roof.png").also { Files.write(it, png + ByteArray(300) { 7 }) }
                    val photo = b.attach("lead", lead.id, file.toString(), AttachmentKind.PHOTO, null, null)
                    check(b.pendingUploads().size == 1, "the photo waits for upload")
                    val up = b.sync(url, token, "phone-b").push
                    check(up.accepted == 1u && b.pendingUploads().isEmpty(), "the photo went up: $up")
                    val listed = java.net.http.HttpClient.newHttpClient().send(
                        java.net.http.HttpRequest.newBuilder(java.net.URI.create("$url/api/v1/leads/${lead.id}/attachments"))
                            .header("authorization", "Bearer $token").build(),
                        java.net.http.HttpResponse.BodyHandlers.ofString()).body()
                    check(listed.contains(photo.id) && listed.contains(photo.sha256), "on the server with its hash: $listed")
                }
            }
        },
        "sync without a server keeps the queue; the protocol's steps by hand" to suspend {
            val phone = Files.createTempDirectory("crm-kotlin-sync").resolve("phone.db").toString()
            val d = loadDemo(phone, 10u, 40u, 1u)
            Crm.open(phone, d.users.first { it.role == "field_tech" }.email).use { tech ->
                val lead = tech.myLeads(ListQuery()).items.first()
                tech.updateLead(lead.id, lead.version, """{"notes": "offline"}""")
                // docs/mobile.md's syncNow, with no server listening: a Remote error, the queue kept.
                val said = syncNow(tech, "http://127.0.0.1:9", "token", "phone-k")
                check(said.startsWith("not synced (0): unreachable"), said)
                check(tech.pendingChanges(10u).size == 1, "the queue is kept")
                // The same round by hand, as an app with its own transport makes it.
                val body = tech.preparePush("phone-k", 10u)
                check(body.contains("\"use_case\":\"update\""), body)
                val changeSet = Regex("\"change_set\":\"([0-9a-f-]+)\"").find(body)!!.groupValues[1]
                val seq = tech.pendingChanges(10u).first().seq
                val answer = """{"answer":"results","results":[""" +
                    """{"change_set":"$changeSet","seq":$seq,"outcome":{"outcome":"accepted"}}]}"""
                val done = tech.applyPushAnswer(body, answer)
                check(done.accepted == 1u && done.synced == 1uL, "$done")
                check(tech.pendingChanges(10u).isEmpty(), "answered: the queue is empty")
                check(tech.pullCursor() == null, "nothing pulled yet")
                val bad = expect<CrmException.Validation> { tech.applyPull("{}") }
                check(bad.fields.first().path == "page_json", "${bad.fields}")
            }
        },
    )
    var failed = 0
    for ((name, body) in tests) {
        try {
            body()
            println("ok   $name")
        } catch (e: Throwable) {
            failed++
            println("FAIL $name: $e")
        }
    }
    println("${tests.size - failed} passed, $failed failed")
    if (failed > 0) exitProcess(1)
}
