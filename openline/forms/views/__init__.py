"""The forms app's pages: builder.py (admins), pane.py (a conversation's forms), rescue.py
(the imminent-risk checklist)."""
