# The demo VM: PostgreSQL, Synapse delegating authentication to Matrix
# Authentication Service, MAS with atlogin as its upstream provider ("Sign in
# with Bluesky"), Element Web, and atlogin. Started by `nix run .#vm`.
#
# Ports are the same inside and outside (forwarded on the host's 127.0.0.1), so
# every URL holds on both sides: Element 8080, Synapse 8008, MAS 8090, atlogin
# 9411. Every secret here is a dummy FOR LOCAL TESTING ONLY.
#
# The URLs are settled at boot, not at evaluation, by atlogin-vm-setup (see
# setup.py) from what `nix run .#vm` put in the shared folder: nothing (atlogin
# is the loopback client), ATLOGIN_URL (atlogin is the confidential client at
# that https URL), or TAILSCALE_HOSTNAME + TAILSCALE_AUTHKEY (everything on the
# tailnet's HTTPS name). So no key lands in the Nix store and no --impure is
# needed.
{
  config,
  lib,
  modulesPath,
  pkgs,
  ...
}:
let
  ports = {
    element = 8080;
    synapse = 8008;
    mas = 8090;
    masHealth = 8091;
    atlogin = 9411;
    # nginx's single origin for Element and Synapse, behind `tailscale serve`.
    matrixFront = 8088;
  };
  run = "/run/atlogin-vm";
  # Shared by Synapse and MAS; a dummy for local testing only.
  masSynapseSecret = "LOCAL-TESTING-ONLY-mas-synapse-shared-secret";

  setup = pkgs.writers.writePython3Bin "atlogin-vm-setup" {
    libraries = [ pkgs.python3Packages.tomli-w ];
    flakeIgnore = [ "E501" ];
  } (builtins.readFile ./setup.py);

  element = pkgs.element-web;
in
{
  imports = [ "${modulesPath}/virtualisation/qemu-vm.nix" ];

  system.stateVersion = "26.11";
  networking.hostName = "atlogin-vm";

  virtualisation = {
    memorySize = 4096;
    cores = 2;
    diskSize = 8192;
    graphics = false;
    forwardPorts =
      map
        (port: {
          from = "host";
          host.address = "127.0.0.1";
          host.port = port;
          guest.port = port;
        })
        [
          ports.element
          ports.synapse
          ports.mas
          ports.atlogin
        ];
  };
  networking.firewall.allowedTCPPorts = [
    ports.element
    ports.synapse
    ports.mas
    ports.atlogin
  ];

  services.getty.autologinUser = "root";
  services.getty.helpLine = ''

    atlogin demo VM: Element http://localhost:${toString ports.element}
    Logs: journalctl -u atlogin -u matrix-authentication-service -u matrix-synapse
    The URLs in use: cat ${run}/urls.  Quit: poweroff (or Ctrl-a x).
  '';
  environment.systemPackages = [
    pkgs.curl
    pkgs.jq
  ];

  # Settles the URLs of this boot and writes what depends on them.
  systemd.services.atlogin-vm-setup = {
    description = "atlogin demo VM: URLs, runtime configuration and dummy secrets";
    wantedBy = [ "multi-user.target" ];
    wants = [ "network-online.target" ];
    after = [
      "network-online.target"
      "tailscaled.service"
    ];
    before = [
      "atlogin.service"
      "matrix-synapse.service"
      "matrix-authentication-service.service"
      "nginx.service"
    ];
    requiredBy = [
      "atlogin.service"
      "matrix-synapse.service"
      "matrix-authentication-service.service"
      "nginx.service"
    ];
    path = [
      pkgs.openssl
      pkgs.tailscale
    ];
    environment = {
      VM_RUN_DIR = run;
      VM_SHARED_DIR = "/tmp/shared";
      VM_STATE_DIR = "/var/lib/atlogin-vm";
      VM_ATLOGIN_BASE_CONFIG = config.services.atlogin.configFile;
      VM_PORTS = builtins.toJSON ports;
    };
    serviceConfig = {
      Type = "oneshot";
      RemainAfterExit = true;
      # Joining a tailnet may take a while; it must not hold the stack forever.
      TimeoutStartSec = "3min";
      ExecStart = lib.getExe setup;
    };
  };

  services.tailscale.enable = true;

  services.postgresql = {
    enable = true;
    # Synapse wants C collation, which ensureDatabases does not give.
    initialScript = pkgs.writeText "synapse-database.sql" ''
      CREATE ROLE "matrix-synapse" WITH LOGIN;
      CREATE DATABASE "matrix-synapse" WITH OWNER "matrix-synapse"
        TEMPLATE template0 LC_COLLATE = 'C' LC_CTYPE = 'C';
    '';
  };

  services.matrix-synapse = {
    enable = true;
    # public_baseurl comes from this boot's URLs.
    extraConfigFiles = [ "${run}/synapse.yaml" ];
    settings = {
      server_name = "localhost";
      listeners = [
        {
          port = ports.synapse;
          bind_addresses = [ "0.0.0.0" ];
          type = "http";
          tls = false;
          x_forwarded = true;
          resources = [
            {
              names = [ "client" ];
              compress = false;
            }
          ];
        }
      ];
      database = {
        name = "psycopg2";
        args = {
          user = "matrix-synapse";
          database = "matrix-synapse";
        };
      };
      enable_registration = false;
      report_stats = false;
      trusted_key_servers = [ ];
      matrix_authentication_service = {
        enabled = true;
        endpoint = "http://127.0.0.1:${toString ports.mas}/";
        secret = masSynapseSecret;
      };
    };
  };

  services.matrix-authentication-service = {
    enable = true;
    createDatabase = true;
    # public_base, the secrets and the upstream provider (whose issuer is
    # this boot's atlogin URL) are written at boot.
    extraConfigFiles = [ "${run}/mas.yaml" ];
    settings = {
      http.listeners = [
        {
          name = "web";
          binds = [
            {
              host = "0.0.0.0";
              port = ports.mas;
            }
          ];
          resources = map (name: { inherit name; }) [
            "discovery"
            "human"
            "oauth"
            "compat"
            "graphql"
            "assets"
          ];
        }
        {
          name = "internal";
          binds = [
            {
              host = "127.0.0.1";
              port = ports.masHealth;
            }
          ];
          resources = [ { name = "health"; } ];
        }
      ];
      matrix = {
        homeserver = "localhost";
        endpoint = "http://127.0.0.1:${toString ports.synapse}/";
        secret = masSynapseSecret;
      };
      passwords.enabled = false;
      # Element registers itself; over plain http on localhost.
      policy.data.client_registration.allow_insecure_uris = true;
    };
  };

  services.atlogin = {
    enable = true;
    listenAddress = "0.0.0.0";
    port = ports.atlogin;
    settings = lib.importTOML ./atlogin.toml;
    environmentFile = "${run}/atlogin.env";
  };
  # This boot's configuration: atlogin.toml plus the Tailscale mode's
  # redirect URI, written by the setup.
  systemd.services.atlogin.serviceConfig = {
    ExecStartPre = lib.mkForce "${lib.getExe config.services.atlogin.package} check-config ${run}/atlogin.toml";
    ExecStart = lib.mkForce "${lib.getExe config.services.atlogin.package} serve --config ${run}/atlogin.toml";
  };

  services.nginx = {
    enable = true;
    virtualHosts = {
      element = {
        listen = [
          {
            addr = "0.0.0.0";
            port = ports.element;
          }
        ];
        root = element;
        locations."= /config.json".alias = "${run}/element-config.json";
      };
      # Element and Synapse on one origin, for `tailscale serve`.
      matrix-front = {
        listen = [
          {
            addr = "127.0.0.1";
            port = ports.matrixFront;
          }
        ];
        root = element;
        locations = {
          "= /config.json".alias = "${run}/element-config.json";
          "= /.well-known/matrix/client" = {
            alias = "${run}/well-known-client.json";
            extraConfig = ''
              default_type application/json;
              add_header Access-Control-Allow-Origin *;
            '';
          };
          "/_matrix".proxyPass = "http://127.0.0.1:${toString ports.synapse}";
          "/_synapse".proxyPass = "http://127.0.0.1:${toString ports.synapse}";
        };
      };
    };
  };
}
