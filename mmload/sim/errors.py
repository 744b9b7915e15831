"""Mattermost's error JSON as exceptions: raised by handlers, rendered by the app."""

from __future__ import annotations


class ApiError(Exception):
    """Raised by handlers; rendered as Mattermost's error JSON."""

    def __init__(self, status: int, error_id: str, message: str, detailed: str = ""):
        super().__init__(message)
        self.status, self.error_id, self.message, self.detailed = (
            status,
            error_id,
            message,
            detailed,
        )


def bad_param(name: str) -> ApiError:
    return ApiError(
        400,
        "api.context.invalid_url_param.app_error",
        f"Invalid or missing {name} parameter in request URL.",
    )


def bad_body(name: str) -> ApiError:
    return ApiError(
        400,
        "api.context.invalid_body_param.app_error",
        f"Invalid or missing {name} in request body.",
    )


def forbidden() -> ApiError:
    return ApiError(
        403, "api.context.permissions.app_error", "You do not have the appropriate permissions."
    )


def query_token_refused() -> ApiError:
    return ApiError(
        401,
        "api.context.token_provided.app_error",
        "Session is not OAuth but token was provided in the query string.",
    )


def session_expired(detail: str = "") -> ApiError:
    return ApiError(
        401,
        "api.context.session_expired.app_error",
        "Invalid or expired session, please login again.",
        detail,
    )
