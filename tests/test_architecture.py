"""Layering: domain/ is pure, steps/ (the core both engines share) is Airflow-free, arrows point down,
and the package's modules are hidden from Airflow's plugin scanner."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = {"airflow", "boto3", "botocore", "kubernetes", "kfp", "kfp_server_api", "aiobotocore", "requests"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_domain_imports_none_of_the_heavy_libraries():
    offenders = {
        str(p.relative_to(ROOT)): sorted(_imports(p) & HEAVY)
        for p in (ROOT / "plugins/sagelift/domain").rglob("*.py")
        if _imports(p) & HEAVY
    }
    assert offenders == {}


def test_layers_point_down_only():
    package = ROOT / "plugins/sagelift"
    rules = {
        "operators": {"dags"},
        "hooks": {"operators", "links", "dags"},
        "triggers": {"operators", "links", "dags"},
        "steps": {"hooks", "operators", "triggers", "links", "notifications", "dags", "config"},
        "domain": {"hooks", "operators", "triggers", "links", "steps", "notifications", "dags", "config"},
    }
    offenders = []
    for layer, forbidden in rules.items():
        for path in (package / layer).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.ImportFrom)
                    and node.module
                    and node.module.startswith("sagelift.")
                    and node.module.split(".")[1] in forbidden
                ):
                    offenders.append(f"{path.relative_to(ROOT)} imports {node.module}")
    assert offenders == []


def test_plugin_scanner_ignores_the_package():
    assert "sagelift/" in (ROOT / "plugins/.airflowignore").read_text().split()


def test_dags_do_not_import_boto3_or_read_config():
    for path in [*(ROOT / "dags").glob("*.py"), *(ROOT / "plugins/sagelift/dags").glob("*.py")]:
        text = path.read_text()
        assert "Variable.get" not in text and "get_connection" not in text, path
        assert not _imports(path) & {"boto3", "botocore", "kubernetes"}, path


def test_the_core_both_engines_share_stays_airflow_free():
    """The KFP component image carries steps/, domain/ and pod/ without Airflow (include/kfp/Dockerfile)."""
    package = ROOT / "plugins/sagelift"
    shared = [*(package / "steps").rglob("*.py"), *(package / "pod").rglob("*.py")]
    assert len(shared) >= 10
    offenders = {
        str(p.relative_to(ROOT)): sorted(_imports(p) & {"airflow", "kfp", "kfp_server_api"})
        for p in shared
        if _imports(p) & {"airflow", "kfp", "kfp_server_api"}
    }
    assert offenders == {}


def test_the_kfp_glue_uses_the_core_and_is_small():
    glue = ROOT / "include/kfp/sagelift_kfp/steps.py"
    assert len(glue.read_text().splitlines()) < 150
    assert "sagelift" in _imports(glue) and not _imports(glue) & {"airflow"}
    # each feature's glue in a module of its own, as small
    for module in ("batch.py", "governance.py", "monitoring.py"):
        more = ROOT / "include/kfp/sagelift_kfp" / module
        assert len(more.read_text().splitlines()) < 150
        assert "sagelift" in _imports(more) and not _imports(more) & {"airflow"}
    labeling_glue = ROOT / "include/kfp/sagelift_kfp/labeling.py"  # label_data's, as small
    assert len(labeling_glue.read_text().splitlines()) < 150
    assert "sagelift" in _imports(labeling_glue) and not _imports(labeling_glue) & {"airflow"}
    recommendation_glue = ROOT / "include/kfp/sagelift_kfp/recommendation.py"  # recommend_instance's
    assert len(recommendation_glue.read_text().splitlines()) < 150
    assert "sagelift" in _imports(recommendation_glue) and not _imports(recommendation_glue) & {"airflow"}
    multi_model_glue = ROOT / "include/kfp/sagelift_kfp/multi_model.py"  # on a shared endpoint, as small
    assert len(multi_model_glue.read_text().splitlines()) < 150
    assert "sagelift" in _imports(multi_model_glue) and not _imports(multi_model_glue) & {"airflow"}
