"""``MattermostUser``: a Locust user that behaves like the Mattermost web app.

Login the way the web app does (client config and license, login, roles, me, preferences, teams,
team members, teams unread, the current team's channels and channel members, view channel), then
the WebSocket (``authentication_challenge``, ``hello``, a ping every 30 s, the web client's
reconnect backoff), then the action mix of Mattermost's load-test tool with its idle time.
Request names are endpoint templates (``GET /api/v4/channels/{channel_id}/posts``).

A user is three parts:

- ``user.http`` (:class:`~mmload.load.user.client.ApiClient`): the HTTP client — named,
  recorded requests with the web app's headers and session cookies;
- ``user.session`` (:class:`~mmload.load.user.session.SessionStore`): what the user knows —
  token, CSRF, cookie header, ``me``, team, channels, posts and users seen;
- its behaviour: :class:`~mmload.load.user.flows.ArrivalFlow` (scheduled login, initial load,
  WebSocket, reconnect and reload) and :class:`~mmload.load.user.handlers.ActionHandlers` (one
  method per action of ``actions.yaml``).

Use it from a plain locustfile (Locust picks up the imported class)::

    from mmload.load.user import MattermostUser  # noqa: F401

    # or extend it:
    class MyUser(MattermostUser):
        @task
        def ping(self):
            self.api("GET", "/system/ping", "/system/ping")

then ``locust -f locustfile.py --host http://127.0.0.1:8065``. Without an mmload plan, users
log in as ``user-1``, ``user-2``… as they spawn and run the default action mix. Under
``mmload run`` the run context (:mod:`mmload.load.context`) gives each user its plan: its
scheduled login time (open model) and the scenario.

Useful pieces for subclasses: ``api(method, path, template)`` (one named, recorded request),
``get_json``, ``logged_in``, ``user_id``, ``team_id``, ``channel_id``, ``channels`` (all kept in
``session``), ``ws`` (``MMWebSocket``), ``ctx`` (the run context) and every action handler.
"""

from mmload.load.user.flows import LoginFailed
from mmload.load.user.mattermost import MattermostUser

__all__ = ["LoginFailed", "MattermostUser"]


def _refresh_gevent_clock() -> None:
    """Locust creates gevent's hub when Locust is imported, then imports the locustfile; libev's
    cached loop time lags by however long that import took (seconds on a busy machine, mostly
    pydantic and Locust itself), and a timer started next — ``locust --run-time`` — fires that
    much early. Importing this package refreshes the loop's time."""
    import gevent

    gevent.get_hub().loop.update_now()


_refresh_gevent_clock()


def _untracked_greenlets() -> None:
    """Users spawn greenlets all the time (a group per web-app phase) and keep four each
    (theirs, the WebSocket's reader and pinger, the polls): gevent's spawn-tree tracking, a
    debugging aid, captures each one's spawning stack (frames, a parent reference, shared
    locals). Off, as gevent documents, for speed and memory."""
    import gevent

    gevent.config.track_greenlet_tree = False


_untracked_greenlets()
