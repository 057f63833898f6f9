"""The narrative report: templates (data), sections, live fields, sign-off and addenda, and
the lesion table. Qt-free; the session keeps the report with its study, the export renders
it (PDF, Encapsulated PDF, TID 2000 SR)."""
