"""Contacts' state changes: ``contacts`` (the rolodex) and ``consent`` (the ledger and every
consent decision). Import from the module you mean; nothing is re-exported here."""
