"""Build ``/openapi.json`` from the endpoint declarations and their msgspec types."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec

from . import schemas
from .endpoint import Endpoint

_REF = "#/components/schemas/{name}"
_PATH_PARAM = re.compile(r"{(\w+)}")
_PATH_SCHEMAS = {
    "topic": {"type": "string", "minLength": 1, "maxLength": 200},
    "id": {"type": "string", "minLength": 1, "maxLength": 1024},
}
_REASONS = {
    200: "OK", 201: "Created", 202: "Accepted (the replacement waits for the running attempt)",
    204: "No content", 304: "Not modified", 404: "Not found", 409: "Conflict",
    412: "Precondition failed", 413: "Payload too large",
}  # fmt: skip


def _types(endpoints: Iterable[Endpoint]) -> list[type]:
    found: list[type] = [schemas.Error]
    for endpoint in endpoints:
        candidates: list[Any] = [endpoint.body]
        for kind in endpoint.responses.values():
            candidates += kind if isinstance(kind, tuple) else [kind]
        for candidate in candidates:
            if isinstance(candidate, type) and candidate not in found:
                found.append(candidate)
    return found


def _response(
    kind: type | tuple[type, ...] | str | None, refs: dict[type, Any], status: int
) -> dict[str, Any]:
    response: dict[str, Any] = {"description": _REASONS.get(status, "Error")}
    if isinstance(kind, str):
        response["content"] = {kind: {"schema": {"type": "string"}}}
    elif isinstance(kind, tuple):
        schema = {"anyOf": [refs[k] for k in kind]}
        response["content"] = {"application/json": {"schema": schema}}
    elif kind is not None:
        response["content"] = {"application/json": {"schema": refs[kind]}}
    return response


def document(
    endpoints: Iterable[Endpoint], *, version: str, secured: bool, open_paths: Iterable[str] = ()
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``endpoints``.

    Args:
        endpoints: every documented operation.
        version: the service version.
        secured: whether bearer tokens are required (then every path but ``open_paths``).
        open_paths: paths that never need a token.
    """
    endpoints = list(endpoints)
    types = _types(endpoints)
    refs_list, components = msgspec.json.schema_components(types, ref_template=_REF)
    refs = dict(zip(types, refs_list, strict=True))
    error = _response(schemas.Error, refs, 0)
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True,
             "schema": _PATH_SCHEMAS.get(name, {"type": "string", "minLength": 1})}
            for name in _PATH_PARAM.findall(endpoint.path)
        ]  # fmt: skip
        for param in endpoint.params:
            item = {"name": param.name, "in": param.where, "required": param.required}
            item["schema"] = dict(param.schema)
            if param.description:
                item["description"] = param.description
            parameters.append(item)
        operation: dict[str, Any] = {
            "summary": endpoint.summary,
            "operationId": endpoint.handler.__name__,
            "tags": [endpoint.tag],
            "responses": {
                str(status): _response(kind, refs, status)
                for status, kind in sorted(endpoint.responses.items())
            },
        }
        operation["responses"].setdefault("400", {**error, "description": "Bad request"})
        operation["responses"]["default"] = {**error, "description": "Error"}
        if parameters:
            operation["parameters"] = parameters
        if endpoint.body is not None:
            operation["requestBody"] = {
                "required": endpoint.body_required,
                "content": {"application/json": {"schema": refs[endpoint.body]}},
            }
        if secured and endpoint.path not in open_paths:
            operation["security"] = [{"bearer": []}]
            operation["responses"]["401"] = {**error, "description": "Unauthorized"}
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    components_section: dict[str, Any] = {"schemas": components}
    if secured:
        components_section["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "redisched",
            "version": version,
            "description": "Delayed jobs on Redis, each with an id you choose.",
        },
        "paths": paths,
        "components": components_section,
    }
