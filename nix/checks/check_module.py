"""Examines the stand-in evaluation of the NixOS module (module-stub.nix):
what the module derives from its options, and that the settings it renders
pass `atlogin check-config`.

    python check_module.py <evaluation.json> <atlogin binary>
"""

import json
import os
import subprocess
import sys
import tempfile

import tomli_w

evaluation = json.load(open(sys.argv[1]))
atlogin = sys.argv[2]
problems = []


def expect(case, what, found, wanted):
    if found != wanted:
        problems.append(f"{case}: {what} is {found!r}, not {wanted!r}")


vm, production = evaluation["vm"], evaluation["production"]
expect("vm", "listen", vm["settings"]["listen"], "0.0.0.0:9411")
expect("vm", "state_dir", vm["settings"]["state_dir"], "/var/lib/atlogin")
expect("vm", "StateDirectory", vm["StateDirectory"], "atlogin")
expect("vm", "capabilities", vm["AmbientCapabilities"], [])
expect("vm", "bounding set emptied", vm["CapabilityBoundingSet"], [""])
expect("vm", "requires", vm["requires"], [])
expect("vm", "ordering", vm["after"], ["network-online.target"])
expect("production", "listen (IPv6 in brackets)", production["settings"]["listen"], "[::1]:443")
expect("production", "public_url", production["settings"]["public_url"], "https://login.example.org")
expect("production", "a null setting is dropped", "demo" in production["settings"], False)
expect("production", "capabilities (port 443)", production["AmbientCapabilities"], ["CAP_NET_BIND_SERVICE"])
expect("production", "bounding set (port 443)", production["CapabilityBoundingSet"], ["CAP_NET_BIND_SERVICE"])
expect("production", "requires PostgreSQL", production["requires"], ["postgresql.target"])
expect("production", "ordering (PostgreSQL)", production["after"], ["network-online.target", "postgresql.target"])
expect("production", "firewall", production["firewall"], [443])
for case in ("vm", "production"):
    expect(case, "options without a default", evaluation[case]["missingDefaults"], ["package"])
    start = evaluation[case]["ExecStart"]
    expect(case, "ExecStart", start.split(" ", 1)[1], "serve --config /nix/store/stand-in-atlogin.toml")

environment = dict(
    os.environ,
    ATLOGIN_MAS_SECRET="placeholder-for-the-check-only",
    ATLOGIN_DATABASE_URL="postgres://atlogin@db.example.org/atlogin",
)
with tempfile.TemporaryDirectory() as folder:
    for case in ("vm", "production"):
        path = os.path.join(folder, f"{case}.toml")
        with open(path, "wb") as file:
            tomli_w.dump(evaluation[case]["settings"], file)
        checked = subprocess.run(
            [atlogin, "check-config", path],
            env=environment,
            capture_output=True,
            text=True,
        )
        if checked.returncode != 0:
            problems.append(f"{case}: check-config refused the rendered settings:\n{checked.stdout}{checked.stderr}")

for problem in problems:
    print(problem)
sys.exit(1 if problems else 0)
