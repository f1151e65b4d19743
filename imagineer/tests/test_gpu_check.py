"""`make gpu-check` (bench/gpu_check.py) between GPU windows: its CPU smoke run goes through
every part on the demo model, it refuses GPU figures without a GPU, and it installs what a
CUDA box lacks from the wheels folder, offline. So the check still runs when a GPU comes."""

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
SCRIPT = ROOT / "bench" / "gpu_check.py"


def run_check(*args, **env):
    import os

    return subprocess.run(  # noqa: S603 (this interpreter on bench/gpu_check.py)
        [sys.executable, str(SCRIPT), *map(str, args)], cwd=ROOT, capture_output=True,
        text=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1", **env},
    )


def test_it_runs_every_part_of_the_gpu_check_on_the_cpu(tmp_path):
    result = run_check("--cpu-smoke", "--out", tmp_path, "--wheels", tmp_path / "no-wheels",
                       "--site", tmp_path / "site")

    log = (tmp_path / "gpu-check.log").read_text() if (tmp_path / "gpu-check.log").exists() else ""
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:] + log[-4000:]
    report = (tmp_path / "gpu-check.md").read_text()
    assert report in result.stdout  # printed and written alike
    for heading in ("### 1. Correctness", "### 2. Speed", "### 3. Worker path",
                    "### 4. Training", "### 5. SDXL", "### Goals"):
        assert heading in report
    assert "FAILED" not in report and "failed" not in report
    lines = report.splitlines()
    for check in ("every image finite and not constant", "the same seed twice",
                  "a batch of 4 equals the 4 singles", "a LoRA switch (set_adapters)",
                  "LoRAs off: the plain image back", "VAE decode in float32: no NaN"):
        [row] = [line for line in lines if line.startswith(f"| {check}")]
        assert row.split("|")[2].strip() == "ok", row
    assert "| raw diffusers StableDiffusionPipeline |" in report
    assert "| engine PipelineCache.generate" in report
    assert "| default (eager)" in report  # compiled mode, traced by torch.compile
    for batch in (1, 4, 8):
        assert f"\n| {batch}     |" in report
    assert "| qcluster worker (ORM broker) | 3 " in report
    assert "| batch 4 " in report
    assert "Checkpoint written and resumed: **ok**" in report
    assert re.search(r"\| every correctness check passes +\| 6 of 6 +\| met", report)
    assert "| tiny SDXL (random weights) | StableDiffusionXLPipeline |" in report
    assert re.search(r"\| an SDXL image at 64 px, finite +\| ok +\| met", report)


def test_it_refuses_to_report_gpu_figures_without_a_gpu(tmp_path):
    result = run_check("--out", tmp_path, CUDA_VISIBLE_DEVICES="")

    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "no CUDA GPU is visible" in lines[0] and "no GPU figures reported" in lines[0]
    assert not (tmp_path / "gpu-check.md").exists()


def write_wheel(folder, name, version, module_text):
    """A minimal pure-Python wheel of one module."""
    folder.mkdir(parents=True, exist_ok=True)
    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    files = {
        f"{module}.py": module_text,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                         "Tag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{path},,\n" for path in [*files, f"{info}/RECORD"])
    path = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for member, text in files.items():
            wheel.writestr(member, text)
    return path


@pytest.fixture
def gpu_check(monkeypatch, tmp_path):
    """bench/gpu_check.py as a module, its package list one probe distribution."""
    import os

    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    import gpu_check

    listed = tmp_path / "gpu-wheels.txt"
    listed.write_text("# a probe\ngpu-check-probe\n")
    monkeypatch.setattr(gpu_check, "WHEEL_LIST", listed)
    yield gpu_check
    sys.modules.pop("gpu_check_probe", None)


def test_it_installs_what_the_box_lacks_from_the_wheels_offline(gpu_check, tmp_path):
    import os

    wheels, site = tmp_path / "wheels", tmp_path / "site"
    write_wheel(wheels, "gpu-check-probe", "1.0", "VALUE = 42\n")

    said = gpu_check.ensure_packages(wheels, site)

    assert said == f"packages: installed gpu-check-probe from {wheels} into {site}"
    import gpu_check_probe

    assert gpu_check_probe.VALUE == 42
    assert os.environ["PYTHONPATH"].split(os.pathsep)[0] == str(site)  # for the children
    assert gpu_check.ensure_packages(wheels, site) == "packages: all present"
    assert not (tmp_path / "site.installing").exists()


def test_it_reinstalls_when_the_wheels_hold_another_version(gpu_check, tmp_path):
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    write_wheel(wheels, "gpu-check-probe", "1.0", "VALUE = 1\n")
    gpu_check.ensure_packages(wheels, site)
    (wheels / "gpu_check_probe-1.0-py3-none-any.whl").unlink()
    write_wheel(wheels, "gpu-check-probe", "2.0", "VALUE = 2\n")
    sys.modules.pop("gpu_check_probe", None)

    assert gpu_check.ensure_packages(wheels, site).startswith("packages: installed")
    import gpu_check_probe

    assert gpu_check_probe.VALUE == 2


def test_it_names_what_is_missing_when_there_are_no_wheels(gpu_check, tmp_path):
    with pytest.raises(SystemExit) as stopped:
        gpu_check.ensure_packages(tmp_path / "nothing-here", tmp_path / "site")

    message = str(stopped.value)
    assert "missing packages gpu-check-probe" in message
    assert "make gpu-wheels" in message
    assert not (tmp_path / "site").exists()
