"""pyproject.toml and environment.yml must list the same packages, so the two routes never drift.

Both sides count the runtime packages, the [dev] extra and the [book] extra; on the conda side,
those environment.yml installs with pip count too.
"""

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PYPI = {"pytorch": "torch"}  # conda-forge names that differ from PyPI's
NOT_PACKAGES = {"python", "pip"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement.strip(), maxsplit=1)[0].lower()


def pyproject_packages() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    requirements = project["dependencies"] + extras["dev"] + extras["book"]
    return {_name(r) for r in requirements}


def conda_packages() -> set[str]:
    """conda-forge packages plus those the environment installs with pip (not pip's options)."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = {_name(d) for d in env["dependencies"] if isinstance(d, str)}
    for entry in env["dependencies"]:
        if isinstance(entry, dict):
            names |= {_name(r) for r in entry.get("pip", []) if not r.lstrip().startswith("-")}
    return {CONDA_TO_PYPI.get(n, n) for n in names} - NOT_PACKAGES


def test_conda_environment_lists_the_same_packages_as_pyproject():
    assert conda_packages() == pyproject_packages()


def test_conda_environment_uses_conda_forge_only():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]


def test_name_parser_sees_through_version_specifiers():
    assert _name("torch>=2.2") == "torch"
    assert _name("nbval==0.11.0") == _name("nbval=0.11.0") == "nbval"
    assert _name("pytest>=8.1,<10") == "pytest"


def test_every_subpackage_of_hvnotes_is_packaged():
    # setuptools installs only the packages pyproject lists: a new folder left out of the list
    # works in the editable checkout and is missing from a wheel.
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "hvnotes").rglob("__init__.py")
    }
    assert on_disk == listed
