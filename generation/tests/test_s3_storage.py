"""IMAGINEER_STORAGE=s3 end to end, against moto's S3 server: an upload and a LoRA through
the API, a job run by a real worker that reads and writes the bucket, the images served
back by the file view, check_media walking the bucket, and nothing under MEDIA_ROOT."""

import hashlib
import logging
import socket
from dataclasses import dataclass

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from albums.tests.images import png_bytes
from generation.models import Job, Status
from imagineer.testing import manage, subprocess_env, wait_for

# Backend-neutral (conftest.py): the files in the bucket; the jobs' rows and the worker's leases
# are the same as with local files, and have their tests on both databases.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.backend_neutral]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class Bucket:
    client: object
    name: str
    env: dict  # the IMAGINEER_* settings that point a process at it

    def keys(self):
        listed = self.client.list_objects_v2(Bucket=self.name)
        return sorted(item["Key"] for item in listed.get("Contents", []))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def s3_bucket(settings):
    """A bucket on moto's S3 server (a thread of this process, reached over HTTP by the
    worker too), and this process's default storage pointed at it."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per S3 request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint, name = f"http://127.0.0.1:{port}", "imagineer-media"
    credentials = {"aws_access_key_id": "test-key", "aws_secret_access_key": "test-secret"}
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **credentials)
    client.create_bucket(Bucket=name)
    env = {
        "IMAGINEER_STORAGE": "s3",
        "IMAGINEER_S3_BUCKET": name,
        "IMAGINEER_S3_ENDPOINT_URL": endpoint,
        "IMAGINEER_S3_REGION": "us-east-1",
        "IMAGINEER_S3_ACCESS_KEY_ID": credentials["aws_access_key_id"],
        "IMAGINEER_S3_SECRET_ACCESS_KEY": credentials["aws_secret_access_key"],
    }
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": name, "endpoint_url": endpoint, "region_name": "us-east-1",
                    "access_key": credentials["aws_access_key_id"],
                    "secret_key": credentials["aws_secret_access_key"],
                    "file_overwrite": False},
    }}
    yield Bucket(client, name, env)
    server.stop()


def test_it_keeps_every_file_in_the_bucket(s3_bucket, start_worker, api_as, viewer,
                                           other_viewer, editor, quick_job, demo_loras,
                                           media_root, settings):
    # An upload and a LoRA through the API, stored in the bucket by this process.
    uploaded = png_bytes()
    response = api_as(viewer).post(
        "/api/images/", {"file": SimpleUploadedFile("cat.png", uploaded)}, format="multipart")
    assert response.status_code == 201, response.content
    [upload] = response.json()
    lora_bytes = demo_loras[0].read_bytes()
    response = api_as(editor).post(
        "/api/models/", {"name": "ink", "kind": "lora", "family": "sd15", "is_active": True,
                         "file": SimpleUploadedFile("ink.safetensors", lora_bytes)},
        format="multipart")
    assert response.status_code == 201, response.content
    lora = response.json()

    # A real worker fetches the LoRA from the bucket and stores the image there.
    start_worker(OMP_NUM_THREADS=1, **s3_bucket.env)
    submitted = quick_job(num_images=1, loras=[{"id": lora["id"], "weight": 1.0}])
    job = wait_for(lambda: (job := Job.objects.get(pk=submitted["id"])).is_finished and job,
                   timeout=180, message="the job to finish")
    assert job.status == Status.SUCCEEDED, job.error
    image = job.images.get()

    client = api_as(viewer)
    served = client.get(f"/media/images/{image.pk}/")
    assert served.status_code == 200
    data = b"".join(served.streaming_content)
    assert data.startswith(PNG_SIGNATURE) and hashlib.sha256(data).hexdigest() == image.sha256
    thumbnail = client.get(f"/media/images/{image.pk}/thumbnail/")
    assert b"".join(thumbnail.streaming_content)[8:12] == b"WEBP"
    assert b"".join(client.get(upload["url"]).streaming_content) == uploaded
    assert api_as(other_viewer).get(f"/media/images/{image.pk}/").status_code == 404

    keys = s3_bucket.keys()
    for name in (image.file.name, image.thumbnail.name, f"models/{lora['sha256']}.safetensors",
                 f"images/{upload['sha256'][:2]}/{upload['sha256']}.png"):
        assert name in keys
    assert len(keys) == 5  # two images and their thumbnails, the LoRA
    fetched = settings.IMAGINEER_MODEL_CACHE / f"{lora['sha256']}.safetensors"
    assert fetched.read_bytes() == lora_bytes, "the worker loads its local copy"
    assert not media_root.exists() or not any(media_root.rglob("*")), \
        "nothing is written under MEDIA_ROOT"

    # check_media walks the bucket (a separate process, configured by the environment).
    env = subprocess_env(**s3_bucket.env)
    clean = manage("check_media", env=env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "5 files, 5 file references: 0 files without rows, 0 rows without files" \
        in clean.stdout
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key="images/ff/stray.png", Body=b"x")
    orphan = manage("check_media", env=env)
    assert orphan.returncode == 1
    assert "file without row: images/ff/stray.png" in orphan.stdout
