"""`make test-compat`: the built wheel, installed in a fresh venv beside another allowed stack, passes the fast tests.

For each combination: build the wheel (scripts/build_wheel.py, isolated as a user's pip would), create a
fresh venv, install the wheel with the combination's pins as constraints, then run `pytest -m "not slow"`
from a copy of the checkout *without* edgekd/ (tests, fixtures, examples, pyproject's pytest and
import-linter config), so `import edgekd` is the installed wheel, which is checked before the run.
Writes benchmarks/results/compat.json: each combination, the versions it got, passed/failed/skipped
counts, the failures' names and wall times.

    .venv/bin/python benchmarks/compat.py                    # the default combination (lower bounds)
    .venv/bin/python benchmarks/compat.py --combos lower,pinned --reuse

Combinations:
  lower   every core and hf-extra dependency at its pyproject lower bound (torch 2.13.0: the CPU wheel in
          the local wheel cache), + the dev extra (its tools resolve freely within their ranges). Not installed:
          timm (torchvision 0.29 is built for torch 2.14), tf and npu (their tests skip without them).
  pinned  constraints.txt (torch 2.14.1, the CUDA build: ~5.5 GB per venv) + the timm and dev extras.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from build_wheel import SKIP, build_wheel  # noqa: E402

RESULT = ROOT / "benchmarks" / "results" / "compat.json"
# versions worth reporting per combination (what the ranges in pyproject are about)
REPORTED = ["torch", "torchvision", "timm", "numpy", "onnx", "onnxruntime", "onnxscript", "onnxslim", "litert-torch",
            "ai-edge-litert", "ai-edge-quantizer", "torch-pruning", "scikit-learn", "psutil", "typer", "rich", "tqdm",
            "transformers", "jax", "torchao", "pytest", "import-linter"]


def lower_bound_pins(extras: tuple[str, ...] = ("hf",)) -> list[str]:
    """`name==X` for each `>=X` (or `==X`) bound of the core dependencies and of `extras` in pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + [d for e in extras for d in project["optional-dependencies"][e]]
    pins = []
    for dep in deps:
        req = Requirement(dep)
        lows = [s.version for s in req.specifier if s.operator in (">=", "==")]
        if len(lows) != 1:
            raise SystemExit(f"error: dependency {dep!r} has no single >= lower bound to test")
        pins.append(f"{req.name}=={lows[0]}")
    return pins


def pinned_pins() -> list[str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return [l.split("#")[0].strip() for l in lines if l.split("#")[0].strip()]


COMBOS = {
    "lower": {"pins": lower_bound_pins, "extras": "hf,dev"},
    "pinned": {"pins": pinned_pins, "extras": "timm,dev"},
}


def run_combo(name: str, wheel: Path, work: Path, *, reuse: bool, pytest_args: list[str]) -> dict:
    spec = COMBOS[name]
    venv = work / f"venv-{name}"
    pins = spec["pins"]()
    t0 = time.perf_counter()
    if venv.exists() and not reuse:
        shutil.rmtree(venv)
    if not venv.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    cons = work / f"constraints-{name}.txt"
    cons.write_text("\n".join(pins) + "\n")
    subprocess.run([py, "-m", "pip", "install", "-q", "-c", str(cons), f"{wheel}[{spec['extras']}]"], check=True)
    t_install = time.perf_counter() - t0
    versions = _versions(py)
    tree = _checkout_without_package(work / f"tree-{name}")
    where = subprocess.run([py, "-c", "import edgekd; print(edgekd.__file__)"], cwd=tree, capture_output=True,
                           text=True, check=True).stdout.strip()
    if not where.startswith(str(venv)):
        raise SystemExit(f"error: the tests would import edgekd from {where}, not from the installed wheel")
    junit = work / f"junit-{name}.xml"
    t1 = time.perf_counter()
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    rc = subprocess.run([py, "-m", "pytest", "-p", "no:cacheprovider", "-m", "not slow", f"--junitxml={junit}",
                         *pytest_args, "tests"], cwd=tree, env=env).returncode
    counts, failures = _junit_counts(junit)
    return {"name": name, "extras": spec["extras"], "constraints": pins, "versions": versions,
            "edgekd_imported_from": where, "pytest_rc": rc, **counts, "failures": failures,
            "passed_all": rc == 0, "fresh_venv": not reuse, "install_wall_s": round(t_install, 1),
            "tests_wall_s": round(time.perf_counter() - t1, 1)}


def _versions(py: str) -> dict:
    code = ("import importlib.metadata as m, json, sys\n"
            "out = {}\n"
            "for n in sys.argv[1:]:\n"
            "    try: out[n] = m.version(n)\n"
            "    except m.PackageNotFoundError: out[n] = None\n"
            "print(json.dumps(out))")
    return json.loads(subprocess.run([py, "-c", code, *REPORTED], capture_output=True, text=True, check=True).stdout)


def _checkout_without_package(dest: Path) -> Path:
    """The checkout's tests and data, minus edgekd/ itself (and environments, build outputs)."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(ROOT, dest, symlinks=True, ignore=shutil.ignore_patterns(*SKIP, "results"))
    shutil.rmtree(dest / "edgekd")
    return dest


def _junit_counts(junit: Path) -> tuple[dict, list[str]]:
    if not junit.is_file():
        return {"tests": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0}, ["pytest wrote no report"]
    counts = {"tests": 0, "failed": 0, "errors": 0, "skipped": 0}
    failures = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        counts["tests"] += 1
        for kind, key in (("failure", "failed"), ("error", "errors"), ("skipped", "skipped")):
            if case.find(kind) is not None:
                counts[key] += 1
                if key != "skipped":
                    failures.append(f"{case.get('classname')}::{case.get('name')}")
    counts["passed"] = counts["tests"] - counts["failed"] - counts["errors"] - counts["skipped"]
    return counts, failures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--combos", default="lower", help=f"comma-separated, of {', '.join(COMBOS)}")
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                    / "edgekd" / "compat", help="where the venvs and the test tree go")
    ap.add_argument("--reuse", action="store_true", help="keep an existing venv (not fresh: for reruns only)")
    ap.add_argument("--out", type=Path, default=RESULT)
    ap.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = ap.parse_args(argv)
    names = [c.strip() for c in args.combos.split(",") if c.strip()]
    unknown = [n for n in names if n not in COMBOS]
    if unknown:
        ap.error(f"unknown combination(s) {', '.join(unknown)}; known: {', '.join(COMBOS)}")
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    wheel = build_wheel(args.work / "dist")
    results = [run_combo(n, wheel, args.work, reuse=args.reuse, pytest_args=args.pytest_args) for n in names]
    doc = {"what": "fast tests (-m 'not slow') of the built wheel installed in a fresh venv per combination",
           "wheel": wheel.name, "python": platform.python_version(), "machine": f"{platform.machine()}, "
           f"{os.cpu_count()} cores (shared with other jobs)",
           "combinations": results, "wall_s": round(time.perf_counter() - t0, 1)}
    _merge_write(args.out, doc)
    for r in results:
        print(f"{r['name']}: torch {r['versions']['torch']}, {r['passed']} passed, {r['failed']} failed, "
              f"{r['errors']} errors, {r['skipped']} skipped ({r['tests_wall_s']} s)")
    return 0 if all(r["passed_all"] for r in results) else 1


def _merge_write(out: Path, doc: dict) -> None:
    """Keep the other combinations of an earlier run (one run may test only some); atomic write."""
    if out.is_file():
        old = {c["name"]: c for c in json.loads(out.read_text()).get("combinations", [])}
        new = {c["name"] for c in doc["combinations"]}
        doc["combinations"] += [c for n, c in old.items() if n not in new]
    tmp = out.with_suffix(".json.partial")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(out)


if __name__ == "__main__":
    sys.exit(main())
