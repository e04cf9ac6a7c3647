"""The bottom floor: plain value types every layer may name (no SQL, no graph, no Prefect).

Keys, errors, time conventions, the vocabulary of reasons/actions/outcomes, asset specs,
observations, the state snapshot, plan items and materialization records.
"""
