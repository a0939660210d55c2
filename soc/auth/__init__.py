"""Users, roles, API tokens, login sessions and the audit trail (see ``models`` and ``service``)."""
