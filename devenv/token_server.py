"""A local Microsoft Entra ID stand-in: just enough of the v2.0 endpoints for a service principal to sign in.

`ClientSecretCredential(tenant, client, secret, authority=server.authority, disable_instance_discovery=True)`
asks it for the tenant's OpenID configuration and then for a token (client-credentials grant). The access
token is a signed JWT with the claims Azurite's `--oauth basic` checks (iss, aud, iat, nbf, exp). A wrong
tenant, client id or secret gets the error body real Entra returns (AADSTS90002, AADSTS700016,
AADSTS7000215). Every request is recorded so tests can check who asked for what, and every access token
issued is kept so tests can check it appears nowhere it must not.

HTTPS on 127.0.0.1 only (the Azure SDKs send bearer tokens over HTTPS only). `make_tls` writes a throwaway
certificate authority, a server certificate for 127.0.0.1 signed by it, and a CA bundle (the system
bundle plus that authority) for `REQUESTS_CA_BUNDLE` / `SSL_CERT_FILE` of processes that must trust it.
Used by tests and the local runtime; never shipped to Lambda.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import ssl
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
STORAGE_RESOURCE = "https://storage.azure.com"


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: `cert` + `key` for the servers (token server, Azurite), `ca` and `ca_bundle` for clients."""

    ca: Path
    cert: Path
    key: Path
    ca_bundle: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_tls(directory: Path, host: str = "127.0.0.1", days: int = 30) -> TlsFiles:
    """A throwaway CA and a server certificate for `host` (SAN IP 127.0.0.1 and DNS localhost) signed by it."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = _name("azs3copy local test CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    alt_names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        alt_names.insert(0, x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        alt_names.insert(0, x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(host))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    files = TlsFiles(
        ca=directory / "ca.pem",
        cert=directory / "cert.pem",
        key=directory / "key.pem",
        ca_bundle=directory / "ca-bundle.pem",
    )
    files.ca.write_bytes(ca_pem)
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    files.key.chmod(0o600)
    system = SYSTEM_CA_BUNDLE.read_bytes() if SYSTEM_CA_BUNDLE.exists() else b""
    if system and not system.endswith(b"\n"):
        system += b"\n"
    files.ca_bundle.write_bytes(system + ca_pem)
    return files


@dataclass(frozen=True)
class SeenRequest:
    """One request the token server answered (never the client secret)."""

    method: str
    path: str
    tenant: str
    status: int
    client_id: str | None = None
    scope: str | None = None
    grant_type: str | None = None

    @property
    def is_token(self) -> bool:
        return self.method == "POST" and self.path.endswith("/oauth2/v2.0/token")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _entra_error(error: str, code: int, description: str) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    trace = str(uuid.uuid4())
    correlation = str(uuid.uuid4())
    return {
        "error": error,
        "error_description": (
            f"AADSTS{code}: {description} Trace ID: {trace} Correlation ID: {correlation} "
            f"Timestamp: {now:%Y-%m-%d %H:%M:%SZ}"
        ),
        "error_codes": [code],
        "timestamp": f"{now:%Y-%m-%d %H:%M:%SZ}",
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }


class TokenServer:
    """The Entra stand-in for one tenant with one app registration (client id + secret)."""

    def __init__(
        self,
        tls: TlsFiles,
        *,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        token_lifetime: int = 3599,
        port: int = 0,
    ) -> None:
        self.tls = tls
        self.tenant_id = tenant_id
        self.client_id = client_id
        self._client_secret = client_secret
        #: Seconds an access token lives (`expires_in`); the SDKs refresh within 300 s of expiry.
        self.token_lifetime = token_lifetime
        self._signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._key_id = _b64url(uuid.uuid4().bytes)
        self._seen: list[SeenRequest] = []
        self._issued: list[str] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._httpd.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls.cert), str(tls.key))
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def authority(self) -> str:
        """The value for `azure.authority` (and `ClientSecretCredential(authority=…)`)."""
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="token-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- what the tests look at --------------------------------------------------------------------------

    @property
    def seen(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._seen)

    @property
    def token_requests(self) -> list[SeenRequest]:
        return [request for request in self.seen if request.is_token]

    @property
    def issued_tokens(self) -> list[str]:
        """Every access token this server has issued since it started (`forget` keeps them)."""
        with self._lock:
            return list(self._issued)

    def forget(self) -> None:
        """Forget the requests seen so far (not the tokens issued: a test looks for every one of them)."""
        with self._lock:
            self._seen.clear()

    def public_jwk(self) -> dict[str, Any]:
        numbers = self._signing_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self._key_id,
            "n": _b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": _b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
        }

    # -- the protocol ------------------------------------------------------------------------------------

    def _record(self, request: SeenRequest) -> None:
        with self._lock:
            self._seen.append(request)

    def openid_configuration(self, tenant: str) -> dict[str, Any]:
        base = f"{self.authority}/{tenant}"
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{self.authority}/{tenant}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{self.authority}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "ver", "oid"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }

    def _unknown_tenant(self, tenant: str) -> tuple[int, dict[str, Any]]:
        return 400, _entra_error(
            "invalid_tenant",
            90002,
            f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing "
            "into the correct cloud. Check with your subscription administrator, this may happen if there are "
            "no active subscriptions for the tenant.",
        )

    def token_response(self, tenant: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) for a token request, as Entra answers a client-credentials grant."""
        if tenant != self.tenant_id:
            return self._unknown_tenant(tenant)
        grant_type = form.get("grant_type")
        if grant_type != "client_credentials":
            return 400, _entra_error(
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
            )
        client_id = form.get("client_id", "")
        if client_id != self.client_id:
            return 400, _entra_error(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. This "
                "can happen if the application has not been installed by the administrator of the tenant or "
                "consented to by any user in the tenant. You may have sent your authentication request to the "
                "wrong tenant.",
            )
        if form.get("client_secret") != self._client_secret:
            return 401, _entra_error(
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                f"secret value, not the client secret ID, for a secret added to app '{client_id}'.",
            )
        scope = form.get("scope", "")
        resource = next((item for item in scope.split() if item.endswith("/.default")), None)
        if resource is None:
            return 400, _entra_error(
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows must have a "
                "scope value with /.default suffixed to the resource identifier (application ID URI).",
            )
        audience = resource.removesuffix("/.default")
        if audience.rstrip("/") != STORAGE_RESOURCE:
            return 400, _entra_error(
                "invalid_resource",
                500011,
                f"The resource principal named {audience} was not found in the tenant named {tenant}.",
            )
        return 200, {
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime,
            "access_token": self._access_token(tenant, client_id, audience),
        }

    def _access_token(self, tenant: str, client_id: str, audience: str) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "kid": self._key_id}
        claims = {
            "aud": audience,
            "iss": f"https://sts.windows.net/{tenant}/",
            "iat": now - 5,
            "nbf": now - 5,
            "exp": now + self.token_lifetime,
            "appid": client_id,
            "appidacr": "1",
            "idp": f"https://sts.windows.net/{tenant}/",
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant}/{client_id}")),
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant}/{client_id}")),
            "tid": tenant,
            "uti": _b64url(uuid.uuid4().bytes),
            "ver": "1.0",
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self._signing_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        token = f"{signing_input}.{_b64url(signature)}"
        with self._lock:
            self._issued.append(token)
        return token

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the recorded requests are the log."""

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Cache-Control", "no-store, no-cache")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _parts(self) -> list[str]:
                return [part for part in urllib.parse.urlsplit(self.path).path.split("/") if part]

            def do_GET(self) -> None:
                parts = self._parts()
                tenant = parts[0] if parts else ""
                path = urllib.parse.urlsplit(self.path).path
                if parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
                    if tenant == server.tenant_id:
                        status, body = 200, server.openid_configuration(tenant)
                    else:
                        status, body = server._unknown_tenant(tenant)
                elif parts[1:] == ["discovery", "v2.0", "keys"]:
                    status, body = 200, {"keys": [server.public_jwk()]}
                else:
                    status, body = (
                        404,
                        {"error": "not_found", "error_description": f"no route for GET {path}"},
                    )
                server._record(SeenRequest("GET", path, tenant, status))
                self._send(status, body)

            def do_POST(self) -> None:
                parts = self._parts()
                tenant = parts[0] if parts else ""
                path = urllib.parse.urlsplit(self.path).path
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                if parts[1:] == ["oauth2", "v2.0", "token"]:
                    status, body = server.token_response(tenant, form)
                else:
                    status, body = (
                        404,
                        {"error": "not_found", "error_description": f"no route for POST {path}"},
                    )
                server._record(
                    SeenRequest(
                        "POST",
                        path,
                        tenant,
                        status,
                        client_id=form.get("client_id"),
                        scope=form.get("scope"),
                        grant_type=form.get("grant_type"),
                    )
                )
                self._send(status, body)

        return Handler
