"""The SageMaker hook of steps 5-7 and teardown: the provider's ``SageMakerHook`` on the account's session.

Every call the SageMaker operators and triggers make goes through this hook's client (the scientist
account's connection, sagelift.hooks.session_factory); the workflows over that client are the core's
(sagelift.steps.training, .model, .endpoint, .batch, .teardown), so both engines send the same calls.
"""

from __future__ import annotations

from typing import Any, cast

from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook as ProviderSageMakerHook

from sagelift.hooks.caller import QuickCallerLookup
from sagelift.steps import batch, training


class SageMakerHook(QuickCallerLookup, ProviderSageMakerHook):
    @property
    def client(self) -> Any:
        """The boto3 SageMaker client (typed loosely: the provider types ``conn`` as a generic client)."""
        return cast(Any, self.conn)

    def stop_training_job_if_running(self, job_name: str) -> bool:
        """Stop the job if it is still training; True when a stop was requested."""
        return training.stop_training(self.client, job_name)

    def stop_transform_job_if_running(self, job_name: str) -> bool:
        """Stop the batch transform job if it is still running; True when a stop was requested."""
        return batch.stop_transform(self.client, job_name)
