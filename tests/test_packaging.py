"""Packaging: the license, a build without deprecation warnings, and version floors that are the
versions the tests run with."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
FLOORS = ROOT / ".ci" / "floors.txt"


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _floor(requirement: str) -> str | None:
    m = re.search(r"(?:>=|==)\s*([0-9][^,; ]*)", requirement)
    return m.group(1) if m else None


def declared() -> dict[str, str | None]:
    reqs = list(PYPROJECT["project"]["dependencies"])
    for extra in PYPROJECT["project"]["optional-dependencies"].values():
        reqs += [r for r in extra if not r.startswith("explainlm")]
    return {_name(r): _floor(r) for r in reqs}


def pinned() -> dict[str, str]:
    out = {}
    for line in FLOORS.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, v = line.partition("==")
            out[_name(name)] = v.strip()
    return out


def _release(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v.split("+")[0])[:4])


def test_every_dependency_has_a_floor_and_it_is_the_tested_version() -> None:
    """Each floor in pyproject.toml is the version .ci/floors.txt pins (what `make install`
    installs), and that version is the one installed here: the suite runs at the floors."""
    floors, pins = declared(), pinned()
    assert set(floors) == set(pins), set(floors) ^ set(pins)
    for name, floor in floors.items():
        assert floor is not None, f"{name} has no version floor"
        assert _release(floor) == _release(pins[name])[: len(_release(floor))], name
        assert _release(version(name)) == _release(pins[name]), (name, version(name))


def test_license_is_spdx_and_the_file_is_apache_2() -> None:
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text.splitlines()) > 190


def test_ruff_is_pinned() -> None:
    test_extra = PYPROJECT["project"]["optional-dependencies"]["test"]
    assert any(re.fullmatch(r"ruff==[0-9.]+", r) for r in test_extra)


def test_wheel_builds_cleanly(tmp_path: Path) -> None:
    """A wheel builds from a copy of the project with no setuptools deprecation warning."""
    src = tmp_path / "project"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "src", src / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
    )
    code = "import sys, setuptools.build_meta as b; print(b.build_wheel(sys.argv[1]))"
    r = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "dist")],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    output = r.stdout + r.stderr
    warnings = re.findall(r".*(?:Deprecat\w*Warning|\bdeprecated\b).*", output)
    assert not warnings, "\n".join(warnings)
    wheel = tmp_path / "dist" / r.stdout.strip().splitlines()[-1]
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "explainlm/server/static/favicon.svg" in names
    meta = next(n for n in names if n.endswith("METADATA"))
    metadata = zipfile.ZipFile(wheel).read(meta).decode()
    assert "License-Expression: Apache-2.0" in metadata
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "serve = explainlm.server.command:register"
        in zipfile.ZipFile(wheel).read(entry_points).decode()
    )
