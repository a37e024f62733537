"""Behind a reverse proxy: believe ``X-Forwarded-For``/``-Proto``/``-Host`` only from ``trusted_proxies``.

The client's address is the right-most ``X-Forwarded-For`` hop that is not itself a trusted proxy, so a
client cannot pick the address its rate limit counts against by sending the header itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from ipaddress import ip_address, ip_network
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class TrustedProxies:
    def __init__(self, app: WsgiApp, proxies: Iterable[str]) -> None:
        self._app = app
        self._networks = [ip_network(proxy, strict=False) for proxy in proxies]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self._networks and self._trusted(environ.get("REMOTE_ADDR", "")):
            hops = [hop.strip() for hop in environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
            for hop in reversed(hops):
                environ["REMOTE_ADDR"] = hop
                if not self._trusted(hop):
                    break
            proto = environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[-1].strip().lower()
            if proto in ("http", "https"):
                environ["wsgi.url_scheme"] = proto
            host = environ.get("HTTP_X_FORWARDED_HOST", "").split(",")[-1].strip()
            if host:
                environ["HTTP_HOST"] = host
        return self._app(environ, start_response)

    def _trusted(self, address: str) -> bool:
        try:
            parsed = ip_address(address.strip("[]"))
        except ValueError:
            return False
        return any(parsed in network for network in self._networks)
