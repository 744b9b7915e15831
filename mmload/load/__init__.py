"""The load engine: MattermostUser on Locust, open-model arrivals, scenarios and the run record.

Use ``MattermostUser`` from a plain locustfile::

    from mmload.load.user import MattermostUser  # noqa: F401  (Locust picks the class up)

and run ``locust -f locustfile.py --host http://127.0.0.1:8065``; or run a scenario with
``mmload run SCENARIO --target URL``.
"""
