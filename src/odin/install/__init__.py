"""Installing Odin on a host and saving its replicated state.

``layout`` says where every installed file lives (under a root, so that tests
install into a temporary directory), ``actions`` are the idempotent steps,
``plan`` orders them for ``odin install`` and ``odin uninstall``, ``unit``
renders the systemd unit, and ``backup`` is the backup file format and the pure
part of a restore. Nothing here imports the CLI or the API.
"""
