"""Qt-free view state and maths: window/level, MPR slicing, rendering, crosshair, measurements."""
