"""Registered retrain models: one JSON file per model in the retrain registry folder (sagelift.config),
validated like any run's conf.

A registration names when sagemaker_deploy runs again for a model, and with which conf:

    {
      "owner": "alice",                             # the Airflow user the retrains act for
      "schedule": "0 3 * * 1",                     # optional cron (UTC) for periodic retraining
      "training_data_prefix": "s3://bucket/prefix/", # optional: new data here triggers a retrain
      "conf": { ...sagemaker_deploy parameters... }, # validated by parse_params, like the trigger form
      "stages": [{"name": "staging", "account_id": "<conf's account>"},   # optional: staged promotion
                 {"name": "production", "account_id": "<another account>"}]
    }

With ``stages`` (sagelift.domain.promotion), the retrain deploys into the first stage, then promotes the
version it registered into each next stage, one sagemaker_deploy run per stage.

At least one of ``schedule`` and ``training_data_prefix`` is required. The data prefix is an Airflow
Asset URI, so an external system announces new data by posting an asset event for it through the REST
API. The registration's name is its file stem, which must equal the conf's ``model_name``.

A scheduled or asset-triggered retrain has no triggering user, so it acts for the registration's
``owner``, whom validate checks against the account's deployers like any user. The owner comes from the
registration file, never from the run: validate recognises a retrain's deploy run by what only Airflow
sets (the run type of a run a task started), the run id the retrain DAG gives it, and a conf equal to
the registered one (``is_retrain_run``). A retrain a user starts by hand carries that user instead
(Airflow passes the triggering user on to the runs a task starts), and is checked as that user.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sagelift.domain.errors import Problems, SageliftValidationError, show
from sagelift.domain.params import S3_URI_RE, default_conf, parse_params
from sagelift.domain.platform import USER_NAME_RULE, is_user_name
from sagelift.domain.promotion import PromoteFrom, Stage, derive_stage_run_suffix, parse_stages, stage_conf

RETRAIN_KEYS = {"owner", "schedule", "training_data_prefix", "conf", "description", "stages"}
# Airflow's run type of a run that a task started (TriggerDagRunOperator); a user's trigger from the UI,
# the REST API or the CLI is always "manual", so a user cannot create a run of this type.
OPERATOR_TRIGGERED = "operator_triggered"
# Five cron fields, or one of the @-presets croniter understands.
CRON_RE = re.compile(r"^(@(hourly|daily|weekly|monthly|yearly|annually|midnight)|(\S+\s+){4}\S+)$")
CRON_FIELD_RE = re.compile(r"^[\d*/,\-A-Za-z?LW#]+$")


@dataclass(frozen=True)
class RetrainModel:
    model_name: str
    conf: dict[str, Any]
    owner: str = ""
    schedule: str | None = None
    training_data_prefix: str | None = None
    description: str = ""
    source: str = field(default="", compare=False)
    # Staged promotion (sagelift.domain.promotion): deploy into stages[0], then promote stage by stage.
    stages: tuple[Stage, ...] = ()

    @property
    def dag_id(self) -> str:
        return derive_retrain_dag_id(self.model_name)


def derive_retrain_dag_id(model_name: str) -> str:
    return f"sagemaker_retrain_{model_name.replace('-', '_')}"


def derive_retrain_run_id_prefix(retrain_dag_id: str) -> str:
    """The start of the run id a retrain DAG gives the sagemaker_deploy run it starts."""
    return f"retrain__{retrain_dag_id}__"


def is_retrain_run(model: RetrainModel, run_type: str, run_id: str, conf: Mapping[str, Any]) -> bool:
    """Whether a sagemaker_deploy run is ``model``'s retrain: started by a task (not by a user), with the
    run id the model's retrain DAG gives it, and exactly the registered conf (so even a run of the
    right shape started by some other DAG can only do what the owner registered)."""
    prefix = derive_retrain_run_id_prefix(model.dag_id)
    if str(run_type) != OPERATOR_TRIGGERED or not run_id.startswith(prefix):
        return False
    if dict(conf) == model.conf:
        return True
    # A later stage's run: exactly the conf the retrain DAG gives that stage, promoting from the stage
    # before it (only the version number comes from that stage's run).
    promote = conf.get("promote_from")
    version = promote.get("version") if isinstance(promote, Mapping) else None
    if not isinstance(version, int) or isinstance(version, bool):
        return False
    for previous, stage in zip(model.stages, model.stages[1:], strict=False):
        if run_id.startswith(prefix + derive_stage_run_suffix(stage)) and dict(conf) == stage_conf(
            model.conf, stage, PromoteFrom(previous.account_id, version)
        ):
            return True
    return False


def _check_cron(value: Any, problems: Problems) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not CRON_RE.match(value.strip()):
        problems.add("schedule", f"must be a five-field cron expression such as '0 3 * * 1', got {value!r}")
        return None
    text = value.strip()
    if not text.startswith("@") and not all(CRON_FIELD_RE.match(part) for part in text.split()):
        problems.add("schedule", f"has a field that is not cron syntax: {value!r}")
        return None
    return text


def parse_retrain_model(name: str, raw: Any, source: str = "") -> RetrainModel:
    """Validate one registration; ``name`` is the file stem. Conf problems are reported as conf.<field>."""
    problems = Problems()
    if not isinstance(raw, Mapping):
        raise SageliftValidationError.single(name, "a registration is a JSON object")
    for key in sorted(set(raw) - RETRAIN_KEYS):
        problems.add(key, f"unknown key; allowed: {', '.join(sorted(RETRAIN_KEYS))}")
    owner = raw.get("owner")
    if owner is None:
        problems.add("owner", "required: the Airflow user the retrains act for")
    elif not is_user_name(owner):
        problems.add("owner", f"must be {USER_NAME_RULE}, got {show(owner)}")
        owner = None
    schedule = _check_cron(raw.get("schedule"), problems)
    prefix = raw.get("training_data_prefix")
    if prefix is not None and (not isinstance(prefix, str) or not S3_URI_RE.match(prefix)):
        problems.add("training_data_prefix", f"must be an S3 URI like s3://bucket/prefix/, got {prefix!r}")
        prefix = None
    if raw.get("schedule") is None and raw.get("training_data_prefix") is None:
        problems.add("schedule", "give a cron schedule, a training_data_prefix, or both")
    conf = raw.get("conf")
    if not isinstance(conf, Mapping):
        problems.add("conf", "required: the sagemaker_deploy parameters of the retrain runs")
        conf = {}
    else:
        merged = default_conf()
        merged.update(conf)
        try:
            params = parse_params(merged)
        except SageliftValidationError as err:
            for field_name, rule in err.problems:
                problems.add(f"conf.{field_name}", rule)
        else:
            if params.model_name != name:
                problems.add("conf.model_name", f"must equal the registration's file name {name!r}")
    stages = parse_stages(
        raw.get("stages"), problems, conf_account_id=conf.get("account_id") if conf else None
    )
    description = raw.get("description", "")
    if not isinstance(description, str):
        problems.add("description", "must be a string")
        description = ""
    if problems:
        raise SageliftValidationError([(f"{name}: {f}", rule) for f, rule in problems.items])
    return RetrainModel(
        model_name=name,
        conf=dict(conf),
        owner=str(owner or ""),
        schedule=schedule,
        training_data_prefix=prefix,
        description=description,
        source=source,
        stages=stages,
    )


def parse_retrain_file(name: str, text: str, source: str = "") -> RetrainModel:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise SageliftValidationError.single(
            name, f"not valid JSON ({err.msg} at line {err.lineno})"
        ) from None
    return parse_retrain_model(name, raw, source)
