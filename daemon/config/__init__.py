"""Configuration: load a YAML file into a checked ``Config`` or report every problem in it."""

from daemon.config.errors import ConfigError, ConfigProblem
from daemon.config.loader import load_config
from daemon.config.model import (
    EXPORT_KINDS,
    Config,
    DuplicatePolicy,
    HttpSettings,
    Inbox,
    Profile,
    SymblSettings,
    TrackingSettings,
    WatchMode,
)
from daemon.config.yamlsource import YamlDocument, load_yaml_document

__all__ = [
    "EXPORT_KINDS",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "DuplicatePolicy",
    "HttpSettings",
    "Inbox",
    "Profile",
    "SymblSettings",
    "TrackingSettings",
    "WatchMode",
    "YamlDocument",
    "load_config",
    "load_yaml_document",
]
