"""Several hosts on one machine: a network namespace per worker host, joined by a bridge to the root namespace.

Layout of one run (names carry the test process's pid, so a run finds and removes what a crashed earlier run
left, and never touches another live run's):

- a bridge `jcx<pid>b` in the root namespace with the address `10.231.<n>.1/24` (a /24 no interface of the
  machine uses yet): the servers (PostgreSQL, Redis) listen there, and the scheduler and the API reach them there;
- per host, a namespace `jobctl-chaos-<pid>-<k>` holding the end `jcx<pid>n<k>` of a veth pair, with the address
  `10.231.<n>.<10+k>`; the other end, `jcx<pid>h<k>`, is a port of the bridge. A worker started in the namespace
  reaches the servers over that link only (loopback there is its own).

Faults are nftables rules inside a host's namespace (table `inet jobctl_chaos`), so only that host sees them: a
partition drops every packet but loopback's, an asymmetric one only the packets to and from some ports, packet
loss drops that share at random. This machine's kernel has no `sch_netem`: latency is added by a relay
(`tests.chaos.relay`) instead.

Everything here needs root, `ip` and `nft`; `unavailable()` says what is missing.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterable

NS_PREFIX = "jobctl-chaos-"
LINK_PREFIX = "jcx"
NFT_TABLE = "jobctl_chaos"
_NS = re.compile(rf"^{NS_PREFIX}(\d+)-\d+$")
_LINK = re.compile(rf"^{LINK_PREFIX}(\d+)[bhn]\d*$")


def run(*args: str, input_text: str | None = None, check: bool = True) -> str:
    """Run a command, return its stdout; raise with its stderr if it fails (and `check`)."""
    done = subprocess.run(args, input=input_text, capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def unavailable() -> str | None:
    """Why several hosts cannot be simulated here, or None if they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    probe = f"{NS_PREFIX}{os.getpid()}-probe"
    try:
        run("ip", "netns", "add", probe)
        run("ip", "netns", "exec", probe, "nft", "list", "ruleset")
    except (RuntimeError, OSError) as exc:
        return f"cannot create a network namespace with nftables: {exc}"
    finally:
        run("ip", "netns", "del", probe, check=False)
    return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def sweep() -> list[str]:
    """Remove the namespaces and links of runs whose test process is gone (a crashed run); what was removed."""
    removed: list[str] = []
    for name in run("ip", "netns", "list").split():
        match = _NS.match(name)
        if match and not alive(int(match[1])):
            kill_namespace(name)
            removed.append(name)
    for line in run("ip", "-o", "link", "show").splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        match = _LINK.match(name)
        if match and not alive(int(match[1])):
            run("ip", "link", "del", name, check=False)
            removed.append(name)
    return removed


def kill_namespace(name: str) -> None:
    """SIGKILL every process in namespace `name`, then delete it (its end of the veth pair goes with it)."""
    for pid in run("ip", "netns", "pids", name, check=False).split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    run("ip", "netns", "del", name, check=False)


def _free_subnet() -> ipaddress.IPv4Network:
    """A 10.231.n.0/24 that no address of this machine is in."""
    used = [
        ipaddress.ip_interface(word).network
        for line in run("ip", "-o", "-4", "addr", "show").splitlines()
        for word in line.split()[3:4]
    ]
    for n in range(1, 255):
        net = ipaddress.IPv4Network(f"10.231.{n}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free 10.231.n.0/24 subnet")


class Host:
    """A worker host: a network namespace with one link to the bridge and one address."""

    def __init__(self, network: Network, index: int) -> None:
        self.network = network
        self.index = index
        self.ns = f"{NS_PREFIX}{network.run_id}-{index}"
        self.address = str(network.subnet.network_address + 10 + index)
        self.removed = False
        host_end, ns_end = f"{network.prefix}h{index}", f"{network.prefix}n{index}"
        run("ip", "netns", "add", self.ns)
        run("ip", "link", "add", host_end, "type", "veth", "peer", "name", ns_end)
        run("ip", "link", "set", ns_end, "netns", self.ns)
        run("ip", "link", "set", host_end, "master", network.bridge, "up")
        run("ip", "-n", self.ns, "addr", "add", f"{self.address}/{network.subnet.prefixlen}", "dev", ns_end)
        run("ip", "-n", self.ns, "link", "set", ns_end, "up")
        run("ip", "-n", self.ns, "link", "set", "lo", "up")
        self.faults = "none"

    def command(self, argv: list[str]) -> list[str]:
        """`argv` run inside this host's namespace (`ip netns exec` execs it: the pid is the command's)."""
        return ["ip", "netns", "exec", self.ns, *argv]

    def _rules(self, input_rules: Iterable[str], output_rules: Iterable[str], what: str) -> None:
        """Replace this host's fault rules, atomically."""
        body = "\n".join(
            [
                f"add table inet {NFT_TABLE}",
                f"delete table inet {NFT_TABLE}",
                f"table inet {NFT_TABLE} {{",
                "  chain input { type filter hook input priority 0; policy accept;",
                *(f"    {rule}" for rule in input_rules),
                "  }",
                "  chain output { type filter hook output priority 0; policy accept;",
                *(f"    {rule}" for rule in output_rules),
                "  }",
                "}",
            ]
        )
        run("ip", "netns", "exec", self.ns, "nft", "-f", "-", input_text=body + "\n")
        self.faults = what

    def partition(self, ports: Iterable[int] | None = None) -> None:
        """Drop every packet to and from this host (but its loopback's), or only those of TCP `ports` (the
        servers' ports: an asymmetric partition)."""
        if ports is None:
            self._rules(['iifname != "lo" drop'], ['oifname != "lo" drop'], "partition")
            return
        wanted = ", ".join(str(p) for p in ports)
        self._rules([f"tcp sport {{ {wanted} }} drop"], [f"tcp dport {{ {wanted} }} drop"], f"ports {wanted} cut")

    def loss(self, percent: float) -> None:
        """Drop `percent` % of the packets in each direction, at random."""
        per_mille = round(percent * 10)
        self._rules(
            [f'iifname != "lo" numgen random mod 1000 < {per_mille} drop'],
            [f'oifname != "lo" numgen random mod 1000 < {per_mille} drop'],
            f"{percent:g}% loss",
        )

    def heal(self) -> None:
        """Remove every fault rule."""
        if not self.removed:
            run("ip", "netns", "exec", self.ns, "nft", "delete", "table", "inet", NFT_TABLE, check=False)
        self.faults = "none"

    def remove(self) -> None:
        """Lose the host for good: kill every process in it and delete its namespace (and so its link)."""
        if not self.removed:
            kill_namespace(self.ns)
            self.removed = True


class Network:
    """A bridge and its subnet for one run (`close()` removes it and every host). One per test process."""

    def __init__(self) -> None:
        self.run_id = os.getpid()
        self.prefix = f"{LINK_PREFIX}{self.run_id}"
        self.bridge = f"{self.prefix}b"
        self.subnet = _free_subnet()
        self.address = str(self.subnet.network_address + 1)  # the servers' side
        self.hosts: list[Host] = []
        run("ip", "link", "add", "name", self.bridge, "type", "bridge")
        run("ip", "addr", "add", f"{self.address}/{self.subnet.prefixlen}", "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")

    def host(self) -> Host:
        """A new host on this network."""
        host = Host(self, len(self.hosts))
        self.hosts.append(host)
        return host

    def close(self) -> None:
        for host in self.hosts:
            host.remove()
        for index in range(len(self.hosts)):
            run("ip", "link", "del", f"{self.prefix}h{index}", check=False)
        run("ip", "link", "del", self.bridge, check=False)
