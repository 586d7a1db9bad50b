"""Registered retrain models turned into Airflow DAGs: one small DAG per file in the retrain registry
(the folder ``[sagelift] retrain_registry`` names, see sagelift.config).

Each generated DAG has a single task that starts ``sagemaker_deploy`` with the model's stored conf and
waits (deferred, in the triggerer) for its outcome. So a retrain is the main pipeline itself, never a
copy of it, and adding a retrain is adding a file. The schedule comes from the registration:

- a cron ``schedule``: a CronTriggerTimetable in UTC (runs at the cron times, no catch-up);
- a ``training_data_prefix``: an Airflow Asset with that S3 URI; an asset event for it, posted by the
  ingestion job through the REST API (POST /api/v2/assets/events), starts a retrain;
- both: whichever comes first (AssetOrTimeSchedule).

A registration with ``stages`` (sagelift.domain.promotion) gets one task per stage instead: the first
deploys the registered conf into the first stage's account, each next one (``TriggerPromotionRunOperator``)
starts a run in its stage's account promoting the version the run before registered.

The deploy run acts for the registration's ``owner`` when nobody triggered the retrain (a schedule, an
asset event): its validate recognises the run (``registered_retrain``) and reads the owner from the file
here, never from the run's conf. A retrain a user starts by hand acts for that user.

The stored conf is data: it reaches the deploy run exactly as written in the file. The stock
TriggerDagRunOperator renders ``conf`` with Jinja, so a registration value such as
``{{ conn.<id>.password }}`` would be evaluated with the worker's access and the secret would land in the
deploy run's conf, the model's environment and the logs; ``TriggerDeployRunOperator`` does not render it.
"""

from __future__ import annotations

from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, CronTriggerTimetable

from sagelift.domain.promotion import derive_stage_run_suffix
from sagelift.domain.retrain import (
    RetrainModel,
    derive_retrain_run_id_prefix,
)
from sagelift.operators.trigger_dagrun import TriggerDeployRunOperator, TriggerPromotionRunOperator

DEPLOY_DAG_ID = "sagemaker_deploy"
TIMEZONE = "UTC"


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
        f"Starts `sagemaker_deploy` with the conf registered in `{model.model_name}.json` (in the folder "
        "named by `[sagelift] retrain_registry`) "
        f"{' or '.join(when)}, and waits for its outcome. Edit that file to change the conf or the schedule.\n\n"
        f"Scheduled and data-triggered runs act for the registration's owner, `{model.owner}`, who must be "
        "one of the account's deployers; a run you trigger here acts for you."
        + (
            "\n\nStaged: "
            + " -> ".join(f"`{s.name}` ({s.account_id})" for s in model.stages)
            + ". The first "
            "stage trains and deploys; each next stage deploys the version the stage before registered "
            "(same digests, same artifact), after its own approval where the account requires it."
            if model.stages
            else ""
        )
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
        if model.stages:
            _staged_tasks(model)
            return dag
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


def _staged_tasks(model: RetrainModel) -> None:
    """Deploy into the first stage, then one promotion per later stage, each after the one before."""
    prefix = derive_retrain_run_id_prefix(model.dag_id)
    first = model.stages[0]
    previous_run_id = prefix + derive_stage_run_suffix(first) + "{{ run_id }}"
    previous_task = TriggerDeployRunOperator(
        task_id=f"deploy_to_{first.name}",
        trigger_dag_id=DEPLOY_DAG_ID,
        trigger_run_id=previous_run_id,
        conf=model.conf,
        wait_for_completion=True,
        deferrable=True,
        poke_interval=30,
        doc_md=f"Starts sagemaker_deploy with the registered conf in {first.name} ({first.account_id}): it "
        "trains, registers a model package version, deploys and smoke-tests there; waits for it.",
    )
    previous = first
    for stage in model.stages[1:]:
        run_id = prefix + derive_stage_run_suffix(stage) + "{{ run_id }}"
        task = TriggerPromotionRunOperator(
            task_id=f"promote_to_{stage.name}",
            trigger_dag_id=DEPLOY_DAG_ID,
            trigger_run_id=run_id,
            registered_conf=model.conf,
            stage=stage.to_dict(),
            previous_stage=previous.to_dict(),
            previous_run_id=previous_run_id,
            wait_for_completion=True,
            deferrable=True,
            poke_interval=30,
            doc_md=f"Starts sagemaker_deploy in {stage.name} ({stage.account_id}) with promote_from: the "
            f"version the {previous.name} run registered, same image digests and artifact, copied across "
            "accounts by digest; an account that requires approval pauses that run at approve_deploy.",
        )
        previous_task >> task
        previous_task, previous, previous_run_id = task, stage, run_id
