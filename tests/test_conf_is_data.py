"""Confs are data everywhere: no value a user sends is ever rendered by Jinja, in any task of any DAG.

Two sweeps over every task of every DAG in dags/ (plus two retrain DAGs registered with hostile values,
one of them staged: deploy into staging, then promote into production):

- statically, no templated field reads ``dag_run.conf`` or ``params``: user input reaches a task only
  through validate's plan, read in ``execute``, never through a template;
- dynamically, every templated field (and every callback notifier's) is rendered, as the task runner
  does before ``execute``, in a context where every source of user-controlled data (the run's conf, its
  params, every upstream XCom) is a Jinja payload and the connection and Variable accessors work. A
  field that would evaluate a payload would show 1337, XYZ, the connection's password or the platform
  Variable; none may, and a field fed from those sources must show the payload as written.

And the staged retrain's promotion task, executed as the worker would (the version the staging run
registered in its XCom), starts the production run with the registered values as written: Jinja and
URLs alike, none rendered and none fetched (no socket is opened, no name resolved, in any of it).
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
# URLs a worker must never fetch: the instance metadata service, and one that would carry a secret out
URLS = (
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    f"https://collector.invalid/hook?k={{{{ conn.{CONN_ID}.password }}}}",
)
STAGED = "hostile-staged"
PRODUCTION = "444444444444"
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
def staged_registration() -> dict[str, Any]:
    """A staged retrain whose promoted stage gets these values: Jinja payloads and URLs."""
    from tests.support.scenario import demo_conf

    conf = demo_conf(
        model_name=STAGED,
        environment={
            **{f"VALUE_{i}": payload for i, payload in enumerate(PAYLOADS)},
            **{f"URL_{i}": url for i, url in enumerate(URLS)},
        },
    )
    return {
        "owner": "priya.shah",
        "schedule": "0 3 * * 1",
        "description": f"Weekly. {PAYLOADS[0]} {URLS[0]}",
        "conf": conf,
        "stages": [
            {"name": "staging", "account_id": conf["account_id"]},
            {"name": "production", "account_id": PRODUCTION},
        ],
    }


@pytest.fixture
def no_network(monkeypatch) -> list[str]:
    """Every socket a test would open or name it would resolve, refused and recorded."""
    import socket

    opened: list[str] = []

    def refuse(what: str) -> Any:
        def refused(*args: Any, **kwargs: Any) -> Any:
            opened.append(f"{what}{args[1:] if what == 'connect' else args[:2]}")
            raise OSError(f"test_conf_is_data: no network ({what})")

        return refused

    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("connect_ex"))
    return opened


@pytest.fixture(scope="module")
def every_task(airflow_db, hostile_registration, staged_registration) -> list[tuple[Any, Any]]:
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
    dags.append(build_retrain_dag(parse_retrain_model(STAGED, staged_registration)))
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


@pytest.fixture
def secrets_reachable(monkeypatch) -> None:
    """The connection and the Variable a template could reach, holding values that must never show."""
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps({"conn_type": "aws", "login": "runner", "password": SECRET}),
    )
    monkeypatch.setenv("AIRFLOW_VAR_SAGELIFT_PLATFORM", PLATFORM)


def _hostile_context(dag: Any, task: Any, ti: HostileTaskInstance) -> dict[str, Any]:
    from types import SimpleNamespace

    from airflow.sdk.execution_time.context import ConnectionAccessor, VariableAccessor

    return {
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


def test_every_templated_field_renders_user_data_inert(
    every_task, hostile_registration, staged_registration, secrets_reachable, no_network
):
    rendered: dict[str, Any] = {}
    for dag, original in every_task:
        task = copy.deepcopy(original)
        ti = HostileTaskInstance(dag.dag_id, task.task_id)
        context = _hostile_context(dag, task, ti)
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
    staged = "sagemaker_retrain_hostile_staged"
    assert rendered[f"{staged}.deploy_to_staging.conf (sent)"] == staged_registration["conf"]
    assert no_network == []


class StagingRegistered(HostileTaskInstance):
    """The promotion task's XCom read: staging's register_model value (version 3), every other key hostile."""

    def __init__(self, dag_id: str, task_id: str) -> None:
        super().__init__(dag_id, task_id)
        self.pulled: list[dict[str, Any]] = []

    def xcom_pull(self, *args: Any, **kwargs: Any) -> Hostile:
        self.pulled.append(kwargs)
        value = _hostile_value()
        value["version"] = 3
        return value


def test_a_promoted_stage_run_gets_the_registered_values_as_written_and_nothing_fetches_them(
    every_task, staged_registration, secrets_reachable, no_network, monkeypatch
):
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

    from sagelift.domain.params import parse_params
    from sagelift.domain.retrain import default_conf

    started: list[tuple[str, dict[str, Any]]] = []
    # what the stock operator would start: the run id and conf it hands sagemaker_deploy
    monkeypatch.setattr(
        TriggerDagRunOperator,
        "execute",
        lambda self, context: started.append((self.trigger_run_id, self.conf)),
    )
    [(dag, original)] = [
        (d, t)
        for d, t in every_task
        if d.dag_id == "sagemaker_retrain_hostile_staged" and t.task_id.startswith("promote")
    ]
    task = copy.deepcopy(original)
    ti = StagingRegistered(dag.dag_id, task.task_id)
    context = _hostile_context(dag, task, ti)
    task.render_template_fields(context)
    task.execute(context)

    # staging's run: the version its register_model task recorded (the run id is this run's, not input)
    [pulled] = ti.pulled
    assert pulled["task_ids"] == "register_model" and pulled["dag_id"] == "sagemaker_deploy"
    assert pulled["run_id"].endswith("staging__" + RUN_ID)
    [(run_id, conf)] = started
    assert run_id.endswith("production__" + RUN_ID)
    registered = staged_registration["conf"]
    assert conf["environment"] == registered["environment"]  # payloads and URLs exactly as written
    assert conf["account_id"] == PRODUCTION
    assert conf["promote_from"] == {"account_id": registered["account_id"], "version": 3}
    assert conf["model_name"] == STAGED
    assert not [text for text in _strings(conf) if any(marker in text for marker in EVALUATED)]
    # and sagemaker_deploy's validate takes it as it is: the model's environment carries them verbatim
    params = parse_params({**default_conf(), **conf})
    assert dict(params.environment) == registered["environment"]
    assert no_network == []
