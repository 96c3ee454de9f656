"""One module per provider id, each behind the small interface in `base.py`."""
