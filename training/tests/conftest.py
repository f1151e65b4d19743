"""Fixtures for the training tests: the tiny demo model (shared with generation's tests),
small drawn training sets, albums of them, and a training worker."""

import io

import pytest
from PIL import Image, ImageDraw

from generation.tests import conftest as generation_fixtures

# The demo model and its registrations, shared with generation's tests.
demo_model_dir = generation_fixtures.demo_model_dir
demo_base = generation_fixtures.demo_base
demo_loras = generation_fixtures.demo_loras
make_lora = generation_fixtures.make_lora
tiny_sdxl_dir = generation_fixtures.tiny_sdxl_dir
tiny_sdxl_file = generation_fixtures.tiny_sdxl_file

# Small and quick on the tiny model: what most tests submit.
QUICK = {"resolution": 64, "steps": 4, "rank": 4, "alpha": 4, "learning_rate": 1e-3,
         "checkpoint_every": 2, "trigger_word": "chk", "seed": 7}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Train on one CPU thread: with two, torch's threads wait on each other whenever other
    processes share the cores, and a step of the tiny model takes ten times longer."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def training_dir(settings, tmp_path):
    """Each test keeps its runs' checkpoints in its own folder (workers get it too)."""
    settings.IMAGINEER_TRAINING_DIR = tmp_path / "training"
    return settings.IMAGINEER_TRAINING_DIR


def draw_checkerboard(path, size=64, square=8, shift=0, color=(220, 20, 20)):
    """A red (or `color`) and white checkerboard, its squares shifted by `shift` squares."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    for top in range(0, size, square):
        for left in range(0, size, square):
            if (top // square + left // square + shift) % 2 == 0:
                draw.rectangle([left, top, left + square - 1, top + square - 1], fill=color)
    image.save(path, format="PNG")
    return path


@pytest.fixture
def checkerboards(tmp_path):
    """Six captioned checkerboard pictures, as trainer Examples."""
    from training.trainer import Example

    folder = tmp_path / "images"
    folder.mkdir()
    return [
        Example(draw_checkerboard(folder / f"board-{i}.png", shift=i), f"a red checkerboard {i}")
        for i in range(6)
    ]


@pytest.fixture
def make_album(db, editor):
    """An album of `count` checkerboards stored through albums.ingest, each captioned
    "a red checkerboard <n>" (or not, with captions=False)."""
    from albums.ingest import store_image
    from albums.models import Album

    def make(count=4, *, owner=None, captions=True, name="Boards"):
        owner = owner or editor
        album = Album.objects.create(name=name, owner=owner, is_training_set=True)
        images = []
        for n in range(count):
            out = io.BytesIO()
            # Distinct bytes for each image of each album (albums.ingest dedups by hash).
            draw_checkerboard(out, shift=n, color=(220, 20 + n, 20 + album.pk % 200))
            image, _ = store_image(out.getvalue(), filename=f"board-{n}.png",
                                   source="upload", created_by=owner)
            if captions:
                image.set_caption(f"a red checkerboard {n}", by=owner)
            images.append(image)
        album.add_images(images, by=owner)
        return album

    return make


@pytest.fixture
def start_run(api_as, editor, demo_base):
    """Start a run through the API (as the editor unless told); returns the response JSON."""

    def start(album, user=None, **fields):
        response = api_as(user or editor).post(
            "/api/training-runs/", {"album": album.pk, "name": "boards", **QUICK, **fields},
            format="json")
        assert response.status_code == 201, response.content
        return response.json()

    return start


@pytest.fixture
def training_worker(start_worker, training_dir):
    """A real worker of the training cluster, on one torch thread (see one_torch_thread)."""

    def start():
        return start_worker(Q_CLUSTER_NAME="training", IMAGINEER_TRAINING_DIR=training_dir,
                            OMP_NUM_THREADS=1)

    return start
