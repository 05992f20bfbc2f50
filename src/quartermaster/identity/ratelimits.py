"""The login rate limits, shared by the API's login and the back office's."""

from __future__ import annotations

from django.conf import settings

from quartermaster.core import ratelimit


def login_limits() -> tuple[ratelimit.Limit, ratelimit.Limit]:
    """(failures per username, failures per client address), from settings at call time."""
    window_s = settings.LOGIN_FAILURE_WINDOW_S
    return (
        ratelimit.Limit("login-user", settings.LOGIN_FAILURES_PER_USERNAME, window_s),
        ratelimit.Limit("login-ip", settings.LOGIN_FAILURES_PER_IP, window_s),
    )
