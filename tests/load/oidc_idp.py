"""A real OpenID Connect provider for the tests: Authlib's authorization server (the
authorization-code grant with its OpenID Connect extension, RS256 ID tokens, the UserInfo
endpoint, bearer-token protection) in a small Flask app, with its own users.

    python tests/load/oidc_idp.py --host 127.0.0.3 --port P --users users.json \
        --client-id ID --client-secret-file F --redirect-uri URI

The login page is a form like Keycloak's: its action carries the authorization request, a
hidden one-time field and the IdP's session cookie must come back with the user's name and
password. ``GET /stats`` says how many times each user signed in and how many codes were
exchanged (for the tests' assertions). Prints ``idp ready: URL`` once it listens.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import sys
import threading
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.userinfo import UserInfoEndpoint
from flask import Flask, jsonify, make_response, request
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

warnings.filterwarnings("ignore", module="authlib")  # its own deprecation notices, per request
KEY = RSAKey.generate_key(2048, parameters={"kid": "test-1", "use": "sig", "alg": "RS256"})
LOCK = threading.Lock()


@dataclass
class IdpUser:
    sub: str
    username: str
    password: str
    email: str

    def get_user_id(self) -> str:
        return self.sub


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uri: str
    client_metadata: dict[str, Any] = field(default_factory=dict)  # plain JSON userinfo

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_allowed_scope(self, scope: str) -> str:
        allowed = {"openid", "profile", "email"}
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri == self.redirect_uri

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint != "token" or method == "client_secret_post"  # as Mattermost sends it

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: IdpUser
    nonce: str | None = None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


@dataclass
class Token:
    access_token: str
    scope: str
    user: IdpUser
    client: Client
    expires_at: float

    def get_client(self) -> Client:
        return self.client

    def check_client(self, client: Any) -> bool:
        return client.get_client_id() == self.client.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return int(self.expires_at - time.time())

    def is_expired(self) -> bool:
        return time.time() > self.expires_at

    def is_revoked(self) -> bool:
        return False

    def get_user(self) -> IdpUser:
        return self.user


class State:
    """The provider's memory: users, client, codes, tokens, login pages, counters."""

    def __init__(self, users: list[IdpUser], client: Client) -> None:
        self.users = {u.username.lower(): u for u in users}
        self.client = client
        self.codes: dict[str, Code] = {}
        self.tokens: dict[str, Token] = {}
        self.pages: dict[str, str] = {}  # one-time login token -> the session cookie it needs
        self.logins: Counter[str] = Counter()
        self.exchanged = 0
        self.userinfo = 0


def user_info(user: IdpUser, scope: str) -> UserInfo:
    info = UserInfo(sub=user.sub, preferred_username=user.username)
    if "email" in scope:
        info["email"] = user.email
        info["email_verified"] = True
    return info


def build_app(state: State, issuer: str) -> Flask:
    app = Flask("mmload-test-idp")

    class CodeGrant(grants.AuthorizationCodeGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_post"]

        def save_authorization_code(self, code: str, req: Any) -> None:
            with LOCK:
                state.codes[code] = Code(
                    code, req.client.client_id, req.payload.redirect_uri, req.payload.scope,
                    req.user, req.payload.data.get("nonce"),
                )  # fmt: skip

        def query_authorization_code(self, code: str, client: Any) -> Code | None:
            found = state.codes.get(code)
            return found if found and found.client_id == client.client_id else None

        def delete_authorization_code(self, authorization_code: Code) -> None:
            with LOCK:
                state.codes.pop(authorization_code.code, None)
                state.exchanged += 1

        def authenticate_user(self, authorization_code: Code) -> IdpUser:
            return authorization_code.user

    class Oidc(OpenIDCode):
        def resolve_client_private_key(self, client: Any) -> RSAKey:
            return KEY

        def get_client_claims(self, client: Any) -> dict[str, Any]:
            return {"iss": issuer, "aud": [client.get_client_id()]}

        def get_client_algorithm(self, client: Any) -> str:
            return "RS256"

        def get_encode_header(self, client: Any) -> dict[str, str]:
            return {"alg": "RS256", "kid": "test-1"}

        def exists_nonce(self, nonce: str, req: Any) -> bool:
            return False

        def generate_user_info(self, user: IdpUser, scope: str) -> UserInfo:
            return user_info(user, scope)

    def save_token(token: dict[str, Any], req: Any) -> None:
        with LOCK:
            state.tokens[token["access_token"]] = Token(
                token["access_token"], token.get("scope", ""), req.user,
                req.client, time.time() + token.get("expires_in", 3600),
            )  # fmt: skip

    server = AuthorizationServer(
        app,
        query_client=lambda cid: state.client if cid == state.client.client_id else None,
        save_token=save_token,
    )
    server.register_grant(CodeGrant, [Oidc(require_nonce=False)])

    class Validator(BearerTokenValidator):
        def authenticate_token(self, token_string: str) -> Token | None:
            return state.tokens.get(token_string)

    protector = ResourceProtector()
    protector.register_token_validator(Validator())

    class Info(UserInfoEndpoint):
        def get_issuer(self) -> str:
            return issuer

        def generate_user_info(self, user: IdpUser, scope: str) -> UserInfo:
            with LOCK:
                state.userinfo += 1
            return user_info(user, scope)

        def resolve_private_key(self) -> RSAKey:
            return KEY

    server.register_endpoint(Info(resource_protector=protector))

    @app.get("/.well-known/openid-configuration")
    def discovery() -> Any:
        return jsonify(
            issuer=issuer,
            authorization_endpoint=f"{issuer}/authorize",
            token_endpoint=f"{issuer}/token",
            userinfo_endpoint=f"{issuer}/userinfo",
            jwks_uri=f"{issuer}/jwks",
            response_types_supported=["code"],
            subject_types_supported=["public"],
            id_token_signing_alg_values_supported=["RS256"],
            token_endpoint_auth_methods_supported=["client_secret_post"],
        )

    @app.get("/jwks")
    def jwks() -> Any:
        return jsonify(keys=[KEY.as_dict(private=False)])

    @app.get("/authorize")
    def login_page() -> Any:
        server.get_consent_grant(end_user=None)  # an invalid request fails here (no form)
        return form_page(request.query_string.decode(), error="")

    def form_page(query: str, error: str) -> Any:
        once, cookie = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        with LOCK:
            state.pages[once] = cookie
        html = (
            f"<html><body><h1>Test IdP</h1><p>{error}</p>"
            f'<form id="kc-form-login" method="post" action="/login-actions/authenticate?{query}">'
            f'<input type="hidden" name="login_token" value="{once}">'
            '<input type="text" name="username" autofocus>'
            '<input type="password" name="password">'
            '<input type="submit" value="Sign in"></form></body></html>'
        )
        resp = make_response(html)
        resp.set_cookie("IDP_SESSION", cookie, httponly=True)
        return resp

    @app.post("/login-actions/authenticate")
    def authenticate() -> Any:
        with LOCK:
            cookie = state.pages.pop(request.form.get("login_token", ""), None)
        if cookie is None or cookie != request.cookies.get("IDP_SESSION"):
            return make_response("login page expired (no session cookie or token)", 400)
        user = state.users.get(request.form.get("username", "").lower())
        if user is None or not secrets.compare_digest(
            user.password, request.form.get("password", "")
        ):
            return form_page(request.query_string.decode(), error="Invalid username or password.")
        with LOCK:
            state.logins[user.username] += 1
        return server.create_authorization_response(grant_user=user)

    @app.post("/token")
    def token() -> Any:
        return server.create_token_response()

    @app.route("/userinfo", methods=["GET", "POST"])
    def userinfo() -> Any:
        return server.create_endpoint_response("userinfo")

    @app.get("/stats")
    def stats() -> Any:
        return jsonify(
            logins=dict(state.logins), exchanged=state.exchanged, userinfo=state.userinfo
        )

    return app


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.3")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--users", required=True, help="JSON list of {username, password, email}")
    p.add_argument("--client-id", required=True)
    p.add_argument("--client-secret-file", required=True)
    p.add_argument("--redirect-uri", required=True)
    a = p.parse_args(argv)
    raw = json.loads(Path(a.users).read_text())
    users = [IdpUser(f"sub-{i:04d}-{secrets.token_hex(4)}", **u) for i, u in enumerate(raw)]
    secret = Path(a.client_secret_file).read_text().strip()
    issuer = f"http://{a.host}:{a.port}"
    state = State(users, Client(a.client_id, secret, a.redirect_uri))
    server = make_server(a.host, a.port, build_app(state, issuer), threaded=True)
    print(f"idp ready: {issuer}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
