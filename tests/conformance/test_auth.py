"""Only the holder of the kubeconfig's token, naming the server by its loopback address over TLS, gets in."""

from __future__ import annotations

import http.client
import json
import os
import stat
import urllib.error
from pathlib import Path

import pytest
import yaml

from .conftest import Api

# The sandbox's own access control; the real server's is RBAC, tested where the operator runs with the chart's.
pytestmark = pytest.mark.parametrize("server", ["emulator"], indirect=True)


def raw(server, path: str, headers: dict[str, str]) -> tuple[int, dict]:
    """One request with exactly these headers (http.client sends Host only when told to skip it)."""
    connection = http.client.HTTPSConnection(server.host, server.port, timeout=10, context=server.ssl_context())
    try:
        connection.putrequest("GET", path, skip_host="Host" in headers)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def test_a_request_without_the_token_is_401_with_a_status_body(server):
    code, body = Api(server.url, "", server.ssl_context()).call("GET", "/api/v1/namespaces")
    assert code == 401
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


def test_a_wrong_token_is_401(server):
    code, body = Api(server.url, server.token + "x", server.ssl_context()).call(
        "POST", "/api/v1/namespaces", {"metadata": {"name": "intruder"}})
    assert (code, body["reason"]) == (401, "Unauthorized")
    assert Api(server.url, server.token, server.ssl_context()).call("GET", "/api/v1/namespaces/intruder")[0] == 404


def test_a_foreign_host_is_403_even_with_the_token(server):
    """A DNS-rebinding page reaches 127.0.0.1 under its own name; the Host header gives it away."""
    code, body = raw(server, "/api/v1/namespaces", {"Host": f"rebind.example:{server.port}", **server.headers})
    assert code == 403
    assert body["kind"] == "Status" and body["reason"] == "Forbidden" and "rebind.example" in body["message"]
    assert raw(server, "/api/v1/namespaces", {"Host": f"127.0.0.1:{server.port + 1}", **server.headers})[0] == 403


def test_loopback_names_with_the_token_get_in(server):
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}"):
        code, body = raw(server, "/api/v1/namespaces", {"Host": host, **server.headers})
        assert code == 200 and body["kind"] == "NamespaceList", host


def test_health_probes_need_no_token_but_still_a_loopback_host(server):
    connection = http.client.HTTPSConnection(server.host, server.port, timeout=10, context=server.ssl_context())
    connection.request("GET", "/readyz")
    assert connection.getresponse().status == 200
    connection.close()
    assert raw(server, "/readyz", {"Host": "rebind.example"})[0] == 403


def test_every_server_has_its_own_token_in_a_kubeconfig_only_its_owner_reads(server, kubeconfig):
    from llmops_sandbox.apiserver import ApiServerThread

    with ApiServerThread() as other:
        assert other.token != server.token and len(other.token) >= 32
        assert Api(other.url, server.token, other.ssl_context()).call("GET", "/api/v1/namespaces")[0] == 401
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            Api(other.url, other.token, server.ssl_context()).call("GET", "/api/v1/namespaces")
    config = yaml.safe_load(kubeconfig.read_text())
    assert config["users"][0]["user"] == {"token": server.token}
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"].startswith("https://127.0.0.1:")
    assert Path(cluster["certificate-authority"]).read_bytes() == server.server.certificate.certificate_pem
    assert stat.S_IMODE(os.stat(kubeconfig).st_mode) == 0o600


def test_kubectl_with_the_kubeconfig_gets_in_and_with_another_token_does_not(kubectl, kubeconfig, tmp_path):
    assert "default" in kubectl("get", "namespaces", "-o", "name").stdout
    config = yaml.safe_load(kubeconfig.read_text())
    config["users"][0]["user"] = {"token": "guessed"}
    guessed = tmp_path / "guessed"
    guessed.write_text(yaml.safe_dump(config))
    denied = kubectl("--kubeconfig", str(guessed), "get", "namespaces", check=False)
    assert denied.returncode != 0 and "Unauthorized" in denied.stderr
