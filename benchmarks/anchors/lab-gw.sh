#!/usr/bin/env bash
# Anchor for profiles/lab-gw.yaml (issue 15): the same probes by standard tools, one after the
# other, in the lab's gw node. Outputs thrown away, failures ignored: only its cost is read.
set -u
q() { "$@" >/dev/null 2>&1 || true; }
q rdisc6 -1 -w 1000 wan0                                   # nd: RS -> RA upstream
q ndisc6 -1 -w 1000 fe80::ff:fe00:1 wan0
q ping -6 -c1 -W1 fe80::ff:fe00:1%wan0
q sysctl net.ipv6.conf.all.forwarding net.ipv6.conf.wan0.forwarding net.ipv6.conf.wan0.accept_ra \
  net.ipv6.conf.wan0.disable_ipv6 net.ipv6.conf.lan0.forwarding net.ipv6.conf.lan0.disable_ipv6 \
  net.ipv4.ip_forward
q ip -6 addr show                                          # routes
q ip -6 route show
q ip -6 rule show
q ip -6 route show table 7
q ip -6 route get 2001:db8:80::80
q ip -6 route get 2001:db8:77::1
q ip -6 route get 2001:db8:80::80 from 2001:db8:0:7::2
q ip -6 route show table local
q ping -6 -c1 -W1 2001:db8:1:ff::1                         # routes: AnyIP answers
q ip link show tun6                                        # tunnel
q ping -c1 -W1 192.0.2.1                                   # tunnel: underlay
q ping -6 -c1 -W1 2001:db8:0:7::1                          # tunnel: far end
for size in 1452 1232; do                                  # tunnel: path MTU walk
  q ping -6 -c1 -W1 -M do -s "$size" 2001:db8:77::1
done
