"""Attachments from Python: ``record.attach(path, kind=...)`` streams a file into the blob directory
next to the database; the core sniffs, counts and hashes it, keeps it in the record's scope, and a
signature on a job signs it."""

import hashlib
import os

import pytest

import crm

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR-a-roof"


def test_photos_and_a_signature_on_a_job(own_demo, tmp_path):
    path, emails = own_demo
    admin = crm.open(path)
    contact = admin.contacts.create(first_name="Cleo")
    job = admin.entity("job").create(kind="journey", title="Cleo to Elm St", contact_id=contact.id, signature_required=True)
    photo = tmp_path / "roof.png"
    photo.write_bytes(PNG)

    a = job.attach(photo, kind="photo")
    assert (a.entity, a.kind, a.file_name, a.media_type, a.size) == ("attachment", "photo", "roof.png", "image/png", len(PNG))
    assert a.sha256 == hashlib.sha256(PNG).hexdigest()
    assert admin.entity("job").attachment_content(a) == PNG
    blobs = os.path.join(os.path.dirname(path), "demo.blobs")
    assert any(a.sha256 in files for _, _, files in os.walk(blobs)), "bytes next to the database"

    page = tmp_path / "page.png"
    page.write_bytes(b"<html><script>x()</script></html>")
    with pytest.raises(crm.ValidationError) as e:
        job.attach(page, kind="photo")
    assert [(f.path, f.code) for f in e.value.fields] == [("media_type", "invalid_format")]

    assert admin.entity("job").get(job.id).customer_signed is False
    sig = job.attach(photo, kind="signature", signer_name="Cleo Ito", file_name="signature.png")
    assert sig.signer_name == "Cleo Ito"
    assert admin.entity("job").get(job.id).customer_signed is True
    assert [r.file_name for r in admin.entity("job").attachments(job)] == ["roof.png", "signature.png"]

    # A salesperson who cannot read the job cannot see that its photos exist.
    sales = crm.open(path, as_user=emails["field_tech"])
    with pytest.raises(crm.NotFoundError):
        sales.entity("job").attachments(job)
