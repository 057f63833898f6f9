"""Segment editing without Qt: the editable segmentation with its undo history
(`editor.SegmentationEditor`) and the tools that change it (`tools`)."""
