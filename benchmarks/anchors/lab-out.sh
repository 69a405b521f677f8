#!/usr/bin/env bash
# Anchor for profiles/lab-out.yaml (issue 15): the outside audit by standard tools, one after the
# other, in the lab's out node (nmap -T4 for TCP and UDP, ping for echo).
set -u
q() { "$@" >/dev/null 2>&1 || true; }
q sysctl net.ipv6.conf.eth0.disable_ipv6
q nmap -6 -sT -Pn -n -T4 -p 22,80,443 2001:db8:1:1::ff:fe00:110 2001:db8:1:1::1
q nmap -6 -sU -Pn -n -T4 -p 53 2001:db8:1:1::ff:fe00:110
q ping -6 -c1 -W1 2001:db8:1:1::ff:fe00:110
q ping -6 -c1 -W1 2001:db8:1:1::1
