"""The IdP's login form as a browser fills it in: the first ``<form>`` with a password field,
its action (resolved against the page's URL) and method, its hidden fields and the names of its
user and password inputs. Plain HTML parsing (no Locust), used by
:mod:`mmload.load.user.login`."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin


class LoginForm(HTMLParser):
    """The IdP's login form: the first ``<form>`` with a password field, its action, method,
    hidden fields and the names of its user and password inputs."""

    def __init__(self, page_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page_url = page_url
        self.action = page_url
        self.method = "POST"
        self.hidden: dict[str, str] = {}
        self.user_field: str | None = None
        self.password_field: str | None = None
        self._in_form = False
        self._done = False

    @classmethod
    def parse(cls, html: str, page_url: str) -> LoginForm:
        form = cls(page_url)
        form.feed(html)
        form.close()
        return form

    @property
    def ok(self) -> bool:
        return bool(self.user_field and self.password_field)

    def filled(self, login_id: str, password: str) -> dict[str, str]:
        """The form's fields with the user's login id and password."""
        assert self.user_field and self.password_field
        return {**self.hidden, self.user_field: login_id, self.password_field: password}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if self._done:
            return
        if tag == "form":
            self._in_form = True
            self.hidden, self.user_field, self.password_field = {}, None, None
            self.action = urljoin(self.page_url, a.get("action") or self.page_url)
            self.method = (a.get("method") or "GET").upper()
        elif tag == "input" and self._in_form and a.get("name"):
            kind = (a.get("type") or "text").lower()
            if kind == "hidden":
                self.hidden[a["name"]] = a.get("value", "")
            elif kind == "password" and not self.password_field:
                self.password_field = a["name"]
            elif kind in ("text", "email") and not self.user_field:
                self.user_field = a["name"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._in_form:
            self._in_form = False
            self._done = self.ok
