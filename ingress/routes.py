"""Host name -> web function, as the scheduler's route table says."""

from __future__ import annotations

from dataclasses import dataclass

from protos import stoker_pb2 as pb


@dataclass(frozen=True)
class Route:
    function_id: str
    requires_proxy_auth: bool
    workspace: str = ""
    method_name: str = ""  # the class's web method; the container serves it by this name


class RouteTable:
    def __init__(self, table: pb.RouteTable | None = None) -> None:
        self.exact: dict[str, Route] = {}
        self.wildcard: dict[str, Route] = {}  # "example.com" for "*.example.com"
        for r in table.routes if table is not None else ():
            route = Route(r.function_id, r.requires_proxy_auth, r.workspace, r.method_name)
            for host in r.hosts:
                if host.startswith("*."):
                    self.wildcard[host[2:]] = route
                else:
                    self.exact[host] = route

    def match(self, host: str) -> Route | None:
        """The route for a Host header value (port and case ignored); exact names win."""
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.lower().rstrip(".")
        route = self.exact.get(name)
        if route is None and self.wildcard:
            _, _, parent = name.partition(".")
            route = self.wildcard.get(parent)
        return route
