"""`make gpu-wheels`: the wheels that `make gpu-check` installs on a CUDA box with no network.

    .venv/bin/python bench/gpu_wheels.py download [--dest .gpu-wheels]
    .venv/bin/python bench/gpu_wheels.py verify

download: for each distribution in bench/gpu-wheels.txt, the wheel of the version this
Python has (the project's .venv, so the box runs what the tests ran), for CPython 3.12
on manylinux x86_64, without dependencies: they are in the list or the box's own, and
pip must not pull torch or CUDA wheels. The folder is replaced whole, and refused over
40 MB (it travels to the box with the repository).

verify: checks that the list is complete. It builds an environment that holds only what a
CUDA box brings (torch, transformers, peft, accelerate, safetensors, numpy, what they
require, and pip: linked from this .venv), downloads the same wheels for this Python's
version, and runs `gpu_check.py --cpu-smoke` there, which installs them and runs every
part. Python here may be older than the box's 3.12; the wheels are the same versions.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from gpu_check import ROOT, normalize, wheel_list

MAX_BYTES = 40 * 1024 * 1024
BOX_PYTHON = "3.12"
# The platforms of a manylinux x86_64 box, newest first (pip matches each tag exactly).
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux_2_5_x86_64", "manylinux1_x86_64"]
# What a CUDA box has before anything of ours (issue 12), with what these require.
BOX_PACKAGES = ["torch", "transformers", "peft", "accelerate", "safetensors", "numpy", "pip"]


def pinned():
    """name==version for each listed distribution, at this Python's installed version."""
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for name in wheel_list():
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            raise SystemExit(
                f"gpu_wheels: {name} is not installed here; run `make install`"
            ) from None
    return pins


def download(dest, python_version=BOX_PYTHON, max_bytes=MAX_BYTES):
    """Download the listed wheels into `dest` (replaced whole); return its size in bytes."""
    dest = Path(dest)
    staging = dest.with_name(dest.name + ".downloading")
    shutil.rmtree(staging, ignore_errors=True)
    tag = python_version.replace(".", "")
    command = [sys.executable, "-m", "pip", "download", "-qq", "--no-deps",
               "--only-binary=:all:", "--python-version", python_version,
               "--implementation", "cp", "--abi", f"cp{tag}", "--abi", "abi3", "--abi", "none",
               *[option for platform in PLATFORMS for option in ("--platform", platform)],
               "--dest", str(staging), *pinned()]
    result = subprocess.run(command, capture_output=True, text=True)  # noqa: S603 (pip of this interpreter)
    if result.returncode:
        shutil.rmtree(staging, ignore_errors=True)
        raise SystemExit(f"gpu_wheels: pip download failed:\n{result.stderr.strip()}")
    got = {normalize(path.name.split("-")[0]) for path in staging.glob("*.whl")}
    missing = sorted({normalize(name) for name in wheel_list()} - got)
    if missing:
        raise SystemExit(f"gpu_wheels: no wheel downloaded for {', '.join(missing)}")
    size = sum(path.stat().st_size for path in staging.glob("*.whl"))
    if size > max_bytes:
        shutil.rmtree(staging, ignore_errors=True)
        raise SystemExit(f"gpu_wheels: the wheels take {size / 2**20:.1f} MB, more than "
                         f"{max_bytes / 2**20:.0f} MB: trim bench/gpu-wheels.txt")
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)
    return size


def box_closure(names=BOX_PACKAGES):
    """The installed distributions `names` bring with them (requirements whose markers hold
    here, no extras): {normalized name: Distribution}."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement

    found, todo = {}, list(names)
    while todo:
        name = normalize(todo.pop())
        if name in found:
            continue
        try:
            found[name] = dist = distribution(name)
        except PackageNotFoundError:
            continue
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return found


def link_box_packages(target):
    """Symlink the top-level files and folders of box_closure()'s distributions into target."""
    target.mkdir(parents=True)
    for dist in box_closure().values():
        site = Path(dist.locate_file(""))
        tops = {Path(str(file)).parts[0] for file in dist.files or []}
        for top in sorted(tops - {"..", "__pycache__"}):
            link = target / top
            if not link.exists() and (site / top).exists():
                link.symlink_to(site / top)


def verify():
    """Run the CPU smoke check where only the box's packages and the wheels are."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    work = Path(tempfile.mkdtemp(prefix="gpu-wheels-verify-"))
    try:
        link_box_packages(work / "box")
        python = getattr(sys, "_base_executable", sys.executable)
        venv = [python, "-m", "venv", "--without-pip", str(work / "venv")]
        subprocess.run(venv, check=True)  # noqa: S603 (this Python's venv module)
        site_packages = work / "venv" / "lib" / f"python{version}" / "site-packages"
        (site_packages / "box.pth").write_text(f"{work / 'box'}\n")
        size = download(work / "wheels", python_version=version)
        print(f"gpu_wheels: a box of {len(box_closure())} distributions and "
              f"{size / 2**20:.1f} MB of wheels for Python {version}; running the smoke check",
              flush=True)
        env = {key: value for key, value in os.environ.items()
               if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        env["PYTHONNOUSERSITE"] = "1"
        result = subprocess.run(  # noqa: S603 (gpu_check.py in the environment made here)
            [str(work / "venv" / "bin" / "python"), str(ROOT / "bench" / "gpu_check.py"),
             "--cpu-smoke", "--wheels", str(work / "wheels"), "--site", str(work / "site"),
             "--out", str(work / "out")], cwd=ROOT, env=env)
        if result.returncode:
            log = work / "out" / "gpu-check.log"
            if log.is_file():
                print(log.read_text()[-5000:], file=sys.stderr)
            raise SystemExit(f"gpu_wheels: the smoke check failed there ({result.returncode})")
        print("gpu_wheels: the list is complete: the smoke check passed with only the box's "
              "packages and the wheels")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    get = commands.add_parser("download", help="download the wheels for a Python 3.12 box")
    get.add_argument("--dest", default=str(ROOT / ".gpu-wheels"))
    commands.add_parser("verify", help="check the list is complete (runs the smoke check)")
    args = parser.parse_args()
    if args.command == "download":
        size = download(args.dest)
        count = len(list(Path(args.dest).glob("*.whl")))
        print(f"gpu_wheels: {count} wheels, {size / 2**20:.1f} MB, in {args.dest}")
    else:
        verify()


if __name__ == "__main__":
    main()
