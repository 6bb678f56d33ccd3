"""What a reload changes: two configurations compared, as a plain value the daemon acts on."""

from __future__ import annotations

from dataclasses import dataclass

from daemon.config.model import Config


@dataclass(frozen=True)
class ConfigChange:
    """The differences between the configuration in force and the one read again."""

    # state_dir cannot change while running: the new value is ignored until a restart.
    state_dir: bool
    # Those of state_dir, journal and cluster that changed: all three wait for a restart.
    needs_restart: str
    symbl: bool
    http: bool
    hooks: bool
    log_level: bool
    inboxes_removed: tuple[str, ...]
    inboxes_added: tuple[str, ...]
    inboxes_changed: tuple[str, ...]
    profiles_changed: frozenset[str]


def config_changes(old: Config, new: Config) -> ConfigChange:
    old_inboxes = {inbox.key: inbox for inbox in old.inboxes}
    new_inboxes = {inbox.key: inbox for inbox in new.inboxes}
    hooks_unchanged = old.hooks == new.hooks and all(
        old.profiles.get(name) is not None and old.profiles[name].hooks == profile.hooks
        for name, profile in new.profiles.items()
    )
    return ConfigChange(
        state_dir=new.state_dir != old.state_dir,
        needs_restart=", ".join(
            key
            for key in ("state_dir", "journal", "cluster")
            if getattr(new, key) != getattr(old, key)
        ),
        symbl=new.symbl != old.symbl,
        http=new.http != old.http,
        hooks=not hooks_unchanged,
        log_level=new.log_level != old.log_level,
        inboxes_removed=tuple(key for key in old_inboxes if key not in new_inboxes),
        inboxes_added=tuple(key for key in new_inboxes if key not in old_inboxes),
        inboxes_changed=tuple(
            key
            for key in new_inboxes
            if key in old_inboxes and old_inboxes[key] != new_inboxes[key]
        ),
        profiles_changed=frozenset(
            name for name, profile in new.profiles.items() if old.profiles.get(name) != profile
        ),
    )
