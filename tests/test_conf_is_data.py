"""Confs are data everywhere: no value a user sends is ever rendered by Jinja, in any task of any DAG.

Two sweeps over every task of every DAG in dags/ (plus a retrain DAG registered with hostile values):

- statically, no templated field reads ``dag_run.conf`` or ``params``: user input reaches a task only
  through validate's plan, read in ``execute``, never through a template;
- dynamically, every templated field (and every callback notifier's) is rendered, as the task runner
  does before ``execute``, in a context where every source of user-controlled data (the run's conf, its
  params, every upstream XCom) is a Jinja payload and the connection and Variable accessors work. A
  field that would evaluate a payload would show 1337, XYZ, the connection's password or the platform
  Variable; none may, and a field fed from those sources must show the payload as written.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from tests.conftest import ROOT

SECRET = "runner-secret-key-never-rendered"
PLATFORM = "platform-variable-never-rendered"
CONN_ID = "sagelift_aws_333333333333"
PAYLOADS = (
    "{{ 7*191 }}",
    f"{{{{ conn.{CONN_ID}.password }}}}",
    "{{ var.value.sagelift_platform }}",
    "{% for c in 'xyz' %}{{ c | upper }}{% endfor %}",
)
EVALUATED = ("1337", SECRET, PLATFORM, "XYZ")
RUN_ID = "manual__2026-03-01T10:00:00+00:00"
# A template that reads these reads raw user input (dag_run.conf, params.x, conf.get(...)).
READS_USER_INPUT = re.compile(r"(\{\{|\{%)[^}]*\b(dag_run\s*\.\s*conf|params|conf)\b")


class Hostile(dict):
    """A conf, params or XCom value in which every key, asked for or not, holds a payload."""

    def __missing__(self, key: str) -> str:
        return PAYLOADS[len(key) % len(PAYLOADS)]


def _hostile_value() -> Hostile:
    return Hostile({f"field_{i}": payload for i, payload in enumerate(PAYLOADS)}, nested=list(PAYLOADS))


class HostileTaskInstance:
    def __init__(self, dag_id: str, task_id: str) -> None:
        self.dag_id, self.task_id, self.run_id = dag_id, task_id, RUN_ID
        self.map_index, self.try_number = -1, 1

    def xcom_pull(self, *args: Any, **kwargs: Any) -> Hostile:
        return _hostile_value()

    def xcom_push(self, *args: Any, **kwargs: Any) -> None:
        pass


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _strings(item)
    elif hasattr(value, "template_fields"):
        for name in value.template_fields:
            yield from _strings(getattr(value, name, None))


@pytest.fixture(scope="module")
def hostile_registration(tmp_path_factory) -> dict[str, Any]:
    from tests.support.scenario import demo_conf

    conf = demo_conf(
        model_name="hostile-model",
        environment={f"VALUE_{i}": payload for i, payload in enumerate(PAYLOADS)},
        training_hyperparameters={"note": PAYLOADS[1]},
    )
    folder = tmp_path_factory.mktemp("retrain")
    (folder / "hostile-model.json").write_text(
        json.dumps({"owner": "priya.shah", "schedule": "0 3 * * 1", "conf": conf})
    )
    return conf


@pytest.fixture(scope="module")
def every_task(airflow_db, hostile_registration) -> list[tuple[Any, Any]]:
    from airflow.dag_processing.dagbag import DagBag

    from sagelift.dags.retrain import build_retrain_dag
    from sagelift.domain.retrain import parse_retrain_model

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    dags = list(bag.dags.values())
    dags.append(
        build_retrain_dag(
            parse_retrain_model(
                "hostile-model",
                {"owner": "priya.shah", "schedule": "0 3 * * 1", "conf": hostile_registration},
            )
        )
    )
    return [(dag, task) for dag in dags for task in dag.tasks]


def _notifiers(task: Any) -> list[Any]:
    from airflow.sdk.bases.notifier import BaseNotifier

    callbacks = []
    for name in ("on_failure_callback", "on_success_callback", "on_retry_callback", "on_execute_callback"):
        value = getattr(task, name, None)
        callbacks += value if isinstance(value, list) else [value]
    return [c for c in callbacks if isinstance(c, BaseNotifier)]


def test_no_templated_field_reads_the_conf_or_params(every_task):
    readers = [
        f"{dag.dag_id}.{task.task_id}.{field}: {text!r}"
        for dag, task in every_task
        for field in task.template_fields
        for text in _strings(getattr(task, field, None))
        if READS_USER_INPUT.search(text)
    ]
    readers += [
        f"{dag.dag_id}.{task.task_id} notifier {type(n).__name__}.{field}: {text!r}"
        for dag, task in every_task
        for n in _notifiers(task)
        for field in n.template_fields
        for text in _strings(getattr(n, field, None))
        if READS_USER_INPUT.search(text)
    ]
    assert readers == []


def test_every_templated_field_renders_user_data_inert(every_task, hostile_registration, monkeypatch):
    from types import SimpleNamespace

    from airflow.sdk.execution_time.context import ConnectionAccessor, VariableAccessor

    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps({"conn_type": "aws", "login": "runner", "password": SECRET}),
    )
    monkeypatch.setenv("AIRFLOW_VAR_SAGELIFT_PLATFORM", PLATFORM)
    rendered: dict[str, Any] = {}
    for dag, original in every_task:
        task = copy.deepcopy(original)
        ti = HostileTaskInstance(dag.dag_id, task.task_id)
        context = {
            "dag": dag,
            "task": task,
            "run_id": RUN_ID,
            "ti": ti,
            "task_instance": ti,
            "dag_run": SimpleNamespace(dag_id=dag.dag_id, run_id=RUN_ID, conf=_hostile_value()),
            "params": _hostile_value(),
            "conn": ConnectionAccessor(),
            "var": {"value": VariableAccessor(deserialize_json=False), "json": VariableAccessor(True)},
        }
        task.render_template_fields(context)
        for field in task.template_fields:
            rendered[f"{dag.dag_id}.{task.task_id}.{field}"] = getattr(task, field, None)
        if hasattr(task, "trigger_dag_id"):  # what a TriggerDagRunOperator will hand the run it starts
            rendered[f"{dag.dag_id}.{task.task_id}.conf (sent)"] = task.conf
        for notifier in _notifiers(task):
            notifier.render_template_fields(context)
            for field in notifier.template_fields:
                rendered[f"{dag.dag_id}.{task.task_id}.{type(notifier).__name__}.{field}"] = getattr(
                    notifier, field, None
                )

    evaluated = {
        where: text
        for where, value in rendered.items()
        for text in _strings(value)
        if any(marker in text for marker in EVALUATED)
    }
    assert evaluated == {}
    # The sweep reached fields that do carry user data (the plan and other upstream XComs, the
    # registered conf), and each holds the payloads exactly as written.
    carrying = {
        where
        for where, value in rendered.items()
        if any(payload in text for text in _strings(value) for payload in PAYLOADS)
    }
    assert len(carrying) >= 4, carrying
    assert rendered["sagemaker_retrain_hostile_model.start_deploy.conf (sent)"] == hostile_registration
