"""How to call a deployed endpoint: the snippets the CLI prints and the wizard shows.

Each kind says how its endpoints are called (:attr:`targets.catalog.Kind.call`): plain
HTTP with the endpoint's own bearer key, if it has one (``"http"``), signed AWS
requests (``"sigv4"``: SageMaker's InvokeEndpoint, through the AWS CLI or boto3), or,
for an endpoint behind a Kubernetes API server's services proxy (``"kubernetes"`` with
the endpoint's ``expose`` "proxy"), through ``kubectl proxy`` with the caller's own
cluster credentials and the key as ``X-ModelShip-Key``. An
endpoint with a pinned certificate (a VM's self-made one) gets the steps to fetch that
certificate, check its fingerprint and trust exactly it. Only the *endpoint's* key
entry is ever named (``keyring get modelship NAME``), never a platform account's key,
and never a key's value.

Plain text only: no Qt, no SDK, nothing read from the keyring, so the wizard can draw
the snippets at once.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from app.domain import Endpoint
    from targets.settings import TargetSettings

CallStyle = Literal["http", "sigv4", "kubernetes"]
KUBECTL_PROXY_PORT = 8001  # kubectl proxy's own default port
KEY_VARIABLE = "MODELSHIP_API_KEY"  # where the Python snippet reads the endpoint's key
CERT_FILE = "modelship-endpoint.pem"  # where the shell snippet keeps a pinned certificate


@dataclass(frozen=True)
class CallSnippets:
    """Ready-to-paste ways to call one endpoint.

    ``commands``: shell commands, one per line, run in order (what the CLI prints after
    a deploy). ``shell``: the same commands with comments and line breaks (the wizard's
    first snippet tab, titled ``shell_title``). ``python``: a Python program.
    ``note``: plain words on how it is authorised, for whoever reads the snippet.
    """

    commands: tuple[str, ...]
    shell: str
    shell_title: str
    python: str
    note: str = ""


def call_snippets(
    style: CallStyle,
    endpoint: Endpoint,
    settings: TargetSettings | None = None,
    rows: list[Any] | None = None,
) -> CallSnippets:
    """The snippets for ``endpoint`` (of a kind that is called the ``style`` way).

    ``settings`` are the deployment's target settings: they name the endpoint key's
    keyring entry (:meth:`TargetSettings.endpoint_key`). ``rows`` is the sample sent
    (default: one empty record).
    """
    body = json.dumps(_tidy(rows) if rows else [{}])
    if style == "sigv4":
        return _sigv4(endpoint, body)
    key = settings.endpoint_key() if settings is not None else None
    keyed = bool(key) or endpoint.auth == "bearer"
    if style == "kubernetes" and endpoint.data.get("expose") == "proxy":
        return _kubectl_proxy(endpoint, body, key if keyed else None, keyed)
    return _http(endpoint, body, key if keyed else None, keyed)


# ---- plain HTTP (+ the endpoint's bearer key, + a pinned certificate) ------------------


def _http(endpoint: Endpoint, body: str, key: str | None, keyed: bool) -> CallSnippets:
    url = endpoint.url.rstrip("/") + "/predict"
    pinned = endpoint.tls_sha256
    curl = ["curl", "-s"]
    if "://[" in url:  # an IPv6 address: curl would read its brackets as a URL pattern
        curl.append("-g")
    if pinned:
        curl += ["--cacert", CERT_FILE]
    curl += ["-X", "POST", url, "-H", "'Content-Type: application/json'"]
    if keyed:
        source = f"$(keyring get modelship {shlex.quote(key)})" if key else f"${KEY_VARIABLE}"
        curl += ["-H", f'"Authorization: Bearer {source}"']
    curl += ["-d", shlex.quote(body)]

    notes = []
    if keyed:
        notes.append(
            f"It sends the endpoint's API key from your keyring (entry {key!r})."
            if key
            else f"Put the endpoint's API key in ${KEY_VARIABLE} first."
        )
    commands: list[str] = []
    shell: list[str] = []
    if pinned:
        host, port = _host_port(endpoint.url)
        connect = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        colons = _openssl_fingerprint(pinned)
        notes.append(
            f"The server's certificate is its own: the first two commands save it to "
            f"{CERT_FILE} and show its SHA-256 fingerprint, which must be {colons}; then "
            "curl trusts only that certificate."
        )
        fetch = (
            f"openssl s_client -connect {connect} </dev/null 2>/dev/null "
            f"| openssl x509 -out {CERT_FILE}"
        )
        show = f"openssl x509 -in {CERT_FILE} -noout -fingerprint -sha256"
        commands += [fetch, show]
        shell += [
            "# The server's certificate is its own; ModelShip pinned its fingerprint:",
            f"#   {colons}",
            "# Save it, check that the fingerprint shown matches, then trust only it.",
            fetch,
            show,
            "",
        ]
    commands.append(" ".join(curl))
    if key:
        shell.append(f"# The endpoint's API key is in your keyring as {key!r}.")
    elif keyed:
        shell.append(f"# Put the endpoint's API key in ${KEY_VARIABLE} first.")
    shell.append(_continued(curl))
    return CallSnippets(
        commands=tuple(commands),
        shell="\n".join(shell) + "\n",
        shell_title="curl",
        python=_http_python(url, body, key, keyed, pinned),
        note=" ".join(notes),
    )


def _http_python(url: str, body: str, key: str | None, keyed: bool, pinned: str | None) -> str:
    imports = ["json"]
    lines: list[str] = []
    headers = ['        "Content-Type": "application/json",']
    if keyed:
        imports.append("os")
        if key:
            lines.append(
                f"# the endpoint's API key: export {KEY_VARIABLE}="
                f'"$(keyring get modelship {shlex.quote(key)})"'
            )
        headers.append(f'        "Authorization": "Bearer " + os.environ["{KEY_VARIABLE}"],')
    opener = "urllib.request.urlopen(request)"
    if pinned:
        imports += ["hashlib", "ssl"]
        host, port = _host_port(url)
        lines += [
            "# The server's certificate is its own: trust it only if it is the one",
            "# ModelShip pinned (its SHA-256 fingerprint).",
            f'PINNED = "{pinned}"',
            f"pem = ssl.get_server_certificate(({json.dumps(host)}, {port}))",
            "if hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest() != PINNED:",
            '    raise SystemExit("This is not the certificate ModelShip pinned: stop.")',
            "context = ssl.create_default_context(cadata=pem)",
        ]
        opener = "urllib.request.urlopen(request, context=context)"
    imports.append("urllib.request")
    return "\n".join(
        [
            f"import {', '.join(sorted(set(imports)))}",
            "",
            *lines,
            f"rows = {body}",
            "request = urllib.request.Request(",
            f"    {json.dumps(url)},",
            "    data=json.dumps(rows).encode(),",
            "    headers={",
            *headers,
            "    },",
            ")",
            f"with {opener} as response:",
            '    print(json.load(response)["predictions"])',
            "",
        ]
    )


# ---- Kubernetes: through the API server's services proxy, with kubectl proxy ---------


def _kubectl_proxy(endpoint: Endpoint, body: str, key: str | None, keyed: bool) -> CallSnippets:
    """``kubectl proxy`` signs in with the caller's kubeconfig (tokens, certificates,
    sign-in plugins alike) and serves the API on 127.0.0.1; the endpoint's key goes as
    X-ModelShip-Key, because the API server keeps Authorization for the caller."""
    data = endpoint.data
    url = f"http://127.0.0.1:{KUBECTL_PROXY_PORT}{urlsplit(endpoint.url).path.rstrip('/')}/predict"
    proxy = ["kubectl", "proxy", f"--port={KUBECTL_PROXY_PORT}"]
    if data.get("kubeconfig"):
        proxy.append(f"--kubeconfig={shlex.quote(str(data['kubeconfig']))}")
    if data.get("context"):
        proxy.append(f"--context={shlex.quote(str(data['context']))}")
    start = " ".join(proxy) + " & sleep 2"
    curl = ["curl", "-s", "-X", "POST", url, "-H", "'Content-Type: application/json'"]
    if keyed:
        source = f"$(keyring get modelship {shlex.quote(key)})" if key else f"${KEY_VARIABLE}"
        curl += ["-H", f'"X-ModelShip-Key: {source}"']
    curl += ["-d", shlex.quote(body)]
    stop = "kill $!"
    note = (
        "It goes through your cluster's API server with your own kubeconfig "
        "(kubectl proxy on this computer)."
    )
    if keyed:
        note += (
            f" The endpoint's API key comes from your keyring (entry {key!r}) and travels "
            "as X-ModelShip-Key: the API server keeps Authorization for your sign-in."
            if key
            else f" Put the endpoint's API key in ${KEY_VARIABLE} first; it travels as "
            "X-ModelShip-Key."
        )
    shell = [
        "# Sign in to the cluster with your kubeconfig, through kubectl proxy:",
        start,
        *([f"# The endpoint's API key is in your keyring as {key!r}."] if key else []),
        _continued(curl),
        "# Stop kubectl proxy:",
        stop,
    ]
    headers = ['        "Content-Type": "application/json",']
    lines = [f"# first, in a terminal: {' '.join(proxy)}"]
    imports = ["json", "urllib.request"]
    if keyed:
        imports.append("os")
        if key:
            lines.append(
                f"# the endpoint's API key: export {KEY_VARIABLE}="
                f'"$(keyring get modelship {shlex.quote(key)})"'
            )
        headers.append(f'        "X-ModelShip-Key": os.environ["{KEY_VARIABLE}"],')
    python = "\n".join(
        [
            f"import {', '.join(sorted(imports))}",
            "",
            *lines,
            f"rows = {body}",
            "request = urllib.request.Request(",
            f"    {json.dumps(url)},",
            "    data=json.dumps(rows).encode(),",
            "    headers={",
            *headers,
            "    },",
            ")",
            "with urllib.request.urlopen(request) as response:",
            '    print(json.load(response)["predictions"])',
            "",
        ]
    )
    return CallSnippets(
        commands=(start, " ".join(curl), stop),
        shell="\n".join(shell) + "\n",
        shell_title="kubectl proxy + curl",
        python=python,
        note=note,
    )


# ---- SageMaker: signed requests (SigV4) ----------------------------------------------


def _sigv4(endpoint: Endpoint, body: str) -> CallSnippets:
    data = endpoint.data
    name = str(data.get("endpoint_name") or "ENDPOINT-NAME")
    region = data.get("region")
    profile = data.get("aws_profile")
    invoke = [
        "aws", "sagemaker-runtime", "invoke-endpoint", "--endpoint-name", shlex.quote(name),
    ]  # fmt: skip
    if region:
        invoke += ["--region", shlex.quote(str(region))]
    if profile:
        invoke += ["--profile", shlex.quote(str(profile))]
    invoke += [
        "--content-type", "application/json", "--body", "fileb://row.json", "out.json",
    ]  # fmt: skip
    write = f"echo {shlex.quote(body)} > row.json"
    show = "cat out.json"
    note = (
        "SageMaker takes only signed AWS requests (SigV4), made with your AWS "
        "credentials: the AWS CLI and boto3 sign them for you."
    )
    shell = "\n".join(
        [
            "# SageMaker takes signed AWS requests: the AWS CLI signs them with your",
            "# AWS credentials (aws configure, or aws sso login).",
            write,
            _continued(invoke),
            show,
            "",
        ]
    )
    client_args = f"region_name={json.dumps(str(region))}" if region else ""
    if profile:
        session = f"boto3.Session(profile_name={json.dumps(str(profile))}, {client_args})".replace(
            ", )", ")"
        )
        make = f'runtime = {session}.client("sagemaker-runtime")'
    else:
        make = (
            f'runtime = boto3.client("sagemaker-runtime"{", " if client_args else ""}{client_args})'
        )
    python = "\n".join(
        [
            "import json",
            "",
            "import boto3  # signs the request with your AWS credentials",
            "",
            f"rows = {body}",
            make,
            "response = runtime.invoke_endpoint(",
            f"    EndpointName={json.dumps(name)},",
            '    ContentType="application/json",',
            "    Body=json.dumps(rows),",
            ")",
            'print(json.loads(response["Body"].read())["predictions"])',
            "",
        ]
    )
    return CallSnippets(
        commands=(write, " ".join(invoke), show),
        shell=shell,
        shell_title="AWS CLI",
        python=python,
        note=note,
    )


# ---- helpers ---------------------------------------------------------------------------


def _continued(words: list[str]) -> str:
    """A long command over several lines, a flag and its value on each."""
    lines: list[str] = []
    current: list[str] = []
    for word in words:
        if word.startswith("-") and current and len(" ".join(current)) > 20:
            lines.append(" ".join(current))
            current = []
        current.append(word)
    lines.append(" ".join(current))
    return " \\\n  ".join(lines)


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return host, port


def _openssl_fingerprint(hex_digest: str) -> str:
    """``ab12...`` as openssl prints it: ``AB:12:...``."""
    h = hex_digest.replace(":", "").upper()
    return ":".join(h[i : i + 2] for i in range(0, len(h), 2))


__all__ = ["KEY_VARIABLE", "CallSnippets", "CallStyle", "call_snippets"]


def _tidy(value: Any) -> Any:
    """Sample values as a person would type them: a float32 sample read back as a double
    (64.23300170898438) shown with the digits float32 really holds (64.233)."""
    if isinstance(value, float):
        return float(f"{value:.7g}")
    if isinstance(value, dict):
        return {k: _tidy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_tidy(v) for v in value]
    return value
