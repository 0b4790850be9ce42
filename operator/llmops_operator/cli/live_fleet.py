"""`llmops status`: every llmops.dev object from the live API, as the fleet table (fleet.py) shows it."""

from __future__ import annotations

import urllib.error
from typing import Any, TextIO

from llmops_operator.cli import fleet
from llmops_operator.api.v1alpha1 import ALL_KINDS
from llmops_operator.k8s.blocking import BlockingClient
from llmops_operator.k8s.resources import ApiResource


def kind_resources() -> list[ApiResource]:
    return [ApiResource(k.model_fields["api_version"].default, k.info.kind, k.info.plural) for k in ALL_KINDS]


def list_fleet(client: BlockingClient, namespace: str | None) -> tuple[list[dict[str, Any]], list[str]]:
    """Every llmops.dev object in `namespace` (None: all), and the kinds the API does not serve.

    List items carry no apiVersion/kind (the API puts them on the list), so they are set here."""
    objects, missing = [], []
    for where in kind_resources():
        try:
            items = client.list(where, namespace)
        except urllib.error.HTTPError as err:
            if err.code != 404:
                raise
            missing.append(where.kind)
            continue
        objects += [{**item, "apiVersion": where.api_version, "kind": where.kind} for item in items]
    return objects, missing


def print_status(client: BlockingClient, namespace: str | None, out: TextIO, err: TextIO) -> int:
    try:
        objects, missing = list_fleet(client, namespace)
    except urllib.error.HTTPError as error:
        body = getattr(error, "body", {}) or {}
        print(f"error: the API server answered {error.code}: {body.get('message') or error.reason}", file=err)
        return 1
    except urllib.error.URLError as error:
        print(f"error: cannot reach the API server at {client.conn.server}: {error.reason}", file=err)
        return 1
    if missing:
        print(f"note: the API server does not serve {', '.join(missing)} (CRDs not installed?)", file=err)
    if not objects:
        where = f"namespace {namespace}" if namespace else "any namespace"
        print(f"No llmops.dev objects in {where}.", file=out)
        return 0
    print(fleet.table(objects), file=out)
    return 0
