"""A deployed endpoint: the client, the smoke test, batch scoring, metrics, dashboard data."""
