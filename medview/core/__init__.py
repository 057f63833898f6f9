"""Qt-free, torch-free domain types: geometry, volumes, records, tasks and errors."""
