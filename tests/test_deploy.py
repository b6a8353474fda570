"""The deployment of docs/deploy.md, run (issue 16): Debian's nginx with deploy/nginx.conf (the
file the document shows) terminates TLS in front of a real ``minisession serve`` that trusts
X-Forwarded-For from nginx only; and deploy/minisession.service passes ``systemd-analyze
verify``.

The client connects from 127.0.0.2 and nginx from 127.0.0.1 (both loopback), so minisession
can only know the client's address from nginx's X-Forwarded-For.
"""

import ipaddress
import shutil
import ssl
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devtools.nginx import Nginx, free_port, nginx_binary, render_site
from devtools.processes import ROOT, ServerProcess, server_config

NGINX_SITE = ROOT / "deploy" / "nginx.conf"
SYSTEMD_UNIT = ROOT / "deploy" / "minisession.service"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
CLIENT_ADDRESS = "127.0.0.2"
NGINX_ADDRESS = "127.0.0.1"
SPOOFED = "203.0.113.9"
ADMIN_KEY = "admin-key-for-the-deploy-test-0123456789abcdef"
MARKER = "zq-deploy-marker-4e1a"


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sessions.example.com")])
    now = datetime.now(timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("sessions.example.com"),
            x509.IPAddress(ipaddress.ip_address(NGINX_ADDRESS))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def sessions_seen_by_minisession(server: ServerProcess, openid: str) -> list[dict]:
    response = httpx.get(f"{server.url}/admin/sessions", params={"openid": openid},
                         headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["sessions"]


def test_a_client_logs_in_over_https_through_the_documented_nginx(tmp_path):
    binary = nginx_binary()
    config = server_config(server={"trusted_proxies": [NGINX_ADDRESS]},
                           session={"cookie_secure": True},
                           admin={"enabled": True, "api_keys": [ADMIN_KEY]})
    server = ServerProcess(config, tmp_path / "minisession").start()
    nginx = None
    try:
        server.wait_ready()
        cert, key = self_signed_certificate(tmp_path)
        https_port, http_port = free_port(), free_port()
        site = render_site(NGINX_SITE.read_text(), {
            "    server 127.0.0.1:8888;": f"    server 127.0.0.1:{server.port};",
            "    listen 443 ssl http2;": f"    listen {NGINX_ADDRESS}:{https_port} ssl http2;",
            "    listen 80;": f"    listen {NGINX_ADDRESS}:{http_port};",
            "    listen [::]:443 ssl http2;\n": "",
            "    listen [::]:80;\n": "",
            "/etc/letsencrypt/live/sessions.example.com/fullchain.pem": str(cert),
            "/etc/letsencrypt/live/sessions.example.com/privkey.pem": str(key),
            "/var/log/nginx/": f"{tmp_path}/",
        })
        nginx = Nginx(binary, tmp_path, site).start(https_port, NGINX_ADDRESS)

        transport = httpx.HTTPTransport(verify=ssl.create_default_context(cafile=str(cert)),
                                        local_address=CLIENT_ADDRESS)
        with httpx.Client(transport=transport, base_url=f"https://{NGINX_ADDRESS}:{https_port}",
                          timeout=10) as client:
            login = client.post("/login", json={"code": "dev:alice"})
            assert login.status_code == 200, login.text
            token = login.json()["session_id"]
            assert "Secure" in login.headers["set-cookie"]
            assert login.headers["strict-transport-security"].startswith("max-age=")
            session = {"X-Session": token}
            assert client.put("/session/data", headers=session,
                              json={"cart": [1, 2]}).status_code == 200
            assert client.get("/session/data", headers=session).json() == {"cart": [1, 2]}
            assert client.get("/session").status_code == 200  # by its Secure cookie
            client.cookies.clear()
            assert client.get("/session").status_code == 401
            # A client cannot pass for another address: nginx replaces its X-Forwarded-For.
            spoofed = client.post("/login", json={"code": "dev:mallory"},
                                  headers={"X-Forwarded-For": SPOOFED})
            assert spoofed.status_code == 200
            # The backend API is not reachable from outside through nginx.
            assert client.get("/admin/sessions", params={"openid": "alice"},
                              headers={"Authorization": f"Bearer {ADMIN_KEY}"}
                              ).status_code == 403
            # A code in a query string stays out of nginx's log.
            client.get("/login", params={"code": f"dev:{MARKER}"})
        plain = httpx.get(f"http://{NGINX_ADDRESS}:{http_port}/session", timeout=10)
        assert plain.status_code == 301 and plain.headers["location"].startswith("https://")

        # A client talking to minisession directly is not believed either: only nginx is.
        with httpx.Client(transport=httpx.HTTPTransport(local_address=CLIENT_ADDRESS),
                          base_url=server.url, timeout=10) as direct:
            assert direct.post("/login", json={"code": "dev:trudy"},
                               headers={"X-Forwarded-For": SPOOFED}).status_code == 200

        for openid in ("alice", "mallory", "trudy"):
            assert [s["client_ip"] for s in sessions_seen_by_minisession(server, openid)] == [
                CLIENT_ADDRESS], openid
        access_log = (tmp_path / "minisession-access.log").read_text()
        assert access_log.count(CLIENT_ADDRESS) >= 6, access_log
        assert token not in access_log and MARKER not in access_log and "alice" not in access_log
    finally:
        if nginx is not None:
            nginx.stop()
        server.stop()


def test_the_deploy_document_shows_the_tested_files_verbatim():
    document = DEPLOY_DOC.read_text()
    for path in (NGINX_SITE, SYSTEMD_UNIT):
        assert path.read_text() in document, f"docs/deploy.md must show {path.name} as it is"


def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze not found (Debian: apt-get install systemd)"
    # verify checks that ExecStart= exists: point it at this machine's minisession.
    unit = tmp_path / "minisession.service"
    unit.write_text(SYSTEMD_UNIT.read_text().replace(
        "/opt/minisession/bin/minisession", shutil.which("minisession") or sys.executable))
    done = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True,
                          text=True, timeout=60)
    # Unknown or misspelt keys are only warnings (exit status 0): no output at all is the bar.
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), (
        done.stdout + done.stderr)


def test_the_systemd_unit_has_the_documented_sandbox():
    lines = [line.strip() for line in SYSTEMD_UNIT.read_text().splitlines()]
    settings = {}
    for line in lines:
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    expected = {
        "DynamicUser": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "NoNewPrivileges": "yes", "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "LimitNOFILE": "65536",
        "EnvironmentFile": "/etc/minisession/secrets.env", "KillMode": "mixed",
    }
    for key, value in expected.items():
        assert settings.get(key) == [value], (key, settings.get(key))
    assert "@system-service" in settings["SystemCallFilter"]
