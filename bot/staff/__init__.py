"""The staff side: the dashboard blueprint (views), accounts, decisions, audit log, exports and jobs."""
