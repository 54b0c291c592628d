"""The "how to call it" snippets come from the target kind (issue 19, item 5).

For every kind in the catalog: the snippets name only the endpoint's own key entry
(never a platform account's key, never a key's value), call the right URL and path,
and SageMaker's are signed AWS calls (the AWS CLI's invoke-endpoint, boto3), not curl.
The CLI's "Try it" lines are the kind's commands.
"""

from __future__ import annotations

import ast
import json
import shlex
import subprocess
import sys

import pytest

from app.domain import Endpoint
from targets.catalog import CATALOG, get_kind

ROW = [{"sepal length": 5.1, "name": "it's"}]  # a quote inside: the shell quoting holds
ENDPOINT_ENTRY = "endpoint-key-entry"
ACCOUNT_ENTRY = "heroku-account-entry"
URLS = {
    "local": "http://127.0.0.1:8080",
    "docker": "http://127.0.0.1:8081",
    "openstack": "https://192.0.2.7:8443",
    "heroku": "https://modelship-iris.herokuapp.com",
    "sagemaker": "https://runtime.sagemaker.eu-central-1.amazonaws.com/endpoints/"
    "modelship-iris/invocations",
    "kubernetes": "https://iris.cluster.example.org",  # its Ingress (Bearer, like the others)
}
PIN = "ab" * 32


def _settings(kind: str, keyed: bool = True):
    values: dict = {}
    fields = CATALOG[kind].Settings.model_fields
    if keyed and "api_key" in fields:
        values["api_key"] = ENDPOINT_ENTRY
    elif "require_api_key" in fields:
        values["require_api_key"] = False
    if "account_key" in fields:  # Heroku: the account's own key has its own setting
        values["account_key"] = ACCOUNT_ENTRY
    if kind == "kubernetes":  # where the cluster pulls from; keyed: reached at its Ingress
        values["registry"] = "registry.example.org"
        if keyed:  # (without a key only through the API server's proxy)
            values.update(expose="ingress", host=URLS[kind][8:])
    return CATALOG[kind].Settings.model_validate(values)


def _endpoint(kind: str, keyed: bool = True) -> Endpoint:
    auth = "sigv4" if kind == "sagemaker" else ("bearer" if keyed else "none")
    return Endpoint(
        url=URLS[kind],
        target=kind,
        auth=auth,  # type: ignore[arg-type]
        tls_sha256=PIN if kind == "openstack" else None,
        data={"endpoint_name": "modelship-iris", "region": "eu-central-1"}
        if kind == "sagemaker"
        else {},
    )


def _all_text(snippets) -> str:
    return "\n".join([*snippets.commands, snippets.shell, snippets.python, snippets.note])


@pytest.mark.parametrize("kind", list(CATALOG))
def test_snippets_name_only_the_endpoints_key_entry(kind: str) -> None:
    settings = _settings(kind)
    snippets = get_kind(kind).call_snippets(_endpoint(kind), settings, ROW)
    text = _all_text(snippets)
    assert ACCOUNT_ENTRY not in text  # never the platform account's key
    assert "heroku-api-key" not in text  # nor Heroku's default account entry
    if kind == "sagemaker":
        assert "keyring" not in text and "Bearer" not in text and "curl" not in text
        return
    # the key's entry, read from the keyring at the moment the command runs
    assert settings.endpoint_key() == ENDPOINT_ENTRY
    assert f"$(keyring get modelship {ENDPOINT_ENTRY})" in snippets.commands[-1]
    assert f'"Authorization: Bearer $(keyring get modelship {ENDPOINT_ENTRY})"' in snippets.shell
    assert 'os.environ["MODELSHIP_API_KEY"]' in snippets.python
    assert f"keyring get modelship {ENDPOINT_ENTRY}" in snippets.python  # where it comes from
    # the one keyring entry named anywhere is the endpoint's
    named = {
        line.split("keyring get modelship ", 1)[1].split(")")[0].strip("\"' ")
        for line in text.splitlines()
        if "keyring get modelship " in line
    }
    assert named == {ENDPOINT_ENTRY}


@pytest.mark.parametrize("kind", [k for k in CATALOG if k != "sagemaker"])
def test_http_snippets_post_to_predict_and_without_a_key_send_none(kind: str) -> None:
    snippets = get_kind(kind).call_snippets(_endpoint(kind, keyed=False), _settings(kind, False))
    curl = snippets.commands[-1]
    assert snippets.shell_title == "curl"
    assert shlex.split(curl)[:2] == ["curl", "-s"]
    assert f"{URLS[kind]}/predict" in shlex.split(curl)
    assert "Authorization" not in _all_text(snippets) and "keyring" not in _all_text(snippets)
    assert f'"{URLS[kind]}/predict"' in snippets.python
    ast.parse(snippets.python)  # it is Python


def test_the_row_survives_the_shell_quoting() -> None:
    snippets = get_kind("local").call_snippets(_endpoint("local"), _settings("local"), ROW)
    words = shlex.split(snippets.commands[-1])
    assert json.loads(words[words.index("-d") + 1]) == ROW


def test_sagemaker_is_called_signed_through_the_aws_cli_and_boto3() -> None:
    endpoint = _endpoint("sagemaker")
    endpoint.data["aws_profile"] = "lab"
    snippets = get_kind("sagemaker").call_snippets(endpoint, _settings("sagemaker"), ROW)
    assert snippets.shell_title == "AWS CLI"
    write, invoke, show = snippets.commands
    assert json.loads(shlex.split(write)[1]) == ROW and write.endswith("> row.json")
    assert shlex.split(invoke) == [
        "aws", "sagemaker-runtime", "invoke-endpoint", "--endpoint-name", "modelship-iris",
        "--region", "eu-central-1", "--profile", "lab", "--content-type", "application/json",
        "--body", "fileb://row.json", "out.json",
    ]  # fmt: skip
    assert show == "cat out.json"
    assert "invoke-endpoint" in snippets.shell and "/predict" not in _all_text(snippets)
    assert "/invocations" not in _all_text(snippets)  # no hand-made URL: the SDK signs it
    tree = ast.parse(snippets.python)
    assert "boto3" in snippets.python and ".invoke_endpoint(" in snippets.python
    assert 'EndpointName="modelship-iris"' in snippets.python.replace("'", '"')
    assert 'boto3.Session(profile_name="lab", region_name="eu-central-1")' in (
        snippets.python.replace("'", '"')
    )
    assert 'client("sagemaker-runtime")' in snippets.python
    assert tree.body
    assert "SigV4" in snippets.note


def test_sagemaker_python_snippet_runs_against_a_stand_in(tmp_path, monkeypatch) -> None:
    """The boto3 snippet is a working program: run it with a boto3 whose client records
    the call (the AWS side is not what is tested here)."""
    endpoint = _endpoint("sagemaker")
    snippets = get_kind("sagemaker").call_snippets(endpoint, None, ROW)
    fake = tmp_path / "boto3.py"
    fake.write_text(
        "import io, json\n"
        "class _C:\n"
        "    def invoke_endpoint(self, **kw):\n"
        "        print('CALL', json.dumps(kw, sort_keys=True))\n"
        "        return {'Body': io.BytesIO(b'{\"predictions\": [1]}')}\n"
        "def client(service, **kw):\n"
        "    assert service == 'sagemaker-runtime' and kw == {'region_name': 'eu-central-1'}\n"
        "    return _C()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", snippets.python],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    call = json.loads(out.stdout.split("CALL ", 1)[1].splitlines()[0])
    assert call == {
        "Body": json.dumps(ROW),
        "ContentType": "application/json",
        "EndpointName": "modelship-iris",
    }
    assert out.stdout.strip().endswith("[1]")


def test_a_pinned_certificate_is_fetched_checked_and_trusted_alone() -> None:
    snippets = get_kind("openstack").call_snippets(
        _endpoint("openstack"), _settings("openstack"), ROW
    )
    fetch, show, curl = snippets.commands
    assert fetch.startswith("openssl s_client -connect 192.0.2.7:8443 ")
    assert "openssl x509 -out modelship-endpoint.pem" in fetch
    assert show == "openssl x509 -in modelship-endpoint.pem -noout -fingerprint -sha256"
    assert shlex.split(curl)[:4] == ["curl", "-s", "--cacert", "modelship-endpoint.pem"]
    assert "-k" not in shlex.split(curl) and "--insecure" not in curl
    assert ":".join(["AB"] * 32) in snippets.shell  # as openssl prints it, to compare
    assert f'PINNED = "{PIN}"' in snippets.python
    assert "context=context" in snippets.python
    ast.parse(snippets.python)


def test_the_cli_try_it_lines_are_the_kinds_commands(tmp_path) -> None:
    """`modelship deploy` prints the kind's commands; for a SageMaker record, the AWS CLI
    (the old line was an unsigned curl to .../invocations/predict)."""
    from app.cli.commands.deploy import try_it_lines
    from app.domain import DeploymentRecord

    record = DeploymentRecord.from_dict(
        {
            "name": "iris",
            "target": "sagemaker",
            "endpoint": _endpoint("sagemaker").to_dict(),
            "profile": {
                "schema": 1,
                "name": "iris",
                "model": {"path": str(tmp_path / "m.onnx")},
                "target": {"kind": "sagemaker", "settings": {"region": "eu-central-1"}},
            },
        }
    )
    record.version = lambda: None  # type: ignore[method-assign]
    assert try_it_lines(record) == []  # no proof rows: nothing to send
    proof = tmp_path / "proof.json"
    proof.write_text(json.dumps({"rows": ROW}))

    class Version:
        proof_path = proof

    record.version = lambda: Version()  # type: ignore[method-assign]
    lines = try_it_lines(record)
    assert lines[1].startswith("aws sagemaker-runtime invoke-endpoint --endpoint-name ")
    assert not [line for line in lines if "curl" in line or "Bearer" in line]


def test_sample_values_read_back_from_float32_are_shown_as_typed() -> None:
    row = [{"age": 64.23300170898438, "income": 3452.208984375, "plan": "gold"}]
    snippets = get_kind("local").call_snippets(_endpoint("local"), _settings("local"), row)
    assert '"age": 64.233' in snippets.shell and "64.23300170898438" not in snippets.shell
    assert '"income": 3452.209' in snippets.python


def test_the_curl_line_reaches_an_ipv6_address(tmp_path) -> None:
    """curl reads [..] in a URL as a pattern unless told not to (-g): the printed line
    must work as printed against an endpoint reached by its IPv6 address."""
    import shutil
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    if not shutil.which("curl"):
        pytest.skip("curl is not installed")
    seen: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"predictions": [1]}')

        def log_message(self, *args: object) -> None:
            pass

    class Server6(HTTPServer):
        address_family = __import__("socket").AF_INET6

    server = Server6(("::1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="ipv6-stand-in", daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        endpoint = Endpoint(url=f"http://[::1]:{port}", target="openstack", auth="none")
        snippets = get_kind("local").call_snippets(endpoint, _settings("local", False), ROW)
        done = subprocess.run(
            ["bash", "-c", snippets.commands[-1]], capture_output=True, text=True, timeout=30
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert done.returncode == 0 and '"predictions"' in done.stdout, done.stderr
    assert json.loads(seen[0]) == ROW


def test_a_proxied_kubernetes_endpoint_is_called_through_kubectl_proxy() -> None:
    """Through the API server's services proxy the caller signs in with their kubeconfig
    (kubectl proxy) and the endpoint's key travels as X-ModelShip-Key, never as Bearer."""
    url = "https://10.0.0.1:6443/api/v1/namespaces/ag-smith/services/modelship-iris:http/proxy"
    endpoint = Endpoint(
        url=url,
        target="kubernetes",
        auth="bearer",
        data={"expose": "proxy", "context": "uni-cluster", "kubeconfig": "/home/a/kube.yaml"},
    )
    settings = CATALOG["kubernetes"].Settings.model_validate(
        {"registry": "registry.example.org", "api_key": ENDPOINT_ENTRY}
    )
    snippets = get_kind("kubernetes").call_snippets(endpoint, settings, ROW)
    start, curl, stop = snippets.commands
    assert shlex.split(start)[:5] == [
        "kubectl",
        "proxy",
        "--port=8001",
        "--kubeconfig=/home/a/kube.yaml",
        "--context=uni-cluster",
    ]
    local = "http://127.0.0.1:8001/api/v1/namespaces/ag-smith/services/modelship-iris:http/proxy"
    assert f"{local}/predict" in shlex.split(curl)
    assert f'"X-ModelShip-Key: $(keyring get modelship {ENDPOINT_ENTRY})"' in curl
    assert "Authorization:" not in _all_text(snippets) and "Bearer" not in _all_text(snippets)
    assert stop == "kill $!"
    assert '"X-ModelShip-Key": os.environ["MODELSHIP_API_KEY"]' in snippets.python
    ast.parse(snippets.python)
    assert "kubectl proxy" in snippets.note and ENDPOINT_ENTRY in snippets.note
