"""sixcheck: IPv6 reachability and connectivity checks for real sites, driven by a site profile."""

__version__ = "0.1.0"
