"""The ``kubernetes`` target: a Deployment (or a KServe InferenceService) on the user's cluster.

``settings`` (the profile's keys) and ``manifests`` (the exact objects applied, as plain
dicts) load no SDK; only the target's client layer imports the ``kubernetes`` client.
"""
