"""Airflow's own REST API, for what a task cannot do through the Task SDK: set its run's note.

Airflow 3.3's execution API (what the Task SDK speaks) lets a task trigger a run with a note, but has
no call to change the note of a run; users set notes through the public REST API. So sagelift writes
the note there, as a service user the ML engineer names in the connection ``sagelift_airflow_api``:
host = the API server's URL (``http://airflow-api-server:8080``; or host, schema and port), login and
password of a user allowed to edit the DAGs' runs. Without that connection the note stays as it was
(the one ``sagelift.client`` sets when it triggers a run), which the log says; a note that cannot be
written never fails a task. The token is kept in this object only: never logged or returned.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

CONN_ID = "sagelift_airflow_api"
TIMEOUT_SECONDS = 10.0


def base_url(connection: Any) -> str:
    host = str(connection.host or "").rstrip("/")
    if host.startswith(("http://", "https://")):
        return host
    scheme = connection.schema if connection.schema in ("http", "https") else "http"
    port = f":{connection.port}" if connection.port else ""
    return f"{scheme}://{host}{port}"


class AirflowApiHook(BaseHook):
    conn_name_attr = "conn_id"
    default_conn_name = CONN_ID
    conn_type = "http"
    hook_name = "sagelift Airflow REST API"

    def __init__(self, conn_id: str = CONN_ID, timeout: float = TIMEOUT_SECONDS) -> None:
        super().__init__()
        self.conn_id, self.timeout = conn_id, timeout

    def set_run_note(self, dag_id: str, run_id: str, note: str) -> bool:
        """Replace the run's note; False (logged) when there is no connection or the API refused."""
        try:
            connection = self.get_connection(self.conn_id)
        except AirflowNotFoundException:
            self.log.info(
                "No connection %r: the run's note is left as it is (README 'Outcomes at a glance').",
                self.conn_id,
            )
            return False
        url = base_url(connection)
        try:
            answer = requests.post(
                f"{url}/auth/token",
                json={"username": connection.login, "password": connection.password},
                timeout=self.timeout,
            )
            answer.raise_for_status()
            token = str(answer.json()["access_token"])
            patched = requests.patch(
                f"{url}/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}",
                json={"note": note},
                headers={"Authorization": f"Bearer {token}"},
                timeout=self.timeout,
            )
            patched.raise_for_status()
        except requests.HTTPError as err:
            status = err.response.status_code if err.response is not None else "?"
            self.log.warning("Could not set the run's note: %s answered %s.", url, status)
            return False
        except (requests.RequestException, KeyError, ValueError) as err:
            self.log.warning("Could not set the run's note through %s: %s.", url, type(err).__name__)
            return False
        return True
