#!/usr/bin/env bash
# Anchor for profiles/lab-vpn.yaml (issue 15): the same probes by standard tools, one after the
# other, in the lab's vpn node. Outputs thrown away, failures ignored: only its cost is read.
set -u
q() { "$@" >/dev/null 2>&1 || true; }
q sysctl net.ipv6.conf.eth0.forwarding net.ipv6.conf.eth0.accept_ra net.ipv6.conf.eth0.disable_ipv6
q ip link show wg0
q wg show wg0
q ip -6 route get 2001:db8:10::10                          # protected prefixes by the tunnel
q ip route get 203.0.113.210
q ip -6 rule show
q ip rule show
for r in 2001:db8:f::53 203.0.113.153; do                  # names by the VPN's resolvers
  for n in intranet.example.net db.intranet.example.net; do
    q dig +tries=1 +time=2 @"$r" "$n" AAAA
    q dig +tries=1 +time=2 @"$r" "$n" A
  done
done
q ping -6 -c1 -W1 2001:db8:10::10                          # reach them
q ping -c1 -W1 203.0.113.210
q cat /etc/resolv.conf
