"""Rewrite plugins/sagelift/domain/instance_prices.json from the AWS Price List API.

recommend_instance prices the hosting types that fit a model from that bundled, dated table (the domain
layer makes no AWS call). This script asks the Price List API (pricing:GetProducts, service
AmazonSageMaker, product family "ML Instance", component "Hosting": real-time inference) for each region's
on-demand USD price per instance-hour, keeps the types SageMaker hosts (instance_types.json's endpoint
list), and writes the table with today's date as ``as_of``.

    .venv/bin/python scripts/refresh_instance_prices.py                 # the table's regions
    .venv/bin/python scripts/refresh_instance_prices.py --regions us-east-1 eu-west-1

Needs credentials allowed pricing:GetProducts (the API answers in us-east-1 for every region). A type
with no price in a region is left out of that region (recommend_instance then counts it as not offered
there); the script says which.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

DOMAIN = Path(str(resources.files("sagelift.domain")))
PRICES = DOMAIN / "instance_prices.json"
SOURCE = (
    "AWS Price List API (pricing:GetProducts, AmazonSageMaker, productFamily ML Instance, component Hosting, "
    "on-demand USD); refresh with scripts/refresh_instance_prices.py"
)


def hosting_types() -> list[str]:
    return list(json.loads((DOMAIN / "instance_types.json").read_text())["endpoint"])


def filters(region: str) -> list[dict[str, str]]:
    return [
        {"Type": "TERM_MATCH", "Field": "regionCode", "Value": region},
        {"Type": "TERM_MATCH", "Field": "productFamily", "Value": "ML Instance"},
        {"Type": "TERM_MATCH", "Field": "component", "Value": "Hosting"},
    ]


def fetch(client: Any, region: str) -> list[str]:
    """Every PriceList entry (a JSON text per product) for the region's hosting instances."""
    items: list[str] = []
    for page in client.get_paginator("get_products").paginate(
        ServiceCode="AmazonSageMaker", Filters=filters(region), FormatVersion="aws_v1"
    ):
        items.extend(page.get("PriceList") or [])
    return items


def on_demand_usd(product: Mapping[str, Any]) -> float | None:
    """The product's on-demand price per hour in USD, or None when it has none (or only a zero)."""
    for term in ((product.get("terms") or {}).get("OnDemand") or {}).values():
        for dimension in (term.get("priceDimensions") or {}).values():
            usd = (dimension.get("pricePerUnit") or {}).get("USD")
            if (
                usd is not None
                and str(dimension.get("unit", "Hrs")).lower().startswith("hr")
                and float(usd) > 0
            ):
                return float(usd)
    return None


def prices_from_price_list(items: Iterable[str], region: str) -> dict[str, float]:
    """Instance type -> USD per hour for the region's hosting products; where the list holds several
    products of one type (e.g. per operating mode), the lowest price."""
    prices: dict[str, float] = {}
    for item in items:
        product = json.loads(item) if isinstance(item, str) else item
        attributes = (product.get("product") or {}).get("attributes") or {}
        if attributes.get("regionCode") != region or attributes.get("component") != "Hosting":
            continue
        name = attributes.get("instanceName") or attributes.get("instanceType")
        price = on_demand_usd(product)
        if isinstance(name, str) and name.startswith("ml.") and price is not None:
            prices[name] = min(price, prices.get(name, price))
    return prices


def build_table(per_region: Mapping[str, Mapping[str, float]], as_of: datetime.date) -> dict[str, Any]:
    """The file's content: the hosting types only, sorted, with the date and the source."""
    known = set(hosting_types())
    return {
        "as_of": as_of.isoformat(),
        "source": SOURCE,
        "currency": "USD",
        "unit": "per instance-hour, on demand, real-time hosting",
        "regions": {
            region: {t: round(p, 4) for t, p in sorted(prices.items()) if t in known}
            for region, prices in sorted(per_region.items())
        },
    }


def missing(table: Mapping[str, Any]) -> dict[str, list[str]]:
    """Per region, the hosting types the Price List gave no price for."""
    types = hosting_types()
    return {
        region: [t for t in types if t not in prices]
        for region, prices in table["regions"].items()
        if any(t not in prices for t in types)
    }


def main(argv: list[str] | None = None, client: Any = None, today: datetime.date | None = None) -> int:
    current = json.loads(PRICES.read_text()) if PRICES.exists() else {"regions": {}}
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regions", nargs="+", default=sorted(current["regions"]) or ["us-east-1"])
    parser.add_argument("--output", type=Path, default=PRICES)
    args = parser.parse_args(argv)
    if client is None:
        import boto3

        client = boto3.client("pricing", region_name="us-east-1")
    per_region = {region: prices_from_price_list(fetch(client, region), region) for region in args.regions}
    empty = [region for region, prices in per_region.items() if not prices]
    if empty:
        print(f"No hosting prices for {', '.join(empty)}: nothing written.", file=sys.stderr)
        return 1
    table = build_table(per_region, today or datetime.datetime.now(datetime.UTC).date())
    args.output.write_text(json.dumps(table, indent=1) + "\n")
    for region, types in missing(table).items():
        print(
            f"{region}: no price for {len(types)} hosting types (not offered there?): {', '.join(types[:8])}..."
        )
    print(
        f"Wrote {args.output}: {sum(len(p) for p in table['regions'].values())} prices, as of {table['as_of']}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
