"""Read-only views for people: status rows, `why`, plan/run reports, the lineage graph.

Plain data and text (rows, markdown, Mermaid/dot/HTML): the CLI and the flows show them.
"""
