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


def test_attachment_bytes_in_an_s3_bucket(own_demo, tmp_path, monkeypatch):
    """``blob_url`` keeps the bytes in an S3-compatible bucket: a real S3 server (moto's, on a
    loopback port in this process), not a mock of the client."""
    import urllib.request

    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/crm-py", method="PUT")).close()
        env = {"AWS_ENDPOINT": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        path, _ = own_demo
        db = crm.open(path, blob_url="s3://crm-py/photos")
        contact = db.contacts.create(first_name="Ida")
        photo = tmp_path / "roof.png"
        content = PNG + b"-in-a-bucket"  # bytes no other test stored in the directory
        photo.write_bytes(content)
        a = contact.attach(photo, kind="photo")
        assert a.sha256 == hashlib.sha256(content).hexdigest()
        assert db.contacts.attachment_content(a) == content
        # The bytes are in the bucket under the prefix, once, and not next to the database.
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="crm-py").get("Contents", [])]
        assert [k for k in keys if k.endswith(a.sha256)] == [f"photos/{db.tenant}/{a.sha256}"], keys
        contact.attach(photo, kind="photo", file_name="again.png")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="crm-py").get("Contents", [])]
        assert len([k for k in keys if k.endswith(a.sha256)]) == 1, "the same bytes are stored once"
        blobs = os.path.join(os.path.dirname(path), "demo.blobs")
        assert not any(a.sha256 in files for _, _, files in os.walk(blobs))
        # A directory and a bucket at once: which one was meant is not guessed.
        with pytest.raises(crm.ValidationError) as e:
            crm.open(path, blob_dir=str(tmp_path / "blobs"), blob_url="s3://crm-py")
        assert [f.path for f in e.value.fields] == ["blob_url"]
    finally:
        server.stop()
