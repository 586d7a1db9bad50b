"""Triggers: asynchronous waits that carry only identifiers and connection ids."""
