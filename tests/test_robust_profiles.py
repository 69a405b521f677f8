"""Bad input: every broken profile is refused with exit code 4 and a line naming the key or the
file problem, never a traceback.

The catalogue lives in tests/profiles_bad/ (one file per way a profile can be wrong); files that
would be too big or cannot be committed (a FIFO, a 2 MiB file, a symlink loop) are made here. Each
file goes through `pytest --profile FILE` as a user runs it, and through `sixcheck.schema.load`.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import REPO, run_sixcheck
from sixcheck.schema import ProfileError, load

BAD = REPO / "tests" / "profiles_bad"

#: file -> text the refusal must contain (the key path and what is wrong, or the file problem).
EXPECTED: dict[str, str] = {
    "a-directory.yaml": "is a directory, not a profile file",
    "addr-does-not-parse.yaml": "dns.resolvers.0: '2001:db8::53::1' is not an IPv6 address",
    "addr-ipv4-for-ipv6.yaml": "dns.resolvers.0: '192.0.2.53' is an IPv4 address; an IPv6",
    "addr-number.yaml": "ntp.servers.0: expected an IPv6 address or a name as a string",
    "billion-laughs.yaml": "values once aliases are expanded",
    "binary.yaml": "not UTF-8 text",
    "deep-nesting.yaml": "nested more than 32 levels deep",
    "duplicate-key-nested.yaml": "sysctl.interfaces.eth0.forwarding: duplicate key",
    "duplicate-key-top.yaml": ":7: node: duplicate key",
    "duplicate-list-entry.yaml": "dns.resolvers.1: repeats entry 0",
    "duplicate-lookup.yaml": "dns.lookups.1: repeats entry 0",
    "empty-area-mapping.yaml": "dns: the dns area is empty",
    "empty-area.yaml": "dns: empty section",
    "empty-list.yaml": "firewall.outbound_allow.0.hosts: List should have at least 1 item",
    "empty-mapping.yaml": "nd.interfaces: Dictionary should have at least 1 item",
    "empty.yaml": "the profile is empty",
    "key-is-a-mapping.yaml": "a key must be a name, not a list or mapping",
    "key-not-a-name.yaml": "sysctl.interfaces.1: key '1' reads as a number",
    "missing-node.yaml": "node: required key is missing",
    "no-area.yaml": "the profile selects no area",
    "non-utf8.yaml": "not UTF-8 text (byte 117)",
    "not-a-mapping-list.yaml": "a profile is a mapping of keys, got list",
    "not-a-mapping-scalar.yaml": "a profile is a mapping of keys, got str",
    "nul-bytes.yaml": ":7: YAML error: control character U+0000",
    "only-comments.yaml": "the profile is empty",
    "prefix-bad-length.yaml": "routes.addresses.eth0.expect.0.prefix: '2001:db8::/129' is not a prefix",
    "prefix-host-bits.yaml": "has host bits set; did you mean 2001:db8:1:1::/64?",
    "prefix-ipv4.yaml": "'192.0.2.0/24' is an IPv4 prefix; an IPv6 prefix is needed",
    "prefix-no-length.yaml": "nd.interfaces.eth0.prefixes.0.prefix: '2001:db8:1:1::' is not a prefix",
    "recursive-alias.yaml": "alias *loop refers to a value containing itself",
    "syntax-bad-indent.yaml": ":3: YAML syntax error",
    "syntax-control-char.yaml": ":7: YAML error: control character U+0007",
    "syntax-python-tag.yaml": ":7: YAML error: could not determine a constructor",
    "syntax-tab-indent.yaml": ":2: YAML syntax error",
    "syntax-two-documents.yaml": "expected a single document",
    "syntax-unclosed-brace.yaml": ":2: YAML syntax error",
    "syntax-undefined-alias.yaml": ":6: YAML syntax error: found undefined alias",
    "type-bool-for-int.yaml": "sysctl.interfaces.eth0.forwarding: Input should be a valid integer, got bool",
    "type-list-for-mapping.yaml": "interfaces: Input should be a valid dictionary, got list",
    "type-mapping-for-list.yaml": "dns.resolvers: Input should be a valid list, got dict",
    "type-null-required.yaml": "node: Input should be a valid dictionary, got nothing (the key has no value)",
    "type-string-for-int.yaml": "sysctl.interfaces.eth0.forwarding: Input should be a valid integer, got str '0'",
    "type-timeout-with-unit.yaml": "timeouts.probe: Input should be a valid number, got str '2s'",
    "undeclared-interface.yaml": "sysctl.interfaces.eth9 names interface 'eth9', not declared",
    "unknown-area.yaml": "dhcp6: unknown key",
    "unknown-dns-lookup.yaml": "dns.lookups.0.typ: unknown key",
    "unknown-dns.yaml": "dns.resolver: unknown key",
    "unknown-firewall.yaml": "firewall.outbound_allow.0.retries: unknown key",
    "unknown-interface.yaml": "interfaces.eth0.mtu: unknown key",
    "unknown-nd.yaml": "nd.interfaces.eth0.prefix: unknown key",
    "unknown-node.yaml": "node.name: unknown key",
    "unknown-ntp.yaml": "ntp.max_offst: unknown key",
    "unknown-routes.yaml": "routes.defaults: unknown key",
    "unknown-sysctl.yaml": "sysctl.interfaces.eth0.forwading: unknown key",
    "unknown-timeouts.yaml": "timeouts.total: unknown key",
    "unknown-top-level.yaml": ":7: timeout: unknown key",
    "unknown-tunnel.yaml": "tunnel.far_endd: unknown key",
    "unknown-vpn.yaml": "vpn.killswitch: unknown key",
    "utf16.yaml": "not UTF-8 text",
    "value-dns-name.yaml": "dns.lookups.0.name: 'www..example.net' is not a DNS name",
    "value-huge-number.yaml": "timeouts.probe: a number of 5000 digits is out of range",
    "value-interface-name.yaml": "'eth0/1' cannot be a Linux interface name",
    "value-out-of-range.yaml": "sysctl.interfaces.eth0.accept_ra: Input should be less than or equal to 2",
    "value-port-zero.yaml": "firewall.outbound_allow.0.tcp.0: Input should be greater than or equal to 1",
    "value-role.yaml": "node.role: Input should be 'router', 'host' or 'outside', got 'gateway'",
    "value-timeout-nan.yaml": "timeouts.probe: Input should be a finite number",
    "value-timeout-negative.yaml": "timeouts.run: Input should be greater than 0",
    "value-version.yaml": "version: Input should be 1, got 2",
}

GOOD_HEAD = "node: {role: host}\ninterfaces:\n  lo: {role: other}\n"
GOOD_SYSCTL = "sysctl:\n  interfaces:\n    lo: {disable_ipv6: 0}\n"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, str]:
    """Broken files too big or too odd for the repository, with what the refusal must say."""
    d = tmp_path_factory.mktemp("bad")
    cases: dict[Path, str] = {}
    huge = d / "huge-list.yaml"
    names = "".join(f"  e{i}: {{role: lan}}\n" for i in range(5000))
    huge.write_text(f"node: {{role: host}}\ninterfaces:\n{names}{GOOD_SYSCTL}")
    cases[huge] = "interfaces: 5000 entries; at most 4096 allowed"
    big = d / "too-large.yaml"
    big.write_text(GOOD_HEAD + GOOD_SYSCTL + "# padding\n" * 200_000)
    cases[big] = "larger than 1048576 bytes"
    fifo = d / "fifo.yaml"
    os.mkfifo(fifo)  # nobody writes: a naive open() would block forever
    cases[fifo] = "is not a regular file"
    loop = d / "loop.yaml"
    loop.symlink_to(loop)
    cases[loop] = "cannot read: Too many levels of symbolic links"
    cases[Path("/dev/zero")] = "is not a regular file"  # a naive read() never ends
    cases[d / "missing.yaml"] = "no such file"
    return cases


def test_catalogue_is_complete() -> None:
    """Every file in the catalogue has its expectation here, and every expectation a file."""
    assert sorted(p.name for p in BAD.iterdir()) == sorted(EXPECTED)


def _refusal(path: Path) -> str:
    with pytest.raises(ProfileError) as info:
        load(path)
    return str(info.value)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loader_refuses_with_key_and_cause(name: str) -> None:
    text = _refusal(BAD / name)
    assert EXPECTED[name] in text
    assert all(line.startswith(str(BAD / name)) for line in text.splitlines()), text


def test_loader_refuses_generated_files(generated: dict[Path, str]) -> None:
    for path, expected in generated.items():
        text = _refusal(path)
        assert expected in text, (path, text)


def test_every_bad_profile_exits_4_without_traceback(
    generated: dict[Path, str], tmp_path: Path
) -> None:
    """The whole catalogue through `pytest --profile`, as a user meets it (4 runs at a time)."""
    cases = {BAD / n: e for n, e in EXPECTED.items()} | generated

    def run(path: Path) -> tuple[Path, int, str]:
        proc = run_sixcheck("--profile", str(path), "--report-dir", str(tmp_path), timeout=60)
        return path, proc.returncode, proc.stdout + proc.stderr

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(run, cases))
    wrong = []
    for path, rc, out in outcomes:
        ok = (
            rc == 4
            and cases[path] in out
            and "Traceback" not in out
            and "INTERNALERROR" not in out
            and "bad profile:" in out
        )
        if not ok:
            wrong.append(f"{path.name}: exit {rc}\n{out[-1500:]}")
    assert not wrong, "\n\n".join(wrong)
    assert not list(tmp_path.iterdir()), "a refused profile must not leave reports behind"
