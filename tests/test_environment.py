"""pyproject.toml, environment.yml, the Dockerfile, docker-compose.yml and the Makefile
describe one environment (no Docker engine or conda here, so their content is checked)."""

from __future__ import annotations

import re
import tomllib

import yaml

from bloodssl.paths import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
ENVIRONMENT = yaml.safe_load((ROOT / "environment.yml").read_text())


def _normalise(requirement: str) -> str:
    return re.sub(r"\s+", "", requirement).lower().replace("_", "-")


def _pyproject_requirements() -> set[str]:
    project = PYPROJECT["project"]
    extras = [req for group in project["optional-dependencies"].values() for req in group]
    return {_normalise(r) for r in project["dependencies"] + extras}


def _pip_section() -> list[str]:
    return next(d["pip"] for d in ENVIRONMENT["dependencies"] if isinstance(d, dict))


def _extras_installed(text: str) -> set[str]:
    found = re.findall(r"\.\[([a-z,\s]+)\]", text)
    assert found, "no editable install of the package with extras"
    return {extra.strip() for group in found for extra in group.split(",")}


ALL_EXTRAS = set(PYPROJECT["project"]["optional-dependencies"])


def test_environment_yml_names_the_pyproject_dependencies():
    listed = {_normalise(r) for r in _pip_section() if not r.startswith("-e")}
    assert listed == _pyproject_requirements()


def test_every_install_route_takes_every_extra():
    assert _extras_installed(" ".join(_pip_section())) == ALL_EXTRAS
    assert _extras_installed(DOCKERFILE) == ALL_EXTRAS
    assert _extras_installed((ROOT / "Makefile").read_text()) == ALL_EXTRAS


def test_torch_pins_agree_everywhere():
    pins = {_normalise(r) for r in PYPROJECT["project"]["dependencies"] if r.startswith("torch")}
    assert pins == {"torch==2.14.1", "torchvision==0.29.1"}
    docker_pins = set(re.findall(r"(torch(?:vision)?==[\d.]+)", DOCKERFILE))
    assert {_normalise(p) for p in docker_pins} == pins


def test_python_version_agrees():
    minimum = re.search(r"(\d+\.\d+)", PYPROJECT["project"]["requires-python"]).group(1)
    assert f"python={minimum}" in ENVIRONMENT["dependencies"]
    assert re.search(rf"^FROM python:{re.escape(minimum)}\b", DOCKERFILE, re.M)


def test_compose_serves_jupyterlab_on_8888_with_the_repo_mounted():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service = next(iter(compose["services"].values()))
    assert "cpu" in service["profiles"]
    assert "8888:8888" in service["ports"]
    assert any(volume.startswith(".:") for volume in service["volumes"])
    assert "8888" in DOCKERFILE and "jupyter" in DOCKERFILE
