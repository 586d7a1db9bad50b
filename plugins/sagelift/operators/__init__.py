"""Thin Airflow operators: start work, defer or wait, interpret the outcome. Logic lives in domain/."""
