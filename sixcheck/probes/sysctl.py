"""Read kernel sysctls from /proc/sys: cheap, unprivileged, and exactly what `sysctl` prints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .base import Fields, Observation, ProbeContext, ProbeRequest

PROC_SYS = Path("/proc/sys")


@dataclass(frozen=True, kw_only=True)
class SysctlValue(Observation):
    key: str
    value: str | None = None
    interface_missing: bool = False
    ipv6_disabled_in_kernel: bool = False

    compared = Fields(stable=("error", "value", "interface_missing", "ipv6_disabled_in_kernel"))

    def as_int(self) -> int | None:
        try:
            return int(self.value) if self.value is not None else None
        except ValueError:
            return None


@dataclass(frozen=True)
class SysctlRead(ProbeRequest[SysctlValue]):
    """Read one key such as `net.ipv6.conf.wan0.accept_ra`."""

    key: str

    async def run_one(self, ctx: ProbeContext) -> SysctlValue:
        return read_sysctl(self.key)


def _conf_interface(key: str) -> str | None:
    parts = key.split(".")
    if len(parts) == 5 and parts[:3] in (["net", "ipv6", "conf"], ["net", "ipv4", "conf"]):
        return parts[3]
    return None


def read_sysctl(key: str, root: Path = PROC_SYS) -> SysctlValue:
    """Read a key; a missing file is explained (no interface, or IPv6 off in the kernel)."""
    path = root.joinpath(*key.split("."))
    try:
        return SysctlValue(key=key, value=path.read_text().strip())
    except FileNotFoundError:
        if key.startswith("net.ipv6.") and not (root / "net" / "ipv6").exists():
            return SysctlValue(
                key=key,
                ipv6_disabled_in_kernel=True,
                error="IPv6 is disabled in this kernel (booted with ipv6.disable=1): "
                "/proc/sys/net/ipv6 does not exist",
            )
        iface = _conf_interface(key)
        if iface and iface not in {"all", "default"}:
            return SysctlValue(
                key=key,
                interface_missing=True,
                error=f"interface {iface} does not exist on this node ({path} is missing)",
            )
        return SysctlValue(key=key, error=f"{path} does not exist")
    except OSError as exc:
        return SysctlValue(key=key, error=f"cannot read {path}: {exc.strerror}")
