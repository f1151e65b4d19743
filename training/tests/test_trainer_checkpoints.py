"""Checkpoints are written atomically: a kill -9 mid-write leaves the previous one whole."""

import subprocess
import sys
import textwrap

import torch

from training.trainer import load_latest_checkpoint, save_checkpoint

# Writes checkpoints 1, 2, 3, ... of ~16 MB each until killed, saying which are done.
WRITER = textwrap.dedent(
    """
    import sys
    import torch
    from training.trainer import save_checkpoint

    step = 0
    while True:
        step += 1
        weights = {"w": torch.full((2048, 2048), float(step))}
        save_checkpoint(sys.argv[1], step, weights, {"step": step, "losses": [(step, 1.0)]})
        print(step, flush=True)
    """
)


def test_it_survives_a_kill_during_a_checkpoint_write(tmp_path):
    from imagineer.testing import BASE_DIR

    writer = subprocess.Popen(  # noqa: S603 (this interpreter on the test's code)
        [sys.executable, "-c", WRITER, str(tmp_path)],
        cwd=BASE_DIR, stdout=subprocess.PIPE, text=True,
    )
    try:
        while int(writer.stdout.readline()) < 3:
            pass
    finally:
        writer.kill()  # SIGKILL, most likely while the next checkpoint is being written
        writer.wait()

    weights, state = load_latest_checkpoint(tmp_path)

    assert state["step"] >= 3
    assert torch.equal(weights["w"], torch.full((2048, 2048), float(state["step"])))
    assert not list(tmp_path.glob(".tmp-*"))  # the half-written leftovers are gone


def test_it_ignores_a_half_written_checkpoint(tmp_path):
    save_checkpoint(tmp_path, 2, {"w": torch.ones(3)}, {"step": 2})
    half = tmp_path / ".tmp-abc"
    half.mkdir()
    (half / "lora.safetensors").write_bytes(b"\0\0")
    log = []

    weights, state = load_latest_checkpoint(tmp_path, log.append)

    assert state["step"] == 2
    assert torch.equal(weights["w"], torch.ones(3))
    assert not half.exists()
    assert log == []


def test_it_keeps_only_the_newest_checkpoint(tmp_path):
    for step in (2, 4, 6):
        save_checkpoint(tmp_path, step, {"w": torch.full((2,), float(step))}, {"step": step})

    assert [path.name for path in tmp_path.iterdir()] == ["checkpoint-000006"]
    assert load_latest_checkpoint(tmp_path)[1]["step"] == 6


def test_it_falls_back_to_an_older_checkpoint_when_the_newest_is_unreadable(tmp_path):
    save_checkpoint(tmp_path, 2, {"w": torch.ones(3)}, {"step": 2})
    newest = tmp_path / "checkpoint-000004"
    newest.mkdir()
    (newest / "lora.safetensors").write_bytes(b"garbage")
    (newest / "state.pt").write_bytes(b"garbage")
    log = []

    weights, state = load_latest_checkpoint(tmp_path, log.append)

    assert state["step"] == 2
    assert log[0].startswith("warning: the checkpoint at step 4 is unreadable")


def test_it_finds_no_checkpoint_in_an_empty_or_missing_folder(tmp_path):
    assert load_latest_checkpoint(tmp_path) is None
    assert load_latest_checkpoint(tmp_path / "missing") is None
    assert load_latest_checkpoint(None) is None
