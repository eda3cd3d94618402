# services.atlogin: atlogin as a hardened systemd service.
#
# `settings` is atlogin's TOML configuration as Nix values (see the README's
# "Running the server"); `publicUrl`, `listenAddress` and `port` fill in
# `public_url` and `listen`. Secrets stay out of the Nix store: name them in
# the settings with `secret_env` / `url_env` and put the values in
# `environmentFile`, or point `secret_file` / `url_file` at files.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.atlogin;
  toml = pkgs.formats.toml { };
  inherit (lib)
    mkEnableOption
    mkOption
    mkIf
    types
    ;

  host = if lib.hasInfix ":" cfg.listenAddress then "[${cfg.listenAddress}]" else cfg.listenAddress;
  settings = lib.filterAttrsRecursive (_: value: value != null) (
    cfg.settings
    // {
      listen = "${host}:${toString cfg.port}";
      state_dir = cfg.stateDir;
    }
    // lib.optionalAttrs (cfg.publicUrl != null) { public_url = cfg.publicUrl; }
  );
  configFile = toml.generate "atlogin.toml" settings;
  usesPostgres = (cfg.settings.store.kind or "sqlite") == "postgres";
  exe = lib.getExe cfg.package;
in
{
  options.services.atlogin = {
    enable = mkEnableOption "atlogin, the Bluesky / AT Protocol sign-in provider for Matrix";

    package = mkOption {
      type = types.package;
      description = "The atlogin package; the flake's module sets its own build.";
    };

    settings = mkOption {
      type = toml.type;
      default = { };
      example = lib.literalExpression ''
        {
          trusted_proxies = [ "127.0.0.1" ];
          clients = [
            {
              client_id = "mas";
              redirect_uris = [ "https://matrix.example.org/upstream/callback/01JBSKY0000000000000000000" ];
              secret_env = "ATLOGIN_MAS_SECRET";
            }
          ];
        }
      '';
      description = ''
        atlogin's configuration, rendered to TOML. `listen`, `state_dir` and
        (when set) `public_url` come from the options of the same meaning.
        Attributes set to `null` are left out (TOML has no null), but not
        inside lists: leave them out of list elements yourself.
        The rendered file is checked with `atlogin check-config` before each start.
      '';
    };

    publicUrl = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "https://login.example.org";
      description = ''
        The issuer, an origin. https makes atlogin a confidential atproto client
        (its client metadata is served at `/oauth-client-metadata.json`); `null`
        or an `http://127.0.0.1:…` URL keeps it the loopback client. The
        environment variable `ATLOGIN_PUBLIC_URL` (from `environmentFile`)
        overrides it at run time.
      '';
    };

    listenAddress = mkOption {
      type = types.str;
      default = "127.0.0.1";
      description = "The address to listen on; behind a reverse proxy keep loopback.";
    };

    port = mkOption {
      type = types.port;
      default = 9411;
      description = "The port to listen on.";
    };

    environmentFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = "/run/secrets/atlogin.env";
      description = ''
        A systemd environment file with the secrets the settings name by
        `secret_env` / `url_env`, and optionally `ATLOGIN_PUBLIC_URL`. Give a
        path as a string so that it is not copied into the Nix store.
      '';
    };

    stateDir = mkOption {
      type = types.str;
      default = "/var/lib/atlogin";
      description = ''
        Where atlogin keeps its keys (mode 0600) and, with the default store,
        its SQLite database. Replicas sharing one PostgreSQL must share the keys.
      '';
    };

    user = mkOption {
      type = types.str;
      default = "atlogin";
      description = "The user atlogin runs as; created when left at the default.";
    };

    group = mkOption {
      type = types.str;
      default = "atlogin";
      description = "The group atlogin runs as; created when left at the default.";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Whether to open `port` in the firewall.";
    };

    configFile = mkOption {
      type = types.path;
      readOnly = true;
      default = configFile;
      defaultText = lib.literalMD "the rendered `settings`";
      description = "The rendered configuration file (for `atlogin check-config`).";
    };
  };

  config = mkIf cfg.enable {
    users.users = mkIf (cfg.user == "atlogin") {
      atlogin = {
        isSystemUser = true;
        inherit (cfg) group;
        home = cfg.stateDir;
      };
    };
    users.groups = mkIf (cfg.group == "atlogin") { atlogin = { }; };

    networking.firewall.allowedTCPPorts = mkIf cfg.openFirewall [ cfg.port ];

    systemd.tmpfiles.settings.atlogin = mkIf (!lib.hasPrefix "/var/lib/" cfg.stateDir) {
      ${cfg.stateDir}.d = {
        inherit (cfg) user group;
        mode = "0700";
      };
    };

    systemd.services.atlogin = {
      description = "atlogin: Bluesky sign-in for Matrix (OpenID Connect provider)";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ] ++ lib.optional usesPostgres "postgresql.target";
      requires = lib.optional usesPostgres "postgresql.target";
      restartTriggers = [ configFile ];

      serviceConfig = {
        ExecStartPre = "${exe} check-config ${configFile}";
        ExecStart = "${exe} serve --config ${configFile}";
        User = cfg.user;
        Group = cfg.group;
        EnvironmentFile = lib.mkIf (cfg.environmentFile != null) cfg.environmentFile;
        StateDirectory = mkIf (lib.hasPrefix "/var/lib/" cfg.stateDir) (
          lib.removePrefix "/var/lib/" cfg.stateDir
        );
        StateDirectoryMode = "0700";
        ReadWritePaths = [ cfg.stateDir ];
        WorkingDirectory = cfg.stateDir;
        Restart = "on-failure";
        RestartSec = 2;
        # atlogin drains requests in flight for up to 20 s after SIGTERM.
        TimeoutStopSec = 30;
        UMask = "0077";

        AmbientCapabilities = lib.optional (cfg.port < 1024) "CAP_NET_BIND_SERVICE";
        # An empty list would leave the bounding set alone; [ "" ] empties it.
        CapabilityBoundingSet = if cfg.port < 1024 then [ "CAP_NET_BIND_SERVICE" ] else [ "" ];
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        PrivateUsers = cfg.port >= 1024;
        ProtectClock = true;
        ProtectHostname = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectProc = "invisible";
        ProcSubset = "pid";
        RestrictAddressFamilies = [
          "AF_INET"
          "AF_INET6"
          "AF_UNIX"
        ];
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        RemoveIPC = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = [
          "@system-service"
          "~@privileged"
        ];
      };
    };
  };
}
