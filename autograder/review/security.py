"""The review app's guards: a secret token, a CSRF check, strict response headers.

- The server prints ``http://127.0.0.1:PORT/?token=...`` (a fresh random token per start, as
  Jupyter does). Opening it sets an ``HttpOnly``, ``SameSite=Strict`` cookie holding an HMAC of
  the token and redirects to the same page without the token (so it leaves the address bar and
  the history). Every page needs that cookie or the token; only ``/static/`` is public.
- Every state-changing request is a ``POST`` that must carry the CSRF field (another HMAC of the
  token, embedded in the app's own forms) and, when the browser sends them, an ``Origin`` equal
  to the app's and a ``Sec-Fetch-Site`` that is not ``cross-site``.
- Every response carries a Content-Security-Policy that allows scripts, styles, fonts and
  images from the app itself only (no inline script, no ``eval``, no plugin, no frame, forms
  only to itself), ``X-Content-Type-Options: nosniff``, ``Cache-Control: no-store`` and
  ``Referrer-Policy: same-origin`` (no address leaves the app; a stricter ``no-referrer`` would
  make browsers send ``Origin: null`` with the app's own forms).
- The ``Host`` header must name this machine (127.0.0.1, localhost or the bound address), which
  stops DNS-rebinding pages from talking to the app.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from urllib.parse import urlencode

from starlette.datastructures import URL, MutableHeaders, QueryParams
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

AUTH_COOKIE = "review_auth"
CSRF_FIELD = "csrf"
PUBLIC_PREFIXES = ("/static/",)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
"""The app's Content-Security-Policy."""
DOCUMENT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
)
"""For the kit's self-contained HTML files (report, feedback): their inline CSS, nothing else."""

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


class Guard:
    """The secrets derived from one server token."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.cookie = self._mac("auth")
        self.csrf = self._mac("csrf")

    def _mac(self, purpose: str) -> str:
        return hmac.new(self.token.encode(), purpose.encode(), hashlib.sha256).hexdigest()

    def token_ok(self, value: str | None) -> bool:
        return value is not None and hmac.compare_digest(value.encode(), self.token.encode())

    def cookie_ok(self, value: str | None) -> bool:
        return value is not None and hmac.compare_digest(value.encode(), self.cookie.encode())

    def csrf_ok(self, value: object) -> bool:
        return isinstance(value, str) and hmac.compare_digest(value.encode(), self.csrf.encode())

    def origin_ok(self, headers: Mapping[str, str], url: URL) -> bool:
        """Is a state-changing request same-origin, as far as the browser tells?"""
        site = headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return False
        origin = headers.get("origin")
        if origin is None:  # not a browser, or one that sends neither: the CSRF field decides
            return True
        return origin == f"{url.scheme}://{url.netloc}"


class GuardMiddleware:
    """ASGI middleware: authentication by token or cookie, and the security headers."""

    def __init__(self, app: ASGIApp, *, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        url = URL(scope=scope)
        cookies = _cookies(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("Content-Security-Policy", CSP)
            await send(message)

        query = QueryParams(scope.get("query_string", b""))
        token = query.get("token")
        if token is not None:
            if not self.guard.token_ok(token):
                response: Response = PlainTextResponse(
                    "wrong token: open the URL the server printed", 403
                )
                await response(scope, receive, send_with_headers)
                return
            rest = [(k, v) for k, v in query.multi_items() if k != "token"]
            target = url.path + (f"?{urlencode(rest)}" if rest else "")
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(
                AUTH_COOKIE, self.guard.cookie, httponly=True, samesite="strict", path="/"
            )
            await response(scope, receive, send_with_headers)
            return
        public = url.path.startswith(PUBLIC_PREFIXES) and scope["method"] in ("GET", "HEAD")
        if not public and not self.guard.cookie_ok(cookies.get(AUTH_COOKIE)):
            response = PlainTextResponse(
                "not signed in: open the URL with the token that `python -m autograder review` "
                "printed",
                403,
            )
            await response(scope, receive, send_with_headers)
            return
        if scope["method"] not in ("GET", "HEAD") and not self.guard.origin_ok(
            _headers(scope), url
        ):
            response = PlainTextResponse("cross-site request refused", 403)
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _cookies(scope: Scope) -> dict[str, str]:
    from starlette.requests import cookie_parser

    return cookie_parser(_headers(scope).get("cookie", ""))
