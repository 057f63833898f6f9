"""The AI engine: the only package that imports torch and monai (lazily, inside functions)."""
