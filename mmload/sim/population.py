"""The deterministic test population shared by `mmload seed` and `mmload sim`.

One generator, one rule (also in docs/simulator.md):

- user i (1-based): username ``user-i``, email ``user-i@example.com``, the spec's password;
- user i belongs to team ``(i-1) % teams`` (round-robin), at position ``p = (i-1) // teams``;
- a team has ``channels_per_team`` open channels: ``town-square``, ``off-topic``, then
  ``channel-3`` .. ``channel-C``;
- every team member is in town-square and off-topic, plus ``channels_joined`` of the other
  channels: channel ``2 + (p + j) % (C - 2)`` for j in 0 .. min(channels_joined, C-2)-1;
- each channel gets ``posts_per_channel`` seed posts by its members, round-robin.

Ids are :func:`mmload.sim.ids.seeded_id` of (seed, kind, number), so the same flags always build
the same population, in the simulator and in the bulk-import file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from mmload.config.credentials import Credential
from mmload.config.sim import PopulationSpec
from mmload.sim.ids import seeded_id

EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: create_at of every seeded object
DEFAULT_CHANNELS = ("town-square", "off-topic")
DEFAULT_DISPLAY = {"town-square": "Town Square", "off-topic": "Off-Topic"}


def username_from(text: str) -> str:
    """A valid Mattermost username from ``text``: lowercase ``a-z 0-9 . - _``, a letter
    first, at most 64 characters."""
    name = re.sub(r"[^a-z0-9._-]", "-", text.lower())[:63]
    return name if name[:1].isalpha() else f"u{name}"[:64]


@dataclass(slots=True)
class User:
    """A seeded user (``number`` is 1-based)."""

    number: int
    id: str
    username: str
    email: str
    team: int
    position: int
    auth_service: str = ""  # "" (email/username), "ldap" or "openid" (--accounts)
    auth_data: str = ""  # the IdP's subject of an OpenID user, once it signed in
    mfa_secret: str = ""  # base32 TOTP secret: MFA active
    password: str | None = None  # its own password (--accounts); None: the population's

    @property
    def first_name(self) -> str:
        return "User"

    @property
    def last_name(self) -> str:
        return str(self.number)


@dataclass(slots=True)
class Team:
    """A seeded team (``index`` 0-based)."""

    index: int
    id: str
    name: str
    display_name: str
    channels: list[Channel] = field(default_factory=list)
    member_numbers: range = range(0)


@dataclass(slots=True)
class Channel:
    """An open channel of a team, or a direct channel (team -1, type ``D``)."""

    id: str
    team: int
    index: int
    name: str
    display_name: str
    type: str
    creator_id: str
    members: list[int]  # user numbers
    create_at: int = EPOCH_MS


@dataclass(slots=True)
class SeedPost:
    """A seeded post."""

    id: str
    channel_id: str
    user_number: int
    message: str
    create_at: int


class Population:
    """Users, teams, channels and memberships built from a :class:`PopulationSpec`."""

    def __init__(self, spec: PopulationSpec):
        self.spec = spec
        self.users: list[User] = []  # index = number - 1
        self.teams: list[Team] = []
        self.channels: dict[str, Channel] = {}
        self.by_id: dict[str, User] = {}
        self._by_login: dict[str, User] | None = None
        self._build_teams()
        self._build_users()
        self._build_channels()

    # -- construction -----------------------------------------------------------------------
    def _build_teams(self) -> None:
        s = self.spec
        for t in range(s.teams):
            name = f"team-{t + 1}"
            self.teams.append(Team(t, seeded_id(s.seed, "team", t), name, f"Team {t + 1}"))

    def _build_users(self) -> None:
        s = self.spec
        prefix, domain, n_teams = s.username_prefix, s.email_domain, s.teams
        for i in range(1, s.users + 1):
            uid = seeded_id(s.seed, "user", i)
            username = f"{prefix}{i}"
            user = User(
                i, uid, username, f"{username}@{domain}", (i - 1) % n_teams, (i - 1) // n_teams
            )
            self.users.append(user)
            self.by_id[uid] = user
        for team in self.teams:
            team.member_numbers = range(team.index + 1, s.users + 1, n_teams)

    def _build_channels(self) -> None:
        s = self.spec
        extra = s.channels_per_team - len(DEFAULT_CHANNELS)
        joined = min(s.channels_joined, extra)
        for team in self.teams:
            members = list(team.member_numbers)
            first = self.users[members[0] - 1].id if members else ""
            extra_members: list[list[int]] = [[] for _ in range(extra)]
            for p, number in enumerate(members):
                for j in range(joined):
                    extra_members[(p + j) % extra].append(number)
            for k in range(s.channels_per_team):
                if k < len(DEFAULT_CHANNELS):
                    name = DEFAULT_CHANNELS[k]
                    display, chan_members = DEFAULT_DISPLAY[name], members
                else:
                    name, display = f"channel-{k + 1}", f"Channel {k + 1}"
                    chan_members = extra_members[k - len(DEFAULT_CHANNELS)]
                cid = seeded_id(s.seed, "channel", f"{team.index}:{k}")
                channel = Channel(cid, team.index, k, name, display, "O", first, chan_members)
                team.channels.append(channel)
                self.channels[cid] = channel

    def apply_accounts(self, accounts: list[Credential]) -> None:
        """``mmload sim --accounts``: user k takes credential k's login id (an email, or a
        username whose email is ``<it>@<domain>``), password, auth service (``ldap``,
        ``openid``) and TOTP secret; teams and channels stay the seeded users'."""
        taken = {u.username for u in self.users[len(accounts) :]}
        for user, cred in zip(self.users, accounts, strict=False):
            login = cred.login_id.strip().lower()
            if "@" in login:
                user.email, base = login, username_from(login.split("@", 1)[0])
            else:
                user.email, base = f"{username_from(login)}@{self.spec.email_domain}", login
            user.username = base if base not in taken else f"{base}-{user.number}"
            taken.add(user.username)
            user.password = cred.password
            user.auth_service = {"ldap": "ldap", "openid": "openid"}.get(cred.method, "")
            user.mfa_secret = cred.totp_secret or ""
        self._by_login = None

    # -- queries ----------------------------------------------------------------------------
    def user(self, number: int) -> User:
        """User ``number`` (1-based)."""
        return self.users[number - 1]

    def find_login(self, login_id: str) -> User | None:
        """The user whose username or email is ``login_id`` (case-insensitive)."""
        if self._by_login is None:
            index: dict[str, User] = {}
            for u in self.users:
                index[u.username] = u
                index[u.email] = u
            self._by_login = index
        return self._by_login.get(login_id.strip().lower())

    def is_member(self, user: User, channel: Channel) -> bool:
        """Whether ``user`` is a member of ``channel``, by the membership rule (O(1))."""
        if channel.type != "O":
            return user.number in channel.members
        if channel.team != user.team:
            return False
        if channel.index < len(DEFAULT_CHANNELS):
            return True
        extra = self.spec.channels_per_team - len(DEFAULT_CHANNELS)
        joined = min(self.spec.channels_joined, extra)
        return (channel.index - len(DEFAULT_CHANNELS) - user.position) % extra < joined

    def channels_of(self, user: User) -> list[Channel]:
        """The open channels of ``user``'s team that ``user`` belongs to, in channel order."""
        return [c for c in self.teams[user.team].channels if self.is_member(user, c)]

    def seed_posts(self) -> Iterator[SeedPost]:
        """The seeded posts, channel by channel, oldest first."""
        s = self.spec
        for team in self.teams:
            for channel in team.channels:
                if not channel.members:
                    continue
                for n in range(s.posts_per_channel):
                    author = channel.members[(channel.index + n) % len(channel.members)]
                    yield SeedPost(
                        id=seeded_id(s.seed, "post", f"{team.index}:{channel.index}:{n}"),
                        channel_id=channel.id,
                        user_number=author,
                        message=f"Seed post {n + 1} in {channel.display_name} of "
                        f"{team.display_name}",
                        create_at=EPOCH_MS + 60_000 * (n + 1) + channel.index,
                    )
