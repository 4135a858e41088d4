"""Packaging: the license, a build without deprecation warnings, and version floors that are the
versions the tests run with (`make install` for the dependencies and the extras it installs; an
optional extra it does not install, such as ``gguf-native``, is installed at its floor and tested by
its own make target)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
FLOORS = ROOT / ".ci" / "floors.txt"
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")
EXTRAS: dict[str, list[str]] = PYPROJECT["project"]["optional-dependencies"]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _floor(requirement: str) -> str | None:
    m = re.search(r"(?:>=|==)\s*([0-9][^,; ]*)", requirement)
    return m.group(1) if m else None


def declared() -> dict[str, str | None]:
    reqs = list(PYPROJECT["project"]["dependencies"])
    for extra in EXTRAS.values():
        reqs += [r for r in extra if not r.startswith("explainlm")]
    return {_name(r): _floor(r) for r in reqs}


def make_targets_installing_extras() -> dict[str, str]:
    """Each extra the Makefile installs at the floors (``pip install -c .ci/floors.txt -e
    ".[extra]"``), with the target whose recipe does it."""
    out: dict[str, str] = {}
    target = ""
    for line in MAKEFILE.splitlines():
        if rule := re.match(r"([^\s#:=][^:=]*):(?!=)", line):
            target = rule.group(1).strip()
        for extras in re.findall(r'-c \.ci/floors\.txt -e "\.\[([\w,-]+)\]"', line):
            out.update(dict.fromkeys(extras.split(","), target))
    return out


def _with_included(extras: set[str]) -> set[str]:
    """The extras plus those they include (``explainlm[server]`` in ``test``)."""
    out, todo = set(), list(extras)
    while todo:
        extra = todo.pop()
        if extra not in out:
            out.add(extra)
            for r in EXTRAS[extra]:
                if r.startswith("explainlm["):
                    todo += r[len("explainlm[") : -1].split(",")
    return out


def default_extras() -> set[str]:
    """The extras `make install` installs (its recipe's target is the stamp file)."""
    targets = make_targets_installing_extras()
    return _with_included({e for e, t in targets.items() if t == "$(STAMP)"})


def default_install() -> set[str]:
    """The packages `make install` installs: the dependencies and the default extras'."""
    reqs = list(PYPROJECT["project"]["dependencies"])
    for extra in default_extras():
        reqs += [r for r in EXTRAS[extra] if not r.startswith("explainlm")]
    return {_name(r) for r in reqs}


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
    for name in default_install():
        assert _release(version(name)) == _release(pins[name]), (name, version(name))
    for name in set(floors) - default_install():  # an optional extra with its own make target
        if _installed(name):
            assert _release(version(name)) == _release(pins[name]), (name, version(name))


def _installed(name: str) -> bool:
    try:
        version(name)
    except PackageNotFoundError:
        return False
    return True


def test_every_extra_make_install_skips_has_its_own_make_target_at_the_floors() -> None:
    """An extra `make install` does not install (it is slow to build, say) is installed at the
    floors by a make target of its own, which tests it: its floors are tested versions too."""
    targets = make_targets_installing_extras()
    assert "test" in default_extras(), "make install installs the test extra"
    for extra in set(EXTRAS) - default_extras():
        assert targets.get(extra, "$(STAMP)") != "$(STAMP)", f"no make target installs [{extra}]"
        assert re.search(
            rf"^{re.escape(targets[extra])}:.*\n(\t.*\n)*\t.*pytest", MAKEFILE, re.M
        ), f"make {targets[extra]} installs [{extra}] but runs no tests"


@pytest.mark.gguf
def test_gguf_native_extra_runs_at_its_floor() -> None:
    """`make test-gguf` (``-m gguf``) runs at the floor of the ``gguf-native`` extra."""
    pytest.importorskip("llama_cpp")
    assert make_targets_installing_extras()["gguf-native"] == "test-gguf"
    assert _release(version("llama-cpp-python")) == _release(pinned()["llama-cpp-python"])


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
