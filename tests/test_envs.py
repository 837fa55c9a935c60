"""The conda env files are the only definition of the per-dataset environments, and conda channels are
out of reach here, so these tests keep them honest: they parse, pin every package, and list every
third-party package that the scripts of their rules import (followed through the slidesnake library)."""

import re
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from slidesnake.codehash import reached

ENVS = ROOT / "envs"
RULES = ROOT / "workflow" / "rules"
LIBRARY = ROOT / "scripts" / "slidesnake"
#: import name -> the conda (or pip) packages that provide it; keep in step with the library's imports
PROVIDERS = {
    "numpy": {"numpy"},
    "pandas": {"pandas"},
    "scipy": {"scipy"},
    "skimage": {"scikit-image"},
    "sklearn": {"scikit-learn"},
    "shapely": {"shapely"},
    "PIL": {"pillow"},
    "matplotlib": {"matplotlib-base", "matplotlib"},
    "mpl_toolkits": {"matplotlib-base", "matplotlib"},
    "openslide": {"openslide-python"},
    "tifffile": {"tifffile"},
    "imagecodecs": {"imagecodecs"},
    "zarr": {"zarr"},
    "google_crc32c": {"google-crc32c"},
    "xxhash": {"python-xxhash", "xxhash"},
    "numcodecs": {"numcodecs"},
    "dask": {"dask-core", "dask"},
    "yaml": {"pyyaml"},
    "psutil": {"psutil"},
    "tensorflow": {"tensorflow", "tensorflow-cpu", "tensorflow[and-cuda]"},
    "keras": {"tensorflow", "tensorflow-cpu", "tensorflow[and-cuda]", "keras"},
    "onnxruntime": {"onnxruntime", "onnxruntime-gpu"},
    "h5py": {"h5py"},
}
#: rules whose env is the dataset's own (a `conda:` function): every model env must serve them
MODEL_ENVS = sorted(ENVS.glob("tensorflow*.yaml"))


def env_packages(path: Path) -> dict[str, str]:
    """Package name -> pinned version of an env file (conda and pip dependencies)."""
    env = yaml.safe_load(path.read_text())
    packages = {}
    for dependency in env["dependencies"]:
        entries = dependency["pip"] if isinstance(dependency, dict) else [dependency]
        for entry in entries:
            match = re.fullmatch(r"([A-Za-z0-9_.\-]+(?:\[[a-z\-]+\])?)\s*==?\s*([0-9][^\s]*)", entry)
            packages[entry if match is None else match.group(1).lower()] = (
                None if match is None else match.group(2)
            )
    return packages


def imported_modules(script: Path) -> set[str]:
    """Top-level third-party modules a script imports, following slidesnake modules transitively."""
    return reached(script)[1]


def rule_envs() -> list[tuple[str, Path, list[Path]]]:
    """(rule, script, env files) for every rule with a script."""
    found = []
    for smk in sorted(RULES.glob("*.smk")):
        for block in re.split(r"\n\s*rule ", smk.read_text())[1:]:
            name = block.split(":", 1)[0].strip()
            script = re.search(r"script:\s*\n\s*\"([^\"]+)\"", block)
            conda = re.search(r"conda:\s*\n\s*(\S+)", block)
            if script is None:
                continue
            assert conda is not None, f"rule {name} has a script but no conda env"
            value = conda.group(1).strip('"')
            envs = MODEL_ENVS if value == "model_env" else [(smk.parent / value).resolve()]
            found.append((name, (smk.parent / script.group(1)).resolve(), envs))
    return found


def missing_packages(script: Path, env: Path) -> list[str]:
    """The modules ``script`` imports that ``env`` does not provide."""
    listed = set(env_packages(env))
    return sorted(m for m in imported_modules(script) if not PROVIDERS.get(m, set()) & listed)


@pytest.mark.parametrize("env", sorted(ENVS.glob("*.yaml")), ids=lambda p: p.name)
def test_env_file_parses_and_pins_every_package(env):
    content = yaml.safe_load(env.read_text())
    assert content["name"] and "conda-forge" in content["channels"]
    packages = env_packages(env)
    unpinned = [name for name, version in packages.items() if version is None]
    assert not unpinned, f"{env.name}: not pinned to one version: {unpinned}"
    assert packages["python"].startswith("3.11")


def test_every_rule_has_an_env_and_every_import_is_listed():
    rules = rule_envs()
    assert {"ingest", "label_tiles", "train", "predict", "evaluate"} <= {name for name, _, _ in rules}
    assert len(MODEL_ENVS) >= 2  # CPU and GPU TensorFlow
    problems = []
    for name, script, envs in rules:
        unknown = imported_modules(script) - set(PROVIDERS)
        assert not unknown, f"rule {name}: add {sorted(unknown)} to PROVIDERS in this test"
        for env in envs:
            missing = missing_packages(script, env)
            if missing:
                problems.append(f"rule {name} ({script.name}) imports {missing}, not in {env.name}")
    assert not problems, "\n".join(problems)


def test_model_rules_use_the_datasets_env():
    rules = {name: envs for name, _, envs in rule_envs()}
    assert rules["train"] == MODEL_ENVS and rules["predict"] == MODEL_ENVS
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    for dataset in config["datasets"].values():
        assert (ENVS / f"{dataset['env']}.yaml").is_file()


def test_the_check_fails_when_an_import_is_missing(tmp_path):
    env = yaml.safe_load((ENVS / "tensorflow-cpu.yaml").read_text())
    env["dependencies"] = [
        d for d in env["dependencies"] if not (isinstance(d, str) and d.startswith("zarr="))
    ]
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(env))
    assert missing_packages(ROOT / "scripts" / "train.py", ENVS / "tensorflow-cpu.yaml") == []
    assert missing_packages(ROOT / "scripts" / "train.py", broken) == ["zarr"]
    unpinned = tmp_path / "unpinned.yaml"
    unpinned.write_text(broken.read_text().replace("numpy=", "numpy>="))
    assert [name for name, version in env_packages(unpinned).items() if version is None] == ["numpy>=2.3.5"]
