"""Operator extra links to the AWS consoles and the KFP UI."""
