# The demo VM's NixOS test (nix/vm-test.nix). `machine` is the test driver's.
import json

PROVIDER = "01JBSKY0000000000000000000"

machine.wait_for_unit("atlogin-vm-setup.service")
for unit in (
    "postgresql.service",
    "matrix-synapse.service",
    "matrix-authentication-service.service",
    "atlogin.service",
    "nginx.service",
):
    machine.wait_for_unit(unit)
for port in (8008, 8080, 8090, 9411):
    machine.wait_for_open_port(port)

with subtest("atlogin serves its discovery document as the loopback client"):
    discovery = json.loads(
        machine.succeed("curl -sf http://127.0.0.1:9411/.well-known/openid-configuration")
    )
    assert discovery["issuer"] == "http://127.0.0.1:9411", discovery
    assert "RS256" in discovery["id_token_signing_alg_values_supported"], discovery
    machine.succeed("curl -sf http://127.0.0.1:9411/readyz")

with subtest("Synapse delegates authentication to MAS"):
    machine.succeed("curl -sf http://localhost:8008/_matrix/client/versions")
    metadata = json.loads(
        machine.succeed("curl -sf http://localhost:8008/_matrix/client/v1/auth_metadata")
    )
    assert metadata["issuer"] == "http://localhost:8090/", metadata

with subtest("MAS lists atlogin as its upstream provider and sends people to it"):
    # With passwords off and one upstream provider, MAS's login page sends
    # people straight to it.
    login = machine.succeed(
        "curl -s -o /dev/null -w '%{redirect_url}' http://localhost:8090/login"
    )
    assert login.endswith(f"/upstream/authorize/{PROVIDER}"), login
    target = machine.succeed(
        "curl -s -o /dev/null -w '%{redirect_url}' "
        f"http://localhost:8090/upstream/authorize/{PROVIDER}"
    )
    assert target.startswith("http://127.0.0.1:9411/authorize?"), target
    form = machine.succeed(f"curl -sf '{target}'")
    assert "Your handle" in form, form

with subtest("Element's config.json points at the homeserver"):
    config = json.loads(machine.succeed("curl -sf http://localhost:8080/config.json"))
    homeserver = config["default_server_config"]["m.homeserver"]
    assert homeserver["base_url"] == "http://localhost:8008", config
    assert homeserver["server_name"] == "localhost", config
