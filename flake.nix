{
  description = "atlogin: sign in to Matrix with a Bluesky / AT Protocol identity";

  # The Matrix Authentication Service module is in NixOS 26.11 and later, with
  # its secret-file fixes from July 2026. flake.lock is written on the first
  # online run when it is not committed.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      # The demo VM and its NixOS test are offered for x86_64 Linux hosts.
      vmSystem = "x86_64-linux";
    in
    {
      packages = forAllSystems (pkgs: {
        default = pkgs.callPackage ./nix/package.nix { };
      });

      nixosModules.default =
        { pkgs, ... }:
        {
          imports = [ ./nix/module.nix ];
          services.atlogin.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        };

      nixosConfigurations.vm = lib.nixosSystem {
        modules = [
          self.nixosModules.default
          ./nix/vm
          { nixpkgs.hostPlatform = vmSystem; }
        ];
      };

      apps.${vmSystem}.vm =
        let
          pkgs = nixpkgs.legacyPackages.${vmSystem};
          runner = lib.getExe self.nixosConfigurations.vm.config.system.build.vm;
        in
        {
          type = "app";
          program = lib.getExe (
            pkgs.writeShellApplication {
              name = "atlogin-vm";
              text = ''
                runner=${runner}
              ''
              + builtins.readFile ./nix/vm/run.sh;
            }
          );
          meta.description = "The demo VM: Synapse, MAS, Element Web and atlogin";
        };

      checks =
        forAllSystems (pkgs: {
          package = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        })
        // {
          ${vmSystem} = {
            package = self.packages.${vmSystem}.default;
            vm-test = nixpkgs.legacyPackages.${vmSystem}.testers.runNixOSTest (
              import ./nix/vm-test.nix { inherit self; }
            );
          };
        };

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${pkgs.stdenv.hostPlatform.system}.default ];
          packages = [
            pkgs.cargo-nextest
            pkgs.clippy
            pkgs.rustfmt
            pkgs.rust-analyzer
            pkgs.postgresql
            pkgs.nixfmt
            pkgs.deadnix
          ];
        };
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt);
    };
}
