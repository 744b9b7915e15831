"""Both limiters of ``RateLimitSettings.Enable``: the global per-client limiter around every
route (10/s, burst 100 by default) and the login limiter (5/s, burst 10), each keyed as the
server keys it. Clients come from different loopback source addresses (127.0.0.2, 127.0.0.3…)
so the test sees which addresses were limited; the v11 profiles' first-login re-hash."""

from __future__ import annotations

import http.client
import json

from mmload.config.sim import NAMED_PROFILES, GlobalRateLimit, Profile, RateLimit
from mmload.sim.server import start_in_thread
from tests.sim.conftest import small_settings

PASSWORD = "Loadtest-1!"


def request_from(
    source: str, url: str, method: str, path: str, body: object = None, headers=None
) -> http.client.HTTPResponse:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10, source_address=(source, 0))
    data = json.dumps(body) if body is not None else None
    conn.request(method, path, body=data, headers=headers or {})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def settings_with(profile: Profile, **overrides: object):
    s = small_settings(**overrides)
    return s.model_copy(update={"profile": profile})


def test_global_limiter_keys_by_client_address_and_records_who_was_limited() -> None:
    profile = Profile(global_rate_limit=GlobalRateLimit(per_sec=0.5, max_burst=4))
    with start_in_thread(settings_with(profile)) as sim:
        codes = [
            request_from("127.0.0.2", sim.url, "GET", "/api/v4/system/ping").status
            for _ in range(7)
        ]
        other = request_from("127.0.0.3", sim.url, "GET", "/api/v4/system/ping")
        refused = request_from("127.0.0.2", sim.url, "GET", "/api/v4/no/such/path")
        limiter = sim.sim.global_limiter
        limited = sim.call(lambda: dict(limiter.limited_keys))
        allowed = sim.call(lambda: dict(limiter.allowed_keys))
        metrics = request_from("127.0.0.4", sim.metrics_url.split("/metrics")[0], "GET", "/metrics")
    assert codes == [200] * 5 + [429] * 2  # burst + 1 pass at once
    assert other.status == 200  # another client address has its own bucket
    assert refused.status == 429  # every route, unknown ones included
    assert limited == {"127.0.0.2": 3}
    assert allowed == {"127.0.0.2": 5, "127.0.0.3": 1}
    assert metrics.status == 200  # the metrics listener is not behind the API limiter


def test_global_limiter_trusts_a_proxy_header_only_when_configured() -> None:
    profile = Profile(global_rate_limit=GlobalRateLimit(per_sec=0.5, max_burst=0))
    fwd = {"X-Forwarded-For": "10.1.2.3, 127.0.0.9"}
    with start_in_thread(settings_with(profile)) as sim:
        first = request_from("127.0.0.2", sim.url, "GET", "/api/v4/system/ping", headers=fwd)
        second = request_from("127.0.0.2", sim.url, "GET", "/api/v4/system/ping", headers=fwd)
        plain = sim.call(lambda: dict(sim.sim.global_limiter.limited_keys))
    assert (first.status, second.status) == (200, 429) and plain == {"127.0.0.2": 1}
    trusting = Profile(
        global_rate_limit=GlobalRateLimit(
            per_sec=0.5, max_burst=0, trusted_proxy_ip_header=["X-Forwarded-For"]
        )
    )
    with start_in_thread(settings_with(trusting)) as sim:
        for _ in range(2):
            request_from("127.0.0.2", sim.url, "GET", "/api/v4/system/ping", headers=fwd)
        keys = sim.call(lambda: dict(sim.sim.global_limiter.limited_keys))
    assert keys == {"10.1.2.3": 1}


def test_login_passes_both_limiters_and_carries_both_headers() -> None:
    profile = Profile(
        login_rate_limit=RateLimit(per_sec=0.5, burst=1),
        global_rate_limit=GlobalRateLimit(per_sec=100, max_burst=100),
    )
    body = {"login_id": "user-1", "password": PASSWORD}
    with start_in_thread(settings_with(profile)) as sim:
        answers = [
            request_from("127.0.0.2", sim.url, "POST", "/api/v4/users/login", body)
            for _ in range(3)
        ]
        elsewhere = request_from("127.0.0.3", sim.url, "POST", "/api/v4/users/login", body)
        login_keys = sim.call(lambda: dict(sim.sim.limiter.limited_keys))
    assert [a.status for a in answers] == [200, 200, 429]
    assert elsewhere.status == 200
    assert login_keys == {"127.0.0.2": 1}
    limits = answers[0].headers.get_all("X-RateLimit-Limit")
    assert sorted(limits) == ["101", "2"]  # the global (burst 100) and the login (burst 1)


def test_v11_profiles_rehash_a_bcrypt_users_first_login() -> None:
    profile = NAMED_PROFILES["v11.9"].model_copy(
        update={"login_rate_limit": None, "global_rate_limit": None}
    )
    body = {"login_id": "user-5", "password": PASSWORD}
    with start_in_thread(settings_with(profile)) as sim:
        for _ in range(2):
            login = request_from("127.0.0.2", sim.url, "POST", "/api/v4/users/login", body)
            assert login.status == 200
        rehashed = sim.call(lambda: set(sim.sim.passwords.rehashed))
        written = sim.call(lambda: dict(sim.sim.core.store.passwords))
        formats = sim.call(lambda: sim.sim.passwords.stored_formats())
    assert rehashed == {5}
    assert written[5].startswith("$pbkdf2$f=SHA256,w=600000,l=32$")  # written back once
    assert formats["bcrypt"].startswith("$2a$10$")  # what the user had before v11
