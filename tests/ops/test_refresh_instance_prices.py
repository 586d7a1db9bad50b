"""scripts/refresh_instance_prices.py offline: GetProducts answered from a recorded-shape response
(tests/fixtures/pricing_get_products_sagemaker.json) through botocore's Stubber, so the requests are
checked against the pricing service's model and nothing reaches the network."""

from __future__ import annotations

import datetime
import importlib.util
import json
from pathlib import Path
from typing import Any

import boto3
from botocore.stub import Stubber

from tests.conftest import ROOT

RESPONSE = json.loads((ROOT / "tests/fixtures/pricing_get_products_sagemaker.json").read_text())


def _script() -> Any:
    spec = importlib.util.spec_from_file_location(
        "refresh_prices", ROOT / "scripts/refresh_instance_prices.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stubbed(script: Any, regions: list[str]) -> tuple[Any, Stubber]:
    client = boto3.client(
        "pricing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    stubber = Stubber(client)
    for region in regions:
        token = None
        for page in RESPONSE["pages"][region]:
            expected = {
                "ServiceCode": "AmazonSageMaker",
                "Filters": script.filters(region),
                "FormatVersion": "aws_v1",
            }
            if token:
                expected["NextToken"] = token
            stubber.add_response("get_products", page, expected)
            token = page.get("NextToken")
    stubber.activate()
    return client, stubber


def test_the_script_writes_a_dated_table_of_hosting_prices(tmp_path: Path, capsys: Any) -> None:
    script = _script()
    client, stubber = _stubbed(script, ["us-east-1", "eu-west-1"])
    out = tmp_path / "prices.json"
    code = script.main(
        ["--regions", "us-east-1", "eu-west-1", "--output", str(out)],
        client=client,
        today=datetime.date(2026, 12, 2),
    )
    stubber.assert_no_pending_responses()
    assert code == 0
    table = json.loads(out.read_text())
    assert table["as_of"] == "2026-12-02" and "Price List API" in table["source"]
    # both pages read; the lowest positive price of a type; training products and unknown types left out
    assert table["regions"]["us-east-1"] == {
        "ml.c5.large": 0.102,
        "ml.g4dn.xlarge": 0.7364,
        "ml.m5.large": 0.115,
    }
    assert table["regions"]["eu-west-1"] == {"ml.c5.large": 0.114, "ml.m5.large": 0.128}
    assert "no price for" in capsys.readouterr().out


def test_the_written_table_is_what_the_domain_reads(tmp_path: Path) -> None:
    from sagelift.domain.instance_choice import read_price_table

    script = _script()
    table = script.build_table({"us-east-1": {"ml.m5.large": 0.115}}, datetime.date(2026, 12, 2))
    read = read_price_table(table)
    assert read.price("us-east-1", "ml.m5.large") == 0.115 and read.as_of == "2026-12-02"


def test_no_prices_writes_nothing(tmp_path: Path) -> None:
    script = _script()
    client = boto3.client(
        "pricing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    stubber = Stubber(client)
    stubber.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": []})
    stubber.activate()
    out = tmp_path / "prices.json"
    assert script.main(["--regions", "ap-south-9", "--output", str(out)], client=client) == 1
    assert not out.exists()
