"""atlogin-vm-setup: settles this boot's URLs in the demo VM and writes what
depends on them, before atlogin, MAS, Synapse and nginx start.

Three modes, chosen by what `nix run .#vm` left in the shared folder:

- nothing: atlogin is the atproto loopback client at http://127.0.0.1:9411;
  everything else is on http://localhost:<port>.
- atlogin_url: atlogin is the confidential client at that https URL (a tunnel
  to the host's port 9411); everything else stays on localhost.
- tailscale_hostname + tailscale_authkey: the VM joins the tailnet and serves
  everything on its HTTPS name: atlogin on 443, Element and Synapse on 8443,
  MAS on 10000.

Every secret written here is a dummy for local testing only, except the
Tailscale key, which is read from the shared folder and never copied.
"""

import json
import os
import pathlib
import subprocess
import time
import tomllib

import tomli_w

RUN = pathlib.Path(os.environ["VM_RUN_DIR"])
SHARED = pathlib.Path(os.environ["VM_SHARED_DIR"])
STATE = pathlib.Path(os.environ["VM_STATE_DIR"])
PORTS = json.loads(os.environ["VM_PORTS"])
# The MAS upstream provider's id (a ULID) and the client secret atlogin and
# MAS share: dummies for local testing only.
PROVIDER_ID = "01JBSKY0000000000000000000"
MAS_CLIENT_SECRET = "LOCAL-TESTING-ONLY-atlogin-mas-client-secret"
MAS_ENCRYPTION = "0123456789abcdef" * 4  # LOCAL TESTING ONLY


def shared(name):
    path = SHARED / name
    try:
        value = path.read_text().strip()
    except OSError:
        return ""
    return value


def write(path, text, mode=0o600, owner=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".new")
    temporary.write_text(text)
    os.chmod(temporary, mode)
    if owner:
        subprocess.run(["chown", owner, str(temporary)], check=True)
    temporary.replace(path)


def tailscale_name(hostname):
    """Joins the tailnet and answers the VM's HTTPS name on it."""
    subprocess.run(
        [
            "tailscale",
            "up",
            f"--hostname={hostname}",
            f"--auth-key=file:{SHARED / 'tailscale_authkey'}",
        ],
        check=True,
    )
    for _ in range(60):
        status = json.loads(
            subprocess.run(
                ["tailscale", "status", "--json"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        name = status.get("Self", {}).get("DNSName", "").rstrip(".")
        if name:
            return name
        time.sleep(1)
    raise SystemExit("tailscale: the VM got no DNS name on the tailnet")


def serve_on_tailnet():
    for https_port, local_port in (
        (443, PORTS["atlogin"]),
        (8443, PORTS["matrixFront"]),
        (10000, PORTS["mas"]),
    ):
        subprocess.run(
            [
                "tailscale",
                "serve",
                "--bg",
                "--yes",
                f"--https={https_port}",
                f"http://127.0.0.1:{local_port}",
            ],
            check=True,
        )


def urls():
    hostname = shared("tailscale_hostname")
    if hostname and (SHARED / "tailscale_authkey").exists():
        name = tailscale_name(hostname)
        serve_on_tailnet()
        return {
            "mode": "tailscale",
            "atlogin": f"https://{name}",
            "synapse": f"https://{name}:8443/",
            "element": f"https://{name}:8443/",
            "mas": f"https://{name}:10000/",
        }
    local = {
        "synapse": f"http://localhost:{PORTS['synapse']}/",
        "element": f"http://localhost:{PORTS['element']}/",
        "mas": f"http://localhost:{PORTS['mas']}/",
    }
    public = shared("atlogin_url").rstrip("/")
    if public:
        return {"mode": "atlogin_url", "atlogin": public, **local}
    return {"mode": "loopback", "atlogin": f"http://127.0.0.1:{PORTS['atlogin']}", **local}


def mas_signing_key():
    """An RSA key for MAS, made on first boot and kept in the VM's disk."""
    key = STATE / "mas-signing-key.pem"
    if not key.exists():
        STATE.mkdir(mode=0o700, parents=True, exist_ok=True)
        subprocess.run(
            ["openssl", "genrsa", "-out", str(key), "2048"],
            check=True,
            capture_output=True,
        )
        os.chmod(key, 0o600)
    return key.read_text()


def main():
    RUN.mkdir(mode=0o755, parents=True, exist_ok=True)
    found = urls()
    callback = f"{found['mas']}upstream/callback/{PROVIDER_ID}"

    # atlogin: this boot's public URL and MAS's redirect URI.
    base = tomllib.loads(pathlib.Path(os.environ["VM_ATLOGIN_BASE_CONFIG"]).read_text())
    for client in base.get("clients", []):
        if client["client_id"] == "mas" and callback not in client["redirect_uris"]:
            client["redirect_uris"].append(callback)
    write(RUN / "atlogin.toml", tomli_w.dumps(base), mode=0o644)
    env = [f"ATLOGIN_MAS_SECRET={MAS_CLIENT_SECRET}"]
    if found["mode"] != "loopback":
        env.append(f"ATLOGIN_PUBLIC_URL={found['atlogin']}")
    write(RUN / "atlogin.env", "\n".join(env) + "\n")

    # MAS (JSON is YAML): its public URL, its secrets, atlogin upstream.
    mas = {
        "http": {"public_base": found["mas"]},
        "secrets": {
            "encryption": MAS_ENCRYPTION,
            "keys": [{"kid": "vm-rsa", "key": mas_signing_key()}],
        },
        "upstream_oauth2": {
            "providers": [
                {
                    "id": PROVIDER_ID,
                    "human_name": "Bluesky",
                    "brand_name": "bluesky",
                    "issuer": found["atlogin"],
                    "client_id": "mas",
                    "client_secret": MAS_CLIENT_SECRET,
                    "token_endpoint_auth_method": "client_secret_basic",
                    "id_token_signed_response_alg": "RS256",
                    "scope": "openid profile",
                    # atlogin's loopback issuer is plain http.
                    "discovery_mode": "insecure" if found["atlogin"].startswith("http:") else "oidc",
                    "pkce_method": "always",
                    "fetch_userinfo": False,
                    "claims_imports": {
                        "subject": {"template": "{{ user.sub }}"},
                        "localpart": {"action": "require", "template": "{{ user.preferred_username }}"},
                        "displayname": {"action": "suggest", "template": "{{ user.name }}"},
                    },
                }
            ]
        },
    }
    write(RUN / "mas.yaml", json.dumps(mas, indent=2))

    write(
        RUN / "synapse.yaml",
        json.dumps({"public_baseurl": found["synapse"]}),
        owner="matrix-synapse",
    )

    homeserver = {"base_url": found["synapse"].rstrip("/"), "server_name": "localhost"}
    element = {
        "default_server_config": {"m.homeserver": homeserver},
        "disable_custom_urls": False,
        "disable_guests": True,
        "brand": "Element (atlogin demo)",
    }
    write(RUN / "element-config.json", json.dumps(element, indent=2), mode=0o644)
    write(RUN / "well-known-client.json", json.dumps({"m.homeserver": homeserver}), mode=0o644)

    lines = [f"{name}: {url}" for name, url in found.items()]
    write(RUN / "urls", "\n".join(lines) + "\n", mode=0o644)
    print("; ".join(lines))


if __name__ == "__main__":
    main()
