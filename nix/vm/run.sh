# `nix run .#vm`: starts the demo VM. $runner (the NixOS VM runner) is set
# above by the flake. The mode is handed to the guest at run time through the
# runner's shared folder, so no URL or key is baked into the Nix store:
#
#   nix run .#vm                                     atlogin as the loopback client
#   ATLOGIN_URL=https://xyz.example nix run .#vm     confidential client at that URL
#   TAILSCALE_HOSTNAME=atlogin TAILSCALE_AUTHKEY=tskey-… nix run .#vm
#                                                    everything on the tailnet's HTTPS name

shared=$(mktemp -d "${TMPDIR:-/tmp}/atlogin-vm.XXXXXX")
chmod 700 "$shared"
trap 'rm -rf "$shared"' EXIT

if [[ -n "${ATLOGIN_URL:-}" ]]; then
    if [[ ! "$ATLOGIN_URL" =~ ^https://[^/?#]+/?$ ]]; then
        echo "ATLOGIN_URL must be an https origin, such as https://abc.example.net (got $ATLOGIN_URL)" >&2
        exit 2
    fi
    printf '%s\n' "$ATLOGIN_URL" >"$shared/atlogin_url"
fi
if [[ -n "${TAILSCALE_HOSTNAME:-}" || -n "${TAILSCALE_AUTHKEY:-}" ]]; then
    if [[ -z "${TAILSCALE_HOSTNAME:-}" || -z "${TAILSCALE_AUTHKEY:-}" ]]; then
        echo "the Tailscale mode needs both TAILSCALE_HOSTNAME and TAILSCALE_AUTHKEY" >&2
        exit 2
    fi
    printf '%s\n' "$TAILSCALE_HOSTNAME" >"$shared/tailscale_hostname"
    (umask 077 && printf '%s\n' "$TAILSCALE_AUTHKEY" >"$shared/tailscale_authkey")
fi
export SHARED_DIR="$shared"

cat >&2 <<'BANNER'
atlogin demo VM (every secret in it is a dummy, for local testing only)
  Element      http://localhost:8080     sign in with "Continue with Bluesky"
  Synapse      http://localhost:8008
  MAS          http://localhost:8090
  atlogin      http://127.0.0.1:9411     (its /demo page signs in without Matrix)
  In the VM:   cat /run/atlogin-vm/urls; journalctl -u atlogin
  Quit:        poweroff in the VM console, or Ctrl-a x
  The VM's disk is ./atlogin-vm.qcow2; delete it to start afresh.
BANNER

"$runner" "$@"
