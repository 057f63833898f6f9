"""Cohort processing: one pipeline (`pipeline`) over many series (`inputs`), each series
loaded, run through the pipeline's models and exported (`steps`), every finished series
committed to a journal as it completes (`journal`), on Ray (`engine`: local by default, a
cluster with an address) or in this process, one series after the other.

Ray is imported only by `medview.batch.engine`, and only when a job starts.
"""
