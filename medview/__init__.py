"""MedView: a desktop radiology workstation.

Importing the package stays light: no Qt, torch, monai or SimpleITK at import time.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
