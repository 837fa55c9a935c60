"""The house rules of the code base, checked: one name per rule, the library never imports its rules,
small modules, and a config reference that documents every key of the schema."""

import ast
import importlib
import re

import pytest
import yaml

from conftest import ROOT, SCHEMA

RULES = ROOT / "workflow" / "rules"
LIBRARY = ROOT / "scripts" / "slidesnake"


def rules_with_scripts() -> list[tuple[str, str, str]]:
    """(smk module, rule, script file) of every rule that runs a script."""
    found = []
    for smk in sorted(RULES.glob("*.smk")):
        for block in re.split(r"\n\s*rule ", smk.read_text())[1:]:
            name = block.split(":", 1)[0].strip()
            script = re.search(r"script:\s*\n\s*\"([^\"]+)\"", block)
            if script:
                found.append((smk.stem, name, script.group(1).rsplit("/", 1)[-1]))
    return found


@pytest.mark.parametrize(("module", "rule", "script"), rules_with_scripts(), ids=lambda v: str(v))
def test_rule_script_and_function_share_one_name(module, rule, script):
    assert script == f"{rule}.py"
    function = getattr(importlib.import_module(f"slidesnake.rules.{module}"), rule)
    assert callable(function)
    tree = ast.parse((ROOT / "scripts" / script).read_text())
    imported = {
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert (f"slidesnake.rules.{module}", rule) in imported


def test_every_rules_module_mirrors_a_rule_file():
    modules = {p.stem for p in (LIBRARY / "rules").glob("*.py") if p.stem != "__init__"}
    assert modules == {p.stem for p in RULES.glob("*.smk")} - {"common"}


def test_the_library_never_imports_its_rules():
    for path in LIBRARY.rglob("*.py"):
        if "rules" in path.relative_to(LIBRARY).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert "rules" not in (node.module or "").split("."), f"{path} imports {node.module}"


def test_no_library_module_is_over_400_lines():
    long = {
        str(p.relative_to(LIBRARY)): n
        for p in LIBRARY.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert not long


def schema_leaves(schema: dict, defs: dict, prefix: str = "") -> list[str]:
    """Every leaf key path of the config schema, as config/README.md writes them (``a: b: c``)."""
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and "properties" in extra:
        return schema_leaves(extra, defs, f"{prefix}<name>: ")
    if not schema.get("properties"):
        return [prefix.removesuffix(": ")]
    keys = []
    for name, sub in schema["properties"].items():
        keys += schema_leaves(sub, defs, f"{prefix}{name}: ")
    return keys


def test_config_readme_documents_every_key_of_the_schema():
    schema = yaml.safe_load(SCHEMA.read_text())
    readme = (ROOT / "config" / "README.md").read_text()
    documented = set(re.findall(r"^\| `([^`]+)` \|", readme, flags=re.MULTILINE))
    leaves = schema_leaves(schema, schema["$defs"])
    assert "model: augment: color_jitter" in leaves and "datasets: <name>: patches: root" in leaves
    parts = [leaf.split(": ") for leaf in leaves]
    missing = [
        leaf
        for leaf, p in zip(leaves, parts, strict=True)
        if not any(": ".join(p[:k]) in documented for k in range(1, len(p) + 1))
    ]
    assert not missing


def _reached(script):
    """Library files (relative to the package) a rule's script reaches, as its code version hashes them."""
    from slidesnake.codehash import LIBRARY, reached

    files, _ = reached(ROOT / "scripts" / f"{script}.py")
    return {str(f.relative_to(LIBRARY)) for f in files if LIBRARY in f.parents}


REPORT_SIDE = (
    "evaluate",
    "dataset_page",
    "performance",
    "cross_site",
    "crossval",
    "study_pages",
    "provenance",
)


@pytest.mark.parametrize("script", REPORT_SIDE)
def test_report_side_rules_reach_no_slide_reading(script):
    """Fitness: a report rule's code version never depends on how slides are read or tiles written."""
    reached = _reached(script)
    assert not {f for f in reached if f.startswith("wsi/")}, script
    assert "store/writer.py" not in reached


def test_code_versions_follow_real_dependencies():
    """Editing the evaluation plots reruns no training, prediction or ingest; editing the OpenSlide backend
    reruns only what reads slides; and the controls: those rules do reach what they use."""
    for script in ("train", "predict", "ingest", "features", "train_fold"):
        assert "plots/evaluation.py" not in _reached(script), script
    for script in ("train", "train_fold", "predict", "predict_external", "evaluate", "tsne", "study_pages"):
        reached = _reached(script)
        assert "wsi/backends/openslide.py" not in reached and "store/writer.py" not in reached, script
    assert {"wsi/backends/openslide.py", "store/writer.py", "tissue.py"} <= _reached("ingest")
    assert "plots/evaluation.py" in _reached("evaluate") and "plots/evaluation.py" in _reached("tsne")
    assert "model/probe.py" in _reached("train") and "rules/model.py" in _reached("tsne")


def test_stored_tables_are_read_and_written_only_through_their_declarations():
    """Only tables.py turns stored tables into text and back; the others read the user's own files (the
    slide sheet, a labels CSV, a patient table)."""
    users = {
        str(path.relative_to(LIBRARY))
        for path in LIBRARY.rglob("*.py")
        if re.search(r"\.(read_csv|to_csv|read_table)\(", path.read_text())
    }
    assert users == {"tables.py", "study.py", "patches.py", "patient_labels.py"}
