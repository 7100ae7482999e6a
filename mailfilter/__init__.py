"""The mailfilter runtime: settings, message text, mailboxes, engine, actions, daemon, CLI."""
