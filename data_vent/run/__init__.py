"""Running a plan: the workspace (settings, specs, graph, engine) and one asset under its
lease, with its attempt recorded. Plain code: the Prefect flows wrap it, tests call it."""
