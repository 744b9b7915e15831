"""How a login authenticates a user, by its auth service, as ``app/authentication.go`` does.

- ``auth_service ""`` (email/username): ``CheckPasswordAndAllCriteria`` — failed attempts, the
  password hash at the profile's cost (mutex included), then the MFA code;
- ``ldap``: ``checkLdapUserPasswordAndAllCriteria`` — the directory's bind (a plain comparison
  here: no hash cost and no login mutex on the Mattermost node), then the MFA code. The server
  reads ``ldap_only`` from the body but decides by the user's auth service; the simulator does
  the same and counts what the body said (``mmload_sim_logins_by_method{ldap_only}``);
- any other service (``openid``): 400 ``api.user.login.use_auth_service.app_error``: such users
  sign in through their IdP (:mod:`mmload.sim.openid`).

MFA (``CheckUserMfa``): no code → 401 ``mfa.validate_token.authenticate.app_error`` (the web
app's cue for its MFA screen; not a failed attempt); a wrong code → 401
``api.user.check_user_mfa.bad_code.app_error``. Codes are RFC 6238 TOTP of the user's secret,
accepted one 30 s step either side (the server's window of 3).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

import pyotp

from mmload.sim.errors import ApiError
from mmload.sim.population import User

MFA_REQUIRED = "mfa.validate_token.authenticate.app_error"
MFA_BAD_CODE = "api.user.check_user_mfa.bad_code.app_error"
LDAP_INVALID = "ent.ldap.do_login.invalid_password.app_error"
USE_AUTH_SERVICE = "api.user.login.use_auth_service.app_error"
INVALID_CREDENTIALS = "api.user.login.invalid_credentials_email_username"

PasswordCheck = Callable[[User, str], Awaitable[bool]]


async def authenticate(user: User, password: str, token: str, check: PasswordCheck) -> str:
    """Authenticate ``user`` (raises ApiError); returns the method: ``ldap`` or ``password``."""
    if user.auth_service == "ldap":
        if not hmac.compare_digest((user.password or "").encode(), password.encode()):
            raise ApiError(401, LDAP_INVALID, "Invalid username or password.")
        check_mfa(user, token)
        return "ldap"
    if user.auth_service:
        raise ApiError(
            400,
            USE_AUTH_SERVICE,
            f"Please sign in using {user.auth_service}.",
            f"auth_service={user.auth_service}",
        )
    if not await check(user, password):
        raise ApiError(401, INVALID_CREDENTIALS, "Enter a valid email or username and/or password.")
    check_mfa(user, token)
    return "password"


def check_mfa(user: User, token: str) -> None:
    """``CheckUserMfa``: nothing to check without a secret."""
    if not user.mfa_secret:
        return
    code = token.strip()
    if not code:
        raise ApiError(401, MFA_REQUIRED, "Invalid or missing MFA token.")
    if not pyotp.TOTP(user.mfa_secret).verify(code, valid_window=1):
        raise ApiError(401, MFA_BAD_CODE, "Invalid MFA token.")
