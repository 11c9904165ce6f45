"""Field work from Python: a job with its steps and crew, a crew member's day, steps moved by the
core's transitions (stamped by the core, refused with the guard's code), jobs and steps as DataFrames,
and the period's report (on time, minutes per step) as a frame."""

import datetime

import pytest

import crm

DAY = datetime.date(2031, 3, 4)


def test_a_crew_members_day_steps_and_report(own_demo):
    path, emails = own_demo
    admin = crm.open(path)
    tech = crm.open(path, as_user=emails["field_tech"])
    contact = admin.contacts.create(first_name="Cleo")
    job = admin.entity("job").create(
        kind="journey",
        title="Cleo to Elm St",
        contact_id=contact.id,
        scheduled_on=DAY,
        vehicle="truck-1",
        job_steps=[{"name": "Load"}, {"name": "Drive"}, {"name": "Photos", "required": False}],
        crew_assignments=[
            {"user_id": tech.user_id, "role": "driver", "starts_at": "2031-03-04T08:00:00Z", "ends_at": "2031-03-04T12:00:00Z"}
        ],
    )
    assert job["required_open"] == 2

    # An appointment after the job shows in the same day, in time order; one over the job is refused.
    appointments = admin.entity("appointment")
    appointments.create(
        title="Quote visit",
        starts_at="2031-03-04T13:00:00Z",
        ends_at="2031-03-04T14:00:00Z",
        appointment_attendees=[{"user_id": tech.user_id}],
    )
    with pytest.raises(crm.ValidationError) as e:
        appointments.create(
            title="Clash",
            starts_at="2031-03-04T11:00:00Z",
            ends_at="2031-03-04T12:30:00Z",
            appointment_attendees=[{"user_id": tech.user_id}],
        )
    assert [(f.path, f.code) for f in e.value.fields] == [("attendee_user_ids", "overlap")]

    day = tech.my_day(DAY)
    assert [(i["job"] or i["appointment"])["title"] for i in day] == ["Cleo to Elm St", "Quote visit"]
    assert [s["name"] for s in day[0]["open_steps"]] == ["Load", "Drive", "Photos"]

    jobs, steps = tech.entity("job"), tech.entity("job_step")
    started = jobs.transition(jobs.get(job.id), "start")
    with pytest.raises(crm.ValidationError) as e:
        jobs.transition(started, "complete")
    assert [f.code for f in e.value.fields] == ["open_steps"]

    load, drive, photos = (steps.get(s["id"]) for s in day[0]["open_steps"])
    with pytest.raises(crm.ValidationError) as e:
        steps.transition(load, "complete", completed_by=tech.user_id)
    assert e.value.fields[0].code == "unknown_field"
    done = steps.transition(load, "complete")
    assert done["status"] == "done" and done["completed_by"] == tech.user_id
    steps.transition(drive, "complete")
    steps.transition(photos, "skip", skip_reason="rain")
    finished = jobs.transition(jobs.get(job.id), "complete")
    assert finished["status"] == "completed"

    # Jobs and steps as DataFrames (the status an Arrow dictionary of the declared states).
    frame = admin.entity("job").list(f"scheduled_on:{DAY.isoformat()}").to_pandas()
    assert list(frame["title"]) == ["Cleo to Elm St"]
    assert str(frame["status"].dtype) == "category"
    assert "completed" in list(frame["status"].cat.categories)
    step_frame = admin.entity("job_step").list(f"job_id:{job.id}").to_pandas()
    assert sorted(step_frame["status"].astype(str)) == ["done", "done", "skipped"]

    report = admin.field_work_report(DAY, DAY)
    assert (report["jobs"], report["completed"]) == (1, 1)
    import pandas as pd

    per_step = pd.DataFrame(report["steps"]).set_index("name")
    assert per_step.loc["Photos", "skipped"] == 1
    assert per_step.loc["Load", "done"] == 1


def test_a_job_from_an_accepted_quote(own_demo):
    path, emails = own_demo
    sales = crm.open(path, as_user=emails["sales"])
    contact = sales.contacts.create(first_name="Quinn", address_line="9 Oak Rd", city="Denver")
    quote = sales.quotes.create(
        title="New roof",
        contact_id=contact.id,
        valid_until=datetime.date(2099, 12, 31),
        quote_lines=[{"description": "Shingles", "quantity": "2", "unit_price": "40.00"}],
    )
    sent = sales.quotes.send(sales.quotes.submit(quote))
    with pytest.raises(crm.ValidationError) as e:
        sales.quotes.make_job(sent)
    assert [(f.path, f.code) for f in e.value.fields] == [("status", "not_accepted")]

    accepted = sales.quotes.accept(sent)
    job = sales.quotes.make_job(accepted, scheduled_on=DAY, vehicle="truck-3")
    assert job["quote_id"] == accepted.id and job["contact_id"] == contact.id
    assert job["budget"] == accepted["total"]
    assert (job["title"], job["city"], job["vehicle"], job["status"]) == ("New roof", "Denver", "truck-3", "planned")
    assert job["scheduled_on"] == DAY

    with pytest.raises(crm.ValidationError) as e:
        sales.quotes.make_job(accepted.id)
    assert [(f.path, f.code) for f in e.value.fields] == [("quote_id", "already_has_job")]
    with pytest.raises(crm.ValidationError) as e:
        sales.entity("job").update(job, quote_id=None)
    assert [f.code for f in e.value.fields] == ["read_only"]


def test_the_moving_demo_runs_journeys_and_appointments(tmp_path):
    path = tmp_path / "moving.db"
    demo = crm.load_demo(path, vertical="moving")
    roles = {role for role, _id, _email in demo["users"]}
    assert "field_tech" in roles
    db = crm.open(path)
    assert db.entity("job").count() == 24
    assert db.entity("location").count() == 2
    # A weekly crew briefing and a survey a day; the surveyor's past surveys are done.
    appointments = db.entity("appointment").list().to_pandas()
    assert len(appointments) == 9
    assert set(appointments["status"]) == {"scheduled", "completed"}
    assert appointments["overlap_warning"].isna().all()
