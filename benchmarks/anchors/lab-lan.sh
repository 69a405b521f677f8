#!/usr/bin/env bash
# Anchor for profiles/lab-lan.yaml (issue 15): the same probes done by standard tools, one after
# the other, in the lab's lan node. Not a check: outputs are thrown away, failures ignored; only the
# time and memory it takes are read (benchmarks/run.py).
set -u
q() { "$@" >/dev/null 2>&1 || true; }
R=2001:db8:53::53
q rdisc6 -1 -w 1000 eth0                                   # nd: RS -> RA
q ndisc6 -1 -w 1000 fe80::ff:fe00:101 eth0                 # nd: NS -> NA of the router
q ping -6 -c1 -W1 fe80::ff:fe00:101%eth0                   # nd: reach it through the kernel
q ip -6 neigh show dev eth0
q sysctl net.ipv6.conf.eth0.forwarding net.ipv6.conf.eth0.accept_ra \
  net.ipv6.conf.eth0.autoconf net.ipv6.conf.eth0.disable_ipv6 \
  net.ipv6.conf.eth0.accept_ra_defrtr net.ipv6.conf.eth0.accept_ra_pinfo
q ip -6 addr show dev eth0                                 # routes
q ip -6 route show
q ip -6 route get 2001:db8:80::80
for name_type in "www.example.net AAAA" "www.example.net A" "v4only.example.net AAAA" \
  "ntp.example.net AAAA" "intranet.example.net AAAA" "no-such-name.example.net AAAA" \
  "host.lan.example.net AAAA" "ipv4only.arpa AAAA"; do
  # shellcheck disable=SC2086  # name and type are two words on purpose
  q dig +tries=1 +time=2 @$R $name_type                    # dns: lookups, DDNS, DNS64
done
q dig +tcp +tries=1 +time=2 @$R www.example.net AAAA       # dns: the resolver over TCP
q dig +tries=1 +time=2 @$R -x 2001:db8:1:1::ff:fe00:110    # dns: reverse
q dig +tries=1 +time=2 @$R -x 2001:db8:80::80
q cat /etc/resolv.conf                                     # dns: host resolvers
q sntp -t 2 2001:db8:123::123                              # ntp
q sntp -t 2 ntp.example.net
q curl -6 -s -m 2 -o /dev/null http://[2001:db8:80::80]/    # firewall: outbound TCP 80
# dhcpv6: one exchange per exchange the profile asks for (information, two client classes);
# Kea's perfdhcp, Solicit -> Advertise only (-i): nothing is allocated
for _ in 1 2 3; do
  q perfdhcp -6 -l eth0 -i -n 1 -r 1 -R 1
done
# firewall: outbound UDP echo (bash's /dev/udp: the reply is read as soon as it is back)
q bash -c 'exec 3<>/dev/udp/2001:db8:80::80/7; printf sixcheck >&3; read -r -t 2 -N 8 _ <&3'
