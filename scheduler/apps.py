"""Deploying, serving, stopping and listing apps: validation, URLs, storage, activation."""

from __future__ import annotations

import hashlib
import re
import time
import uuid

import grpc

from protos import stoker_pb2 as pb
from protos.bundle import BundleError, bundle_hash, check_bundle
from scheduler import gpus, urls
from scheduler.cluster import Cluster
from scheduler.image_spec import ImageSpecError, check_spec
from scheduler.model import FunctionState, WebRoute
from scheduler.store import AppRecord, Store

APP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # apps and secrets
_ENV_NAME = re.compile(r"^([a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?)?$")
WEB_KINDS = frozenset({"fastapi_endpoint", "asgi_app", "wsgi_app", "web_server"})


class AppError(Exception):
    """A deploy or stop that cannot be done, with the gRPC status that says why."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Apps:
    def __init__(
        self, store: Store, cluster: Cluster, workspace: str, domain: str, scheme: str, port: int, fixed: bool = False
    ) -> None:
        self.fixed = fixed  # the operator gave the URLs' scheme and port: ingresses do not change them
        self.store = store
        self.cluster = cluster
        self.workspace = workspace
        self.domain = domain
        self.scheme = scheme
        self.port = port
        self.live: dict[str, list[FunctionState]] = {}  # app_id -> its current functions

    def load(self) -> None:
        """Bring back every deployed app after a restart; serve sessions died with the old process."""
        self.store.delete_ephemeral()
        for record in self.store.load_apps():
            self._activate(record)

    def set_public(self, scheme: str, port: int) -> None:
        """The ingress told us how it is reached: URLs use that, unless the operator fixed them."""
        if self.fixed or (scheme, port) == (self.scheme, self.port):
            return
        self.scheme = scheme
        self.port = port
        for functions in self.live.values():
            for fn in functions:
                for route in fn.web:
                    route.url = urls.web_url(self.scheme, route.hosts[0], port)

    # ------------------------------------------------------------ deploy

    def deploy(self, app: pb.AppDefinition, environment: str, ephemeral: bool, app_id: str = "") -> pb.DeployResponse:
        self.check(app, environment)
        digest = bundle_hash(app.bundle)
        previous = self._find(app.name, environment, ephemeral, app_id)
        stored = pb.AppDefinition()
        stored.CopyFrom(app)
        stored.bundle = b""
        del stored.image_blobs[:]
        record = AppRecord(
            app_id=previous.app_id if previous else app_id or f"ap-{uuid.uuid4().hex[:12]}",
            name=app.name,
            environment=environment,
            ephemeral=ephemeral,
            version=previous.version + 1 if previous else 1,
            definition=stored,
            bundle_hash=digest,
            created_at=time.time(),
        )
        functions = self._functions(record)
        if not ephemeral:
            self._check_hosts_free(record, functions)
        self.store.save_app(record, app.bundle, app.image_blobs)
        self._activate(record, functions)
        return pb.DeployResponse(
            app_id=record.app_id,
            version=record.version,
            endpoints=_endpoints(functions),
        )

    def _activate(self, record: AppRecord, functions: list[FunctionState] | None = None) -> None:
        functions = functions if functions is not None else self._functions(record)
        old = self.live.get(record.app_id, [])
        self.live[record.app_id] = functions
        self.cluster.activate(functions)
        if old:
            self.cluster.retire(old, {f.spec.name: f for f in functions})

    def _functions(self, record: AppRecord) -> list[FunctionState]:
        result = []
        for spec in record.definition.functions:
            web = [self._route(record, name, method, endpoint) for name, method, endpoint in _web_endpoints(spec)]
            result.append(
                FunctionState(
                    id=f"{record.app_id}:{record.version}:{spec.name}",
                    app=record,
                    spec=spec,
                    web=web,
                    gpu=gpus.parse_gpu(spec.gpu),
                )
            )
        return result

    def _route(self, record: AppRecord, name: str, method_name: str, web: pb.WebEndpoint) -> WebRoute:
        label = web.label or urls.default_label(record.name, name)
        host = f"{urls.subdomain(self.workspace, record.environment, label, record.ephemeral)}.{self.domain}"
        return WebRoute(
            name=name,
            method_name=method_name,
            hosts=[host, *(d.lower() for d in web.custom_domains)],
            url=urls.web_url(self.scheme, host, self.port),
            requires_proxy_auth=web.requires_proxy_auth,
        )

    def check(self, app: pb.AppDefinition, environment: str) -> None:
        """Raise AppError if `app` cannot be deployed as it is (before its images are built)."""

        def invalid(message: str) -> AppError:
            return AppError(grpc.StatusCode.INVALID_ARGUMENT, message)

        if not APP_NAME.match(app.name):
            raise invalid(f"app name {app.name!r} is not valid: use 1-64 letters, digits, '.', '_' or '-'")
        if not _ENV_NAME.match(environment):
            raise invalid(f"environment {environment!r} is not valid: use lowercase letters, digits and '-'")
        if not app.functions:
            raise invalid(f"app {app.name!r} defines no functions")
        try:
            names = {m.filename for m in check_bundle(app.bundle)}
        except BundleError as exc:
            raise invalid(str(exc)) from None
        if app.entry not in names:
            raise invalid(f"the code bundle does not contain the app file {app.entry!r}")
        seen: dict[str, str] = {}
        secrets = self.store.secrets()
        blobs = {b.digest for b in app.image_blobs}
        for blob in app.image_blobs:
            if blob.digest != "sha256:" + hashlib.sha256(blob.data).hexdigest():
                raise invalid(f"image files {blob.digest} do not match their digest")
        blobs |= self.store.image_blob_digests()
        for spec in app.functions:
            try:
                gpus.parse_gpu(spec.gpu)
                if spec.HasField("image"):
                    check_spec(spec.image, blobs)
            except (ValueError, ImageSpecError) as exc:
                raise invalid(f"{spec.name}: {exc}") from None
            for secret in spec.secret_names:
                if secret not in secrets:
                    raise AppError(
                        grpc.StatusCode.NOT_FOUND,
                        f"{spec.name}: secret {secret!r} does not exist; create it with "
                        f"`stoker secret create {secret} KEY=VALUE ...`",
                    )
            if sum(1 for m in spec.methods if m.web.kind == "web_server") > 1:
                raise invalid(f"{spec.name}: a class may have at most one @web_server method")
            for name, _, web in _web_endpoints(spec):
                if web.kind not in WEB_KINDS:
                    raise invalid(f"{name}: unknown web endpoint kind {web.kind!r}")
                # A label given with label= must be a DNS label; a default one is derived from names
                # and cut to fit by urls.subdomain(), so it only has to be non-empty.
                label = web.label or urls.default_label(app.name, name)
                if web.label and not urls.is_valid_label(label):
                    raise invalid(
                        f"{name}: label {label!r} is not a valid DNS label "
                        "(lowercase letters, digits and '-', at most 63, not starting or ending with '-')"
                    )
                if not label:
                    raise invalid(f"{name}: the app and function names give an empty label; pass label=")
                if label in seen:
                    raise invalid(f"{name} and {seen[label]} both use the label {label!r}")
                seen[label] = name
                for domain in web.custom_domains:
                    if not urls.is_valid_domain(domain):
                        raise invalid(f"{name}: custom domain {domain!r} is not a valid domain name")

    def _check_hosts_free(self, record: AppRecord, functions: list[FunctionState]) -> None:
        taken = {
            host: (fn, route)
            for app_id, fns in self.live.items()
            if app_id != record.app_id
            for fn in fns
            for route in fn.web
            for host in route.hosts
        }
        for fn in functions:
            for route in fn.web:
                for host in route.hosts:
                    owner, owner_route = taken.get(host, (None, None))
                    if owner is not None and owner_route is not None and not owner.app.ephemeral:
                        raise AppError(
                            grpc.StatusCode.ALREADY_EXISTS,
                            (
                                f"{route.name}: {host} is already used by app {owner.app.name!r} "
                                f"(function {owner_route.name}); choose another label= or stop that app"
                            ),
                        )

    def deployed(self, name: str, environment: str) -> list[FunctionState] | None:
        """The live functions of the deployed (not served) app of that name and environment."""
        for functions in self.live.values():
            record = functions[0].app if functions else None
            if record is not None and not record.ephemeral and (record.name, record.environment) == (name, environment):
                return functions
        return None

    def _find(self, name: str, environment: str, ephemeral: bool, app_id: str) -> AppRecord | None:
        if app_id:
            functions = self.live.get(app_id)
        else:
            functions = None if ephemeral else self.deployed(name, environment)
        return functions[0].app if functions else None

    # ------------------------------------------------------------ stop and list

    def stop(self, name: str, environment: str) -> str:
        functions = self.deployed(name, environment)
        if functions:
            app_id = functions[0].app.app_id
            self.stop_app_id(app_id)
            return app_id
        raise AppError(
            grpc.StatusCode.NOT_FOUND,
            f"no deployed app named {name!r}" + (f" in environment {environment!r}" if environment else ""),
        )

    def stop_app_id(self, app_id: str) -> None:
        functions = self.live.pop(app_id, [])
        self.store.delete_app(app_id)
        self.cluster.retire(functions)

    def list(self) -> pb.ListAppsResponse:
        apps = []
        for app_id, functions in self.live.items():
            if not functions:
                continue
            record = functions[0].app
            apps.append(
                pb.AppInfo(
                    app_id=app_id,
                    name=record.name,
                    state="ephemeral" if record.ephemeral else "deployed",
                    version=record.version,
                    created_at=record.created_at,
                    environment=record.environment,
                    containers=sum(len(f.containers) for f in functions),
                    endpoints=_endpoints(functions),
                )
            )
        return pb.ListAppsResponse(apps=apps)


def _web_endpoints(spec: pb.FunctionSpec) -> list[tuple[str, str, pb.WebEndpoint]]:
    """(name, method name, endpoint) for the function's web endpoint or its class's web methods.
    A method's name is `Class.method`, which gives Modal's default label `<app>-<class>-<method>`."""
    if spec.HasField("web"):
        return [(spec.name, "", spec.web)]
    return [(f"{spec.name}.{m.name}", m.name, m.web) for m in spec.methods if m.HasField("web")]


def _endpoints(functions: list[FunctionState]) -> list[pb.EndpointUrl]:
    return [pb.EndpointUrl(function=r.name, url=r.url) for f in functions for r in f.web]
