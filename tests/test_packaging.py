"""The installable package: declared dependencies, one version, the vqlens command, the wheel, the README example.

The wheel tests build from a copy of the checkout (so no build/ or *.egg-info
appears in it), install the wheel into a throwaway virtual environment that
sees this interpreter's packages (the dependencies are not downloaded again),
and run the installed ``vqlens`` from a folder outside the checkout.
"""

import ast
import contextlib
import importlib.metadata
import io
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

import vqcore
from vqlens import cli

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]


def _requirement_name(req):
    return re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0].lower().replace("_", "-")


def _third_party_imports(path):
    """Top-level names of the modules a file imports: (at module level, inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top, inner = set(), set()
    module_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            root = name.split(".")[0]
            if root in sys.stdlib_module_names or root == "vqcore" or root == "__future__":
                continue
            (top if id(node) in module_level else inner).add(root)
    return top, inner


def test_every_module_vqcore_imports_is_declared():
    """A module imported at module level is a dependency; one imported inside a function may be an extra."""
    core = {_requirement_name(r) for r in PROJECT["dependencies"]}
    extras = {_requirement_name(r) for reqs in PROJECT["optional-dependencies"].values() for r in reqs}
    dists_of = importlib.metadata.packages_distributions()
    seen_top, seen_inner = set(), set()
    for path in sorted((ROOT / "vqcore").rglob("*.py")):
        top, inner = _third_party_imports(path)
        for module in top:
            dists = {d.lower() for d in dists_of.get(module, [module])}
            assert dists & core, f"{path.relative_to(ROOT)} imports {module} at module level: add it to dependencies"
        for module in inner - top:
            dists = {d.lower() for d in dists_of.get(module, [module])}
            assert dists & (core | extras), (f"{path.relative_to(ROOT)} imports {module}: declare it in "
                                             "dependencies or in an extra")
        seen_top |= top
        seen_inner |= inner
    # the scan sees what it should: numba at module level, threadpoolctl and umap inside functions
    assert {"numpy", "numba"} <= seen_top
    assert {"threadpoolctl", "umap", "pandas", "pyarrow"} <= seen_inner


def test_the_app_and_umap_are_extras_not_dependencies():
    core = {_requirement_name(r) for r in PROJECT["dependencies"]}
    assert not core & {"streamlit", "plotly", "umap-learn"}
    assert {_requirement_name(r) for r in PROJECT["optional-dependencies"]["app"]} >= {"streamlit", "plotly"}
    assert [_requirement_name(r) for r in PROJECT["optional-dependencies"]["umap"]] == ["umap-learn"]
    # the versions the tests run with (requirements.txt, requirements-dev.txt) fall within the declared ranges
    pins = {}
    for file in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / file).read_text(encoding="utf-8").splitlines():
            line = line.split("#")[0].strip()
            if "==" in line:
                name, version = line.split("==")
                pins[name.strip().lower()] = version.strip()
    declared = PROJECT["dependencies"] + [r for reqs in PROJECT["optional-dependencies"].values() for r in reqs]
    for req in declared:
        name = _requirement_name(req)
        if name == "vqlens":
            continue
        assert name in pins, f"{name} is declared but neither requirements file pins it"
        for op, bound in re.findall(r"(>=|<)\s*([\d.]+)", req):
            have = tuple(int(p) for p in pins[name].split(".")[:3])
            want = tuple(int(p) for p in bound.split("."))
            assert (have >= want) if op == ">=" else (have < want), f"{name}=={pins[name]} outside {req}"


def test_one_version_number():
    assert PROJECT["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "vqcore._version.__version__"}
    from vqcore._version import __version__

    assert vqcore.__version__ == __version__
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.dev\d+)?", __version__)


def test_vqlens_version_and_help(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"vqlens {vqcore.__version__}"
    assert cli.main(["--help"]) == 0
    assert "app [streamlit options...]" in capsys.readouterr().out
    assert cli.main([]) == 2  # no command: the usage on stderr, a usage error
    assert "usage: vqlens" in capsys.readouterr().err


def test_other_commands_go_to_vqcore_cli_unchanged(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(cli, "_core_main", lambda: lambda argv: calls.append(argv) or 3)
    assert cli.main(["report", "data.npy", "--spec", "PQ8x8", "--out", "out"]) == 3
    assert calls == [["report", "data.npy", "--spec", "PQ8x8", "--out", "out"]]
    monkeypatch.setattr(cli, "_core_main", lambda: None)  # no vqcore.cli: an unknown command
    assert cli.main(["report", "x"]) == 2
    assert "unknown command 'report'" in capsys.readouterr().err


def test_vqcore_cli_is_found_only_when_it_exists():
    from importlib.util import find_spec

    core = cli._core_main()
    if find_spec("vqcore.cli") is None:
        assert core is None
    else:
        assert core is importlib.import_module("vqcore.cli").main


def test_app_settings_become_flags_and_the_users_win(tmp_path):
    assert cli.app_dir() == ROOT  # in a checkout the app is the repository's own
    flags = cli.config_flags(ROOT / ".streamlit" / "config.toml")
    shipped = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert len(flags) == sum(len(options) for options in shipped.values())
    assert f"--server.maxUploadSize={shipped['server']['maxUploadSize']}" in flags
    assert "--client.showSidebarNavigation=false" in flags  # TOML false, Streamlit's spelling
    mine = cli.config_flags(ROOT / ".streamlit" / "config.toml", ["--server.maxUploadSize", "50", "--theme.base=dark"])
    assert not [f for f in mine if f.startswith(("--server.maxUploadSize=", "--theme.base="))]
    assert len(mine) == len(flags) - 2
    assert cli.config_flags(tmp_path / "missing.toml") == []


def _copy_checkout(dst):
    ignore = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                    ".hypothesis", "out", "*.whl")
    shutil.copytree(ROOT, dst, ignore=ignore)
    return dst


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built by pip from a copy of the checkout (pip's own build isolation fetches setuptools)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = _copy_checkout(tmp / "src")
    out = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-q", "-w", str(out)],
                   check=True, cwd=tmp)
    (path,) = out.glob("vqlens-*.whl")
    return path


@pytest.mark.slow
def test_wheel_holds_the_library_the_sample_the_app_and_the_command(wheel):
    assert wheel.name.startswith(f"vqlens-{vqcore.__version__}-py3-none-any")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        dist_info = f"vqlens-{vqcore.__version__}.dist-info"
        entry_points = z.read(f"{dist_info}/entry_points.txt").decode()
        metadata = z.read(f"{dist_info}/METADATA").decode()
    library = {f"vqcore/{p.relative_to(ROOT / 'vqcore').as_posix()}" for p in (ROOT / "vqcore").rglob("*.py")}
    assert library <= names
    assert {"vqcore/data/minilm_sample.npz", "vqcore/data/SAMPLE.md"} <= names
    pages = {f"vqlens/app/pages/{p.name}" for p in (ROOT / "pages").glob("*.py")}
    ui = {f"vqlens/app/ui/{p.name}" for p in (ROOT / "ui").glob("*.py")}
    assert {"vqlens/cli.py", "vqlens/__main__.py", "vqlens/app/app.py", "vqlens/app/.streamlit/config.toml"} <= names
    assert pages <= names and ui <= names and len(pages) >= 6
    # nothing else of the repository: no top-level ui or app, no setup script, tests or benchmarks
    assert not [n for n in names if n.split("/")[0] not in ("vqcore", "vqlens", dist_info)]
    assert "vqlens/app/setup.py" not in names
    assert re.search(r"^vqlens\s*=\s*vqlens\.cli:main$", entry_points, re.M)
    requires = re.findall(r"^Requires-Dist: (.+)$", metadata, re.M)
    assert {_requirement_name(r) for r in requires if "extra ==" not in r} >= {
        "numpy", "scipy", "scikit-learn", "numba", "threadpoolctl", "pyarrow"}
    assert any(r.startswith("streamlit") and 'extra == "app"' in r for r in requires)


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_installed_wheel_imports_and_vqlens_app_serves(wheel, tmp_path):
    """pip install of the wheel into a fresh venv; then, outside the checkout, import vqcore and run vqlens app."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    script = ("import vqcore, vqcore.datasets; print(vqcore.__version__, vqcore.__file__); "
              "print(vqcore.datasets.load_sample().X.shape)")
    out = subprocess.run([str(python), "-c", script], cwd=elsewhere, env=env, capture_output=True, text=True,
                         check=True).stdout.split("\n")
    version, where = out[0].split()
    assert version == vqcore.__version__
    assert Path(where).is_relative_to(venv)  # the installed copy, not the checkout
    assert out[1] == "(6000, 384)"  # the shipped sample came with it

    port = _free_port()
    log = tmp_path / "vqlens.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([str(venv / "bin" / "vqlens"), "app", "--server.port", str(port),
                                 "--server.address", "127.0.0.1", "--server.fileWatcherType", "none"],
                                cwd=elsewhere, env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline, health = time.monotonic() + 90, None
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    health = r.read().strip()
                    break
            time.sleep(0.3)
        assert health == b"ok", log.read_text(errors="replace")
        # the app that answers is the installed copy (vqlens/app/app.py inside the venv)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            assert r.status == 200
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _readme_python_blocks():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```$", text, re.S | re.M)


def _readme_main_example():
    """The README's example of the engine: the Python block that starts with ``import vqcore``."""
    (block,) = [b for b in _readme_python_blocks() if b.startswith("import vqcore\n")]
    return block


def test_readme_python_blocks_compile():
    """Every Python block of the README is valid Python (the ones that need a user's file are not run)."""
    blocks = _readme_python_blocks()
    assert blocks and _readme_main_example() in blocks
    for block in blocks:
        compile(block, "README.md", "exec")


@pytest.mark.slow
def test_readme_example_runs_on_the_shipped_sample():
    """The README's Python example, run as written; what its comments and DESIGN.md say of the results holds."""
    block = _readme_main_example()
    namespace = {"__name__": "readme"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(block, "README.md", "exec"), namespace)
    X, codes, X_hat, report = (namespace[k] for k in ("X", "codes", "X_hat", "report"))
    assert codes.shape == (len(X), 8) and codes.dtype == np.uint8  # "(n, 8) uint8"
    assert X_hat.shape == X.shape and X_hat.dtype == np.float32  # "(n, d) float32"
    spec, faiss, snr = printed.getvalue().split()
    assert (spec, faiss) == ("RQ8x8_b5", "RQ8x8")
    # the printed SNR is DESIGN.md's: -10 log10(mse / mean ||x - mean(X)||^2), and 64 bits beat the mean
    Xd, Xh = X.astype(np.float64), X_hat.astype(np.float64)
    rel = np.mean(np.sum((Xd - Xh) ** 2, axis=1)) / np.mean(np.sum((Xd - Xd.mean(axis=0)) ** 2, axis=1))
    assert float(snr) == pytest.approx(-10 * np.log10(rel), rel=1e-4)
    assert float(snr) > 0
    assert set(report) >= {"reconstruction", "usage"}


def test_no_module_edits_sys_path():
    """Issue 17: nothing reaches the library through a ``sys.path`` insert; it is imported as installed."""
    offenders = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in {".git", "build", ".venv", "venv"} or path.name == "test_packaging.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr == "path"
                    and isinstance(node.value, ast.Name) and node.value.id == "sys"):
                offenders.append(f"{rel}:{node.lineno}")
    assert not offenders, f"sys.path is edited or read in {offenders}"
