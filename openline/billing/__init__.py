"""The credit ledger: what an organization has bought or been given, what it has reserved
for messages on their way, and what it has spent. Append-only like the consent ledger; the
balance on ``CreditAccount`` is a cache of the ledger kept in the same transaction, so that
a reservation is one conditional UPDATE that can never take the balance below zero."""
