"""The built wheel holds what an installed edgekd needs (targets, recipes, C sources, the example teacher) and
nothing from tests/ or benchmarks/; installed, it finds them outside the checkout."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the wheel is built from the checkout (not when the tests run against an installed wheel: make test-compat)
pytestmark = pytest.mark.skipif(not (ROOT / "scripts" / "build_wheel.py").is_file() or not (ROOT / "edgekd").is_dir(),
                                reason="not a source checkout with edgekd/")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # offline: this interpreter's setuptools (the dev extra), not an isolated build that would fetch one
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_wheel.py"), "--out", str(out), "--no-isolation"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return Path(r.stdout.strip().splitlines()[-1])


def _names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as z:
        return set(z.namelist())


def test_wheel_ships_data_files(wheel):
    names = _names(wheel)
    wanted = [f"edgekd/_targets/{p.name}" for p in (ROOT / "targets").glob("*.toml")]
    wanted += [f"edgekd/distill/recipes/{p.name}" for p in (ROOT / "edgekd" / "distill" / "recipes").glob("*.toml")]
    wanted += [f"edgekd/emulate/{p.name}" for p in (ROOT / "edgekd" / "emulate").glob("*.c")]
    wanted += [f"edgekd/_example/{n}" for n in ("teacher.py", "teacher.pt", "teacher.json", "teacher_digits.pt")]
    assert len(wanted) > 10
    assert sorted(set(wanted) - names) == []


def test_wheel_ships_every_module_and_nothing_else(wheel):
    names = _names(wheel)
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "edgekd").rglob("*.py")
               if "_example" not in p.parts and "__pycache__" not in p.parts}
    assert sorted(modules - names) == []
    leaked = [n for n in names if n.split("/")[0] in ("tests", "benchmarks", "examples", "scripts", "docs")
              or "__pycache__" in n or n.endswith((".pyc", ".jsonl"))]
    assert leaked == []
    # the example's training script and package marker are the repository's, not the library's
    assert not {"edgekd/_example/train_teacher.py", "edgekd/_example/__init__.py"} & names


def test_wheel_metadata_has_ranges_and_the_cli(wheel):
    with zipfile.ZipFile(wheel) as z:
        meta = z.read("edgekd-0.1.0.dist-info/METADATA").decode()
        entry = z.read("edgekd-0.1.0.dist-info/entry_points.txt").decode()
    requires = [l for l in meta.splitlines() if l.startswith("Requires-Dist:") and "extra ==" not in l]
    assert requires and all("==" not in l for l in requires)  # ranges, never exact pins
    assert "edgekd = edgekd.cli:main" in entry


def test_installed_wheel_finds_its_files_outside_the_checkout(wheel, tmp_path):
    # a scratch venv that sees this environment's stack through a .pth but holds edgekd from the wheel
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with zipfile.ZipFile(wheel) as z:  # what pip does for a pure wheel, minus the scripts
        z.extractall(site)
    # addsitedir runs their .pth files too; the wheel's edgekd, earlier on sys.path, still wins (asserted below)
    stack = [p for p in sys.path if p.endswith("site-packages")]
    (Path(site) / "zz_stack.pth").write_text("".join(f"import site; site.addsitedir({p!r})\n" for p in stack))
    code = ("import edgekd, edgekd.targets as t\n"
            "from edgekd.modalities.classifier.sources import builtin_example_teacher\n"
            "from edgekd.models import load_model\n"
            "spec, w = builtin_example_teacher('fashion-mnist')\n"
            "load_model(spec, w, in_channels=1, num_classes=10)\n"
            "print(edgekd.__file__); print(spec); print(len(t.list_targets()))")
    r = subprocess.run([str(py), "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    where, spec, n_targets = r.stdout.strip().splitlines()[-3:]
    assert where.startswith(site) and spec.startswith(str(Path(site) / "edgekd" / "_example"))
    assert int(n_targets) == len(list((ROOT / "targets").glob("*.toml")))
