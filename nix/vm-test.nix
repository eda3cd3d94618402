# checks.<system>.vm-test: the demo VM's stack comes up and is wired together.
# Its Python is in vm-test.py.
{ self }:
{ lib, ... }:
{
  name = "atlogin-vm";
  nodes.machine = {
    imports = [
      self.nixosModules.default
      ./vm
    ];
    # The test talks to the services inside the VM; no host ports, no tailnet.
    virtualisation.forwardPorts = lib.mkForce [ ];
    services.tailscale.enable = lib.mkForce false;
  };
  testScript = builtins.readFile ./vm-test.py;
}
