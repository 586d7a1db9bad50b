"""KubeflowPipelinesHook against the KFP API double: what ends up in KFP, and what a user reads on error."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sagelift.domain.kfp import derive_package_digest, derive_pipeline_version_name
from sagelift.hooks.kfp import KubeflowPipelinesError, KubeflowPipelinesHook
from tests.support.kfp_api import KfpApiDouble

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "kfp_pipeline.yaml"
CONN_ID = "kfp_test"


@pytest.fixture
def kfp():
    with KfpApiDouble() as double:
        yield double


@pytest.fixture
def hook(kfp, monkeypatch):
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", kfp.connection_json())
    return KubeflowPipelinesHook(kfp_conn_id=CONN_ID, page_size=2)


@pytest.fixture
def changed_package(tmp_path) -> Path:
    path = tmp_path / "changed.yaml"
    path.write_text(FIXTURE.read_text().replace("busybox:1.36", "busybox:1.37"))
    return path


def test_finds_the_pipeline_on_the_third_page(kfp, hook):
    for index in range(4):
        kfp.add_pipeline(f"other-{index}", FIXTURE.read_bytes())
    wanted = kfp.add_pipeline("sagemaker-deploy", FIXTURE.read_bytes())

    found = hook.find_pipeline("sagemaker-deploy")

    assert found is not None and found.pipeline_id == wanted
    tokens = [call.query.get("page_token") for call in kfp.calls_to("GET", "/pipelines")]
    assert tokens == [None, "offset-2", "offset-4"]


def test_absent_pipeline_is_none_after_every_page(kfp, hook):
    for index in range(3):
        kfp.add_pipeline(f"other-{index}", FIXTURE.read_bytes())

    assert hook.find_pipeline("sagemaker-deploy") is None
    assert len(kfp.calls_to("GET", "/pipelines")) == 2


def test_absent_pipeline_is_uploaded_and_then_found(kfp, hook):
    first = hook.ensure_pipeline_version("sagemaker-deploy", str(FIXTURE))
    again = hook.ensure_pipeline_version("sagemaker-deploy", str(FIXTURE))

    assert first.action == "uploaded pipeline"
    assert again == first.__class__(first.pipeline_id, first.pipeline_version_id, "found")
    versions = kfp.versions("sagemaker-deploy")
    assert [v["pipeline_version_id"] for v in versions] == [first.pipeline_version_id]
    assert derive_package_digest(FIXTURE.read_bytes()) in versions[0]["description"]
    assert len(kfp.calls_to("POST", "/pipelines/upload")) == 1


def test_changed_package_is_uploaded_as_a_new_version(kfp, hook, changed_package):
    original = hook.ensure_pipeline_version("sagemaker-deploy", str(FIXTURE))

    changed = hook.ensure_pipeline_version("sagemaker-deploy", str(changed_package))

    assert changed.action == "uploaded version"
    assert changed.pipeline_id == original.pipeline_id
    assert changed.pipeline_version_id != original.pipeline_version_id
    names = [v["name"] for v in kfp.versions("sagemaker-deploy")]
    digest = derive_package_digest(changed_package.read_bytes())
    assert names == ["sagemaker-deploy", derive_pipeline_version_name("sagemaker-deploy", digest)]
    spec = kfp.versions("sagemaker-deploy")[1]["pipeline_spec"]
    assert "busybox:1.37" in str(spec["deploymentSpec"])


def test_returning_to_earlier_content_reuses_its_version(kfp, hook, changed_package):
    original = hook.ensure_pipeline_version("sagemaker-deploy", str(FIXTURE))
    hook.ensure_pipeline_version("sagemaker-deploy", str(changed_package))

    back = hook.ensure_pipeline_version("sagemaker-deploy", str(FIXTURE))

    assert back.pipeline_version_id == original.pipeline_version_id
    assert len(kfp.versions("sagemaker-deploy")) == 2


def test_pipeline_uploaded_by_someone_else_gets_a_sagelift_version(kfp, hook):
    kfp.add_pipeline("sagemaker-deploy", FIXTURE.read_bytes(), description="uploaded from the UI")

    ref = hook.ensure_pipeline_version("sagemaker-deploy", str(FIXTURE))

    assert ref.action == "uploaded version"
    assert len(kfp.versions("sagemaker-deploy")) == 2


def test_missing_package_names_the_path(hook, tmp_path):
    with pytest.raises(KubeflowPipelinesError, match=r"missing\.yaml"):
        hook.ensure_pipeline_version("sagemaker-deploy", str(tmp_path / "missing.yaml"))


def test_experiment_is_created_once(kfp, hook):
    first = hook.get_or_create_experiment("sagelift")
    again = hook.get_or_create_experiment("sagelift")

    assert first == again
    assert [e["display_name"] for e in kfp.experiments] == ["sagelift"]


def test_rejected_token_is_a_clear_error_without_the_token(kfp, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_KFP_BAD", kfp.connection_json(password="not-the-right-token"))
    hook = KubeflowPipelinesHook(kfp_conn_id="kfp_bad")

    with pytest.raises(KubeflowPipelinesError) as raised:
        hook.find_pipeline("sagemaker-deploy")

    message = str(raised.value)
    assert "rejected the credentials of connection 'kfp_bad'" in message
    assert "401" in message
    assert "not-the-right-token" not in message


def test_server_errors_carry_the_servers_message(kfp, hook):
    experiment_id = hook.get_or_create_experiment("sagelift")
    ref = hook.ensure_pipeline_version("sagemaker-deploy", str(FIXTURE))

    with pytest.raises(KubeflowPipelinesError, match="unknown pipeline parameter 'not_a_parameter'"):
        hook.create_run(
            experiment_id=experiment_id, pipeline=ref, display_name="x", parameters={"not_a_parameter": 1}
        )


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_oauth_token_is_fetched_with_client_credentials_and_refreshed_when_it_expires(monkeypatch, caplog):
    clock = FakeClock()
    monkeypatch.setattr("sagelift.hooks.kfp.time.monotonic", clock)
    with KfpApiDouble(oauth_clients={"sagelift": "s3cret-value"}, token_lifetime=300, clock=clock) as kfp:
        monkeypatch.setenv(
            "AIRFLOW_CONN_KFP_OAUTH",
            kfp.connection_json(password="s3cret-value", token_url=kfp.token_url, client_id="sagelift"),
        )
        hook = KubeflowPipelinesHook(kfp_conn_id="kfp_oauth")
        caplog.set_level(logging.DEBUG)

        hook.check_health()
        hook.check_health()
        clock.now += 301  # the first token is dead now; the double would answer 401 to it
        hook.check_health()

        assert len(kfp.calls_to("POST", "/oauth/token")) == 2
        assert all(call.status == 200 for call in kfp.calls_to("GET", "/healthz"))
        issued = list(kfp.issued_tokens)
    logged = caplog.text
    assert "s3cret-value" not in logged
    assert not any(token in logged for token in issued)


def test_oauth_wrong_secret_is_a_clear_error_without_the_secret(monkeypatch):
    with KfpApiDouble(oauth_clients={"sagelift": "right-secret"}) as kfp:
        monkeypatch.setenv(
            "AIRFLOW_CONN_KFP_OAUTH",
            kfp.connection_json(password="wrong-secret", token_url=kfp.token_url, client_id="sagelift"),
        )
        hook = KubeflowPipelinesHook(kfp_conn_id="kfp_oauth")

        with pytest.raises(KubeflowPipelinesError) as raised:
            hook.check_health()

    message = str(raised.value)
    assert "refused the client credentials of connection 'kfp_oauth'" in message
    assert "invalid_client" in message
    assert "wrong-secret" not in message
    assert kfp.calls_to("GET", "/healthz") == []


def test_test_connection_reports_a_rejected_token(kfp, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_KFP_BAD", kfp.connection_json(password="nope-nope"))

    ok, message = KubeflowPipelinesHook(kfp_conn_id="kfp_bad").test_connection()

    assert not ok
    assert "401" in message


# --- the double is strict where real KFP would reject or silently misread a body -------------------


def _post_run(kfp: KfpApiDouble, body: dict) -> tuple[int, str]:
    import requests

    response = requests.post(
        f"{kfp.url}/apis/v2beta1/runs",
        json=body,
        headers={"Authorization": f"Bearer {kfp.token}"},
        timeout=10,
    )
    return response.status_code, response.json()["message"]


@pytest.fixture
def deployed(kfp, hook):
    ref = hook.ensure_pipeline_version("sagemaker-deploy", str(FIXTURE))
    return {
        "display_name": "r",
        "experiment_id": hook.get_or_create_experiment("sagelift"),
        "pipeline_version_reference": {
            "pipeline_id": ref.pipeline_id,
            "pipeline_version_id": ref.pipeline_version_id,
        },
    }


def test_double_rejects_the_v1_run_form(kfp, deployed):
    v1 = {
        "name": "my-run",
        "pipeline_spec": {"parameters": [{"name": "model_name", "value": "m"}], "pipeline_id": "p"},
        "resource_references": [{"key": {"type": "EXPERIMENT", "id": "e"}, "relationship": "OWNER"}],
    }

    status, message = _post_run(kfp, v1)

    assert status == 400
    assert "unknown field 'name'" in message and "unknown field 'resource_references'" in message


def test_double_checks_parameters_against_the_pipeline_inputs(kfp, deployed):
    parameters = {"model_name": "m", "training_instance_count": "2"}

    status, message = _post_run(kfp, {**deployed, "runtime_config": {"parameters": parameters}})

    assert status == 400
    assert "parameter 'training_instance_count' must be NUMBER_INTEGER" in message
    assert "missing pipeline parameter 'account_id'" in message


def test_double_rejects_output_only_and_mistyped_fields(kfp, deployed):
    status, message = _post_run(kfp, {**deployed, "state": "SUCCEEDED", "display_name": 7})

    assert status == 400
    assert "'state' is output only" in message and "display_name: expected str" in message


# --- answers that must not be believed -------------------------------------------------------------


def test_endless_page_tokens_stop_at_the_page_cap_naming_the_url_and_nothing_is_uploaded(kfp, monkeypatch):
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", kfp.connection_json())
    hook = KubeflowPipelinesHook(kfp_conn_id=CONN_ID)  # the default caps
    kfp.misbehave("endless_page_tokens")

    with pytest.raises(KubeflowPipelinesError) as raised:
        hook.ensure_pipeline_version("sagemaker-deploy", str(FIXTURE))

    message = str(raised.value)
    assert f"{kfp.url}/apis/v2beta1/pipelines still had a next page after 200 pages" in message
    assert len(message.splitlines()[0]) <= 200
    listed = kfp.calls_to("GET", "/pipelines")
    assert len(listed) == 200
    assert len({call.query.get("page_token") for call in listed}) == 200  # every token was new
    assert kfp.calls_to("POST", "/pipelines/upload") == [] and kfp.pipelines == []


def test_more_items_than_the_cap_stop_the_listing(kfp, monkeypatch):
    for index in range(7):
        kfp.add_pipeline(f"other-{index}", FIXTURE.read_bytes())
    hook = KubeflowPipelinesHook(kfp_conn_id=CONN_ID, page_size=2, max_items=5)
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", kfp.connection_json())

    with pytest.raises(KubeflowPipelinesError, match=r"/apis/v2beta1/pipelines listed more than 5 items"):
        hook.find_pipeline("sagemaker-deploy")

    assert len(kfp.calls_to("GET", "/pipelines")) == 3


def test_a_login_page_is_refused_naming_the_url_and_content_type_and_nothing_is_uploaded(kfp, hook):
    kfp.misbehave("login_page")

    with pytest.raises(KubeflowPipelinesError) as raised:
        hook.ensure_pipeline_version("sagemaker-deploy", str(FIXTURE))

    first_line, *rest = str(raised.value).splitlines()
    assert first_line == (
        f"Kubeflow Pipelines answered GET {kfp.url}/apis/v2beta1/pipelines with content type "
        "'text/html; charset=utf-8', not JSON (HTTP 200)."
    )
    assert "/oauth2/sign_in" in rest[0]
    # The proxy saw the list call and its redirect target, and never an upload.
    assert [call.path for call in kfp.calls] == ["/apis/v2beta1/pipelines", "/oauth2/sign_in"]
    assert kfp.pipelines == []


def test_a_login_page_fails_the_connection_test(kfp, hook):
    kfp.misbehave("login_page")

    ok, message = hook.test_connection()

    assert not ok
    assert "/apis/v2beta1/healthz" in message and "text/html" in message


def test_an_oversized_answer_is_refused_after_reading_only_the_bound(kfp, monkeypatch):
    kfp.add_pipeline("bloated", FIXTURE.read_bytes(), description="x" * 300_000)
    hook = KubeflowPipelinesHook(kfp_conn_id=CONN_ID, max_response_bytes=100_000)
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", kfp.connection_json())

    with pytest.raises(KubeflowPipelinesError) as raised:
        hook.find_pipeline("sagemaker-deploy")

    assert str(raised.value) == (
        f"Kubeflow Pipelines answered GET {kfp.url}/apis/v2beta1/pipelines with more than 100000 bytes; "
        "refused"
    )
