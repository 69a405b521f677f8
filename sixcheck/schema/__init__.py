"""Profile schema and loading. Knows nothing of pytest or sockets."""

from .errors import Problem, ProfileError
from .profile import AREAS, LoadedProfile, Profile, list_profiles, load, parse, resolve

__all__ = [
    "AREAS",
    "LoadedProfile",
    "Problem",
    "Profile",
    "ProfileError",
    "list_profiles",
    "load",
    "parse",
    "resolve",
]
