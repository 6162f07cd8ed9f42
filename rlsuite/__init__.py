"""Shared plumbing for the policy-gradient benchmark suite.

Everything here is algorithm-agnostic: environment factories, seeding, the
benchmark protocol's files (CSV, JSON, model), greedy evaluation, video, the
command line and the return/advantage estimators every algorithm shares.
No module in this package imports an algorithm file.
"""
