# A stand-in evaluation of nix/module.nix for CI machines without nixpkgs:
# the module is called with a small imitation of the `lib` functions it uses
# and of `pkgs.formats.toml`, for a few configurations, and the result is
# printed as JSON for scripts/nix-check to examine (its `settings` are fed to
# `atlogin check-config`). It proves the module's own logic and reached names,
# not that nixpkgs' options are used right: only a real evaluation can.
#
#   nix-instantiate --eval --strict --json nix/checks/module-stub.nix
let
  inherit (builtins)
    attrNames
    concatMap
    elem
    filter
    isAttrs
    listToAttrs
    mapAttrs
    match
    removeAttrs
    stringLength
    substring
    ;
  type = name: { inherit name; };
  lib = rec {
    mkOption = option: option // { _option = true; };
    mkEnableOption =
      description:
      mkOption {
        default = false;
        inherit description;
      };
    mkIf = condition: content: if condition then content else { };
    mkDefault = value: value;
    optional = condition: value: if condition then [ value ] else [ ];
    optionalAttrs = condition: attrs: if condition then attrs else { };
    hasInfix = infix: text: match ".*${escape infix}.*" text != null;
    hasPrefix = prefix: text: substring 0 (stringLength prefix) text == prefix;
    removePrefix =
      prefix: text:
      if hasPrefix prefix text then
        substring (stringLength prefix) (stringLength text - stringLength prefix) text
      else
        text;
    escape = text: builtins.replaceStrings [ "." "[" "]" ] [ "\\." "\\[" "\\]" ] text;
    filterAttrsRecursive =
      keep: attrs:
      listToAttrs (
        concatMap (
          name:
          let
            value = attrs.${name};
          in
          if keep name value then
            [
              {
                inherit name;
                value = if isAttrs value then filterAttrsRecursive keep value else value;
              }
            ]
          else
            [ ]
        ) (attrNames attrs)
      );
    getExe = package: "${package.outPath}/bin/${package.meta.mainProgram}";
    literalExpression = text: { _literal = text; };
    literalMD = text: { _literal = text; };
    types = {
      str = type "str";
      bool = type "bool";
      port = type "port";
      path = type "path";
      package = type "package";
      nullOr = inner: type "nullOr ${inner.name}";
    };
  };
  pkgs.formats.toml = _: {
    type = type "toml";
    # A file name when interpolated; the content stays readable.
    generate = name: value: {
      __toString = _: "/nix/store/stand-in-${name}";
      settings = value;
    };
  };
  package = {
    outPath = "/nix/store/stand-in-atlogin";
    meta.mainProgram = "atlogin";
  };

  module = import ../module.nix;
  declared =
    (module {
      config = throw "options do not read config";
      inherit lib pkgs;
    }).options.services.atlogin;
  defaults = mapAttrs (_: option: option.default) (
    removeAttrs declared (filter (name: !(declared.${name} ? default)) (attrNames declared))
  );
  evaluate =
    overrides:
    let
      cfg = defaults // { inherit package; } // overrides;
      result = module {
        config.services.atlogin = cfg;
        inherit lib pkgs;
      };
      service = result.config.systemd.services.atlogin;
    in
    {
      inherit ((builtins.head service.restartTriggers)) settings;
      inherit (service) after requires;
      inherit (service.serviceConfig)
        ExecStartPre
        ExecStart
        AmbientCapabilities
        CapabilityBoundingSet
        PrivateUsers
        StateDirectory
        ;
      user = attrNames (result.config.users.users or { });
      firewall = result.config.networking.firewall.allowedTCPPorts;
      options = attrNames declared;
      missingDefaults = filter (name: !(elem name (attrNames defaults))) (attrNames declared);
    };
in
{
  vm = evaluate {
    enable = true;
    listenAddress = "0.0.0.0";
    settings = builtins.fromTOML (builtins.readFile ../vm/atlogin.toml);
  };
  production = evaluate {
    enable = true;
    listenAddress = "::1";
    port = 443;
    publicUrl = "https://login.example.org";
    openFirewall = true;
    stateDir = "/srv/atlogin";
    settings = {
      trusted_proxies = [ "::1" ];
      store = {
        kind = "postgres";
        url_env = "ATLOGIN_DATABASE_URL";
      };
      clients = [
        {
          client_id = "mas";
          redirect_uris = [ "https://matrix.example.org/upstream/callback/01JBSKY0000000000000000000" ];
          secret_env = "ATLOGIN_MAS_SECRET";
        }
      ];
      demo = null;
    };
  };
}
