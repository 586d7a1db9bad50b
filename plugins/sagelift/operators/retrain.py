"""Registered retrain models turned into Airflow DAGs: one small DAG per file in include/retrain/.

Each generated DAG has a single task that starts ``sagemaker_deploy`` with the model's stored conf and
waits (deferred, in the triggerer) for its outcome. So a retrain is the main pipeline itself, never a
copy of it, and adding a retrain is adding a file. The schedule comes from the registration:

- a cron ``schedule``: a CronTriggerTimetable in UTC (runs at the cron times, no catch-up);
- a ``training_data_prefix``: an Airflow Asset with that S3 URI; an asset event for it, posted by the
  ingestion job through the REST API (POST /api/v2/assets/events), starts a retrain;
- both: whichever comes first (AssetOrTimeSchedule).

The deploy run acts for the registration's ``owner`` when nobody triggered the retrain (a schedule, an
asset event): its validate recognises the run (``registered_retrain``) and reads the owner from the file
here, never from the run's conf. A retrain a user starts by hand acts for that user.

The stored conf is data: it reaches the deploy run exactly as written in the file. The stock
TriggerDagRunOperator renders ``conf`` with Jinja, so a registration value such as
``{{ conn.<id>.password }}`` would be evaluated with the worker's access and the secret would land in the
deploy run's conf, the model's environment and the logs; ``TriggerDeployRunOperator`` does not render it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, CronTriggerTimetable

from sagelift.domain.params import MODEL_NAME_MAX, SAGEMAKER_NAME_RE
from sagelift.domain.retrain import (
    OPERATOR_TRIGGERED,
    RetrainModel,
    derive_retrain_run_id_prefix,
    is_retrain_run,
    parse_retrain_file,
)

DEPLOY_DAG_ID = "sagemaker_deploy"
TIMEZONE = "UTC"
# plugins/sagelift/operators/retrain.py -> the project root, where include/ lives.
REGISTRY = Path(__file__).resolve().parents[3] / "include" / "retrain"


class TriggerDeployRunOperator(TriggerDagRunOperator):
    """TriggerDagRunOperator that passes ``conf`` through verbatim: never rendered, never augmented.

    ``conf`` is left out of the templated fields (so it is neither rendered nor stored as a rendered
    field), and OpenLineage's parent-run keys are not injected (sagemaker_deploy refuses unknown keys).
    """

    template_fields: Sequence[str] = tuple(f for f in TriggerDagRunOperator.template_fields if f != "conf")
    template_fields_renderers: ClassVar[dict[str, str]] = {}

    def __init__(self, *, conf: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(conf=conf, openlineage_inject_parent_info=False, **kwargs)


def load_retrain_models(directory: Path) -> list[RetrainModel]:
    """Every registration in ``directory``; an invalid one fails the DAG file's import, naming it."""
    return [
        parse_retrain_file(path.stem, path.read_text(), source=str(path))
        for path in sorted(directory.glob("*.json"))
    ]


def registered_retrain(
    run_type: str, run_id: str, conf: Mapping[str, Any], directory: Path = REGISTRY
) -> RetrainModel | None:
    """The registration a sagemaker_deploy run is the retrain of (see ``is_retrain_run``), else None.

    The file is found by the conf's model_name, read only when that is a valid model name (so a conf can
    name no other path), and parsed with the same rules as the retrain DAGs'.
    """
    name = conf.get("model_name")
    if str(run_type) != OPERATOR_TRIGGERED or not isinstance(name, str):
        return None
    if len(name) > MODEL_NAME_MAX or not SAGEMAKER_NAME_RE.match(name):
        return None
    path = directory / f"{name}.json"
    if not path.is_file():
        return None
    model = parse_retrain_file(name, path.read_text(), source=str(path))
    return model if is_retrain_run(model, run_type, run_id, conf) else None


def retrain_schedule(model: RetrainModel) -> object:
    timetable = CronTriggerTimetable(model.schedule, timezone=TIMEZONE) if model.schedule else None
    asset = (
        Asset(uri=model.training_data_prefix, name=model.training_data_prefix)
        if model.training_data_prefix
        else None
    )
    if timetable is not None and asset is not None:
        return AssetOrTimeSchedule(timetable=timetable, assets=asset)
    return timetable or asset


def _doc(model: RetrainModel) -> str:
    when = []
    if model.schedule:
        when.append(f"on the cron schedule `{model.schedule}` (UTC)")
    if model.training_data_prefix:
        when.append(f"when an asset event is posted for `{model.training_data_prefix}` (new training data)")
    return (
        f"### Retrain `{model.model_name}`\n\n{model.description}\n\n"
        f"Starts `sagemaker_deploy` with the conf registered in `include/retrain/{model.model_name}.json` "
        f"{' or '.join(when)}, and waits for its outcome. Edit that file to change the conf or the schedule.\n\n"
        f"Scheduled and data-triggered runs act for the registration's owner, `{model.owner}`, who must be "
        "one of the account's deployers; a run you trigger here acts for you."
    )


def build_retrain_dag(model: RetrainModel) -> DAG:
    with DAG(
        dag_id=model.dag_id,
        schedule=retrain_schedule(model),  # type: ignore[arg-type]
        catchup=False,
        doc_md=_doc(model),
        tags=["sagelift", "retrain"],
        max_active_runs=1,
        default_args={"retries": 0},
    ) as dag:
        TriggerDeployRunOperator(
            task_id="start_deploy",
            trigger_dag_id=DEPLOY_DAG_ID,
            # Deterministic: the deploy run's resource names derive from this run id.
            trigger_run_id=derive_retrain_run_id_prefix(model.dag_id) + "{{ run_id }}",
            conf=model.conf,
            wait_for_completion=True,
            deferrable=True,
            poke_interval=30,
            doc_md="Starts sagemaker_deploy with the registered conf and waits for it to finish.",
        )
    return dag
