"""load-test-ng's scheduled-post and channel-bookmark actions (``scheduled_posts.go``,
``bookmarks.go`` of ``loadtest/control/simulcontroller/``).

As in ltng, an action with nothing to act on (no scheduled post, no bookmark, no licence for
bookmarks — the web app shows them only on a licensed server) sends nothing. Written as a mixin
of :class:`~mmload.load.user.MattermostUser`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from mmload.load.user.client import ApiClient, json_or_none
from mmload.load.user.session import SessionStore

SCHEDULED_REPLY_SHARE = 0.25  # ltng createScheduledPost
DAY_MS = 86_400_000
KEPT = 20  # scheduled posts, bookmarks per channel remembered


def future_ms(rng: random.Random) -> int:
    """ltng's ``RandomFutureTime(2 days, 10 days)``."""
    return int(time.time() * 1000) + rng.randint(2 * DAY_MS, 10 * DAY_MS)


class PlannedHandlers:
    """Scheduled posts and bookmarks (see the module docstring)."""

    http: ApiClient
    session: SessionStore
    rng: random.Random

    # provided by ActionHandlers / MoreHandlers
    typing: Callable[..., None]
    compose: Callable[[str], str]
    _root_in_channel: Callable[[float], str]

    # ---- scheduled posts ------------------------------------------------------------------
    def _scheduled_body(self, message: str) -> dict[str, Any]:
        s = self.session
        return {
            "channel_id": s.channel_id,
            "root_id": self._root_in_channel(SCHEDULED_REPLY_SHARE),
            "message": message,
            "scheduled_at": future_ms(self.rng),
        }

    def create_scheduled_post(self) -> None:
        """CreateScheduledPost: typing, then a post scheduled 2-10 days ahead."""
        s = self.session
        if not s.channel_id:
            return
        self.typing(s.channel_id)
        body = self._scheduled_body(self.compose(s.channel_id))
        post = json_or_none(
            self.http.request("POST", "/posts/schedule", "/posts/schedule", json=body)
        )
        if isinstance(post, dict) and post.get("id"):
            s.scheduled = [post["id"], *s.scheduled][:KEPT]

    def update_scheduled_post(self) -> None:
        """UpdateScheduledPost: a new message and time for one of them."""
        s = self.session
        if not s.scheduled or not s.channel_id:
            return
        sid = self.rng.choice(s.scheduled)
        body = {"id": sid, **self._scheduled_body(self.compose(s.channel_id))}
        resp = self.http.request(
            "PUT", f"/posts/schedule/{sid}", "/posts/schedule/{scheduled_post_id}", json=body
        )
        if resp.status_code == 404:  # its channel was another one: the server refused it
            s.scheduled.remove(sid)

    def delete_scheduled_post(self) -> None:
        """DeleteScheduledPost."""
        s = self.session
        if s.scheduled:
            sid = s.scheduled.pop(self.rng.randrange(len(s.scheduled)))
            self.http.request(
                "DELETE", f"/posts/schedule/{sid}", "/posts/schedule/{scheduled_post_id}"
            )

    def send_scheduled_post(self) -> None:
        """SendScheduledPost: send one now — the post, then the scheduled one deleted."""
        s = self.session
        if not s.scheduled or not s.channel_id:
            return
        sid = s.scheduled.pop(self.rng.randrange(len(s.scheduled)))
        body = {"channel_id": s.channel_id, "message": self.compose(s.channel_id)}
        post = json_or_none(self.http.request("POST", "/posts", "/posts", json=body))
        if isinstance(post, dict) and post.get("id"):
            s.remember_own_post(post)
        self.http.request("DELETE", f"/posts/schedule/{sid}", "/posts/schedule/{scheduled_post_id}")

    # ---- channel bookmarks (licensed servers only, as the web app shows them) --------------
    def _bookmarks(self) -> tuple[str, list[str]] | None:
        s = self.session
        if not s.licensed or not s.channel_id:
            return None
        return s.channel_id, s.bookmarks.setdefault(s.channel_id, [])

    def add_channel_bookmark(self) -> None:
        """AddChannelBookmark: a link bookmark in the channel on screen."""
        here = self._bookmarks()
        if here is None:
            return
        channel, marks = here
        n = self.rng.randrange(10_000)
        mark = json_or_none(
            self.http.request(
                "POST",
                f"/channels/{channel}/bookmarks",
                "/channels/{channel_id}/bookmarks",
                json={
                    "channel_id": channel,
                    "display_name": f"link {n}",
                    "link_url": f"https://example.com/{n}",
                    "type": "link",
                },
            )
        )
        if isinstance(mark, dict) and mark.get("id"):
            marks.insert(0, mark["id"])
            del marks[KEPT:]

    def update_or_add_channel_bookmark(self) -> None:
        """UpdateOrAddChannelBookark (ltng's name): rename one, or add one when there is none."""
        here = self._bookmarks()
        if here is None:
            return
        channel, marks = here
        if not marks:
            return self.add_channel_bookmark()
        self.http.request(
            "PATCH",
            f"/channels/{channel}/bookmarks/{self.rng.choice(marks)}",
            "/channels/{channel_id}/bookmarks/{bookmark_id}",
            json={"display_name": f"link {self.rng.randrange(10_000)}"},
        )

    def sort_channel_bookmark(self) -> None:
        """UpdateChannelBookarkSortOrder: move one bookmark to another place."""
        here = self._bookmarks()
        if here is None or len(here[1]) < 2:
            return
        channel, marks = here
        self.http.request(
            "POST",
            f"/channels/{channel}/bookmarks/{self.rng.choice(marks)}/sort_order",
            "/channels/{channel_id}/bookmarks/{bookmark_id}/sort_order",
            json=self.rng.randrange(len(marks)),
        )

    def delete_channel_bookmark(self) -> None:
        """DeleteChannelBookark."""
        here = self._bookmarks()
        if here is None or not here[1]:
            return
        channel, marks = here
        mark = marks.pop(self.rng.randrange(len(marks)))
        self.http.request(
            "DELETE",
            f"/channels/{channel}/bookmarks/{mark}",
            "/channels/{channel_id}/bookmarks/{bookmark_id}",
        )
