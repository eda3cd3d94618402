# The `atlogin` binary, built from the workspace's Cargo.lock.
{ lib, rustPlatform }:
let
  workspace = lib.importTOML ../Cargo.toml;
  fs = lib.fileset;
  # What cargo reads to build the workspace: manifests, the lock, Rust
  # sources and the server's SQL migrations. Docs, scripts, CI files, the
  # e2e world's Node packages and the Nix files stay out, so editing them
  # does not rebuild the package.
  buildInputsOnly = fs.fileFilter (
    file:
    lib.any file.hasExt [
      "rs"
      "sql"
    ]
    || file.name == "Cargo.toml"
  ) ../.;
in
rustPlatform.buildRustPackage {
  pname = "atlogin";
  inherit (workspace.workspace.package) version;

  src = fs.toSource {
    root = ../.;
    fileset = fs.unions [
      ../Cargo.lock
      (fs.intersection buildInputsOnly (
        fs.unions [
          ../Cargo.toml
          ../core
          ../driver
          ../runtime-tokio
          ../runtime-async-std
          ../server
          ../conformance
          ../interop
          ../e2e
          ../benches
          ../fuzz
        ]
      ))
    ];
  };

  cargoLock.lockFile = ../Cargo.lock;
  cargoBuildFlags = [
    "--package"
    "atlogin-server"
  ];
  # The tests need loopback servers, PostgreSQL and real peers that the Nix
  # sandbox does not have; scripts/test runs them.
  doCheck = false;

  meta = {
    description = "Sign in to Matrix with a Bluesky / AT Protocol identity: an OpenID Connect provider backed by the person's own PDS";
    homepage = "https://github.com/atlogin/atlogin";
    license = with lib.licenses; [
      mit
      asl20
    ];
    mainProgram = "atlogin";
    platforms = lib.platforms.linux;
  };
}
